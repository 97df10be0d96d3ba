#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTReader
import LTTSystem
import SystemPackage

/// Writes a CTF 1.8 trace directory from LTT 2.3 sub-buffers as they come:
/// one stream file per buffer (`<channel>_<cpu>`), one packet per
/// sub-buffer, and the `metadata` file, which grows as the metadata
/// channel declares markers. `lttfs convert` feeds it a trace directory,
/// `lttfs consume --format ctf` feeds it what it drains, from any number
/// of reader threads (one thread at a time per buffer).
///
/// A data sub-buffer can arrive before the metadata sub-buffer that
/// declares its markers (the metadata channel is drained by another thread,
/// and its sub-buffer may still be open). Such a packet waits, with every
/// later packet of its stream, until the declarations come; `finish()`
/// writes whatever still waits, leaving out the events never declared. At
/// most `pendingLimit` bytes wait: past that the oldest is written as is.
///
/// The metadata channel itself becomes no stream: what it says is the
/// TSDL.
public final class CTFTraceWriter: Sendable {
    /// Where the trace goes.
    public let destination: any CTFDestination
    /// The destination's path or URL.
    public var location: String { destination.location }

    /// Problems, counters: see `Summary`.
    public struct Summary: Sendable {
        public var packets = 0
        public var events = 0
        /// Sub-buffers whose header was unusable (babeltrace2 reports them
        /// as discarded packets).
        public var unreadableSubbuffers = 0
        /// Sub-buffers dropped because the trace's clock never came.
        public var droppedSubbuffers = 0
        /// What was left out or could not be read.
        public var problems: [TraceProblem] = []
        /// What the trace itself reports and CTF cannot say: corrupted
        /// sub-buffers the tracer counted (nothing of the conversion failed).
        public var notes: [TraceProblem] = []
        public var bytesWritten = 0
    }

    struct Shared {
        var declarations = MarkerDeclarations()
        var metadata: CTFMetadata?
        var streams: [String: StreamWriter] = [:]
        /// Raw sub-buffers waiting for declarations, per stream, oldest first.
        var pending: [String: [[UInt8]]] = [:]
        /// Stream names with pending packets, in the order they began waiting.
        var waiting: [String] = []
        /// Counts the declarations completed: a conversion that needed one
        /// tries again if it changed meanwhile.
        var declarationsVersion = 0
        var pendingBytes = 0
        var summary = Summary()
        var finished = false
        /// Channel -> `declarations.shapeTable`, until a declaration comes.
        var shapeTables: [String: PayloadShapes] = [:]
        /// metadata_0's first sub-buffer header: the clock, and the fields
        /// every sub-buffer repeats. Nil until it comes (or when it was
        /// unreadable: `noClock`).
        var first: SubbufferHeader?
        var noClock = false
        /// Sub-buffers of each metadata file taken so far, and the events it
        /// lost as of the last.
        var metadataSubbuffers: [Int: Int] = [:]
        var metadataLost: [Int: UInt32] = [:]

        /// The ids the metadata declared in `channel`, readable or not.
        func declaredIDs(of channel: String) -> Set<UInt16> { Set((declarations.byChannel[channel] ?? [:]).keys) }

        mutating func shapeTable(of channel: String) -> PayloadShapes {
            if let table = shapeTables[channel] { return table }
            let table = declarations.shapes(of: channel)
            shapeTables[channel] = table
            return table
        }
    }

    private let shared = Locked(Shared())
    private let channels: [String]
    private let traceName: String
    private let hostname: String
    private let uuid: [UInt8]
    private let pendingLimit: Int
    private let scratch = ScratchBuffers()

    /// A trace of the given data channels (the stream ids follow their
    /// order) written to `destination`.
    public init(destination: any CTFDestination, traceName: String, channels: [String], hostname: String? = nil,
                pendingLimit: Int = 64 << 20) {
        self.destination = destination
        self.channels = channels.filter { $0 != Metadata.channel }
        self.traceName = traceName
        self.hostname = hostname ?? Self.hostName()
        uuid = CTFMetadata.randomUUID()
        self.pendingLimit = pendingLimit
    }

    /// A trace written to the directory `outputDirectory` (created; it must
    /// not exist, or be empty).
    public convenience init(outputDirectory: String, traceName: String, channels: [String], hostname: String? = nil,
                            pendingLimit: Int = 64 << 20) throws(CTFError) {
        self.init(destination: try CTFDirectory(path: outputDirectory), traceName: traceName, channels: channels,
                  hostname: hostname, pendingLimit: pendingLimit)
    }

    /// Takes one sub-buffer of the buffer file `channel_cpu`. Throws only
    /// when the output cannot be written; problems in the sub-buffer are
    /// reported in the summary.
    /// Thread-safe; one thread at a time per buffer file (its packets are
    /// written in the order they are taken).
    public func take(subbuffer bytes: [UInt8], channel: String, cpu: Int) throws(CTFError) {
        if channel == Metadata.channel {
            try shared.withLock { (s: inout Shared) throws(CTFError) in
                precondition(!s.finished, "CTFTraceWriter.take after finish")
                try takeMetadata(bytes, cpu: cpu, &s)
                try flushWaiting(&s, final: false)
            }
        } else {
            try takeData(bytes, channel: channel, cpu: cpu)
        }
    }

    /// Writes what still waits (leaving out events never declared),
    /// reports what is half declared, and closes the files. Call it once,
    /// after the last `take`.
    public func finish() throws(CTFError) -> Summary {
        try shared.withLock { (s: inout Shared) throws(CTFError) -> Summary in
            if s.first == nil {
                let waiting = s.pending.values.reduce(0) { $0 + $1.count }
                if !s.noClock {
                    s.summary.problems.append(TraceProblem(file: location,
                        "no sub-buffer of metadata_0 came: the trace has no clock, \(waiting) packet(s) not written"))
                }
                s.summary.droppedSubbuffers += waiting
            } else {
                try flushWaiting(&s, final: true)
            }
            for message in s.declarations.halfDeclared {
                s.summary.problems.append(TraceProblem(file: Metadata.channel + "_0", message))
            }
            for stream in s.streams.values { s.summary.bytesWritten += try stream.finish(uuid: uuid) }
            try destination.finish()
            s.streams = [:]
            s.finished = true
            // Conversion threads report in any order: by place.
            s.summary.problems.sort(by: Self.byPlace)
            s.summary.notes.sort(by: Self.byPlace)
            return s.summary
        }
    }

    static func byPlace(_ a: TraceProblem, _ b: TraceProblem) -> Bool {
        (a.file, a.subbuffer ?? -1, a.offset ?? -1) < (b.file, b.subbuffer ?? -1, b.offset ?? -1)
    }

    /// Whether metadata_0's first sub-buffer came and gave the clock.
    public var hasClock: Bool { shared.withLock { $0.first != nil } }

    /// The counters so far.
    public var summary: Summary { shared.withLock { $0.summary } }

    // MARK: Metadata

    private func takeMetadata(_ bytes: [UInt8], cpu: Int, _ s: inout Shared) throws(CTFError) {
        let file = "\(Metadata.channel)_\(cpu)"
        let index = s.metadataSubbuffers[cpu, default: 0]
        s.metadataSubbuffers[cpu] = index + 1
        let base = index * bytes.count
        func problem(_ offset: Int?, _ message: String) {
            s.summary.problems.append(TraceProblem(file: file, subbuffer: index, offset: offset.map { base + $0 }, message))
        }
        let reader = ByteReader(bytes: bytes)
        // metadata_0's first sub-buffer gives the clock, as for every reader.
        if cpu == 0 && index == 0 {
            let first: SubbufferHeader
            do { first = try SubbufferWalk(reader, base: 0, size: bytes.count).header } catch {
                problem(error.offset, error.message + ": the trace has no clock, nothing can be written")
                s.noClock = true
                return
            }
            try start(first, &s)
        }
        let walk: SubbufferWalk
        do { walk = try SubbufferWalk(reader, base: 0, size: bytes.count, trace: s.first) } catch {
            problem(error.offset, error.message)
            return
        }
        // Metadata events the tracer lost are declarations: their markers'
        // events cannot be described.
        if walk.header.eventsLost > s.metadataLost[cpu, default: 0] {
            problem(SubbufferHeader.Field.eventsLost,
                    "\(walk.header.eventsLost - s.metadataLost[cpu, default: 0]) metadata event(s) lost: declarations may be missing")
            s.metadataLost[cpu] = walk.header.eventsLost
        }
        let shapes = s.shapeTable(of: Metadata.channel)
        let core = s.declarations.byChannel[Metadata.channel] ?? [:]
        var cursor = walk.events()
        walking: while true {
            switch cursor.next(shapes) {
            case .end: break walking
            case .stopped(let p):
                problem(p.offset, p.message)
                break walking
            case .skipped(let p):
                problem(p.offset, p.message)
            case .event(let e):
                if let p = e.problem { problem(p.offset, p.message) }
                guard let marker = core[e.id], let format = marker.format,
                      let payload = try? PayloadLayout.read(format.fields, from: reader, base: 0, offset: e.payloadStart,
                                                            limit: walk.dataEnd, alignment: Int(walk.header.alignment))
                else { continue }
                let (completed, problems) = s.declarations.take(marker: marker.name, fields: payload.fields)
                if completed != nil {
                    s.shapeTables = [:]
                    s.declarationsVersion += 1
                }
                for message in problems { problem(e.start, message) }
                if let completed, s.metadata != nil { try declare(completed, &s) }
            }
        }
    }

    /// The trace's clock and layout are known (`first`): the metadata file
    /// starts, with the markers declared so far.
    private func start(_ first: SubbufferHeader, _ s: inout Shared) throws(CTFError) {
        let time = TraceTime(first: first)
        if !time.exactFrequency {
            s.summary.notes.append(TraceProblem(file: Metadata.channel + "_0", subbuffer: 0,
                "frequency \(first.startFreq)/\(first.freqScale) is not whole: CTF's clock runs at \(time.frequency) Hz"))
        }
        let metadata = CTFMetadata(trace: .init(uuid: uuid, time: time, alignment: Int(first.alignment), hostname: hostname,
                                                traceName: traceName, channels: channels))
        try destination.appendMetadata(metadata.preamble)
        try destination.traceStarted(uuid: uuid, time: time, begin: first.cycleCountBegin)
        s.first = first
        s.metadata = metadata
        s.summary.bytesWritten += metadata.preamble.utf8.count
        // Markers learned before the clock was known.
        for byID in s.declarations.byChannel.values {
            for marker in byID.values.sorted(by: { $0.id < $1.id }) { try declare(marker, &s) }
        }
    }

    /// Appends the event class of `marker` to the metadata file.
    private func declare(_ marker: MarkerDeclarations.Marker, _ s: inout Shared) throws(CTFError) {
        guard marker.channel != Metadata.channel, let metadata = s.metadata else { return }
        guard let format = marker.format else { return }
        // Markers of channels this trace has no buffers of (disabled) are
        // declared too: no stream, nothing to declare.
        guard metadata.streamID(of: marker.channel) != nil else { return }
        let text = metadata.event(channel: marker.channel, name: marker.name, id: marker.id, fields: format.fields)
        try destination.appendMetadata(text)
        s.summary.bytesWritten += text.utf8.count
    }

    // MARK: Data

    private func takeData(_ bytes: [UInt8], channel: String, cpu: Int) throws(CTFError) {
        let name = "\(channel)_\(cpu)"
        // Under the shared lock: the stream, and whether it must wait.
        var ready = try shared.withLock { (s: inout Shared) throws(CTFError) -> (StreamWriter, PayloadShapes, Int, Set<UInt16>, SubbufferHeader)? in
            precondition(!s.finished, "CTFTraceWriter.take after finish")
            if s.streams[name] == nil {
                guard let id = channels.firstIndex(of: channel) else {
                    s.summary.problems.append(TraceProblem(file: name, "channel \(channel) was not named when the trace was opened"))
                    return nil
                }
                s.streams[name] = try StreamWriter(name: name, streamID: UInt32(id), cpu: UInt32(cpu),
                                                   destination: destination)
            }
            if s.noClock {
                s.streams[name]!.skip()
                s.summary.droppedSubbuffers += 1
                return nil
            }
            guard let first = s.first, s.pending[name]?.isEmpty ?? true else {
                try wait(bytes, stream: name, &s)
                return nil
            }
            return (s.streams[name]!, s.shapeTable(of: channel), s.declarationsVersion, s.declaredIDs(of: channel), first)
        }
        // Under the stream's lock only: conversion and write.
        while let (stream, shapes, version, declared, first) = ready {
            let written = try stream.write(bytes, shapes: shapes, isDeclared: { declared.contains($0) }, first: first,
                                           uuid: uuid, final: false, scratch: scratch)
            ready = try shared.withLock { (s: inout Shared) throws(CTFError) -> (StreamWriter, PayloadShapes, Int, Set<UInt16>, SubbufferHeader)? in
                guard case .needsDeclarations = written else {
                    account(written, &s)
                    return nil
                }
                // Declarations came meanwhile: again, with them.
                if s.declarationsVersion != version {
                    return (stream, s.shapeTable(of: channel), s.declarationsVersion, s.declaredIDs(of: channel), first)
                }
                try wait(bytes, stream: name, &s)
                return nil
            }
        }
    }

    private func account(_ written: StreamWriter.Written, _ s: inout Shared) {
        switch written {
        case .needsDeclarations, .closed:
            break
        case .unreadable(let problem):
            s.summary.problems.append(problem)
            s.summary.unreadableSubbuffers += 1
        case .packet(let bytes, let events, let problems, let notes):
            s.summary.problems += problems
            s.summary.notes += notes
            s.summary.packets += 1
            s.summary.events += events
            s.summary.bytesWritten += bytes
        }
    }

    private func wait(_ bytes: [UInt8], stream name: String, _ s: inout Shared) throws(CTFError) {
        if s.pending[name]?.isEmpty ?? true { s.waiting.append(name) }
        s.pending[name, default: []].append(bytes)
        s.pendingBytes += bytes.count
        guard s.pendingBytes > pendingLimit else { return }
        // Past the limit the oldest are written as they are; with no clock
        // yet they cannot be, and the oldest are dropped, counted.
        if s.first != nil {
            try flushWaiting(&s, final: false)
            return
        }
        while s.pendingBytes > pendingLimit, let oldest = s.waiting.first, let dropped = s.pending[oldest]?.first {
            s.pending[oldest]!.removeFirst()
            s.pendingBytes -= dropped.count
            if s.pending[oldest]!.isEmpty {
                s.pending[oldest] = nil
                s.waiting.removeFirst()
            }
            s.streams[oldest]?.skip()
            s.summary.droppedSubbuffers += 1
            s.summary.problems.append(TraceProblem(file: oldest,
                "a sub-buffer dropped: no clock yet (metadata_0's first sub-buffer has not come) and \(pendingLimit >> 20) MiB wait"))
        }
    }

    /// Writes waiting packets, oldest stream first, each stream in order
    /// until one still needs declarations; `final` (or the pending limit)
    /// writes them all. The stream locks are taken inside the shared one.
    private func flushWaiting(_ s: inout Shared, final: Bool) throws(CTFError) {
        guard let first = s.first else { return }
        var index = 0
        while index < s.waiting.count {
            let name = s.waiting[index]
            let stream = s.streams[name]!
            while let oldest = s.pending[name]?.first {
                let force = final || s.pendingBytes > pendingLimit
                let channel = channel(of: name)
                let declared = s.declaredIDs(of: channel)
                let written = try stream.write(oldest, shapes: s.shapeTable(of: channel), isDeclared: { declared.contains($0) },
                                               first: first, uuid: uuid, final: force, scratch: scratch)
                if case .needsDeclarations = written { break }
                account(written, &s)
                s.pending[name]!.removeFirst()
                s.pendingBytes -= oldest.count
            }
            if s.pending[name]?.isEmpty ?? true {
                s.pending[name] = nil
                s.waiting.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    private func channel(of stream: String) -> String {
        String(stream[..<stream.lastIndex(of: "_")!])
    }

    // MARK: Host

    /// This machine's host name (gethostname).
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
