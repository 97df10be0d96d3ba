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
        /// The trace's clock (from metadata_0's first header).
        public var time: TraceTime?

        public init() {}
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
        let clock: TraceTime
        do {
            clock = try Self.time(of: metadata0.bytes)
        } catch {
            result.problems.append(TraceProblem(file: metadata0.name, subbuffer: 0, offset: error.offset,
                                                "metadata_0 is shorter than a sub-buffer header"))
            return result
        }
        result.time = clock

        // Metadata first: the two core markers are known in advance.
        var declarations = MarkerDeclarations()
        var events: [DecodedEvent] = []
        for file in files where file.channel == Metadata.channel {
            decodeFile(file, declarations: declarations, clock: clock, into: &events, result: &result)
        }
        // Declarations, in the order they were written.
        for e in events where e.channel == Metadata.channel {
            for message in declarations.take(marker: e.marker, fields: e.fields).problems {
                result.problems.append(TraceProblem(file: e.file, offset: e.offset, message))
            }
        }
        for message in declarations.halfDeclared {
            result.problems.append(TraceProblem(file: metadata0.name, message))
        }
        for (channel, byID) in declarations.byChannel {
            result.declarations[channel] = byID.mapValues { ($0.name, $0.formatText) }
        }
        for file in files where file.channel != Metadata.channel {
            decodeFile(file, declarations: declarations, clock: clock, into: &events, result: &result)
        }
        result.events = Self.timeOrdered(events)
        return result
    }

    // MARK: One file

    func decodeFile(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader),
                    declarations: MarkerDeclarations, clock: TraceTime,
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
                try decodeSubbuffer(file, index: sub, base: base, size: size, declarations: declarations, clock: clock,
                                    lastLost: &lastLost, lastCorrupt: &lastCorrupt, into: &events, problem: problem)
            } catch {
                problem(sub, error.offset, "read of \(error.size) bytes runs past the data of the sub-buffer")
            }
        }
        result.eventsLost += UInt64(lastLost)
        result.corruptedSubbuffers += UInt64(lastCorrupt)
    }

    func decodeSubbuffer(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader), index sub: Int,
                         base: Int, size: Int, declarations: MarkerDeclarations, clock: TraceTime,
                         lastLost: inout UInt32, lastCorrupt: inout UInt32,
                         into events: inout [DecodedEvent],
                         problem: (Int?, Int?, String) -> Void) throws(ByteReader.OutOfBounds) {
        let walk: SubbufferWalk
        do { walk = try SubbufferWalk(file.bytes, base: base, size: size) } catch {
            problem(sub, error.offset, error.message)
            return
        }
        typealias F = SubbufferHeader.Field
        let lostCount = walk.header.eventsLost, corrupt = walk.header.subbufCorrupt
        if lostCount < lastLost { problem(sub, base + F.eventsLost, "events_lost went down from \(lastLost) to \(lostCount)") }
        if corrupt < lastCorrupt { problem(sub, base + F.subbufCorrupt, "subbuf_corrupt went down from \(lastCorrupt) to \(corrupt)") }
        lastLost = max(lastLost, lostCount)
        lastCorrupt = max(lastCorrupt, corrupt)

        let declared = declarations.byChannel[file.channel] ?? [:]
        let shapes = declarations.shapes(of: file.channel)
        var cursor = walk.events()
        walking: while true {
            switch cursor.next({ shapes[$0] }) {
            case .end:
                break walking
            case .stopped(let p):
                problem(sub, p.offset, Self.named(p.message, channel: file.channel))
                break walking
            case .skipped(let p):
                problem(sub, p.offset, Self.named(p.message, channel: file.channel))
            case .event(let e):
                if let p = e.problem { problem(sub, p.offset, p.message) }
                guard let marker = declared[e.id], let format = marker.format else { continue }
                let payload = try PayloadLayout.read(format.fields, from: file.bytes, base: base, offset: e.payloadStart,
                                                     limit: base + walk.dataEnd, alignment: Int(walk.header.alignment))
                events.append(DecodedEvent(channel: file.channel, marker: marker.name, cpu: file.cpu, cycles: e.clock,
                                           timeNanoseconds: clock.nanoseconds(e.clock), fields: payload.fields,
                                           file: file.name, offset: base + e.start))
            }
        }
    }

    /// Events in time order across files; ties keep their order (file
    /// order, then position).
    public static func timeOrdered(_ events: [DecodedEvent]) -> [DecodedEvent] {
        let indexed: [(offset: Int, element: DecodedEvent)] = Array(events.enumerated())
        let sorted = indexed.sorted { (a: (offset: Int, element: DecodedEvent), b: (offset: Int, element: DecodedEvent)) -> Bool in
            a.element.cycles != b.element.cycles ? a.element.cycles < b.element.cycles : a.offset < b.offset
        }
        return sorted.map(\.element)
    }

    /// The walk's messages name the event by id; the reader adds its channel.
    static func named(_ message: String, channel: String) -> String {
        message.replacingOccurrences(of: "is not declared", with: "of channel \(channel) is not declared")
    }

    /// The trace's clock, from the first header of metadata_0 (whose
    /// start fields every sub-buffer of the trace repeats).
    static func time(of bytes: ByteReader) throws(ByteReader.OutOfBounds) -> TraceTime {
        typealias F = SubbufferHeader.Field
        return TraceTime(startTimeSec: try bytes.load(F.startTimeSec, as: UInt64.self),
                         startTimeUsec: try bytes.load(F.startTimeUsec, as: UInt64.self),
                         startTSC: try bytes.load(F.cycleCountBegin, as: UInt64.self),
                         startFreq: max(1, try bytes.load(F.startFreq, as: UInt64.self)),
                         freqScale: max(1, try bytes.load(F.freqScale, as: UInt32.self)))
    }
}
