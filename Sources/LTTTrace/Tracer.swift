#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import CURCU
import LTTFormat
import LTTRelay
import Synchronization

/// The tracer: the registry of markers and the traces, with their life
/// cycle (setup -> settings -> alloc -> start <-> stop -> destroy).
///
/// Control operations are serialized by one lock, `control`, and may block
/// (an RCU grace period, a metadata write waiting for room, destroy waiting
/// for producers to leave). Nobody else takes it:
/// - producers find where to record through RCU: each marker publishes the
///   list of channels it records into, and control operations replace that
///   list (`republish`);
/// - readers (the filesystem's lookups and status files) read `published`,
///   immutable snapshots that each control operation replaces as its last
///   step, under a lock held only for that assignment.
public final class Tracer: @unchecked Sendable {
    /// The process-wide tracer that in-process markers use by default.
    public static let shared = Tracer()

    /// Whose traces these are.
    public enum Role: Sendable {
        /// This process's: it makes and controls them (a server).
        case server
        /// A server's, which this producer process records into: the
        /// server assigns each marker's ID (`registrar`: channel, name,
        /// format -> event ID and whether events carry their size) and
        /// hands over its traces' buffers (`mirror`).
        case producer(registrar: @Sendable (String, String, String) throws(TraceError) -> (UInt16, Bool))
    }

    public let role: Role

    struct Registry {
        /// channel -> marker name -> marker
        var markers: [String: [String: MarkerCore]] = [:]
        var nextEventID: [String: Int] = [:]
        var traces: [String: TraceRecord] = [:]
    }

    /// What readers see: replaced whole, never changed in place.
    struct Published {
        var traces: [String: Trace] = [:]
        var markers: [String: [String: MarkerCore]] = [:]
    }

    private let control = Locked(Registry())
    private let published = Locked(Published())
    /// Called after every change of the traces (`onChange`).
    private let changeObservers = Locked<[@Sendable () -> Void]>([])
    /// The memory every buffer of every trace may take together.
    public let bufferMemory: BufferMemoryBudget
    /// The clock of every trace: the TSC where the kernel trusts it, else
    /// CLOCK_MONOTONIC (see TraceClock).
    public let clock: TraceClock
    /// Its ticks per second: every sub-buffer header's `start_freq`.
    public var clockFrequency: UInt64 { clock.frequency }
    /// Rung by every buffer of every trace when its readers have news; the
    /// filesystem's notifier listens to it.
    public let readerDoorbell = ReaderDoorbell()
    /// Grants for readers in other processes to work buffers through their
    /// shared memory: the filesystem issues them to open buffer files, the
    /// producers' socket redeems them.
    public let readerGrants = ReaderGrants()
    /// Wall-clock time (seconds, microseconds) for a trace's start time.
    public let wallClock: @Sendable () -> (seconds: UInt64, microseconds: UInt64)
    /// Number of per-CPU buffers each channel gets.
    public let cpuCount: Int
    /// Trace alignment for new traces (0: packed, 8: natural).
    public let alignment: UInt8
    private let switchTimer = PeriodicThread(name: "lttfs-switch-timer", interval: 0.005)
    /// Log sink for control refusals and destroy-time counters.
    public let log: @Sendable (TracerLogLevel, String) -> Void

    public let coreMarkerID: MarkerCore
    public let coreMarkerFormat: MarkerCore
    public let userspaceEvent: MarkerCore

    public init(cpuCount: Int = RelayChannel.configuredCPUCount,
                alignment: UInt8 = UInt8(MemoryLayout<UnsafeRawPointer>.size),
                traceClock: TraceClock = .preferred,
                bufferMemoryLimit: UInt64 = BufferMemoryLimit.default,
                wallClock: @escaping @Sendable () -> (seconds: UInt64, microseconds: UInt64) = Tracer.realTime,
                log: @escaping @Sendable (TracerLogLevel, String) -> Void = { _, _ in }, role: Role = .server) {
        self.role = role
        self.cpuCount = cpuCount
        bufferMemory = BufferMemoryBudget(limit: bufferMemoryLimit)
        self.alignment = alignment
        self.clock = traceClock
        self.wallClock = wallClock
        self.log = log
        var registry = Registry()
        func core(_ channel: String, _ name: String, _ format: String, sized: Bool = false) -> MarkerCore {
            let id = registry.nextEventID[channel, default: 0]
            registry.nextEventID[channel] = id + 1
            let marker = MarkerCore(channel: channel, name: name, format: try! MarkerFormat(format),
                                    eventID: UInt16(id), sizedHeader: sized)
            registry.markers[channel, default: [:]][name] = marker
            return marker
        }
        coreMarkerID = core(Metadata.channel, Metadata.coreMarkerID, Metadata.coreMarkerIDFormat)
        coreMarkerFormat = core(Metadata.channel, Metadata.coreMarkerFormat, Metadata.coreMarkerFormatFormat)
        userspaceEvent = core(Metadata.userspaceChannel, "event", "string %s", sized: true)
        control.withLock { r in
            r = registry
            publish(r)
        }
    }

    /// A tracer whose clock is a function of `clockFrequency` ticks per
    /// second (tests drive time by hand).
    public convenience init(cpuCount: Int = RelayChannel.configuredCPUCount,
                            alignment: UInt8 = UInt8(MemoryLayout<UnsafeRawPointer>.size),
                            clock: @escaping @Sendable () -> UInt64, clockFrequency: UInt64 = 1_000_000_000,
                            bufferMemoryLimit: UInt64 = BufferMemoryLimit.default,
                            wallClock: @escaping @Sendable () -> (seconds: UInt64, microseconds: UInt64) = Tracer.realTime,
                            log: @escaping @Sendable (TracerLogLevel, String) -> Void = { _, _ in }) {
        self.init(cpuCount: cpuCount, alignment: alignment,
                  traceClock: TraceClock(frequency: clockFrequency, read: clock), bufferMemoryLimit: bufferMemoryLimit,
                  wallClock: wallClock, log: log)
    }

    deinit { switchTimer.stop() }

    /// CLOCK_REALTIME as (seconds, microseconds).
    @Sendable public static func realTime() -> (seconds: UInt64, microseconds: UInt64) {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        return (UInt64(wall.tv_sec), UInt64(wall.tv_nsec / 1000))
    }

    // MARK: Markers

    /// Registers (channel, name, format), or returns the marker already
    /// registered with the same format. Traces that have buffers for the
    /// channel get its declaration in their metadata at once.
    @discardableResult
    public func register(channel: String, name: String, format: String, sizedHeader: Bool = false)
        throws(TraceError) -> MarkerCore {
        try TraceName.validate(channel, as: .channel)
        try TraceName.validate(name, as: .marker)
        let parsed: MarkerFormat
        do { parsed = try MarkerFormat(format) } catch { throw .invalidFormat("\(channel).\(name): \(error)") }
        return try control.withLock { (r: inout Registry) throws(TraceError) -> MarkerCore in
            if let existing = r.markers[channel]?[name] {
                guard existing.format == parsed else {
                    throw .invalidFormat("\(channel).\(name) is registered with format \"\(existing.format.text)\"")
                }
                return existing
            }
            // The metadata channel holds the tracer's own declarations: a
            // marker of its own would be declared and recorded nowhere.
            guard channel != Metadata.channel else {
                throw .invalidName("the \(Metadata.channel) channel holds only the tracer's declarations: \(channel).\(name) is refused")
            }
            let marker: MarkerCore
            if case .producer(let registrar) = role {
                // The server's ID, the same in every process that registers
                // the marker; the server declares it in its traces.
                let (id, sized) = try registrar(channel, name, format)
                marker = MarkerCore(channel: channel, name: name, format: parsed, eventID: id, sizedHeader: sized)
                r.markers[channel, default: [:]][name] = marker
            } else {
                let id = r.nextEventID[channel, default: 0]
                guard id <= Int(UInt16.max) else { throw .tooManyEvents("channel \(channel) has 65536 markers") }
                r.nextEventID[channel] = id + 1
                marker = MarkerCore(channel: channel, name: name, format: parsed, eventID: UInt16(id),
                                    sizedHeader: sizedHeader)
                r.markers[channel, default: [:]][name] = marker
                let deadline = MonotonicClock.now() &+ Self.declarationWaitNanoseconds
                for trace in r.traces.values where trace.state.hasBuffers && trace.channels[channel] != nil {
                    declare(marker, in: trace, deadline: deadline)
                    deliverDeclarations(of: trace)
                }
                for trace in r.traces.values where trace.state == .setup && trace.settings[channel] == nil {
                    trace.settings[channel] = .dataDefault
                }
            }
            republish(r)
            publish(r)
            return marker
        }
    }

    /// Registers a marker with typed arguments; the types must match the
    /// format's fields one for one (integers for integer conversions,
    /// String or StaticString for %s).
    public func marker<each Value: TraceValue>(_ channel: String, _ name: String, _ format: String,
                                               as types: (repeat each Value).Type = (repeat each Value).self)
        throws(TraceError) -> Marker<repeat each Value> {
        let parsed: MarkerFormat
        do { parsed = try MarkerFormat(format) } catch { throw .invalidFormat("\(channel).\(name): \(error)") }
        var kinds: [Bool] = []
        for type in repeat (each Value).self { kinds.append(type.isTraceString) }
        guard kinds.count == parsed.fields.count else {
            throw .typeMismatch("\(channel).\(name): \(kinds.count) arguments for \(parsed.fields.count) fields")
        }
        for (isString, field) in zip(kinds, parsed.fields) where isString != (field.kind == .string) {
            throw .typeMismatch("\(channel).\(name): field \(field.name) is \(field.kind == .string ? "a string" : "an integer")")
        }
        return Marker(core: try register(channel: channel, name: name, format: format))
    }

    /// Connects or disconnects a marker (markers/<channel>/<marker>/enable).
    public func setMarkerEnabled(channel: String, name: String, _ enabled: Bool) throws(TraceError) {
        try control.withLock { (r: inout Registry) throws(TraceError) in
            guard let marker = r.markers[channel]?[name] else { throw .markerNotFound("\(channel).\(name)") }
            marker.enabledFlag.store(enabled, ordering: .relaxed)
            republish(r)
        }
    }

    /// Every registered marker, sorted by channel then event id.
    public var markers: [MarkerCore] {
        Self.sorted(published.withLock { $0.markers })
    }

    /// The registered markers of `channel`, by name.
    public func markers(channel: String) -> [String: MarkerCore] {
        published.withLock { $0.markers[channel] ?? [:] }
    }

    public var markerChannels: [String] { published.withLock { Array($0.markers.keys) }.sorted() }

    public func marker(channel: String, name: String) -> MarkerCore? {
        published.withLock { $0.markers[channel]?[name] }
    }

    static func sorted(_ markers: [String: [String: MarkerCore]]) -> [MarkerCore] {
        markers.values.flatMap(\.values).sorted { ($0.channel, $0.eventID) < ($1.channel, $1.eventID) }
    }

    // MARK: Traces

    /// setup_trace: a new trace with every known channel at its defaults.
    @discardableResult
    public func setupTrace(_ name: String) throws(TraceError) -> Trace {
        try requireServer("setup_trace")
        try TraceName.validate(name, as: .trace)
        return try control.withLock { (r: inout Registry) throws(TraceError) -> Trace in
            guard r.traces[name] == nil else { throw .traceExists(name) }
            let trace = TraceRecord(name: name, channels: Array(r.markers.keys))
            r.traces[name] = trace
            publish(r)
            return trace.snapshot
        }
    }

    /// Runs `body` on a trace's record under the control lock, then
    /// publishes what it changed.
    private func withTrace<T: Sendable>(_ name: String, _ body: (TraceRecord) throws(TraceError) -> T) throws(TraceError) -> T {
        try requireServer("trace \(name)")
        return try control.withLock { (r: inout Registry) throws(TraceError) -> T in
            guard let trace = r.traces[name] else { throw .traceNotFound(name) }
            let result = try body(trace)
            publish(r)
            return result
        }
    }

    /// The traces, by name, as of the last control operation.
    public var traces: [Trace] { published.withLock { Array($0.traces.values) }.sorted { $0.name < $1.name } }

    public func trace(_ name: String) -> Trace? { published.withLock { $0.traces[name] } }

    /// Changes a channel's settings; only before alloc (else EBUSY).
    public func updateChannel(trace name: String, channel: String,
                              _ change: (inout ChannelSettings) throws(TraceError) -> Void) throws(TraceError) {
        try withTrace(name) { (trace: TraceRecord) throws(TraceError) in
            guard var settings = trace.settings[channel] else { throw .channelNotFound(channel) }
            guard trace.state == .setup else { throw .busy("trace \(name) is allocated; channel settings are fixed") }
            try change(&settings)
            // A refused value changes nothing; an accepted one is stored
            // as the ring will have it (rounded).
            let geometry = try settings.geometry()
            settings.subbufferSize = geometry.subbufferSize
            settings.subbufferCount = geometry.subbufferCount
            trace.settings[channel] = settings
        }
    }

    /// Selects the transport by name; only "relay-locked" exists.
    public func setTransport(trace name: String, _ transport: String) throws(TraceError) {
        try withTrace(name) { (trace: TraceRecord) throws(TraceError) in
            guard transport == "relay-locked" else { throw .unknownTransport(transport) }
            guard trace.state == .setup else { throw .busy("trace \(name) is allocated") }
            trace.transport = transport
        }
    }

    /// alloc: creates the buffers of every enabled channel and declares
    /// every known marker in the metadata channel, then, with the control
    /// lock released, populates the buffers' page tables (`prefault`) while
    /// `preparing` says to (the server stops it when it shuts down).
    public func allocTrace(_ name: String, preparing: () -> Bool = { true }) throws(TraceError) {
        try requireServer("allocTrace \(name)")
        let (serial, channels) = try control.withLock { (r: inout Registry) throws(TraceError) -> (UInt64, [RelayChannel]) in
            guard let trace = r.traces[name] else { throw .traceNotFound(name) }
            guard trace.state == .setup else { throw .busy("trace \(name) is already allocated") }
            guard trace.settings[Metadata.channel]?.enabled == true else {
                throw .invalidValue("the metadata channel cannot be disabled")
            }
            var geometries: [String: RelayGeometry] = [:]
            var total: UInt64 = 0
            for (channel, settings) in trace.settings where settings.enabled {
                let geometry = try settings.geometry()
                geometries[channel] = geometry
                let channelBytes = geometry.allocSize.multipliedReportingOverflow(by: UInt64(cpuCount))
                let sum = total.addingReportingOverflow(channelBytes.partialValue)
                total = channelBytes.overflow || sum.overflow ? .max : sum.partialValue
            }
            // Every buffer of the trace, reserved at once: over the budget,
            // nothing is allocated and the trace stays as it was.
            let reservation: BufferMemoryBudget.Reservation
            do throws(BufferMemoryBudget.Exceeded) { reservation = try bufferMemory.reserve(total) } catch {
                throw .outOfMemory("trace \(name): \(error.description)")
            }
            let wall = wallClock()
            let start = clock.now()
            let header = TraceHeaderFields(alignment: alignment, startTimeSec: wall.seconds,
                                           startTimeUsec: wall.microseconds,
                                           startFreq: clockFrequency, freqScale: 1, startTSC: start)
            var channels: [String: RelayChannel] = [:]
            for (channel, geometry) in geometries {
                do throws(RelayBuffer.AllocationFailed) {
                    channels[channel] = try RelayChannel(name: channel, geometry: geometry,
                                                         overwrite: trace.settings[channel]!.overwrite,
                                                         cpuCount: cpuCount, trace: header, clock: clock,
                                                         doorbell: readerDoorbell, memoryReservation: reservation,
                                                         traceName: name, log: { [log] in log(.error, "trace \(name), \(channel) channel: \($0)") })
                } catch {
                    throw .outOfMemory("trace \(name): \(error.description)")
                }
            }
            trace.header = header
            trace.channels = channels
            trace.state = .allocated
            trace.setRecording(false)      // until it starts
            let deadline = MonotonicClock.now() &+ Self.declarationWaitNanoseconds
            for marker in Self.sorted(r.markers) where trace.channels[marker.channel] != nil {
                declare(marker, in: trace, deadline: deadline)
            }
            deliverDeclarations(of: trace)
            publish(r)
            return (trace.serial, trace.channels.sorted { $0.key < $1.key }.map(\.value))
        }
        prefault(channels, ofTrace: name, serial: serial, while: preparing)
    }

    /// Writes the page tables of a new trace's buffers, so that no event of
    /// this process takes a page fault (RingMapping.prefault; a producer
    /// process maps the pages at its first touch): half a second per GiB
    /// here, which is why it runs outside the control lock, where other
    /// control operations go on meanwhile. It stops when the trace is
    /// destroyed or `preparing` says no more (shutdown); the pages left are
    /// faulted in by their first events instead.
    private func prefault(_ channels: [RelayChannel], ofTrace name: String, serial: UInt64, while preparing: () -> Bool) {
        var told = false
        for channel in channels {
            guard channel.prefault(while: {
                told = !preparing()
                return !told && published.withLock { $0.traces[name]?.serial == serial }
            }) else {
                if told { log(.info, "trace \(name): alloc stopped mapping its buffers' pages (the server is stopping)") }
                return
            }
        }
    }

    /// enabled = 1: start recording.
    public func startTrace(_ name: String) throws(TraceError) {
        try requireServer("startTrace \(name)")
        try control.withLock { (r: inout Registry) throws(TraceError) in
            guard let trace = r.traces[name] else { throw .traceNotFound(name) }
            switch trace.state {
            case .active: return
            case .allocated, .stopped: trace.state = .active
            case .setup: throw .wrongState("trace \(name) has no buffers yet: write 1 to alloc first")
            case .destroyed: throw .traceNotFound(name)
            }
            trace.forEachBuffer { $0.allowWaits() }
            trace.setRecording(true)
            republish(r)
            updateSwitchTimer(r)
            publish(r)
        }
    }

    /// enabled = 0: stop recording; the buffers keep what they hold.
    public func stopTrace(_ name: String) throws(TraceError) {
        try requireServer("stopTrace \(name)")
        try control.withLock { (r: inout Registry) throws(TraceError) in
            guard let trace = r.traces[name] else { throw .traceNotFound(name) }
            guard trace.state == .active else { return }
            trace.state = .stopped
            // No writer of any process enters it from here on: a producer
            // process learns of the stop later, from its watcher.
            trace.setRecording(false)
            // First no producer may enter the trace (after the grace period),
            // then nobody waits for room in it: each waiting event is lost
            // and counted once, and the producer's next events find no trace
            // to record into (ending the waits first would let them enter,
            // find the buffer full, and be counted lost too).
            republish(r)
            trace.forEachBuffer { $0.endWaits() }
            updateSwitchTimer(r)
            publish(r)
        }
    }

    /// destroy_trace: stop, flush and finalize every buffer, forget the
    /// trace. Returns it: readers that have buffers open keep draining them.
    ///
    /// Every event lost to the trace is counted before the counters are
    /// logged: producers waiting for room are told to stop waiting (each
    /// counts its event lost), and destroy waits for them to leave before
    /// it finalizes the buffers (`ltt_relay_print_buffer_errors`).
    @discardableResult
    public func destroyTrace(_ name: String) throws(TraceError) -> Trace {
        try requireServer("destroyTrace \(name)")
        return try control.withLock { (r: inout Registry) throws(TraceError) -> Trace in
            guard let trace = r.traces.removeValue(forKey: name) else { throw .traceNotFound(name) }
            let wasActive = trace.state == .active
            trace.state = .destroyed
            trace.setRecording(false)
            if wasActive {
                republish(r)   // after its grace period no producer enters this trace
                updateSwitchTimer(r)
            }
            trace.forEachBuffer { $0.endWaits() }   // as stop does, after the grace period
            publish(r)
            for (channelName, channel) in trace.channels.sorted(by: { $0.key < $1.key }) {
                if !channel.waitForProducersOutside(timeoutNanoseconds: 5_000_000_000) {
                    log(.error, "trace \(name): producers still waiting on the \(channelName) channel after 5 s")
                }
                channel.finalize()
                logErrors(of: name, channelName, channel)
            }
            return trace.snapshot
        }
    }

    /// `ltt_relay_print_buffer_errors` and `ltt_relay_print_errors`: what a
    /// channel lost, what was corrupted or overwritten, and unread
    /// sub-buffers whose commit count never completed (a writer that never
    /// committed).
    private func logErrors(of trace: String, _ channelName: String, _ channel: RelayChannel) {
        for buffer in channel.buffers {
            let c = buffer.counters
            let at = "\(channelName) channel (cpu \(buffer.cpu))"
            if c.eventsLost > 0 { log(.warning, "trace \(trace): \(c.eventsLost) events lost in \(at)") }
            if c.corruptedSubbuffers > 0 {
                log(.warning, "trace \(trace): \(c.corruptedSubbuffers) corrupted sub-buffers in \(at)")
            }
            if c.subbuffersOverwritten > 0 {
                log(.info, "trace \(trace): \(c.eventsOverwritten) events in \(c.subbuffersOverwritten) sub-buffers overwritten in \(at) (flight recorder)")
            }
            let incomplete = buffer.incompleteSubbuffers()
            if !incomplete.isEmpty {
                log(.error, "trace \(trace): \(at): sub-buffers \(incomplete) have non filled commit counts")
            }
        }
    }

    /// At the end of a program or server: logs what every trace still set up
    /// lost so far, as destroy would, so that no loss goes unreported.
    public func logErrorsOfEveryTrace() {
        control.withLock { r in
            for (name, trace) in r.traces.sorted(by: { $0.key < $1.key }) {
                for (channelName, channel) in trace.channels.sorted(by: { $0.key < $1.key }) {
                    logErrors(of: name, channelName, channel)
                }
            }
        }
    }

    /// Forces a live switch on every buffer of a trace (a flush on demand).
    public func flush(_ name: String) throws(TraceError) {
        try withTrace(name) { trace in
            for channel in trace.channels.values { channel.buffers.forEach { $0.forceSwitch(onlyIfWritten: true) } }
        }
    }

    // MARK: write_event

    public enum WriteEventError: Error, Equatable {
        /// The line fits in no active trace's sub-buffers (or is longer than
        /// `maximumLine`): nothing was recorded, nothing counted.
        case tooLong
        /// The wait for room was cancelled (a signal, or the server
        /// stopping) before the event was recorded anywhere: nothing was
        /// recorded, nothing counted; a retry records it once.
        case interrupted
    }

    /// Records `line` as one `userspace.event` in every active trace, through
    /// the emitter every marker uses. In normal mode a full buffer makes the
    /// writer wait while its reader frees room (`ltt_relay_user_blocking`),
    /// bounded (`BlockingWriter`), after every trace with room has the
    /// event. The wait ends when the reader closes, the trace stops or is
    /// destroyed (the event is counted lost there), or `cancellation` fires.
    /// A line that fits in some traces' sub-buffers but not in others is
    /// recorded where it fits and counted lost elsewhere. Returns what
    /// became of it.
    @discardableResult
    public func writeEvent(_ line: UnsafeRawBufferPointer, cancellation: WaitCancellation? = nil, deadline: UInt64? = nil)
        throws(WriteEventError) -> EmitResult {
        let marker = userspaceEvent
        guard marker.isRecording else { return EmitResult() }
        let size = line.count + 1
        var fitsSomewhere = false
        marker.forEachSink { sink in
            let channel = sink.channel.takeUnretainedValue()
            let header = EventHeader.size(at: 0, dataSize: UInt64(size), form: .idSizeTSC,
                                          trace: TraceHeaderFields(alignment: UInt8(sink.alignment)))
            if UInt64(size) + header.size + 8 <= channel.geometry.subbufferSize - SubbufferHeader.size {
                fitsSomewhere = true
            }
        }
        guard fitsSomewhere else { throw .tooLong }
        let result = marker.emitter.emit(TextLinePayload(line: line), writer: BlockingWriter(cancellation: cancellation, deadline: deadline))
        if result.cancelled { throw .interrupted }
        return result
    }

    // MARK: A producer process's traces

    private func requireServer(_ operation: String) throws(TraceError) {
        if case .producer = role { throw .notTheServer(operation) }
    }

    /// A trace of the server as a producer process records into it: its
    /// buffers, mapped from the server's (`RelayBuffer(attaching:)`).
    public struct MirroredTrace: Sendable {
        public let name: String
        /// The server's serial: the same trace as long as it is the same.
        public let serial: UInt64
        public let state: TraceState
        public let header: TraceHeaderFields
        /// Per channel: its buffers and how long a producer may wait for room.
        public let channels: [String: (channel: RelayChannel, blockingTimeoutMillis: UInt64)]

        public init(name: String, serial: UInt64, state: TraceState, header: TraceHeaderFields,
                    channels: [String: (channel: RelayChannel, blockingTimeoutMillis: UInt64)]) {
            self.name = name
            self.serial = serial
            self.state = state
            self.header = header
            self.channels = channels
        }
    }

    /// The server's traces as they are now (a producer process): markers
    /// record into the active ones from the next event on; the buffers of
    /// those gone are let go once no producer can be in them (one RCU
    /// grace period).
    public func mirror(_ traces: [MirroredTrace]) throws(TraceError) {
        guard case .producer = role else { throw .invalidValue("only a producer process mirrors a server's traces") }
        control.withLock { r in
            var next: [String: TraceRecord] = [:]
            for t in traces {
                let record = TraceRecord(name: t.name, channels: Array(t.channels.keys))
                record.state = t.state
                record.header = t.header
                record.channels = t.channels.mapValues(\.channel)
                for (name, c) in t.channels {
                    var settings = ChannelSettings(subbufferCount: c.channel.geometry.subbufferCount,
                                                   subbufferSize: c.channel.geometry.subbufferSize)
                    settings.overwrite = c.channel.overwrite
                    settings.blockingTimeoutMillis = c.blockingTimeoutMillis
                    record.settings[name] = settings
                }
                next[t.name] = record
            }
            r.traces = next
            republish(r)
            publish(r)
        }
    }

    // MARK: Internals (control lock held)

    /// How long one registration (or alloc) may wait for metadata readers
    /// to free room, all its traces together (each still gets 0.1 s,
    /// `Metadata.declare`): it holds the control lock.
    static let declarationWaitNanoseconds: UInt64 = 2_000_000_000
    private let declarationLossLog = LogRateLimit(perSecond: 20)

    private func declare(_ marker: MarkerCore, in trace: TraceRecord, deadline: UInt64) {
        if !Metadata.declare(marker, idMarker: coreMarkerID, formatMarker: coreMarkerFormat, in: trace, deadline: deadline) {
            trace.metadataLost += 1
            // A stalled reader loses every later declaration at once: a
            // producer registering many markers would flood the log.
            switch declarationLossLog.admit() {
            case .log(let held):
                log(.error, "trace \(trace.name): metadata channel full, declaration of \(marker) lost"
                    + (held > 0 ? " (and \(held) more not logged; stats counts them all)" : ""))
            case .hold:
                break
            }
        }
    }

    /// Hands the metadata sub-buffer with new declarations to its reader at
    /// once, when there is one: a consumer that describes events as they
    /// come (CTF, streaming) needs a marker's declaration before its first
    /// event, not when the metadata sub-buffer fills. With no reader
    /// nothing is switched (sub-buffers would fill with nobody to free
    /// them); the declarations are delivered with the rest.
    private func deliverDeclarations(of trace: TraceRecord) {
        guard let buffer = trace.metadata?.buffers[0], buffer.hasReader else { return }
        buffer.forceSwitch(onlyIfWritten: true)
    }

    /// Replaces what readers see with the registry as it is now, and tells
    /// the observers.
    private func publish(_ r: Registry) {
        var next = Published()
        for (name, trace) in r.traces { next.traces[name] = trace.snapshot }
        next.markers = r.markers
        published.withLock { $0 = next }
        for observer in changeObservers.withLock({ $0 }) { observer() }
    }

    /// Calls `body` after every control operation (with the control lock
    /// held: it must not block, nor call the tracer): how producer
    /// processes learn that the traces changed.
    public func onChange(_ body: @escaping @Sendable () -> Void) {
        changeObservers.withLock { $0.append(body) }
    }

    /// Rebuilds every marker's sinks from the active traces and publishes
    /// them; frees the old lists after one RCU grace period.
    private func republish(_ r: Registry) {
        let active = r.traces.values.filter { $0.state == .active }.sorted { $0.name < $1.name }
        var retired: [UnsafeMutableRawPointer] = []
        for marker in r.markers.values.flatMap(\.values) {
            var entries: [(RelayChannel, Int, UInt64)] = []
            if marker.isEnabled {
                for trace in active {
                    if let channel = trace.channels[marker.channel] {
                        let waits = channel.overwrite ? 0 : (trace.settings[marker.channel]?.blockingTimeoutMillis ?? 0)
                        entries.append((channel, Int(trace.header.alignment), waits * 1_000_000))
                    }
                }
            }
            if entries.isEmpty && marker.isRecording == false { continue }
            if let old = marker.publish(entries.isEmpty ? nil : MarkerSinks(entries)) { retired.append(old) }
        }
        guard !retired.isEmpty else { return }
        lttfs_synchronize_rcu()
        for old in retired { MarkerSinks.release(block: old) }
    }

    private func updateSwitchTimer(_ r: Registry) {
        let timed = r.traces.values.contains { trace in
            trace.state == .active && trace.settings.values.contains { $0.enabled && $0.switchTimerMillis > 0 }
        }
        if timed {
            switchTimer.start { [weak self] in self?.switchTimerTick() }
        } else {
            switchTimer.stop()
        }
    }

    /// One tick of the switch timers: a live switch on every buffer of a
    /// channel whose period has passed, if it holds events.
    private func switchTimerTick() {
        let now = clock.now()
        // Never wait for the control lock here: its holder may be stopping
        // this very thread. A busy tick is simply skipped.
        _ = control.withLockIfAvailable { r in
            for trace in r.traces.values where trace.state == .active {
                for (name, channel) in trace.channels {
                    guard let period = trace.settings[name]?.switchTimerMillis, period > 0 else { continue }
                    let last = trace.lastSwitch[name] ?? trace.header.startTSC
                    guard now &- last >= clock.ticks(milliseconds: period) else { continue }
                    trace.lastSwitch[name] = now
                    // Under the control lock: a buffer whose lock a producer
                    // process keeps is skipped this tick, never waited for.
                    channel.buffers.forEach { $0.forceSwitch(onlyIfWritten: true, patience: 5_000_000) }
                }
            }
        }
    }

}

public enum TracerLogLevel: Sendable { case info, warning, error }
