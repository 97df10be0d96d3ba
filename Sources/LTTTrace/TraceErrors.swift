import SystemPackage

/// Why a tracer operation was refused. Each maps to the errno that the
/// filesystem returns from write(2) (filesystem.md's table).
public enum TraceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a number, not an accepted word, zero or negative, too large.
    case invalidValue(String)
    /// Trace name empty, with '/', too long, or starting with '.'.
    case invalidName(String)
    case traceExists(String)
    case traceNotFound(String)
    case channelNotFound(String)
    case markerNotFound(String)
    /// A channel setting after alloc, alloc twice.
    case busy(String)
    case unknownTransport(String)
    /// An operation the trace's state does not allow (start before alloc).
    case wrongState(String)
    case invalidFormat(String)
    /// The marker's Swift argument types do not match its format string.
    case typeMismatch(String)
    case tooManyEvents(String)
    /// The buffers would pass the server's buffer memory limit, or the
    /// system refused the memory.
    case outOfMemory(String)
    /// A producer process's tracer: traces are the server's to control.
    case notTheServer(String)
    /// The server of a producer process refused, or could not be asked.
    case server(String)

    public var errno: Errno {
        switch self {
        case .invalidValue, .invalidName, .unknownTransport, .invalidFormat, .typeMismatch: .invalidArgument
        case .traceExists: .fileExists
        case .traceNotFound, .channelNotFound, .markerNotFound: .noSuchFileOrDirectory
        case .busy: .resourceBusy
        case .wrongState: .notPermitted
        case .tooManyEvents: .noSpace
        case .outOfMemory: .noMemory
        case .notTheServer: .notPermitted
        case .server: .socketNotConnected
        }
    }

    public var description: String {
        switch self {
        case .invalidValue(let s): "invalid value: \(s)"
        case .invalidName(let s): "invalid name: \(s)"
        case .traceExists(let s): "trace \(s) already exists"
        case .traceNotFound(let s): "no trace named \(s)"
        case .channelNotFound(let s): "no channel named \(s)"
        case .markerNotFound(let s): "no marker named \(s)"
        case .busy(let s): "busy: \(s)"
        case .unknownTransport(let s): "unknown transport \(s) (this server has relay-locked)"
        case .wrongState(let s): "not now: \(s)"
        case .invalidFormat(let s): "invalid format: \(s)"
        case .typeMismatch(let s): "argument types do not match the format: \(s)"
        case .tooManyEvents(let s): "too many markers: \(s)"
        case .outOfMemory(let s): "out of buffer memory: \(s)"
        case .notTheServer(let s): "traces are controlled by the lttfs server, not by a producer: \(s)"
        case .server(let s): "the lttfs server: \(s)"
        }
    }
}
