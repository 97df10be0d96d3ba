import LTTSystem

/// Where buffers post their news (a delivered sub-buffer, a finalize) for
/// the one thread that wakes their readers: the way a wake-up goes, one
/// way, from producer to notifier.
///
///     producer: commit delivers  ->  RelayBuffer.flagReaders
///                                ->  doorbell.post(buffer)   (after the buffer lock)
///     notifier: doorbell.takePosted() -> wake the pollers of each buffer
///
/// The seed's producers never wake a reader themselves: they set a flag
/// and a timer (`ltt_relay_async_wakeup_chan`) does the waking, since
/// wake_up() cannot run in every context a probe fires in. Here the flag is
/// the buffer's place in `posted`, and the first post after the notifier
/// took the list calls its listener, so the notifier runs at once instead
/// of at its next tick: a buffer that fills faster than the timer's period
/// would otherwise wait for its consumer with nothing to drain it.
///
/// A post costs one mutex (once per delivered sub-buffer, never per
/// event), and at most one listener call per notifier pass.
public final class ReaderDoorbell: Sendable {
    /// The listener, boxed: a bare function value kept in a `Mutex` is
    /// re-wrapped in a reabstraction thunk at every `withLock` (its inout
    /// value is converted in and back out), so each call would add a layer
    /// to every later one, until the stack overflows.
    private final class Listener: Sendable {
        let call: @Sendable () -> Void
        init(_ call: @escaping @Sendable () -> Void) { self.call = call }
    }

    /// Buffers with news since the notifier last took them, each once.
    /// Weak: a post never keeps a destroyed trace's buffer (and its share
    /// of the memory budget) alive until the notifier's next pass.
    private struct Posted { weak var buffer: RelayBuffer? }
    private let posted = Locked<[ObjectIdentifier: Posted]>([:])
    private let listener = Locked<Listener?>(nil)

    public init() {}

    /// `buffer` has news; the listener is called if it is the first since
    /// the last `takePosted`. With no listener nobody would take it: it is
    /// not kept (a reader that comes later sees the state when it polls),
    /// and nothing holds a destroyed trace's buffers.
    func post(_ buffer: RelayBuffer) {
        guard let current = listener.withLock({ $0 }) else { return }
        let first = posted.withLock { p -> Bool in
            let wasEmpty = p.isEmpty
            p[ObjectIdentifier(buffer)] = Posted(buffer: buffer)
            return wasEmpty
        }
        if first { current.call() }
    }

    /// Every buffer posted since the last call (the notifier's pass).
    public func takePosted() -> [RelayBuffer] {
        posted.withLock { p in
            defer { p.removeAll(keepingCapacity: true) }
            return p.values.compactMap(\.buffer)
        }
    }

    /// Sets (or with nil, removes) the one listener; removing it drops
    /// whatever was posted and not taken.
    public func listen(_ body: (@Sendable () -> Void)?) {
        let boxed = body.map(Listener.init)
        listener.withLock { $0 = boxed }
        if body == nil { _ = takePosted() }
    }
}
