import LTTSystem
import SystemPackage

/// Why a CTF trace could not be written.
public enum CTFError: Error, Equatable, Sendable, CustomStringConvertible {
    case outputNotEmpty(String)
    case cannotCreate(String, Errno)
    case cannotWrite(String, Errno)
    /// The destination failed otherwise (a relay daemon: why).
    case destination(String)

    public var description: String {
        switch self {
        case .outputNotEmpty(let p): "\(p): the output directory exists and is not empty"
        case .cannotCreate(let p, let e): "\(p): cannot create the directory: \(e.explained)"
        case .cannotWrite(let p, let e): "\(p): cannot write: \(e.explained)"
        case .destination(let why): why
        }
    }
}
