import LTTFormat

/// One sub-buffer of an LTT 2.3 buffer file, checked and walked event by
/// event: the one place that knows what a sound sub-buffer is. The reader
/// decodes what it finds; the CTF converter re-frames it.
///
/// Offsets in problems are relative to the start of `bytes` (the caller
/// adds where the sub-buffer sits in its file).
public struct SubbufferWalk {
    /// A problem and where it is.
    public struct Problem: Error, Sendable, Equatable {
        public let offset: Int?
        public let message: String
        /// The event id, when the problem is that it is not declared (a
        /// writer may wait for its declaration).
        public let undeclaredID: UInt16?
        public init(offset: Int?, _ message: String, undeclaredID: UInt16? = nil) {
            self.offset = offset
            self.message = message
            self.undeclaredID = undeclaredID
        }
    }

    public let bytes: ByteReader
    /// Where the sub-buffer starts in `bytes`, and its size.
    public let base: Int
    public let size: Int
    public let header: SubbufferHeader
    /// Where the events end (`size - lost_size`), relative to `base`.
    public let dataEnd: Int
    public let trace: TraceHeaderFields

    /// Checks the header of the `size`-byte sub-buffer at `base`; throws the
    /// first thing that makes its events unreadable. `trace` is the trace's
    /// first header (metadata_0's sub-buffer 0, which gives the clock):
    /// every sub-buffer of a trace repeats its trace-wide fields, and one
    /// that does not cannot be read with the trace's layout and clock.
    public init(_ bytes: ByteReader, base: Int, size: Int, trace first: SubbufferHeader? = nil) throws(Problem) {
        self.bytes = bytes
        self.base = base
        self.size = size
        typealias F = SubbufferHeader.Field
        func load<T: FixedWidthInteger>(_ field: Int, _: T.Type) throws(Problem) -> T {
            do { return try bytes.load(base + field, as: T.self) } catch {
                throw Problem(offset: base + field, "read of \(error.size) bytes runs past the data of the sub-buffer")
            }
        }
        var h = SubbufferHeader()
        h.magicNumber = try load(F.magicNumber, UInt32.self)
        guard h.magicNumber == SubbufferHeader.magic else {
            let swapped = h.magicNumber.byteSwapped == SubbufferHeader.magic
            throw Problem(offset: base + F.magicNumber, swapped
                ? "magic 0x\(String(h.magicNumber, radix: 16)) is LTT's in the other byte order: this reader reads native-order traces"
                : "bad magic 0x\(String(h.magicNumber, radix: 16)), expected 0xd6b7ed")
        }
        h.majorVersion = try load(F.majorVersion, UInt8.self)
        h.minorVersion = try load(F.minorVersion, UInt8.self)
        guard h.majorVersion == SubbufferHeader.formatMajor, h.minorVersion == SubbufferHeader.formatMinor else {
            throw Problem(offset: base + (h.majorVersion != 2 ? F.majorVersion : F.minorVersion),
                          "format version \(h.majorVersion).\(h.minorVersion), expected 2.3")
        }
        h.archSize = try load(F.archSize, UInt8.self)
        h.alignment = try load(F.alignment, UInt8.self)
        guard h.archSize == 4 || h.archSize == 8 else {
            throw Problem(offset: base + F.archSize, "arch_size \(h.archSize), expected 4 or 8")
        }
        guard h.alignment == 0 || h.alignment == h.archSize else {
            throw Problem(offset: base + F.alignment, "alignment \(h.alignment), expected 0 or \(h.archSize)")
        }
        h.startFreq = try load(F.startFreq, UInt64.self)
        h.freqScale = try load(F.freqScale, UInt32.self)
        guard h.startFreq != 0 else { throw Problem(offset: base + F.startFreq, "start_freq is 0") }
        guard h.freqScale != 0 else { throw Problem(offset: base + F.freqScale, "freq_scale is 0") }
        guard h.startFreq / UInt64(h.freqScale) >= 1, h.startFreq != .max else {
            throw Problem(offset: base + F.startFreq, "start_freq \(h.startFreq) / freq_scale \(h.freqScale) is not a clock frequency")
        }
        h.bufSize = try load(F.bufSize, UInt32.self)
        guard Int(h.bufSize) == size else {
            throw Problem(offset: base + F.bufSize, "buf_size \(h.bufSize) differs from the file's \(size)")
        }
        h.lostSize = try load(F.lostSize, UInt32.self)
        guard h.lostSize != SubbufferHeader.lostSizeOpen else {
            throw Problem(offset: base + F.lostSize, "lost_size 0xffffffff: the sub-buffer was never closed")
        }
        guard Int(h.lostSize) <= size - Int(SubbufferHeader.size) else {
            throw Problem(offset: base + F.lostSize, "lost_size \(h.lostSize) leaves no room for the header in \(size) bytes")
        }
        h.cycleCountBegin = try load(F.cycleCountBegin, UInt64.self)
        h.cycleCountEnd = try load(F.cycleCountEnd, UInt64.self)
        guard h.cycleCountEnd >= h.cycleCountBegin else {
            throw Problem(offset: base + F.cycleCountEnd,
                          "cycle_count_end \(h.cycleCountEnd) is before cycle_count_begin \(h.cycleCountBegin)")
        }
        h.startTimeSec = try load(F.startTimeSec, UInt64.self)
        h.startTimeUsec = try load(F.startTimeUsec, UInt64.self)
        // Nanoseconds since the epoch must fit in 64 bits, signed, as every
        // reader computes them.
        guard h.startTimeSec < TraceTime.latestStartSecond, h.startTimeUsec < 1_000_000 else {
            throw Problem(offset: base + F.startTimeSec,
                          "start time \(h.startTimeSec) s \(h.startTimeUsec) us is not a time a trace can start at")
        }
        if let first {
            for (name, field, differs) in [
                ("arch_size", F.archSize, h.archSize != first.archSize),
                ("alignment", F.alignment, h.alignment != first.alignment),
                ("start_time_sec", F.startTimeSec, h.startTimeSec != first.startTimeSec),
                ("start_time_usec", F.startTimeUsec, h.startTimeUsec != first.startTimeUsec),
                ("start_freq", F.startFreq, h.startFreq != first.startFreq),
                ("freq_scale", F.freqScale, h.freqScale != first.freqScale),
            ] where differs {
                throw Problem(offset: base + field, "\(name) differs from the trace's (metadata_0's first sub-buffer)")
            }
        }
        h.eventsLost = try load(F.eventsLost, UInt32.self)
        h.subbufCorrupt = try load(F.subbufCorrupt, UInt32.self)
        header = h
        dataEnd = size - Int(h.lostSize)
        trace = TraceHeaderFields(alignment: h.alignment)
    }


    /// One event as it lies in the sub-buffer.
    public struct Event: Sendable, Equatable {
        public var id: UInt16
        /// The full clock value.
        public var clock: UInt64
        /// Where its header starts (after any padding before it), and
        /// where its payload starts and ends, relative to `base`.
        public var start: Int
        public var payloadStart: Int
        public var payloadEnd: Int
        /// Something off that does not stop the event from being read: its
        /// clock goes back, or is after the sub-buffer's end clock.
        public var problem: Problem?
    }

    /// What one step of the walk found.
    public enum Step: Sendable, Equatable {
        case event(Event)
        /// Something wrong that the walk stepped past (the event, if any,
        /// is not returned).
        case skipped(Problem)
        /// Something wrong after which nothing more can be read.
        case stopped(Problem)
        case end
    }

    /// Walks the events in order: `next` until `.end` or `.stopped`.
    public struct Cursor {
        let walk: SubbufferWalk
        var offset = Int(SubbufferHeader.size)
        public private(set) var clock: UInt64

        public mutating func next(_ shapes: borrowing PayloadShapes) -> Step {
            let base = walk.base
            let limit = base + walk.dataEnd
            guard base + offset < limit else {
                if base + offset > limit {
                    let past = base + offset - limit
                    offset = limit - base
                    return .stopped(Problem(offset: limit, "the last event runs \(past) bytes past the data (lost_size \(walk.header.lostSize))"))
                }
                return .end
            }
            let headerPadding = Int(walk.trace.padding(at: UInt64(offset), forSize: 4))
            let eventStart = base + offset + headerPadding
            let header: EventHeader.Decoded
            do {
                header = try EventHeader.read(from: walk.bytes, base: base, offset: offset, limit: limit, trace: walk.trace)
            } catch {
                offset = walk.dataEnd
                return .stopped(Problem(offset: error.offset, "read of \(error.size) bytes runs past the data of the sub-buffer"))
            }
            offset = header.end
            let next = header.clock(after: clock)
            var problem: Problem?
            if next < clock {
                problem = Problem(offset: eventStart, "clock goes back from \(clock) to \(next)")
            } else if next > walk.header.cycleCountEnd {
                problem = Problem(offset: eventStart, "event clock \(next) is after the sub-buffer's end clock \(walk.header.cycleCountEnd)")
            }
            clock = next
            let measured: (start: Int, end: Int)?
            do {
                measured = try shapes.measure(header.eventID, in: walk.bytes, base: base, offset: offset, limit: limit,
                                              alignment: Int(walk.trace.alignment))
            } catch {
                offset = walk.dataEnd
                return .stopped(Problem(offset: error.offset, "read of \(error.size) bytes runs past the data of the sub-buffer"))
            }
            guard let payload = measured else {
                let message = "event id \(header.eventID) is not declared in the metadata"
                // With an explicit size the event can be stepped over.
                let problem = Problem(offset: eventStart, message, undeclaredID: header.eventID)
                guard let s = header.dataSize else {
                    offset = walk.dataEnd
                    return .stopped(problem)
                }
                offset += s
                return .skipped(problem)
            }
            offset = payload.end
            if let s = header.dataSize, s != payload.end - payload.start {
                offset = payload.start + s
                return .skipped(Problem(offset: eventStart,
                    "header says \(s) payload bytes, the format gives \(payload.end - payload.start)"))
            }
            return .event(Event(id: header.eventID, clock: next, start: eventStart - base,
                                payloadStart: payload.start, payloadEnd: payload.end, problem: problem))
        }
    }

    public func events() -> Cursor { Cursor(walk: self, clock: header.cycleCountBegin) }
}
