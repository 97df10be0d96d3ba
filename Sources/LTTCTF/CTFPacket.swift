import LTTFormat

/// The binary layout of the CTF 1.8 packets lttfs writes, and the encoders
/// for them. The metadata (`CTFMetadata`) declares exactly this layout; the
/// two are kept side by side here and there and tested against babeltrace2.
///
/// Every field is byte-aligned ("packed", as LTTng's CTF is), in the
/// trace's byte order (the machine's: LTT traces are native-order):
///
///     packet header   magic u32, uuid u8[16], stream_id u32          24 bytes
///     packet context  timestamp_begin u64, timestamp_end u64,
///                     content_size u64, packet_size u64 (bits),
///                     packet_seq_num u64, events_discarded u32,
///                     cpu_id u32                                      48 bytes
///     events          header, payload (the LTT payload's bytes, as they were)
///     padding         to a multiple of 8 bytes
///
/// An event header is LTTng's compact one: a 5-bit id and the clock's low
/// 27 bits in one 32-bit word when the id is below 31 and the clock moved
/// less than 2^27 ticks since the packet's previous event (or its
/// `timestamp_begin`), else 31 in the 5 bits followed by the id (u32) and
/// the full clock (u64): 13 bytes.
///
/// The payload is copied byte for byte: LTT aligns each integer to
/// min(size, alignment) from a payload start aligned to the largest of
/// them, and CTF aligns each integer to the same from the packet start; a
/// payload that starts at a multiple of its largest alignment in both
/// (packets start at multiples of 8) has the same padding in both.
public enum CTFPacket {
    public static let magic: UInt32 = 0xC1FC_1FC1

    public enum Field {
        public static let magic = 0
        public static let uuid = 4
        public static let streamID = 20
        public static let timestampBegin = 24
        public static let timestampEnd = 32
        public static let contentSize = 40
        public static let packetSize = 48
        public static let sequenceNumber = 56
        public static let eventsDiscarded = 64
        public static let cpuID = 68
    }

    /// Header and context: where the first event starts.
    public static let headerSize = 72

    /// The 5-bit id that says "extended header follows".
    public static let extendedID: UInt16 = 31
    public static let compactClockBits: UInt64 = 27
    public static let compactHeaderSize = 4
    public static let extendedHeaderSize = 13

    /// The packet header and context, written at `p`.
    public struct Context: Sendable, Equatable {
        public var uuid: [UInt8]
        public var streamID: UInt32
        public var timestampBegin: UInt64
        public var timestampEnd: UInt64
        /// Bytes of header, context and events.
        public var contentBytes: Int
        /// Bytes of the whole packet: `contentBytes` padded to 8.
        public var packetBytes: Int { (contentBytes + 7) & ~7 }
        public var sequenceNumber: UInt64
        public var eventsDiscarded: UInt32
        public var cpuID: UInt32

        public init(uuid: [UInt8], streamID: UInt32, timestampBegin: UInt64, timestampEnd: UInt64, contentBytes: Int,
                    sequenceNumber: UInt64, eventsDiscarded: UInt32, cpuID: UInt32) {
            self.uuid = uuid
            self.streamID = streamID
            self.timestampBegin = timestampBegin
            self.timestampEnd = timestampEnd
            self.contentBytes = contentBytes
            self.sequenceNumber = sequenceNumber
            self.eventsDiscarded = eventsDiscarded
            self.cpuID = cpuID
        }

        public func write(to p: UnsafeMutableRawPointer) {
            p.storeBytes(of: CTFPacket.magic, toByteOffset: Field.magic, as: UInt32.self)
            for (i, byte) in uuid.prefix(16).enumerated() {
                p.storeBytes(of: byte, toByteOffset: Field.uuid + i, as: UInt8.self)
            }
            p.storeBytes(of: streamID, toByteOffset: Field.streamID, as: UInt32.self)
            p.storeBytes(of: timestampBegin, toByteOffset: Field.timestampBegin, as: UInt64.self)
            p.storeBytes(of: timestampEnd, toByteOffset: Field.timestampEnd, as: UInt64.self)
            p.storeBytes(of: UInt64(contentBytes) * 8, toByteOffset: Field.contentSize, as: UInt64.self)
            p.storeBytes(of: UInt64(packetBytes) * 8, toByteOffset: Field.packetSize, as: UInt64.self)
            p.storeBytes(of: sequenceNumber, toByteOffset: Field.sequenceNumber, as: UInt64.self)
            p.storeBytes(of: eventsDiscarded, toByteOffset: Field.eventsDiscarded, as: UInt32.self)
            p.storeBytes(of: cpuID, toByteOffset: Field.cpuID, as: UInt32.self)
        }

        /// Reads a context written by `write`; nil when `bytes` is shorter
        /// than a header or its magic is not CTF's.
        public init?(bytes: UnsafeRawBufferPointer) {
            guard bytes.count >= CTFPacket.headerSize,
                  bytes.loadUnaligned(fromByteOffset: Field.magic, as: UInt32.self) == CTFPacket.magic else { return nil }
            uuid = Array(bytes[Field.uuid..<Field.uuid + 16])
            streamID = bytes.loadUnaligned(fromByteOffset: Field.streamID, as: UInt32.self)
            timestampBegin = bytes.loadUnaligned(fromByteOffset: Field.timestampBegin, as: UInt64.self)
            timestampEnd = bytes.loadUnaligned(fromByteOffset: Field.timestampEnd, as: UInt64.self)
            let content = bytes.loadUnaligned(fromByteOffset: Field.contentSize, as: UInt64.self)
            contentBytes = Int(truncatingIfNeeded: content / 8)
            sequenceNumber = bytes.loadUnaligned(fromByteOffset: Field.sequenceNumber, as: UInt64.self)
            eventsDiscarded = bytes.loadUnaligned(fromByteOffset: Field.eventsDiscarded, as: UInt32.self)
            cpuID = bytes.loadUnaligned(fromByteOffset: Field.cpuID, as: UInt32.self)
        }

        /// The packet size the header states, in bytes.
        public static func packetBytes(in bytes: UnsafeRawBufferPointer) -> Int {
            Int(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: Field.packetSize, as: UInt64.self) / 8)
        }
    }

    /// The header of an event `id` at clock `clock`, written at `p`, when
    /// the previous clock value of the packet is `previous`; returns its
    /// size. Compact when babeltrace2 can rebuild the clock from 27 low bits
    /// (it assumes at most one wrap since the previous value).
    ///
    /// CTF packs bit fields from the least significant bit in little-endian
    /// traces and from the most significant in big-endian ones: the 5-bit id
    /// comes first either way.
    @inline(__always)
    public static func writeEventHeader(to p: UnsafeMutableRawPointer, id: UInt16, clock: UInt64, previous: UInt64) -> Int {
        if id < extendedID && clock >= previous && clock - previous < 1 << compactClockBits {
            #if _endian(little)
            let word = UInt32(id) | UInt32(truncatingIfNeeded: clock << 5)
            #else
            let word = UInt32(id) << 27 | (UInt32(truncatingIfNeeded: clock) & ((1 << 27) - 1))
            #endif
            p.storeBytes(of: word, as: UInt32.self)
            return compactHeaderSize
        }
        #if _endian(little)
        p.storeBytes(of: UInt8(extendedID), as: UInt8.self)
        #else
        p.storeBytes(of: UInt8(extendedID) << 3, as: UInt8.self)
        #endif
        p.storeBytes(of: UInt32(id), toByteOffset: 1, as: UInt32.self)
        p.storeBytes(of: clock, toByteOffset: 5, as: UInt64.self)
        return extendedHeaderSize
    }

    /// Reads an event header written by `writeEventHeader` at `offset` of
    /// `bytes` (nothing at or past `limit`): the id, the full clock given
    /// the previous one, and where the header ends.
    public static func readEventHeader(_ bytes: UnsafeRawBufferPointer, at offset: Int, limit: Int,
                                       previous: UInt64) -> (id: UInt16, clock: UInt64, end: Int)? {
        guard offset >= 0, offset + compactHeaderSize <= limit else { return nil }
        #if _endian(little)
        let first = bytes.loadUnaligned(fromByteOffset: offset, as: UInt8.self) & 0x1F
        #else
        let first = bytes.loadUnaligned(fromByteOffset: offset, as: UInt8.self) >> 3
        #endif
        if UInt16(first) < extendedID {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            #if _endian(little)
            let low = UInt64(word >> 5)
            #else
            let low = UInt64(word & ((1 << 27) - 1))
            #endif
            let mask: UInt64 = (1 << compactClockBits) - 1
            var clock = (previous & ~mask) | low
            if low < previous & mask { clock &+= 1 << compactClockBits }
            return (UInt16(first), clock, offset + compactHeaderSize)
        }
        guard offset + extendedHeaderSize <= limit else { return nil }
        let id = bytes.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)
        guard id <= UInt32(UInt16.max) else { return nil }
        return (UInt16(id), bytes.loadUnaligned(fromByteOffset: offset + 5, as: UInt64.self), offset + extendedHeaderSize)
    }
}
