#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CLinuxSupport
import LTTSystem

/// An event count: a word that `advance` moves on, and that threads sleep
/// on (a futex) until it moved past the value they read. A waiter reads
/// `value` before it checks its condition, so an `advance` after that
/// check is never missed: the futex sleeps only while the word still holds
/// what the waiter read.
///
/// `advance` makes a system call only while somebody sleeps: it bumps the
/// word before it reads the sleeper count, and a sleeper counts itself
/// before the futex compares the word (both sequentially consistent), so
/// one of the two always sees the other.
final class EventCount: @unchecked Sendable {
    private let word: UnsafeMutablePointer<UInt32>
    private let counter: UnsafeAtomic<UInt32>
    private let sleepers: UnsafeAtomic<Int>

    init() {
        word = .allocate(capacity: 1)
        word.initialize(to: 0)
        counter = UnsafeAtomic(at: UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        sleepers = .create(0)
    }

    deinit {
        sleepers.destroy()
        word.deallocate()
    }

    /// Threads in `wait` now.
    var waiting: Int { sleepers.load(ordering: .relaxed) }

    /// Read before checking the condition the caller waits for.
    var value: UInt32 { counter.load(ordering: .sequentiallyConsistent) }

    /// The condition may have changed: wakes every sleeper.
    func advance() {
        counter.wrappingIncrement(ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) != 0 { _ = lttfs_futex_wake_shared(word, Int32.max) }
    }

    /// Sleeps until the count moves past `seen` or `deadline`
    /// (CLOCK_MONOTONIC ns) passes; the caller checks its condition again.
    func wait(past seen: UInt32, deadline: UInt64) {
        sleepers.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { sleepers.wrappingDecrement(ordering: .sequentiallyConsistent) }
        while counter.load(ordering: .sequentiallyConsistent) == seen {
            let now = MonotonicClock.now()
            guard now < deadline else { return }
            _ = lttfs_futex_wait_shared(word, seen, deadline - now)
        }
    }
}
