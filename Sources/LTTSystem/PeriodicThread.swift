import Foundation
import Synchronization

/// A thread that runs a body every `interval` until stopped; `stop` wakes
/// it at once and joins it, so none is ever left behind. `kick` runs the
/// body now instead of at the next tick. The tracer's switch timers and
/// the filesystem's poll notifier both run on one.
public final class PeriodicThread: @unchecked Sendable {
    private let condition = NSCondition()
    /// A kick not yet served: further kicks cost one atomic operation.
    private let kicked = Atomic<Bool>(false)
    private var running = false
    private var thread: Thread?
    private var finished: DispatchSemaphore?
    public let name: String
    public let interval: TimeInterval

    public init(name: String, interval: TimeInterval) {
        self.name = name
        self.interval = interval
    }

    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// Starts the thread if it is not running; `body` runs at every tick.
    public func start(_ body: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !running else { return }
        running = true
        let done = DispatchSemaphore(value: 0)
        finished = done
        let t = Thread { [self] in
            condition.lock()
            while running {
                condition.unlock()
                kicked.store(false, ordering: .releasing)
                body()
                condition.lock()
                // A kick after the store above is seen here, or signals the
                // wait below (it takes the lock to signal).
                if running && !kicked.load(ordering: .acquiring) {
                    _ = condition.wait(until: Date(timeIntervalSinceNow: interval))
                }
            }
            condition.unlock()
            done.signal()
        }
        t.name = name
        thread = t
        t.start()
    }

    /// Runs the body as soon as possible (if the thread is running).
    public func kick() {
        guard !kicked.exchange(true, ordering: .acquiringAndReleasing) else { return }
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// Stops the thread and waits for it to end. Must not be called from
    /// the thread itself.
    public func stop() {
        condition.lock()
        guard running else {
            condition.unlock()
            return
        }
        running = false
        condition.broadcast()
        let done = finished
        condition.unlock()
        done?.wait()
        condition.lock()
        thread = nil
        finished = nil
        condition.unlock()
    }
}
