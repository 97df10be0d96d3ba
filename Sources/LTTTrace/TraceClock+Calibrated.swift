import LTTRelay
import LTTSystem

extension TraceClock {
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
