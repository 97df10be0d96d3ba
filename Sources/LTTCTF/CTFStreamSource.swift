import Foundation
import LTTFormat
import LTTReader

/// A CTF stream file that lttfs wrote, walked a packet at a time for
/// `TraceStream` (so that `lttfs dump` streams CTF as it streams LTT). It
/// checks each packet as `CTFTraceReader` does and reports the same
/// problems.
final class CTFStreamSource: TraceEventSource {
    let name: String
    let handle: FileHandle
    let metadata: ParsedMetadata
    /// Stream id -> event id -> index in the stream's markers.
    let markers: [[Int?]]
    /// Stream id -> payload layouts.
    let shapes: [PayloadShapes]

    private var packet = ByteReader(bytes: [])
    private var packetIndex = -1
    private var packetStart = 0
    private var context: CTFPacket.Context?
    private var offset = 0
    private var clock: UInt64 = 0
    private var lastSequence: UInt64?
    private var lastDiscarded: UInt32?
    private var done = false
    private var head: (marker: Int, clock: UInt64, payloadStart: Int, payloadEnd: Int, offset: Int)?
    private(set) var problems: [TraceProblem] = []
    private(set) var subbuffers = 0
    var eventsLost: UInt64 { UInt64(lastDiscarded ?? 0) }
    var corruptedSubbuffers: UInt64 { 0 }

    init(name: String, handle: FileHandle, metadata: ParsedMetadata, markers: [[Int?]], shapes: [PayloadShapes]) {
        self.name = name
        self.handle = handle
        self.metadata = metadata
        self.markers = markers
        self.shapes = shapes
        advance()
    }

    var nextClock: UInt64? { head?.clock }

    func emitNext(index: Int, _ body: (borrowing TraceStream.Event) -> Void) {
        guard let head, let context else { return }
        let limit = context.contentBytes
        packet.bytes.withUnsafeBytes { raw in
            body(TraceStream.Event(marker: head.marker, cpu: Int(context.cpuID), clock: head.clock, bytes: raw,
                                   payloadStart: head.payloadStart, payloadEnd: head.payloadEnd, limit: limit,
                                   alignment: metadata.alignment, source: index, offset: head.offset))
        }
        advance()
    }

    func close() { try? handle.close() }

    private func problem(_ offset: Int?, _ message: String) {
        problems.append(TraceProblem(file: name, subbuffer: packetIndex, offset: offset.map { packetStart + $0 }, message))
    }

    private func advance() {
        head = nil
        while !done {
            if let context, offset < context.contentBytes {
                let eventStart = offset
                guard let header = packet.bytes.withUnsafeBytes({
                    CTFPacket.readEventHeader($0, at: offset, limit: context.contentBytes, previous: clock)
                }) else {
                    problem(eventStart, "event header runs past the packet's content")
                    offset = context.contentBytes
                    continue
                }
                clock = header.clock
                let stream = Int(context.streamID)
                let table = markers[stream]
                guard Int(header.id) < table.count, let marker = table[Int(header.id)] else {
                    problem(eventStart, "event id \(header.id) of stream \(context.streamID) is not declared")
                    offset = context.contentBytes
                    continue
                }
                let payload: (start: Int, end: Int)?
                do {
                    payload = try shapes[stream].measure(header.id, in: packet, base: 0, offset: header.end,
                                                         limit: context.contentBytes, alignment: metadata.alignment)
                } catch {
                    problem(error.offset, "read of \(error.size) bytes runs past the packet's content")
                    offset = context.contentBytes
                    continue
                }
                guard let payload else {
                    problem(eventStart, "event id \(header.id) of stream \(context.streamID) has no layout")
                    offset = context.contentBytes
                    continue
                }
                offset = payload.end
                if clock > context.timestampEnd {
                    problem(eventStart, "event clock \(clock) is after the packet's end \(context.timestampEnd)")
                }
                head = (marker, clock, payload.start, payload.end, packetStart + eventStart)
                return
            }
            nextPacket()
        }
    }

    private func nextPacket() {
        if context != nil { packetStart += packet.bytes.count }
        context = nil
        let header = (try? handle.read(upToCount: CTFPacket.headerSize)) ?? Data()
        if header.isEmpty {
            done = true
            return
        }
        packetIndex += 1
        let parsed = header.withUnsafeBytes { raw -> (CTFPacket.Context, Int)? in
            guard let context = CTFPacket.Context(bytes: raw) else { return nil }
            return (context, CTFPacket.Context.packetBytes(in: raw))
        }
        guard let (context, packetBytes) = parsed else {
            problem(0, header.count < CTFPacket.headerSize ? "\(header.count) bytes left: shorter than a packet header"
                                                            : "no CTF magic: not a packet")
            done = true
            return
        }
        // The packet's size is the file's word: bounded by what is left.
        let rest = packetBytes - CTFPacket.headerSize
        let body = rest > 0 && rest <= 1 << 30 ? ((try? handle.read(upToCount: rest)) ?? Data()) : Data()
        guard packetBytes >= CTFPacket.headerSize, body.count == rest, context.contentBytes >= CTFPacket.headerSize,
              context.contentBytes <= packetBytes else {
            problem(CTFPacket.Field.contentSize,
                    "content of \(context.contentBytes) bytes in a packet of \(packetBytes), \(body.count + header.count) bytes left in the file")
            done = true
            return
        }
        guard context.uuid == metadata.uuid else {
            problem(CTFPacket.Field.uuid, "the packet's trace UUID is not the metadata's")
            done = true
            return
        }
        guard Int(context.streamID) < metadata.channels.count else {
            problem(CTFPacket.Field.streamID, "stream id \(context.streamID) is not declared")
            done = true
            return
        }
        subbuffers += 1
        if let lastSequence, context.sequenceNumber > lastSequence, context.sequenceNumber - lastSequence > 1 {
            problem(CTFPacket.Field.sequenceNumber, "\(context.sequenceNumber - lastSequence - 1) packet(s) missing before this one")
        }
        lastSequence = context.sequenceNumber
        if let lastDiscarded, context.eventsDiscarded < lastDiscarded {
            problem(CTFPacket.Field.eventsDiscarded, "events_discarded went down from \(lastDiscarded) to \(context.eventsDiscarded)")
        }
        lastDiscarded = max(lastDiscarded ?? 0, context.eventsDiscarded)
        packet = ByteReader(bytes: [UInt8](header) + [UInt8](body))
        self.context = context
        offset = CTFPacket.headerSize
        clock = context.timestampBegin
    }
}

extension CTFTraceReader {
    /// The trace's events in time order, streamed (`lttfs dump`).
    public static func stream(directory: String) -> TraceStream {
        var result = TraceReader.Result()
        guard let text = try? String(contentsOfFile: directory + "/metadata", encoding: .utf8) else {
            result.problems.append(TraceProblem(file: "metadata", "cannot read the metadata file"))
            return TraceStream(markers: [], time: nil, metadata: result, sources: [CTFStreamSource]())
        }
        let metadata: ParsedMetadata
        do { metadata = try ParsedMetadata(text) } catch {
            result.problems.append(TraceProblem(file: "metadata", "\(error)"))
            return TraceStream(markers: [], time: nil, metadata: result, sources: [CTFStreamSource]())
        }
        result.time = metadata.time
        var markers: [TraceStream.Marker] = []
        var tables = [[Int?]](repeating: [], count: metadata.channels.count)
        var fields = [[UInt16: [MarkerField]]](repeating: [:], count: metadata.channels.count)
        for event in metadata.events.sorted(by: { ($0.stream, $0.id) < ($1.stream, $1.id) }) {
            let stream = Int(event.stream)
            let channel = metadata.channels[stream]
            if tables[stream].count <= Int(event.id) {
                tables[stream] += [Int?](repeating: nil, count: Int(event.id) + 1 - tables[stream].count)
            }
            tables[stream][Int(event.id)] = markers.count
            fields[stream][event.id] = event.format.fields
            markers.append(TraceStream.Marker(channel: channel, name: event.marker, fields: event.format.fields))
            result.declarations[channel, default: [:]][event.id] = (event.marker, event.format.text)
        }
        let shapes = fields.map(PayloadShapes.init)
        var sources: [CTFStreamSource] = []
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { !$0.hasPrefix(".") && $0 != "metadata" && !$0.hasPrefix("index") }.sorted()
        for name in names {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory),
                  !isDirectory.boolValue else { continue }
            guard let handle = FileHandle(forReadingAtPath: directory + "/" + name) else {
                result.problems.append(TraceProblem(file: name, "cannot read the file"))
                continue
            }
            result.files.append(name)
            sources.append(CTFStreamSource(name: name, handle: handle, metadata: metadata, markers: tables, shapes: shapes))
        }
        return TraceStream(markers: markers, time: metadata.time, metadata: result, sources: sources)
    }
}
