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

    /// A buffer file of a trace directory.
    public struct BufferFile: Sendable, Equatable {
        public let name: String
        public let channel: String
        public let cpu: Int
    }

    /// The trace's name: its directory's last component.
    public static func traceName(ofDirectory directory: String) -> String {
        URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
    }

    /// `<channel>_<cpu>` or `flight-<channel>_<cpu>`: the buffer file's
    /// channel and CPU (decimal digits, at most 65535).
    public static func bufferName(_ name: String) -> (channel: String, cpu: Int)? {
        guard let underscore = name.lastIndex(of: "_") else { return nil }
        let digits = name[name.index(after: underscore)...]
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let cpu = Int(digits), cpu <= 65535 else { return nil }
        var channel = String(name[..<underscore])
        if channel.hasPrefix("flight-") { channel.removeFirst("flight-".count) }
        return channel.isEmpty ? nil : (channel, cpu)
    }

    /// The buffer files directly in `directory`, by name; other names are
    /// problems.
    public static func bufferFiles(in directory: String, problems: inout [TraceProblem]) -> [BufferFile] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            problems.append(TraceProblem(file: directory, "cannot list the directory: \(error.localizedDescription)"))
            return []
        }
        var files: [BufferFile] = []
        for name in names {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory),
                  !isDirectory.boolValue else { continue }
            guard let (channel, cpu) = bufferName(name) else {
                problems.append(TraceProblem(file: name, "file name is not <channel>_<cpu>"))
                continue
            }
            if let other = files.first(where: { $0.channel == channel && $0.cpu == cpu }) {
                problems.append(TraceProblem(file: name, "the same buffer as \(other.name) (\(channel), CPU \(cpu)): left out"))
                continue
            }
            files.append(BufferFile(name: name, channel: channel, cpu: cpu))
        }
        return files
    }

    /// What the metadata channel says: the clock, the declarations, and
    /// its own events (in `result.events`), with the problems found.
    public struct MetadataReading {
        public var result = Result()
        public var files: [BufferFile] = []
        public var declarations = MarkerDeclarations()
        /// Nil when the trace cannot be decoded (no metadata_0, or its
        /// first sub-buffer unreadable).
        public var time: TraceTime?
        /// metadata_0's first sub-buffer header: the trace-wide fields every
        /// other sub-buffer must repeat.
        public var first: SubbufferHeader?
    }

    /// Reads the buffer file list and the metadata files of `directory`.
    public func readMetadata(directory: String) -> MetadataReading {
        var reading = MetadataReading()
        reading.files = Self.bufferFiles(in: directory, problems: &reading.result.problems)
        reading.result.files = reading.files.map(\.name)
        var loaded: [(name: String, channel: String, cpu: Int, bytes: ByteReader)] = []
        for file in reading.files where file.channel == Metadata.channel {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file.name) else {
                reading.result.problems.append(TraceProblem(file: file.name, "cannot read the file"))
                continue
            }
            loaded.append((file.name, file.channel, file.cpu, ByteReader(bytes: [UInt8](data))))
        }
        guard let metadata0 = loaded.first(where: { $0.cpu == 0 }) else {
            reading.result.problems.append(TraceProblem(file: directory, "no metadata_0: the trace cannot be decoded"))
            return reading
        }
        let first: SubbufferHeader
        do {
            first = try Self.firstHeader(of: metadata0.bytes)
        } catch {
            reading.result.problems.append(TraceProblem(file: metadata0.name, subbuffer: 0, offset: error.offset,
                                                        error.message + ": the trace has no clock"))
            return reading
        }
        let clock = TraceTime(first: first)
        reading.first = first
        reading.time = clock
        reading.result.time = clock
        // The two core markers are known in advance.
        var events: [DecodedEvent] = []
        for file in loaded {
            decodeFile(file, declarations: reading.declarations, clock: clock, first: first, into: &events,
                       result: &reading.result)
        }
        // Declarations, in the order they were written.
        for e in events {
            for message in reading.declarations.take(marker: e.marker, fields: e.fields).problems {
                reading.result.problems.append(TraceProblem(file: e.file, offset: e.offset, message))
            }
        }
        for message in reading.declarations.halfDeclared {
            reading.result.problems.append(TraceProblem(file: metadata0.name, message))
        }
        for (channel, byID) in reading.declarations.byChannel {
            reading.result.declarations[channel] = byID.mapValues { ($0.name, $0.formatText) }
        }
        reading.result.events = events
        return reading
    }

    /// Reads and checks `directory` (the files directly in it).
    public func read(directory: String) -> Result {
        let reading = readMetadata(directory: directory)
        var result = reading.result
        guard let clock = reading.time else { return result }
        var events = result.events
        for file in reading.files where file.channel != Metadata.channel {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file.name) else {
                result.problems.append(TraceProblem(file: file.name, "cannot read the file"))
                continue
            }
            decodeFile((file.name, file.channel, file.cpu, ByteReader(bytes: [UInt8](data))),
                       declarations: reading.declarations, clock: clock, first: reading.first, into: &events,
                       result: &result)
        }
        result.events = Self.timeOrdered(events)
        return result
    }

    // MARK: One file

    func decodeFile(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader),
                    declarations: MarkerDeclarations, clock: TraceTime, first: SubbufferHeader?,
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
        let declared = declarations.byChannel[file.channel] ?? [:]
        let shapes = declarations.shapes(of: file.channel)
        for sub in 0..<(bytes.bytes.count / size) {
            result.subbuffers += 1
            let base = sub * size
            do {
                try decodeSubbuffer(file, index: sub, base: base, size: size, declared: declared, shapes: shapes, clock: clock, first: first,
                                    lastLost: &lastLost, lastCorrupt: &lastCorrupt, into: &events, problem: problem)
            } catch {
                problem(sub, error.offset, "read of \(error.size) bytes runs past the data of the sub-buffer")
            }
        }
        result.eventsLost += UInt64(lastLost)
        result.corruptedSubbuffers += UInt64(lastCorrupt)
    }

    func decodeSubbuffer(_ file: (name: String, channel: String, cpu: Int, bytes: ByteReader), index sub: Int,
                         base: Int, size: Int, declared: [UInt16: MarkerDeclarations.Marker], shapes: PayloadShapes,
                         clock: TraceTime, first: SubbufferHeader?,
                         lastLost: inout UInt32, lastCorrupt: inout UInt32,
                         into events: inout [DecodedEvent],
                         problem: (Int?, Int?, String) -> Void) throws(ByteReader.OutOfBounds) {
        let walk: SubbufferWalk
        do { walk = try SubbufferWalk(file.bytes, base: base, size: size, trace: first) } catch {
            problem(sub, error.offset, error.message)
            return
        }
        typealias F = SubbufferHeader.Field
        let lostCount = walk.header.eventsLost, corrupt = walk.header.subbufCorrupt
        if lostCount < lastLost { problem(sub, base + F.eventsLost, "events_lost went down from \(lastLost) to \(lostCount)") }
        if corrupt < lastCorrupt { problem(sub, base + F.subbufCorrupt, "subbuf_corrupt went down from \(lastCorrupt) to \(corrupt)") }
        lastLost = max(lastLost, lostCount)
        lastCorrupt = max(lastCorrupt, corrupt)

        var cursor = walk.events()
        walking: while true {
            switch cursor.next(shapes) {
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

    /// metadata_0's first sub-buffer header, checked: it gives the clock
    /// and the fields every sub-buffer of the trace repeats.
    public static func firstHeader(of bytes: ByteReader) throws(SubbufferWalk.Problem) -> SubbufferHeader {
        let size: Int
        do { size = Int(try bytes.load(SubbufferHeader.Field.bufSize, as: UInt32.self)) } catch {
            throw SubbufferWalk.Problem(offset: error.offset, "metadata_0 is shorter than a sub-buffer header")
        }
        guard size >= Int(SubbufferHeader.size), size <= bytes.bytes.count else {
            throw SubbufferWalk.Problem(offset: SubbufferHeader.Field.bufSize,
                                        "buf_size \(size) of metadata_0's first sub-buffer does not fit the file")
        }
        return try SubbufferWalk(bytes, base: 0, size: size).header
    }
}
