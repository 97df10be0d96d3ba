import Foundation
import Synchronization

/// The thread behind the channels' switch timers (the seed's per-channel
/// timer calling ltt_force_switch(FORCE_ACTIVE)). It exists only while some
/// active trace has a timer, ticks every `tick`, and `stop` joins it.
final class SwitchTimerThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var running = false
    private var thread: Thread?
    private var finished: DispatchSemaphore?
    static let tick: TimeInterval = 0.005

    /// Starts the thread if it is not running; `body` runs at every tick.
    func start(_ body: @escaping @Sendable () -> Void) {
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
                if running { _ = condition.wait(until: Date(timeIntervalSinceNow: Self.tick)) }
            }
            condition.unlock()
            done.signal()
        }
        t.name = "lttfs-switch-timer"
        thread = t
        t.start()
    }

    /// Stops the thread and waits for it to end. Must not be called from
    /// the thread itself.
    func stop() {
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
