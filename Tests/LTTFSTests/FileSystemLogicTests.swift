#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTRelay
import LTTSystem
import LTTTestSupport
import LTTTrace
import SystemPackage
import Testing
@testable import LTTFS

/// `body` over a copy of `bytes` (the standard library's withUnsafeBytes
/// rethrows untyped errors).
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(Errno) -> R) throws(Errno) -> R {
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
    defer { copy.deallocate() }
    copy.copyBytes(from: bytes)
    return try body(UnsafeRawBufferPointer(rebasing: copy[..<bytes.count]))
}

/// `value`'s four bytes, as an ioctl argument.
func bytes(of value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

/// What the page-cache policy asked of the kernel, in order.
final class RecordingPageCache: PageCache, @unchecked Sendable {
    enum Call: Equatable { case invalidate(UInt64), store(UInt64, bytes: Int) }
    private let recorded = Shared<[Call]>([])
    var calls: [Call] { recorded.load }
    func reset() { recorded.set([]) }
    func invalidate(inode: UInt64) { recorded.set(recorded.load + [.invalidate(inode)]) }
    func store(inode: UInt64, bytes: UnsafeRawBufferPointer) { recorded.set(recorded.load + [.store(inode, bytes: bytes.count)]) }
}

/// A poll waiting on a buffer file: counts its wake-ups.
final class CountingPollWaiter: PollWaiter {
    let wakes = Counter()
    func wake() { wakes.add(1) }
}

/// The filesystem's logic driven the way the kernel drives it (lookup,
/// open, write, ioctl, poll, release), without a mount: each handler's
/// value or errno, checked directly. What only a mount shows (the kernel's
/// permission checks, splice through the page cache, real poll) stays in
/// the mount tests.
@Suite("Filesystem logic, without a mount")
struct FileSystemLogicTests {
    let tracer = Tracer(cpuCount: 1, log: { _, _ in })
    let fs: FileSystem
    let cache = RecordingPageCache()
    let wakeups: ReaderDoorbell.Subscription

    init() {
        fs = FileSystem(tracer: tracer, logger: .init(label: "test"))
        fs.attach(cache)
        // As the server does: a subscription, so deliveries are posted
        // (the test runs the notifier's passes itself).
        wakeups = tracer.readerDoorbell.subscribe {}
    }

    /// The inode of `path` (relative to the mount root), looked up name by name.
    func inode(_ path: String) throws(Errno) -> UInt64 {
        try FileSystemCalls.inode(fs, path)
    }

    /// `echo text > path`: open for writing, write, release.
    func write(_ path: String, _ text: String) throws(Errno) -> Int {
        try FileSystemCalls.write(fs, path, text)
    }

    /// `cat path`.
    func read(_ path: String) throws(Errno) -> String {
        let fh = try fs.open(inode: try inode(path), flags: O_RDONLY)
        defer { fs.release(fh: fh) }
        guard case .text(let text) = try fs.read(fh: fh, size: 65536, offset: 0, fillsPageCache: false) else {
            throw .badFileDescriptor
        }
        return String(decoding: text, as: UTF8.self)
    }

    func startSmallTrace(_ name: String) throws(Errno) {
        _ = try write("ltt/setup_trace", name + "\n")
        _ = try write("ltt/control/\(name)/channel/userspace/subbuf_size", "4096\n")
        _ = try write("ltt/control/\(name)/channel/userspace/subbuf_num", "2\n")
        _ = try write("ltt/control/\(name)/alloc", "1\n")
        _ = try write("ltt/control/\(name)/enabled", "1\n")
    }

    /// The errno `body` throws; nil if it throws nothing.
    func errno(_ body: () throws -> Void) -> Errno? {
        do {
            try body()
            return nil
        } catch let error as Errno {
            return error
        } catch {
            Issue.record("not an errno: \(error)")
            return Errno(rawValue: -1)
        }
    }

    // MARK: The tree

    @Test("lookup, attributes and listings follow the tracer's state; modes are the documented ones")
    func treeAndModes() throws {
        #expect(errno { _ = try inode("nothing") } == .noSuchFileOrDirectory)
        #expect(try fs.getattr(inode: try inode("ltt"), fh: nil).st_mode == S_IFDIR | 0o750)
        #expect(try fs.getattr(inode: try inode("ltt/setup_trace"), fh: nil).st_mode == S_IFREG | 0o200)
        #expect(try fs.getattr(inode: try inode("ltt/write_event"), fh: nil).st_mode == S_IFREG | 0o220)
        #expect(errno { _ = try inode("ltt/t") } == .noSuchFileOrDirectory)
        try startSmallTrace("t")
        let buffer = try fs.getattr(inode: try inode("ltt/t/userspace_0"), fh: nil)
        #expect(buffer.st_mode == S_IFREG | 0o440)
        #expect(buffer.st_size == 2 * 4096, "a buffer file is as long as its ring (splice stops at the size)")
        #expect(buffer.st_uid == getuid())
        let dir = try fs.opendir(inode: try inode("ltt/t"))
        defer { fs.releasedir(fh: dir) }
        let names = try fs.readdir(fh: dir, offset: 0).map(\.name)
        #expect(names.prefix(2) == [".", ".."])
        #expect(names.contains("userspace_0") && names.contains("metadata_0"))
        #expect(try fs.readdir(fh: dir, offset: names.count).isEmpty)
        #expect(try fs.readdir(fh: dir, offset: 2).first?.name == names[2], "offsets resume where they left off")
        #expect(errno { _ = try fs.readdir(fh: 9999, offset: 0) } == .badFileDescriptor)
    }

    @Test("chmod, chown and every tree change are EPERM; truncation is accepted")
    func treeIsTheServers() throws {
        let setup = try inode("ltt/setup_trace")
        #expect(errno { _ = try fs.setattr(inode: setup, fh: nil, changes: .mode) } == .notPermitted)
        #expect(errno { _ = try fs.setattr(inode: setup, fh: nil, changes: [.size, .owner]) } == .notPermitted)
        #expect(try fs.setattr(inode: setup, fh: nil, changes: .size).st_mode == S_IFREG | 0o200)
        #expect(fs.refuseTreeChange("mkdir") == .notPermitted)
    }

    // MARK: Control files

    @Test("control writes: applied, rounded, refused with the table's errno and nothing changed")
    func controlWrites() throws {
        #expect(try write("ltt/setup_trace", "c\n") == 2)
        let num = "ltt/control/c/channel/userspace/subbuf_num"
        #expect(try write(num, "5\n") == 2)
        #expect(try read(num) == "8\n", "rounded up to a power of two")
        #expect(errno { _ = try write(num, "lots\n") } == .invalidArgument)
        #expect(errno { _ = try write(num, "100000\n") } == .invalidArgument)
        #expect(errno { _ = try write("ltt/control/c/channel/userspace/subbuf_size", "\(1 << 30)\n") } == .invalidArgument)
        #expect(try read(num) == "8\n", "a refused write changes nothing")
        #expect(errno { _ = try write(num, String(repeating: "1", count: 4096)) } == .invalidArgument,
                "a control value must be shorter than a page")
        #expect(errno { _ = try write("ltt/setup_trace", "c\n") } == .fileExists)
        #expect(errno { _ = try write("ltt/destroy_trace", "nope\n") } == .noSuchFileOrDirectory)
        #expect(errno { _ = try fs.open(inode: try inode("ltt/setup_trace"), flags: O_RDONLY) } == .permissionDenied)
        #expect(errno { _ = try fs.open(inode: try inode("ltt/control/c/stats"), flags: O_WRONLY) } == .permissionDenied)
    }

    // MARK: write_event

    @Test("write_event: every line of a write is one event of that request; an over-long line is EINVAL")
    func writeEventLines() throws {
        try startSmallTrace("w")
        let buffer = try #require(tracer.trace("w")?.bufferFiles.first { $0.0 == "userspace_0" }?.1)
        #expect(try write("ltt/write_event", "hello\nworld") == 6, "the piece after the last newline comes again")
        #expect(buffer.counters.eventsWritten == 1)
        #expect(try write("ltt/write_event", "world") == 5, "a request without a newline is one event")
        #expect(buffer.counters.eventsWritten == 2)
        #expect(try write("ltt/write_event", "a\0b\n\n") == 5, "a NUL ends a line too; an empty line is an event")
        #expect(buffer.counters.eventsWritten == 5)
        #expect(errno { _ = try write("ltt/write_event", String(repeating: "x", count: FileSystem.maximumLine + 1)) }
                == .invalidArgument)
        #expect(errno { _ = try write("ltt/write_event", String(repeating: "x", count: 5000)) } == .invalidArgument,
                "longer than a 4 KiB sub-buffer")
        #expect(buffer.counters.eventsWritten == 5)
        // A line that cannot be recorded ends the batch: the lines before it
        // are a short write, and the next write(2) starts with it.
        let long = String(repeating: "y", count: 5000)
        #expect(try write("ltt/write_event", "one\ntwo\n" + long + "\nthree\n") == 8)
        #expect(buffer.counters.eventsWritten == 7)
    }

    @Test("write_event: a request, long or short, leaves the piece after its last newline for the writer to send again")
    func writeEventCutRequests() throws {
        _ = try write("ltt/setup_trace", "big\n")
        _ = try write("ltt/control/big/channel/userspace/subbuf_size", "1048576\n")
        _ = try write("ltt/control/big/channel/userspace/subbuf_num", "4\n")
        _ = try write("ltt/control/big/alloc", "1\n")
        _ = try write("ltt/control/big/enabled", "1\n")
        let buffer = try #require(tracer.trace("big")?.bufferFiles.first { $0.0 == "userspace_0" }?.1)
        // As the kernel sends a 124 KiB piece of a larger write: 3,100
        // lines of 40 bytes, then the start of the next one.
        let lines = String(repeating: String(repeating: "l", count: 39) + "\n", count: 3100)
        let request = lines + String(repeating: "p", count: 124 * 1024 + 100 - lines.utf8.count)
        #expect(try write("ltt/write_event", request) == lines.utf8.count, "the cut line is not recorded")
        #expect(buffer.counters.eventsWritten == 3100)
        // A short request may end inside a line too (a writev(2) of many
        // buffers, each on pages of its own): the same.
        #expect(try write("ltt/write_event", "tail\nstart of a li") == 5)
        #expect(buffer.counters.eventsWritten == 3101)
        #expect(try write("ltt/write_event", "start of a line\n") == 16, "the line, whole")
        #expect(buffer.counters.eventsWritten == 3102)
    }

    @Test("write_event waiting for room ends on cancellation (a FUSE interrupt) and on shutdown, with EINTR")
    func writeEventWaitsEnd() throws {
        try startSmallTrace("b")
        let reader = try fs.open(inode: try inode("ltt/b/userspace_0"), flags: O_RDONLY)
        defer { fs.release(fh: reader) }
        let buffer = try #require(tracer.trace("b")?.bufferFiles.first { $0.0 == "userspace_0" }?.1)
        // Fill the ring: with its reader open and nothing consumed, the next
        // line must wait for room.
        // (A cancelled wait does not wait: the line that finds no room
        // fails at once, and the ring is full.)
        let noWait = WaitCancellation()
        noWait.cancel()
        let line = Array(String(repeating: "f", count: 500).utf8)
        var fitted = 0
        while (try? line.withUnsafeBytes { try tracer.writeEvent($0, cancellation: noWait) }) != nil { fitted += 1 }
        #expect(fitted > 0 && buffer.counters.eventsWritten == UInt64(fitted))
        for end in ["cancel", "shutdown"] {
            let cancellation = WaitCancellation()
            let outcome = Shared<Errno?>(nil)
            let done = Flag()
            let writer = Thread { [fs] in
                let fh = try! fs.open(inode: try! inode("ltt/write_event"), flags: O_WRONLY)
                defer { fs.release(fh: fh) }
                do {
                    _ = try withBytes(line + [0x0A]) { (b) throws(Errno) -> Int in
                        try fs.write(fh: fh, bytes: b, cancellation: cancellation)
                    }
                } catch let error as Errno {
                    outcome.set(error)
                } catch {
                    Issue.record("not an errno: \(error)")
                }
                done.set()
            }
            writer.start()
            let deadline = Date().addingTimeInterval(10)
            while buffer.waitingWriters == 0 && Date() < deadline { _ = poll(nil, 0, 1) }
            #expect(buffer.waitingWriters == 1, "the writer waits for room")
            if end == "cancel" { cancellation.cancel() } else { fs.endRequestWaits() }
            #expect(done.wait(seconds: 10))
            #expect(outcome.load == .interrupted, "\(end): nothing recorded, EINTR")
        }
    }

    @Test("one write_event request waits at most the server's bound for all its lines, however long the channel's blocking_timeout; what did not fit is counted lost")
    func writeEventWaitIsBounded() throws {
        // A bound of its own (the server's is 10 s).
        let w = try BoundedWriteEvent(tracer: tracer, trace: "w", bound: 300_000_000)
        defer { w.close() }
        let buffer = w.buffer
        let noWait = WaitCancellation()
        noWait.cancel()
        let line = Array(String(repeating: "f", count: 500).utf8)
        while (try? line.withUnsafeBytes { try tracer.writeEvent($0, cancellation: noWait) }) != nil {}
        let recorded = buffer.counters.eventsWritten
        let lostBefore = buffer.counters.eventsLost
        // Three lines into the full ring, with its reader open and idle.
        let request = String(repeating: String(repeating: "w", count: 500) + "\n", count: 3)
        let answer = Shared<Int?>(nil)
        let done = Flag()
        let began = Date()
        Thread {
            answer.set(try? w.write("ltt/write_event", request))
            done.set()
        }.start()
        #expect(done.wait(seconds: 20), "the request outlived its bound")
        let waited = Date().timeIntervalSince(began)
        #expect(waited >= 0.25 && waited < 10, "waited \(waited) s")
        #expect(answer.load == request.utf8.count, "every line is answered")
        #expect(buffer.counters.eventsWritten == recorded)
        #expect(buffer.counters.eventsLost == lostBefore + 3, "each line counted lost")
    }

    @Test("the bound is for all the lines of a request together: a reader that frees room slowly, each time a writer waits, does not stretch it; the lines past it are counted lost")
    func writeEventBoundCoversTheRequest() throws {
        let w = try BoundedWriteEvent(tracer: tracer, trace: "s", bound: 500_000_000)
        defer { w.close() }
        let buffer = w.buffer
        // A slow reader: each time a writer waits, it frees one sub-buffer
        // (about 8 lines) 200 ms later.
        let finished = Flag()
        let freed = Shared(0)
        let slowReader = Thread {
            while !finished.isSet {
                guard buffer.waitingWriters > 0 else { _ = poll(nil, 0, 1); continue }
                _ = poll(nil, 0, 200)
                if case .success(let cookie) = buffer.getSubbuffer(), (try? buffer.putSubbuffer(cookie: cookie)) != nil {
                    freed.set(freed.load + 1)
                }
            }
        }
        slowReader.start()
        defer { finished.set() }
        // 80 lines of 500 bytes: ten sub-buffers, ten of the reader's 200 ms
        // (2 s) if each line could wait its channel's minute.
        let request = String(repeating: String(repeating: "s", count: 500) + "\n", count: 80)
        #expect(try w.write("ltt/write_event", request) == request.utf8.count, "every line is answered")
        let c = buffer.counters
        #expect(c.eventsWritten + c.eventsLost == 80)
        #expect(c.eventsLost > 0, "the lines past the request's bound are lost, counted (the reader freed \(freed.load) sub-buffers)")
        #expect(c.eventsWritten > 0, "the lines that found room, or room freed in time, are recorded")
    }

    // MARK: Buffer files

    @Test("buffer files: read-only, one reader, GET/PUT by cookie, errno for every misuse")
    func bufferFileABI() throws {
        try startSmallTrace("g")
        let inode = try inode("ltt/g/userspace_0")
        #expect(errno { _ = try fs.open(inode: inode, flags: O_WRONLY) } == .permissionDenied)
        let fh = try fs.open(inode: inode, flags: O_RDONLY)
        defer { fs.release(fh: fh) }
        #expect(errno { _ = try fs.open(inode: inode, flags: O_RDONLY) } == .resourceBusy, "one reader at a time")
        func ioctl(_ request: RelayIoctl, _ input: UInt32? = nil, outputSize: Int = 4) throws(Errno) -> UInt32? {
            try withBytes(input.map(bytes(of:)) ?? []) { (b) throws(Errno) -> UInt32? in
                try fs.ioctl(fh: fh, command: request.rawValue, input: b, outputSize: outputSize).word
            }
        }
        #expect(try ioctl(.getSubbufferSize) == 4096)
        #expect(try ioctl(.getSubbufferCount) == 2)
        #expect(errno { _ = try ioctl(.getSubbufferSize, outputSize: 2) } == .invalidArgument)
        #expect(errno { _ = try fs.ioctl(fh: fh, command: 0x1234, input: .init(start: nil, count: 0), outputSize: 4) }
                == .inappropriateIOCTLForDevice)
        #expect(errno { _ = try ioctl(.getSubbuffer) } == .resourceTemporarilyUnavailable, "nothing delivered yet")
        #expect(errno { _ = try ioctl(.putSubbuffer, 0) } == .ioError, "PUT with nothing taken")
        #expect(errno { _ = try ioctl(.putSubbuffer) } == .invalidArgument, "PUT without its cookie")

        _ = try write("ltt/write_event", "one\n")
        try tracer.flush("g")
        let cookie = try #require(try ioctl(.getSubbuffer))
        #expect(errno { _ = try ioctl(.putSubbuffer, cookie &+ 4096) } == .ioError, "the wrong cookie")
        #expect(try ioctl(.putSubbuffer, cookie) == nil)
        #expect(errno { _ = try ioctl(.putSubbuffer, cookie) } == .ioError, "PUT twice")
        // Control files have no ioctls.
        let control = try fs.open(inode: try self.inode("ltt/control/g/stats"), flags: O_RDONLY)
        defer { fs.release(fh: control) }
        #expect(errno { _ = try fs.ioctl(fh: control, command: RelayIoctl.getSubbuffer.rawValue,
                                         input: .init(start: nil, count: 0), outputSize: 4) } == .inappropriateIOCTLForDevice)
    }

    @Test("an open that comes before the last reader's RELEASE waits for it, woken by the release; a third waiting open and a reader that stays mean EBUSY")
    func openWaitsForRelease() throws {
        try startSmallTrace("r")
        let buffer = try #require(tracer.trace("r")?.bufferFiles.first { $0.0 == "userspace_0" }?.1)
        // Opens that wait as long as a loaded machine may need to send the
        // release (the server's 0.2 s is for a machine that runs).
        let patient = FileSystem(tracer: tracer, logger: .init(label: "test"), releasePatience: 30_000_000_000)
        let inode = try FileSystemCalls.inode(patient, "ltt/r/userspace_0")
        let first = try patient.open(inode: inode, flags: O_RDONLY)
        // FUSE answered the first reader's close(2), its RELEASE is still on
        // the way, and the next opens (a script's next commands, a new lttd
        // with O_NONBLOCK) come first.
        let opened = Shared<[UInt64]>([])
        let done = Counter()
        for flags in [O_RDONLY, O_RDONLY | O_NONBLOCK] {
            Thread {
                if let fh = try? patient.open(inode: inode, flags: flags) { opened.set(opened.load + [fh]) }
                done.add(1)
            }.start()
        }
        #expect(waitUntil { buffer.openersWaiting == 2 }, "both opens wait for a release")
        // No more than two wait: the next is refused at once.
        let start = MonotonicClock.now()
        #expect(errno { _ = try patient.open(inode: inode, flags: O_RDONLY) } == .resourceBusy)
        #expect(MonotonicClock.now() - start < 10_000_000_000, "it did not wait its 30 s")
        #expect(buffer.openersWaiting == 2 && done.load == 0)
        // Each release lets one waiting open in.
        patient.release(fh: first)
        #expect(waitUntil { done.load == 1 })
        let second = try #require(opened.load.first, "the release let a waiting open in")
        #expect(buffer.openersWaiting == 1)
        patient.release(fh: second)
        #expect(waitUntil { done.load == 2 })
        #expect(opened.load.count == 2 && buffer.openersWaiting == 0)
        patient.release(fh: opened.load[1])

        // A reader that does not go away: refused once the patience is spent.
        let quick = FileSystem(tracer: tracer, logger: .init(label: "test"), releasePatience: 50_000_000)
        let quickInode = try FileSystemCalls.inode(quick, "ltt/r/userspace_0")
        let held = try quick.open(inode: quickInode, flags: O_RDONLY)
        let began = MonotonicClock.now()
        #expect(errno { _ = try quick.open(inode: quickInode, flags: O_RDONLY) } == .resourceBusy)
        #expect(MonotonicClock.now() - began >= 50_000_000, "it waited its patience")
        quick.release(fh: held)
    }

    @Test("the page-cache policy: first GET drops and stores, splice-only GETs store, a READ since the last GET drops")
    func pageCachePolicy() throws {
        try startSmallTrace("p")
        let inode = try inode("ltt/p/userspace_0")
        let fh = try fs.open(inode: inode, flags: O_RDONLY)
        defer { fs.release(fh: fh) }
        func get() throws(Errno) -> UInt32 {
            _ = try write("ltt/write_event", "x\n")
            try? tracer.flush("p")
            return try fs.ioctl(fh: fh, command: RelayIoctl.getSubbuffer.rawValue, input: .init(start: nil, count: 0),
                         outputSize: 4).word ?? 0
        }
        func put(_ cookie: UInt32) throws(Errno) {
            _ = try withBytes(bytes(of: cookie)) { (b) throws(Errno) -> UInt32? in
                try fs.ioctl(fh: fh, command: RelayIoctl.putSubbuffer.rawValue, input: b, outputSize: 0).word
            }
        }
        var cookie = try get()
        #expect(cache.calls == [.invalidate(inode), .store(inode, bytes: 4096)])
        try put(cookie)
        cache.reset()
        cookie = try get()
        #expect(cache.calls == [.store(inode, bytes: 4096)], "lttd's splice: the stored pages are replaced")
        // A read(2) consumer: the cache may hold pages the server did not store.
        guard case .regions(let regions) = try fs.read(fh: fh, size: 8192, offset: 0, fillsPageCache: false) else {
            Issue.record("a buffer file reads ring memory")
            return
        }
        #expect(regions.reduce(0) { $0 + $1.count } == 4096, "read(2) ends at the readable bytes")
        try put(cookie)
        cache.reset()
        cookie = try get()
        #expect(cache.calls == [.invalidate(inode)])
        // The kernel filling its cache gets whole pages: zeros after the data.
        guard case .regions(let filled) = try fs.read(fh: fh, size: 8192, offset: 0, fillsPageCache: true) else {
            Issue.record("a buffer file reads ring memory")
            return
        }
        #expect(filled.reduce(0) { $0 + $1.count } == 8192)
        #expect(filled.last?.allSatisfy { $0 == 0 } == true)
        try put(cookie)
    }

    @Test("poll: the exact mask, and a waiter woken once per delivery by the notifier")
    func pollWakeUps() throws {
        try startSmallTrace("n")
        let fh = try fs.open(inode: try inode("ltt/n/userspace_0"), flags: O_RDONLY)
        defer { fs.release(fh: fh) }
        let waiter = CountingPollWaiter()
        #expect(fs.poll(fh: fh, waiter: waiter) == 0, "nothing to read")
        fs.notifyPollers(wakeups.takePosted())
        #expect(waiter.wakes.load == 0, "no news, no wake-up")
        _ = try write("ltt/write_event", "x\n")
        try tracer.flush("n")
        fs.notifyPollers(wakeups.takePosted())
        #expect(waiter.wakes.load == 1)
        fs.notifyPollers(wakeups.takePosted())
        #expect(waiter.wakes.load == 1, "a waiter is woken once, then dropped")
        #expect(fs.poll(fh: fh, waiter: nil) == RelayPollState.readable.pollMask)
        let control = try fs.open(inode: try inode("ltt/control/n/stats"), flags: O_RDONLY)
        defer { fs.release(fh: control) }
        #expect(fs.poll(fh: control, waiter: nil) == Int16(POLLIN | POLLOUT))
    }
}

/// A filesystem of its own over `tracer`, whose write_event requests wait
/// at most `bound` ns in all, with trace `name` set up: two 4 KiB
/// sub-buffers, a channel that would let a writer wait a minute
/// (blocking_timeout 60000), and its userspace_0 open by a reader that
/// `close()` releases.
struct BoundedWriteEvent: Sendable {
    let fs: FileSystem
    let reader: UInt64
    let buffer: RelayBuffer

    init(tracer: Tracer, trace name: String, bound: UInt64) throws {
        fs = FileSystem(tracer: tracer, logger: .init(label: "test"), longestWriteEventWait: bound)
        for (file, value) in [("setup_trace", name), ("control/\(name)/channel/userspace/subbuf_size", "4096"),
                              ("control/\(name)/channel/userspace/subbuf_num", "2"),
                              ("control/\(name)/channel/userspace/blocking_timeout", "60000"),
                              ("control/\(name)/alloc", "1"), ("control/\(name)/enabled", "1")] {
            _ = try FileSystemCalls.write(fs, "ltt/" + file, value + "\n")
        }
        reader = try fs.open(inode: try FileSystemCalls.inode(fs, "ltt/\(name)/userspace_0"), flags: O_RDONLY)
        buffer = try #require(tracer.trace(name)?.bufferFiles.first { $0.0 == "userspace_0" }?.1)
    }

    /// `echo text > path` through this filesystem.
    @Sendable func write(_ path: String, _ text: String) throws(Errno) -> Int {
        try FileSystemCalls.write(fs, path, text)
    }

    func close() { fs.release(fh: reader) }
}

/// What the kernel would do for a path, done on a `FileSystem` directly.
enum FileSystemCalls {
    /// The inode of `path` in `fs` (relative to the mount root), looked up
    /// name by name.
    static func inode(_ fs: FileSystem, _ path: String) throws(Errno) -> UInt64 {
        var inode: UInt64 = 1
        for name in path.split(separator: "/") { inode = try fs.lookup(parent: inode, name: String(name)).inode }
        return inode
    }

    /// `echo text > path` in `fs`: open for writing, write, release.
    static func write(_ fs: FileSystem, _ path: String, _ text: String) throws(Errno) -> Int {
        let fh = try fs.open(inode: try inode(fs, path), flags: O_WRONLY)
        defer { fs.release(fh: fh) }
        return try withBytes(Array(text.utf8)) { (b) throws(Errno) -> Int in
            try fs.write(fh: fh, bytes: b, cancellation: WaitCancellation())
        }
    }
}
