#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CLinuxSupport
import CRelayABI
import LTTSystem
import LTTFormat
import Synchronization

/// One per-CPU buffer of a channel: a `RelayRing` under its lock, plus what
/// the kernel kept around it (the reader count of `_ltt_open`, the reader and
/// writer wait queues, the memory).
///
/// The ring, its lock and the writers' wait word live in a sealed memfd
/// (`RingMapping`) that producer processes map too: the server makes the
/// buffer (`init(geometry:...)`), a producer process attaches to the
/// descriptor it was handed (`init(attaching:...)`). Both run the same code
/// below on the same memory.
///
/// Producers hold the lock from reserve to commit, exactly like the seed's
/// spinlock with interrupts off; inside it they only compute, copy and store.
/// They never wake anybody: a delivery sets `wakeupReaders`, which one
/// notifier thread turns into poll notifications (`ltt_relay_async_wakeup_chan`).
///
/// The server's own operations trust nothing in the shared memory: the
/// lock waits are bounded (RelayLock), and a buffer whose lock stays with a
/// live holder past the server's patience is treated as finalized by the
/// server (`abandoned`): its reader gets the hang-up, and nothing waits on it.
public final class RelayBuffer: @unchecked Sendable {
    public let geometry: RelayGeometry
    public let overwrite: Bool
    public let cpu: Int
    /// The trace-wide header fields its sub-buffer headers carry.
    public var trace: TraceHeaderFields { ring.trace }
    /// The shared memory: control block, counts, the ring's bytes.
    public let mapping: RingMapping
    /// The ring's bytes, never moved or freed while the buffer lives.
    public let memory: UnsafeMutableRawPointer
    /// The ring: a view of the state in `mapping`, used only with `lock` held.
    @usableFromInline let ring: RelayRing
    /// The seed's per-buffer spinlock, shared. The hot path locks in
    /// `beginEvent` and unlocks in `endEvent`, which a closure-scoped lock
    /// cannot express.
    @usableFromInline let lock: RelayLock
    /// The holder that made a lock wait run out of patience, and when
    /// (RelayLock).
    @usableFromInline let jammedHolder = Atomic<UInt64>(0)
    /// True in the server, which may take the lock back from a dead holder.
    @usableFromInline let recoversDeadHolders: Bool
    /// True in the server and in a reader's view (`init(reading:...)`):
    /// nothing is done on a state no run of the algorithm can make.
    @usableFromInline let checksState: Bool
    /// The process's fork epoch when this view was made (producer views):
    /// a child of fork(2) does not record through its parent's views. The
    /// epoch is a C global (`lttfs_fork_epoch`): one plain load per event.
    @usableFromInline let epoch: UInt32
    /// This process's lock token when the buffer was made (RelayLock).
    @usableFromInline let token: UInt32

    /// Called in the child after fork(2): views made before refuse events.
    public static func forkedChild() {
        lttfs_fork_epoch_advance()
    }
    /// The trace clock (inlined: no call for the TSC). An event's producer
    /// reads it before taking the lock (`beginEvent(clockReading:)`); the
    /// ring's own records (switches, padding) under it.
    public let clock: TraceClock
    /// Events lost outside the lock (recorded from inside the tracer, or the
    /// lock was jammed), by any process; folded into the ring's count by the
    /// next writer that holds the lock.
    @usableFromInline let lostOutsideLock: UnsafeAtomic<UInt64>
    /// Where a delivery or a finalize is posted for the notifier, which
    /// wakes the readers (none: nobody is told; tests poll the state).
    @usableFromInline let doorbell: ReaderDoorbell?
    private let readers = Atomic<Int>(0)
    /// Advanced by each `closeReader`: an open that found the reader's
    /// place taken waits on it (`openReader(waitingForRelease:)`).
    private let readerLeft = EventCount()
    let writerWait: WriterWaitQueue
    /// Set while the trace is not recording: `recordWaiting` gives up at
    /// once. The server's word; the shared `waits_ended` mirrors it for
    /// producer processes.
    private let waitsEnded = Atomic<Bool>(false)
    /// The server gave up on the buffer: its lock stayed with a live holder
    /// past the server's patience at finalize, or its shared state was found
    /// impossible (a producer process wrote garbage into it). Readers get
    /// the hang-up; the server's operations no longer touch the ring.
    private let abandoned = Atomic<Bool>(false)
    /// Where the server says why it gave a buffer up (the tracer's log).
    private let problemLog: (@Sendable (String) -> Void)?
    private let sharedWaitsEnded: UnsafeAtomic<UInt32>
    /// Set when a wait for room ran out of time: the reader is not keeping
    /// up, and writers whose policy says so lose their event at once instead
    /// of each waiting in turn. Cleared when a reader frees a sub-buffer.
    private let readerStalled: UnsafeAtomic<UInt32>
    private let sharedReaders: UnsafeAtomic<UInt32>
    /// A producer process's delivery, for the server (`takeRemoteWakeup`).
    private let remoteWakeup: UnsafeAtomic<UInt32>
    /// `abandoned`, told to readers in other processes.
    private let sharedGivenUp: UnsafeAtomic<UInt32>
    /// In a producer process: tells the server that a delivery is waiting
    /// in `remote_wakeup` (called outside the lock, once until the server
    /// took it).
    private let deliveryHook: (@Sendable () -> Void)?

    /// `LTT_RESERVE_CRITICAL`: room a blocking writer leaves for the others.
    public static let reserveCritical: UInt64 = 4096

    /// The ring memory could not be had (the budget was checked before:
    /// this is the system refusing, for example a cgroup limit).
    public struct AllocationFailed: Error, Equatable, CustomStringConvertible {
        public let bytes: UInt64
        public let why: String
        public var description: String { "cannot allocate \(bytes) bytes for a relay buffer: \(why)" }
    }

    /// The budget bytes this buffer's memory counts against, shared with the
    /// other buffers of its trace: given back when the last of them is freed.
    public let memoryReservation: BufferMemoryBudget.Reservation?

    /// A new buffer, in new shared memory (named `name` in /proc/*/maps).
    public convenience init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields, clock: TraceClock,
                            doorbell: ReaderDoorbell? = nil, memoryReservation: BufferMemoryBudget.Reservation? = nil,
                            name: String = "lttfs-buffer", log: (@Sendable (String) -> Void)? = nil) throws(AllocationFailed) {
        let mapping: RingMapping
        do throws(RingMapping.Failure) {
            mapping = try RingMapping.create(name: name, geometry: geometry, overwrite: overwrite, cpu: cpu)
        } catch {
            throw AllocationFailed(bytes: geometry.allocSize, why: error.description)
        }
        self.init(mapping: mapping, overwrite: overwrite, cpu: cpu, trace: trace, clock: clock, doorbell: doorbell,
                  memoryReservation: memoryReservation, role: .server, deliveryHook: nil, log: log)
        ring.start()
    }

    /// A producer process's view of a buffer the server made and handed
    /// over (`mapping` attached to its descriptor).
    /// `onDelivery` tells the server that a sub-buffer was delivered here.
    public convenience init(attaching mapping: RingMapping, overwrite: Bool, cpu: Int, trace: TraceHeaderFields,
                            clock: TraceClock, onDelivery: (@Sendable () -> Void)? = nil) {
        self.init(mapping: mapping, overwrite: overwrite, cpu: cpu, trace: trace, clock: clock, doorbell: nil,
                  memoryReservation: nil, role: .producer, deliveryHook: onDelivery, log: nil)
    }

    /// A reader's view, in another process, of a buffer whose file it has
    /// open (ReaderGrants): it takes and gives back sub-buffers in the
    /// shared ring (`getSubbuffer`, `putSubbuffer`, `readerPollState`) and
    /// records nothing. Like the server, it acts on no impossible state;
    /// unlike it, it judges nobody: what it cannot do, the file still can.
    public convenience init(reading mapping: RingMapping, overwrite: Bool, cpu: Int, trace: TraceHeaderFields) {
        self.init(mapping: mapping, overwrite: overwrite, cpu: cpu, trace: trace, clock: .monotonic, doorbell: nil,
                  memoryReservation: nil, role: .reader, deliveryHook: nil, log: nil)
    }

    private enum Role { case server, producer, reader }

    private init(mapping: RingMapping, overwrite: Bool, cpu: Int, trace: TraceHeaderFields, clock: TraceClock,
                 doorbell: ReaderDoorbell?, memoryReservation: BufferMemoryBudget.Reservation?, role: Role,
                 deliveryHook: (@Sendable () -> Void)?, log: (@Sendable (String) -> Void)?) {
        self.deliveryHook = deliveryHook
        problemLog = log
        self.mapping = mapping
        self.doorbell = doorbell
        self.memoryReservation = memoryReservation
        geometry = mapping.geometry
        self.overwrite = overwrite
        self.cpu = cpu
        self.clock = clock
        // Whoever records here on CLOCK_MONOTONIC reads it from the TSC
        // where it can (once per process; a reader records nothing).
        if role != .reader, case .monotonic = clock.source { _ = MonotonicClock.tracksWithTSC }
        memory = mapping.data
        recoversDeadHolders = role == .server
        checksState = role != .producer
        epoch = lttfs_fork_epoch_load()
        token = RelayLock.token.load(ordering: .relaxed)
        ring = RelayRing(geometry: mapping.geometry, overwrite: overwrite, trace: trace, control: mapping.control,
                         memory: mapping.data)
        lock = RelayLock(control: mapping.control)
        writerWait = WriterWaitQueue(control: mapping.control)
        sharedWaitsEnded = mapping.control.sharedAtomic(\.waits_ended)
        readerStalled = mapping.control.sharedAtomic(\.reader_stalled)
        sharedReaders = mapping.control.sharedAtomic(\.readers)
        remoteWakeup = mapping.control.sharedAtomic(\.remote_wakeup)
        sharedGivenUp = mapping.control.sharedAtomic(\.given_up)
        lostOutsideLock = mapping.control.sharedAtomic(\.lost_outside_lock)
    }

    /// A buffer whose clock is a function (tests drive time by hand).
    public convenience init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields,
                            clock: @escaping @Sendable () -> UInt64) throws(AllocationFailed) {
        try self.init(geometry: geometry, overwrite: overwrite, cpu: cpu, trace: trace, clock: TraceClock(read: clock))
    }

    /// The time of the next record of `ring`: `reading` (the clock, read
    /// under the lock unless an event's producer read it just before),
    /// never before the ring's last time. The header keeps only the low 27
    /// bits of each time, so a time that went back by one tick would be
    /// read as a jump 2^27 ticks ahead. CLOCK_MONOTONIC never goes back;
    /// the TSCs of two CPUs may differ by a few ticks, a thread that moved
    /// to another CPU after picking its buffer reads the other one, and a
    /// reading taken before the lock may be older than a time another
    /// writer recorded meanwhile.
    @inlinable @inline(__always)
    func timestamp(_ ring: RelayRing, reading: UInt64? = nil) -> UInt64 {
        max(reading ?? clock.now(), ring.lastTSC)
    }

    /// Runs `body` on the ring with the lock held; nil when the lock could
    /// not be had within `patience` (RelayLock), or, in the server, when
    /// the buffer was given up or its state is impossible (which gives it
    /// up: the server acts on no state a producer process may have made up;
    /// a reader's view only declines).
    @usableFromInline @inline(__always)
    func locked<T, E: Error>(patience: UInt64 = RelayLock.serverPatience,
                             _ body: (RelayRing) throws(E) -> T) throws(E) -> T? {
        if recoversDeadHolders && abandoned.load(ordering: .relaxed) { return nil }
        guard lock.lock(patience: patience, jammed: jammedHolder, recoverDead: recoversDeadHolders) else { return nil }
        if checksState && !ring.stateIsPossible {
            let why = "its shared state is impossible (offset \(ring.offset), consumed \(ring.consumed), "
                + "held \(String(describing: ring.heldPosition))): a producer process wrote into it"
            lock.unlock()
            // Readers are told after the lock (their bell, the doorbell).
            if recoversDeadHolders { giveUp(why) }
            return nil
        }
        defer { lock.unlock() }
        if ring.hasAbandonedSlot { ring.repairAbandonedSlot() }
        return try body(ring)
    }

    /// The server stops serving the buffer: its readers get the hang-up,
    /// its producers' waits end, and the log says why. Once.
    private func giveUp(_ why: String) {
        guard !abandoned.exchange(true, ordering: .acquiringAndReleasing) else { return }
        problemLog?("buffer \(mapping.control.pointee.cpu) given up: \(why)")
        sharedGivenUp.store(1, ordering: .releasing)
        sharedWaitsEnded.store(1, ordering: .releasing)
        writerWait.wakeAll()
        post()
    }

    /// Takes the lock back from `token`, a producer process that died
    /// holding it (the server saw it go); true if it held it.
    @discardableResult
    public func recoverLock(from token: UInt32) -> Bool {
        guard lock.recover(from: token) else { return false }
        ring.repairAbandonedSlot()
        lock.unlock()
        flagReadersIfNeeded()
        return true
    }

    /// The token of the lock's holder, 0 if free.
    public var lockHolder: UInt32 { lock.holder }

    // MARK: Producers

    /// An event being written: its slot is reserved, its header written,
    /// and the buffer lock is held until `commit()`, which consumes it: an
    /// event is committed exactly once, and one that is dropped without
    /// `commit()` is committed by its deinit (the lock is never left held).
    @frozen
    public struct EventInProgress: ~Copyable {
        public let payload: UnsafeMutableRawPointer
        @usableFromInline let slot: RelaySlot
        @usableFromInline let buffer: Unmanaged<RelayBuffer>

        @usableFromInline init(payload: UnsafeMutableRawPointer, slot: RelaySlot, buffer: Unmanaged<RelayBuffer>) {
            self.payload = payload
            self.slot = slot
            self.buffer = buffer
        }

        /// commit_slot: commits the event and unlocks the buffer.
        @inlinable @inline(__always)
        @discardableResult
        public consuming func commit() -> RelaySlot {
            let (slot, buffer) = (self.slot, self.buffer)
            discard self
            buffer._withUnsafeGuaranteedRef { $0.endEvent(slot) }
            return slot
        }

        @inlinable
        deinit { buffer._withUnsafeGuaranteedRef { $0.endEvent(slot) } }
    }

    /// Reserves room for an event and writes its header (reserve_slot),
    /// leaving the lock held: store the payload at `payload`, then
    /// `commit()`. Nothing may block in between. Returns the failure,
    /// already counted as lost, when there is no room.
    @inlinable @inline(__always)
    public func beginEvent(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64,
                           sizedHeader: Bool = false, countFullAsLost: Bool = true)
        -> Result<EventInProgress, ReserveFailure> {
        beginEvent(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign, sizedHeader: sizedHeader,
                   countFullAsLost: countFullAsLost, clockReading: clock.now())
    }

    /// `beginEvent` with the clock read by the caller, `clock.now()`, before
    /// it sized its payload: an event's time is when its probe fired, and
    /// the read (a `rdtsc`, some 30 cycles) overlaps the sizing and the
    /// lock's atomic instead of following them. Under the lock the reading
    /// is raised to the ring's last time if another writer got in between
    /// (`timestamp`'s rule: a buffer's times never go back). Measured
    /// (ProducerBench, no consumer, interleaved runs): 77-94 -> 63-68 ns
    /// per event with one thread on this VM.
    @inlinable @inline(__always)
    public func beginEvent(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64,
                           sizedHeader: Bool = false, countFullAsLost: Bool = true, clockReading now: UInt64)
        -> Result<EventInProgress, ReserveFailure> {
        if !recoversDeadHolders && epoch != lttfs_fork_epoch_load() {
            return .failure(.notOwner)
        }
        guard TracerNesting.enter() else {
            lostOutsideLock.wrappingIncrement(ordering: .relaxed)
            return .failure(.nested)
        }
        guard lock.lock(as: token, patience: RelayLock.writerPatience, jammed: jammedHolder, recoverDead: recoversDeadHolders) else {
            lostOutsideLock.wrappingIncrement(ordering: .relaxed)
            TracerNesting.leave()
            return .failure(.busy)
        }
        // `ring` is used in place: a local copy of the view (136 bytes) was
        // a memcpy per event.
        if ring.hasAbandonedSlot { ring.repairAbandonedSlot() }
        if lostOutsideLock.load(ordering: .relaxed) != 0 {
            ring.countLost(lostOutsideLock.exchange(0, ordering: .relaxed))
        }
        guard ring.recording else {
            lock.unlock()
            TracerNesting.leave()
            return .failure(.notRecording)
        }
        let requested = EventHeader.requestedForm(eventID: eventID, sized: sizedHeader)
        switch ring.reserve(dataSize: dataSize, largestAlign: largestAlign, form: requested,
                            tsc: timestamp(ring, reading: now), countFullAsLost: countFullAsLost) {
        case .success(let slot):
            let g = geometry
            _ = EventHeader.write(to: memory, at: g.bufferOffset(slot.headerOffset), eventID: eventID,
                                  dataSize: dataSize, tsc: slot.tsc, form: slot.form, trace: ring.trace)
            return .success(EventInProgress(payload: memory + Int(g.bufferOffset(slot.payloadOffset)), slot: slot,
                                            buffer: Unmanaged.passUnretained(self)))
        case .failure(let why):
            let wake = ring.wakeupReaders
            ring.wakeupReaders = false
            lock.unlock()
            if wake { flagReaders() }
            TracerNesting.leave()
            return .failure(why)
        }
    }

    /// Commits the event `beginEvent` started (commit_slot) and unlocks:
    /// `EventInProgress.commit()`. Inlinable, so that the typed marker's
    /// loop does not call it with the slot passed through memory.
    @inlinable @inline(__always)
    func endEvent(_ slot: RelaySlot) {
        ring.commit(slot)
        let wake = ring.wakeupReaders
        ring.wakeupReaders = false
        lock.unlock()
        // Still inside the tracer: a signal handler that records while the
        // bell rings is nested, and loses its event instead of re-entering
        // the doorbell's lock.
        if wake { flagReaders() }
        TracerNesting.leave()
    }

    /// A sub-buffer was delivered (or the buffer finalized): post it for
    /// the notifier. Called without the buffer lock. The post is the one
    /// place a producer may enter the kernel (a futex wake for the
    /// notifier, the reader's bell), once per delivered sub-buffer, never
    /// per event.
    @usableFromInline @inline(never)
    func flagReaders() {
        post()
        if let deliveryHook, remoteWakeup.exchange(1, ordering: .acquiringAndReleasing) == 0 { deliveryHook() }
    }

    /// In the server: if a producer process delivered a sub-buffer since
    /// the last call, posts the buffer for the notifier (its readers are
    /// woken) and returns true.
    @discardableResult
    public func postRemoteDelivery() -> Bool {
        guard remoteWakeup.load(ordering: .relaxed) != 0, remoteWakeup.exchange(0, ordering: .acquiringAndReleasing) != 0
        else { return false }
        post()
        return true
    }

    /// News for the readers: the doorbell (the notifier wakes the file's
    /// poll), and the bell of a reader working the ring from another
    /// process (ReaderGrants), rung here: one wake-up between the delivery
    /// and that reader, not two.
    private func post() {
        doorbell?.post(self)
        if let bell = readerBell.withLock({ $0 }) { bell.ring() }
    }

    /// The bell of the reader that works this buffer through its shared
    /// memory, if one does (the server's buffer only).
    private let readerBell = Locked<ReaderBell?>(nil)

    /// Whether a reader in another process works this buffer through its
    /// shared memory (a redeemed grant whose file is open).
    public var hasMappedReader: Bool { readerBell.withLock { $0 != nil } }

    /// Rings `bell` at every delivery, finalize and give-up from now on,
    /// instead of the one before (nil: none).
    public func setReaderBell(_ bell: ReaderBell?) {
        let old = readerBell.withLock { b -> ReaderBell? in
            defer { b = bell }
            return b
        }
        _ = old   // closed here, outside the lock, if nobody rings it
    }

    /// Records one event: `beginEvent`, `payload` with the payload's
    /// address, `endEvent`. `payload` must only store bytes.
    @inlinable @inline(__always)
    public func record(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64,
                       sizedHeader: Bool = false,
                       payload: (UnsafeMutableRawPointer) -> Void) -> Result<RelaySlot, ReserveFailure> {
        switch beginEvent(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign, sizedHeader: sizedHeader) {
        case .success(let event):
            payload(event.payload)
            return .success(event.commit())
        case .failure(let why):
            return .failure(why)
        }
    }

    /// How a producer that finds the buffer full (normal mode) waits for a
    /// reader to free room: the seed's `ltt_relay_user_blocking`, bounded.
    public struct WaitPolicy: Sendable {
        /// Bytes left for producers that do not wait (`LTT_RESERVE_CRITICAL`
        /// for write_event; 0 for in-process producers, who only wait after
        /// a reservation failed).
        public var reserveCritical: UInt64
        /// CLOCK_MONOTONIC nanoseconds after which the wait is given up.
        public var deadline: UInt64?
        /// Set by whoever may end the wait early (a FUSE interrupt, shutdown).
        public var cancellation: WaitCancellation?
        /// Wait only while a reader has the buffer open: nobody else would
        /// ever free room (a trace without a consumer).
        public var onlyWithReader: Bool
        /// Once a wait ran out of time, do not wait again until the reader
        /// frees a sub-buffer (write_event: writers queue behind each other
        /// in the kernel, and each would wait its full time).
        public var notWhileStalled: Bool

        public init(reserveCritical: UInt64 = 0, timeoutNanoseconds: UInt64? = nil,
                    cancellation: WaitCancellation? = nil, onlyWithReader: Bool = false,
                    notWhileStalled: Bool = false) {
            self.reserveCritical = reserveCritical
            deadline = timeoutNanoseconds.map { MonotonicClock.now() &+ $0 }
            self.cancellation = cancellation
            self.onlyWithReader = onlyWithReader
            self.notWhileStalled = notWhileStalled
        }
    }

    /// How `recordWaiting` ended.
    public enum WaitingRecord: Equatable, Sendable {
        /// Recorded.
        case recorded
        /// Not recorded, and counted as lost: no room in time, the trace
        /// stopped or was destroyed (`endWaits`, finalize), nobody reads the
        /// buffer, or a reservation failed.
        case lost
        /// The policy's cancellation fired while waiting: nothing was
        /// recorded and nothing counted; the caller decides what it means.
        case cancelled
        /// The trace no longer records into the buffer (`setRecording`):
        /// nothing recorded, nothing counted.
        case notRecording
    }

    /// Records one event as a blocking producer does: while the buffer has
    /// no room for it (normal mode), waits for a reader to free some, as
    /// `policy` allows. Callers must not be inside an RCU read-side section
    /// (control operations wait for those to end), and must not hold the
    /// buffer lock. `payload` must only store bytes.
    public func recordWaiting(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64, sizedHeader: Bool = false,
                              policy: WaitPolicy, payload: (UnsafeMutableRawPointer) -> Void) -> WaitingRecord {
        // Counted in `waitingWriters` from the first decision to sleep, not
        // from entry: a writer counted there is one whose wait any later
        // reason to end it (endWaits, finalize, closeReader) ends as a loss.
        var registered = false
        defer { if registered { writerWait.unregister() } }
        var waited = false
        while true {
            if policy.cancellation?.isCancelled == true { return .cancelled }
            guard let (mustWait, generation) = locked(patience: RelayLock.writerPatience, { ring in
                (ring.writerShouldWait(dataSize: dataSize, largestAlign: largestAlign,
                                       reserveCritical: policy.reserveCritical), writerWait.generation)
            }) else {
                countLost(1)
                return .lost
            }
            if !mustWait {
                // Room is there, unless another producer took it between
                // this check and the reservation (each takes the lock):
                // then this one waits again, as it would have had it come
                // a moment later. Any other failure counted the loss.
                switch recordOnce(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign,
                                  sizedHeader: sizedHeader, payload: payload) {
                case nil: return .recorded
                case .full?: continue
                case .notRecording?, .notOwner?:
                    // An event that waited while the trace recorded, and
                    // whose wait the stop or destroy ended, is lost there;
                    // one that finds it closed at once was never in it.
                    guard waited else { return .notRecording }
                    if locked(patience: RelayLock.writerPatience, { $0.countLost(1) }) == nil { countLost(1) }
                    return .lost
                case .some: return .lost
                }
            }
            // Each reason to end the wait is read after the generation:
            // whoever sets one then bumps the generation (endWaits, finalize,
            // closeReader), so a change after this point ends the sleep.
            let timedOut = policy.deadline.map { MonotonicClock.now() >= $0 } == true
            let ended = waitsHaveEnded
                || (policy.onlyWithReader && !hasReader)
                || (policy.notWhileStalled && readerStalled.load(ordering: .acquiring) != 0)
                || timedOut
            if ended {
                // Only a wait that ran out says the reader stalled: a
                // deadline spent elsewhere before this buffer (another
                // trace, earlier lines of the request) says nothing of it.
                if timedOut && waited { readerStalled.store(1, ordering: .releasing) }
                countLost(1)
                return .lost
            }
            if !registered { writerWait.register(); registered = true }
            writerWait.wait(past: generation, cancellation: policy.cancellation, deadline: policy.deadline)
            waited = true
        }
    }

    /// `record` for the waiting path, out of line: Swift 6.3's optimizer
    /// trips on the `EventInProgress` switch inlined into that loop (an
    /// ownership verifier crash in CopyPropagation, release builds only).
    /// nil: recorded; else why not (counted lost, except `.full`, which
    /// the caller waits on).
    @inline(never)
    private func recordOnce(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64, sizedHeader: Bool,
                            payload: (UnsafeMutableRawPointer) -> Void) -> ReserveFailure? {
        switch beginEvent(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign, sizedHeader: sizedHeader,
                          countFullAsLost: false) {
        case .success(let event):
            payload(event.payload)
            _ = event.commit()
            return nil
        case .failure(let why):
            return why
        }
    }

    /// Counts `n` events lost that never reached a reservation (a producer
    /// gave up waiting for room): folded into the ring's count by the next
    /// holder of the lock.
    public func countLost(_ n: UInt64) {
        lostOutsideLock.wrappingIncrement(by: n, ordering: .relaxed)
    }

    /// Waits for room are over: the trace does not record (the server's
    /// word in the server, the shared one in a producer process).
    var waitsHaveEnded: Bool {
        recoversDeadHolders ? waitsEnded.load(ordering: .acquiring) : sharedWaitsEnded.load(ordering: .acquiring) != 0
    }

    /// Ends every wait for room, now and until `allowWaits()`: the trace
    /// stopped or is being destroyed, or the server is shutting down.
    public func endWaits() {
        waitsEnded.store(true, ordering: .releasing)
        sharedWaitsEnded.store(1, ordering: .releasing)
        writerWait.wakeAll()
    }

    /// Opens or closes the buffer to writers (`recording` in the ring): a
    /// writer already inside commits first (the lock is taken), and every
    /// later one, in any process, finds it so. False: the lock could not be
    /// had (a holder keeps it past the server's patience).
    @discardableResult
    public func setRecording(_ on: Bool) -> Bool {
        locked { $0.recording = on } != nil
    }

    /// Lets producers wait for room again (the trace starts).
    public func allowWaits() {
        waitsEnded.store(false, ordering: .releasing)
        sharedWaitsEnded.store(0, ordering: .releasing)
    }

    /// Producers in `recordWaiting` that found no room and sleep (or are
    /// about to) until a reader frees some or their wait ends.
    public var waitingWriters: Int { writerWait.waiters }

    // MARK: Switch and finalize

    /// A live switch (FORCE_ACTIVE); with `onlyIfWritten`, a buffer with no
    /// event since its last switch is left alone (what a switch timer wants).
    /// `patience`: how long to wait for the lock (a switch timer does not
    /// wait for a holder that keeps it: its next tick tries again).
    @discardableResult
    public func forceSwitch(onlyIfWritten: Bool = false, patience: UInt64 = RelayLock.serverPatience) -> Bool {
        let switched = locked(patience: patience) { ring -> Bool in
            if onlyIfWritten && !ring.currentSubbufferHasEvents { return false }
            let done = ring.forceSwitch(.active, tsc: timestamp(ring))
            return done
        } ?? false
        flagReadersIfNeeded()
        return switched
    }

    /// `ltt_relay_finish_buffer`: flush (FORCE_FLUSH), mark finalized, wake
    /// writers and readers. When the lock stays with a live holder past
    /// the server's patience, the server gives the buffer up instead
    /// (`isAbandoned`): its reader gets the hang-up after what it can read.
    public func finalize() {
        // The whole patience, even for a holder found jammed a moment ago.
        jammedHolder.store(0, ordering: .relaxed)
        if locked({ (ring: RelayRing) -> Void in
            // The last header counts every loss so far.
            ring.countLost(lostOutsideLock.exchange(0, ordering: .relaxed))
            ring.finalize(tsc: timestamp(ring))
        }) == nil {
            giveUp("its lock stayed with process \(lock.holder) at finalize")
        }
        flagReadersIfNeeded()
        writerWait.wakeAll()
    }

    /// The server gave the buffer up at finalize (its lock was jammed).
    public var isAbandoned: Bool { abandoned.load(ordering: .acquiring) }

    // MARK: Reader side

    /// `_ltt_open`: one reader at a time ("add unless 1").
    public func openReader() -> Bool {
        guard readers.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else { return false }
        sharedReaders.store(1, ordering: .releasing)
        return true
    }

    /// `openReader`, for an open that may come a moment after the last
    /// reader closed the file: FUSE answers close(2) at once and sends the
    /// RELEASE after it, so the server may see a script's next open (its
    /// next `cat`, the PUT of a GET made by another command) first. The
    /// seed's release is synchronous; here an open that finds the place
    /// taken waits up to `patience` ns for a release (woken by
    /// `closeReader`, no polling), and is refused only if none comes: a
    /// second reader at the same time still gets EBUSY.
    public func openReader(waitingForRelease patience: UInt64) -> Bool {
        let deadline = MonotonicClock.now() &+ patience
        while true {
            let seen = readerLeft.value
            if openReader() { return true }
            if MonotonicClock.now() >= deadline { return false }
            readerLeft.wait(past: seen, deadline: deadline)
        }
    }

    /// Opens waiting for a release (`openReader(waitingForRelease:)`).
    public var openersWaiting: Int { readerLeft.waiting }

    /// `_ltt_release`. Producers waiting for this reader to free room stop
    /// waiting: nobody else will.
    public func closeReader() {
        readers.store(0, ordering: .releasing)
        sharedReaders.store(0, ordering: .releasing)
        writerWait.wakeAll()
        readerLeft.advance()
    }

    /// A reader has the buffer open (the server's count in the server, the
    /// shared mirror in a producer process).
    public var hasReader: Bool {
        recoversDeadHolders ? readers.load(ordering: .acquiring) != 0 : sharedReaders.load(ordering: .acquiring) != 0
    }

    /// RELAY_GET_SUBBUF: the cookie (low 32 bits of `consumed`). A jammed
    /// lock is "not ready" (EAGAIN), as a sub-buffer still being written.
    public func getSubbuffer() -> Result<UInt32, SubbufferAccessError> {
        (locked { ring in ring.getSubbuffer() } ?? .failure(.notReady)).map { UInt32(truncatingIfNeeded: $0) }
    }

    /// RELAY_PUT_SUBBUF with the cookie GET gave; wakes blocked writers.
    public func putSubbuffer(cookie: UInt32) throws(SubbufferAccessError) {
        let done: Void? = try locked { (ring: RelayRing) throws(SubbufferAccessError) in try ring.putSubbuffer(cookie: cookie) }
        guard done != nil else { throw .notReady }
        readerStalled.store(0, ordering: .releasing)
        writerWait.wakeAll()
    }

    /// `ltt_poll`; a buffer the server gave up is hung up.
    public var pollState: RelayPollState {
        guard let state = locked({ $0.pollState }) else { return isAbandoned ? .hungUp : .none }
        return state
    }

    /// `pollState` as a reader's view sees it; nil when it cannot tell (the
    /// lock stayed with its holder, the state is impossible, the server
    /// gave the buffer up): the buffer file's poll, the server's answer,
    /// says then.
    public var readerPollState: RelayPollState? {
        if sharedGivenUp.load(ordering: .acquiring) != 0 { return nil }
        return locked { $0.pollState }
    }

    /// RELAY_GET_SUBBUF with the bytes it names: the cookie and the
    /// sub-buffer taken (contiguous in the ring), found under one hold of
    /// the lock, so that a writer pushing the reader in between cannot make
    /// them disagree (the server's page cache, a reader's view). Nil when
    /// none is ready or the lock stayed with its holder.
    public func takeSubbuffer() -> (cookie: UInt32, bytes: UnsafeRawBufferPointer)? {
        guard case .success(let position)? = locked({ ring in ring.getSubbuffer() }) else { return nil }
        // Whole sub-buffers only, inside the ring, whatever `consumed` says.
        let start = memory + Int(geometry.bufferOffset(geometry.subbufTrunc(position)))
        return (UInt32(truncatingIfNeeded: position), UnsafeRawBufferPointer(start: start, count: Int(geometry.subbufferSize)))
    }

    /// The counters (numbers only: read even from a buffer given up); all
    /// zero but `finalized` when the lock is jammed.
    public var counters: RelayCounters {
        var c = RelayCounters()
        if lock.lock(patience: RelayLock.serverPatience, jammed: jammedHolder, recoverDead: recoversDeadHolders) {
            c = ring.counters
            lock.unlock()
        }
        if isAbandoned { c.finalized = true; c.abandoned = true }
        c.eventsLost &+= lostOutsideLock.load(ordering: .relaxed)
        return c
    }
    public var isFinalized: Bool { locked { $0.finalized } ?? isAbandoned }

    /// Copies what a read at file position `position` returns (the bytes at
    /// `consumed + position`, up to the writer's sub-buffer) into `destination`.
    ///
    /// The range is fixed under the lock; the copy is done outside it, like
    /// the kernel's splice of ring pages: in normal mode writers never touch
    /// delivered sub-buffers, and in overwrite mode a sub-buffer overwritten
    /// while copied is reported by PUT (EIO), as in the seed.
    public func read(at position: UInt64, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = destination.baseAddress else { return 0 }
        var copied = 0
        for region in readableRegions(at: position, maxLength: destination.count) {
            memcpy(base + copied, region.baseAddress!, region.count)
            copied += region.count
        }
        return copied
    }

    /// The ring memory a read at `position` returns, up to `maxLength`
    /// bytes, as at most two regions (the range may wrap around the end of
    /// the ring). Zero-copy replies use it directly; `read` copies from it.
    public func readableRegions(at position: UInt64, maxLength: Int) -> [UnsafeRawBufferPointer] {
        guard let (start, available) = locked({ ring in
            (ring.consumed &+ position, ring.readableBytes(at: position))
        }) else { return [] }
        var left = Int(min(available, UInt64(maxLength)))
        var regions: [UnsafeRawBufferPointer] = []
        var cursor = start
        while left > 0 {
            let index = Int(geometry.bufferOffset(cursor))
            let chunk = min(left, Int(geometry.allocSize) - index)
            regions.append(UnsafeRawBufferPointer(start: memory + index, count: chunk))
            left -= chunk
            cursor &+= UInt64(chunk)
        }
        return regions
    }

    /// Sub-buffers between the reader and the writer whose commit count is
    /// not complete (`ltt_relay_print_errors`); none when the buffer is
    /// given up or its lock jammed.
    public func incompleteSubbuffers() -> [Int] {
        locked { $0.incompleteSubbuffers() } ?? []
    }

    /// Runs `body` on the ring under the lock, as it is (a pending slot is
    /// left alone: tests hold reservations across calls): for tests and
    /// diagnostics.
    public func withRing<T, E: Error>(_ body: (RelayRing) throws(E) -> T) throws(E) -> T {
        guard lock.lock(patience: 10 * RelayLock.serverPatience, jammed: jammedHolder, recoverDead: recoversDeadHolders) else {
            preconditionFailure("withRing: the buffer lock stayed with \(lock.holder)")
        }
        defer { lock.unlock() }
        return try body(ring)
    }

    /// Posts the buffer for the notifier if a delivery flagged it.
    private func flagReadersIfNeeded() {
        let wake = locked { ring -> Bool in
            defer { ring.wakeupReaders = false }
            return ring.wakeupReaders
        } ?? false
        if wake { flagReaders() }
    }
}
