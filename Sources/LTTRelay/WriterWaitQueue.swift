#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CLinuxSupport
import CRelayABI
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
/// frees a sub-buffer (`write_wait` and `ltt_relay_wake_writers`): a futex
/// on the buffer's shared `writer_generation`, so that a producer in
/// another process waits in shared memory like one in the server, and one
/// PUT, finalize or end of waits wakes both.
///
/// Lost wake-ups are impossible: a writer reads `generation` under the
/// buffer lock, in the same critical section where it finds the buffer full;
/// a reader bumps the generation after it moved `consumed` and released the
/// lock, and the futex sleeps only while the word still holds what the
/// writer read. Sleeps are sliced so that a cancellation is seen within
/// `slice` even if nobody wakes the queue.
struct WriterWaitQueue: @unchecked Sendable {
    private let generationWord: UnsafeMutablePointer<UInt32>
    private let generationCounter: UnsafeAtomic<UInt32>
    private let waiterCount: UnsafeAtomic<UInt32>
    static let slice: UInt64 = 20_000_000 // ns

    init(control: UnsafeMutablePointer<lttfs_ring_control>) {
        generationWord = control.pointer(to: \.writer_generation)!
        generationCounter = control.sharedAtomic(\.writer_generation)
        waiterCount = control.sharedAtomic(\.writer_waiters)
    }

    var generation: UInt32 { generationCounter.load(ordering: .acquiring) }
    var waiters: Int { Int(waiterCount.load(ordering: .relaxed)) }

    /// Called by a writer once it found no room, before its first `wait`:
    /// `wakeAll` bumps the generation before it reads the count, and the
    /// writer counts itself before the futex compares the generation, so
    /// one of the two always sees the other (both sequentially consistent).
    func register() { waiterCount.wrappingIncrement(ordering: .sequentiallyConsistent) }
    func unregister() { waiterCount.wrappingDecrement(ordering: .sequentiallyConsistent) }

    /// Sleeps until the generation moves past `seen`, `cancellation` fires
    /// or `deadline` (CLOCK_MONOTONIC ns) passes. The caller looks again
    /// at why it waited: a return says only that something may have changed.
    func wait(past seen: UInt32, cancellation: WaitCancellation?, deadline: UInt64? = nil) {
        while generationCounter.load(ordering: .sequentiallyConsistent) == seen {
            if cancellation?.isCancelled == true { return }
            let now = MonotonicClock.now()
            if let deadline, now >= deadline { return }
            var slice = Self.slice
            if let deadline { slice = min(slice, deadline - now) }
            _ = lttfs_futex_wait_shared(generationWord, seen, slice)
        }
    }

    /// Wakes every sleeping writer (a put, a finalize, a cancellation).
    func wakeAll() {
        generationCounter.wrappingIncrement(ordering: .sequentiallyConsistent)
        guard waiterCount.load(ordering: .sequentiallyConsistent) != 0 else { return }
        _ = lttfs_futex_wake_shared(generationWord, Int32.max)
    }
}
