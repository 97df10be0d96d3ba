#if canImport(Glibc)
import Glibc
#endif

/// The seed's per-CPU `ltt_nesting`, as a per-thread depth.
///
/// In the kernel an event recorded from an interrupt that arrived inside the
/// tracer is lost once the nesting passes 4. Here the only way back into the
/// tracer on the same thread is a signal handler (or a probe) that records
/// while its thread is between lock and unlock; taking the lock again would
/// deadlock, so any nesting at all loses the event, and it is counted.
public enum TracerNesting {
    @usableFromInline
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    /// Enters the tracer; false when this thread is already inside it.
    @inlinable @inline(__always)
    public static func enter() -> Bool {
        let k = key
        guard pthread_getspecific(k) == nil else { return false }
        pthread_setspecific(k, UnsafeRawPointer(bitPattern: 1))
        return true
    }

    @inlinable @inline(__always)
    public static func leave() {
        pthread_setspecific(key, nil)
    }

    /// Whether this thread is inside the tracer now.
    public static var isInside: Bool { pthread_getspecific(key) != nil }
}
