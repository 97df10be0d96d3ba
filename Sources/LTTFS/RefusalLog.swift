import LTTSystem
import LTTFormat
import LTTRelay
import Logging
import Synchronization

/// Logs refused requests, at most `burst` lines per second: a script that
/// loops on a refused write must not fill the disk with the same line.
/// What was held back is counted and said in the next line that is logged.
final class RefusalLog: Sendable {
    private struct Window {
        var start: UInt64 = 0
        var logged = 0
        var suppressed = 0
    }
    private let window = Locked(Window())
    private let logger: Logger
    let burst: Int

    init(logger: Logger, burst: Int = 20) {
        self.logger = logger
        self.burst = burst
    }

    /// Logs `message` (already escaped) at `level`, unless this second's
    /// burst is spent.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> String) {
        let now = MonotonicClock.now()
        let (held, firstHeld): (Int?, Bool) = window.withLock { w in
            if now &- w.start >= 1_000_000_000 {
                w.start = now
                w.logged = 0
            }
            guard w.logged < burst else {
                w.suppressed += 1
                return (nil, w.suppressed == 1)
            }
            w.logged += 1
            defer { w.suppressed = 0 }
            return (w.suppressed, false)
        }
        if firstHeld {
            logger.warning("more than \(burst) refusals in a second: the next ones are counted, not logged")
        }
        guard let held else { return }
        let note = held > 0 ? " (\(held) earlier refusals not logged)" : ""
        logger.log(level: level, "\(message())\(note)")
    }
}
