#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport

/// CLOCK_MONOTONIC in nanoseconds: the `monotonic` trace clock, and the
/// reference the TSC is calibrated against.
public enum MonotonicClock {
    @inlinable @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// CLOCK_MONOTONIC in nanoseconds as producers read it on every event:
    /// computed from the TSC in this process (MonotonicFromTSC.h: within
    /// tens of nanoseconds of `now()`, for a fraction of its cost)
    /// once `tracksWithTSC` turned that on, else `now()` itself.
    @inlinable @inline(__always)
    public static func fastNow() -> UInt64 { lttfs_mono_now() }

    /// Whether `fastNow()` computes from the TSC in this process: turned on
    /// at first use where the TSC is invariant and the kernel's own
    /// clocksource (TSCCalibration.isTrustworthy), with a first estimate
    /// of its rate over 2 ms that the first period refines.
    public static let tracksWithTSC: Bool = {
        guard TSCCalibration.isTrustworthy,
              let rate = TSCCalibration.measure(nanoseconds: 2_000_000) else { return false }
        return lttfs_mono_enable(rate) == 1
    }()

    /// Re-anchorings of `fastNow()`'s line on CLOCK_MONOTONIC so far.
    public static var fastNowAnchors: UInt64 { lttfs_mono_anchors() }

    /// Sleeps about `nanoseconds` (a signal may end it early: callers that
    /// poll a condition check it again anyway).
    public static func sleep(nanoseconds: UInt64) {
        var pause = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        nanosleep(&pause, nil)
    }
}
