#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation

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
