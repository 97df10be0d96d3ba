#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import Synchronization

/// Lets a blocking writer be told to give up waiting (a signal reached the
/// process writing to `write_event`: FUSE forwards it as an interrupt; or
/// the server is stopping). Deadlines are the wait policy's own.
public final class WaitCancellation: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func cancel() { flag.store(true, ordering: .releasing) }

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }
}

/// Where writers in the seed's "user blocking" mode sleep until a reader
/// frees a sub-buffer (`write_wait` and `ltt_relay_wake_writers`).
///
/// Lost wake-ups are impossible: a writer reads `generation` under the
/// buffer lock, in the same critical section where it finds the buffer full;
/// a reader bumps the generation after it moved `consumed` and released the
/// lock. Sleeps are sliced so that a cancellation is seen within
/// `slice` even if nobody broadcasts.
final class WriterWaitQueue: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let generationCounter = Atomic<UInt64>(0)
    private let waiterCount = Atomic<Int>(0)
    static let slice: Int = 20_000_000 // ns

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }
    var waiters: Int { waiterCount.load(ordering: .relaxed) }

    /// Called by a writer before it checks for space under the buffer lock.
    func register() { waiterCount.add(1, ordering: .sequentiallyConsistent) }
    func unregister() { waiterCount.subtract(1, ordering: .sequentiallyConsistent) }

    /// Sleeps until the generation moves past `seen`, `cancellation` fires
    /// or `deadline` (CLOCK_MONOTONIC ns) passes. The caller looks again
    /// at why it waited: a return says only that something may have changed.
    func wait(past seen: UInt64, cancellation: WaitCancellation?, deadline: UInt64? = nil) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while generationCounter.load(ordering: .acquiring) == seen {
            if cancellation?.isCancelled == true { return }
            let now = MonotonicClock.now()
            if let deadline, now >= deadline { return }
            var until = now &+ UInt64(Self.slice)
            if let deadline { until = min(until, deadline) }
            var when = timespec(tv_sec: Int(until / 1_000_000_000), tv_nsec: Int(until % 1_000_000_000))
            pthread_cond_timedwait(condition, mutex, &when)
        }
    }

    /// Wakes every sleeping writer (a put, a finalize, a cancellation).
    func wakeAll() {
        generationCounter.add(1, ordering: .sequentiallyConsistent)
        guard waiterCount.load(ordering: .sequentiallyConsistent) > 0 else { return }
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
