#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation

/// The clock of a trace: how producers read it and how many ticks make a
/// second (the header's `start_freq`; `freq_scale` is always 1).
///
/// - `tsc`: the CPU's time-stamp counter, what LTTng 0.x's trace clock read
///   on x86 (the format's `start_freq` exists for it). One `rdtsc`, about
///   10 ns here. Its frequency is measured against CLOCK_MONOTONIC once per
///   process (`calibratedTSC`), with an error of about a part per million.
///   The default wherever the kernel itself keeps time with the TSC.
/// - `monotonic`: CLOCK_MONOTONIC in nanoseconds: exact times, no
///   calibration, about 24 ns a read here (the vDSO's own TSC read plus
///   its conversion and sequence lock).
/// - `custom`: any function (tests drive time by hand).
///
/// Producers read the clock inside the buffer lock on every event, so
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
        case .monotonic: return MonotonicClock.now()
        case .custom(let read): return read()
        }
    }

    /// `milliseconds` in ticks of this clock.
    public func ticks(milliseconds: UInt64) -> UInt64 {
        UInt64((Double(milliseconds) * Double(frequency) / 1000).rounded())
    }

    public static let monotonic = TraceClock(name: "monotonic", frequency: 1_000_000_000, source: .monotonic)

    /// The TSC where it is a trustworthy clock, else CLOCK_MONOTONIC.
    public static var preferred: TraceClock { calibratedTSC() ?? .monotonic }

    /// The TSC with its measured frequency, if it can serve as a trace
    /// clock: invariant (constant_tsc and nonstop_tsc: same rate on every
    /// core, in every power state) and the kernel's own clocksource (so it
    /// is synchronized across CPUs: the kernel checks that before choosing
    /// it). nil otherwise. The calibration runs once per process.
    public static func calibratedTSC() -> TraceClock? { processTSC }

    private static let processTSC: TraceClock? = {
        guard TSCCalibration.isTrustworthy,
              let frequency = TSCCalibration.measure(nanoseconds: 50_000_000) else { return nil }
        return TraceClock(name: "tsc", frequency: frequency, source: .tsc)
    }()
}

/// Measures the TSC's frequency against CLOCK_MONOTONIC.
public enum TSCCalibration {
    /// Whether the TSC is invariant and the kernel's clocksource.
    public static var isTrustworthy: Bool {
        #if arch(x86_64)
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let words = Set(flags.split(separator: " ").map(String.init))
        guard words.contains("constant_tsc") && words.contains("nonstop_tsc") else { return false }
        let source = try? String(contentsOfFile: "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                                 encoding: .utf8)
        return source?.trimmingCharacters(in: .whitespacesAndNewlines) == "tsc"
        #else
        return false
        #endif
    }

    /// Ticks per second over about `nanoseconds` of sleep, or nil if the
    /// counter did not advance. Each end is the CLOCK_MONOTONIC read that
    /// sat between the two closest TSC reads of a few tries, so the
    /// error is tens of nanoseconds per end.
    public static func measure(nanoseconds: UInt64) -> UInt64? {
        let (tsc0, ns0) = pair()
        usleep(useconds_t(nanoseconds / 1000))
        let (tsc1, ns1) = pair()
        guard ns1 > ns0, tsc1 > tsc0 else { return nil }
        return UInt64((Double(tsc1 - tsc0) * 1e9 / Double(ns1 - ns0)).rounded())
    }

    /// A (tsc, ns) pair read as close together as possible.
    static func pair() -> (tsc: UInt64, ns: UInt64) {
        var best: (window: UInt64, tsc: UInt64, ns: UInt64) = (.max, 0, 0)
        for _ in 0..<16 {
            let before = lttfs_rdtsc()
            let ns = MonotonicClock.now()
            let after = lttfs_rdtsc()
            if after &- before < best.window { best = (after &- before, before &+ (after &- before) / 2, ns) }
        }
        return (best.tsc, best.ns)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the `monotonic` trace clock, and the
/// reference the TSC is calibrated against.
public enum MonotonicClock {
    @inlinable @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
