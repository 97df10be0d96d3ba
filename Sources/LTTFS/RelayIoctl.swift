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

    public var name: String {
        switch self {
        case .getSubbuffer: "RELAY_GET_SUBBUF"
        case .putSubbuffer: "RELAY_PUT_SUBBUF"
        case .getSubbufferCount: "RELAY_GET_N_SUBBUFS"
        case .getSubbufferSize: "RELAY_GET_SUBBUF_SIZE"
        }
    }
}
