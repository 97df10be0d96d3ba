import LTTSystem

/// Where buffers post their news (a delivered sub-buffer, a finalize) for
/// the threads that wake their readers: the way a wake-up goes, one way,
/// from producer to notifier.
///
///     producer: commit delivers  ->  RelayBuffer.flagReaders
///                                ->  doorbell.post(buffer)   (after the buffer lock)
///     notifier: subscription.takePosted() -> wake the pollers of each buffer
///
/// The seed's producers never wake a reader themselves: they set a flag
/// and a timer (`ltt_relay_async_wakeup_chan`) does the waking, since
/// wake_up() cannot run in every context a probe fires in. Here the flag is
/// the buffer's place in each subscription's posted set, and the first post
/// after a subscriber took its set calls that subscriber, so its notifier
/// runs at once instead of at its next tick: a buffer that fills faster
/// than the timer's period would otherwise wait for its consumer with
/// nothing to drain it.
///
/// Each server that serves the tracer subscribes once (a tracer may be
/// mounted twice); a post reaches every subscription. It costs one mutex
/// per delivered sub-buffer, never per event, allocates nothing once the
/// subscription's set has grown to the number of buffers (room for 256 is
/// made at the start), and calls each subscriber at most once per pass.
public final class ReaderDoorbell: Sendable {
    /// One subscriber: its call, and the buffers posted since it last took
    /// them, by identity only: a post holds no reference (a destroyed
    /// trace's buffer and its share of the memory budget go at once, and no
    /// reference count is touched). Whoever takes them finds the buffer
    /// through something that holds it (an open file); an identity reused
    /// by a newer buffer at worst wakes its poller once too often, which
    /// polls again and sees the state.
    public final class Subscription: Sendable {
        fileprivate let call: @Sendable () -> Void
        private let posted = Locked<Set<ObjectIdentifier>>([])
        private weak let doorbell: ReaderDoorbell?

        fileprivate init(doorbell: ReaderDoorbell, call: @escaping @Sendable () -> Void) {
            self.doorbell = doorbell
            self.call = call
            posted.withLock { $0.reserveCapacity(256) }
        }

        /// Adds `buffer`; true if it is the first since the last take.
        fileprivate func add(_ buffer: RelayBuffer) -> Bool {
            posted.withLock { p -> Bool in
                let wasEmpty = p.isEmpty
                p.insert(ObjectIdentifier(buffer))
                return wasEmpty
            }
        }

        /// Every buffer posted since the last call (the notifier's pass).
        public func takePosted() -> [ObjectIdentifier] {
            posted.withLock { p in
                defer { p.removeAll(keepingCapacity: true) }
                return Array(p)
            }
        }

        /// Ends the subscription: posts no longer reach it.
        public func cancel() {
            doorbell?.remove(self)
        }
    }

    private let subscriptions = Locked<[Subscription]>([])

    public init() {}

    /// `buffer` has news: every subscription keeps it, and a subscriber
    /// whose set was empty is called. With no subscriber nothing is kept
    /// (a reader that comes later sees the state when it polls).
    func post(_ buffer: RelayBuffer) {
        let current = subscriptions.withLock { $0 }
        for subscription in current where subscription.add(buffer) {
            subscription.call()
        }
    }

    /// Subscribes `call`, made at the first post after each take.
    public func subscribe(_ call: @escaping @Sendable () -> Void) -> Subscription {
        let subscription = Subscription(doorbell: self, call: call)
        subscriptions.withLock { $0.append(subscription) }
        return subscription
    }

    private func remove(_ subscription: Subscription) {
        subscriptions.withLock { $0.removeAll { $0 === subscription } }
    }
}
