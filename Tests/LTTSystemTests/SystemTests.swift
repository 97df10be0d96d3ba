#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation
@testable import LTTSystem
import Synchronization
import SystemPackage
import Testing

/// The system layer against the real kernel: errno read where it is set,
/// EINTR retried (or not) in one place, the relay calls on real
/// descriptors, threads and signals that end.
@Suite("System layer")
struct SystemTests {
    @Test("LogRateLimit lets perSecond lines through a second and counts the rest into the next")
    func logRateLimit() {
        let limit = LogRateLimit(perSecond: 3)
        let second: UInt64 = 7_000_000_000
        let first = (0..<5).map { limit.admit(now: second + UInt64($0)) }
        #expect(first == [.log(heldBack: 0), .log(heldBack: 0), .log(heldBack: 0),
                          .hold(first: true), .hold(first: false)])
        // A new second: the two held back are said by the first line logged.
        #expect(limit.admit(now: second + 1_000_000_000) == .log(heldBack: 2))
        #expect(limit.admit(now: second + 1_000_000_001) == .log(heldBack: 0))
    }

    @Test("systemCall throws the errno of the call, retries EINTR unless told not to")
    func systemCallErrno() throws {
        #expect(throws: Errno.badFileDescriptor) { try systemCall { close(-1) } }
        var calls = 0
        let value = try systemCall { () -> Int32 in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(value == 7 && calls == 3, "EINTR twice, then the result")
        calls = 0
        #expect(throws: Errno.interrupted) {
            try systemCall(retryOnInterrupt: false) { () -> Int32 in
                calls += 1
                errno = EINTR
                return -1
            }
        }
        #expect(calls == 1)
        #expect(Errno.invalidArgument.name == "EINVAL")
        #expect(Errno.resourceBusy.explained == "Device or resource busy (EBUSY)")
        #expect(Errno(rawValue: 9999).name == "errno 9999")
    }

    @Test("ioctl, splice at an explicit offset, pipe size and poll on real descriptors")
    func relayCalls() throws {
        let path = NSTemporaryDirectory() + "lttfs-system-\(getpid())"
        let file = try FileDescriptor.open(path, .readWrite, options: [.create, .truncate], permissions: .ownerReadWrite)
        defer {
            try? file.close()
            unlink(path)
        }
        let content = (0..<8192).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try file.writeFully(content)
        // A regular file has no relay ioctls.
        var value: UInt32 = 0
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try file.ioctl(0x8004_F500, &value) }

        let (readEnd, writeEnd) = try FileDescriptor.pipe()
        defer {
            try? readEnd.close()
            try? writeEnd.close()
        }
        #expect(try writeEnd.setPipeSize(1 << 16) >= 1 << 16)
        var fds = [pollfd(fd: readEnd.rawValue, events: Int16(POLLIN), revents: 0)]
        #expect(try poll(&fds, milliseconds: 0) == 0, "an empty pipe is not readable")
        // lttd's splice: from the file at offset 4096, into the pipe.
        var offset: Int64 = 4096
        let moved = try file.splice(from: &offset, to: writeEnd, length: 4096)
        #expect(moved == 4096 && offset == 8192, "the explicit offset advances by what moved")
        #expect(try poll(&fds, milliseconds: 1000) == 1)
        var back = [UInt8](repeating: 0, count: 4096)
        let read = try back.withUnsafeMutableBytes { try readEnd.read(into: $0) }
        #expect(read == 4096 && back == Array(content[4096...]))
        // And from the pipe (no offset) to the file's end.
        try writeEnd.writeFully([1, 2, 3])
        _ = try file.seek(offset: 0, from: .end)
        #expect(try readEnd.splice(to: file, length: 3) == 3)
        var tail = [UInt8](repeating: 0, count: 3)
        _ = try tail.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: 8192, into: $0) }
        #expect(tail == [1, 2, 3])
    }

    @Test("poll ended by a signal returns 0 (no descriptor ready) instead of failing")
    func pollInterrupted() throws {
        _ = lttfs_wake_signal_accept()
        let (readEnd, writeEnd) = try FileDescriptor.pipe()
        defer {
            try? readEnd.close()
            try? writeEnd.close()
        }
        let tid = Atomic<pthread_t>(0)
        let result = Mutex<Result<Int, Errno>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            tid.store(pthread_self(), ordering: .releasing)
            var fds = [pollfd(fd: readEnd.rawValue, events: Int16(POLLIN), revents: 0)]
            let r = Result { () throws(Errno) in try poll(&fds, milliseconds: 20_000) }
            result.withLock { $0 = r }
            done.signal()
        }
        thread.start()
        while tid.load(ordering: .acquiring) == 0 { sched_yield() }
        // Signal until the poll returns: the first may arrive before it sleeps.
        var waited = 0
        while done.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
            pthread_kill(tid.load(ordering: .acquiring), lttfs_wake_signal())
            waited += 1
            if waited > 200 { break }
        }
        #expect(waited <= 200, "the signal ended the poll")
        #expect(try result.withLock { $0 }?.get() == 0)
    }

    @Test("PeriodicThread runs its body on a kick, and stop joins it")
    func periodicThread() {
        let thread = PeriodicThread(name: "test-periodic", interval: 3600)
        let runs = Atomic<Int>(0)
        thread.start { runs.add(1, ordering: .relaxed) }
        #expect(thread.isRunning)
        thread.kick()
        let deadline = Date().addingTimeInterval(10)
        while runs.load(ordering: .relaxed) == 0 && Date() < deadline { sched_yield() }
        #expect(runs.load(ordering: .relaxed) >= 1, "a kick runs the body before the next tick")
        thread.stop()
        #expect(!thread.isRunning)
        let after = runs.load(ordering: .relaxed)
        thread.kick()
        #expect(runs.load(ordering: .relaxed) == after, "nothing runs after stop")
    }

    // (Delivering a process signal here would kill the test runner: its
    // threads started before any mask was set. The mount tests send
    // SIGTERM to a real server instead.)
    @Test("SignalWaiter.stop ends its thread when no signal came")
    func signalWaiterStops() {
        let waiter = SignalWaiter(signals: [SIGUSR1], name: "test-idle") { _ in Issue.record("no signal was sent") }
        waiter.stop()
        waiter.stop()   // any number of times
    }

    @Test("SignalWaiter hands every signal to its handler until stop, a second one too")
    func signalWaiterTakesEverySignal() {
        let taken = Locked<[Int32]>([])
        let second = DispatchSemaphore(value: 0)
        let waiter = SignalWaiter(signals: [SIGUSR1], name: "test-twice") { signal in
            if taken.withLock({ $0.append(signal); return $0.count }) == 2 { second.signal() }
        }
        waiter.send(SIGUSR1)
        waiter.send(SIGUSR1)
        // Two sends may merge into one pending signal: send until the
        // handler has run twice (bounded).
        var sent = 2
        while second.wait(timeout: .now() + 0.2) == .timedOut && sent < 50 {
            waiter.send(SIGUSR1)
            sent += 1
        }
        #expect(taken.withLock { $0.count } >= 2 && taken.withLock { $0.allSatisfy { $0 == SIGUSR1 } })
        waiter.stop()
    }

    @Test("spawnDetached starts a program in its own session, and says why it could not")
    func spawn() throws {
        let pid = try ProcessControl.spawnDetached("/bin/sh", arguments: ["sh", "-c", "exit 3"])
        #expect(pid > 0)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect((status >> 8) & 0xFF == 3)
        #expect(throws: Errno.noSuchFileOrDirectory) {
            try ProcessControl.spawnDetached("/nonexistent/lttfs-nothing", arguments: ["x"])
        }
        // Whatever this thread blocks, the child starts with nothing blocked.
        var term = sigset_t()
        sigemptyset(&term)
        sigaddset(&term, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &term, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let killed = try ProcessControl.spawnDetached("/bin/sh", arguments: ["sh", "-c", "kill -TERM $$; exit 0"])
        #expect(waitpid(killed, &status, 0) == killed)
        #expect(status & 0x7F == SIGTERM, "the child died of the signal it sent itself")
        #expect(try ProcessControl.run(["sh", "-c", "kill -TERM $$; exit 0"]) == 128 + SIGTERM)
    }

    @Test("run waits for a program and gives its exit status; send delivers a signal; resolvedPath follows links")
    func runSendResolve() throws {
        #expect(try ProcessControl.run(["sh", "-c", "exit 4"]) == 4)
        #expect(try ProcessControl.run(["sh", "-c", "kill -TERM $$"]) == 128 + SIGTERM)
        #expect(throws: Errno.noSuchFileOrDirectory) { try ProcessControl.run(["/nonexistent/lttfs-nothing"]) }
        #expect(throws: Errno.noSuchProcess) { try ProcessControl.send(0, to: Int32.max) }
        try ProcessControl.send(0, to: getpid())   // signal 0: the process exists
        let link = NSTemporaryDirectory() + "lttfs-link-\(getpid())"
        symlink("/tmp/..", link)
        defer { unlink(link) }
        #expect(resolvedPath(link) == "/")
        #expect(resolvedPath("/nonexistent/lttfs") == nil)
    }

    @Test("MonotonicClock moves forward")
    func monotonic() {
        let a = MonotonicClock.now()
        MonotonicClock.sleep(nanoseconds: 1_000_000)
        #expect(MonotonicClock.now() >= a + 1_000_000)
    }
}
