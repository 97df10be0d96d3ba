/// The trace's clock as wall-clock time: `frequency` cycles a second, and
/// the wall-clock time of cycle 0 as whole seconds plus cycles since the
/// epoch, which is exactly how a CTF clock class says it (`freq`,
/// `offset_s`, `offset`).
///
/// One model for every reader: `lttfs dump` prints `nanoseconds(_:)`, and
/// babeltrace2 computes the same value from the CTF metadata that
/// `LTTCTF` writes with these three numbers, by the same arithmetic
/// (babeltrace2's `bt_util_ns_from_origin_inline`: the cycles of the
/// offset and of the value are each converted to nanoseconds on their own,
/// exactly when the frequency is 1 GHz, else through a double, truncated).
/// So both show the same time to the nanosecond.
public struct TraceTime: Sendable, Equatable {
    public let frequency: UInt64
    public let offsetSeconds: Int64
    /// Less than `frequency`.
    public let offsetCycles: UInt64

    /// Start times from this second on cannot be told in nanoseconds since
    /// the epoch in a signed 64-bit number (year 2255); readers refuse them.
    public static let latestStartSecond: UInt64 = 9_000_000_000

    /// Nanoseconds since the epoch at cycle 0: the offset's part of
    /// `nanoseconds(_:)`, the same for every event (a division, computed
    /// once).
    @usableFromInline let originNanoseconds: Int64

    public init(frequency: UInt64, offsetSeconds: Int64, offsetCycles: UInt64) {
        self.frequency = max(1, frequency)
        self.offsetSeconds = offsetSeconds
        self.offsetCycles = min(offsetCycles, self.frequency - 1)
        originNanoseconds = offsetSeconds &* 1_000_000_000
            &+ Int64(truncatingIfNeeded: Self.nanoseconds(cycles: self.offsetCycles, frequency: self.frequency))
    }

    /// From a sub-buffer header's trace-wide fields: the wall-clock time
    /// `startTimeSec.startTimeUsec` was read at cycle `startTSC`; the clock
    /// runs at `startFreq / freqScale`. `exact` is false when that quotient
    /// is not a whole number (CTF frequencies are; LTT 0.x wrote scale 1).
    public init(startTimeSec: UInt64, startTimeUsec: UInt64, startTSC: UInt64, startFreq: UInt64, freqScale: UInt32) {
        let scale = UInt64(max(1, freqScale))
        let frequency = max(1, startFreq / scale)
        let startNanoseconds = Int64(truncatingIfNeeded: startTimeSec &* 1_000_000_000 &+ startTimeUsec &* 1000)
        // Wall-clock time of cycle 0, in nanoseconds (may be before 1970 for
        // a clock that has run longer than the epoch is old: negative).
        let zero = startNanoseconds &- Int64(truncatingIfNeeded: Self.nanoseconds(cycles: startTSC, frequency: frequency))
        var seconds = zero / 1_000_000_000
        var remainder = zero % 1_000_000_000
        if remainder < 0 {
            seconds -= 1
            remainder += 1_000_000_000
        }
        // The remainder in cycles, rounded: (remainder * frequency) / 1e9.
        let (high, low) = UInt64(remainder).multipliedFullWidth(by: frequency)
        let (quotient, rest) = UInt64(1_000_000_000).dividingFullWidth((high, low))
        let cycles = quotient + (rest >= 500_000_000 ? 1 : 0)
        if cycles >= frequency {
            self.init(frequency: frequency, offsetSeconds: seconds + 1, offsetCycles: 0)
        } else {
            self.init(frequency: frequency, offsetSeconds: seconds, offsetCycles: cycles)
        }
        exactFrequency = startFreq % scale == 0
    }

    /// The clock of a trace whose first header (metadata_0's sub-buffer 0,
    /// begun when the trace started) is `first`.
    public init(first: SubbufferHeader) {
        self.init(startTimeSec: first.startTimeSec, startTimeUsec: first.startTimeUsec, startTSC: first.cycleCountBegin,
                  startFreq: first.startFreq, freqScale: first.freqScale)
    }

    /// False when the header's frequency had to be rounded to whole cycles
    /// a second.
    public private(set) var exactFrequency = true

    public static func == (a: TraceTime, b: TraceTime) -> Bool {
        a.frequency == b.frequency && a.offsetSeconds == b.offsetSeconds && a.offsetCycles == b.offsetCycles
    }

    /// `bt_util_ns_from_value`: cycles to nanoseconds, exact at 1 GHz,
    /// else through a double and truncated.
    @inlinable
    public static func nanoseconds(cycles: UInt64, frequency: UInt64) -> UInt64 {
        if frequency == 1_000_000_000 { return cycles }
        let ns = 1e9 * Double(cycles) / Double(frequency)
        return ns >= Double(UInt64.max) ? UInt64.max : UInt64(ns)
    }

    /// Nanoseconds since the epoch at clock value `cycles` (may be
    /// negative for a clock whose offset is before 1970).
    @inlinable
    public func nanoseconds(_ cycles: UInt64) -> Int64 {
        originNanoseconds &+ Int64(truncatingIfNeeded: Self.nanoseconds(cycles: cycles, frequency: frequency))
    }

    /// The clock value at `nanoseconds` since the epoch (the inverse of
    /// `nanoseconds(_:)`, through a double: to a few cycles); 0 before
    /// the clock's origin.
    public func cycles(atNanoseconds nanoseconds: Int64) -> UInt64 {
        let base = originNanoseconds
        guard nanoseconds > base else { return 0 }
        let cycles = Double(nanoseconds - base) * Double(frequency) / 1e9
        return cycles >= Double(UInt64.max) ? .max : UInt64(cycles)
    }

    /// `seconds.nanoseconds` with nine digits, as `babeltrace2
    /// --clock-seconds` prints it (a `-` before times before the epoch).
    public static func secondsString(_ nanoseconds: Int64) -> String {
        let magnitude = nanoseconds.magnitude
        let fraction = String(magnitude % 1_000_000_000)
        return (nanoseconds < 0 ? "-" : "") + String(magnitude / 1_000_000_000) + "."
            + String(repeating: "0", count: 9 - fraction.count) + fraction
    }
}
