import Foundation
import LTTFormat

/// A trace's data events in time order, one at a time, for readers that
/// must keep up with the disk (`lttfs dump`): the metadata is read first
/// (`TraceReader.readMetadata`), then every buffer file is walked one
/// sub-buffer at a time and the files are merged by clock. An event is
/// handed out as a view of its bytes (`Event`), not decoded into values:
/// nothing is allocated per event.
///
/// Each buffer file is in time order (the tracer writes it so, and
/// `TraceReader` reports where it is not); ties between files keep the
/// files' name order, which is `TraceReader`'s order too.
public final class TraceStream {
    /// A declared marker of a data channel.
    public struct Marker: Sendable {
        public let channel: String
        public let name: String
        public let fields: [MarkerField]
    }

    /// One event, valid during the call it is handed to.
    public struct Event {
        /// Index in `markers`.
        public let marker: Int
        public let cpu: Int
        public let clock: UInt64
        /// The sub-buffer's bytes and where the payload starts in them
        /// (after its alignment padding), and where the data ends.
        public let bytes: UnsafeRawBufferPointer
        public let payloadStart: Int
        public let limit: Int
        public let alignment: Int
    }

    public let markers: [Marker]
    public let time: TraceTime?
    /// The metadata channel's reading: its events, declarations, problems.
    public let metadata: TraceReader.Result
    /// Problems met while streaming (after `forEach` returns).
    public private(set) var problems: [TraceProblem] = []
    public private(set) var subbuffers = 0
    public private(set) var eventsLost: UInt64 = 0
    public private(set) var corruptedSubbuffers: UInt64 = 0

    private let directory: String
    private let files: [TraceReader.BufferFile]
    /// channel -> event id -> index in `markers`.
    private let index: [String: [Int?]]

    public init(directory: String) {
        self.directory = directory
        let reading = TraceReader().readMetadata(directory: directory)
        metadata = reading.result
        time = reading.time
        files = reading.files.filter { $0.channel != Metadata.channel }
        var markers: [Marker] = []
        var index: [String: [Int?]] = [:]
        for (channel, byID) in reading.declarations.byChannel where channel != Metadata.channel {
            var table = [Int?](repeating: nil, count: Int(byID.keys.max() ?? 0) + 1)
            for (id, marker) in byID.sorted(by: { $0.key < $1.key }) {
                guard let format = marker.format else { continue }
                table[Int(id)] = markers.count
                markers.append(Marker(channel: channel, name: marker.name, fields: format.fields))
            }
            index[channel] = table
        }
        self.markers = markers
        self.index = index
    }

    /// One buffer file, walked a sub-buffer at a time.
    private final class Cursor {
        let file: TraceReader.BufferFile
        let handle: FileHandle
        let table: [Int?]
        let shapes: PayloadShapes
        var size = 0
        var subbuffer = -1
        var walk: SubbufferWalk?
        var events: SubbufferWalk.Cursor?
        /// The next event: valid when `hasHead`.
        var head = SubbufferWalk.Event(id: 0, clock: 0, start: 0, payloadStart: 0, payloadEnd: 0, problem: nil)
        var headMarker = 0
        var hasHead = false
        var lastLost: UInt32 = 0
        var lastCorrupt: UInt32 = 0
        var done = false

        init(file: TraceReader.BufferFile, handle: FileHandle, table: [Int?], shapes: PayloadShapes) {
            self.file = file
            self.handle = handle
            self.table = table
            self.shapes = shapes
        }
    }

    /// Calls `body` with every data event in time order.
    public func forEach(_ body: (borrowing Event) -> Void) {
        guard time != nil else { return }
        var cursors: [Cursor] = []
        for file in files {
            guard let handle = FileHandle(forReadingAtPath: directory + "/" + file.name) else {
                problems.append(TraceProblem(file: file.name, "cannot read the file"))
                continue
            }
            let table = index[file.channel] ?? []
            var fields: [UInt16: [MarkerField]] = [:]
            for (id, marker) in table.enumerated() { if let marker { fields[UInt16(id)] = markers[marker].fields } }
            let shapes = PayloadShapes(fields)
            let cursor = Cursor(file: file, handle: handle, table: table, shapes: shapes)
            advance(cursor)
            cursors.append(cursor)
        }
        defer { for c in cursors { try? c.handle.close() } }
        while true {
            var best: Cursor?
            var bestClock = UInt64.max
            for c in cursors where c.hasHead && (best == nil || c.head.clock < bestClock) {
                best = c
                bestClock = c.head.clock
            }
            guard let c = best else { break }
            let dataEnd = c.walk.unsafelyUnwrapped.dataEnd, alignment = Int(c.walk.unsafelyUnwrapped.header.alignment)
            c.walk.unsafelyUnwrapped.bytes.bytes.withUnsafeBytes { raw in
                body(Event(marker: c.headMarker, cpu: c.file.cpu, clock: c.head.clock, bytes: raw,
                           payloadStart: c.head.payloadStart, limit: dataEnd, alignment: alignment))
            }
            advance(c)
        }
        for c in cursors {
            eventsLost += UInt64(c.lastLost)
            corruptedSubbuffers += UInt64(c.lastCorrupt)
        }
    }

    /// Moves `c` to its next event, reading sub-buffers as needed.
    private func advance(_ c: Cursor) {
        c.hasHead = false
        while !c.done {
            if c.events != nil {
                let step = c.events!.next(c.shapes)
                switch step {
                case .event(let e):
                    if let p = e.problem { report(c, p) }
                    guard let marker = Int(e.id) < c.table.count ? c.table[Int(e.id)] : nil else { continue }
                    c.head = e
                    c.headMarker = marker
                    c.hasHead = true
                    return
                case .skipped(let p):
                    report(c, p)
                    continue
                case .stopped(let p):
                    report(c, p)
                    c.events = nil
                case .end:
                    c.events = nil
                }
            }
            nextSubbuffer(c)
        }
    }

    private func report(_ c: Cursor, _ p: SubbufferWalk.Problem) {
        let message = p.undeclaredID != nil
            ? p.message.replacingOccurrences(of: "is not declared", with: "of channel \(c.file.channel) is not declared")
            : p.message
        problems.append(TraceProblem(file: c.file.name, subbuffer: c.subbuffer,
                                     offset: p.offset.map { $0 + c.subbuffer * c.size }, message))
    }

    private func nextSubbuffer(_ c: Cursor) {
        if c.size == 0 {
            let header = (try? c.handle.read(upToCount: Int(SubbufferHeader.size))) ?? Data()
            guard header.count == Int(SubbufferHeader.size),
                  let h = header.withUnsafeBytes({ SubbufferHeader(bytes: $0) }) else {
                problems.append(TraceProblem(file: c.file.name, "file of \(header.count) bytes is shorter than a sub-buffer header"))
                c.done = true
                return
            }
            let size = Int(h.bufSize)
            guard size >= 4096, size & (size - 1) == 0 else {
                problems.append(TraceProblem(file: c.file.name, subbuffer: 0, offset: SubbufferHeader.Field.bufSize,
                                             "buf_size \(size) is not a power of two of at least 4096"))
                c.done = true
                return
            }
            c.size = size
            try? c.handle.seek(toOffset: 0)
        }
        guard let data = try? c.handle.read(upToCount: c.size), !data.isEmpty else {
            c.done = true
            return
        }
        c.subbuffer += 1
        guard data.count == c.size else {
            problems.append(TraceProblem(file: c.file.name, subbuffer: c.subbuffer,
                                         "the last \(data.count) bytes are not a whole \(c.size)-byte sub-buffer"))
            c.done = true
            return
        }
        subbuffers += 1
        do {
            let walk = try SubbufferWalk(ByteReader(bytes: [UInt8](data)), base: 0, size: c.size)
            if walk.header.eventsLost < c.lastLost {
                problems.append(TraceProblem(file: c.file.name, subbuffer: c.subbuffer,
                                             "events_lost went down from \(c.lastLost) to \(walk.header.eventsLost)"))
            }
            c.lastLost = max(c.lastLost, walk.header.eventsLost)
            c.lastCorrupt = max(c.lastCorrupt, walk.header.subbufCorrupt)
            c.walk = walk
            c.events = walk.events()
        } catch {
            problems.append(TraceProblem(file: c.file.name, subbuffer: c.subbuffer,
                                         offset: error.offset.map { $0 + c.subbuffer * c.size }, error.message))
            c.walk = nil
            c.events = nil
        }
    }
}
