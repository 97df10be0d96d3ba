import LTTSystem
import Logging

/// Logs refused requests, at most `burst` lines per second: a script that
/// loops on a refused write must not fill the disk with the same line.
/// What was held back is counted and said in the next line that is logged.
final class RefusalLog: Sendable {
    private let limit: LogRateLimit
    private let logger: Logger

    init(logger: Logger, burst: Int = 20) {
        self.logger = logger
        limit = LogRateLimit(perSecond: burst)
    }

    /// Logs `message` (already escaped) at `level`, unless this second's
    /// burst is spent.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> String) {
        switch limit.admit() {
        case .hold(first: true):
            logger.warning("more than \(limit.perSecond) refusals in a second: the next ones are counted, not logged")
        case .hold(first: false):
            break
        case .log(let held):
            let note = held > 0 ? " (\(held) earlier refusals not logged)" : ""
            logger.log(level: level, "\(message())\(note)")
        }
    }
}
