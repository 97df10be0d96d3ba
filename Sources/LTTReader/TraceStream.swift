import Foundation
import LTTFormat

/// A trace's data events in time order, one at a time, for readers that
/// must keep up with the disk (`lttfs dump`): each buffer or stream file is
/// a `TraceEventSource` that walks it a sub-buffer (or packet) at a time,
/// and the sources are merged by clock. An event is handed out as a view
/// of its bytes (`Event`), not decoded into values: nothing is allocated
/// per event.
///
/// Each file is in time order (the tracer writes it so, and the readers
/// report where it is not); ties between files keep the files' order,
/// which is `TraceReader`'s order too.
public final class TraceStream {
    /// A declared marker of a data channel.
    public struct Marker: Sendable {
        public let channel: String
        public let name: String
        public let fields: [MarkerField]

        public init(channel: String, name: String, fields: [MarkerField]) {
            self.channel = channel
            self.name = name
            self.fields = fields
        }
    }

    /// One event, valid during the call it is handed to.
    public struct Event {
        /// Index in `markers`.
        public let marker: Int
        public let cpu: Int
        public let clock: UInt64
        /// The sub-buffer's (or packet's) bytes and where the payload
        /// starts in them (after its alignment padding), and where the data
        /// ends.
        public let bytes: UnsafeRawBufferPointer
        public let payloadStart: Int
        public let payloadEnd: Int
        public let limit: Int
        public let alignment: Int
        /// The file it is in (index in the stream's sources) and its
        /// offset there.
        public let source: Int
        public let offset: Int

        public init(marker: Int, cpu: Int, clock: UInt64, bytes: UnsafeRawBufferPointer, payloadStart: Int,
                    payloadEnd: Int, limit: Int, alignment: Int, source: Int, offset: Int) {
            self.marker = marker
            self.cpu = cpu
            self.clock = clock
            self.bytes = bytes
            self.payloadStart = payloadStart
            self.payloadEnd = payloadEnd
            self.limit = limit
            self.alignment = alignment
            self.source = source
            self.offset = offset
        }
    }

    public let markers: [Marker]
    public let time: TraceTime?
    /// The metadata's reading: declarations, problems (and, for LTT, the
    /// metadata channel's events).
    public let metadata: TraceReader.Result
    /// Problems met while streaming (after `forEach` returns).
    public private(set) var problems: [TraceProblem] = []
    public private(set) var subbuffers = 0
    public private(set) var eventsLost: UInt64 = 0
    public private(set) var corruptedSubbuffers: UInt64 = 0

    private let sources: [any TraceEventSource]

    /// A stream over `sources` (in tie order), whose events index `markers`.
    public init(markers: [Marker], time: TraceTime?, metadata: TraceReader.Result, sources: [any TraceEventSource]) {
        self.markers = markers
        self.time = time
        self.metadata = metadata
        self.sources = sources
    }

    /// An LTT 2.3 trace directory.
    public convenience init(directory: String) {
        let reading = TraceReader().readMetadata(directory: directory)
        var markers: [Marker] = []
        var sources: [any TraceEventSource] = []
        var problems: [TraceProblem] = []
        var tables: [String: (markers: [Int?], shapes: PayloadShapes)] = [:]
        for (channel, byID) in reading.declarations.byChannel where channel != Metadata.channel {
            var table = [Int?](repeating: nil, count: Int(byID.keys.max() ?? 0) + 1)
            var fields: [UInt16: [MarkerField]] = [:]
            for (id, marker) in byID.sorted(by: { $0.key < $1.key }) {
                guard let format = marker.format else { continue }
                table[Int(id)] = markers.count
                fields[id] = format.fields
                markers.append(Marker(channel: channel, name: marker.name, fields: format.fields))
            }
            tables[channel] = (table, PayloadShapes(fields))
        }
        if reading.time != nil {
            for file in reading.files where file.channel != Metadata.channel {
                guard let handle = FileHandle(forReadingAtPath: directory + "/" + file.name) else {
                    problems.append(TraceProblem(file: file.name, "cannot read the file"))
                    continue
                }
                let table = tables[file.channel] ?? ([], PayloadShapes([:]))
                sources.append(BufferFileSource(file: file, handle: handle, markers: table.markers, shapes: table.shapes,
                                                first: reading.first))
            }
        }
        self.init(markers: markers, time: reading.time, metadata: reading.result, sources: sources)
        self.problems = problems
    }

    /// The files' names, by source index.
    public var fileNames: [String] { sources.map(\.name) }

    /// `event` decoded into values (what `TraceReader` gives), for readers
    /// that want them: the payload is copied, so this allocates.
    public func decoded(_ event: borrowing Event) -> DecodedEvent {
        let marker = markers[event.marker]
        let payload = ByteReader(bytes: Array(event.bytes[event.payloadStart..<event.payloadEnd]))
        let fields = (try? PayloadLayout.read(marker.fields, from: payload, base: 0, offset: 0, limit: payload.bytes.count,
                                              alignment: event.alignment).fields) ?? []
        return DecodedEvent(channel: marker.channel, marker: marker.name, cpu: event.cpu, cycles: event.clock,
                            timeNanoseconds: time?.nanoseconds(event.clock) ?? 0, fields: fields,
                            file: sources[event.source].name, offset: event.offset)
    }

    /// Calls `body` with every data event in time order. Once.
    public func forEach(_ body: (borrowing Event) -> Void) {
        guard time != nil else { return }
        // Each source's next clock, UInt64.max when it has none.
        var clocks = sources.map { $0.nextClock ?? .max }
        while true {
            var best = -1
            var bestClock = UInt64.max
            for (i, clock) in clocks.enumerated() where clock != .max && (best < 0 || clock < bestClock) {
                best = i
                bestClock = clock
            }
            guard best >= 0 else { break }
            let source = sources[best]
            source.emitNext(index: best, body)
            clocks[best] = source.nextClock ?? .max
        }
        for source in sources {
            problems += source.problems
            subbuffers += source.subbuffers
            eventsLost += source.eventsLost
            corruptedSubbuffers += source.corruptedSubbuffers
            source.close()
        }
    }
}

/// One file of a trace, walked in order: what `TraceStream` merges.
public protocol TraceEventSource: AnyObject {
    /// The clock of the next event; nil when there is none left.
    var nextClock: UInt64? { get }
    /// The file's name.
    var name: String { get }
    /// Hands the next event to `body` and moves past it; `index` is the
    /// source's in the stream.
    func emitNext(index: Int, _ body: (borrowing TraceStream.Event) -> Void)
    var problems: [TraceProblem] { get }
    /// Sub-buffers (packets) read.
    var subbuffers: Int { get }
    var eventsLost: UInt64 { get }
    var corruptedSubbuffers: UInt64 { get }
    func close()
}

/// An LTT buffer file, walked a sub-buffer at a time (`SubbufferWalk`).
final class BufferFileSource: TraceEventSource {
    let file: TraceReader.BufferFile
    let handle: FileHandle
    /// Event id -> index in the stream's markers.
    let markers: [Int?]
    let shapes: PayloadShapes
    /// The trace's first header: every sub-buffer repeats its trace-wide fields.
    let first: SubbufferHeader?
    var size = 0
    var subbuffer = -1
    var walk: SubbufferWalk?
    var events: SubbufferWalk.Cursor?
    var head = SubbufferWalk.Event(id: 0, clock: 0, start: 0, payloadStart: 0, payloadEnd: 0, problem: nil)
    var headMarker = 0
    var hasHead = false
    var lastLost: UInt32 = 0
    var lastCorrupt: UInt32 = 0
    var done = false
    private(set) var problems: [TraceProblem] = []
    private(set) var subbuffers = 0
    var eventsLost: UInt64 { UInt64(lastLost) }
    var corruptedSubbuffers: UInt64 { UInt64(lastCorrupt) }

    init(file: TraceReader.BufferFile, handle: FileHandle, markers: [Int?], shapes: PayloadShapes,
         first: SubbufferHeader?) {
        self.file = file
        self.handle = handle
        self.markers = markers
        self.shapes = shapes
        self.first = first
        advance()
    }

    var nextClock: UInt64? { hasHead ? head.clock : nil }
    var name: String { file.name }

    func emitNext(index: Int, _ body: (borrowing TraceStream.Event) -> Void) {
        guard hasHead, let walk else { return }
        let (marker, clock, payloadStart, payloadEnd) = (headMarker, head.clock, head.payloadStart, head.payloadEnd)
        let dataEnd = walk.dataEnd, alignment = Int(walk.header.alignment), cpu = file.cpu
        let offset = subbuffer * size + head.start
        walk.bytes.bytes.withUnsafeBytes { raw in
            body(TraceStream.Event(marker: marker, cpu: cpu, clock: clock, bytes: raw, payloadStart: payloadStart,
                                   payloadEnd: payloadEnd, limit: dataEnd, alignment: alignment, source: index,
                                   offset: offset))
        }
        advance()
    }

    func close() { try? handle.close() }

    /// Moves to the next event, reading sub-buffers as needed.
    private func advance() {
        hasHead = false
        while !done {
            if events != nil {
                switch events!.next(shapes) {
                case .event(let e):
                    if let p = e.problem { report(p) }
                    guard let marker = Int(e.id) < markers.count ? markers[Int(e.id)] : nil else { continue }
                    head = e
                    headMarker = marker
                    hasHead = true
                    return
                case .skipped(let p):
                    report(p)
                    continue
                case .stopped(let p):
                    report(p)
                    events = nil
                case .end:
                    events = nil
                }
            }
            nextSubbuffer()
        }
    }

    private func report(_ p: SubbufferWalk.Problem) {
        let message = p.undeclaredID != nil
            ? p.message.replacingOccurrences(of: "is not declared", with: "of channel \(file.channel) is not declared")
            : p.message
        problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                     offset: p.offset.map { $0 + subbuffer * size }, message))
    }

    private func nextSubbuffer() {
        if size == 0 {
            let header = (try? handle.read(upToCount: Int(SubbufferHeader.size))) ?? Data()
            guard header.count == Int(SubbufferHeader.size),
                  let h = header.withUnsafeBytes({ SubbufferHeader(bytes: $0) }) else {
                problems.append(TraceProblem(file: file.name, "file of \(header.count) bytes is shorter than a sub-buffer header"))
                done = true
                return
            }
            let bufSize = Int(h.bufSize)
            guard bufSize >= 4096, bufSize & (bufSize - 1) == 0 else {
                problems.append(TraceProblem(file: file.name, subbuffer: 0, offset: SubbufferHeader.Field.bufSize,
                                             "buf_size \(bufSize) is not a power of two of at least 4096"))
                done = true
                return
            }
            size = bufSize
            try? handle.seek(toOffset: 0)
        }
        guard let data = try? handle.read(upToCount: size), !data.isEmpty else {
            done = true
            return
        }
        subbuffer += 1
        guard data.count == size else {
            problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                         "the last \(data.count) bytes are not a whole \(size)-byte sub-buffer"))
            done = true
            return
        }
        subbuffers += 1
        do {
            let walk = try SubbufferWalk(ByteReader(bytes: [UInt8](data)), base: 0, size: size, trace: first)
            if walk.header.eventsLost < lastLost {
                problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                             "events_lost went down from \(lastLost) to \(walk.header.eventsLost)"))
            }
            lastLost = max(lastLost, walk.header.eventsLost)
            lastCorrupt = max(lastCorrupt, walk.header.subbufCorrupt)
            self.walk = walk
            events = walk.events()
        } catch {
            problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                         offset: error.offset.map { $0 + subbuffer * size }, error.message))
            walk = nil
            events = nil
        }
    }
}
