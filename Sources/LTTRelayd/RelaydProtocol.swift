/// The lttng-relayd network protocol (lttng-tools 2.13's consumer side:
/// `src/common/sessiond-comm/relayd.h`, `src/common/relayd/relayd.c`), as
/// much as a consumer streaming one CTF trace needs. Everything is
/// big-endian and packed. A control command is a 24-byte header
/// (`lttcomm_relayd_hdr`) and its payload; its reply is a bare struct whose
/// size the command decides. The data connection carries packets behind a
/// 32-byte header (`lttcomm_relayd_data_hdr`) and is never answered.
enum RelaydCommand: UInt32 {
    case addStream = 1
    case createSession = 2
    case version = 5
    case sendMetadata = 6
    case closeStream = 7
    case dataPending = 8
    case sendIndex = 13
    case streamsSent = 16
    case createTraceChunk = 19
    case closeTraceChunk = 20
}

/// `LTTNG_OK`: every other code is a refusal.
let relaydOK: UInt32 = 10

/// The protocol version announced: 2.13, as lttng 2.13's session daemon
/// does (2.11 and later: variable-length CREATE_SESSION and ADD_STREAM,
/// trace chunks, 80-byte indexes).
let relaydProtocolMajor: UInt32 = 2
let relaydProtocolMinor: UInt32 = 13

/// Big-endian bytes, appended field by field.
struct BigEndianBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
    /// A string and its NUL.
    mutating func cString(_ s: String) {
        bytes.append(contentsOf: Array(s.utf8))
        bytes.append(0)
    }

    /// The command header and this payload.
    func command(_ command: RelaydCommand) -> [UInt8] {
        var header = BigEndianBytes()
        header.u64(0)                       // circuit_id: unused
        header.u64(UInt64(bytes.count))     // data_size
        header.u32(command.rawValue)
        header.u32(0)                       // cmd_version: unused
        return header.bytes + bytes
    }
}

/// Reads a reply's big-endian fields.
struct BigEndianReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func u32() -> UInt32 {
        defer { offset += 4 }
        return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() -> UInt64 {
        defer { offset += 8 }
        return bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// `lttcomm_relayd_index` (index format 1.1): what a live reader needs of a
/// packet, sent on the control connection after the packet itself.
struct RelaydIndex {
    var relayStreamID: UInt64
    var netSequenceNumber: UInt64
    /// Bits. 0 makes it a beacon: no packet, "nothing before timestampEnd".
    var packetSize: UInt64
    var contentSize: UInt64
    var timestampBegin: UInt64
    var timestampEnd: UInt64
    var eventsDiscarded: UInt64
    /// The CTF stream class id.
    var streamClassID: UInt64
    var streamInstanceID: UInt64
    var packetSequenceNumber: UInt64

    var payload: BigEndianBytes {
        var b = BigEndianBytes()
        for v in [relayStreamID, netSequenceNumber, packetSize, contentSize, timestampBegin, timestampEnd,
                  eventsDiscarded, streamClassID, streamInstanceID, packetSequenceNumber] {
            b.u64(v)
        }
        return b
    }
}
