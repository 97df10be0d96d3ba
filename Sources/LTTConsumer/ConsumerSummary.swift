import Foundation

/// What a consumer has moved so far, over all its buffers.
public struct ConsumerProgress: Sendable, Equatable {
    /// Bytes written to the output files (whole sub-buffers).
    public var bytes = 0
    /// Sub-buffers taken, written and given back.
    public var subbuffers = 0
    /// Of those, how many the writer had pushed meanwhile (RELAY_PUT_SUBBUF
    /// said EIO: a flight-recorder buffer overwrote it while it was copied).
    public var pushed = 0
    /// Events lost, as the last sub-buffer header of each buffer says.
    public var eventsLost: UInt64 = 0
    /// Corrupted sub-buffers, as the last sub-buffer header of each buffer says.
    public var corruptedSubbuffers: UInt64 = 0
    /// Buffer files read.
    public var buffers = 0

    public init() {}

    /// "1.2 MiB in 12 sub-buffers from 6 buffers, 3.4 MiB/s, 0 events lost,
    /// 0 corrupted sub-buffers, 0 pushed by the writer (EIO)", the rate over
    /// `seconds`: the progress line.
    public func line(seconds: Double) -> String {
        let total = Double(bytes)
        let rate = total / max(seconds, 0.001)
        return "\(Self.human(total)) in \(subbuffers) sub-buffers from \(buffers) buffers, \(Self.human(rate))/s, "
            + "\(eventsLost) events lost, \(corruptedSubbuffers) corrupted sub-buffers, "
            + "\(pushed) pushed by the writer (EIO)"
    }

    /// The line after "done: ", or "stopped: " when the consumer was stopped
    /// before every buffer hung up.
    public func summary(stopped: Bool, seconds: Double) -> String {
        (stopped ? "stopped: " : "done: ") + line(seconds: seconds)
    }

    /// 12.3 MiB, 640.0 KiB, 512 B.
    public static func human(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }
}
