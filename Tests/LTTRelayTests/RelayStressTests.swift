import LTTSystem
import LTTFormat
import Foundation
import Synchronization
import Testing
import LTTTestSupport
@testable import LTTRelay

/// Runs `body(i)` on `count` new threads and waits for all of them, at most
/// `timeout` seconds. Returns false if any is still running then.
func onThreads(_ count: Int, timeout: Double = 120, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let t = Thread { body(i); done.signal() }
        t.start()
    }
    for _ in 0..<count where done.wait(timeout: .now() + timeout) == .timedOut { return false }
    return true
}

/// The 32-byte payload of the stress events: who, which, and a checksum.
enum StressPayload {
    static let size: UInt64 = 32
    static func checksum(_ producer: UInt32, _ seq: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in withUnsafeBytes(of: (UInt64(producer) << 48) ^ seq, Array.init) {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return h
    }
    static func write(_ p: UnsafeMutableRawPointer, producer: UInt32, seq: UInt64) {
        p.storeBytes(of: producer, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: ~producer, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: seq, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: checksum(producer, seq), toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: ~seq, toByteOffset: 24, as: UInt64.self)
    }
    /// (producer, seq) if the payload is intact.
    static func read(_ bytes: UnsafeRawBufferPointer, at o: Int) -> (UInt32, UInt64)? {
        let producer = bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        let seq = bytes.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self)
        guard bytes.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self) == ~producer,
              bytes.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self) == checksum(producer, seq),
              bytes.loadUnaligned(fromByteOffset: o + 24, as: UInt64.self) == ~seq else { return nil }
        return (producer, seq)
    }
}

@Suite("Relay buffers under concurrent producers and a consumer")
struct RelayStressTests {
    struct Outcome {
        var received: [[UInt64]]
        var torn = 0, duplicates = 0, badHeaders = 0, clockBackwards = 0
        var putEIO = 0
        var subbuffers = 0
    }

    func run(overwrite: Bool, producers: Int, perProducer: UInt64) -> (Outcome, [RelayCounters], producerLosses: UInt64) {
        let trace = TraceHeaderFields(alignment: 8, startTSC: MonotonicClock.now())
        let geometry = try! RelayGeometry(subbufferSize: 4096, subbufferCount: 8)
        let channel = try! RelayChannel(name: "stress", geometry: geometry, overwrite: overwrite, cpuCount: 2,
                                   trace: trace, clock: .monotonic)
        let producing = Counter(producers)
        let producerLosses = Counter()
        let outcome = Locked(Outcome(received: Array(repeating: [], count: producers)))

        let finished = onThreads(producers + 1) { index in
            if index < producers {
                for seq in 0..<perProducer {
                    let r = channel.currentBuffer.record(eventID: 3, dataSize: StressPayload.size, largestAlign: 8) { p in
                        StressPayload.write(p, producer: UInt32(index), seq: seq)
                    }
                    if case .failure = r { producerLosses.add(1) }
                }
                if producing.add(-1) == 0 { channel.finalize() }
                return
            }
            // The consumer: GET, copy the sub-buffer, PUT; parse what PUT
            // confirmed was not overwritten meanwhile.
            var bytes = [UInt8](repeating: 0, count: Int(geometry.subbufferSize))
            var local = Outcome(received: Array(repeating: [], count: producers))
            while !channel.buffers.allSatisfy({ $0.pollState == .hungUp }) {
                var progressed = false
                for buffer in channel.buffers {
                    guard case .success(let cookie) = buffer.getSubbuffer() else { continue }
                    let n = bytes.withUnsafeMutableBytes { buffer.read(at: 0, into: $0) }
                    precondition(n == bytes.count)
                    do throws(SubbufferAccessError) {
                        try buffer.putSubbuffer(cookie: cookie)
                    } catch {
                        local.putEIO += 1
                        continue
                    }
                    progressed = true
                    local.subbuffers += 1
                    bytes.withUnsafeBytes { raw in Self.check(raw, trace: trace, into: &local) }
                }
                if !progressed { usleep(50) }
            }
            outcome.withLock { $0 = local }
        }
        #expect(finished, "threads did not finish in time")
        return (outcome.withLock { $0 }, channel.buffers.map(\.counters), UInt64(producerLosses.load))
    }

    static func check(_ raw: UnsafeRawBufferPointer, trace: TraceHeaderFields, into o: inout Outcome) {
        let magic = raw.loadUnaligned(fromByteOffset: SubbufferHeader.Field.magicNumber, as: UInt32.self)
        let lost = raw.loadUnaligned(fromByteOffset: SubbufferHeader.Field.lostSize, as: UInt32.self)
        let begin = raw.loadUnaligned(fromByteOffset: SubbufferHeader.Field.cycleCountBegin, as: UInt64.self)
        let end = raw.loadUnaligned(fromByteOffset: SubbufferHeader.Field.cycleCountEnd, as: UInt64.self)
        guard magic == SubbufferHeader.magic, lost <= UInt32(raw.count) - 68, end >= begin else {
            o.badHeaders += 1
            return
        }
        var clock = begin
        for e in parseSubbuffer(raw, payloadSize: Int(StressPayload.size), payloadAlign: 8, trace: trace) {
            // Rebuild the full clock from 27 bits, the way readers do.
            var next = e.fullTSC ?? ((clock & ~UInt64(EventHeader.tscMask)) | UInt64(e.tsc27))
            if e.fullTSC == nil && next < clock { next += 1 << 27 }
            if next < clock || next > end { o.clockBackwards += 1 }
            clock = next
            guard e.id == 3, let (producer, seq) = StressPayload.read(raw, at: e.payloadOffset),
                  Int(producer) < o.received.count else {
                o.torn += 1
                continue
            }
            o.received[Int(producer)].append(seq)
        }
    }

    @Test("normal mode: every event is read back intact or counted lost, none twice, none torn")
    func normalMode() {
        let producers = 3, perProducer: UInt64 = 40_000
        let (o, counters, producerLosses) = run(overwrite: false, producers: producers, perProducer: perProducer)
        let lost = counters.reduce(0) { $0 + $1.eventsLost }
        let written = counters.reduce(0) { $0 + $1.eventsWritten }
        var received: UInt64 = 0
        var duplicates = 0
        for seqs in o.received {
            received += UInt64(seqs.count)
            duplicates += seqs.count - Set(seqs).count
            #expect(seqs.allSatisfy { $0 < perProducer })
        }
        #expect(o.torn == 0 && o.badHeaders == 0 && o.clockBackwards == 0 && duplicates == 0)
        #expect(o.putEIO == 0)
        #expect(lost == producerLosses)
        #expect(written == received, "written \(written) received \(received)")
        #expect(received + lost == UInt64(producers) * perProducer)
        #expect(counters.allSatisfy { $0.corruptedSubbuffers == 0 && $0.finalized })
        // Within one producer and one buffer, order is kept.
        #expect(o.subbuffers > 0)
    }

    @Test("overwrite mode: every sub-buffer read whole is consistent, and the counters add up")
    func overwriteMode() {
        let producers = 3, perProducer: UInt64 = 40_000
        let (o, counters, producerLosses) = run(overwrite: true, producers: producers, perProducer: perProducer)
        let written = counters.reduce(0) { $0 + $1.eventsWritten }
        var received: UInt64 = 0
        var duplicates = 0
        for seqs in o.received {
            received += UInt64(seqs.count)
            duplicates += seqs.count - Set(seqs).count
        }
        #expect(o.torn == 0 && o.badHeaders == 0 && o.clockBackwards == 0 && duplicates == 0)
        #expect(producerLosses == 0 && counters.allSatisfy { $0.eventsLost == 0 && $0.corruptedSubbuffers == 0 })
        #expect(written == UInt64(producers) * perProducer)
        #expect(received <= written && received > 0)
        let delivered = counters.reduce(0) { $0 + $1.subbuffersDelivered }
        let consumed = counters.reduce(0) { $0 + $1.subbuffersConsumed }
        #expect(consumed == UInt64(o.subbuffers) && consumed <= delivered)
    }

    /// Waits (bounded) until `buffer` has `count` producers in
    /// `recordWaiting` that found no room and sleep: the observable state a
    /// waiting test needs.
    func waitForWriters(_ buffer: RelayBuffer, _ count: Int) -> Bool {
        let deadline = MonotonicClock.now() + 5_000_000_000
        while buffer.waitingWriters != count {
            if MonotonicClock.now() > deadline { return false }
            sched_yield()
        }
        return true
    }

    @Test("a waiting writer records once a PUT frees room; a cancellation leaves nothing written and nothing counted")
    func blockingWriter() throws {
        let b = makeBuffer(count: 2)
        for _ in 0..<2 { _ = b.put(4096 - 68 - 4) }
        #expect(b.pollState == .full)
        let finished = Flag()
        let result = Locked<RelayBuffer.WaitingRecord?>(nil)
        let thread = Thread {
            let r = b.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1, policy: .init()) { _ in }
            result.withLock { $0 = r }
            finished.set()
        }
        thread.start()
        #expect(waitForWriters(b, 1))
        #expect(!finished.isSet)   // nothing can free space
        try b.putSubbuffer(cookie: try b.getSubbuffer().get())
        #expect(finished.wait(seconds: 5))
        #expect(result.withLock { $0 } == .recorded)
        #expect(b.counters.eventsLost == 0 && b.counters.eventsWritten == 3)

        // Full again; this time the writer is cancelled.
        _ = b.put(4096 - 68 - 104 - 4)
        #expect(b.pollState == .full)
        let cancellation = WaitCancellation()
        let cancelled = Flag()
        let t2 = Thread {
            let r = b.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1,
                                    policy: .init(cancellation: cancellation)) { _ in }
            if r == .cancelled { cancelled.set() }
        }
        t2.start()
        #expect(waitForWriters(b, 1))
        cancellation.cancel()
        #expect(cancelled.wait(seconds: 5))
        #expect(b.counters.eventsLost == 0 && b.counters.eventsWritten == 4)
    }

    @Test("each reason to stop waiting ends the wait and counts the event lost: endWaits, finalize, no reader, the deadline")
    func waitEnds() throws {
        func fullBuffer() throws -> RelayBuffer {
            let b = makeBuffer(count: 2)
            for _ in 0..<2 { _ = b.put(4096 - 68 - 4) }
            return b
        }
        func waiter(_ b: RelayBuffer, _ policy: RelayBuffer.WaitPolicy) -> (Flag, Shared<RelayBuffer.WaitingRecord?>) {
            let done = Flag()
            let result = Shared<RelayBuffer.WaitingRecord?>(nil)
            Thread {
                result.set(b.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1, policy: policy) { _ in })
                done.set()
            }.start()
            return (done, result)
        }
        // The trace stops.
        let stopped = try fullBuffer()
        let (s1, r1) = waiter(stopped, .init())
        #expect(waitForWriters(stopped, 1))
        stopped.endWaits()
        #expect(s1.wait(seconds: 2) && r1.load == .lost)
        #expect(stopped.counters.eventsLost == 1 && stopped.counters.eventsWritten == 2)
        // While ended, nobody waits at all; allowWaits lets them wait again.
        #expect(stopped.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1, policy: .init()) { _ in } == .lost)
        #expect(stopped.counters.eventsLost == 2)

        // The buffer is finalized (destroy).
        let destroyed = try fullBuffer()
        let (s2, r2) = waiter(destroyed, .init())
        #expect(waitForWriters(destroyed, 1))
        destroyed.finalize()
        #expect(s2.wait(seconds: 2) && r2.load == .lost)

        // The only reader goes away: nobody will free room.
        let read = try fullBuffer()
        #expect(read.openReader())
        let (s3, r3) = waiter(read, .init(onlyWithReader: true))
        #expect(waitForWriters(read, 1))
        #expect(!s3.isSet)
        read.closeReader()
        #expect(s3.wait(seconds: 2) && r3.load == .lost)
        // With no reader at all, such a writer does not wait.
        #expect(read.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1,
                                   policy: .init(onlyWithReader: true)) { _ in } == .lost)
        #expect(read.counters.eventsLost == 2)

        // The deadline passes.
        let slow = try fullBuffer()
        let start = MonotonicClock.now()
        #expect(slow.recordWaiting(eventID: 1, dataSize: 100, largestAlign: 1,
                                   policy: .init(timeoutNanoseconds: 50_000_000)) { _ in } == .lost)
        #expect(MonotonicClock.now() - start >= 50_000_000)
        #expect(slow.counters.eventsLost == 1)
    }
}
