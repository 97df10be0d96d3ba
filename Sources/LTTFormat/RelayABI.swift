/// The consumer ioctls of a buffer file (consumer-abi.md). The argument is
/// always a `__u32`, so the numbers encode their size and FUSE passes them
/// through as restricted ioctls.
public enum RelayIoctl: UInt32, Sendable, CaseIterable {
    /// `_IOR(0xF5, 0x00, __u32)`: take the next complete sub-buffer.
    case getSubbuffer = 0x8004_F500
    /// `_IOW(0xF5, 0x01, __u32)`: give it back with the cookie.
    case putSubbuffer = 0x4004_F501
    /// `_IOR(0xF5, 0x02, __u32)`: sub-buffers per buffer.
    case getSubbufferCount = 0x8004_F502
    /// `_IOR(0xF5, 0x03, __u32)`: bytes per sub-buffer.
    case getSubbufferSize = 0x8004_F503
    /// `_IOR(0xF5, 0x10, __u8[16])`, lttfs's own: a token, good once, with
    /// which the process that has this file open maps its buffer through
    /// the producers' socket (ReaderGrants). lttd never asks.
    case readerGrant = 0x8010_F510

    /// Bytes the ioctl answers.
    public var outputSize: Int {
        switch self {
        case .putSubbuffer: 0
        case .readerGrant: 16
        default: 4
        }
    }

    public var name: String {
        switch self {
        case .getSubbuffer: "RELAY_GET_SUBBUF"
        case .putSubbuffer: "RELAY_PUT_SUBBUF"
        case .getSubbufferCount: "RELAY_GET_N_SUBBUFS"
        case .getSubbufferSize: "RELAY_GET_SUBBUF_SIZE"
        case .readerGrant: "LTTFS_READER_GRANT"
        }
    }
}

/// What poll(2) reports on a buffer file: exactly one value, never a
/// combination (fuse-kernel-notes.md: lttd compares the mask with ==).
public enum RelayPollState: Sendable, Equatable {
    case none, readable, full, hungUp

    /// The poll(2) bit: 0, POLLIN, POLLPRI or POLLHUP.
    public var pollMask: Int16 {
        switch self {
        case .none: 0
        case .readable: 0x001   // POLLIN: a sub-buffer can be taken
        case .full: 0x002       // POLLPRI: full, and the writers wait or lose
        case .hungUp: 0x010     // POLLHUP: finalized and drained
        }
    }
}
