#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import Foundation
import Synchronization
import Testing
import CLinuxSupport
import LTTTestSupport
@testable import LTTRelay

/// A counter that only the lock protects: a buffer lock in shared memory
/// of its own.
final class Unprotected: @unchecked Sendable {
    let mapping = try! RingMapping.create(name: "lttfs-test-lock", geometry: try! RelayGeometry(subbufferSize: 4096, subbufferCount: 2),
                                          overwrite: false, cpu: 0)
    let lock: RelayLock
    let jammed = Atomic<UInt64>(0)
    var value = 0
    init() { lock = RelayLock(control: mapping.control) }
}

@Suite("The buffer lock, the doorbell, the CPU number")
struct PrimitiveTests {
    @Test("the buffer lock excludes: more threads than CPUs, each incrementing a plain counter under it")
    func spinLockExcludes() {
        let shared = Unprotected()
        let threads = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
        let perThread = 200_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread {
                let locked = shared.lock.lock(patience: 60_000_000_000, jammed: shared.jammed, recoverDead: false)
                if !locked { Issue.record("the lock was not had in a minute") }
                // A read, a pause, a write: any overlap loses increments.
                let v = shared.value
                if v % 1024 == 0 { sched_yield() }
                shared.value = v + 1
                shared.lock.unlock()
            }
        }
        #expect(shared.value == threads * perThread)
    }

    @Test("tryLock fails while the lock is held and succeeds once it is released")
    func tryLock() {
        let shared = Unprotected()
        let first = shared.lock.tryLock()
        let again = shared.lock.tryLock()
        #expect(first && !again)
        let refused = Flag()
        Thread { if !shared.lock.tryLock() { refused.set() } }.start()
        #expect(refused.wait(seconds: 5))
        shared.lock.unlock()
        let afterUnlock = shared.lock.tryLock()
        #expect(afterUnlock)
        shared.lock.unlock()
    }

    @Test("the doorbell keeps each posted buffer once per subscriber and calls each once per pass, never without one")
    func doorbell() throws {
        let bell = ReaderDoorbell()
        let geometry = try RelayGeometry(subbufferSize: 4096, subbufferCount: 4)
        let (a, b) = (try RelayBuffer(geometry: geometry, overwrite: false, cpu: 0, trace: packedTrace,
                                      clock: TraceClock(read: ManualClock().function)),
                      try RelayBuffer(geometry: geometry, overwrite: false, cpu: 1, trace: packedTrace,
                                      clock: TraceClock(read: ManualClock().function)))
        bell.post(a)                        // nobody subscribed: not kept, nobody called
        let (calls, otherCalls) = (Counter(), Counter())
        let first = bell.subscribe { calls.add(1) }
        #expect(first.takePosted().isEmpty)
        // A tracer served by two mounts: each server gets every post.
        let second = bell.subscribe { otherCalls.add(1) }
        bell.post(a)
        bell.post(b)
        bell.post(a)
        #expect(calls.load == 1 && otherCalls.load == 1, "one call per pass and subscriber")
        #expect(Set(first.takePosted()) == [ObjectIdentifier(a), ObjectIdentifier(b)])
        #expect(first.takePosted().isEmpty)
        bell.post(b)
        #expect(calls.load == 2 && otherCalls.load == 1, "the second has not taken its first pass yet")
        #expect(Set(second.takePosted()) == [ObjectIdentifier(a), ObjectIdentifier(b)])
        // One server leaving does not silence the other.
        first.cancel()
        _ = second.takePosted()
        bell.post(a)
        #expect(calls.load == 2 && otherCalls.load == 2)
        #expect(second.takePosted() == [ObjectIdentifier(a)])
        second.cancel()
    }

    @Test("200,000 posts call the subscriber 200,000 times: it is stored once, never re-wrapped (which would overflow the stack)")
    func doorbellPostsStayFlat() throws {
        let bell = ReaderDoorbell()
        let buffer = try RelayBuffer(geometry: try RelayGeometry(subbufferSize: 4096, subbufferCount: 4), overwrite: false,
                                     cpu: 0, trace: packedTrace, clock: TraceClock(read: ManualClock().function))
        let calls = Counter()
        let subscription = bell.subscribe { calls.add(1) }
        defer { subscription.cancel() }
        for _ in 0..<200_000 {
            bell.post(buffer)
            #expect(subscription.takePosted().count == 1)
        }
        #expect(calls.load == 200_000)
    }

    @Test("a delivered sub-buffer rings the buffer's doorbell; events inside a sub-buffer do not")
    func deliveryRings() throws {
        let bell = ReaderDoorbell()
        let calls = Counter()
        let subscription = bell.subscribe { calls.add(1) }
        defer { subscription.cancel() }
        let geometry = try RelayGeometry(subbufferSize: 4096, subbufferCount: 4)
        let buffer = try RelayBuffer(geometry: geometry, overwrite: false, cpu: 0, trace: packedTrace,
                                 clock: TraceClock(read: ManualClock().function), doorbell: bell)
        for _ in 0..<10 { _ = buffer.record(eventID: 1, dataSize: 100, largestAlign: 1) { _ in } }
        #expect(calls.load == 0)
        for _ in 0..<40 { _ = buffer.record(eventID: 1, dataSize: 100, largestAlign: 1) { _ in } }
        #expect(calls.load == 1 && buffer.counters.subbuffersDelivered == 1)
        #expect(subscription.takePosted() == [ObjectIdentifier(buffer)])
        // A finalize is news too (the readers must see POLLHUP).
        buffer.finalize()
        #expect(calls.load == 2 && subscription.takePosted() == [ObjectIdentifier(buffer)])
    }

    @Test("an event in progress holds the lock until it is committed, once; dropped, its deinit commits it")
    func eventInProgressCommitsOnce() throws {
        let buffer = makeBuffer()
        switch buffer.beginEvent(eventID: 1, dataSize: 8, largestAlign: 1) {
        case .success(let event):
            let free = buffer.lock.tryLock()
            #expect(!free, "the buffer lock is held while the payload is stored")
            event.payload.storeBytes(of: UInt64(42), as: UInt64.self)
            let slot = event.commit()
            #expect(slot.payloadOffset > 0)
        case .failure(let why):
            Issue.record("no room: \(why)")
        }
        let released = buffer.lock.tryLock()
        #expect(released, "commit released it")
        if released { buffer.lock.unlock() }
        #expect(buffer.counters.eventsWritten == 1)
        // An event that goes out of scope without commit() is committed by
        // its deinit: the lock is never left held, the event is counted.
        if case .success = buffer.beginEvent(eventID: 1, dataSize: 8, largestAlign: 1) {}
        let releasedByDeinit = buffer.lock.tryLock()
        #expect(releasedByDeinit)
        if releasedByDeinit { buffer.lock.unlock() }
        #expect(buffer.counters.eventsWritten == 2)
    }

    @Test("an event recorded while the bell rings (a signal handler's) is nested: lost and counted, never re-entrant")
    func recordDuringRing() throws {
        let bell = ReaderDoorbell()
        let geometry = try RelayGeometry(subbufferSize: 4096, subbufferCount: 4)
        let buffer = try RelayBuffer(geometry: geometry, overwrite: false, cpu: 0, trace: packedTrace,
                                 clock: TraceClock(read: ManualClock().function), doorbell: bell)
        let inner = Locked<Result<RelaySlot, ReserveFailure>?>(nil)
        let subscription = bell.subscribe {
            let r = buffer.record(eventID: 2, dataSize: 8, largestAlign: 1) { _ in }
            inner.withLock { $0 = r }
        }
        defer { subscription.cancel() }
        for _ in 0..<50 { _ = buffer.record(eventID: 1, dataSize: 100, largestAlign: 1) { _ in } }
        #expect(inner.withLock { $0 } == .failure(.nested))
        // Folded into the ring's count by the next writer.
        _ = buffer.record(eventID: 1, dataSize: 100, largestAlign: 1) { _ in }
        #expect(buffer.counters.eventsLost == 1)
    }

    @Test("the inline CPU number (rseq) agrees with sched_getcpu")
    func currentCPU() {
        var agree = 0
        let samples = 10_000
        for _ in 0..<samples {
            let a = lttfs_current_cpu()
            let b = lttfs_sched_getcpu()
            if a == b && a >= 0 { agree += 1 }
        }
        // A migration between the two reads can split a pair, rarely.
        #expect(agree >= samples * 99 / 100)
    }
}
