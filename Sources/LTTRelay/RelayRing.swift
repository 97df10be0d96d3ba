import Atomics
import CRelayABI
import LTTFormat
/*
 * The locked relay ring: ltt-relay-locked.c's algorithm as a value.
 *
 * One ring is one per-CPU buffer: `allocSize` bytes cut into `subbufferCount`
 * sub-buffers. Writers reserve a slot at `offset`, write into it, then commit
 * it; a reader takes whole sub-buffers at `consumed`. Both positions only grow.
 *
 *   consumed                           offset
 *      |  sub-buffer  |  sub-buffer  |  sub-|buffer  |
 *      [ delivered, readable         ][ being written ]
 *
 * Each sub-buffer keeps a free-running `commitCount`: the bytes committed to
 * it over all ring passes. On pass k a sub-buffer is complete when its count
 * reaches (k + 1) * subbufferSize; the seed compares that modulo
 * `commitCountMask` (see RelayGeometry.isComplete). Padding at the end of a
 * sub-buffer and its 68-byte header are committed by the switch code, so a
 * sub-buffer completes exactly when every event reserved in it is committed.
 *
 * A reservation that reaches a sub-buffer whose count is not what the new pass
 * expects has found a corrupted sub-buffer (a writer reserved and never
 * committed: in this project, a producer process that died holding a slot).
 * The seed then pushes the reader past it even in normal mode, fixes the
 * count (`reserve_commit_diff`) and counts `corruptedSubbuffers`.
 *
 * The ring has no lock of its own: the caller serializes every mutating call
 * (RelayBuffer holds a lock around them, as the seed holds its spinlock from
 * reserve to commit). Nothing here blocks, allocates or does I/O, which is
 * what lets it run under that lock. Out-of-order commits are allowed, which
 * is what the model test and the shared-memory producers need.
 *
 * Invariants, checked by the tests after every step:
 *  - consumed is a multiple of subbufferSize, consumed <= subbufTrunc(offset);
 *  - subbufTrunc(offset) - consumed <= allocSize;
 *  - offset is never on a sub-buffer boundary except right after a switch
 *    that did not open the next sub-buffer (an event ending exactly on it, or
 *    a FORCE_FLUSH);
 *  - every sub-buffer strictly between consumed and the writer's is complete
 *    unless it was corrupted.
 */

/// Why a reservation failed. Each failure has been counted in `eventsLost`.
public enum ReserveFailure: Error, Equatable, Sendable {
    /// Normal mode and every sub-buffer is unread: the event is lost (-ENOSPC).
    case full
    /// The event does not fit in a sub-buffer even when it is empty (-ENOSPC).
    case tooLarge
    /// Recorded from inside the tracer on this thread (-EPERM in the seed).
    case nested
    /// The buffer was finalized; nothing more is written.
    case finalized
    /// The buffer lock stayed with another holder past a writer's patience
    /// (a producer process stopped or stuck inside it): RelayLock.
    case busy
    /// A child of fork(2) recording through its parent's view of a buffer:
    /// refused, not counted (the buffer is the parent's).
    case notOwner
    /// The trace does not record into the buffer (stopped, destroyed: the
    /// ring's `recording`): nothing recorded, nothing counted, as for a
    /// producer that already knows.
    case notRecording
}

/// A reserved slot, to be filled and then committed.
public struct RelaySlot: Sendable, Equatable {
    /// Position of the slot start (before the header padding): the seed's
    /// `offsets.begin`.
    public let begin: UInt64
    /// Total bytes reserved: padding, header, payload alignment, payload.
    public let size: UInt64
    /// Position of the event header word (`*buf_offset` in the seed).
    public let headerOffset: UInt64
    /// Position of the payload.
    public let payloadOffset: UInt64
    /// The event's time: its clock reading, never before the ring's last.
    public let tsc: UInt64
    /// The header form to write: the requested one, or `.idSizeTSC` when the
    /// clock jumped too far (the seed's `last_tsc_overflow`).
    public let form: EventHeaderForm

    @inlinable
    init(begin: UInt64, size: UInt64, headerOffset: UInt64, payloadOffset: UInt64, tsc: UInt64,
         form: EventHeaderForm) {
        self.begin = begin
        self.size = size
        self.headerOffset = headerOffset
        self.payloadOffset = payloadOffset
        self.tsc = tsc
        self.form = form
    }
}

/// Why RELAY_GET_SUBBUF / RELAY_PUT_SUBBUF refused.
public enum SubbufferAccessError: Error, Equatable, Sendable {
    /// GET: the sub-buffer at `consumed` is not fully committed, or the writer
    /// is still in it (EAGAIN).
    case notReady
    /// PUT: the cookie is not the current `consumed`: the writer pushed the
    /// reader past the sub-buffer that was taken (EIO).
    case pushed
    /// PUT: no sub-buffer is taken: no GET since the last PUT, or the
    /// writer pushed the reader past the one that was (EIO). Nothing moves.
    case notHeld
}

/// The seed's two force-switch modes.
public enum ForceSwitchMode: Sendable {
    /// A live switch (timer, flush on demand): close the current sub-buffer
    /// and open the next one.
    case active
    /// The final flush at destroy: close the partial sub-buffer, open nothing.
    case flush
}

/// Per-ring counters, beyond the seed's two, for the status files.
public struct RelayCounters: Sendable, Equatable {
    public var eventsWritten: UInt64 = 0
    public var eventsLost: UInt64 = 0
    public var corruptedSubbuffers: UInt64 = 0
    public var subbuffersDelivered: UInt64 = 0
    public var subbuffersConsumed: UInt64 = 0
    /// Flight recorder: sub-buffers the writer pushed the reader past before
    /// anyone consumed them, and the events they held (ftrace's `overrun`).
    public var subbuffersOverwritten: UInt64 = 0
    public var eventsOverwritten: UInt64 = 0
    /// Times the buffer lock was taken back from a producer that died
    /// holding it.
    public var locksRecovered: UInt64 = 0
    /// The server gave the buffer up (RelayBuffer): then every other
    /// counter reads 0.
    public var abandoned = false
    public var bytesReadable: UInt64 = 0
    public var finalized = false
    public init() {}
}

/// A view of one ring: the immutable shape, and pointers to the state, the
/// counts and the bytes, which live in the buffer's shared mapping
/// (`lttfs_ring_control`, see RingMapping). The caller serializes every
/// mutating call with the ring's lock. A class, not a struct: the view is
/// 136 bytes, and Swift copied a struct view out of its buffer (a memcpy)
/// on every event, to call a method on it.
public final class RelayRing {
    public let geometry: RelayGeometry
    /// Flight-recorder mode: the writer pushes the reader instead of losing.
    public let overwrite: Bool
    public let trace: TraceHeaderFields
    /// The ring's bytes: `allocSize` of them, page aligned.
    public let memory: UnsafeMutableRawPointer
    /// `subbufferCount` free-running commit counters.
    @usableFromInline let commitCount: UnsafeMutablePointer<UInt64>
    /// `subbufferCount` event counts, one per sub-buffer, for its current
    /// pass: what a flight-recorder push overwrites.
    @usableFromInline let eventCount: UnsafeMutablePointer<UInt64>
    /// The state, shared with every process that maps the buffer.
    @usableFromInline let control: UnsafeMutablePointer<lttfs_ring_control>

    // The state's fields under the seed's names. The fast path's are
    // @usableFromInline; the diagnostics read them through `counters`.
    /// Write position (the seed's `offset`).
    @usableFromInline var offset: UInt64 {
        @inline(__always) get { control.pointee.offset }
        @inline(__always) set { control.pointee.offset = newValue }
    }
    /// Read position, always on a sub-buffer boundary (the seed's `consumed`).
    public internal(set) var consumed: UInt64 {
        get { control.pointee.consumed }
        set { control.pointee.consumed = newValue }
    }
    /// Clock of the last reservation or switch (`save_last_tsc`).
    @usableFromInline var lastTSC: UInt64 {
        @inline(__always) get { control.pointee.last_tsc }
        @inline(__always) set { control.pointee.last_tsc = newValue }
    }
    public internal(set) var eventsLost: UInt64 {
        get { control.pointee.events_lost }
        set { control.pointee.events_lost = newValue }
    }
    public internal(set) var corruptedSubbuffers: UInt64 {
        get { control.pointee.corrupted_subbuffers }
        set { control.pointee.corrupted_subbuffers = newValue }
    }
    /// Whether the trace records into this buffer (`recording`, lock held).
    @usableFromInline var recording: Bool {
        @inline(__always) get { control.pointee.recording != 0 }
        set { control.pointee.recording = newValue ? 1 : 0 }
    }

    /// No more writes; readers get POLLHUP once drained.
    @usableFromInline var finalized: Bool {
        @inline(__always) get { control.pointee.finalized != 0 }
        set { control.pointee.finalized = newValue ? 1 : 0 }
    }
    /// Set by a delivery (`ltt_deliver`), cleared by whoever wakes readers.
    public var wakeupReaders: Bool {
        @inline(__always) get { control.pointee.wakeup_readers != 0 }
        @inline(__always) set { control.pointee.wakeup_readers = newValue ? 1 : 0 }
    }
    @usableFromInline var eventsWritten: UInt64 {
        @inline(__always) get { control.pointee.events_written }
        @inline(__always) set { control.pointee.events_written = newValue }
    }
    @usableFromInline var subbuffersDelivered: UInt64 {
        @inline(__always) get { control.pointee.subbuffers_delivered }
        @inline(__always) set { control.pointee.subbuffers_delivered = newValue }
    }
    public internal(set) var subbuffersConsumed: UInt64 {
        get { control.pointee.subbuffers_consumed }
        set { control.pointee.subbuffers_consumed = newValue }
    }
    public internal(set) var subbuffersOverwritten: UInt64 {
        get { control.pointee.subbuffers_overwritten }
        set { control.pointee.subbuffers_overwritten = newValue }
    }
    public internal(set) var eventsOverwritten: UInt64 {
        get { control.pointee.events_overwritten }
        set { control.pointee.events_overwritten = newValue }
    }
    /// Locks taken back from a holder found dead (RelayLock).
    public internal(set) var locksRecovered: UInt64 {
        get { control.pointee.locks_recovered }
        set { control.pointee.locks_recovered = newValue }
    }
    /// The position of the sub-buffer a reader took (GET) and has not given
    /// back (PUT). Not in the seed, whose put_subbuf trusted any cookie equal
    /// to `consumed`: a PUT with no GET then moved `consumed` past a
    /// sub-buffer the writer was still in. A PUT succeeds only when it names
    /// `heldPosition` and that is still `consumed`; GET set it when
    /// `consumed < subbufTrunc(offset)`, so the reader never passes the writer.
    public internal(set) var heldPosition: UInt64? {
        get { control.pointee.held != 0 ? control.pointee.held_position : nil }
        set {
            control.pointee.held_position = newValue ?? 0
            control.pointee.held = newValue == nil ? 0 : 1
        }
    }

    /// The view of a ring whose state is at `control`, its counts right
    /// after it (`RingMapping`), its bytes at `memory`. Nothing is written:
    /// `start` makes a new ring.
    public init(geometry: RelayGeometry, overwrite: Bool, trace: TraceHeaderFields,
                control: UnsafeMutablePointer<lttfs_ring_control>, memory: UnsafeMutableRawPointer) {
        self.geometry = geometry
        self.overwrite = overwrite
        self.trace = trace
        self.memory = memory
        self.control = control
        commitCount = RingMapping.commitCounts(control)
        eventCount = commitCount + Int(geometry.subbufferCount)
    }

    /// `ltt_relay_create_buffer`: the first sub-buffer is opened with the
    /// trace's start clock and its header is committed.
    public func start() {
        commitCount.initialize(repeating: 0, count: Int(geometry.subbufferCount))
        eventCount.initialize(repeating: 0, count: Int(geometry.subbufferCount))
        offset = SubbufferHeader.size
        consumed = 0
        lastTSC = trace.startTSC
        bufferBegin(tsc: trace.startTSC, subbufferIndex: 0)
        commitCount[0] &+= SubbufferHeader.size
    }

    public func commitCount(ofSubbuffer index: Int) -> UInt64 { commitCount[index] }

    public var counters: RelayCounters {
        var c = RelayCounters()
        c.eventsWritten = eventsWritten
        c.eventsLost = eventsLost
        c.corruptedSubbuffers = corruptedSubbuffers
        c.subbuffersDelivered = subbuffersDelivered
        c.subbuffersConsumed = subbuffersConsumed
        c.subbuffersOverwritten = subbuffersOverwritten
        c.eventsOverwritten = eventsOverwritten
        c.locksRecovered = locksRecovered
        c.bytesReadable = readableBytes(at: 0)
        c.finalized = finalized
        return c
    }

    // MARK: Header callbacks

    /// `ltt_buffer_begin_callback`.
    @inline(__always)
    func bufferBegin(tsc: UInt64, subbufferIndex: Int) {
        SubbufferHeader.writeBegin(at: memory + subbufferIndex &* Int(geometry.subbufferSize), tsc: tsc,
                                   bufSize: UInt32(truncatingIfNeeded: geometry.subbufferSize), trace: trace)
    }

    /// `ltt_buffer_end_callback`: `endOffset` is the position where the data
    /// of the sub-buffer ends; never the sub-buffer's very start.
    @inline(__always)
    func bufferEnd(tsc: UInt64, endOffset: UInt64, subbufferIndex: Int) {
        let lost = geometry.subbufOffset(geometry.subbufferSize &- endOffset)
        SubbufferHeader.writeEnd(at: memory + subbufferIndex &* Int(geometry.subbufferSize), tsc: tsc,
                                 lostSize: UInt32(truncatingIfNeeded: lost),
                                 eventsLost: UInt32(truncatingIfNeeded: eventsLost),
                                 subbufCorrupt: UInt32(truncatingIfNeeded: corruptedSubbuffers))
    }

    /// `ltt_deliver`: only flags the readers; the caller's notifier wakes them.
    @inlinable @inline(__always)
    func deliver() {
        wakeupReaders = true
        subbuffersDelivered &+= 1
    }

    // MARK: Reserve

    struct Offsets {
        var begin: UInt64 = 0, end: UInt64 = 0, old: UInt64 = 0
        var beginSwitch = false, endSwitchCurrent = false, endSwitchOld = false
        var reserveCommitDiff: UInt64 = 0
        var beforeHeaderPadding: UInt64 = 0, size: UInt64 = 0
        var form: EventHeaderForm = .compact
    }

    /// `ltt_relay_try_reserve` without its side effects: where the event
    /// would go, or why it cannot. Nothing is counted here; `reserve`
    /// counts a failure as lost (a full buffer only if `countFullAsLost`).
    @inline(__always)
    func tryReserve(dataSize: UInt64, largestAlign: UInt64, form requested: EventHeaderForm,
                    tsc: UInt64) -> Result<Offsets, ReserveFailure> {
        var o = Offsets()
        o.begin = offset
        o.old = offset
        o.form = requested
        // last_tsc_overflow: the 27 clock bits of the header would wrap.
        if (tsc &- lastTSC) >> UInt64(EventHeader.tscBits) != 0 { o.form = .idSizeTSC }

        @inline(__always) func place(_ o: inout Offsets) {
            let h = EventHeader.size(at: o.begin, dataSize: dataSize, form: o.form, trace: trace)
            o.beforeHeaderPadding = h.beforeHeaderPadding
            o.size = h.size &+ trace.padding(at: o.begin &+ h.size, forSize: largestAlign) &+ dataSize
        }

        if geometry.subbufOffset(o.begin) == 0 {
            o.beginSwitch = true
        } else {
            place(&o)
            if geometry.subbufOffset(o.begin) &+ o.size > geometry.subbufferSize {
                o.endSwitchOld = true
                o.beginSwitch = true
            }
        }
        if o.beginSwitch {
            if o.endSwitchOld { o.begin = geometry.subbufAlign(o.begin) }
            o.begin &+= SubbufferHeader.size
            // Test new buffer integrity.
            let index = geometry.subbufIndex(o.begin)
            o.reserveCommitDiff = (geometry.bufferTrunc(o.begin) >> geometry.subbufferCountOrder)
                &- (commitCount[index] & geometry.commitCountMask)
            if o.reserveCommitDiff == 0 {
                // Next sub-buffer not corrupted: in normal mode, a full
                // buffer loses the event.
                if !overwrite && geometry.subbufTrunc(o.begin) &- geometry.subbufTrunc(consumed) >= geometry.allocSize {
                    return .failure(.full)
                }
            }
            // Else the next sub-buffer is corrupted: push the reader even in
            // normal mode (ltt_reserve_push_reader); it is safe to write.
            place(&o)
            if geometry.subbufOffset(o.begin) &+ o.size > geometry.subbufferSize {
                // Too big for any sub-buffer: do not complete the switch.
                return .failure(.tooLarge)
            }
        }
        o.end = o.begin &+ o.size
        if geometry.subbufOffset(o.end) == 0 {
            // The event ends exactly on the next sub-buffer's start.
            o.endSwitchCurrent = true
        }
        return .success(o)
    }

    /// `ltt_relay_reserve_slot`: reserves room for an event of `dataSize`
    /// payload bytes whose largest field wants `largestAlign`, switching
    /// sub-buffers as needed. A failure has already been counted as lost.
    @inlinable @inline(__always)
    public func reserve(dataSize: UInt64, largestAlign: UInt64 = 1,
                                 form requested: EventHeaderForm = .compact,
                                 tsc: UInt64, countFullAsLost: Bool = true) -> Result<RelaySlot, ReserveFailure> {
        if let slot = reserveInCurrentSubbuffer(dataSize: dataSize, largestAlign: largestAlign, form: requested,
                                                tsc: tsc) {
            return .success(slot)
        }
        return reserveWithSwitch(dataSize: dataSize, largestAlign: largestAlign, form: requested, tsc: tsc,
                                 countFullAsLost: countFullAsLost)
    }

    /// The common case of `reserve`, inlined into the producer: the event
    /// fits in the current sub-buffer without reaching its end, and the
    /// clock moved less than the header's 27 bits since the last event.
    /// Then `ltt_relay_try_reserve` finds no switch to do, and
    /// `ltt_reserve_push_reader` nothing to push (the reader was pushed, if
    /// at all, when the writer entered this sub-buffer). nil: take the
    /// general path, which redoes everything.
    @inlinable @inline(__always)
    func reserveInCurrentSubbuffer(dataSize: UInt64, largestAlign: UInt64, form: EventHeaderForm,
                                            tsc: UInt64) -> RelaySlot? {
        let begin = offset
        let inSubbuffer = geometry.subbufOffset(begin)
        guard !finalized, inSubbuffer != 0, (tsc &- lastTSC) >> UInt64(EventHeader.tscBits) == 0 else { return nil }
        let header = EventHeader.size(at: begin, dataSize: dataSize, form: form, trace: trace)
        let size = header.size &+ trace.padding(at: begin &+ header.size, forSize: largestAlign) &+ dataSize
        guard inSubbuffer &+ size < geometry.subbufferSize else { return nil }
        let end = begin &+ size
        notePending(begin: begin, size: size, old: begin)
        offset = end
        lastTSC = tsc
        return RelaySlot(begin: begin, size: size, headerOffset: begin &+ header.beforeHeaderPadding,
                         payloadOffset: end &- dataSize, tsc: tsc, form: form)
    }

    /// `reserve` when the event opens or closes a sub-buffer, or cannot be
    /// placed: the seed's whole algorithm.
    @usableFromInline
    func reserveWithSwitch(dataSize: UInt64, largestAlign: UInt64, form requested: EventHeaderForm,
                                    tsc: UInt64, countFullAsLost: Bool) -> Result<RelaySlot, ReserveFailure> {
        if finalized {
            eventsLost &+= 1
            return .failure(.finalized)
        }
        var o: Offsets
        switch tryReserve(dataSize: dataSize, largestAlign: largestAlign, form: requested, tsc: tsc) {
        case .success(let placed): o = placed
        case .failure(let why):
            // A producer that will wait for room and retry has lost nothing yet.
            if why != .full || countFullAsLost { eventsLost &+= 1 }
            return .failure(why)
        }
        notePending(begin: o.begin, size: o.size, old: o.old)
        offset = o.end
        lastTSC = tsc
        pushReader(&o)
        if o.endSwitchOld { switchOldSubbuffer(&o, tsc: tsc) }
        if o.beginSwitch { switchNewSubbuffer(&o, tsc: tsc) }
        if o.endSwitchCurrent { endSwitchCurrent(&o, tsc: tsc) }
        return .success(RelaySlot(begin: o.begin, size: o.size, headerOffset: o.begin &+ o.beforeHeaderPadding,
                                  payloadOffset: o.end &- dataSize, tsc: tsc, form: o.form))
    }

    /// `ltt_reserve_push_reader`.
    @inline(__always)
    func pushReader(_ o: inout Offsets) {
        let consumedOld = consumed
        let writerSubbuffer = geometry.subbufTrunc(o.end &- 1)
        // Push the reader when the writer reached it (overwrite mode), or when
        // the new sub-buffer is corrupted; never farther than the writer. The
        // reader is never ahead of the writer (GET and PUT keep it behind),
        // and the first test keeps a broken state from wrapping the
        // subtraction into a push on every event.
        if consumedOld <= writerSubbuffer
            && writerSubbuffer &- geometry.subbufTrunc(consumedOld) >= geometry.allocSize {
            consumed = geometry.subbufAlign(consumedOld)
        }
        guard consumed != consumedOld else { return }
        if o.reserveCommitDiff != 0 {
            // We won the push: rebalance reserve and commit. The skipped
            // sub-buffer is not delivered.
            commitCount[geometry.subbufIndex(o.begin)] &+= o.reserveCommitDiff
            // A whole sub-buffer skipped in flight-recorder mode is normal;
            // anything else was partly written: corrupted.
            if !overwrite || o.reserveCommitDiff != geometry.subbufferSize {
                corruptedSubbuffers &+= 1
            }
        } else {
            // A complete sub-buffer nobody consumed is overwritten (flight
            // recorder): count it and its events, which no reader will see.
            subbuffersOverwritten &+= 1
            eventsOverwritten &+= eventCount[geometry.subbufIndex(consumedOld)]
        }
    }

    /// `ltt_reserve_switch_old_subbuf`: close the sub-buffer the writer left,
    /// committing its padding.
    @inline(__always)
    func switchOldSubbuffer(_ o: inout Offsets, tsc: UInt64) {
        let oldIndex = geometry.subbufIndex(o.old &- 1)
        bufferEnd(tsc: tsc, endOffset: o.old, subbufferIndex: oldIndex)
        commitCount[oldIndex] &+= geometry.subbufferSize &- (geometry.subbufOffset(o.old &- 1) &+ 1)
        if geometry.isComplete(commitCount: commitCount[oldIndex], at: o.old &- 1) { deliver() }
    }

    /// `ltt_reserve_switch_new_subbuf`: open the next sub-buffer, committing
    /// its header.
    @inline(__always)
    func switchNewSubbuffer(_ o: inout Offsets, tsc: UInt64) {
        let beginIndex = geometry.subbufIndex(o.begin)
        bufferBegin(tsc: tsc, subbufferIndex: beginIndex)
        eventCount[beginIndex] = 0
        commitCount[beginIndex] &+= SubbufferHeader.size
        if geometry.isComplete(commitCount: commitCount[beginIndex], at: o.end &- 1) { deliver() }
    }

    /// `ltt_reserve_end_switch_current`: the event fills its sub-buffer to
    /// the last byte; close it now (no padding to commit).
    @inline(__always)
    func endSwitchCurrent(_ o: inout Offsets, tsc: UInt64) {
        let endIndex = geometry.subbufIndex(o.end &- 1)
        bufferEnd(tsc: tsc, endOffset: o.end, subbufferIndex: endIndex)
        commitCount[endIndex] &+= geometry.subbufferSize &- (geometry.subbufOffset(o.end &- 1) &+ 1)
        if geometry.isComplete(commitCount: commitCount[endIndex], at: o.end &- 1) { deliver() }
    }

    /// Counts events lost outside the lock (nested recording).
    public func countLost(_ n: UInt64) { eventsLost &+= n }

    // MARK: Commit

    /// `ltt_relay_commit_slot`: the slot is written; deliver its sub-buffer
    /// if this was the last commit it waited for.
    @inlinable @inline(__always)
    public func commit(_ slot: RelaySlot) {
        // The slot start is never on a boundary (a header precedes it), so it
        // names the slot's sub-buffer, as `buf_offset - 1` does in the seed.
        let index = geometry.subbufIndex(slot.begin)
        commitCount[index] &+= slot.size
        eventCount[index] &+= 1
        eventsWritten &+= 1
        if geometry.isComplete(commitCount: commitCount[index], at: slot.begin) { deliver() }
        // Committed: nothing for a successor to repair.
        atomicMemoryFence(ordering: .releasing)
        control.pointee.pending_size = 0
    }

    /// The slot about to be reserved, written before `offset` moves (the
    /// fence keeps the compiler from moving these stores after it): a
    /// process that dies from here to its commit leaves it for whoever
    /// takes the lock over (`repairAbandonedSlot`).
    @inlinable @inline(__always)
    func notePending(begin: UInt64, size: UInt64, old: UInt64) {
        control.pointee.pending_begin = begin
        control.pointee.pending_old = old
        control.pointee.pending_size = size
        atomicMemoryFence(ordering: .releasing)
    }

    /// A slot is pending: the lock's previous holder died between reserve
    /// and commit (normal holders clear it before they unlock).
    @inlinable @inline(__always)
    public var hasAbandonedSlot: Bool { control.pointee.pending_size != 0 }

    /// Not in the seed, whose writers could not die inside the lock: the
    /// holder that reserved the pending slot is dead. If it had committed
    /// (it died just after), or had not yet moved `offset`, nothing is to
    /// be done. Otherwise the slot is the last thing reserved, and no byte
    /// after it: its sub-buffer is closed right before it, as a switch
    /// would (the slot's bytes become the sub-buffer's padding, `lost_size`),
    /// the sub-buffer it left behind is closed too if it was switching, and
    /// every event committed around it is delivered intact. Only the dead
    /// holder's event is lost: counted in `eventsLost`, and the sub-buffer
    /// in `corruptedSubbuffers` (the header says so to readers). The seed's
    /// own path (pushing the reader past a sub-buffer that never completes)
    /// would lose every other writer's events in it.
    public func repairAbandonedSlot() {
        guard hasAbandonedSlot else { return }
        let begin = control.pointee.pending_begin
        let end = begin &+ control.pointee.pending_size
        let old = control.pointee.pending_old
        defer { control.pointee.pending_size = 0 }
        guard offset == end, control.pointee.pending_size <= geometry.subbufferSize else { return }
        let index = geometry.subbufIndex(begin)
        let base = geometry.bufferTrunc(begin) >> geometry.subbufferCountOrder
        let committed = (commitCount[index] &- base) & geometry.commitCountMask
        // Committed: every byte up to the slot's end is in the count.
        if committed == geometry.subbufOffset(end &- 1) &+ 1 { return }
        let tsc = lastTSC
        // It may have died before pushing the reader out of the sub-buffer
        // it was entering (`ltt_reserve_push_reader`): push it now, as the
        // seed would have, so that the positions stay a ring's length apart.
        let writerSubbuffer = geometry.subbufTrunc(end &- 1)
        if consumed <= writerSubbuffer && writerSubbuffer &- geometry.subbufTrunc(consumed) >= geometry.allocSize {
            subbuffersOverwritten &+= 1
            eventsOverwritten &+= eventCount[geometry.subbufIndex(consumed)]
            consumed = geometry.subbufAlign(consumed)
        }
        // It was switching out of the sub-buffer it left at `old`.
        if geometry.subbufOffset(old) != 0 && geometry.subbufTrunc(old &- 1) != geometry.subbufTrunc(begin) {
            let oldIndex = geometry.subbufIndex(old &- 1)
            if !geometry.isComplete(commitCount: commitCount[oldIndex], at: old &- 1) {
                bufferEnd(tsc: tsc, endOffset: old, subbufferIndex: oldIndex)
                commitCount[oldIndex] = (geometry.bufferTrunc(old &- 1) >> geometry.subbufferCountOrder) &+ geometry.subbufferSize
                deliver()
            }
        }
        // It opened the slot's sub-buffer: its header, whether or not written.
        if geometry.subbufOffset(begin) == SubbufferHeader.size {
            bufferBegin(tsc: tsc, subbufferIndex: index)
            eventCount[index] = 0
        }
        eventsLost &+= 1
        corruptedSubbuffers &+= 1
        bufferEnd(tsc: tsc, endOffset: begin, subbufferIndex: index)
        commitCount[index] = base &+ geometry.subbufferSize
        offset = geometry.subbufTrunc(begin) &+ geometry.subbufferSize
        deliver()
    }

    // MARK: Switch and finalize

    /// `ltt_force_switch`. Returns false when there was nothing to switch
    /// (the writer sits on a boundary) or, live in normal mode, when the
    /// buffer is full.
    @discardableResult
    public func forceSwitch(_ mode: ForceSwitchMode, tsc: UInt64) -> Bool {
        // ltt_relay_try_switch
        var o = Offsets()
        o.begin = offset
        o.old = offset
        guard geometry.subbufOffset(o.begin) != 0 else { return false }
        o.begin = geometry.subbufAlign(o.begin)
        o.endSwitchOld = true
        if mode == .active { o.begin &+= SubbufferHeader.size }
        let index = geometry.subbufIndex(o.begin)
        o.reserveCommitDiff = (geometry.bufferTrunc(o.begin) >> geometry.subbufferCountOrder)
            &- (commitCount[index] & geometry.commitCountMask)
        if o.reserveCommitDiff == 0 && mode == .active && !overwrite
            && o.begin &- consumed >= geometry.allocSize {
            // Full, and we never overwrite unread data: ignore the switch.
            return false
        }
        o.end = o.begin
        offset = o.end
        lastTSC = tsc
        if mode == .active { pushReader(&o) }
        switchOldSubbuffer(&o, tsc: tsc)
        if mode == .active { switchNewSubbuffer(&o, tsc: tsc) }
        return true
    }

    /// Did anything get written since the current sub-buffer was opened?
    /// A switch timer uses this to leave a quiet buffer alone.
    public var currentSubbufferHasEvents: Bool {
        geometry.subbufOffset(offset) > SubbufferHeader.size
    }

    /// `ltt_relay_buffer_flush`: the end of the trace for this buffer.
    public func finalize(tsc: UInt64) {
        guard !finalized else { return }
        finalized = true
        recording = false
        forceSwitch(.flush, tsc: tsc)
        // Readers must learn about the hang-up even if nothing was delivered.
        wakeupReaders = true
    }

    // MARK: Reader side

    /// `get_subbuf`: the position of the next complete sub-buffer, which the
    /// reader now holds until its PUT (GET again returns the same one).
    public func getSubbuffer() -> Result<UInt64, SubbufferAccessError> {
        skipAbandonedSubbuffers()
        let index = geometry.subbufIndex(consumed)
        // Not fully committed yet?
        guard geometry.isComplete(commitCount: commitCount[index], at: consumed) else {
            return .failure(.notReady)
        }
        // The writer is still in it?
        guard geometry.subbufTrunc(offset) != geometry.subbufTrunc(consumed) else {
            return .failure(.notReady)
        }
        heldPosition = consumed
        return .success(consumed)
    }

    /// Not in the seed: once the buffer is finalized no writer will ever
    /// come back to it, so a sub-buffer before the writer's that never
    /// completed (a producer process died between reserve and commit) would
    /// hold the reader there for good; `ltt_relay_print_errors` only
    /// reported it. It is passed instead, its commit count made whole and
    /// counted corrupted, as `ltt_reserve_push_reader` does when a writer
    /// comes round to one. Bounded by the ring, whatever the state says.
    func skipAbandonedSubbuffers() {
        var left = geometry.subbufferCount
        while finalized && left > 0 && geometry.subbufTrunc(offset) != geometry.subbufTrunc(consumed)
                && !geometry.isComplete(commitCount: commitCount[geometry.subbufIndex(consumed)], at: consumed) {
            commitCount[geometry.subbufIndex(consumed)] = (geometry.bufferTrunc(consumed) >> geometry.subbufferCountOrder)
                &+ geometry.subbufferSize
            corruptedSubbuffers &+= 1
            consumed = geometry.subbufAlign(consumed)
            left -= 1
        }
    }

    /// RELAY_PUT_SUBBUF: rebuilds the position from the 32-bit cookie and
    /// the high bits of `consumed` (the seed's ltt_ioctl), then `put_subbuf`.
    public func putSubbuffer(cookie: UInt32) throws(SubbufferAccessError) {
        try putSubbuffer(position: (consumed & ~UInt64(0xFFFF_FFFF)) | UInt64(cookie))
    }

    /// `put_subbuf`, which only gives back a sub-buffer that a GET took: a
    /// PUT with no GET, or a second PUT, changes nothing (`.notHeld`); a
    /// PUT after the writer pushed the reader past the taken sub-buffer,
    /// or with another cookie than GET gave, is `.pushed`, as in the seed.
    public func putSubbuffer(position consumedOld: UInt64) throws(SubbufferAccessError) {
        guard let held = heldPosition else { throw .notHeld }
        guard held == consumed else {
            // Overwritten while held: the reader learns it once.
            heldPosition = nil
            throw .pushed
        }
        guard consumedOld == held else { throw .pushed }
        heldPosition = nil
        consumed = geometry.subbufAlign(consumedOld)
        subbuffersConsumed &+= 1
    }

    /// Bytes a read at file position `position` may return: the whole
    /// sub-buffers from `consumed` up to the one the writer is in.
    public func readableBytes(at position: UInt64) -> UInt64 {
        let start = consumed &+ position
        let limit = geometry.subbufTrunc(offset)
        return start < limit ? limit - start : 0
    }

    /// `ltt_poll`.
    public var pollState: RelayPollState {
        let unread = geometry.subbufTrunc(offset) &- geometry.subbufTrunc(consumed)
        if unread == 0 { return finalized ? .hungUp : .none }
        return unread >= geometry.allocSize ? .full : .readable
    }

    /// `ltt_relay_user_blocking`'s test: should a blocking writer of
    /// `dataSize` bytes wait? True in normal mode when less than
    /// `reserveCritical` bytes would be left for others, or when the event
    /// would be lost for lack of space.
    public func writerShouldWait(dataSize: UInt64, largestAlign: UInt64, reserveCritical: UInt64) -> Bool {
        guard !overwrite, !finalized else { return false }
        if reserveCritical &+ dataSize <= geometry.subbufferSize {
            let avail = offset &+ reserveCritical &+ dataSize &- geometry.subbufTrunc(consumed)
            if avail > geometry.allocSize { return true }
        }
        // A dry run with the largest header, whatever the clock will say.
        if case .failure(.full) = tryReserve(dataSize: dataSize, largestAlign: largestAlign, form: .idSizeTSC, tsc: lastTSC) {
            return true
        }
        return false
    }

    /// Sub-buffers between `consumed` and the writer whose commit count is
    /// not complete (`ltt_relay_print_errors`), for the destroy-time log.
    public func incompleteSubbuffers() -> [Int] {
        var result: [Int] = []
        var position = consumed
        var left = geometry.subbufferCount   // whatever the state says
        while geometry.subbufTrunc(offset) > position && left > 0 {
            left -= 1
            let index = geometry.subbufIndex(position)
            if !geometry.isComplete(commitCount: commitCount[index], at: position) { result.append(index) }
            position = geometry.subbufAlign(position)
        }
        return result
    }
}

extension RelayRing {
    /// Whether the state could have come from this algorithm: what the
    /// server checks before it acts on a ring that producer processes may
    /// have written anything into (RelayBuffer). The positions' invariants
    /// (see the top of this file), the held sub-buffer, a pending slot.
    public var stateIsPossible: Bool {
        let writer = geometry.subbufTrunc(offset)
        guard geometry.subbufOffset(consumed) == 0, consumed <= writer, writer &- consumed <= geometry.allocSize else { return false }
        if let held = heldPosition, held > consumed || geometry.subbufOffset(held) != 0 { return false }
        if hasAbandonedSlot && control.pointee.pending_size > geometry.subbufferSize { return false }
        return true
    }
}

// The ring is only reached with its buffer's lock held (RelayBuffer.locked).
extension RelayRing: @unchecked Sendable {}
