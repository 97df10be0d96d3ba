import CLinuxSupport
import Synchronization

/// A value behind Swift's `Mutex`, whose ordering ThreadSanitizer is told.
///
/// On Linux the standard library's `Mutex` waits on a futex inside the
/// uninstrumented Synchronization library, so the sanitizer sees no order
/// between two critical sections and reports every access to the value as
/// a race. `Locked` is the same lock, with an acquire at the start and a
/// release at the end of each critical section marked at one address (no
/// cost outside sanitizer builds: the marks are empty functions).
public final class Locked<Value>: Sendable {
    private let mutex: Mutex<Value>

    public init(_ value: sending Value) { mutex = Mutex(value) }

    private var token: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// `Mutex.withLock`: runs `body` on the value with the lock held.
    public func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E)
        -> sending Result {
        let token = self.token
        return try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            lttfs_tsan_acquire(token)
            defer { lttfs_tsan_release(token) }
            return try body(&value)
        }
    }

    /// `Mutex.withLockIfAvailable`: nil, without waiting, when it is held.
    public func withLockIfAvailable<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result)
        throws(E) -> sending Result? {
        let token = self.token
        return try mutex.withLockIfAvailable { (value: inout sending Value) throws(E) -> sending Result in
            lttfs_tsan_acquire(token)
            defer { lttfs_tsan_release(token) }
            return try body(&value)
        }
    }
}
