import CLinuxSupport

/// The seed's per-CPU `ltt_nesting`, as a per-thread depth.
///
/// In the kernel an event recorded from an interrupt that arrived inside the
/// tracer is lost once the nesting passes 4. Here the only way back into the
/// tracer on the same thread is a signal handler (or a probe) that records
/// while its thread is between lock and unlock; taking the lock again would
/// deadlock, so any nesting at all loses the event, and it is counted.
public enum TracerNesting {
    /// Enters the tracer. Returns false, without entering, when this thread
    /// is already inside it.
    @inlinable @inline(__always)
    public static func enter() -> Bool {
        if lttfs_nesting_enter() == 0 { return true }
        lttfs_nesting_leave()
        return false
    }

    @inlinable @inline(__always)
    public static func leave() { lttfs_nesting_leave() }

    /// Whether this thread is inside the tracer now.
    public static var isInside: Bool { lttfs_nesting_depth() != 0 }
}
