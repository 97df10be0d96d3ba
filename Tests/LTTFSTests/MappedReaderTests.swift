#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTMountTestSupport
import LTTProducers
import LTTRelay
import LTTSystem
import LTTTestSupport
import LTTTrace
import SystemPackage
import Testing

/// Readers that work a buffer through its shared memory (ReaderGrants):
/// the grant's rules on a real mount, and `lttfs consume` in its own
/// process against producer processes, killed too.
extension ProducerProcessTests {
    @Test("reader grants: only an open buffer file issues one, good once and while the file is open; a made-up one is refused; the mapped ring is the file's")
    func readerGrants() throws {
        try withMount(cpuCount: 1) { m in
            let marker = try startTrace(m, "g", subbufferSize: 4096, subbufferCount: 4, blockingTimeoutMillis: 0)
            let file = try FileDescriptor.open(FilePath(m.ltt + "/g/app_0"), .readOnly, options: [.nonBlocking, .closeOnExec])
            var fileOpen = true
            defer { if fileOpen { try? file.close() } }
            let readers = try ReaderConnection(mountpoint: m.path)
            let token = try ReaderConnection.grant(of: file)
            let mapped = try readers.attach(token)
            #expect(mapped.buffer.geometry.subbufferSize == 4096 && mapped.buffer.geometry.subbufferCount == 4
                    && mapped.buffer.cpu == 0)
            #expect(mapped.buffer.readerPollState == RelayPollState.none)

            func refused(_ token: ReaderGrants.Token) -> Bool {
                do { _ = try readers.attach(token); return false } catch {
                    if case .refused(let why) = error { return why.contains("EACCES") }
                    return false
                }
            }
            #expect(refused(token), "a grant is good once")
            #expect(refused(ReaderGrants.Token(high: 1, low: 2)), "a made-up grant")

            // A delivery rings the bell; the ring serves it; the file then
            // has nothing more to give (one reader state, shared).
            for i in 0..<UInt64(400) { marker.record(i, 1) }
            try m.tracer.flush("g")
            var slot = [pollfd(fd: mapped.bell.rawValue, events: Int16(POLLIN), revents: 0)]
            #expect(waitUntil { (try? LTTSystem.poll(&slot, milliseconds: 100)) == 1 }, "the server rang the bell")
            mapped.quietBell()
            var taken = 0
            while let (cookie, region) = mapped.buffer.takeSubbuffer() {
                #expect(region.count == 4096 && SubbufferHeader(bytes: region) != nil)
                try mapped.buffer.putSubbuffer(cookie: cookie)
                taken += 1
            }
            #expect(taken >= 2, "400 events of 16 bytes and more fill two 4 KiB sub-buffers")
            var cookie: UInt32 = 0
            #expect(throws: Errno.resourceTemporarilyUnavailable) { try file.ioctl(RelayIoctl.getSubbuffer.rawValue, &cookie) }
            #expect(m.tracer.trace("g")!.channels["app"]!.buffers[0].counters.subbuffersConsumed == UInt64(taken))

            // A grant whose file closed is void (once the server saw the
            // release: FUSE sends it after close(2) returned).
            let late = try ReaderConnection.grant(of: file)
            try file.close()
            fileOpen = false
            let buffer = m.tracer.trace("g")!.channels["app"]!.buffers[0]
            #expect(waitUntil { !buffer.hasReader })
            #expect(refused(late), "the file closed")
            // Only buffer files issue grants.
            let control = try FileDescriptor.open(FilePath(m.ltt + "/control/g/stats"), .readOnly)
            defer { try? control.close() }
            #expect(throws: Producer.Failure.self) { _ = try ReaderConnection.grant(of: control) }
        }
    }

    @Test("a producer process waiting for room (wait mode, 4 KiB sub-buffers) drained by `lttfs consume --transport shm` in a third process: every event once, none lost; the consumer's PUTs in shared memory wake the producer")
    func sharedMemoryConsumer() throws {
        try withMount(cpuCount: 2) { m in
            _ = try startTrace(m, "shm", subbufferSize: 4096)
            let out = NSTemporaryDirectory() + "lttfs-shm-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let consumer = try RecorderProcess([lttfsBinary, "consume", "-c", m.ltt + "/shm", "-t", out, "--transport", "shm", "-n", "2"])
            let buffers = m.tracer.trace("shm")!.bufferFiles.map(\.buffer)
            #expect(waitUntil { buffers.allSatisfy(\.hasMappedReader) || consumer.wait(seconds: 0) != nil },
                    "the consumer mapped every buffer")
            let count = 200_000
            let producer = try record(m, count: count, from: 0, src: 1)
            #expect(producer.wait() == 0, "\(producer.errorText)")
            #expect(producer.errorText.contains("\(count) events, recorded \(count) times, lost 0 times"), "\(producer.errorText)")
            let app = m.tracer.trace("shm")!.channels["app"]!.buffers
            try m.tracer.stopTrace("shm")
            try m.tracer.destroyTrace("shm")
            #expect(consumer.wait() == 0, "\(consumer.errorText)")
            #expect(!consumer.errorText.contains("note: reading the buffer files"), "\(consumer.errorText)")
            let (pairs, result) = items(out)
            #expect(result.problems.isEmpty && result.eventsLost == 0, "\(result.problems.prefix(3))")
            #expect(pairs.count == count && Set(pairs.map { $0[0] }) == Set(0..<UInt64(count)), "each event once")
            // 200k events of 20 bytes in 4 KiB sub-buffers, 16 per buffer:
            // the producer waited for the consumer many times over.
            #expect(app.reduce(0) { $0 + $1.counters.subbuffersConsumed } > 64)
        }
    }

    @Test("kill -9 of `lttfs consume --transport shm` at random moments, 20 times, while a producer process records: nothing hangs, no lock stays with a dead consumer, and the next consumer drains to the hang-up")
    func killedConsumers() throws {
        try withMount(cpuCount: 2) { m in
            _ = try startTrace(m, "kc", subbufferSize: 4096, subbufferCount: 8, blockingTimeoutMillis: 0)
            let buffers = m.tracer.trace("kc")!.bufferFiles.map(\.1)
            let out = NSTemporaryDirectory() + "lttfs-kc-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let producer = try record(m, count: 0, from: 0, src: 1)
            #expect(waitUntil { producer.hasMapped("app") || producer.wait(seconds: 0) != nil }, "the producer records")
            var generator = SplitMix64(state: 5)
            for k in 0..<20 {
                // The last one's files are released (FUSE's release is
                // asynchronous): one reader per buffer.
                #expect(waitUntil { buffers.allSatisfy { !$0.hasReader } }, "consumer \(k - 1)'s files closed")
                let consumer = try RecorderProcess([lttfsBinary, "consume", "-c", m.ltt + "/kc", "-t", out + "/\(k)",
                                                    "--transport", "shm", "-q"])
                #expect(waitUntil { consumer.hasMapped("app") || consumer.wait(seconds: 0) != nil }, "consumer \(k) mapped")
                #expect(consumer.wait(seconds: 0) == nil, "consumer \(k): \(consumer.errorText)")
                usleep(useconds_t(generator.next() % 20_000))
                consumer.signal(SIGKILL)
                #expect(consumer.wait() == 128 + SIGKILL)
            }
            #expect(producer.wait(seconds: 0) == nil, "the producer records on: \(producer.errorText)")
            #expect(waitUntil { buffers.allSatisfy { !$0.hasReader } })
            let last = try RecorderProcess([lttfsBinary, "consume", "-c", m.ltt + "/kc", "-t", out + "/last", "--transport", "shm", "-q"])
            #expect(waitUntil { buffers.allSatisfy(\.hasMappedReader) || last.wait(seconds: 0) != nil },
                    "the last consumer mapped every buffer")
            producer.signal(SIGTERM)
            // Discard mode: events found the buffer full while no consumer
            // read (exit status 1 says so); it ended at the signal.
            #expect(producer.wait() != nil && producer.errorText.contains(" events, recorded "), "\(producer.errorText)")
            try m.tracer.stopTrace("kc")
            try m.tracer.destroyTrace("kc")
            #expect(last.wait(seconds: 60) == 0, "the last consumer drained to the hang-up: \(last.errorText)")
            #expect(buffers.allSatisfy { $0.lockHolder == 0 }, "no lock left with anybody")
            let consumed = buffers.reduce(0) { $0 + $1.counters.subbuffersConsumed }
            #expect(consumed > 0)
            let recovered = buffers.reduce(0) { $0 + $1.counters.locksRecovered }
            print("killedConsumers: 20 killed, \(recovered) locks taken back, \(consumed) sub-buffers consumed in all")
        }
    }
}
