#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import SystemPackage

/// The calls a relay consumer makes that swift-system has no wrapper for:
/// the buffer file's ioctls (`_IOR`/`_IOW` with a `__u32`), splice(2) and
/// the pipe's size. Every one retries EINTR and throws the errno it set.
extension FileDescriptor {
    /// An ioctl whose argument is a `__u32` (read or written by the call).
    public func ioctl(_ request: UInt32, _ argument: inout UInt32) throws(Errno) {
        _ = try systemCall { lttfs_ioctl_u32(rawValue, UInt(request), &argument) }
    }

    /// An ioctl whose argument is `argument.count` bytes (the size its
    /// number encodes), read or written by the call.
    public func ioctl(_ request: UInt32, bytes argument: UnsafeMutableRawBufferPointer) throws(Errno) {
        _ = try systemCall { lttfs_ioctl_bytes(rawValue, UInt(request), argument.baseAddress) }
    }

    /// An ioctl that takes no argument.
    public func ioctl(_ request: UInt32) throws(Errno) {
        _ = try systemCall { lttfs_ioctl_none(rawValue, UInt(request)) }
    }

    /// splice(2) from this descriptor at an explicit `offset` (advanced by
    /// the bytes moved), as lttd reads a buffer file, into `destination`.
    public func splice(from offset: inout Int64, to destination: FileDescriptor, length: Int,
                       flags: UInt32 = UInt32(LTTFS_SPLICE_F_MOVE)) throws(Errno) -> Int {
        var position = offset
        let moved = try systemCall { lttfs_splice(rawValue, &position, destination.rawValue, UInt(length), flags) }
        offset = position
        return moved
    }

    /// splice(2) from this descriptor (a pipe: no offset) into `destination`.
    public func splice(to destination: FileDescriptor, length: Int,
                       flags: UInt32 = UInt32(LTTFS_SPLICE_F_MOVE)) throws(Errno) -> Int {
        try systemCall { lttfs_splice(rawValue, nil, destination.rawValue, UInt(length), flags) }
    }

    /// F_SETPIPE_SZ: the pipe's capacity, in bytes (rounded up by the kernel).
    @discardableResult
    public func setPipeSize(_ bytes: Int) throws(Errno) -> Int {
        Int(try systemCall { lttfs_set_pipe_size(rawValue, Int32(bytes)) })
    }

    /// Writes all of `bytes` (swift-system's `writeAll`, with its error typed).
    public func writeFully(_ bytes: [UInt8]) throws(Errno) {
        _ = try typedErrno { try writeAll(bytes) }
    }

    /// Writes all of `bytes`.
    public func writeFully(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        _ = try typedErrno { try writeAll(bytes) }
    }
}

/// poll(2) over `descriptors`, at most `milliseconds` (-1: no limit).
/// EINTR ends the call with no descriptor ready, so a caller looping on it
/// sees its stop flag at once.
public func poll(_ descriptors: inout [pollfd], milliseconds: Int32) throws(Errno) -> Int {
    do {
        return Int(try systemCall(retryOnInterrupt: false) {
            Glibc.poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        })
    } catch .interrupted {
        return 0
    }
}
