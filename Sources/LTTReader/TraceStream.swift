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
    /// The merge over the sources as their own type (`merge`).
    private let mergeSources: ((borrowing Event) -> Void) -> Void

    /// A stream over `sources` (in tie order), whose events index `markers`.
    public init<Source: TraceEventSource>(markers: [Marker], time: TraceTime?, metadata: TraceReader.Result,
                                          sources: [Source]) {
        self.markers = markers
        self.time = time
        self.metadata = metadata
        self.sources = sources
        mergeSources = { body in Self.merge(sources, body) }
    }

    /// An LTT 2.3 trace directory.
    public convenience init(directory: String) {
        let reading = TraceReader().readMetadata(directory: directory)
        var markers: [Marker] = []
        var sources: [BufferFileSource] = []
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
        mergeSources(body)
        for source in sources {
            problems += source.problems
            subbuffers += source.subbuffers
            eventsLost += source.eventsLost
            corruptedSubbuffers += source.corruptedSubbuffers
            source.close()
        }
    }
}

extension TraceStream {
    /// Hands out the events of `sources` in clock order (ties: the earlier
    /// source first). Each source is called through an unretained
    /// reference, which `sources` keeps alive: a copy out of the array
    /// (what calling through `any TraceEventSource` makes) was a retain and
    /// a release per event, 10% of `lttfs dump`'s time.
    fileprivate static func merge<Source: TraceEventSource>(_ sources: [Source], _ body: (borrowing Event) -> Void) {
        let unretained = sources.map { Unmanaged.passUnretained($0) }
        // Each source's next clock, UInt64.max when it has none.
        var clocks = sources.map { $0.nextClock ?? .max }
        withExtendedLifetime(sources) {
            while true {
                var best = -1
                var bestClock = UInt64.max
                for i in clocks.indices where clocks[i] != .max && (best < 0 || clocks[i] < bestClock) {
                    best = i
                    bestClock = clocks[i]
                }
                guard best >= 0 else { break }
                clocks[best] = unretained[best]._withUnsafeGuaranteedRef {
                    $0.emitNext(index: best, body)
                    return $0.nextClock ?? .max
                }
            }
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
///
/// The per-event path (`emitNext`, `advance`) copies no value that holds a
/// reference: the sub-buffer's bytes are handed out from `page`, memory
/// this source owns, and the walk's state is used in place. (A copy of the
/// walk, which holds its bytes as an array, was a retain and a release per
/// event, 9% of `lttfs dump`'s time.)
final class BufferFileSource: TraceEventSource {
    let file: TraceReader.BufferFile
    let handle: FileHandle
    /// Event id -> index in the stream's markers.
    let markers: [Int?]
    let shapes: PayloadShapes
    /// The trace's first header: every sub-buffer repeats its trace-wide fields.
    let first: SubbufferHeader?
    /// Bytes per sub-buffer (the first header's buf_size); 0 when the file
    /// has none that can be read.
    let size: Int
    /// The sub-buffer being walked, as read from the file (`size` bytes).
    let page: UnsafeMutableRawBufferPointer
    var subbuffer = -1
    /// Where the current sub-buffer's events end, and its alignment.
    var dataEnd = 0
    var alignment = 0
    // Used in place on every event, and only by this source's own methods:
    // no dynamic exclusivity check.
    @exclusivity(unchecked) var events: SubbufferWalk.Cursor?
    @exclusivity(unchecked) var head = SubbufferWalk.Event(id: 0, clock: 0, start: 0, payloadStart: 0, payloadEnd: 0, problem: nil)
    @exclusivity(unchecked) var headMarker = 0
    @exclusivity(unchecked) var hasHead = false
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
        let (size, problem) = Self.subbufferSize(handle, file: file.name)
        self.size = size
        if let problem {
            problems.append(problem)
            done = true
        }
        // No more than the file holds: a damaged header may claim 2 GiB
        // sub-buffers in a 4 KiB file (which is then reported short).
        var status = stat()
        let fileSize = fstat(handle.fileDescriptor, &status) == 0 ? Int(status.st_size) : size
        page = .allocate(byteCount: max(1, min(size, fileSize)), alignment: 16)
        advance()
    }

    deinit { page.deallocate() }

    var nextClock: UInt64? { hasHead ? head.clock : nil }
    var name: String { file.name }

    func emitNext(index: Int, _ body: (borrowing TraceStream.Event) -> Void) {
        guard hasHead else { return }
        body(TraceStream.Event(marker: headMarker, cpu: file.cpu, clock: head.clock, bytes: UnsafeRawBufferPointer(page),
                               payloadStart: head.payloadStart, payloadEnd: head.payloadEnd, limit: dataEnd,
                               alignment: alignment, source: index, offset: subbuffer * size + head.start))
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

    /// The file's sub-buffer size, from its first header (the file is left
    /// at its start), or 0 and why not.
    private static func subbufferSize(_ handle: FileHandle, file: String) -> (Int, TraceProblem?) {
        let header = (try? handle.read(upToCount: Int(SubbufferHeader.size))) ?? Data()
        guard header.count == Int(SubbufferHeader.size),
              let h = header.withUnsafeBytes({ SubbufferHeader(bytes: $0) }) else {
            return (0, TraceProblem(file: file, "file of \(header.count) bytes is shorter than a sub-buffer header"))
        }
        let bufSize = Int(h.bufSize)
        guard bufSize >= 4096, bufSize & (bufSize - 1) == 0 else {
            return (0, TraceProblem(file: file, subbuffer: 0, offset: SubbufferHeader.Field.bufSize,
                                    "buf_size \(bufSize) is not a power of two of at least 4096"))
        }
        try? handle.seek(toOffset: 0)
        return (bufSize, nil)
    }

    /// Reads the next sub-buffer into `page`: the bytes read (short at the
    /// end of the file), or the errno of a failed read.
    private func readSubbuffer() -> (got: Int, failure: Int32?) {
        var got = 0
        while got < page.count {
            let n = read(handle.fileDescriptor, page.baseAddress! + got, page.count - got)
            if n > 0 {
                got += n
            } else if n == 0 {
                break
            } else if errno != EINTR {
                return (got, errno)
            }
        }
        return (got, nil)
    }

    private func nextSubbuffer() {
        let (got, failure) = readSubbuffer()
        if let failure {
            problems.append(TraceProblem(file: file.name, subbuffer: subbuffer + 1,
                                         "read failed: \(String(cString: strerror(failure)))"))
            done = true
            return
        }
        guard got > 0 else {
            done = true
            return
        }
        subbuffer += 1
        guard got == size else {
            problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                         "the last \(got) bytes are not a whole \(size)-byte sub-buffer"))
            done = true
            return
        }
        subbuffers += 1
        do {
            let walk = try SubbufferWalk(ByteReader(bytes: [UInt8](UnsafeRawBufferPointer(page))), base: 0, size: size,
                                         trace: first)
            if walk.header.eventsLost < lastLost {
                problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                             "events_lost went down from \(lastLost) to \(walk.header.eventsLost)"))
            }
            lastLost = max(lastLost, walk.header.eventsLost)
            lastCorrupt = max(lastCorrupt, walk.header.subbufCorrupt)
            dataEnd = walk.dataEnd
            alignment = Int(walk.header.alignment)
            events = walk.events()
        } catch {
            problems.append(TraceProblem(file: file.name, subbuffer: subbuffer,
                                         offset: error.offset.map { $0 + subbuffer * size }, error.message))
            events = nil
        }
    }
}
