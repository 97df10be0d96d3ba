#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import CLinuxSupport

/// The clock of a trace: how producers read it and how many ticks make a
/// second (the header's `start_freq`; `freq_scale` is always 1).
///
/// - `tsc`: the CPU's time-stamp counter, what LTTng 0.x's trace clock read
///   on x86 (the format's `start_freq` exists for it). One `rdtsc`, about
///   10 ns here. Its frequency is measured against CLOCK_MONOTONIC once per
///   process (`calibratedTSC`), with an error of about a part per million.
///   The default wherever the kernel itself keeps time with the TSC.
/// - `monotonic`: CLOCK_MONOTONIC in nanoseconds. Where the TSC is
///   trustworthy, computed from it in the process
///   (`MonotonicClock.fastNow`: a plain `rdtsc`, a sequence word and a
///   multiply, about 2 ns more than `tsc` per event, within tens of
///   nanoseconds of `clock_gettime`, re-anchored on it every 10 ms);
///   elsewhere `clock_gettime` itself (about 24 ns here: the vDSO orders
///   its TSC read behind everything before it and walks the kernel's
///   sequence lock).
/// - `custom`: any function (tests drive time by hand).
///
/// Producers read the clock on every event (just before they take the
/// buffer lock; the ring keeps each buffer's times from going back), so
/// `now()` is inlined: the built-in sources cost no call at all.
public struct TraceClock: Sendable {
    public enum Source: Sendable {
        case tsc
        case monotonic
        case custom(@Sendable () -> UInt64)
    }

    public let name: String
    /// Ticks per second.
    public let frequency: UInt64
    public let source: Source

    public init(name: String, frequency: UInt64, source: Source) {
        precondition(frequency > 0, "a trace clock needs a frequency")
        self.name = name
        self.frequency = frequency
        self.source = source
    }

    /// A clock read through a function.
    public init(name: String = "custom", frequency: UInt64 = 1_000_000_000,
                read: @escaping @Sendable () -> UInt64) {
        self.init(name: name, frequency: frequency, source: .custom(read))
    }

    /// The time now, in ticks.
    @inlinable @inline(__always)
    public func now() -> UInt64 {
        switch source {
        case .tsc: return lttfs_rdtsc()
        case .monotonic: return MonotonicClock.fastNow()
        case .custom(let read): return read()
        }
    }

    /// `milliseconds` in ticks of this clock.
    public func ticks(milliseconds: UInt64) -> UInt64 {
        UInt64((Double(milliseconds) * Double(frequency) / 1000).rounded())
    }

    /// CLOCK_MONOTONIC. A buffer that records with it turns on the TSC's
    /// line in its process (`RelayBuffer`), not every use of the value (a
    /// reader's view of a buffer reads no clock).
    public static let monotonic = TraceClock(name: "monotonic", frequency: 1_000_000_000, source: .monotonic)
}
