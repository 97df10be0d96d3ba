#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import SystemPackage

/// Runs a system call that returns -1 and sets errno on failure, the one
/// place where errno is read: right after the call that set it, before
/// anything else can overwrite it. EINTR is retried unless the caller
/// wants to see it (a wait that a signal must be able to end).
@inlinable @inline(__always)
public func systemCall<Result: FixedWidthInteger>(retryOnInterrupt: Bool = true,
                                                  _ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno(rawValue: errno)
        if error == .interrupted && retryOnInterrupt { continue }
        throw error
    }
}

/// swift-system's calls throw only `Errno`, but untyped: this types them
/// (anything else, which they never throw, would be EIO).
@inlinable
public func typedErrno<T>(_ body: () throws -> T) throws(Errno) -> T {
    do { return try body() } catch let error as Errno { throw error } catch { throw .ioError }
}

extension Errno {
    /// The symbolic name, "EINVAL", for logs that a user can grep the
    /// manual pages with; "errno N" for a number glibc does not name.
    public var name: String {
        lttfs_errno_name(rawValue).map { String(cString: $0) } ?? "errno \(rawValue)"
    }

    /// "Invalid argument (EINVAL)": strerror and the name.
    public var explained: String { "\(description) (\(name))" }
}
