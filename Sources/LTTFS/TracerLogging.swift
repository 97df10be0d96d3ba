import LTTTrace
import Logging

extension Logger {
    /// A tracer's (or its producer service's) log line, at the level that
    /// matches its `TracerLogLevel`.
    public func log(_ level: TracerLogLevel, _ message: String) {
        switch level {
        case .info: info("\(message)")
        case .warning: warning("\(message)")
        case .error: error("\(message)")
        }
    }
}
