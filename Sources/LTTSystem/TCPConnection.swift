#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import SystemPackage

/// A TCP client connection whose every wait is bounded: the connect by
/// `connectTimeout`, each read and write by `ioTimeout` (EAGAIN when one
/// runs out). A peer that goes away is an error (EPIPE, ECONNRESET, or
/// `closedByPeer`), never SIGPIPE.
public final class TCPConnection: Sendable {
    /// Why a connection failed.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The host name did not resolve.
        case resolve(host: String, reason: String)
        /// A system call failed.
        case system(Errno)
        /// The peer closed the connection (end of file while reading).
        case closedByPeer

        public var description: String {
            switch self {
            case .resolve(let host, let reason): "cannot resolve \(host): \(reason)"
            case .system(let e): e.explained
            case .closedByPeer: "the peer closed the connection"
            }
        }
    }

    public let descriptor: FileDescriptor
    public let peer: String

    private init(descriptor: FileDescriptor, peer: String) {
        self.descriptor = descriptor
        self.peer = peer
    }

    deinit { try? descriptor.close() }

    public static func connect(host: String, port: UInt16, connectTimeoutMilliseconds: Int32 = 5_000,
                               ioTimeoutMilliseconds: Int32 = 30_000) throws(Failure) -> TCPConnection {
        var resolveError: Int32 = 0
        do throws(Errno) {
            let fd = try systemCall {
                lttfs_tcp_connect(host, String(port), connectTimeoutMilliseconds, ioTimeoutMilliseconds, &resolveError)
            }
            return TCPConnection(descriptor: FileDescriptor(rawValue: fd), peer: "\(host):\(port)")
        } catch {
            if resolveError != 0 {
                throw .resolve(host: host, reason: lttfs_resolve_error(resolveError).map { String(cString: $0) } ?? "error \(resolveError)")
            }
            throw .system(error)
        }
    }

    /// Sends all of `bytes`.
    public func send(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            do throws(Errno) {
                sent += try systemCall {
                    lttfs_send_nosignal(descriptor.rawValue, bytes.baseAddress! + sent, UInt(bytes.count - sent))
                }
            } catch {
                throw .system(error)
            }
        }
    }

    public func send(_ bytes: [UInt8]) throws(Failure) {
        try bytes.withUnsafeBytes { raw in Result { () throws(Failure) in try send(raw) } }.get()
    }

    /// Reads exactly `count` bytes.
    public func receive(exactly count: Int) throws(Failure) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, count), alignment: 8)
        defer { buffer.deallocate() }
        var got = 0
        while got < count {
            let n: Int
            do throws(Errno) {
                n = try systemCall { read(descriptor.rawValue, buffer.baseAddress! + got, count - got) }
            } catch {
                throw .system(error)
            }
            if n == 0 { throw .closedByPeer }
            got += n
        }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// Ends the connection both ways: the peer reads end of file, and any
    /// later send or receive here fails. The descriptor stays open (no
    /// other file can take its number) until the connection is released.
    public func shutdown() {
        _ = Glibc.shutdown(descriptor.rawValue, Int32(SHUT_RDWR))
    }
}
