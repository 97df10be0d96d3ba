/// The LTT 2.3 event header: a 32-bit word (5-bit id, 27 low clock bits)
/// followed, for the extended forms, by an explicit id, size and clock.
///
/// The engine needs its size (`size`, the seed's `ltt_get_header_size`)
/// to place an event, writes it into the reserved slot with `write`, and
/// readers decode it with `read`.
public enum EventHeaderForm: UInt8, Sendable, CaseIterable {
    /// id 0...28 in the word, nothing after it.
    case compact = 0
    /// 29: u16 id, u16 size (0xFFFF: u32 size follows), pad to 8, u64 clock.
    /// The seed's LTT_RFLAG_ID_SIZE_TSC, forced when the clock moved 2^27
    /// ticks or more since the buffer's last event.
    case idSizeTSC = 29
    /// 30: u16 id, u16 size (0xFFFF: u32 size follows). LTT_RFLAG_ID_SIZE.
    case idSize = 30
    /// 31: u16 id. LTT_RFLAG_ID, for ids that do not fit in 5 bits.
    case id = 31
}

public enum EventHeader {
    /// LTT_TSC_BITS: clock bits kept in the header word.
    public static let tscBits: UInt32 = 27
    public static let tscMask: UInt32 = (1 << 27) - 1
    /// LTT_FREE_EVENTS: ids below this fit in the compact form.
    public static let freeEvents: UInt16 = 29

    /// `ltt_get_header_size`: the bytes from `offset` to the end of the header
    /// of an event reserved there, and the padding before the header word.
    @inlinable @inline(__always)
    public static func size(at offset: UInt64, dataSize: UInt64, form: EventHeaderForm,
                            trace: TraceHeaderFields) -> (size: UInt64, beforeHeaderPadding: UInt64) {
        let padding = trace.padding(at: offset, forSize: 4)
        var o = offset &+ padding &+ 4
        switch form {
        case .compact:
            break
        case .idSizeTSC:
            o &+= 4
            if dataSize >= 0xFFFF { o &+= 4 }
            o &+= trace.padding(at: o, forSize: 8)
            o &+= 8
        case .idSize:
            o &+= 4
            if dataSize >= 0xFFFF { o &+= 4 }
        case .id:
            o &+= 2
        }
        return (o &- offset, padding)
    }

    /// `ltt_write_event_header`: writes the header at `offset` (the position
    /// after the padding) in the ring `base`, whose positions are taken modulo
    /// nothing: the caller passes the slot's own memory. Returns the position
    /// just after the header.
    @inlinable @inline(__always)
    public static func write(to base: UnsafeMutableRawPointer, at offset: UInt64, eventID: UInt16,
                             dataSize: UInt64, tsc: UInt64, form: EventHeaderForm,
                             trace: TraceHeaderFields) -> UInt64 {
        let idBits: UInt32 = form == .compact ? UInt32(eventID) : UInt32(form.rawValue)
        let word = (idBits << tscBits) | (UInt32(truncatingIfNeeded: tsc) & tscMask)
        var o = offset
        base.storeBytes(of: word, toByteOffset: Int(o), as: UInt32.self)
        o &+= 4
        switch form {
        case .compact:
            break
        case .idSizeTSC, .idSize:
            let small = UInt16(min(dataSize, 0xFFFF))
            base.storeBytes(of: eventID, toByteOffset: Int(o), as: UInt16.self)
            base.storeBytes(of: small, toByteOffset: Int(o) + 2, as: UInt16.self)
            o &+= 4
            if small == 0xFFFF {
                base.storeBytes(of: UInt32(truncatingIfNeeded: dataSize), toByteOffset: Int(o), as: UInt32.self)
                o &+= 4
            }
            if form == .idSizeTSC {
                o &+= trace.padding(at: o, forSize: 8)
                base.storeBytes(of: tsc, toByteOffset: Int(o), as: UInt64.self)
                o &+= 8
            }
        case .id:
            base.storeBytes(of: eventID, toByteOffset: Int(o), as: UInt16.self)
            o &+= 2
        }
        return o
    }

    /// The form a writer asks for before the clock check: compact when the id
    /// fits in 5 bits, else the explicit id; `sized` asks for the explicit size.
    @inlinable @inline(__always)
    public static func requestedForm(eventID: UInt16, sized: Bool) -> EventHeaderForm {
        if sized { return .idSize }
        return eventID < freeEvents ? .compact : .id
    }
}

extension EventHeader {
    /// One event header as a reader finds it.
    public struct Decoded: Sendable, Equatable {
        /// The id: the word's 5 bits, or the explicit u16 of forms 29 to 31.
        public var eventID: UInt16
        /// The word's top bits: 0...28 (compact), 29, 30 or 31.
        public var form: EventHeaderForm
        /// The explicit payload size (forms 29 and 30).
        public var dataSize: Int?
        /// The full clock (form 29); else only `tscLow` is known.
        public var fullTSC: UInt64?
        /// The clock's 27 low bits, from the word.
        public var tscLow: UInt32
        /// Where the header ends, relative to the sub-buffer start.
        public var end: Int

        public init(eventID: UInt16, form: EventHeaderForm, dataSize: Int?, fullTSC: UInt64?, tscLow: UInt32, end: Int) {
            self.eventID = eventID
            self.form = form
            self.dataSize = dataSize
            self.fullTSC = fullTSC
            self.tscLow = tscLow
            self.end = end
        }

        /// The event's full clock, given the previous event's (or the
        /// sub-buffer's begin clock): the full value, or the 27 low bits
        /// with at most one wrap since `previous`.
        public func clock(after previous: UInt64) -> UInt64 {
            if let fullTSC { return fullTSC }
            var next = (previous & ~UInt64(EventHeader.tscMask)) | UInt64(tscLow)
            if next < previous { next &+= 1 << UInt64(EventHeader.tscBits) }
            return next
        }
    }

    /// Reads the header of the event at `offset` (relative to the sub-buffer
    /// that starts at `base` in `bytes`, before the header's padding),
    /// reading nothing at or past `limit` (absolute).
    public static func read(from bytes: ByteReader, base: Int, offset: Int, limit: Int,
                            trace: TraceHeaderFields) throws(ByteReader.OutOfBounds) -> Decoded {
        var o = offset + Int(trace.padding(at: UInt64(offset), forSize: 4))
        let word = try bytes.load(base + o, as: UInt32.self, limit: limit)
        o += 4
        let top = UInt8(word >> tscBits)
        var decoded = Decoded(eventID: UInt16(top), form: EventHeaderForm(rawValue: top) ?? .compact,
                              dataSize: nil, fullTSC: nil, tscLow: word & tscMask, end: 0)
        switch decoded.form {
        case .idSizeTSC, .idSize:
            decoded.eventID = try bytes.load(base + o, as: UInt16.self, limit: limit)
            var size = Int(try bytes.load(base + o + 2, as: UInt16.self, limit: limit))
            o += 4
            if size == 0xFFFF {
                size = Int(try bytes.load(base + o, as: UInt32.self, limit: limit))
                o += 4
            }
            decoded.dataSize = size
            if decoded.form == .idSizeTSC {
                o += Int(trace.padding(at: UInt64(o), forSize: 8))
                decoded.fullTSC = try bytes.load(base + o, as: UInt64.self, limit: limit)
                o += 8
            }
        case .id:
            decoded.eventID = try bytes.load(base + o, as: UInt16.self, limit: limit)
            o += 2
        case .compact:
            break
        }
        decoded.end = o
        return decoded
    }
}
