#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Synchronization

/// The buffer lock: the seed's `raw_spinlock_t`, in user space.
///
/// The kernel held it with interrupts off for a few hundred instructions
/// (reserve, copy, commit). Here too nothing blocks while it is held, and
/// the buffers are per CPU, so it is almost never contended. That is what a
/// spin lock is for: taking it is one atomic exchange and releasing it one
/// plain store, where a futex mutex pays an atomic operation on release as
/// well (it must learn whether anybody sleeps).
///
/// User space cannot turn preemption off, so a holder may be descheduled
/// while another thread waits: the waiter spins briefly, then yields its
/// CPU on each further try (`sched_yield`), which lets the holder run.
public struct SpinLock: ~Copyable, @unchecked Sendable {
    @usableFromInline let word = Atomic<UInt32>(0)

    public init() {}

    @inlinable @inline(__always)
    public borrowing func lock() {
        if word.exchange(1, ordering: .acquiring) != 0 { lockContended() }
    }

    @inlinable @inline(__always)
    public borrowing func unlock() {
        word.store(0, ordering: .releasing)
    }

    /// True when the lock was free and is now held.
    @inlinable @inline(__always)
    public borrowing func tryLock() -> Bool {
        word.load(ordering: .relaxed) == 0 && word.exchange(1, ordering: .acquiring) == 0
    }

    @usableFromInline @inline(never)
    borrowing func lockContended() {
        var spins = 0
        while true {
            // Wait with plain loads (no cache-line ping-pong), then try.
            while word.load(ordering: .relaxed) != 0 {
                if spins < 128 {
                    lttfs_cpu_relax()
                    spins += 1
                } else {
                    sched_yield()
                }
            }
            if word.exchange(1, ordering: .acquiring) == 0 { return }
        }
    }
}
