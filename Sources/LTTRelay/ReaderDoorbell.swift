import LTTSystem
import Synchronization

/// How a buffer tells whoever wakes its readers that there is news (a
/// delivered sub-buffer, a finalize) without waiting for that party's next
/// periodic pass.
///
/// The seed's producers never wake a reader themselves: they set a flag and
/// a timer (`ltt_relay_async_wakeup_chan`) does the waking, since wake_up()
/// cannot run in every context a probe fires in. Here the flag stays
/// (`RelayBuffer.readersToWake`), and the producer that delivers a
/// sub-buffer also rings this bell, after releasing the buffer lock, so the
/// notifier runs at once. Without it, a buffer that fills faster than the
/// timer's period waits for the consumer with nothing to drain it.
///
/// Only the first ring after an `answer()` calls the listener: a delivery
/// costs one atomic exchange, and at most one wake-up per notifier pass.
public final class ReaderDoorbell: Sendable {
    /// The listener, boxed: a bare function value kept in a `Mutex` is
    /// re-wrapped in a reabstraction thunk at every `withLock` (its inout
    /// value is converted in and back out), so each ring would add a layer
    /// to every later call, until the stack overflows.
    private final class Listener: Sendable {
        let call: @Sendable () -> Void
        init(_ call: @escaping @Sendable () -> Void) { self.call = call }
    }

    private let pending = Atomic<Bool>(false)
    private let listener = Locked<Listener?>(nil)

    public init() {}

    /// Calls the listener unless a ring is already pending.
    public func ring() {
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let current = listener.withLock { $0 }
        current?.call()
    }

    /// Clears the pending ring: the notifier calls it before each pass, so a
    /// delivery during the pass rings again.
    public func answer() {
        pending.store(false, ordering: .releasing)
    }

    /// Sets (or with nil, removes) the one listener.
    public func listen(_ body: (@Sendable () -> Void)?) {
        let boxed = body.map(Listener.init)
        listener.withLock { $0 = boxed }
    }
}
