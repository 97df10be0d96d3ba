import LTTFormat

/// `DecodedEvent.line`, written straight from a `TraceStream.Event`'s bytes
/// into a byte buffer: the same text, with no String or array per event.
///
///     channel.marker: seconds.nanoseconds (cpu N) { name = value, ... }
public struct EventText {
    /// "channel.marker: " and each field's "name = ", as bytes, per marker.
    private let prefixes: [[UInt8]]
    private let fieldNames: [[[UInt8]]]
    private let stream: TraceStream

    public init(_ stream: TraceStream) {
        self.stream = stream
        prefixes = stream.markers.map { Array("\($0.channel).\($0.name): ".utf8) }
        fieldNames = stream.markers.map { $0.fields.map { Array("\($0.name) = ".utf8) } }
    }

    /// Appends the line of `event` and a newline to `out`.
    public func append(_ event: borrowing TraceStream.Event, to out: inout [UInt8]) {
        let marker = stream.markers[event.marker]
        out.append(contentsOf: prefixes[event.marker])
        Self.appendTime(stream.time?.nanoseconds(event.clock) ?? 0, to: &out)
        out.append(contentsOf: " (cpu ".utf8)
        Self.appendDecimal(UInt64(event.cpu), to: &out)
        out.append(contentsOf: ") { ".utf8)
        let bytes = event.bytes
        let alignment = event.alignment
        let start = event.payloadStart
        var o = start
        bytes.bytes.withUnsafeBytes { raw in
            for (i, field) in marker.fields.enumerated() {
                if i > 0 { out.append(contentsOf: ", ".utf8) }
                out.append(contentsOf: fieldNames[event.marker][i])
                switch field.kind {
                case .string:
                    var end = o
                    while end < event.limit && raw[end] != 0 { end += 1 }
                    out.append(UInt8(ascii: "\""))
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[o..<end]))
                    out.append(UInt8(ascii: "\""))
                    o = end + 1
                case .integer(let size, let signed, let network):
                    o += PayloadLayout.padding(at: o - start, size: size, alignment: alignment)
                    guard o + size <= event.limit else { return }
                    var bits: UInt64
                    switch size {
                    case 1: bits = UInt64(raw.load(fromByteOffset: o, as: UInt8.self))
                    case 2:
                        let v = raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)
                        bits = UInt64(network ? v.bigEndian : v)
                    case 4:
                        let v = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                        bits = UInt64(network ? v.bigEndian : v)
                    default:
                        let v = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                        bits = network ? v.bigEndian : v
                    }
                    o += size
                    if signed {
                        let shift = UInt64(64 - 8 * size)
                        let value = Int64(bitPattern: bits << shift) >> Int64(shift)
                        if value < 0 { out.append(UInt8(ascii: "-")) }
                        Self.appendDecimal(value.magnitude, to: &out)
                    } else {
                        switch field.conversion {
                        case "x", "p":
                            out.append(contentsOf: "0x".utf8)
                            Self.appendDigits(bits, radix: 16, uppercase: false, to: &out)
                        case "X":
                            out.append(contentsOf: "0x".utf8)
                            Self.appendDigits(bits, radix: 16, uppercase: true, to: &out)
                        case "o":
                            out.append(UInt8(ascii: "0"))
                            Self.appendDigits(bits, radix: 8, uppercase: false, to: &out)
                        default:
                            Self.appendDecimal(bits, to: &out)
                        }
                    }
                }
            }
        }
        out.append(contentsOf: " }\n".utf8)
    }

    /// `seconds.nanoseconds`, nine digits (`TraceTime.secondsString`).
    static func appendTime(_ nanoseconds: Int64, to out: inout [UInt8]) {
        if nanoseconds < 0 { out.append(UInt8(ascii: "-")) }
        let magnitude = nanoseconds.magnitude
        appendDecimal(magnitude / 1_000_000_000, to: &out)
        out.append(UInt8(ascii: "."))
        var fraction = magnitude % 1_000_000_000
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            for i in stride(from: 8, through: 0, by: -1) {
                d[i] = UInt8(ascii: "0") + UInt8(fraction % 10)
                fraction /= 10
            }
            out.append(contentsOf: d)
        }
    }

    @inline(__always)
    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        appendDigits(value, radix: 10, uppercase: false, to: &out)
    }

    static func appendDigits(_ value: UInt64, radix: UInt64, uppercase: Bool, to out: inout [UInt8]) {
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: 22 octal digits at most
        withUnsafeMutableBytes(of: &buffer) { b in
            var v = value
            var i = b.count
            repeat {
                let digit = UInt8(v % radix)
                i -= 1
                b[i] = digit < 10 ? UInt8(ascii: "0") + digit : (uppercase ? UInt8(ascii: "A") : UInt8(ascii: "a")) + digit - 10
                v /= radix
            } while v != 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[i...]))
        }
    }
}
