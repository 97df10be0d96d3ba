import Foundation
import LTTCTF
import LTTFormat
import LTTSystem

/// A CTF trace streamed to an lttng-relayd session as it is written: each
/// packet on the data connection and its index on the control one, the
/// metadata as it grows. The relay daemon writes the trace below its output
/// directory (`<host>/<session>-<date>/<pathname>/`), and serves it live to
/// `babeltrace2 --input-format=lttng-live`.
///
/// Live, as LTTng's consumer does it:
/// - every stream is announced at the start (ADD_STREAM, then
///   STREAMS_SENT) and sends an empty packet as soon as the trace's clock
///   is known: a live reader waits for every stream to have one;
/// - every live period, a stream that sent nothing since the last sends an
///   empty packet at "now" less `idleLag` (the trace clock's now, from
///   the wall clock), as LTTng's live timer flushes empty sub-buffers: a
///   reader then knows the stream has nothing older, even one that
///   attached after every other packet of it (a bare beacon would not tell
///   it). Events older than that must have been delivered by then, which
///   the channels' switch timers make sure of. The destination numbers the
///   packets it sends (`packet_seq_num`), the writer's and its own;
/// - `finish` keeps the session open for two live periods, so that readers
///   attached late can still read the end, then closes every stream and
///   the session itself (its connections): a live reader ends only then.
///
/// When the relay daemon fails (it died, or refused something), nothing is
/// lost silently. A packet counts as delivered once the daemon says it has
/// written it (DATA_PENDING, asked every `confirmEvery` packets of a stream
/// and at each live tick); until then a copy is kept. On a failure the
/// metadata so far, the unconfirmed packets and every later one go to the
/// local directory `fallbackDirectory`, a CTF trace of its own (a packet
/// the daemon wrote without saying so yet may be in both), and `report`
/// counts them.
public final class RelaydDestination: CTFDestination {
    public let session: RelaydSession
    public let pathname: String
    public let fallbackDirectory: String
    public var location: String {
        "net://\(session.address.host):\(session.address.controlPort)/host/\(session.hostname)/\(session.sessionName)"
    }

    /// What was sent and what was kept locally.
    public struct Report: Sendable, Equatable {
        public var packetsSent = 0
        public var bytesSent = 0
        /// Empty packets sent for idle streams (live).
        public var idlePacketsSent = 0
        /// Packets written to the fallback directory after a failure.
        public var packetsKeptLocally = 0
        /// Packets with events older than an idle packet already sent (the lag
        /// was too short): a live reader stops there; the files are sound.
        public var packetsBehindIdlePackets = 0
        /// Packets the daemon said it wrote.
        public var packetsConfirmed = 0
        /// Why the relay daemon stopped being used.
        public var failure: String?
    }

    struct Stream {
        let handle: UInt64
        let streamClass: UInt32
        let cpu: UInt32
        var nextNetSequence: UInt64 = 0
        /// The next `packet_seq_num` sent, and the last events_discarded.
        var nextSequence: UInt64 = 0
        var lastDiscarded: UInt64 = 0
        var lastEnd: UInt64 = 0
        /// Packets this destination sent of its own (empty ones), which
        /// shift the numbers of the writer's.
        var ownPackets: UInt64 = 0
        var sentSinceTick = false
        /// The local file that takes its packets after a failure.
        var fallback: (any CTFStreamDestination)?
        /// Packets sent that the daemon has not said it wrote, oldest first.
        var unconfirmed: [(bytes: [UInt8], context: CTFPacket.Context)] = []
    }

    struct State {
        var streams: [String: Stream] = [:]
        var metadataSent = false
        /// Everything appended so far, for the fallback directory.
        var metadataText = ""
        var time: TraceTime?
        var uuid: [UInt8]?
        /// The latest idle packet's time, on any stream: a live reader
        /// merges the streams and takes nothing older afterwards.
        var idleHigh: UInt64 = 0
        var report = Report()
        /// After a failure: the local directory.
        var fallback: CTFDirectory?
    }

    private let metadataHandle: UInt64
    /// Packets of a stream sent between two confirmations (at most).
    public static let confirmEvery = 16
    private let live: Bool
    private let livePeriod: TimeInterval?
    private let idleLagNanoseconds: Int64
    private let state = Locked(State())
    private let idleTicker: PeriodicThread?

    /// Announces `streams` (name: `<channel>_<cpu>`, CTF stream class, CPU)
    /// and the metadata stream to `session`, in directory `pathname`.
    /// `livePeriod`: seconds between idle packets (nil: not live, or none:
    /// `live` still sends each stream's opening packet).
    public init(session: RelaydSession, streams: [(name: String, streamClass: UInt32, cpu: UInt32)], pathname: String,
                live: Bool, livePeriod: TimeInterval?, idleLagNanoseconds: Int64,
                fallbackDirectory: String) throws(CTFError) {
        self.session = session
        self.pathname = pathname
        self.fallbackDirectory = fallbackDirectory
        self.live = live
        self.livePeriod = live ? livePeriod : nil
        self.idleLagNanoseconds = idleLagNanoseconds
        var announced: [String: Stream] = [:]
        do throws(RelaydSession.Failure) {
            for s in streams {
                let handle = try session.addStream(channelName: s.name, pathname: pathname)
                announced[s.name] = Stream(handle: handle, streamClass: s.streamClass, cpu: s.cpu)
            }
            metadataHandle = try session.addStream(channelName: "metadata", pathname: pathname)
            try session.streamsSent()
        } catch {
            throw .destination(error.description)
        }
        state.withLock { $0.streams = announced }
        idleTicker = self.livePeriod.map { PeriodicThread(name: "lttfs-relayd-idle", interval: $0) }
    }

    public var report: Report { state.withLock { $0.report } }

    // MARK: CTFDestination

    public func appendMetadata(_ text: String) throws(CTFError) {
        try state.withLock { (s: inout State) throws(CTFError) in
            // babeltrace2 2.0.4 reads each piece a live reader fetches as
            // a document of its own: each must start with the signature.
            let signature = "/* CTF 1.8 */"
            let piece = text.hasPrefix(signature) ? text : signature + "\n" + text
            s.metadataText += s.metadataText.isEmpty ? text : "\n" + piece
            if let fallback = s.fallback {
                try fallback.appendMetadata(s.metadataSent ? piece : text)
                return
            }
            do throws(RelaydSession.Failure) {
                try session.sendMetadata(stream: metadataHandle, s.metadataSent ? piece : text)
                s.metadataSent = true
            } catch {
                try fail(error.description, &s)
            }
        }
    }

    public func traceStarted(uuid: [UInt8], time: TraceTime, begin: UInt64) throws(CTFError) {
        try state.withLock { (s: inout State) throws(CTFError) in
            s.time = time
            s.uuid = uuid
            guard live, s.fallback == nil else { return }
            // An empty packet on every stream: a live reader waits for one
            // from each before it shows anything.
            for (index, name) in s.streams.keys.sorted().enumerated() {
                // A cycle apart per stream, before the trace's first.
                let at = begin &- UInt64(min(UInt64(index), begin))
                try sendEmpty(name, at: at, uuid: uuid, &s)
            }
        }
        idleTicker?.start { [weak self] in self?.tick() }
    }

    public func openStream(name: String, streamID: UInt32, cpu: UInt32) throws(CTFError) -> any CTFStreamDestination {
        guard state.withLock({ $0.streams[name] != nil }) else {
            throw .destination("stream \(name) was not announced to lttng-relayd at the start")
        }
        return RelaydStream(destination: self, name: name)
    }

    public func finish() throws(CTFError) {
        // The session ends with the destination, whatever happens here (a
        // consumer in a long-lived process keeps its destination after).
        defer { session.close() }
        // Readers attached late still get the end: the session stays open
        // for two live periods, idle packets going.
        if let livePeriod, state.withLock({ $0.fallback == nil }) {
            Thread.sleep(forTimeInterval: 2 * livePeriod)
        }
        idleTicker?.stop()
        try state.withLock { (s: inout State) throws(CTFError) in
            // Everything written before the streams close: asked until the
            // daemon says so (bounded), else kept locally.
            for name in s.streams.keys.sorted() {
                var stream = s.streams[name]!
                var tries = 0
                while !stream.unconfirmed.isEmpty && s.fallback == nil && tries < 200 {
                    try confirm(&stream, &s)
                    if !stream.unconfirmed.isEmpty { Thread.sleep(forTimeInterval: 0.05) }
                    tries += 1
                }
                if s.fallback == nil && !stream.unconfirmed.isEmpty {
                    s.streams[name] = stream
                    try fail("lttng-relayd did not confirm \(name)'s last packets within 10 s", &s)
                    stream = s.streams[name]!
                }
                s.streams[name] = stream
            }
            if let fallback = s.fallback {
                for name in s.streams.keys { try s.streams[name]!.fallback?.close() }
                try fallback.finish()
                return
            }
            do throws(RelaydSession.Failure) {
                for name in s.streams.keys.sorted() {
                    let stream = s.streams[name]!
                    try session.closeStream(stream.handle,
                                            lastNetSequenceNumber: stream.nextNetSequence == 0 ? .max : stream.nextNetSequence - 1)
                }
                try session.closeStream(metadataHandle, lastNetSequenceNumber: .max)
            } catch {
                // Everything was sent; only the closing failed.
                s.report.failure = error.description
            }
        }
    }

    // MARK: Packets

    func write(_ name: String, _ packet: UnsafeRawBufferPointer, context: CTFPacket.Context) throws(CTFError) {
        try state.withLock { (s: inout State) throws(CTFError) in try send(name, packet, context, own: false, &s) }
    }

    /// An empty packet of this destination's own on stream `name`.
    private func sendEmpty(_ name: String, at time: UInt64, uuid: [UInt8], _ s: inout State) throws(CTFError) {
        guard let stream = s.streams[name] else { return }
        let context = CTFPacket.Context(uuid: uuid, streamID: stream.streamClass, timestampBegin: time, timestampEnd: time,
                                        contentBytes: CTFPacket.headerSize, sequenceNumber: 0,
                                        eventsDiscarded: UInt32(truncatingIfNeeded: stream.lastDiscarded), cpuID: stream.cpu)
        let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: context.packetBytes, alignment: 8)
        defer { packet.deallocate() }
        packet.initializeMemory(as: UInt8.self, repeating: 0)
        context.write(to: packet.baseAddress!)
        try send(name, UnsafeRawBufferPointer(packet), context, own: true, &s)
    }

    private func send(_ name: String, _ original: UnsafeRawBufferPointer, _ originalContext: CTFPacket.Context,
                      own: Bool, _ s: inout State) throws(CTFError) {
        guard var stream = s.streams[name] else { return }
        defer { s.streams[name] = stream }
        var context = originalContext
        // Numbers: the writer's, after the destination's own packets.
        if own {
            context.sequenceNumber = stream.nextSequence
            stream.ownPackets += 1
        } else {
            context.sequenceNumber = originalContext.sequenceNumber &+ stream.ownPackets
        }
        stream.nextSequence = context.sequenceNumber &+ 1
        stream.lastDiscarded = UInt64(context.eventsDiscarded)
        // An LTT sub-buffer begins when it was entered, which may be before
        // idle packets sent since (an idle sub-buffer): a live reader takes
        // nothing older than one, so the packet begins at the latest
        // one, its first event being newer (the clock of a compact event
        // header still reads the same from there).
        var copy: UnsafeMutableRawBufferPointer?
        defer { copy?.deallocate() }
        let low = max(s.idleHigh, stream.lastEnd)
        if live && s.fallback == nil && context.timestampBegin < low {
            let empty = context.contentBytes <= CTFPacket.headerSize
            let first = empty ? nil : CTFPacket.readEventHeader(original, at: CTFPacket.headerSize, limit: context.contentBytes,
                                                                previous: context.timestampBegin)?.clock
            if let first, first < low {
                s.report.packetsBehindIdlePackets += 1
            } else {
                // At its first event; an empty one a cycle per stream apart
                // (a reader cannot order two streams' messages of one time).
                context.timestampBegin = first ?? low &+ UInt64(stream.streamClass) &+ UInt64(stream.cpu)
                context.timestampEnd = max(context.timestampEnd, context.timestampBegin)
            }
        }
        if context != originalContext {
            let patched = UnsafeMutableRawBufferPointer.allocate(byteCount: original.count, alignment: 8)
            patched.copyMemory(from: original)
            context.write(to: patched.baseAddress!)
            copy = patched
        }
        let packet = copy.map(UnsafeRawBufferPointer.init) ?? original
        if s.fallback == nil {
            var sent = false
            do throws(RelaydSession.Failure) {
                try session.sendPacket(stream: stream.handle, netSequenceNumber: stream.nextNetSequence, packet,
                                       index: (UInt64(context.contentBytes) * 8, context.timestampBegin, context.timestampEnd,
                                               UInt64(context.eventsDiscarded), UInt64(context.streamID), UInt64(context.cpuID),
                                               context.sequenceNumber))
                stream.nextNetSequence += 1
                stream.lastEnd = max(stream.lastEnd, context.timestampEnd)
                stream.sentSinceTick = true
                stream.unconfirmed.append((Array(packet), context))
                s.report.packetsSent += 1
                s.report.bytesSent += packet.count
                sent = true
            } catch {
                s.streams[name] = stream
                try fail(error.description, &s)
                stream = s.streams[name]!
            }
            if sent {
                if stream.unconfirmed.count >= Self.confirmEvery { try confirm(&stream, &s) }
                return
            }
        }
        if stream.fallback == nil, let directory = s.fallback {
            stream.fallback = try directory.openStream(name: name, streamID: stream.streamClass, cpu: stream.cpu)
        }
        try stream.fallback?.write(packet, context: context)
        s.report.packetsKeptLocally += 1
    }

    /// Asks whether the daemon wrote the stream's unconfirmed packets;
    /// forgets them if so. A failure here is the daemon's failure.
    private func confirm(_ stream: inout Stream, _ s: inout State) throws(CTFError) {
        guard !stream.unconfirmed.isEmpty, s.fallback == nil else { return }
        do throws(RelaydSession.Failure) {
            if try session.hasWritten(stream: stream.handle, through: stream.nextNetSequence - 1) {
                s.report.packetsConfirmed += stream.unconfirmed.count
                stream.unconfirmed = []
            }
        } catch {
            let name = s.streams.first { $0.value.handle == stream.handle }?.key
            if let name { s.streams[name] = stream }
            try fail(error.description, &s)
            if let name { stream = s.streams[name]! }
        }
    }

    /// The relay daemon failed: from now on everything goes to the local
    /// directory, starting with the metadata so far and the packets it did
    /// not say it wrote.
    private func fail(_ why: String, _ s: inout State) throws(CTFError) {
        guard s.fallback == nil else { return }
        s.report.failure = why
        let directory = try CTFDirectory(path: fallbackDirectory)
        if !s.metadataText.isEmpty { try directory.appendMetadata(s.metadataText) }
        s.fallback = directory
        for name in s.streams.keys.sorted() where !s.streams[name]!.unconfirmed.isEmpty {
            var stream = s.streams[name]!
            let local = try directory.openStream(name: name, streamID: stream.streamClass, cpu: stream.cpu)
            for packet in stream.unconfirmed {
                try packet.bytes.withUnsafeBytes { raw in
                    Result { () throws(CTFError) in try local.write(raw, context: packet.context) }
                }.get()
                s.report.packetsKeptLocally += 1
            }
            stream.unconfirmed = []
            stream.fallback = local
            s.streams[name] = stream
        }
    }

    /// One live period: an empty packet for each stream that sent nothing
    /// since the last tick, at now less the lag (never back in time).
    private func tick() {
        state.withLock { s in
            guard s.fallback == nil, let time = s.time, let uuid = s.uuid else { return }
            let now = Int64(Date().timeIntervalSince1970 * 1e9) - idleLagNanoseconds
            let clock = time.cycles(atNanoseconds: now)
            // Every idle stream of this tick is after the last tick's.
            let floor = s.idleHigh
            for (index, name) in s.streams.keys.sorted().enumerated() {
                var stream = s.streams[name]!
                try? confirm(&stream, &s)
                s.streams[name] = stream
                guard s.fallback == nil else { return }
                if stream.sentSinceTick {
                    s.streams[name]!.sentSinceTick = false
                    continue
                }
                // A cycle apart per stream: a reader cannot order two
                // streams' packets of the same time (and says so).
                let at = clock &- UInt64(index)
                guard at > max(stream.lastEnd, floor) else { continue }
                do throws(CTFError) {
                    try sendEmpty(name, at: at, uuid: uuid, &s)
                    s.idleHigh = max(s.idleHigh, at)
                    s.streams[name]!.sentSinceTick = false
                    s.report.idlePacketsSent += 1
                } catch {
                    return
                }
            }
        }
    }
}

/// One stream of a `RelaydDestination`.
final class RelaydStream: CTFStreamDestination {
    let destination: RelaydDestination
    let name: String

    init(destination: RelaydDestination, name: String) {
        self.destination = destination
        self.name = name
    }

    func write(_ packet: UnsafeRawBufferPointer, context: CTFPacket.Context) throws(CTFError) {
        try destination.write(name, packet, context: context)
    }

    func close() throws(CTFError) {}
}
