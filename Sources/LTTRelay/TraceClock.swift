#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation

/// The clock of a trace: how producers read it and how many ticks make a
/// second (the header's `start_freq`; `freq_scale` is always 1).
///
/// - `monotonic`: CLOCK_MONOTONIC in nanoseconds. Exact times, no
///   calibration; ~24 ns a read here. The default.
/// - `calibratedTSC()`: the CPU's invariant time-stamp counter, ~10 ns a
///   read, with its frequency measured against CLOCK_MONOTONIC; times carry
///   the calibration's error (a few parts in 10^6 for a 100 ms calibration).
public struct TraceClock: Sendable {
    public let name: String
    /// Ticks per second.
    public let frequency: UInt64
    public let read: @Sendable () -> UInt64

    public init(name: String, frequency: UInt64, read: @escaping @Sendable () -> UInt64) {
        self.name = name
        self.frequency = frequency
        self.read = read
    }

    public static let monotonic = TraceClock(name: "monotonic", frequency: 1_000_000_000) { MonotonicClock.now() }

    /// The TSC, if this CPU's is invariant (constant_tsc and nonstop_tsc:
    /// same rate on every core, in every power state); nil otherwise.
    public static func calibratedTSC(calibrationNanoseconds: UInt64 = 100_000_000) -> TraceClock? {
        #if arch(x86_64)
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let words = Set(flags.split(separator: " ").map(String.init))
        guard words.contains("constant_tsc") && words.contains("nonstop_tsc") else { return nil }
        let ns0 = MonotonicClock.now(), tsc0 = lttfs_rdtsc()
        usleep(useconds_t(calibrationNanoseconds / 1000))
        let ns1 = MonotonicClock.now(), tsc1 = lttfs_rdtsc()
        guard ns1 > ns0, tsc1 > tsc0 else { return nil }
        let frequency = UInt64((Double(tsc1 - tsc0) * 1e9 / Double(ns1 - ns0)).rounded())
        return TraceClock(name: "tsc", frequency: frequency) { lttfs_rdtsc() }
        #else
        return nil
        #endif
    }
}
