import LTTFormat
import LTTReader

/// One LTT sub-buffer re-framed as one CTF packet (`CTFPacket`): the
/// header becomes the packet header and context, each event gets a CTF
/// event header and keeps its payload bytes. Only what babeltrace2 can read
/// is written: an event whose id is not declared, whose clock goes back or
/// that cannot be read is left out, and reported.
struct PacketConversion {
    /// What a stream carries from one packet to the next.
    struct StreamState {
        var sequenceNumber: UInt64 = 0
        /// The previous packet's end clock: a packet may not start before it.
        var lastEnd: UInt64 = 0
        var lastDiscarded: UInt32 = 0
        var lastCorrupted: UInt32 = 0
        /// Sub-buffers seen, for problems' positions.
        var subbuffers = 0
    }

    enum Outcome {
        /// A packet of `bytes` bytes is at the start of the output buffer.
        case packet(bytes: Int, events: Int)
        /// An event id is not declared (yet): nothing was written or
        /// changed; a final conversion leaves such events out.
        case needsDeclarations
    }

    /// Converts the sub-buffer `walk` of a stream into `output` (at least
    /// `capacity(for:)` bytes). `final`: undeclared events are left out
    /// instead of waiting for their declarations. Problems and notes are
    /// told as they are found: when the outcome is `.needsDeclarations`, the
    /// caller forgets them (the conversion is done again later).
    ///
    /// `isDeclared` tells an id the metadata declared with a format that
    /// cannot be read (no shape, but nothing to wait for) from one not
    /// declared yet.
    static func convert(_ walk: SubbufferWalk, shapes: PayloadShapes, isDeclared: (UInt16) -> Bool,
                        streamID: UInt32, cpu: UInt32, uuid: [UInt8], final: Bool, state: inout StreamState,
                        output: UnsafeMutableRawBufferPointer, problem: (Int?, String) -> Void,
                        note: (Int?, String) -> Void) -> Outcome {
        let h = walk.header
        let out = output.baseAddress!
        let begin = max(h.cycleCountBegin, state.lastEnd)
        if h.cycleCountBegin < state.lastEnd {
            problem(SubbufferHeader.Field.cycleCountBegin,
                    "sub-buffer begins at clock \(h.cycleCountBegin), before the previous one's end \(state.lastEnd)")
        }
        var o = CTFPacket.headerSize
        var previous = begin
        var events = 0
        var cursor = walk.events()
        // The bytes stay where they are for the whole walk (the walk holds them).
        return walk.bytes.bytes.withUnsafeBytes { raw -> Outcome in
        let source = raw.baseAddress!
        walking: while true {
            switch cursor.next(shapes) {
            case .end:
                break walking
            case .stopped(let p):
                // Nothing of the stream's state has changed yet: a packet
                // waiting for declarations is converted again from scratch.
                if let id = p.undeclaredID, !final && !isDeclared(id) { return .needsDeclarations }
                problem(p.offset, explained(p, isDeclared) + ": the rest of the sub-buffer is left out")
                break walking
            case .skipped(let p):
                if let id = p.undeclaredID, !final && !isDeclared(id) { return .needsDeclarations }
                problem(p.offset, explained(p, isDeclared) + ": event left out")
            case .event(let e):
                if e.clock < previous {
                    problem(walk.base + e.start, "clock goes back from \(previous) to \(e.clock): event left out")
                    continue
                }
                if let p = e.problem { problem(p.offset, p.message) }
                o += CTFPacket.writeEventHeader(to: out + o, id: e.id, clock: e.clock, previous: previous)
                previous = e.clock
                let largest = PayloadLayout.largestAlign(maxIntegerSize: shapes.maxIntegerSize(e.id),
                                                         alignment: Int(walk.trace.alignment))
                let padding = (largest - o % largest) % largest
                (out + o).initializeMemory(as: UInt8.self, repeating: 0, count: padding)
                o += padding
                let count = e.payloadEnd - e.payloadStart
                (out + o).copyMemory(from: source + walk.base + e.payloadStart, byteCount: count)
                o += count
                events += 1
            }
        }
        var discarded = h.eventsLost
        if discarded < state.lastDiscarded {
            problem(SubbufferHeader.Field.eventsLost, "events_lost went down from \(state.lastDiscarded) to \(discarded)")
            discarded = state.lastDiscarded
        }
        if h.subbufCorrupt > state.lastCorrupted {
            note(SubbufferHeader.Field.subbufCorrupt,
                    "\(h.subbufCorrupt - state.lastCorrupted) corrupted sub-buffer(s) before this one (subbuf_corrupt \(h.subbufCorrupt))")
        }
        let end = max(h.cycleCountEnd, previous, begin)
        let context = CTFPacket.Context(uuid: uuid, streamID: streamID, timestampBegin: begin, timestampEnd: end,
                                        contentBytes: o, sequenceNumber: state.sequenceNumber,
                                        eventsDiscarded: discarded, cpuID: cpu)
        context.write(to: out)
        (out + o).initializeMemory(as: UInt8.self, repeating: 0, count: context.packetBytes - o)
        state.sequenceNumber += 1
        state.lastEnd = end
        state.lastDiscarded = discarded
        state.lastCorrupted = max(state.lastCorrupted, h.subbufCorrupt)
        return .packet(bytes: context.packetBytes, events: events)
        }
    }

    /// An id without a shape is either not declared, or declared with a
    /// format that cannot be read.
    static func explained(_ p: SubbufferWalk.Problem, _ isDeclared: (UInt16) -> Bool) -> String {
        guard let id = p.undeclaredID, isDeclared(id) else { return p.message }
        return "event id \(id) is declared with a format that cannot be read"
    }

    /// Room enough for the packet of an LTT sub-buffer of `size` bytes: an
    /// event takes at least 4 bytes in LTT (a compact header, no payload)
    /// and at most 13 bytes of header and 7 of padding before the same
    /// payload in CTF, 5 times as much.
    static func capacity(for size: Int) -> Int { CTFPacket.headerSize + 5 * size + 64 }
}
