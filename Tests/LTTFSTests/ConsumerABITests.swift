import Foundation
import Synchronization
import CLinuxSupport
import Testing
import LTTTestSupport
import LTTFS
import LTTFormat
import LTTMountTestSupport
import LTTRelay
import LTTTrace

/// Sets up, sizes, allocates and starts a trace through the control files.
func startTrace(_ m: TestMount, _ name: String, channel: String = "userspace", subbufSize: Int = 4096,
                subbufNum: Int = 4, overwrite: Bool = false, blockingTimeoutMillis: Int? = nil, start: Bool = true) {
    #expect(writeControl(m.ltt + "/setup_trace", name + "\n") == 0)
    let dir = m.ltt + "/control/\(name)/channel/\(channel)"
    #expect(writeControl(dir + "/subbuf_size", "\(subbufSize)\n") == 0)
    #expect(writeControl(dir + "/subbuf_num", "\(subbufNum)\n") == 0)
    if overwrite { #expect(writeControl(dir + "/overwrite", "1\n") == 0) }
    if let ms = blockingTimeoutMillis { #expect(writeControl(dir + "/blocking_timeout", "\(ms)\n") == 0) }
    #expect(writeControl(m.ltt + "/control/\(name)/alloc", "1\n") == 0)
    if start { #expect(writeControl(m.ltt + "/control/\(name)/enabled", "1\n") == 0) }
}

@Suite("Buffer files: the consumer ABI over a real mount")
struct ConsumerABITests {
    @Test("O_RDONLY only, one reader at a time, the size ioctls, ENOTTY, EAGAIN, no mmap")
    func openAndIoctls() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "t")
            let file = m.ltt + "/t/userspace_0"
            for flags in [O_WRONLY, O_RDWR] {
                let fd = open(file, flags)
                #expect(fd < 0 && errno == EACCES, "flags \(flags)")
                if fd >= 0 { close(fd) }
            }
            do {
                let b = try BufferFD(file)
                let second = open(file, O_RDONLY)
                #expect(second < 0 && errno == EBUSY)
                if second >= 0 { close(second) }
                #expect(b.ioctl(.getSubbufferCount) == (0, 4))
                #expect(b.ioctl(.getSubbufferSize) == (0, 4096))
                #expect(b.ioctl(.getSubbuffer).0 == EAGAIN)
                var v: UInt32 = 0
                #expect(lttfs_ioctl_u32(b.fd, 0x8004_F5FF, &v) == -1 && errno == ENOTTY)
                #expect(lttfs_ioctl_none(b.fd, 0x5401) == -1 && errno == ENOTTY)   // TCGETS
                let map = mmap(nil, 4096, PROT_READ, MAP_SHARED, b.fd, 0)
                #expect(map == MAP_FAILED)
                if map != MAP_FAILED { munmap(map, 4096) }
                // Nothing complete yet: a read returns end of file at once.
                var byte: UInt8 = 0
                #expect(read(b.fd, &byte, 1) == 0)
            }
            // Closed: the next reader gets in, even when the kernel sends
            // the RELEASE after close(2) returned and the server sees the
            // next open first (a script's commands one after another).
            var refused = 0
            for _ in 0..<200 {
                let fd = open(file, O_RDONLY)
                if fd < 0 { refused += 1 } else { close(fd) }
            }
            #expect(refused == 0, "\(refused) of 200 opens right after a close were refused")
            let again = try BufferFD(file)
            #expect(again.ioctl(.getSubbufferSize).0 == 0)
            // Control files have no ioctls.
            let control = open(m.ltt + "/control/t/enabled", O_RDONLY)
            var v: UInt32 = 0
            #expect(lttfs_ioctl_u32(control, UInt(RelayIoctl.getSubbuffer.rawValue), &v) == -1 && errno == ENOTTY)
            close(control)
        }
    }

    @Test("poll: 0 while nothing is readable, POLLIN within 100 ms of a delivery, POLLPRI when full, POLLHUP after destroy and drain")
    func pollValues() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "p")
            let b = try BufferFD(m.ltt + "/p/userspace_0")
            let began = Date()
            #expect(b.poll(timeoutMs: 200) == 0)
            #expect(Date().timeIntervalSince(began) >= 0.19)   // it waited
            // A delivery wakes a waiting poll: best of three tries.
            var best = Double.infinity
            for i in 0..<3 {
                #expect(writeControl(m.ltt + "/write_event", "wake \(i)\n") == 0)
                let woke = Shared<(Int16, Date)?>(nil)
                let tid = Shared<Int32>(0)
                let t = Thread {
                    tid.set(lttfs_gettid())
                    let r = b.poll(timeoutMs: 5_000)
                    woke.set((r, Date()))
                }
                t.start()
                while tid.load == 0 { sched_yield() }
                #expect(waitUntilBlockedInPoll(tid.load))
                let delivered = Date()
                try m.tracer.flush("p")
                let deadline = Date().addingTimeInterval(6)
                while woke.load == nil && Date() < deadline { _ = Glibc.poll(nil, 0, 1) }
                let (revents, at) = try #require(woke.load)
                #expect(revents == POLLIN_)
                best = min(best, at.timeIntervalSince(delivered))
                let cookie = try #require(b.get())
                #expect(b.put(cookie) == 0)
            }
            #expect(best < 0.1, "poll woke \(best) s after the delivery")

            // Fill 3 sub-buffers and part of the 4th; the final flush at
            // destroy makes all 4 unread: POLLPRI, exactly.
            let big = try m.tracer.marker("userspace", "big", "s %s", as: String.self)
            for _ in 0..<4 { big.record(String(repeating: "x", count: 3900)) }
            #expect(b.poll(timeoutMs: 1000) == POLLIN_)
            #expect(writeControl(m.ltt + "/destroy_trace", "p\n") == 0)
            usleep(50_000)
            #expect(b.poll(timeoutMs: 1000) == POLLPRI_)
            var drained = 0
            while let cookie = b.get() {
                #expect(b.put(cookie) == 0)
                drained += 1
                if drained == 1 { #expect(b.poll(timeoutMs: 1000) == POLLIN_) }
            }
            #expect(drained == 4)
            #expect(b.poll(timeoutMs: 1000) == POLLHUP_)
        }
    }

    @Test("a poll that waits on an idle buffer is woken by destroy_trace with POLLHUP")
    func pollWokenByDestroy() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "d")
            let b = try BufferFD(m.ltt + "/d/userspace_0")
            #expect(b.poll(timeoutMs: 0) == 0)
            let result = Shared<Int16?>(nil)
            let tid = Shared<Int32>(0)
            let t = Thread {
                tid.set(lttfs_gettid())
                result.set(b.poll(timeoutMs: 10_000))
            }
            t.start()
            while tid.load == 0 { sched_yield() }
            #expect(waitUntilBlockedInPoll(tid.load))
            #expect(writeControl(m.ltt + "/destroy_trace", "d\n") == 0)
            let deadline = Date().addingTimeInterval(5)
            while result.load == nil && Date() < deadline { _ = Glibc.poll(nil, 0, 1) }
            // The final flush delivered the (empty) open sub-buffer.
            #expect(result.load == POLLIN_)
            let cookie = try #require(b.get())
            #expect(b.put(cookie) == 0)
            #expect(b.poll(timeoutMs: 1000) == POLLHUP_)
        }
    }

    @Test("overwrite mode: the writer laps a reader holding a sub-buffer, whose PUT gets EIO")
    func overwriteEIO() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "o", overwrite: true)
            let file = m.ltt + "/o/flight-userspace_0"
            #expect(FileManager.default.fileExists(atPath: file))
            let b = try BufferFD(file)
            let big = try m.tracer.marker("userspace", "big", "s %s", as: String.self)
            big.record(String(repeating: "a", count: 3900))
            big.record(String(repeating: "b", count: 3900))
            let cookie = try #require(b.get())
            for _ in 0..<8 { big.record(String(repeating: "c", count: 3900)) }
            #expect(b.put(cookie) == EIO)
            #expect(b.get() != nil)
        }
    }

    @Test("GET in one process and PUT with the cookie in another")
    func getPutAcrossProcesses() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "g")
            for i in 0..<3 { #expect(writeControl(m.ltt + "/write_event", "line \(i)\n") == 0) }
            try m.tracer.flush("g")
            let file = m.ltt + "/g/userspace_0"
            let get = run([lttfsBinary, "subbuf", "get", file])
            #expect(get.status == 0, "\(get.error)")
            let cookie = get.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(cookie == "0")
            let dd = run(["dd", "if=" + file, "bs=4096", "count=1", "status=none"])
            #expect(dd.output.contains("line 2"))
            let put = run([lttfsBinary, "subbuf", "put", file, cookie])
            #expect(put.status == 0, "\(put.error)")
            let again = run([lttfsBinary, "subbuf", "put", file, cookie])
            #expect(again.status == 2 && again.error.contains("EIO"))
            let empty = run([lttfsBinary, "subbuf", "get", file])
            #expect(empty.status == 2 && empty.error.contains("EAGAIN"))
            let info = run([lttfsBinary, "subbuf", "info", file])
            #expect(info.output == "n_subbufs 4\nsubbuf_size 4096\n")
            let stats = readControl(m.ltt + "/control/g/stats") ?? ""
            #expect(stats.contains("userspace_0"))
        }
    }

    @Test("cat shows every complete unconsumed sub-buffer without consuming it, then EOF")
    func catDoesNotConsume() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "c")
            #expect(writeControl(m.ltt + "/write_event", "first\n") == 0)
            try m.tracer.flush("c")
            #expect(writeControl(m.ltt + "/write_event", "second\n") == 0)
            try m.tracer.flush("c")
            let file = m.ltt + "/c/userspace_0"
            for _ in 0..<2 {
                let data = FileManager.default.contents(atPath: file) ?? Data()
                #expect(data.count == 2 * 4096)
                #expect(String(decoding: data, as: UTF8.self).contains("second"))
            }
        }
    }

    @Test("mixing read() and splice on one open file, in any order, never shows a stale sub-buffer")
    func mixedReadAndSplice() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "x", subbufNum: 8)
            let big = try m.tracer.marker("userspace", "big", "s %s", as: String.self)
            let b = try BufferFD(m.ltt + "/x/userspace_0")
            var pattern = SplitMix64(state: 7)
            for n in 0..<60 {
                // One sub-buffer per event: its text names it.
                big.record(String(repeating: "sub-\(n)-", count: 3800 / "sub-\(n)-".count))
                if n == 0 { continue }
                // Event n opened sub-buffer n, so sub-buffer n-1 is complete.
                let cookie = try #require(b.get(), "GET \(n)")
                let bytes: [UInt8]
                switch pattern.next() % 3 {
                case 0:
                    bytes = try b.spliceSubbuffer(length: 4096)
                case 1:
                    var r = [UInt8](repeating: 0, count: 4096)
                    #expect(r.withUnsafeMutableBytes { pread(b.fd, $0.baseAddress, 4096, 0) } == 4096)
                    bytes = r
                default:
                    // Half by splice, half by read.
                    var head = try b.spliceSubbuffer(length: 2048)
                    var tail = [UInt8](repeating: 0, count: 2048)
                    #expect(tail.withUnsafeMutableBytes { pread(b.fd, $0.baseAddress, 2048, 2048) } == 2048)
                    head += tail
                    bytes = head
                }
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(text.contains("sub-\(n - 1)-sub-\(n - 1)-"), "sub-buffer \(n - 1) is stale or wrong")
                #expect(!text.contains("sub-\(n - 2)-sub-"), "sub-buffer \(n - 1) still shows \(n - 2)")
                #expect(b.put(cookie) == 0)
            }
        }
    }
}
