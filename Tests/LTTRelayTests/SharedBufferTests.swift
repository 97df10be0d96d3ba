#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation
import LTTFormat
import LTTSystem
import Synchronization
import Testing
import LTTTestSupport
@testable import LTTRelay

/// A PID no process has: a child started and reaped.
func deadPID() throws -> UInt32 {
    let pid = try ProcessControl.spawn("/bin/true", arguments: ["true"])
    _ = ProcessControl.exitStatus(of: pid, wait: true)
    return UInt32(pid)
}

/// A producer process's view of `buffer`: its memfd mapped again (the
/// descriptor duplicated, as one handed over a socket would be).
func attachedView(of buffer: RelayBuffer, clock: ManualClock) throws -> RelayBuffer {
    let mapping = try RingMapping.attach(descriptor: dup(buffer.mapping.descriptor), geometry: buffer.geometry,
                                         overwrite: buffer.overwrite, cpu: buffer.cpu)
    return RelayBuffer(attaching: mapping, overwrite: buffer.overwrite, cpu: buffer.cpu, trace: packedTrace,
                       clock: TraceClock(read: clock.function))
}

extension RelayBuffer {
    /// The ring without taking the lock (a test whose lock word is held
    /// by a dead PID on purpose).
    func withRingUnlocked<T>(_ body: (RelayRing) -> T) -> T { body(ring) }
}

@Suite("Buffers in shared memory: a second mapping, the lock of a dead or stuck holder")
struct SharedBufferTests {
    @Test("a second mapping of the memfd is the same ring: events recorded through it are read through the server's")
    func secondMapping() throws {
        let clock = ManualClock()
        let server = makeBuffer(subbufferSize: 4096, count: 4, clock: clock)
        let producer = try attachedView(of: server, clock: clock)
        #expect(producer.memory != server.memory, "another mapping")
        for i in 0..<100 {
            clock.advance(10)
            let r = producer.record(eventID: 3, dataSize: 8, largestAlign: 1) { $0.storeBytes(of: UInt64(i), as: UInt64.self) }
            #expect((try? r.get()) != nil)
        }
        #expect(server.forceSwitch())
        let cookie = try server.getSubbuffer().get()
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { bytes.deallocate() }
        #expect(server.read(at: 0, into: bytes) == 4096)
        let events = parseSubbuffer(UnsafeRawBufferPointer(bytes), payloadSize: 8, payloadAlign: 1, trace: packedTrace)
        #expect(events.count == 100 && events.allSatisfy { $0.id == 3 })
        #expect(events.map { bytes.loadUnaligned(fromByteOffset: $0.payloadOffset, as: UInt64.self) } == (0..<100).map(UInt64.init))
        try server.putSubbuffer(cookie: cookie)
        #expect(producer.counters.eventsWritten == 100 && producer.counters.subbuffersConsumed == 1)
    }

    @Test("a producer's mapping is refused when the memfd is not the buffer announced (size, identity)")
    func attachChecks() throws {
        let server = makeBuffer(subbufferSize: 4096, count: 4)
        let other = try RelayGeometry(subbufferSize: 4096, subbufferCount: 8)
        #expect(throws: RingMapping.Failure.self) {
            try RingMapping.attach(descriptor: dup(server.mapping.descriptor), geometry: other, overwrite: false, cpu: 0)
        }
        #expect(throws: RingMapping.Failure.self) {
            try RingMapping.attach(descriptor: dup(server.mapping.descriptor), geometry: server.geometry, overwrite: true, cpu: 0)
        }
        // The size is sealed: nobody can shrink it under the server's mapping.
        #expect(ftruncate(server.mapping.descriptor, 0) != 0 && errno == EPERM)
    }

    @Test("a holder that died between reserve and commit: the server takes the lock back and closes the sub-buffer right before the dead slot; every other event is delivered intact, the dead one counted lost")
    func deadHolder() throws {
        let clock = ManualClock()
        let server = makeBuffer(subbufferSize: 4096, count: 4, clock: clock)
        let producer = try attachedView(of: server, clock: clock)
        for i in 0..<3 {
            clock.advance(1)
            _ = producer.record(eventID: 2, dataSize: 8, largestAlign: 1) { $0.storeBytes(of: UInt64(i), as: UInt64.self) }
        }
        // The producer reserves a slot and dies before committing: the lock
        // word keeps its (now dead) PID, the slot is pending.
        let dead = try deadPID()
        #expect(producer.lock.tryLock())
        let view = producer.ring
        guard case .success = view.reserve(dataSize: 8, largestAlign: 1, tsc: clock.now) else {
            Issue.record("no room")
            return
        }
        producer.lock.word.store(dead, ordering: .relaxed)
        #expect(server.withRingUnlocked { $0.hasAbandonedSlot })
        // A producer process may not judge a PID: it gives up, counted.
        #expect(producer.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in } == .failure(.busy))
        // The server takes the lock back (as when it sees the producer's
        // connection close) and repairs: sub-buffer 0 is closed before the
        // dead slot and delivered.
        #expect(server.recoverLock(from: dead))
        let c = server.counters
        #expect(c.locksRecovered == 1 && c.corruptedSubbuffers == 1 && c.eventsLost == 2 && c.subbuffersDelivered == 1)
        let cookie = try server.getSubbuffer().get()
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { bytes.deallocate() }
        #expect(server.read(at: 0, into: bytes) == 4096)
        let events = parseSubbuffer(UnsafeRawBufferPointer(bytes), payloadSize: 8, payloadAlign: 1, trace: packedTrace)
        #expect(events.map { bytes.loadUnaligned(fromByteOffset: $0.payloadOffset, as: UInt64.self) } == [0, 1, 2])
        #expect(bytes.loadUnaligned(fromByteOffset: SubbufferHeader.Field.subbufCorrupt, as: UInt32.self) == 1)
        try server.putSubbuffer(cookie: cookie)
        // Recording goes on in the next sub-buffer, for both.
        #expect((try? server.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }.get()) != nil)
        #expect((try? producer.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }.get()) != nil)
        #expect(server.lockHolder == 0 && server.counters.eventsWritten == 5)
    }

    @Test("flight recorder: a holder that died after moving the write position but before pushing the reader is repaired with the push done, so the state stays possible and the buffer is served")
    func deadBeforePush() throws {
        let clock = ManualClock()
        let server = makeBuffer(subbufferSize: 4096, count: 4, overwrite: true, clock: clock)
        // Wrap the ring: from now on every switch pushes the reader.
        while server.counters.subbuffersOverwritten == 0 {
            clock.advance(1)
            _ = server.put(1000, tsc: clock.now)
        }
        // Fill the current sub-buffer up to its end, so that the next event switches.
        while server.withRing({ $0.geometry.subbufOffset($0.offset) }) + 1100 < 4096 {
            clock.advance(1)
            _ = server.put(1000, tsc: clock.now)
        }
        // A producer reserves the switching event and dies before its push:
        // the push is undone by hand, as if it had never run.
        #expect(server.lock.tryLock())
        let before = server.withRingUnlocked { ($0.consumed, $0.subbuffersOverwritten, $0.eventsOverwritten) }
        guard case .success = server.ring.reserve(dataSize: 2000, largestAlign: 1, tsc: clock.now) else {
            Issue.record("no room")
            return
        }
        server.withRingUnlocked { ring in
            ring.consumed = before.0
            ring.subbuffersOverwritten = before.1
            ring.eventsOverwritten = before.2
        }
        #expect(server.withRingUnlocked { $0.geometry.subbufTrunc($0.offset) &- $0.consumed == $0.geometry.allocSize },
                "the push was due")
        server.lock.word.store(try deadPID(), ordering: .relaxed)
        #expect(server.recoverLock(from: server.lockHolder))
        #expect(server.withRingUnlocked { $0.stateIsPossible })
        // Served as usual: nothing given up, the reader reads on.
        clock.advance(1)
        #expect((try? server.put(100, tsc: clock.now).get()) != nil)
        #expect(!server.counters.abandoned && server.counters.corruptedSubbuffers == 1)
        #expect(server.pollState == .full || server.pollState == .readable)
    }

    @Test("a jammed holder is remembered for a second or two only: after it, a writer waits its patience again")
    func jamExpires() throws {
        let server = makeBuffer(subbufferSize: 4096, count: 4)
        server.lock.word.store(1, ordering: .relaxed)   // PID 1: alive
        // Found jammed two seconds ago.
        let second = UInt32(truncatingIfNeeded: MonotonicClock.now() / 1_000_000_000) &- 2
        server.jammedHolder.store(UInt64(1) << 32 | UInt64(second), ordering: .relaxed)
        let started = MonotonicClock.now()
        #expect(server.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in } == .failure(.busy))
        #expect(MonotonicClock.now() - started >= RelayLock.writerPatience, "the old jam was not held against it")
        server.lock.word.store(0, ordering: .relaxed)
        #expect((try? server.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }.get()) != nil)
    }

    @Test("at finalize, a sub-buffer left incomplete with no pending slot (shared state scribbled on) is passed and counted corrupted: the reader drains to the hang-up instead of waiting for good")
    func abandonedAtFinalize() throws {
        let clock = ManualClock()
        let server = makeBuffer(subbufferSize: 4096, count: 4, clock: clock)
        for _ in 0..<5 { _ = server.put(8, tsc: clock.now) }
        #expect(server.forceSwitch())
        for _ in 0..<5 { clock.advance(1); _ = server.put(8, tsc: clock.now) }
        // Someone took 8 bytes off sub-buffer 0's commit count.
        server.withRing { $0.commitCount[0] &-= 8 }
        #expect(server.getSubbuffer() == .failure(.notReady), "sub-buffer 0 waits for a commit that will not come")
        server.finalize()
        var got = 0
        while case .success(let cookie) = server.getSubbuffer() {
            try server.putSubbuffer(cookie: cookie)
            got += 1
        }
        #expect(got == 1, "sub-buffer 1, after 0 was passed")
        #expect(server.counters.corruptedSubbuffers == 1)
        #expect(server.pollState == .hungUp)
    }

    @Test("a live holder that keeps the lock: writers give up after their patience, then at once, counted; the server's finalize gives the buffer up and its reader gets the hang-up")
    func stuckHolder() throws {
        let server = makeBuffer(subbufferSize: 4096, count: 4)
        // PID 1 is alive; a stopped producer would look the same.
        server.lock.word.store(1, ordering: .relaxed)
        let started = MonotonicClock.now()
        #expect(server.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in } == .failure(.busy))
        let waited = MonotonicClock.now() - started
        #expect(waited >= RelayLock.writerPatience, "it waited its patience")
        let again = MonotonicClock.now()
        #expect(server.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in } == .failure(.busy))
        #expect(MonotonicClock.now() - again < RelayLock.writerPatience, "the jammed holder is remembered")
        #expect(server.getSubbuffer() == .failure(.notReady))
        server.finalize()
        #expect(server.isAbandoned && server.pollState == .hungUp)
        // The holder lets go: the events lost meanwhile are counted.
        server.lock.word.store(0, ordering: .relaxed)
        #expect(server.counters.eventsLost == 2)
    }

    @Test("a producer process waits for room on the shared futex: a PUT in the server wakes it, endWaits ends it")
    func crossMappingWait() throws {
        let clock = ManualClock()
        let server = makeBuffer(subbufferSize: 4096, count: 2, clock: clock)
        let producer = try attachedView(of: server, clock: clock)
        #expect(server.openReader())
        defer { server.closeReader() }
        while case .success = producer.record(eventID: 1, dataSize: 1000, largestAlign: 1, payload: { _ in }) { clock.advance(1) }
        let outcome = Locked<RelayBuffer.WaitingRecord?>(nil)
        let thread = Thread {
            let r = producer.recordWaiting(eventID: 1, dataSize: 1000, largestAlign: 1,
                                           policy: .init(timeoutNanoseconds: 30_000_000_000, onlyWithReader: true)) { _ in }
            outcome.withLock { $0 = r }
        }
        thread.start()
        #expect(waitUntil { producer.waitingWriters == 1 })
        let cookie = try server.getSubbuffer().get()
        try server.putSubbuffer(cookie: cookie)
        #expect(waitUntil { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0 } == .recorded)
        // Full again: endWaits in the server ends the producer's wait at once.
        while case .success = producer.record(eventID: 1, dataSize: 1000, largestAlign: 1, payload: { _ in }) { clock.advance(1) }
        outcome.withLock { $0 = nil }
        Thread {
            let r = producer.recordWaiting(eventID: 1, dataSize: 1000, largestAlign: 1,
                                           policy: .init(timeoutNanoseconds: 30_000_000_000)) { _ in }
            outcome.withLock { $0 = r }
        }.start()
        #expect(waitUntil { producer.waitingWriters == 1 })
        server.endWaits()
        #expect(waitUntil { outcome.withLock { $0 } != nil })
        #expect(outcome.withLock { $0 } == .lost)
    }
}
