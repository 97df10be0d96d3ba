#if canImport(Glibc)
import Glibc
#endif
import CURCU
import LTTFormat
import LTTRelay
import Synchronization

/// Where a marker's events go right now: one entry per active trace that
/// has the marker's channel enabled. Immutable once published; replaced as
/// a whole and freed after an RCU grace period.
///
/// What RCU publishes is a raw block of plain values, so that a producer
/// reads it with no reference counting at all:
///
///     [owner: the MarkerSinks object][count: Int][Sink][Sink]...
///
/// `owners` keeps every channel alive as long as the block exists.
public final class MarkerSinks: @unchecked Sendable {
    public struct Sink {
        public let channel: Unmanaged<RelayChannel>
        public let alignment: Int
        /// In-process producers may wait this long for room (normal mode);
        /// 0: an event that finds the buffer full is lost.
        public let blockingTimeoutNanoseconds: UInt64
    }
    static let header = 2 * MemoryLayout<Int>.stride
    let block: UnsafeMutableRawPointer
    private let owners: [RelayChannel]

    init(_ entries: [(RelayChannel, Int, UInt64)]) {
        owners = entries.map(\.0)
        block = .allocate(byteCount: Self.header + entries.count * MemoryLayout<Sink>.stride,
                          alignment: MemoryLayout<Sink>.alignment)
        block.storeBytes(of: 0, as: Int.self)
        block.storeBytes(of: entries.count, toByteOffset: MemoryLayout<Int>.stride, as: Int.self)
        let sinks = (block + Self.header).bindMemory(to: Sink.self, capacity: entries.count)
        for (i, e) in entries.enumerated() {
            (sinks + i).initialize(to: Sink(channel: .passUnretained(e.0), alignment: e.1, blockingTimeoutNanoseconds: e.2))
        }
    }

    deinit { block.deallocate() }

    /// Publishes: the block, with this object retained as its owner.
    func retainedBlock() -> UnsafeMutableRawPointer {
        block.storeBytes(of: Unmanaged.passRetained(self).toOpaque(), as: UnsafeMutableRawPointer.self)
        return block
    }

    /// Releases the owner of a block taken out of publication.
    static func release(block: UnsafeMutableRawPointer) {
        Unmanaged<MarkerSinks>.fromOpaque(block.load(as: UnsafeMutableRawPointer.self)).release()
    }

    /// The sinks of a published block.
    @inlinable @inline(__always)
    public static func sinks(of block: UnsafeMutableRawPointer) -> UnsafeBufferPointer<Sink> {
        let count = block.load(fromByteOffset: MemoryLayout<Int>.stride, as: Int.self)
        return UnsafeBufferPointer(start: (block + 2 * MemoryLayout<Int>.stride).assumingMemoryBound(to: Sink.self),
                                   count: count)
    }
}

/// A registered marker: (channel, name, format) with its per-channel event
/// id, its enable state, and the RCU-published list of where to record.
public final class MarkerCore: @unchecked Sendable, CustomStringConvertible {
    public let channel: String
    public let name: String
    public let format: MarkerFormat
    public let eventID: UInt16
    /// Largest stored integer size: fixes the payload alignment per trace.
    public let maxIntegerSize: Int
    /// Whether every event carries an explicit size (form 30): off for
    /// in-process markers, on for `write_event` so that line lengths are
    /// visible without decoding.
    public let sizedHeader: Bool
    /// The fields as the hot path reads them (no reference counting).
    @usableFromInline let slots: UnsafeMutableBufferPointer<PayloadLayout.Slot>
    /// The RCU-protected `MarkerSinks` pointer; nil while nothing records.
    @usableFromInline let sinksSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let enabledFlag = Atomic<Bool>(true)

    init(channel: String, name: String, format: MarkerFormat, eventID: UInt16, sizedHeader: Bool) {
        self.channel = channel
        self.name = name
        self.format = format
        self.eventID = eventID
        self.sizedHeader = sizedHeader
        maxIntegerSize = format.fields.compactMap(\.storedSize).max() ?? 1
        fieldCount = format.fields.count
        slots = .allocate(capacity: max(1, format.fields.count))
        for (i, field) in format.fields.enumerated() { (slots.baseAddress! + i).initialize(to: .init(field)) }
        valueShape = ValueShape(UnsafeBufferPointer(rebasing: slots[..<fieldCount]))
        sinksSlot = .allocate(capacity: 1)
        sinksSlot.initialize(to: nil)
    }

    deinit {
        if let old = sinksSlot.pointee { MarkerSinks.release(block: old) }
        sinksSlot.deallocate()
        slots.deallocate()
    }

    public var description: String { "\(channel).\(name)" }

    /// Connected (recording when a trace is active) or not.
    public var isEnabled: Bool { enabledFlag.load(ordering: .relaxed) }

    /// Whether any trace would record this marker now: one plain load.
    @inlinable @inline(__always)
    public var isRecording: Bool { lttfs_rcu_is_null(sinksSlot) == 0 }

    /// Replaces the sinks; returns the old list, to release after a grace period.
    func publish(_ sinks: MarkerSinks?) -> UnsafeMutableRawPointer? {
        lttfs_rcu_xchg_pointer(sinksSlot, sinks?.retainedBlock())
    }

    /// Runs `body` on each sink inside an RCU read-side critical section.
    @inlinable @inline(__always)
    public func forEachSink(_ body: (MarkerSinks.Sink) -> Void) {
        lttfs_rcu_read_lock()
        defer { lttfs_rcu_read_unlock() }
        guard let block = lttfs_rcu_dereference(sinksSlot) else { return }
        for sink in MarkerSinks.sinks(of: block) { body(sink) }
    }

    /// What recording needs, as plain values.
    @usableFromInline var emitter: EventEmitter {
        EventEmitter(sinksSlot: sinksSlot, slots: UnsafePointer(slots.baseAddress!), eventID: eventID,
                     sizedHeader: sizedHeader, maxIntegerSize: maxIntegerSize)
    }

    /// Records run-time arguments (the dynamic API). Returns false when the
    /// arguments do not fit the format.
    @discardableResult
    public func record(arguments: [TraceArgument]) -> Bool {
        emit(arguments: arguments) != nil
    }

    /// The field count of the format, for a caller that checks it first
    /// (0 for a format with no fields, whose `slots` still hold one entry).
    public let fieldCount: Int

    /// Records the values of a caller that is not Swift (the C library's
    /// `struct lttfs_value` array, `ValueFields`): 16 bytes per field at
    /// `values`, an integer field's bit pattern or a text field's `const
    /// char *` and its length. `fieldCount` must be the format's. Measures
    /// nothing: each text's length came with it. nil: the count is wrong.
    ///
    /// Each value is read once, and the event sized and stored from what
    /// was read: a caller that changed its array meanwhile (another thread
    /// of a buggy program) would otherwise have the store copy more than was
    /// reserved, over the next event in a buffer other processes share.
    /// (Its texts' bytes may still change under the copy: torn, never
    /// longer.) A marker of a common shape (`valueShape`: one to three
    /// fields, each stored in 4 or 8 bytes in host order, or a text)
    /// records through code made for that shape, which reads each value
    /// into the part that sizes and stores it; the others copy the array to
    /// the stack, then loop over the format's slots (`emitThroughSlots`).
    /// Not inlined into the caller: the copies of the recording loop for
    /// the shapes are made once, in this module.
    public func emit(fieldCount: Int, values: UnsafeRawPointer) -> EmitResult? {
        guard fieldCount == self.fieldCount else { return nil }
        if let valueShape { return valueShape.withParts(of: values, RecordingParts(emitter: emitter)) }
        return emitThroughSlots(values: values)
    }

    /// `emit(fieldCount:values:)` through the loop over the format's slots.
    @inline(never)
    func emitThroughSlots(values: UnsafeRawPointer) -> EmitResult {
        let (emitter, slots) = (emitter, UnsafePointer(slots.baseAddress!))
        return withUnsafeTemporaryAllocation(byteCount: max(1, fieldCount &* ValueFields.stride), alignment: 16) { copy in
            copy.baseAddress!.copyMemory(from: values, byteCount: fieldCount &* ValueFields.stride)
            return emitter.emit(FieldsPayload(ValueFields(values: UnsafeRawPointer(copy.baseAddress!)), slots: slots,
                                              count: fieldCount))
        }
    }

    /// The fields' shape, if `ValueShape` has code made for it.
    let valueShape: ValueShape?

    /// What a NULL text records.
    @usableFromInline static let nullText: StaticString = "(null)"

    /// `record(arguments:)`, saying what became of the event (nil: the
    /// arguments do not fit the format).
    public func emit(arguments: [TraceArgument]) -> EmitResult? {
        guard PayloadLayout.size(of: arguments, fields: format.fields, alignment: 0) != nil else { return nil }
        return emitter.emit(ArgumentsPayload(arguments: arguments, fields: format.fields))
    }
}

/// What became of one event across the traces recording its marker.
public struct EmitResult: Sendable, Equatable {
    /// Traces that have it.
    public var recorded = 0
    /// Traces that counted it lost.
    public var lost = 0
    /// A blocking writer's wait was cancelled before the event went
    /// anywhere: nothing was recorded, nothing counted.
    public var cancelled = false
    /// This process is a child of fork(2) recording through its parent's
    /// view of the buffers: refused, nothing recorded or counted.
    public var refused = false
    public init() {}
}

/// A producer that waits for room in every full normal-mode buffer while a
/// reader is there to free it (write_event: the seed's user blocking mode),
/// leaving `LTT_RESERVE_CRITICAL` bytes to the others, for at most
/// `maximumWaitNanoseconds` (or the channel's `blocking_timeout`, if longer),
/// and never past `deadline`. Once a wait ran out, the next events are lost
/// at once until the reader frees a sub-buffer: a FUSE write holds its
/// file's lock in the kernel, so every other writer of the file waits
/// behind it, unkillable, for as long.
public struct BlockingWriter: Sendable {
    /// Ends the wait: the writer got a signal, or the server is stopping.
    public let cancellation: WaitCancellation?
    public let maximumWaitNanoseconds: UInt64
    /// CLOCK_MONOTONIC nanoseconds past which no wait goes, whatever the
    /// channel's `blocking_timeout` (write_event: one bound for all the
    /// lines of a request, however slowly the reader frees room).
    public let deadline: UInt64?
    public static let defaultMaximumWaitNanoseconds: UInt64 = 1_000_000_000
    public init(cancellation: WaitCancellation?, maximumWaitNanoseconds: UInt64 = defaultMaximumWaitNanoseconds,
                deadline: UInt64? = nil) {
        self.cancellation = cancellation
        self.maximumWaitNanoseconds = maximumWaitNanoseconds
        self.deadline = deadline
    }
}

/// A full buffer's channel, held while its producer waits outside RCU.
@usableFromInline
struct WaitingSink {
    @usableFromInline let sink: MarkerSinks.Sink
    @usableFromInline let channel: RelayChannel
    @usableFromInline init(sink: MarkerSinks.Sink, channel: RelayChannel) {
        self.sink = sink
        self.channel = channel
    }
}

/// The recording loop every marker shares: for each sink (inside an RCU
/// read-side section), size the payload for that trace's alignment,
/// reserve, store, commit. Plain values only: no reference counting on the
/// way (a shared object's count would bounce between the producers' CPUs).
@usableFromInline
struct EventEmitter {
    @usableFromInline let sinksSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The format's fields: what each value becomes in the payload.
    @usableFromInline let slots: UnsafePointer<PayloadLayout.Slot>
    @usableFromInline let eventID: UInt16
    @usableFromInline let sizedHeader: Bool
    @usableFromInline let maxIntegerSize: Int

    @usableFromInline
    init(sinksSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, slots: UnsafePointer<PayloadLayout.Slot>,
         eventID: UInt16, sizedHeader: Bool, maxIntegerSize: Int) {
        self.sinksSlot = sinksSlot
        self.slots = slots
        self.eventID = eventID
        self.sizedHeader = sizedHeader
        self.maxIntegerSize = maxIntegerSize
    }

    /// Records `payload` (its size for a trace's alignment, then its
    /// stores, which run under the buffer lock and must only store bytes)
    /// into every trace that records the marker.
    ///
    /// Every trace that records the marker gets the event once, or counts
    /// it lost: inside the RCU read-side section each buffer with room gets
    /// it at once; a full one whose producer may wait (`blocking_timeout`
    /// for in-process markers, `writer` for write_event) is waited on after
    /// that section, so that one full trace never holds up the others, nor
    /// an RCU grace period.
    ///
    /// The payload is a value of a concrete type (EventPayloads.swift), not
    /// two closures: closures handed on to the slow path were materialized
    /// every event (built on the stack, or, made escaping with
    /// `withoutActuallyEscaping`, allocated on the heap).
    @inlinable @inline(__always) @discardableResult
    func emit<Payload: EventPayload>(_ payload: Payload, writer: BlockingWriter? = nil) -> EmitResult {
        lttfs_rcu_read_lock()
        guard let block = lttfs_rcu_dereference(sinksSlot) else {
            lttfs_rcu_read_unlock()
            return EmitResult()
        }
        let sinks = MarkerSinks.sinks(of: block)
        // One CPU for the event in every trace that records it.
        let cpu = RelayChannel.currentCPU()
        var result = EmitResult()
        var waiting: [WaitingSink]? = nil
        var i = 0
        while i < sinks.count {
            let sink = sinks[i]
            i &+= 1
            let channel = sink.channel
            let buffer = channel._withUnsafeGuaranteedRef { $0.bufferUnretained(cpu: cpu) }
            // The event's time, read first: the read overlaps the sizing
            // and the lock (RelayBuffer.beginEvent(clockReading:)).
            let now = buffer._withUnsafeGuaranteedRef { $0.clock.now() }
            let alignment = sink.alignment
            let dataSize = UInt64(payload.size(alignment: alignment))
            let largest = UInt64(PayloadLayout.largestAlign(maxIntegerSize: maxIntegerSize, alignment: alignment))
            let (id, sized) = (eventID, sizedHeader)
            let mayWait = writer != nil || sink.blockingTimeoutNanoseconds > 0
            // nil: recorded; else why not (already counted as lost unless
            // the producer may wait).
            let failure: ReserveFailure? = buffer._withUnsafeGuaranteedRef { b in
                switch b.beginEvent(eventID: id, dataSize: dataSize, largestAlign: largest, sizedHeader: sized,
                                    countFullAsLost: !mayWait, clockReading: now) {
                case .success(let event):
                    payload.store(at: event.payload, alignment: alignment)
                    event.commit()
                    return nil
                case .failure(let why):
                    return why
                }
            }
            switch failure {
            case nil:
                result.recorded &+= 1
            case .notRecording?:
                // Nowhere to record it: not a loss of this trace's.
                break
            case .notOwner?:
                result.refused = true
            case .full? where mayWait:
                // Counted as outside before the read-side section ends: a
                // destroy that waited for the grace period then waits for
                // this producer too.
                let held = channel.takeUnretainedValue()
                held.producersOutside.add(1, ordering: .acquiringAndReleasing)
                if waiting == nil { waiting = [] }
                waiting!.append(WaitingSink(sink: sink, channel: held))
            case .some:
                result.lost &+= 1
            }
        }
        lttfs_rcu_read_unlock()
        if let waiting { emitWaiting(waiting, payload, writer: writer, cpu: cpu, result: &result) }
        return result
    }

    /// The rest of `emit`, outside the RCU read-side section: waits for
    /// room in each full buffer whose producer may wait, then records, or
    /// counts the event lost there. A cancellation (the writer's signal,
    /// shutdown) before the event went anywhere leaves it unrecorded and
    /// uncounted (`cancelled`: the caller reports EINTR, and a retry records
    /// it once); after it went somewhere, the rest count it lost, so that a
    /// retry can never duplicate it.
    @usableFromInline @inline(never)
    func emitWaiting<Payload: EventPayload>(_ waiting: [WaitingSink], _ payload: Payload, writer: BlockingWriter?,
                                            cpu: Int32, result: inout EmitResult) {
        for entry in waiting {
            defer { entry.channel.producersOutside.subtract(1, ordering: .acquiringAndReleasing) }
            let alignment = entry.sink.alignment
            let dataSize = UInt64(payload.size(alignment: alignment))
            let buffer = entry.channel.bufferUnretained(cpu: cpu).takeUnretainedValue()
            let largest = UInt64(PayloadLayout.largestAlign(maxIntegerSize: maxIntegerSize, alignment: alignment))
            var policy = writer.map {
                RelayBuffer.WaitPolicy(reserveCritical: RelayBuffer.reserveCritical,
                                       timeoutNanoseconds: max($0.maximumWaitNanoseconds,
                                                               entry.sink.blockingTimeoutNanoseconds),
                                       cancellation: $0.cancellation, onlyWithReader: true, notWhileStalled: true)
            } ?? RelayBuffer.WaitPolicy(timeoutNanoseconds: entry.sink.blockingTimeoutNanoseconds)
            if let last = writer?.deadline { policy.deadline = min(policy.deadline ?? last, last) }
            switch buffer.recordWaiting(eventID: eventID, dataSize: dataSize, largestAlign: largest,
                                        sizedHeader: sizedHeader, policy: policy,
                                        payload: { payload.store(at: $0, alignment: alignment) }) {
            case .recorded:
                result.recorded &+= 1
            case .lost:
                result.lost &+= 1
            case .notRecording:
                break
            case .cancelled:
                if result.recorded == 0 && result.lost == 0 {
                    result.cancelled = true
                } else {
                    buffer.countLost(1)
                    result.lost &+= 1
                }
            }
        }
    }

    /// Records the values of a typed marker laid out as a Swift tuple
    /// (`TupleLayout`): one non-generic loop over the fields, whatever the
    /// marker's types.
    @usableFromInline @inline(never)
    func record(tuple: UnsafeRawPointer, fields: UnsafePointer<TupleLayout.Field>, count: Int) {
        emit(FieldsPayload(TupleFields(tuple: tuple, layout: fields), slots: slots, count: count))
    }
}

/// A marker with typed arguments: register once, then record values of
/// exactly the types given at registration, best with `#record` (which
/// evaluates them only when a trace records the marker, and passes them
/// borrowed). Nothing is allocated or formatted on this path; a marker no
/// trace records costs one load.
///
///     let request = try tracer.marker("http", "request", "status %d path %s",
///                                     as: (Int32, String).self)
///     #record(request, 200, path)
///     request.record(200, path)      // the same event; retains `path` first
///
/// How the values reach the buffer: Swift (6.3) does not unroll a loop over
/// a parameter pack, even where the types are known, so walking the pack
/// costs witness calls and copies for every value of every event. Instead
/// `record` forms the tuple `(repeat each values)` (which the compiler does
/// lay out flat) and one non-generic loop reads each field at the offset
/// `TupleLayout` computed once, at registration. Types whose bytes are not a
/// plain integer, a String or a StaticString
/// (`TraceValueRepresentation.opaque`) take the pack walk instead.
public struct Marker<each Value: TraceValue>: @unchecked Sendable {
    /// Owns what the fields below point into.
    public let core: MarkerCore
    /// Owns `fields`; nil when some type is opaque.
    let layout: TupleLayout?
    // What the hot path reads, copied out of `core` so that recording never
    // touches a shared object's reference count (two threads doing so
    // would bounce its cache line between their CPUs on every event).
    @usableFromInline let emitter: EventEmitter
    @usableFromInline let fields: UnsafePointer<TupleLayout.Field>?
    @usableFromInline let fieldCount: Int
    /// Every field's slot is its value's type as it is: an integer field
    /// stored in the type's size, in host order, a text as a text. Then
    /// `#record` stores with code specialized for the types
    /// (TypedPayload.swift) instead of reading each slot.
    @usableFromInline let typedSlots: Bool

    init(core: MarkerCore) {
        self.core = core
        layout = TupleLayout(of: (repeat each Value).self)
        emitter = core.emitter
        fields = layout.map { UnsafePointer($0.fields.baseAddress!) }
        fieldCount = core.fieldCount
        let (slots, count) = (core.emitter.slots, core.fieldCount)
        typedSlots = layout.map { layout in
            layout.count == count && (0..<count).allSatisfy { i in
                let (field, slot) = (layout.fields[i], slots[i])
                return field.size == 0 ? slot.size == 0 : slot.size == field.size && !slot.networkOrder
            }
        } ?? false
    }

    /// Whether any trace records this marker now: one load. In a hot loop,
    /// `if marker.isRecording { marker.record(...) }` skips even forming
    /// the arguments (what LTTng-UST's tracepoint() macro does), which
    /// saves the reference counting of String arguments when disabled.
    @inlinable @inline(__always)
    public var isRecording: Bool { lttfs_rcu_is_null(emitter.sinksSlot) == 0 }

    /// Records the values into every trace that records this marker. The
    /// check is inlined at the call site; with no trace recording the
    /// marker, nothing else runs, but the caller has already copied the
    /// values into the parameter pack (a `String` retained and released):
    /// `#record(marker, values...)` does not.
    @inlinable @inline(__always)
    public func record(_ values: repeat each Value) {
        guard lttfs_rcu_is_null(emitter.sinksSlot) == 0 else { return }
        if let fields {
            let (emitter, count) = (emitter, fieldCount)
            withUnsafeBytes(of: (repeat each values)) { tuple in
                emitter.record(tuple: tuple.baseAddress ?? UnsafeRawPointer(fields), fields: fields, count: count)
            }
        } else {
            recordWalkingPack(repeat each values)
        }
    }

    /// Records the values that `values` forms, and forms them only when a
    /// trace records this marker: disabled, this is one load and a branch
    /// whatever the argument types, as LTTng-UST's `tracepoint()` macro,
    /// which does not evaluate its arguments either. (`record(a, b)` with
    /// a `String` argument also pays for its reference counting when
    /// disabled: Swift passes a parameter pack's values indirectly and
    /// copies them to do so, about 6 ns here.) The closure captures the
    /// caller's values by reference, so forming nothing costs nothing.
    ///
    ///     marker.record { (request.id, request.path) }
    @inlinable @inline(__always)
    public func record(_ values: () -> (repeat each Value)) {
        guard lttfs_rcu_is_null(emitter.sinksSlot) == 0 else { return }
        let formed = values()
        record(repeat each formed)
    }

    /// The general path, for opaque types: each value sizes and stores itself.
    @inlinable @inline(never)
    func recordWalkingPack(_ values: repeat each Value) {
        emitter.emit(PackPayload(values: (repeat each values), slots: emitter.slots))
    }
}
