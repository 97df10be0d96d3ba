#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import SystemPackage

/// A Unix SOCK_SEQPACKET socket in the abstract namespace: whole messages,
/// each with descriptors attached if need be (SCM_RIGHTS), and the peer's
/// credentials as the kernel vouches for them (SO_PEERCRED, SO_PEERGROUPS).
/// What the lttfs server and its producer processes talk over.
public final class SeqpacketSocket: Sendable {
    public let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Listening on the abstract name `name` (EADDRINUSE: taken).
    public static func listen(name: String) throws(Errno) -> SeqpacketSocket {
        SeqpacketSocket(descriptor: try systemCall { lttfs_seqpacket_listen(name) })
    }

    /// Connected to the abstract name `name` (ECONNREFUSED: nobody listens).
    public static func connect(name: String) throws(Errno) -> SeqpacketSocket {
        SeqpacketSocket(descriptor: try systemCall { lttfs_seqpacket_connect(name) })
    }

    /// The next connection (blocks; EINVAL once `shutdown` was called).
    public func accept() throws(Errno) -> SeqpacketSocket {
        SeqpacketSocket(descriptor: try systemCall { lttfs_accept_cloexec(descriptor) })
    }

    /// Whether the other end closed (its process died or let go): the
    /// hang-up that poll(2) reports for a connected Unix socket whose peer
    /// is gone, seen now, without reading anything.
    public var peerHasClosed: Bool {
        var slot = pollfd(fd: descriptor, events: 0, revents: 0)
        return poll(&slot, 1, 0) == 1 && slot.revents & Int16(POLLHUP | POLLERR) != 0
    }

    /// Ends the socket both ways: a blocked accept or receive returns.
    public func shutdown() {
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Sends one message with `descriptors` (at most 253).
    public func send(_ bytes: [UInt8], descriptors: [Int32] = []) throws(Errno) {
        // The C side retries EINTR; errno is read right after the call.
        let sent = bytes.withUnsafeBytes { raw in
            descriptors.withUnsafeBufferPointer { fds in
                lttfs_send_with_fds(descriptor, raw.baseAddress, UInt(raw.count), fds.baseAddress, Int32(fds.count))
            }
        }
        if sent < 0 { throw Errno(rawValue: errno) }
        guard sent == bytes.count else { throw .messageTooLong }
    }

    /// One message of at most `capacity` bytes and `descriptorCapacity`
    /// descriptors (a longer one is refused: EMSGSIZE, its descriptors
    /// closed). Empty bytes: the peer closed. The descriptors are the
    /// caller's to close.
    public func receive(capacity: Int, descriptorCapacity: Int = 0) throws(Errno) -> (bytes: [UInt8], descriptors: [Int32]) {
        var bytes = [UInt8](repeating: 0, count: capacity)
        var fds = [Int32](repeating: -1, count: max(1, descriptorCapacity))
        var count: Int32 = 0
        let received = bytes.withUnsafeMutableBytes { raw in
            fds.withUnsafeMutableBufferPointer { f in
                lttfs_recv_with_fds(descriptor, raw.baseAddress, UInt(raw.count), f.baseAddress, Int32(descriptorCapacity), &count)
            }
        }
        if received < 0 { throw Errno(rawValue: errno) }
        return (Array(bytes[0..<received]), Array(fds[0..<Int(count)]))
    }

    /// The peer's PID, UID and GID, in this process's namespaces.
    public func peerCredentials() throws(Errno) -> (pid: pid_t, uid: uid_t, gid: gid_t) {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        _ = try systemCall { lttfs_peer_credentials(descriptor, &pid, &uid, &gid) }
        return (pid, uid, gid)
    }

    /// The peer's supplementary groups.
    public func peerGroups() throws(Errno) -> [gid_t] {
        var groups = [UInt32](repeating: 0, count: 64)
        var n = groups.withUnsafeMutableBufferPointer { lttfs_peer_groups(descriptor, $0.baseAddress, Int32($0.count)) }
        if n > groups.count {
            groups = [UInt32](repeating: 0, count: Int(n))
            n = groups.withUnsafeMutableBufferPointer { lttfs_peer_groups(descriptor, $0.baseAddress, Int32($0.count)) }
        }
        if n < 0 { throw Errno(rawValue: errno) }
        return Array(groups.prefix(Int(n)))
    }
}

extension SeqpacketSocket {
    /// A receive that waits longer fails (EAGAIN) instead of waiting on.
    public func setReceiveTimeout(milliseconds: Int) {
        var limit = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }
}
