#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CLinuxSupport
import CRelayABI
import LTTSystem
import Synchronization

/// The buffer lock: the seed's `raw_spinlock_t`, in memory shared with
/// producer processes, and one that survives its holder.
///
/// The word is 0 when free, else the holder's token: its process's PID as
/// the server sees it (a producer learns it at registration, since its own
/// getpid() may be in another PID namespace). Taking it is one
/// compare-and-swap, releasing it one store, as the spin lock it replaces.
///
/// The kernel held this lock with interrupts off; here a holder can be
/// descheduled, stopped or killed inside it, so no wait is unbounded:
/// - a waiter spins briefly, then yields its CPU, until `patience` runs
///   out; it then gives up (a producer loses its event, counted) and
///   remembers the holder as jammed for a second or two (the rest of
///   that whole second of CLOCK_MONOTONIC and the next), so that attempts
///   on the same holder then give up at once instead of each waiting
///   its patience (after it, a holder is given its patience again: one
///   slow moment does not mark a process for good);
/// - a holder that died is found by its token: the server, the only one
///   that may judge a PID (it learns of deaths from its producer sockets,
///   and all tokens are PIDs of its namespace), takes the lock over and
///   counts `locks_recovered`. The slot the dead holder reserved and never
///   committed is then exactly what the seed calls a corrupted sub-buffer:
///   the next writer to come round to it pushes the reader past it and
///   counts it (RelayRing.pushReader).
public struct RelayLock: @unchecked Sendable {
    @usableFromInline let word: UnsafeAtomic<UInt32>
    @usableFromInline let control: UnsafeMutablePointer<lttfs_ring_control>

    /// This process's token (its PID unless a server said otherwise).
    public static let token = Atomic<UInt32>(UInt32(truncatingIfNeeded: getpid()))

    /// How long a producer waits for a held lock before losing its event.
    public static let writerPatience: UInt64 = 200_000_000
    /// How long the server's own operations (GET, PUT, switch, finalize)
    /// wait before they treat the buffer as jammed.
    public static let serverPatience: UInt64 = 1_000_000_000

    public init(control: UnsafeMutablePointer<lttfs_ring_control>) {
        self.control = control
        word = control.sharedAtomic(\.lock)
    }

    /// The holder's token, 0 if free.
    public var holder: UInt32 { word.load(ordering: .relaxed) }

    /// Takes the lock; false when `patience` ns passed with a live holder
    /// (or one already found jammed: `jammed`). `recoverDead`: the caller
    /// may judge tokens (the server).
    @inlinable @inline(__always)
    public func lock(patience: UInt64 = RelayLock.writerPatience, jammed: borrowing Atomic<UInt64>,
                     recoverDead: Bool) -> Bool {
        lock(as: Self.token.load(ordering: .relaxed), patience: patience, jammed: jammed, recoverDead: recoverDead)
    }

    /// `lock` with the token given (a buffer keeps its process's: reading
    /// the global costs a call per event).
    @inlinable @inline(__always)
    public func lock(as me: UInt32, patience: UInt64, jammed: borrowing Atomic<UInt64>, recoverDead: Bool) -> Bool {
        if word.weakCompareExchange(expected: 0, desired: me, successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
            return true
        }
        return lockContended(me, patience: patience, jammed: jammed, recoverDead: recoverDead)
    }

    /// One attempt: true when the lock was free and is now held.
    public func tryLock() -> Bool {
        word.compareExchange(expected: 0, desired: Self.token.load(ordering: .relaxed), successOrdering: .acquiring,
                             failureOrdering: .relaxed).exchanged
    }

    @inlinable @inline(__always)
    public func unlock() {
        word.store(0, ordering: .releasing)
    }

    @usableFromInline @inline(never)
    func lockContended(_ me: UInt32, patience: UInt64, jammed: borrowing Atomic<UInt64>, recoverDead: Bool) -> Bool {
        let jam = jammed.load(ordering: .relaxed)
        if jam != 0 {
            // The holder that jammed the buffer in this whole second or
            // the one before still has it: give up at once (never less
            // than a second, whatever boundary falls between the two).
            let (stuck, since) = (UInt32(jam >> 32), UInt32(truncatingIfNeeded: jam))
            let second = UInt32(truncatingIfNeeded: MonotonicClock.now() / 1_000_000_000)
            if word.load(ordering: .relaxed) == stuck && second &- since <= 1 && !(recoverDead && Self.isDead(stuck)) {
                return false
            }
            jammed.store(0, ordering: .relaxed)
        }
        var spins = 0
        var deadline: UInt64 = 0
        while true {
            let seen = word.load(ordering: .relaxed)
            if seen == 0 {
                if word.compareExchange(expected: 0, desired: me, successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                    return true
                }
                continue
            }
            if spins < 128 {
                lttfs_cpu_relax()
                spins += 1
                continue
            }
            // A holder that keeps the lock this long was preempted, or
            // died: past 64 yields the waiter sleeps, 50 us at a time,
            // leaving its CPU to whoever can end the wait (the holder, or
            // the server that recovers a dead producer's lock), where
            // yielding in a loop on a loaded machine kept it.
            if spins < 192 { sched_yield() } else { MonotonicClock.sleep(nanoseconds: 50_000) }
            spins += 1
            guard spins & 63 == 0 || spins > 192 else { continue }
            if recoverDead, seen != me, Self.isDead(seen), recover(from: seen) { return true }
            let now = MonotonicClock.now()
            if deadline == 0 { deadline = now &+ patience }
            if now >= deadline {
                jammed.store(UInt64(seen) << 32 | UInt64(UInt32(truncatingIfNeeded: now / 1_000_000_000)), ordering: .relaxed)
                return false
            }
        }
    }

    /// Takes the lock from `dead`, a holder known to have died (the server
    /// saw its producer's socket close and its PID gone), and counts it.
    /// False if `dead` does not hold it.
    @discardableResult
    public func recover(from dead: UInt32) -> Bool {
        let me = Self.token.load(ordering: .relaxed)
        guard dead != 0, dead != me,
              word.compareExchange(expected: dead, desired: me, successOrdering: .acquiring, failureOrdering: .relaxed).exchanged
        else { return false }
        control.pointee.locks_recovered &+= 1
        return true
    }

    /// No process has PID `token` (any more), or it is a zombie: killed,
    /// not yet reaped by its parent (kill(0) still succeeds on those). A
    /// process whose main thread exited while others run shows its leader
    /// as a zombie too: only a zombie with one thread left is dead. EPERM
    /// is a live process of another user.
    public static func isDead(_ token: UInt32) -> Bool {
        guard token != 0, token <= UInt32(Int32.max) else { return false }
        if kill(pid_t(token), 0) != 0 { return errno == ESRCH }
        let fd = open("/proc/\(token)/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno == ENOENT }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return false }
        let text = String(decoding: bytes[0..<n], as: UTF8.self)
        let zombie = text.contains("\nState:\tZ") || text.contains("\nState:\tX")
        return zombie && text.contains("\nThreads:\t1\n")
    }
}
