import Foundation
import LTTFormat

/// Reads a trace directory written by a consumer (one file per buffer),
/// checks everything, and decodes the events.
///
/// Strict on purpose: the viewers of 2009 ignore some mistakes and crash on
/// others, so this reader checks every header field, every event size and
/// every declaration, and reports each problem with file, sub-buffer and
/// offset. It never traps on garbage: every read is bounds-checked.
public struct TraceReader {
    public struct Result: Sendable {
        /// Events in time order across files (ties keep file order).
        public var events: [DecodedEvent] = []
        public var problems: [TraceProblem] = []
        /// Declared markers: channel -> event id -> (name, format).
        public var declarations: [String: [UInt16: (name: String, format: String)]] = [:]
        public var files: [String] = []
        public var subbuffers = 0
        /// Sum over files of the last sub-buffer's events_lost.
        public var eventsLost: UInt64 = 0
        public var corruptedSubbuffers: UInt64 = 0
    }

    struct Declared {
        var name: String
        var format: MarkerFormat?
        var formatText: String?
        var id: UInt16
    }

    /// Time base from metadata_0's first header.
    struct Clock {
        var startNanoseconds: UInt64
        var startTSC: UInt64
        var freq: UInt64
        var scale: UInt64
        func nanoseconds(_ cycles: UInt64) -> UInt64 {
            let delta = cycles &- startTSC
            if freq == 1_000_000_000 && scale == 1 { return startNanoseconds &+ delta }
            let ns = (Double(delta) * Double(scale) * 1e9 / Double(freq))
            return startNanoseconds &+ UInt64(max(0, ns))
        }
    }

    public init() {}

    /// Reads and checks `directory` (the files directly in it).
    public func read(directory: String) -> Result {
        var result = Result()
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            result.problems.append(TraceProblem(file: directory, "cannot list the directory: \(error.localizedDescription)"))
            return result
        }
        var files: [(name: String, channel: String, cpu: Int, bytes: ByteReader)] = []
        for name in names {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let underscore = name.lastIndex(of: "_"), let cpu = Int(name[name.index(after: underscore)...]), cpu >= 0 else {
                result.problems.append(TraceProblem(file: name, "file name is not <channel>_<cpu>"))
                continue
            }
            var channel = String(name[..<underscore])
            if channel.hasPrefix("flight-") { channel.removeFirst("flight-".count) }
            guard let data = FileManager.default.contents(atPath: path) else {
                result.problems.append(TraceProblem(file: name, "cannot read the file"))
                continue
            }
            files.append((name, channel, cpu, ByteReader(bytes: [UInt8](data))))
        }
        result.files = files.map(\.name)
        guard let metadata0 = files.first(where: { $0.channel == Metadata.channel && $0.cpu == 0 }) else {
            result.problems.append(TraceProblem(file: directory, "no metadata_0: the trace cannot be decoded"))
            return result
        }
        let clock: Clock
        do {
            let h = metadata0.bytes
            let sec = try h.load(SubbufferHeader.Field.startTimeSec, as: UInt64.self)
            let usec = try h.load(SubbufferHeader.Field.startTimeUsec, as: UInt64.self)
            clock = Clock(startNanoseconds: sec &* 1_000_000_000 &+ usec &* 1000,
                          startTSC: try h.load(SubbufferHeader.Field.cycleCountBegin, as: UInt64.self),
                          freq: max(1, try h.load(SubbufferHeader.Field.startFreq, as: UInt64.self)),
                          scale: UInt64(max(1, try h.load(SubbufferHeader.Field.freqScale, as: UInt32.self))))
        } catch {
            result.problems.append(TraceProblem(file: metadata0.name, subbuffer: 0, offset: error.offset,
                                                "metadata_0 is shorter than a sub-buffer header"))
            return result
        }

        // Metadata first: the two core markers are known in advance.
        var table: [String: [UInt16: Declared]] = [
            Metadata.channel: [
                0: Declared(name: Metadata.coreMarkerID, format: try! MarkerFormat(Metadata.coreMarkerIDFormat),
                            formatText: Metadata.coreMarkerIDFormat, id: 0),
                1: Declared(name: Metadata.coreMarkerFormat, format: try! MarkerFormat(Metadata.coreMarkerFormatFormat),
                            formatText: Metadata.coreMarkerFormatFormat, id: 1),
            ],
        ]
        var events: [DecodedEvent] = []
        for file in files where file.channel == Metadata.channel {
            decodeFile(file, table: table, clock: clock, into: &events, result: &result)
        }
        // Declarations, in the order they were written.
        var ids: [String: [String: UInt16]] = [:]
        var formats: [String: [String: String]] = [:]
        for e in events where e.channel == Metadata.channel {
            guard case .string(let channel)? = e.field("channel"), case .string(let name)? = e.field("name") else { continue }
            if e.marker == Metadata.coreMarkerID, case .unsigned(let id)? = e.field("event_id") {
                if let previous = ids[channel]?[name], previous != UInt16(truncatingIfNeeded: id) {
                    result.problems.append(TraceProblem(file: e.file, offset: e.offset,
                                                        "\(channel).\(name) declared with ids \(previous) and \(id)"))
                }
                ids[channel, default: [:]][name] = UInt16(truncatingIfNeeded: id)
            } else if e.marker == Metadata.coreMarkerFormat, case .string(let format)? = e.field("format") {
                formats[channel, default: [:]][name] = format
            }
        }
        for (channel, byName) in ids {
            for (name, id) in byName {
                let text = formats[channel]?[name]
                var declared = Declared(name: name, format: nil, formatText: text, id: id)
                if let text {
                    do { declared.format = try MarkerFormat(text) } catch {
                        result.problems.append(TraceProblem(file: metadata0.name, "\(channel).\(name): bad format \"\(text)\": \(error)"))
                    }
                } else {
                    result.problems.append(TraceProblem(file: metadata0.name, "\(channel).\(name) has an id but no format declaration"))
                }
                if let existing = table[channel]?[id], existing.name != name {
                    result.problems.append(TraceProblem(file: metadata0.name,
                        "event id \(id) of channel \(channel) declared for both \(existing.name) and \(name)"))
                }
                table[channel, default: [:]][id] = declared
            }
        }
        for (channel, byName) in formats {
            for name in byName.keys where ids[channel]?[name] == nil {
                result.problems.append(TraceProblem(file: metadata0.name, "\(channel).\(name) has a format but no id declaration"))
            }
        }
        for (channel, byID) in table {
            result.declarations[channel] = byID.mapValues { ($0.name, $0.formatText ?? "") }
        }
        for file in files where file.channel != Metadata.channel {
            decodeFile(file, table: table, clock: clock, into: &events, result: &result)
        }
        // Time order across files; the sort is stable, so ties keep file order.
        let indexed = events.enumerated().sorted { a, b in
            a.element.cycles != b.element.cycles ? a.element.cycles < b.element.cycles : a.offset < b.offset
        }
        result.events = indexed.map(\.element)
        return result
    }

    // MARK: One file

    func decodeFile(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader),
                    table: [String: [UInt16: Declared]], clock: Clock,
                    into events: inout [DecodedEvent], result: inout Result) {
        let bytes = file.bytes
        func problem(_ sub: Int?, _ offset: Int?, _ message: String) {
            result.problems.append(TraceProblem(file: file.name, subbuffer: sub, offset: offset, message))
        }
        guard bytes.bytes.count >= Int(SubbufferHeader.size) else {
            problem(nil, nil, "file of \(bytes.bytes.count) bytes is shorter than a sub-buffer header")
            return
        }
        let size = Int((try? bytes.load(SubbufferHeader.Field.bufSize, as: UInt32.self)) ?? 0)
        guard size >= 4096, size & (size - 1) == 0 else {
            problem(0, SubbufferHeader.Field.bufSize, "buf_size \(size) is not a power of two of at least 4096")
            return
        }
        guard bytes.bytes.count % size == 0 else {
            problem(nil, nil, "file size \(bytes.bytes.count) is not a whole number of \(size)-byte sub-buffers")
            return
        }
        var lastLost: UInt32 = 0, lastCorrupt: UInt32 = 0
        for sub in 0..<(bytes.bytes.count / size) {
            result.subbuffers += 1
            let base = sub * size
            do {
                try decodeSubbuffer(file, index: sub, base: base, size: size, table: table, clock: clock,
                                    lastLost: &lastLost, lastCorrupt: &lastCorrupt, into: &events, problem: problem)
            } catch {
                problem(sub, error.offset, "read of \(error.size) bytes runs past the data of the sub-buffer")
            }
        }
        result.eventsLost += UInt64(lastLost)
        result.corruptedSubbuffers += UInt64(lastCorrupt)
    }

    func decodeSubbuffer(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader), index sub: Int,
                         base: Int, size: Int, table: [String: [UInt16: Declared]], clock: Clock,
                         lastLost: inout UInt32, lastCorrupt: inout UInt32,
                         into events: inout [DecodedEvent],
                         problem: (Int?, Int?, String) -> Void) throws(ByteReader.OutOfBounds) {
        let b = file.bytes
        typealias F = SubbufferHeader.Field
        let magic = try b.load(base + F.magicNumber, as: UInt32.self)
        guard magic == SubbufferHeader.magic else {
            let swapped = magic.byteSwapped == SubbufferHeader.magic
            problem(sub, base + F.magicNumber, swapped
                ? "magic 0x\(String(magic, radix: 16)) is LTT's in the other byte order: this reader reads native-order traces"
                : "bad magic 0x\(String(magic, radix: 16)), expected 0xd6b7ed")
            return
        }
        let major = try b.load(base + F.majorVersion, as: UInt8.self)
        let minor = try b.load(base + F.minorVersion, as: UInt8.self)
        guard major == 2, minor == 3 else {
            problem(sub, base + (major != 2 ? F.majorVersion : F.minorVersion), "format version \(major).\(minor), expected 2.3")
            return
        }
        let archSize = try b.load(base + F.archSize, as: UInt8.self)
        let alignment = try b.load(base + F.alignment, as: UInt8.self)
        guard archSize == 4 || archSize == 8 else {
            problem(sub, base + F.archSize, "arch_size \(archSize), expected 4 or 8")
            return
        }
        guard alignment == 0 || alignment == archSize else {
            problem(sub, base + F.alignment, "alignment \(alignment), expected 0 or \(archSize)")
            return
        }
        if try b.load(base + F.startFreq, as: UInt64.self) == 0 {
            problem(sub, base + F.startFreq, "start_freq is 0")
        }
        if try b.load(base + F.freqScale, as: UInt32.self) == 0 {
            problem(sub, base + F.freqScale, "freq_scale is 0")
        }
        let bufSize = try b.load(base + F.bufSize, as: UInt32.self)
        guard Int(bufSize) == size else {
            problem(sub, base + F.bufSize, "buf_size \(bufSize) differs from the file's \(size)")
            return
        }
        let lost = try b.load(base + F.lostSize, as: UInt32.self)
        guard lost != SubbufferHeader.lostSizeOpen else {
            problem(sub, base + F.lostSize, "lost_size 0xffffffff: the sub-buffer was never closed")
            return
        }
        guard Int(lost) <= size - Int(SubbufferHeader.size) else {
            problem(sub, base + F.lostSize, "lost_size \(lost) leaves no room for the header in \(size) bytes")
            return
        }
        let begin = try b.load(base + F.cycleCountBegin, as: UInt64.self)
        let end = try b.load(base + F.cycleCountEnd, as: UInt64.self)
        guard end >= begin else {
            problem(sub, base + F.cycleCountEnd, "cycle_count_end \(end) is before cycle_count_begin \(begin)")
            return
        }
        let lostCount = try b.load(base + F.eventsLost, as: UInt32.self)
        let corrupt = try b.load(base + F.subbufCorrupt, as: UInt32.self)
        if lostCount < lastLost { problem(sub, base + F.eventsLost, "events_lost went down from \(lastLost) to \(lostCount)") }
        if corrupt < lastCorrupt { problem(sub, base + F.subbufCorrupt, "subbuf_corrupt went down from \(lastCorrupt) to \(corrupt)") }
        lastLost = max(lastLost, lostCount)
        lastCorrupt = max(lastCorrupt, corrupt)

        let trace = TraceHeaderFields(alignment: alignment)
        let dataEnd = base + size - Int(lost)
        var o = Int(SubbufferHeader.size)   // relative to the sub-buffer
        var cycles = begin
        let limit = dataEnd
        while base + o < dataEnd {
            let eventStart = base + o
            let header = try EventHeader.read(from: b, base: base, offset: o, limit: limit, trace: trace)
            o = header.end
            let id = header.eventID
            let declaredSize = header.dataSize
            let next = header.clock(after: cycles)
            if next < cycles {
                problem(sub, eventStart, "clock goes back from \(cycles) to \(next)")
            }
            if next > end {
                problem(sub, eventStart, "event clock \(next) is after the sub-buffer's end clock \(end)")
            }
            cycles = next
            guard let declared = table[file.channel]?[id], let format = declared.format else {
                problem(sub, eventStart, "event id \(id) of channel \(file.channel) is not declared in the metadata")
                // With an explicit size the event can be stepped over.
                guard let s = declaredSize else { return }
                o += s
                continue
            }
            let payload = try PayloadLayout.read(format.fields, from: b, base: base, offset: o, limit: limit,
                                                 alignment: Int(alignment))
            let payloadStart = payload.start
            let fields = payload.fields
            o = payload.end
            if let s = declaredSize, s != o - payloadStart {
                problem(sub, eventStart, "\(file.channel).\(declared.name): header says \(s) payload bytes, the format gives \(o - payloadStart)")
                o = payloadStart + s
            }
            events.append(DecodedEvent(channel: file.channel, marker: declared.name, cpu: file.cpu, cycles: cycles,
                                       timeNanoseconds: clock.nanoseconds(cycles), fields: fields,
                                       file: file.name, offset: eventStart))
        }
        if base + o > dataEnd {
            problem(sub, base + o, "the last event runs \(base + o - dataEnd) bytes past the data (lost_size \(lost))")
        }
    }
}
