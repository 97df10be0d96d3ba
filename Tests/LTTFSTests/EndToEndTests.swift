import LTTSystem
import Foundation
import Synchronization
import LTTMountTestSupport
import Testing
import LTTTestSupport
import CLinuxSupport
import LTTFS
import LTTReader
import LTTFormat
import LTTRelay
import LTTTrace

/// An lttd-style consumer in the test: one thread per buffer file of the
/// trace directory, each doing poll / GET / splice / PUT until POLLHUP.
final class SpliceConsumer: @unchecked Sendable {
    let out: String
    let cycles = Counter()
    let failures = Locked<[String]>([])
    private let done = DispatchSemaphore(value: 0)
    private var threads = 0

    init(traceDirectory: String, out: String) throws {
        self.out = out
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: traceDirectory).sorted()
        for name in files {
            let buffer = try BufferFD(traceDirectory + "/" + name)
            threads += 1
            Thread { [self] in
                consume(buffer, into: out + "/" + name)
                done.signal()
            }.start()
        }
    }

    private func consume(_ b: BufferFD, into path: String) {
        let size = Int(b.ioctl(.getSubbufferSize).1)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let file = FileHandle(forWritingAtPath: path)!
        defer { try? file.close() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let revents = b.poll(timeoutMs: 200)
            if revents == POLLHUP_ { return }
            guard revents == POLLIN_ || revents == POLLPRI_ else {
                if revents != 0 { failures.withLock { $0.append("\(path): poll gave 0x\(String(revents, radix: 16))") } }
                continue
            }
            while let cookie = b.get() {
                do {
                    let bytes = try b.spliceSubbuffer(length: size)
                    file.write(Data(bytes))
                } catch {
                    failures.withLock { $0.append("\(path): \(error)") }
                    return
                }
                let e = b.put(cookie)
                if e != 0 { failures.withLock { $0.append("\(path): PUT errno \(e)") } }
                cycles.add(1)
            }
        }
        failures.withLock { $0.append("\(path): no POLLHUP within 60 s") }
    }

    /// Waits for every consumer thread (bounded).
    func wait(seconds: Double = 90) -> Bool {
        for _ in 0..<threads where done.wait(timeout: .now() + seconds) == .timedOut { return false }
        return true
    }
}

@Suite("End to end on real mounts")
struct EndToEndTests {
    @Test("lttd-conform drains events from several producer threads; the reader finds each one, once")
    func relayProbeWithProducerThreads() throws {
        try withMount(cpuCount: 2) { m in
            let marker = try m.tracer.marker("app", "work", "thread %u seq %lu note %s", as: (UInt32, UInt64, String).self)
            // Producers outrun any consumer: they wait for it (bounded) rather
            // than lose, which is what makes "each one, once" checkable.
            startTrace(m, "probe", channel: "app", subbufSize: 65536, subbufNum: 16, blockingTimeoutMillis: 10_000)
            let out = NSTemporaryDirectory() + "lttfs-probe-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let probe = try ConformanceConsumer(m.ltt + "/probe", into: out, quiet: false)
            let producers = 4, perThread = 20_000
            let finished = DispatchSemaphore(value: 0)
            for t in 0..<producers {
                Thread {
                    for seq in 0..<perThread { marker.record(UInt32(t), UInt64(seq), "n") }
                    finished.signal()
                }.start()
            }
            for _ in 0..<producers { #expect(finished.wait(timeout: .now() + 60) == .success) }
            #expect(writeControl(m.ltt + "/control/probe/enabled", "0\n") == 0)
            #expect(writeControl(m.ltt + "/destroy_trace", "probe\n") == 0)
            let r = probe.finish()
            #expect(r.status == 0, "\(r.output)\(r.error)")
            #expect(r.output.contains("OK:"))
            let result = TraceReader().read(directory: out)
            #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
            var seen = Array(repeating: Set<UInt64>(), count: producers)
            var total = 0
            for e in result.events where e.channel == "app" {
                guard case .unsigned(let t)? = e.field("thread"), case .unsigned(let s)? = e.field("seq") else { continue }
                seen[Int(t)].insert(s)
                total += 1
            }
            #expect(total == producers * perThread)
            #expect(seen.allSatisfy { $0.count == perThread })
            #expect(result.eventsLost == 0)
        }
    }

    @Test("hundreds of GET / splice / PUT cycles on several buffers with a threaded consumer: every sub-buffer fresh")
    func spliceCycles() throws {
        try withMount(cpuCount: 2) { m in
            let a = try m.tracer.marker("a", "seq", "thread %u seq %lu", as: (UInt32, UInt64).self)
            let b = try m.tracer.marker("b", "seq", "thread %u seq %lu", as: (UInt32, UInt64).self)
            #expect(writeControl(m.ltt + "/setup_trace", "s\n") == 0)
            for channel in ["a", "b"] {
                #expect(writeControl(m.ltt + "/control/s/channel/\(channel)/subbuf_size", "4096\n") == 0)
                #expect(writeControl(m.ltt + "/control/s/channel/\(channel)/subbuf_num", "8\n") == 0)
            }
            #expect(writeControl(m.ltt + "/control/s/alloc", "1\n") == 0)
            #expect(writeControl(m.ltt + "/control/s/enabled", "1\n") == 0)
            let out = NSTemporaryDirectory() + "lttfs-splice-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let consumer = try SpliceConsumer(traceDirectory: m.ltt + "/s", out: out)
            let perThread = 30_000
            let finished = DispatchSemaphore(value: 0)
            for t in 0..<2 {
                Thread {
                    for seq in 0..<perThread {
                        a.record(UInt32(t), UInt64(seq))
                        b.record(UInt32(t), UInt64(seq))
                        if seq % 2000 == 0 { usleep(1000) }   // let the consumer breathe
                    }
                    finished.signal()
                }.start()
            }
            for _ in 0..<2 { #expect(finished.wait(timeout: .now() + 60) == .success) }
            let trace = m.tracer.trace("s")!
            let lost = trace.bufferFiles.reduce(0) { $0 + $1.buffer.counters.eventsLost }
            #expect(writeControl(m.ltt + "/destroy_trace", "s\n") == 0)
            #expect(consumer.wait())
            #expect(consumer.failures.withLock { $0 }.isEmpty, "\(consumer.failures.withLock { $0 }.prefix(3))")
            #expect(consumer.cycles.load >= 300, "\(consumer.cycles.load) cycles")
            let result = TraceReader().read(directory: out)
            #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
            // Fresh sub-buffers: within one buffer file, each thread's
            // sequence only goes up; a stale page would repeat one.
            var last: [String: UInt64] = [:]
            var stale = 0, received = 0
            for e in result.events.sorted(by: { ($0.file, $0.offset) < ($1.file, $1.offset) }) where e.channel != "metadata" {
                guard case .unsigned(let t)? = e.field("thread"), case .unsigned(let s)? = e.field("seq") else { continue }
                let key = e.file + "/\(t)"
                if let previous = last[key], s <= previous { stale += 1 }
                last[key] = s
                received += 1
            }
            #expect(stale == 0)
            #expect(UInt64(received) + lost == UInt64(4 * perThread), "received \(received) lost \(lost)")
        }
    }

    @Test("destroy while a consumer reads: files leave the tree, the open one works until POLLHUP, memory goes at close")
    func destroyWhileReading() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "r")
            for i in 0..<50 { #expect(writeControl(m.ltt + "/write_event", "event \(i)\n") == 0) }
            weak var weakBuffer: RelayBuffer?
            do {
                let fd = try BufferFD(m.ltt + "/r/userspace_0")
                weakBuffer = m.tracer.trace("r")?.channels["userspace"]?.buffers[0]
                #expect(weakBuffer != nil)
                #expect(writeControl(m.ltt + "/destroy_trace", "r\n") == 0)
                #expect(!((try? FileManager.default.contentsOfDirectory(atPath: m.ltt)) ?? []).contains("r"))
                var st = stat()
                #expect(stat(m.ltt + "/r/userspace_0", &st) == -1 && errno == ENOENT)
                #expect(fstat(fd.fd, &st) == 0 && st.st_size == 4 * 4096)
                var got = 0
                while let cookie = fd.get() {
                    let bytes = try fd.spliceSubbuffer(length: 4096)
                    #expect(bytes[16..<20] == [0xED, 0xB7, 0xD6, 0x00])
                    #expect(fd.put(cookie) == 0)
                    got += 1
                }
                #expect(got >= 1)
                #expect(fd.poll(timeoutMs: 1000) == POLLHUP_)
            }
            // Closed: nothing holds the buffer any more.
            var waited = 0
            while weakBuffer != nil && waited < 100 { usleep(10_000); waited += 1 }
            #expect(weakBuffer == nil)
        }
    }

    @Test("write_event: one event per line, EINVAL for a line too long, waits when full while a reader is there, goes on when it frees room")
    func writeEventSemantics() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        startSmallUserspaceTrace(ltt, "w", blockingTimeoutMillis: 10_000)
        // A multi-line write: every line, in one request.
        let fd = open(ltt + "/write_event", O_WRONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let text = Array("one\ntwo\nthree\n".utf8)
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #expect(n == 14)
        // A line longer than a sub-buffer.
        #expect(writeControl(ltt + "/write_event", String(repeating: "x", count: 5000) + "\n") == EINVAL)
        // A consumer has the buffer open: once both sub-buffers are full,
        // the next line waits for it to free room.
        let b = try BufferFD(ltt + "/w/userspace_0")
        let written = Counter()
        written.add(3)
        let line = Array((String(repeating: "f", count: 900) + "\n").utf8)
        let filled = Flag()
        let writer = Thread {
            while true {
                let r = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if r != line.count { break }
                if written.add(1) > 20 { break }
            }
            filled.set()
        }
        writer.start()
        #expect(waitForStat(ltt, "w", "userspace_0", "waiting", 1), "the writer should be waiting for room")
        #expect(!filled.isSet)
        // The reader frees sub-buffers: the writer goes on.
        var freed = 0
        while !filled.isSet && freed < 40 {
            if let cookie = b.get() { #expect(b.put(cookie) == 0); freed += 1 }
            _ = b.poll(timeoutMs: 20)
        }
        #expect(filled.wait(seconds: 10))
        let counters = statsRow(readControl(ltt + "/control/w/stats") ?? "", "userspace_0")
        #expect(counters?["lost"] == 0)
        #expect(counters?["written"] == written.load)
    }

    @Test("a signal ends a write_event waiting for room with EINTR; nothing is written and nothing is lost")
    func writeEventInterrupted() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        startSmallUserspaceTrace(ltt, "i", blockingTimeoutMillis: 10_000)
        let reader = try BufferFD(ltt + "/i/userspace_0")   // a consumer that never frees room
        defer { _ = reader }
        installInterruptingHandler(SIGUSR1)
        let line = Array((String(repeating: "g", count: 900) + "\n").utf8)
        let result = Shared<(Int, Int32)?>(nil)
        let thread = Shared<pthread_t?>(nil)
        let t = Thread {
            thread.set(pthread_self())
            acceptSignalInThisThread(SIGUSR1)
            let fd = open(ltt + "/write_event", O_WRONLY)
            defer { close(fd) }
            var count = 0
            while true {
                let r = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if r != line.count {
                    result.set((count, r < 0 ? errno : 0))
                    return
                }
                count += 1
            }
        }
        t.start()
        #expect(waitForStat(ltt, "i", "userspace_0", "waiting", 1), "the writer should be waiting")
        #expect(result.load == nil)
        let writerThread = try #require(thread.load)
        pthread_kill(writerThread, SIGUSR1)
        let deadline = Date().addingTimeInterval(5)
        while result.load == nil && Date() < deadline { _ = poll(nil, 0, 5) }
        let (count, error) = try #require(result.load)
        #expect(error == EINTR)
        let counters = statsRow(readControl(ltt + "/control/i/stats") ?? "", "userspace_0")
        #expect(counters?["written"] == count)
        #expect(counters?["lost"] == 0)
    }

    @Test("the shell tour: setup, alloc, start, 1000 echoed lines and 2,500 in one cat through write_event, stop, destroy, consume, decode exactly those lines")
    func shellScript() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/write-event-1000.sh").path
        let out = NSTemporaryDirectory() + "lttfs-shell-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = run(["bash", script, server.path, out, lttfsBinary, conformanceConsumer], timeout: 120)
        #expect(r.status == 0, "\(r.output)\n\(r.error)")
        #expect(r.output.contains("3500 lines match"), "\(r.output)")
    }

    @Test("one write(2) of 20,000 lines (3 MB, cut by the kernel into requests that end inside lines): each line one event, whole, in order")
    func bigWriteOfLines() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "big\n") == 0)
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_size", "262144\n") == 0)
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_num", "32\n") == 0)
        #expect(writeControl(ltt + "/control/big/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/big/enabled", "1\n") == 0)
        let out = NSTemporaryDirectory() + "lttfs-big-write-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let consumer = try ConformanceConsumer(ltt + "/big", into: out)
        let lines = (1...20_000).map { "big line \($0) " + String(repeating: "y", count: ($0 * 37) % 300) }
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        let fd = open(ltt + "/write_event", O_WRONLY)
        #expect(fd >= 0)
        // write(2) until everything is taken, as any writer does after a
        // short write: the rest starts with the line a request left.
        var offset = 0
        var calls = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard n > 0 else { Issue.record("write returned \(n), errno \(errno)"); break }
            offset += n
            calls += 1
        }
        close(fd)
        #expect(offset == bytes.count)
        #expect(calls < 100, "\(calls) write(2) calls for \(bytes.count) bytes: lines are taken in batches")
        expectDestroyedTrace("big", of: ltt, drainedBy: consumer, into: out, holdsLines: lines)
    }

    /// Destroys `trace`, lets `consumer` drain it to the hang-up, and
    /// expects the userspace channel's events to be `lines`, in order.
    private func expectDestroyedTrace(_ trace: String, of ltt: String, drainedBy consumer: ConformanceConsumer,
                                      into out: String, holdsLines lines: [String],
                                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(writeControl(ltt + "/destroy_trace", trace + "\n") == 0, sourceLocation: sourceLocation)
        let result = consumer.finish()
        #expect(result.status == 0, "\(result.error)", sourceLocation: sourceLocation)
        let read = TraceReader().read(directory: out)
        #expect(read.problems.isEmpty, "\(read.problems.prefix(3))", sourceLocation: sourceLocation)
        let recorded = read.events.filter { $0.channel == "userspace" }.compactMap { event -> String? in
            if case .string(let s)? = event.fields.first?.value { return s }
            return nil
        }
        #expect(recorded.count == lines.count, sourceLocation: sourceLocation)
        // (Compared here, not in the expectation: its message would print
        // both arrays, megabytes each.)
        let firstDifference = zip(recorded, lines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "line \((firstDifference ?? 0) + 1) differs: \(firstDifference.map { recorded[$0] } ?? "")",
                sourceLocation: sourceLocation)
    }

    @Test("one writev(2) of 120 lines in 360 buffers, each on a page of its own (the kernel ends a request at 256 pages, inside a line): each line one event, whole, in order")
    func writevOfManyBuffers() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "v\n") == 0)
        #expect(writeControl(ltt + "/control/v/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/v/enabled", "1\n") == 0)
        let out = NSTemporaryDirectory() + "lttfs-writev-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let consumer = try ConformanceConsumer(ltt + "/v", into: out)
        // A logger's way: a prefix, the message and the newline, each a
        // buffer of its own.
        let lines = (1...120).map { String(format: "[app] message number %04d, some text after it", $0) }
        let pieces = lines.flatMap { ["[app] ", String($0.dropFirst(6)), "\n"] }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let memory = UnsafeMutableRawPointer.allocate(byteCount: pieces.count * page, alignment: page)
        defer { memory.deallocate() }
        var buffers = pieces.enumerated().map { i, piece -> iovec in
            let base = memory + i * page
            piece.utf8.withContiguousStorageIfAvailable { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return iovec(iov_base: base, iov_len: piece.utf8.count)
        }
        let fd = open(ltt + "/write_event", O_WRONLY)
        #expect(fd >= 0)
        // writev(2) until everything is taken, past each short write.
        var first = 0
        var calls = 0
        while first < buffers.count {
            let n = buffers[first...].withUnsafeBufferPointer { writev(fd, $0.baseAddress!, Int32($0.count)) }
            guard n > 0 else { Issue.record("writev returned \(n), errno \(errno)"); break }
            calls += 1
            var left = n
            while left > 0 && left >= buffers[first].iov_len {
                left -= buffers[first].iov_len
                first += 1
            }
            if left > 0 {
                buffers[first].iov_base = buffers[first].iov_base! + left
                buffers[first].iov_len -= left
            }
        }
        close(fd)
        #expect(calls >= 2, "the kernel cut the writev in \(calls) requests")
        expectDestroyedTrace("v", of: ltt, drainedBy: consumer, into: out, holdsLines: lines)
    }

    @Test("blocking_timeout: producers wait for a slow consumer and lose nothing; with no consumer the wait is bounded")
    func blockingProducers() throws {
        try withMount(cpuCount: 1) { m in
            let marker = try m.tracer.marker("app", "b", "seq %lu pad %s", as: (UInt64, String).self)
            #expect(writeControl(m.ltt + "/setup_trace", "blk\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk/channel/app/subbuf_size", "4096\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk/channel/app/subbuf_num", "2\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk/channel/app/blocking_timeout", "5000\n") == 0)
            #expect(readControl(m.ltt + "/control/blk/channel/app/blocking_timeout") == "5000\n")
            #expect(writeControl(m.ltt + "/control/blk/alloc", "1\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk/enabled", "1\n") == 0)
            let b = try BufferFD(m.ltt + "/blk/app_0")
            let producing = Flag()
            let pad = String(repeating: "p", count: 90)
            Thread {
                for i in 0..<2000 { marker.record(UInt64(i), pad) }
                producing.set()
            }.start()
            var taken = 0
            let deadline = Date().addingTimeInterval(30)
            while !producing.isSet && Date() < deadline {
                if let cookie = b.get() { #expect(b.put(cookie) == 0); taken += 1 }
                usleep(2_000)   // a slow consumer
            }
            #expect(producing.isSet)
            let c = m.tracer.trace("blk")!.channels["app"]!.buffers[0].counters
            #expect(c.eventsLost == 0 && c.eventsWritten == 2000, "\(c)")
            #expect(taken > 20)
            // No consumer at all: each event waits at most the timeout, then is lost.
            #expect(writeControl(m.ltt + "/destroy_trace", "blk\n") == 0)
            #expect(writeControl(m.ltt + "/setup_trace", "blk2\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk2/channel/app/subbuf_size", "4096\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk2/channel/app/subbuf_num", "2\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk2/channel/app/blocking_timeout", "20\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk2/alloc", "1\n") == 0)
            #expect(writeControl(m.ltt + "/control/blk2/enabled", "1\n") == 0)
            let started = Date()
            for i in 0..<100 { marker.record(UInt64(i), pad) }
            let waited = Date().timeIntervalSince(started)
            let c2 = m.tracer.trace("blk2")!.channels["app"]!.buffers[0].counters
            #expect(c2.eventsLost > 0 && c2.eventsLost + c2.eventsWritten == 100, "\(c2)")
            #expect(waited >= 0.02 * Double(c2.eventsLost) * 0.9 && waited < 10, "\(waited) s")
        }
    }

    @Test("SIGTERM, SIGINT and SIGHUP end the server cleanly, even with a reader holding a buffer file open")
    func signalsUnmount() throws {
        for (signal, holdOpen) in [(SIGTERM, false), (SIGINT, false), (SIGHUP, false), (SIGTERM, true)] {
            let server = try ServerProcess()
            defer { server.stop() }
            #expect(writeControl(server.ltt + "/setup_trace", "s\n") == 0)
            #expect(writeControl(server.ltt + "/control/s/alloc", "1\n") == 0)
            let reader = holdOpen ? try BufferFD(server.ltt + "/s/metadata_0") : nil
            let sent = Date()
            kill(server.process.processIdentifier, signal)
            #expect(waitExit(server.process, seconds: 5), "signal \(signal), reader open: \(holdOpen)")
            #expect(Date().timeIntervalSince(sent) < 5)
            if let reader {
                // The server is gone: the reader's file answers ENOTCONN, not a hang.
                #expect(reader.ioctl(.getSubbufferSize).0 == ENOTCONN)
            }
            #expect(server.process.terminationStatus == 0, "signal \(signal)")
            #expect(!isMounted(server.path), "signal \(signal) left the mount")
        }
    }

    @Test("kill -9 of the server leaves a dead mount that the harness unmounts")
    func killNine() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        #expect(writeControl(server.ltt + "/setup_trace", "k\n") == 0)
        kill(server.process.processIdentifier, SIGKILL)
        server.process.waitUntilExit()
        var st = stat()
        #expect(stat(server.ltt, &st) == -1 && errno == ENOTCONN)
        #expect(isMounted(server.path))
        forceUnmount(server.path)
        #expect(!isMounted(server.path))
    }

    @Test("mounting says why it cannot: missing, not a directory, busy")
    func mountErrors() throws {
        let missing = run([lttfsBinary, "mount", "-f", "/nonexistent-lttfs-dir"], timeout: 20)
        #expect(missing.status == 1 && missing.error.contains("does not exist"))
        let file = run([lttfsBinary, "mount", "-f", "/etc/hostname"], timeout: 20)
        #expect(file.status == 1 && file.error.contains("not a directory"))
        let server = try ServerProcess()
        defer { server.stop() }
        let busy = run([lttfsBinary, "mount", "-f", server.path], timeout: 20)
        #expect(busy.status == 1 && busy.error.contains("busy"))
    }
}

/// A started trace whose userspace channel is 2 x 4096 bytes: full after
/// a few lines, so writers must wait for a reader.
/// `blockingTimeoutMillis`: the channel's blocking_timeout, which is also
/// how long a write_event line may wait for room (at least 1 s): tests
/// that act on a waiting writer give it 10 s, so that a loaded machine's
/// slowness between "it waits" and their action never ends the wait first.
func startSmallUserspaceTrace(_ ltt: String, _ name: String, blockingTimeoutMillis: Int? = nil) {
    #expect(writeControl(ltt + "/setup_trace", name + "\n") == 0)
    #expect(writeControl(ltt + "/control/\(name)/channel/userspace/subbuf_size", "4096\n") == 0)
    #expect(writeControl(ltt + "/control/\(name)/channel/userspace/subbuf_num", "2\n") == 0)
    if let ms = blockingTimeoutMillis {
        #expect(writeControl(ltt + "/control/\(name)/channel/userspace/blocking_timeout", "\(ms)\n") == 0)
    }
    #expect(writeControl(ltt + "/control/\(name)/alloc", "1\n") == 0)
    #expect(writeControl(ltt + "/control/\(name)/enabled", "1\n") == 0)
}

/// Waits (at most `seconds`) until the stats of `trace` show `value` in
/// `column` for `buffer`: the observable state tests wait for.
func waitForStat(_ ltt: String, _ trace: String, _ buffer: String, _ column: String, _ value: Int,
                 seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if statsRow(readControl(ltt + "/control/\(trace)/stats") ?? "", buffer)?[column] == value { return true }
        _ = poll(nil, 0, 5)
    } while Date() < deadline
    return false
}

/// The counters of one buffer in a stats file.
func statsRow(_ stats: String, _ buffer: String) -> [String: Int]? {
    let lines = stats.split(separator: "\n")
    guard let header = lines.first(where: { $0.hasPrefix("buffer") })?.split(separator: " ", omittingEmptySubsequences: true),
          let row = lines.first(where: { $0.hasPrefix(buffer + " ") })?.split(separator: " ", omittingEmptySubsequences: true)
    else { return nil }
    var result: [String: Int] = [:]
    for (name, value) in zip(header.dropFirst(), row.dropFirst()) { result[String(name)] = Int(value) }
    return result
}

/// Unblocks `signal` in the calling thread (threads inherit their
/// creator's mask, and the test runner blocks some).
func acceptSignalInThisThread(_ signal: Int32) {
    var unblock = sigset_t()
    sigemptyset(&unblock)
    sigaddset(&unblock, signal)
    pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
}

/// A handler that does nothing and does not restart system calls: the
/// signal interrupts a blocked write with EINTR.
func installInterruptingHandler(_ signal: Int32) {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    action.sa_flags = 0
    sigemptyset(&action.sa_mask)
    sigaction(signal, &action, nil)
}
