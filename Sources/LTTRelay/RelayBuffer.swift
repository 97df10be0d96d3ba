#if canImport(Glibc)
import Glibc
#endif
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
    /// Set when a sub-buffer was delivered or the buffer finalized; cleared
    /// by the notifier when it wakes the readers.
    @usableFromInline let readersToWake = Atomic<Bool>(false)
    /// Rung with `readersToWake`, so the notifier does not wait for its
    /// next pass.
    @usableFromInline let doorbell: ReaderDoorbell?
    private let readers = Atomic<Int>(0)
    let writerWait = WriterWaitQueue()
    /// Set while the trace is not recording: `waitForRoom` returns at once.
    private let waitsEnded = Atomic<Bool>(false)

    /// `LTT_RESERVE_CRITICAL`: room a blocking writer leaves for the others.
    public static let reserveCritical: UInt64 = 4096

    public init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields, clock: TraceClock,
                doorbell: ReaderDoorbell? = nil) {
        self.doorbell = doorbell
        self.geometry = geometry
        self.overwrite = overwrite
        self.cpu = cpu
        self.clock = clock
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 4096, Int(geometry.allocSize))
        precondition(rc == 0 && raw != nil, "cannot allocate \(geometry.allocSize) bytes for a relay buffer")
        memory = raw!
        memset(memory, 0, Int(geometry.allocSize))
        commitCounts = .allocate(capacity: Int(geometry.subbufferCount))
        ringState = .allocate(capacity: 1)
        ringState.initialize(to: RelayRing(geometry: geometry, overwrite: overwrite, trace: trace,
                                           memory: memory, commitCount: commitCounts))
    }

    /// A buffer whose clock is a function (tests drive time by hand).
    public convenience init(geometry: RelayGeometry, overwrite: Bool, cpu: Int, trace: TraceHeaderFields,
                            clock: @escaping @Sendable () -> UInt64) {
        self.init(geometry: geometry, overwrite: overwrite, cpu: cpu, trace: trace, clock: TraceClock(read: clock))
    }

    deinit {
        ringState.deinitialize(count: 1)
        ringState.deallocate()
        free(memory)
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
    /// and the buffer lock is held until `endEvent`.
    public struct EventInProgress {
        public let payload: UnsafeMutableRawPointer
        @usableFromInline let slot: RelaySlot
        @usableFromInline init(payload: UnsafeMutableRawPointer, slot: RelaySlot) {
            self.payload = payload
            self.slot = slot
        }
    }

    /// Reserves room for an event and writes its header (reserve_slot),
    /// leaving the lock held: store the payload at `payload`, then call
    /// `endEvent`. Nothing may block in between. Returns the failure,
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
            return .success(EventInProgress(payload: memory + Int(g.bufferOffset(slot.payloadOffset)), slot: slot))
        case .failure(let why):
            let wake = ring.pointee.wakeupReaders
            ring.pointee.wakeupReaders = false
            lock.unlock()
            if wake { flagReaders() }
            TracerNesting.leave()
            return .failure(why)
        }
    }

    /// Commits the event `beginEvent` started (commit_slot) and unlocks.
    @inlinable @inline(__always)
    public func endEvent(_ event: EventInProgress) {
        let ring = ringState
        ring.pointee.commit(event.slot)
        let wake = ring.pointee.wakeupReaders
        ring.pointee.wakeupReaders = false
        lock.unlock()
        // Still inside the tracer: a signal handler that records while the
        // bell rings is nested, and loses its event instead of re-entering
        // the doorbell's lock.
        if wake { flagReaders() }
        TracerNesting.leave()
    }

    /// A sub-buffer was delivered (or the buffer finalized): flag it for
    /// the notifier and ring its bell. Called without the buffer lock. The
    /// ring is the one place a producer may enter the kernel (a futex wake
    /// for the notifier), once per delivered sub-buffer, never per event.
    @usableFromInline @inline(never)
    func flagReaders() {
        readersToWake.store(true, ordering: .releasing)
        doorbell?.ring()
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
            endEvent(event)
            return .success(event.slot)
        case .failure(let why):
            return .failure(why)
        }
    }

    /// What a blocking write can end with, besides success.
    public enum BlockingWriteError: Error, Equatable, Sendable {
        case lost(ReserveFailure)
        /// The wait was cancelled (a signal); nothing was written.
        case cancelled
    }

    /// `ltt_relay_user_blocking` then record: in normal mode, waits for a
    /// reader to free space instead of losing the event, leaving
    /// `reserveCritical` bytes for non-blocking producers. The wait ends when
    /// space appears, the buffer is finalized, or `cancellation` fires.
    public func recordBlocking(eventID: UInt16, dataSize: UInt64, largestAlign: UInt64,
                               sizedHeader: Bool = false, cancellation: WaitCancellation? = nil,
                               payload: (UnsafeMutableRawPointer) -> Void) -> Result<RelaySlot, BlockingWriteError> {
        writerWait.register()
        defer { writerWait.unregister() }
        while true {
            if cancellation?.isCancelled == true { return .failure(.cancelled) }
            let (mustWait, generation) = locked { ring in
                (ring.writerShouldWait(dataSize: dataSize, largestAlign: largestAlign,
                                       reserveCritical: Self.reserveCritical), writerWait.generation)
            }
            if mustWait {
                guard writerWait.wait(past: generation, cancellation: cancellation) else {
                    return .failure(.cancelled)
                }
                continue
            }
            // Space is there, unless another producer took it meanwhile: then
            // `record` counts a loss, which only a full-speed producer sharing
            // this buffer can cause.
            return record(eventID: eventID, dataSize: dataSize, largestAlign: largestAlign,
                          sizedHeader: sizedHeader, payload: payload).mapError { .lost($0) }
        }
    }

    /// Waits until an event of `dataSize` bytes would find room (normal
    /// mode), at most `timeoutNanoseconds`. True when there is room, false
    /// on timeout or once `endWaits()` was called (the trace stopped); a
    /// finalized buffer ends the wait at once (true: the retry then fails
    /// as `.finalized`). Callers must not be inside an RCU read-side
    /// section: control operations wait for those to end.
    public func waitForRoom(dataSize: UInt64, largestAlign: UInt64, timeoutNanoseconds: UInt64) -> Bool {
        writerWait.register()
        defer { writerWait.unregister() }
        let deadline = WaitCancellation(timeoutNanoseconds: timeoutNanoseconds)
        while true {
            let (mustWait, generation) = locked { ring in
                (ring.writerShouldWait(dataSize: dataSize, largestAlign: largestAlign, reserveCritical: 0),
                 writerWait.generation)
            }
            if !mustWait { return true }
            // Read after the generation: endWaits sets the flag, then bumps it.
            if waitsEnded.load(ordering: .acquiring) { return false }
            if !writerWait.wait(past: generation, cancellation: deadline) { return false }
        }
    }

    /// Ends every `waitForRoom`, now and until `allowWaits()`: the trace is
    /// stopping.
    public func endWaits() {
        waitsEnded.store(true, ordering: .releasing)
        writerWait.wakeAll()
    }

    /// Lets producers wait for room again (the trace starts).
    public func allowWaits() {
        waitsEnded.store(false, ordering: .releasing)
    }

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

    /// `_ltt_release`.
    public func closeReader() {
        readers.store(0, ordering: .releasing)
    }

    public var hasReader: Bool { readers.load(ordering: .acquiring) != 0 }

    /// RELAY_GET_SUBBUF: the cookie (low 32 bits of `consumed`).
    public func getSubbuffer() -> Result<UInt32, SubbufferAccessError> {
        locked { $0.getSubbuffer() }.map { UInt32(truncatingIfNeeded: $0) }
    }

    /// RELAY_PUT_SUBBUF with the cookie GET gave; wakes blocked writers.
    public func putSubbuffer(cookie: UInt32) throws(SubbufferAccessError) {
        try locked { (ring: inout RelayRing) throws(SubbufferAccessError) in try ring.putSubbuffer(cookie: cookie) }
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

    /// Test-and-clear of the "readers to wake" flag, for the notifier.
    public func takeReaderWakeup() -> Bool {
        readersToWake.exchange(false, ordering: .acquiringAndReleasing)
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
