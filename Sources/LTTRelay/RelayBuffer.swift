#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import LTTFormat
import Synchronization

/// One per-CPU buffer of a channel: a `RelayRing` under a lock, plus what
/// the kernel kept around it (the reader count of `_ltt_open`, the reader and
/// writer wait queues, the memory).
///
/// Producers hold the lock from reserve to commit, exactly like the seed's
/// spinlock with interrupts off; inside it they only compute, copy and store.
/// They never wake anybody: a delivery sets `readersToWake`, which one
/// notifier thread turns into poll notifications (`ltt_relay_async_wakeup_chan`).
public final class RelayBuffer: @unchecked Sendable {
    public let geometry: RelayGeometry
    public let overwrite: Bool
    public let cpu: Int
    /// The ring's bytes, never moved or freed while the buffer lives.
    public let memory: UnsafeMutableRawPointer
    @usableFromInline let commitCounts: UnsafeMutablePointer<UInt64>
    /// The ring state, reached only with `lock` held (the seed's spinlock).
    @usableFromInline let ringState: UnsafeMutablePointer<RelayRing>
    /// The seed's per-buffer spinlock. The hot path locks in `beginEvent`
    /// and unlocks in `endEvent`, which a closure-scoped lock cannot express.
    @usableFromInline let lock = SpinLock()
    /// The trace clock, read under the lock (inlined: no call for the TSC).
    @usableFromInline let clock: TraceClock
    /// Events lost because they were recorded from inside the tracer; folded
    /// into the ring's count by the next writer that holds the lock.
    @usableFromInline let nestedLost = Atomic<UInt64>(0)
    /// Where a delivery or a finalize is posted for the notifier, which
    /// wakes the readers (none: nobody is told; tests poll the state).
    @usableFromInline let doorbell: ReaderDoorbell?
    private let readers = Atomic<Int>(0)
    let writerWait = WriterWaitQueue()
    /// Set while the trace is not recording: `recordWaiting` gives up at once.
    private let waitsEnded = Atomic<Bool>(false)
    /// Set when a wait for room ran out of time: the reader is not keeping
    /// up, and writers whose policy says so lose their event at once instead
    /// of each waiting in turn. Cleared when a reader frees a sub-buffer.
    private let readerStalled = Atomic<Bool>(false)

    /// `LTT_RESERVE_CRITICAL`: room a blocking writer leaves for the others.
    public static let reserveCritical: UInt64 = 4096

    /// The ring memory could not be had (the budget was checked before:
    /// this is the system refusing, for example a cgroup limit).
    public struct AllocationFailed: Error, Equatable, CustomStringConvertible {
        public let bytes: UInt64
        public var description: String { "cannot allocate \(bytes) bytes for a relay buffer" }
    }

    /// The budget bytes this buffer's memory counts against, shared with the
    /// other buffers of its trace: given back when the last of them is freed.
    public let memoryReservation: BufferMemoryBudget.Reservation?

    public init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields, clock: TraceClock,
                doorbell: ReaderDoorbell? = nil,
                memoryReservation: BufferMemoryBudget.Reservation? = nil) throws(AllocationFailed) {
        self.doorbell = doorbell
        self.memoryReservation = memoryReservation
        self.geometry = geometry
        self.overwrite = overwrite
        self.cpu = cpu
        self.clock = clock
        // Anonymous pages: zero, and taken from the system as the writer
        // first touches them, so an alloc of gigabytes returns at once (the
        // budget, not the allocation, is what bounds the memory).
        let raw = mmap(nil, Int(geometry.allocSize), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let raw, raw != MAP_FAILED else { throw AllocationFailed(bytes: geometry.allocSize) }
        memory = raw
        // The ring's state and counts are written on every event by the
        // CPU that owns the buffer: each gets cache lines of its own, so two
        // CPUs' buffers (allocated one after the other) never share one.
        commitCounts = Self.allocateAlone(UInt64.self, count: 2 * Int(geometry.subbufferCount))
        ringState = Self.allocateAlone(RelayRing.self, count: 1)
        ringState.initialize(to: RelayRing(geometry: geometry, overwrite: overwrite, trace: trace,
                                           memory: memory, commitCount: commitCounts,
                                           eventCount: commitCounts + Int(geometry.subbufferCount)))
    }

    /// Memory for `count` values on cache lines no other allocation shares
    /// (128 bytes: adjacent-line prefetch pairs lines on x86).
    private static func allocateAlone<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let line = 128
        let bytes = (MemoryLayout<T>.stride * count + line - 1) & ~(line - 1)
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: line).bindMemory(to: T.self, capacity: count)
    }

    /// A buffer whose clock is a function (tests drive time by hand).
    public convenience init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields,
                            clock: @escaping @Sendable () -> UInt64) throws(AllocationFailed) {
        try self.init(geometry: geometry, overwrite: overwrite, cpu: cpu, trace: trace, clock: TraceClock(read: clock))
    }

    deinit {
        ringState.deinitialize(count: 1)
        ringState.deallocate()
        munmap(memory, Int(geometry.allocSize))
        commitCounts.deallocate()
    }

    /// The clock for the next record of `ring`, read under the lock and
    /// never before the ring's last one. The header keeps only the low 27
    /// bits of each time, so a time that went back by one tick would be
    /// read as a jump 2^27 ticks ahead. CLOCK_MONOTONIC never goes back;
    /// the TSCs of two CPUs may differ by a few ticks, and a thread that
    /// moved to another CPU after picking its buffer reads the other one.
    @inlinable @inline(__always)
    func timestamp(_ ring: borrowing RelayRing) -> UInt64 {
        max(clock.now(), ring.lastTSC)
    }

    /// Runs `body` on the ring with the lock held.
    @usableFromInline @inline(__always)
    func locked<T, E: Error>(_ body: (inout RelayRing) throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&ringState.pointee)
    }

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
        guard TracerNesting.enter() else {
            nestedLost.add(1, ordering: .relaxed)
            return .failure(.nested)
        }
        lock.lock()
        let ring = ringState
        if nestedLost.load(ordering: .relaxed) != 0 {
            ring.pointee.countLost(nestedLost.exchange(0, ordering: .relaxed))
        }
        let requested = EventHeader.requestedForm(eventID: eventID, sized: sizedHeader)
        switch ring.pointee.reserve(dataSize: dataSize, largestAlign: largestAlign, form: requested,
                                    tsc: timestamp(ring.pointee), countFullAsLost: countFullAsLost) {
        case .success(let slot):
            let g = geometry
            _ = EventHeader.write(to: memory, at: g.bufferOffset(slot.headerOffset), eventID: eventID,
                                  dataSize: dataSize, tsc: slot.tsc, form: slot.form, trace: ring.pointee.trace)
            return .success(EventInProgress(payload: memory + Int(g.bufferOffset(slot.payloadOffset)), slot: slot,
                                            buffer: Unmanaged.passUnretained(self)))
        case .failure(let why):
            let wake = ring.pointee.wakeupReaders
            ring.pointee.wakeupReaders = false
            lock.unlock()
            if wake { flagReaders() }
            TracerNesting.leave()
            return .failure(why)
        }
    }

    /// Commits the event `beginEvent` started (commit_slot) and unlocks:
    /// `EventInProgress.commit()`.
    @usableFromInline @inline(__always)
    func endEvent(_ slot: RelaySlot) {
        let ring = ringState
        ring.pointee.commit(slot)
        let wake = ring.pointee.wakeupReaders
        ring.pointee.wakeupReaders = false
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
    /// notifier), once per delivered sub-buffer, never per event.
    @usableFromInline @inline(never)
    func flagReaders() {
        doorbell?.post(self)
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
    }

    /// Records one event as a blocking producer does: while the buffer has
    /// no room for it (normal mode), waits for a reader to free some, as
    /// `policy` allows. Callers must not be inside an RCU read-side section
    /// (control operations wait for those to end), and must not hold the
    /// buffer lock. `payload` must only store bytes.
    public func recordWaiting(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64, sizedHeader: Bool = false,
                              policy: WaitPolicy, payload: (UnsafeMutableRawPointer) -> Void) -> WaitingRecord {
        writerWait.register()
        defer { writerWait.unregister() }
        while true {
            if policy.cancellation?.isCancelled == true { return .cancelled }
            let (mustWait, generation) = locked { ring in
                (ring.writerShouldWait(dataSize: dataSize, largestAlign: largestAlign,
                                       reserveCritical: policy.reserveCritical), writerWait.generation)
            }
            if !mustWait {
                // Room is there, unless another producer took it meanwhile:
                // then the reservation counts the loss.
                return recordOnce(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign,
                                  sizedHeader: sizedHeader, payload: payload) ? .recorded : .lost
            }
            // Each reason to end the wait is read after the generation:
            // whoever sets one then bumps the generation (endWaits, finalize,
            // closeReader), so a change after this point ends the sleep.
            let timedOut = policy.deadline.map { MonotonicClock.now() >= $0 } == true
            let ended = waitsEnded.load(ordering: .acquiring)
                || (policy.onlyWithReader && !hasReader)
                || (policy.notWhileStalled && readerStalled.load(ordering: .acquiring))
                || timedOut
            if ended {
                if timedOut { readerStalled.store(true, ordering: .releasing) }
                countLost(1)
                return .lost
            }
            writerWait.wait(past: generation, cancellation: policy.cancellation, deadline: policy.deadline)
        }
    }

    /// `record` for the waiting path, out of line: Swift 6.3's optimizer
    /// trips on the `EventInProgress` switch inlined into that loop (an
    /// ownership verifier crash in CopyPropagation, release builds only).
    @inline(never)
    private func recordOnce(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64, sizedHeader: Bool,
                            payload: (UnsafeMutableRawPointer) -> Void) -> Bool {
        if case .success = record(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign,
                                  sizedHeader: sizedHeader, payload: payload) { return true }
        return false
    }

    /// Counts `n` events lost that never reached a reservation (a producer
    /// gave up waiting for room).
    public func countLost(_ n: UInt64) {
        locked { $0.countLost(n) }
    }

    /// Ends every wait for room, now and until `allowWaits()`: the trace
    /// stopped or is being destroyed, or the server is shutting down.
    public func endWaits() {
        waitsEnded.store(true, ordering: .releasing)
        writerWait.wakeAll()
    }

    /// Lets producers wait for room again (the trace starts).
    public func allowWaits() {
        waitsEnded.store(false, ordering: .releasing)
    }

    /// Producers between `recordWaiting`'s start and end.
    public var waitingWriters: Int { writerWait.waiters }

    // MARK: Switch and finalize

    /// A live switch (FORCE_ACTIVE); with `onlyIfWritten`, a buffer with no
    /// event since its last switch is left alone (what a switch timer wants).
    @discardableResult
    public func forceSwitch(onlyIfWritten: Bool = false) -> Bool {
        let switched = locked { ring -> Bool in
            if onlyIfWritten && !ring.currentSubbufferHasEvents { return false }
            let done = ring.forceSwitch(.active, tsc: timestamp(ring))
            return done
        }
        flagReadersIfNeeded()
        return switched
    }

    /// `ltt_relay_finish_buffer`: flush (FORCE_FLUSH), mark finalized, wake
    /// writers and readers.
    public func finalize() {
        locked { ring in ring.finalize(tsc: timestamp(ring)) }
        flagReadersIfNeeded()
        writerWait.wakeAll()
    }

    // MARK: Reader side

    /// `_ltt_open`: one reader at a time ("add unless 1").
    public func openReader() -> Bool {
        readers.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }

    /// `_ltt_release`. Producers waiting for this reader to free room stop
    /// waiting: nobody else will.
    public func closeReader() {
        readers.store(0, ordering: .releasing)
        writerWait.wakeAll()
    }

    public var hasReader: Bool { readers.load(ordering: .acquiring) != 0 }

    /// RELAY_GET_SUBBUF: the cookie (low 32 bits of `consumed`).
    public func getSubbuffer() -> Result<UInt32, SubbufferAccessError> {
        locked { ring in ring.getSubbuffer() }.map { UInt32(truncatingIfNeeded: $0) }
    }

    /// RELAY_PUT_SUBBUF with the cookie GET gave; wakes blocked writers.
    public func putSubbuffer(cookie: UInt32) throws(SubbufferAccessError) {
        try locked { (ring: inout RelayRing) throws(SubbufferAccessError) in try ring.putSubbuffer(cookie: cookie) }
        readerStalled.store(false, ordering: .releasing)
        writerWait.wakeAll()
    }

    public var pollState: RelayPollState { locked { $0.pollState } }
    public var counters: RelayCounters { locked { $0.counters } }
    public var isFinalized: Bool { locked { $0.finalized } }

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
        let (start, available) = locked { ring in
            (ring.consumed &+ position, ring.readableBytes(at: position))
        }
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

    /// Runs `body` on the ring under the lock: for tests and diagnostics.
    public func withRing<T, E: Error>(_ body: (inout RelayRing) throws(E) -> T) throws(E) -> T {
        try locked { (ring: inout RelayRing) throws(E) -> T in try body(&ring) }
    }

    private func flagReadersIfNeeded() {
        let wake = locked { ring -> Bool in
            defer { ring.wakeupReaders = false }
            return ring.wakeupReaders
        }
        if wake { flagReaders() }
    }
}
