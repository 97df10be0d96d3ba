import LTTFormat

/// One event read back from a trace.
public struct DecodedEvent: Sendable, Equatable {
    public let channel: String
    public let marker: String
    public let cpu: Int
    /// The full clock value (cycles).
    public let cycles: UInt64
    /// Wall-clock time of the event in nanoseconds since the epoch, by the
    /// trace's `TraceTime` (what babeltrace2 shows for the CTF conversion).
    public let timeNanoseconds: Int64
    public let fields: [(name: String, value: FieldValue, conversion: Character)]
    /// The file it came from and its byte offset there.
    public let file: String
    public let offset: Int

    public init(channel: String, marker: String, cpu: Int, cycles: UInt64, timeNanoseconds: Int64,
                fields: [(name: String, value: FieldValue, conversion: Character)], file: String, offset: Int) {
        self.channel = channel
        self.marker = marker
        self.cpu = cpu
        self.cycles = cycles
        self.timeNanoseconds = timeNanoseconds
        self.fields = fields
        self.file = file
        self.offset = offset
    }

    public static func == (a: DecodedEvent, b: DecodedEvent) -> Bool {
        a.channel == b.channel && a.marker == b.marker && a.cpu == b.cpu && a.cycles == b.cycles
            && a.file == b.file && a.offset == b.offset
            && a.fields.map(\.name) == b.fields.map(\.name) && a.fields.map(\.value) == b.fields.map(\.value)
    }

    public func field(_ name: String) -> FieldValue? { fields.first { $0.name == name }?.value }

    /// `seconds.nanoseconds`, nine digits.
    public var timeString: String { TraceTime.secondsString(timeNanoseconds) }

    /// `channel.marker: seconds.nanoseconds (cpu N) { field = value, ... }`
    public var line: String {
        let body = fields.map { "\($0.name) = \(Self.display($0.value, $0.conversion))" }.joined(separator: ", ")
        return "\(channel).\(marker): \(timeString) (cpu \(cpu)) { \(body) }"
    }

    static func display(_ value: FieldValue, _ conversion: Character) -> String {
        switch (value, conversion) {
        case (.unsigned(let v), "x"), (.unsigned(let v), "p"): "0x" + String(v, radix: 16)
        case (.unsigned(let v), "X"): "0x" + String(v, radix: 16, uppercase: true)
        case (.unsigned(let v), "o"): "0" + String(v, radix: 8)
        default: value.description
        }
    }
}
