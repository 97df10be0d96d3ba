import Foundation
import Synchronization

/// A thread that runs a body every `interval` until stopped; `stop` wakes
/// it at once and joins it, so none is ever left behind. The tracer's
/// switch timers and the filesystem's poll notifier both run on one.
public final class PeriodicThread: @unchecked Sendable {
    private let condition = NSCondition()
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
                body()
                condition.lock()
                if running { _ = condition.wait(until: Date(timeIntervalSinceNow: interval)) }
            }
            condition.unlock()
            done.signal()
        }
        t.name = name
        thread = t
        t.start()
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
