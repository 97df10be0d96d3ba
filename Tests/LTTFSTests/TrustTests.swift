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

/// Runs a shell command as another user: `uid`, primary group `gid`, no
/// supplementary groups (setpriv, from util-linux).
func runAs(uid: UInt32 = 65534, gid: UInt32 = 65534, _ command: String, timeout: TimeInterval = 30) -> RunResult {
    run(["setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--", "/bin/sh", "-c", command],
        timeout: timeout)
}

/// Where `binariesForOtherUsers` copies the binaries; removed when the test
/// process exits (each run left its copies behind, 130 of them here).
let directoryForOtherUsers = NSTemporaryDirectory() + "lttfs-bin-" + UUID().uuidString.prefix(8)

/// lttfs and lttd-conform where any user may run them: the build directory
/// may sit under a directory other users cannot enter.
let binariesForOtherUsers: (lttfs: String, conform: String) = {
    let directory = directoryForOtherUsers
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: directoryForOtherUsers) }
    chmod(directory, 0o755)
    for binary in [lttfsBinary, conformanceConsumer] {
        let copy = directory + "/" + (binary as NSString).lastPathComponent
        try! FileManager.default.copyItem(atPath: binary, toPath: copy)
        chmod(copy, 0o755)
    }
    return (directory + "/lttfs", directory + "/lttd-conform")
}()

/// A child process writing one long line at a time into write_event until
/// a write fails: a shell script's writer.
func startShellWriter(_ ltt: String, line: String = String(repeating: "w", count: 900)) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "while printf '%s\\n' \"$1\"; do :; done > \"$0\"", ltt + "/write_event", line]
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

/// A server whose trace `name` has a full userspace buffer that a reader
/// holds open and never frees, and a shell writer blocked on it (the stats
/// say it waits), for `blockingTimeoutMillis` (nil: write_event's 1 s):
/// by default longer than any test takes, so that what ends the wait is
/// what the test does, never the wait's bound.
func serverWithBlockedWriter(_ name: String, blockingTimeoutMillis: Int? = 10_000) throws
    -> (server: ServerProcess, reader: BufferFD, writer: Process) {
    let server = try ServerProcess()
    startSmallUserspaceTrace(server.ltt, name, blockingTimeoutMillis: blockingTimeoutMillis)
    let reader = try BufferFD(server.ltt + "/\(name)/userspace_0")
    let writer = try startShellWriter(server.ltt)
    #expect(waitForStat(server.ltt, name, "userspace_0", "waiting", 1))
    return (server, reader, writer)
}

/// The scheduler state of a process ("R", "S", "D", ...), nil once reaped.
func processState(_ pid: pid_t) -> String? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
    return stat.split(separator: ")").last?.split(separator: " ").first.map(String.init)
}

/// A tracer that keeps its log lines, and a mount serving it.
final class LoggedMount {
    let lines = Shared<[String]>([])
    let mount: TestMount

    init(cpuCount: Int = 1, bufferMemoryLimit: UInt64 = BufferMemoryLimit.default) throws {
        let lines = self.lines
        let tracer = Tracer(cpuCount: cpuCount, bufferMemoryLimit: bufferMemoryLimit, log: { _, message in
            lines.set(lines.load + [message])
        })
        mount = try TestMount(tracer: tracer)
    }

    var ltt: String { mount.ltt }
    deinit { mount.close() }
}

@Suite("Trust: permissions, waits that end, an ABI that holds, exact write_event, bounded memory")
struct TrustTests {
    // MARK: Permissions

    @Test("allow_other as root: another user can list, read, write, open and ioctl nothing; root's trace is untouched")
    func othersGetNothing() throws {
        let server = try ServerProcess(arguments: ["--cpus", "1", "-o", "allow_other"])
        defer { server.stop() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "t\n") == 0)
        #expect(writeControl(ltt + "/control/t/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/t/enabled", "1\n") == 0)
        #expect(writeControl(ltt + "/write_event", "root's line\n") == 0)
        let before = readControl(ltt + "/control/t/stats")
        let attempts = [
            "ls \(ltt)", "ls \(ltt)/control/t", "cat \(ltt)/control/t/stats", "cat \(ltt)/control/t/enabled",
            "echo x > \(ltt)/setup_trace", "echo t > \(ltt)/destroy_trace", "echo injected > \(ltt)/write_event",
            "echo 0 > \(ltt)/control/t/enabled", "echo 2 > \(ltt)/control/t/channel/userspace/subbuf_num",
            "head -c 300 \(ltt)/t/userspace_0", "\(binariesForOtherUsers.lttfs) subbuf get \(ltt)/t/userspace_0",
            "\(binariesForOtherUsers.lttfs) subbuf put \(ltt)/t/userspace_0 0",
        ]
        for command in attempts {
            let r = runAs(command)
            #expect(r.status != 0, "as nobody: \(command) succeeded")
            // Refused on the mount, not on the way to it.
            #expect(r.error.contains("Permission denied") && r.error.contains(ltt), "as nobody: \(command): \(r.error)")
        }
        #expect(readControl(ltt + "/control/t/enabled") == "1\n")
        #expect(readControl(ltt + "/control/t/stats") == before)
    }

    @Test("a tracing group (--group) may look, drain with GET/splice/PUT and record; it may not create, change or destroy")
    func tracingGroup() throws {
        let server = try ServerProcess(arguments: ["--cpus", "1", "-o", "allow_other", "--group", "65534"])
        defer { server.stop() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "g\n") == 0)
        #expect(writeControl(ltt + "/control/g/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/g/enabled", "1\n") == 0)
        var st = stat()
        #expect(stat(ltt + "/g/userspace_0", &st) == 0 && st.st_gid == 65534 && st.st_mode & 0o777 == 0o440)
        // Allowed to the group.
        for command in ["ls \(ltt)/g", "cat \(ltt)/control/g/stats", "cat \(ltt)/control/g/channel/userspace/subbuf_num",
                        "echo from the group > \(ltt)/write_event"] {
            let r = runAs(command)
            #expect(r.status == 0, "as a group member: \(command): \(r.error)")
        }
        // Refused to the group.
        for command in ["echo x > \(ltt)/setup_trace", "echo g > \(ltt)/destroy_trace",
                        "echo 0 > \(ltt)/control/g/enabled"] {
            let r = runAs(command)
            #expect(r.status != 0 && r.error.contains("Permission denied") && r.error.contains(ltt),
                    "as a group member: \(command): \(r.error)")
        }
        // Not in the group: nothing.
        let outsider = runAs(uid: 65534, gid: 1, "cat \(ltt)/control/g/stats")
        #expect(outsider.status != 0 && outsider.error.contains("Permission denied") && outsider.error.contains(ltt))
        // A group member drains the trace lttd's way.
        let out = temporaryPath("group")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        chmod(out, 0o777)
        let ready = out + "/ready"
        let drained = Shared<RunResult?>(nil)
        Thread {
            drained.set(runAs("\(binariesForOtherUsers.conform) -c \(ltt)/g -t \(out)/trace -T 30 -r \(ready)", timeout: 40))
        }.start()
        #expect(waitForFile(ready))
        for i in 0..<50 { #expect(writeControl(ltt + "/write_event", "line \(i)\n") == 0) }
        #expect(writeControl(ltt + "/control/g/enabled", "0\n") == 0)
        #expect(writeControl(ltt + "/destroy_trace", "g\n") == 0)
        let deadline = Date().addingTimeInterval(40)
        while drained.load == nil && Date() < deadline { _ = poll(nil, 0, 10) }
        let r = try #require(drained.load)
        #expect(r.status == 0, "\(r.output)\(r.error)")
        let lines = waitForDecodedLines(out + "/trace", expected: 51, seconds: 1)
        #expect(lines.count == 51 && lines.first == "from the group")
    }

    @Test("chmod, chown and every call that would change the tree answer EPERM, and change nothing")
    func treeIsTheServers() throws {
        try withMount(cpuCount: 1) { m in
            #expect(writeControl(m.ltt + "/setup_trace", "p\n") == 0)
            let stats = m.ltt + "/control/p/stats"
            #expect(chmod(stats, 0o666) == -1 && errno == EPERM)
            #expect(chown(stats, 65534, 65534) == -1 && errno == EPERM)
            #expect(mkdir(m.ltt + "/newdir", 0o755) == -1 && errno == EPERM)
            #expect(unlink(m.ltt + "/setup_trace") == -1 && errno == EPERM)
            #expect(rmdir(m.ltt + "/control/p") == -1 && errno == EPERM)
            #expect(rename(m.ltt + "/setup_trace", m.ltt + "/other") == -1 && errno == EPERM)
            #expect(symlink("/etc/passwd", m.ltt + "/link") == -1 && errno == EPERM)
            #expect(link(m.ltt + "/setup_trace", m.ltt + "/hard") == -1 && errno == EPERM)
            #expect(mknod(m.ltt + "/node", S_IFREG | 0o644, 0) == -1 && errno == EPERM)
            let created = open(m.ltt + "/created", O_WRONLY | O_CREAT, 0o644)
            #expect(created == -1 && errno == EPERM)
            var st = stat()
            #expect(stat(stats, &st) == 0 && st.st_mode & 0o777 == 0o440 && st.st_uid == getuid())
            // Truncation still works: `echo x > file` opens with O_TRUNC.
            #expect(writeControl(m.ltt + "/control/p/channel/userspace/subbuf_num", "4\n") == 0)
        }
    }

    // MARK: Waits that end

    @Test("SIGTERM with consumers attached (lttd's way through the files, and lttfs consume through shared memory): each drains its trace to the last line, the partial sub-buffer included, ends at POLLHUP, then the server unmounts")
    func sigtermLetsConsumersDrain() throws {
        let server = try ServerProcess(arguments: ["--cpus", "2"])
        defer { server.stop() }
        let ltt = server.ltt
        for name in ["f", "m"] {
            #expect(writeControl(ltt + "/setup_trace", name + "\n") == 0)
            #expect(writeControl(ltt + "/control/\(name)/alloc", "1\n") == 0)
            #expect(writeControl(ltt + "/control/\(name)/enabled", "1\n") == 0)
        }
        let out = temporaryPath("drain")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let files = try ConformanceConsumer(ltt + "/f", into: out + "/f")
        let mapped = try RecorderProcess([lttfsBinary, "consume", "-q", "-c", ltt + "/m", "-t", out + "/m", "--transport", "shm", "-n", "2"])
        // Every buffer of each trace has its reader (stats), mapped for "m".
        for (trace, reader) in [("f", 1), ("m", 2)] {
            for buffer in ["metadata_0", "metadata_1", "userspace_0", "userspace_1"] {
                #expect(waitForStat(ltt, trace, buffer, "reader", reader), "\(trace)/\(buffer): \(mapped.errorText)")
            }
        }
        // Fewer lines than a sub-buffer holds: nothing is delivered before
        // the shutdown flushes them.
        let count = 300
        for i in 0..<count { #expect(writeControl(ltt + "/write_event", "line \(i)\n") == 0) }
        kill(server.process.processIdentifier, SIGTERM)
        let r = files.finish()
        #expect(r.status == 0, "\(r.output)\(r.error)")
        #expect(mapped.wait(seconds: 30) == 0, "\(mapped.errorText)")
        #expect(waitExit(server.process, seconds: 30) && server.process.terminationStatus == 0)
        #expect(!isMounted(server.path))
        let expected = (0..<count).map { "line \($0)" }
        #expect(waitForDecodedLines(out + "/f", expected: count, seconds: 1) == expected, "lttd's way")
        #expect(waitForDecodedLines(out + "/m", expected: count, seconds: 1) == expected, "shared memory")
    }

    @Test("a writer blocked in write_event and killed with -9 is gone within 1 s")
    func killedWriterLeaves() throws {
        let (server, reader, writer) = try serverWithBlockedWriter("k")
        defer { server.stop() }
        let killed = Date()
        kill(writer.processIdentifier, SIGKILL)
        #expect(waitExit(writer, seconds: 1))
        #expect(Date().timeIntervalSince(killed) < 1)
        #expect(waitForStat(server.ltt, "k", "userspace_0", "waiting", 0))
        _ = reader
    }

    @Test("shutdown waits for a reader still draining a trace destroyed before it and for one that comes during the drain, serves them meanwhile (GET, splice, PUT, POLLHUP), and refuses control writes (EBUSY)")
    func shutdownWaitsForEarlierDestroyedTrace() throws {
        let m = try TestMount(cpuCount: 1)
        defer { m.close() }
        startSmallUserspaceTrace(m.ltt, "x")
        startSmallUserspaceTrace(m.ltt, "y")   // nobody reads it yet
        var reader: BufferFD? = try BufferFD(m.ltt + "/x/userspace_0")
        for i in 0..<3 { #expect(writeControl(m.ltt + "/write_event", "last \(i)\n") == 0) }
        #expect(writeControl(m.ltt + "/destroy_trace", "x\n") == 0)
        let done = Flag()
        Thread {
            m.server.shutdown(timeout: 10)
            done.set()
        }.start()
        #expect(waitUntil { writeControl(m.ltt + "/setup_trace", "late\n") == EBUSY }, "control writes are refused once shutdown began")
        #expect(!done.isSet, "shutdown waits for the reader")
        // A consumer that comes during the drain is drained too: its trace
        // is destroyed (finalized), and it reads it to POLLHUP.
        do {
            let late = try BufferFD(m.ltt + "/y/userspace_0")   // closed at the end of this scope
            #expect(late.poll(timeoutMs: 5000) == Int16(POLLIN))
            let lateCookie = try #require(late.get())
            #expect(String(decoding: try late.spliceSubbuffer(length: 4096), as: UTF8.self).contains("last 0"))
            #expect(late.put(lateCookie) == 0)
            #expect(late.poll(timeoutMs: 5000) == Int16(POLLHUP))
        }
        #expect(!done.isSet, "shutdown waits for the first reader still")
        #expect(reader!.poll(timeoutMs: 5000) == Int16(POLLIN))
        let cookie = try #require(reader!.get())
        let bytes = try reader!.spliceSubbuffer(length: 4096)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect((0..<3).allSatisfy { text.contains("last \($0)") })
        #expect(reader!.put(cookie) == 0)
        #expect(reader!.poll(timeoutMs: 5000) == Int16(POLLHUP))
        reader = nil   // lttd closes at POLLHUP
        // Before the 2 s without progress after that PUT would end it.
        #expect(done.wait(seconds: 1.5), "shutdown ends once the reader closed")
    }

    @Test("a second SIGTERM ends the wait for a reader that takes nothing at once")
    func secondSignalEndsTheDrain() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        startSmallUserspaceTrace(server.ltt, "n")
        let reader = try BufferFD(server.ltt + "/n/userspace_0")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(waitUntil { writeControl(server.ltt + "/setup_trace", "late\n") == EBUSY }, "the shutdown began")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(waitExit(server.process, seconds: 10) && server.process.terminationStatus == 0)
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("not waiting for the consumers any longer (a second signal)"), "\(log)")
        _ = reader
    }

    @Test("SIGTERM with a writer blocked in write_event: the server answers it, gives up on the reader that takes nothing, unmounts and exits within 6 s; nothing stays in D state")
    func sigtermWithBlockedWriter() throws {
        let (server, reader, writer) = try serverWithBlockedWriter("s")
        defer { server.stop() }
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
        let sent = Date()
        kill(server.process.processIdentifier, SIGTERM)
        // Its reader takes nothing: given up on after 2 s of that.
        #expect(waitExit(server.process, seconds: 6))
        #expect(Date().timeIntervalSince(sent) < 6)
        #expect(server.process.terminationStatus == 0)
        #expect(!isMounted(server.path))
        // The writer got its answer (the event went nowhere: EINTR) and its
        // next write finds no server: it ends, never stuck in the kernel.
        #expect(waitExit(writer, seconds: 2))
        #expect(processState(writer.processIdentifier) != "D")
        #expect(reader.ioctl(.getSubbufferSize).0 == ENOTCONN)
    }

    @Test("lttfs umount with a writer blocked in write_event stops the server the same way: answered, unmounted, gone")
    func umountWithBlockedWriter() throws {
        let (server, reader, writer) = try serverWithBlockedWriter("u")
        defer { server.stop() }
        defer { if writer.isRunning { kill(writer.processIdentifier, SIGKILL) } }
        #expect(MountTable.current().entries.contains {
            $0.mountpoint == server.path && $0.source == "lttfs:\(server.process.processIdentifier)"
        })
        let r = run([lttfsBinary, "umount", server.path], timeout: 10)
        #expect(r.status == 0, "\(r.error)")
        #expect(waitExit(server.process, seconds: 2) && server.process.terminationStatus == 0)
        #expect(!isMounted(server.path))
        #expect(waitExit(writer, seconds: 2))
        _ = reader
    }

    @Test("a second writer queued behind a waiting one (the kernel holds write_event's lock) is answered within the wait's bound, then nobody waits until the reader frees room")
    func queuedWritersAreBounded() throws {
        let (server, reader, first) = try serverWithBlockedWriter("q", blockingTimeoutMillis: nil)   // the 1 s bound is what it tests
        defer { server.stop() }
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let began = Date()
        let second = run(["sh", "-c", "echo second > \(server.ltt)/write_event"], timeout: 10)
        #expect(second.status == 0)
        // (The first's wait ends within 1 s, then the second's: 2 s and the
        // machine's slowness; a queue without bound would reach the 10 s.)
        #expect(Date().timeIntervalSince(began) < 5, "the second writer waited \(Date().timeIntervalSince(began)) s")
        // The stalled reader makes writes lose their line at once, counted
        // (lines as long as the writer's: a shorter one could still fit).
        let fast = Date()
        let more = String(repeating: "m", count: 900) + "\n"
        for _ in 0..<20 { #expect(writeControl(server.ltt + "/write_event", more) == 0) }
        // Waiting, each would take its 1 s bound: 20 s.
        #expect(Date().timeIntervalSince(fast) < 8, "20 lines took \(Date().timeIntervalSince(fast)) s")
        let row = statsRow(readControl(server.ltt + "/control/q/stats") ?? "", "userspace_0")
        #expect((row?["lost"] ?? 0) >= 20)
        // Once the reader frees a sub-buffer, writers wait (and record) again.
        let cookie = try #require(reader.get())
        #expect(reader.put(cookie) == 0)
        #expect(waitForStat(server.ltt, "q", "userspace_0", "waiting", 1))
    }

    @Test("a line is recorded where it fits and counted lost where it does not; longer than 64 KiB, or fitting nowhere, it is EINVAL")
    func lineLengths() throws {
        try withMount(cpuCount: 1) { m in
            #expect(writeControl(m.ltt + "/setup_trace", "wide\n") == 0)
            #expect(writeControl(m.ltt + "/control/wide/alloc", "1\n") == 0)      // 256 KiB sub-buffers
            #expect(writeControl(m.ltt + "/control/wide/enabled", "1\n") == 0)
            startSmallUserspaceTrace(m.ltt, "narrow")                               // 4 KiB sub-buffers
            #expect(writeControl(m.ltt + "/write_event", String(repeating: "l", count: 10_000) + "\n") == 0)
            let wide = statsRow(readControl(m.ltt + "/control/wide/stats") ?? "", "userspace_0")
            let narrow = statsRow(readControl(m.ltt + "/control/narrow/stats") ?? "", "userspace_0")
            #expect(wide?["written"] == 1 && wide?["lost"] == 0)
            #expect(narrow?["written"] == 0 && narrow?["lost"] == 1)
            #expect(writeControl(m.ltt + "/write_event", String(repeating: "x", count: 65_537) + "\n") == EINVAL)
            #expect(writeControl(m.ltt + "/control/wide/enabled", "0\n") == 0)
            #expect(writeControl(m.ltt + "/write_event", String(repeating: "y", count: 5_000) + "\n") == EINVAL)
            #expect(statsRow(readControl(m.ltt + "/control/narrow/stats") ?? "", "userspace_0")?["lost"] == 1)
            // A control value of a page or more would reach the server in pieces.
            #expect(writeControl(m.ltt + "/setup_trace", String(repeating: " ", count: 4094) + "xyzw\n") == EINVAL)
            let traces = (try? FileManager.default.contentsOfDirectory(atPath: m.ltt + "/control"))?.sorted()
            #expect(traces == ["narrow", "wide"])
        }
    }

    /// The server's resident shared memory (its buffers' memfd pages that
    /// its page tables map), in bytes.
    private func residentSharedMemory(_ pid: Int32) -> UInt64 {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssShmem:") }),
              let kib = UInt64(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }

    @Test("alloc takes the buffers' memory at once and maps every page, so that no event of the server's process pays a page fault")
    func allocMapsItsMemory() throws {
        let server = try ServerProcess(arguments: ["--cpus", "2", "--buffer-memory", "2G"])
        defer { server.stop() }
        let pid = server.process.processIdentifier
        let before = residentSharedMemory(pid)
        #expect(writeControl(server.ltt + "/setup_trace", "big\n") == 0)
        #expect(writeControl(server.ltt + "/control/big/channel/userspace/subbuf_size", "16777216\n") == 0)
        #expect(writeControl(server.ltt + "/control/big/channel/userspace/subbuf_num", "8\n") == 0)
        #expect(writeControl(server.ltt + "/control/big/alloc", "1\n") == 0)    // 2 x 128 MiB
        let mapped = max(residentSharedMemory(pid), before) - before
        #expect(mapped >= 256 << 20, "\(mapped) bytes of shared memory mapped after alloc")
        #expect(writeControl(server.ltt + "/control/big/enabled", "1\n") == 0)
        #expect(writeControl(server.ltt + "/write_event", "into mapped pages\n") == 0)
        #expect(writeControl(server.ltt + "/destroy_trace", "big\n") == 0)
        #expect(waitUntil { residentSharedMemory(pid) < before + (16 << 20) })   // given back at destroy
    }

    @Test("alloc of gigabytes maps its pages outside the control lock: other control operations and shutdown go on meanwhile")
    func largeAllocHoldsNothing() throws {
        let server = try ServerProcess(arguments: ["--cpus", "2", "--buffer-memory", "8G"])
        defer { server.stop() }
        let pid = server.process.processIdentifier
        #expect(writeControl(server.ltt + "/setup_trace", "huge\n") == 0)
        #expect(writeControl(server.ltt + "/control/huge/channel/userspace/subbuf_size", "67108864\n") == 0)
        #expect(writeControl(server.ltt + "/control/huge/channel/userspace/subbuf_num", "16\n") == 0)
        let allocated = Flag()
        let ltt = server.ltt
        Thread {
            _ = writeControl(ltt + "/control/huge/alloc", "1\n")    // 2 x 1 GiB
            allocated.set()
        }.start()
        // Caught while it maps (about half a second per GiB): a control
        // operation answers without waiting for it.
        let mapping = waitUntil(seconds: 30) { allocated.isSet || residentSharedMemory(pid) >= 128 << 20 }
        #expect(mapping)
        let midway = !allocated.isSet && residentSharedMemory(pid) < 1 << 30
        #expect(writeControl(server.ltt + "/setup_trace", "other\n") == 0)
        if midway {
            #expect(!allocated.isSet, "setup_trace waited for the alloc's page tables")
        }
        // Shutdown does not wait for the rest either: the server says it
        // stopped mapping (what the exit's time cannot show on a loaded
        // machine, where freeing the mapped gigabyte takes as long).
        let stillMapping = !allocated.isSet && residentSharedMemory(pid) < 1 << 30
        kill(pid, SIGTERM)
        #expect(waitExit(server.process, seconds: 30))
        #expect(allocated.wait(seconds: 10))
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if stillMapping {
            #expect(log.contains("trace huge: alloc stopped mapping its buffers' pages (the server is stopping)"),
                    "shutdown waited for the alloc's page tables")
        }
    }

    @Test("lttfs umount never signals a process that does not serve that mount, whatever the mount's source says")
    func umountChecksTheServer() throws {
        let real = try ServerProcess()
        defer { real.stop() }
        let path = makeMountPoint()
        defer { forceUnmount(path); try? FileManager.default.removeItem(atPath: path) }
        let impostor = FileSystemServer(tracer: Tracer(cpuCount: 1), mountpoint: path,
                                        options: ["fsname=lttfs:\(real.process.processIdentifier)"])
        try impostor.startInBackground()
        defer { impostor.shutdown(timeout: 10) }
        #expect(MountTable.current().entries.contains { $0.mountpoint == path && $0.source == "lttfs:\(real.process.processIdentifier)" })
        #expect(run([lttfsBinary, "umount", path], timeout: 20).status == 0)
        #expect(!isMounted(path))
        #expect(real.process.isRunning && isMounted(real.path))
    }

    @Test("stop and destroy end a write_event's wait; the event never enters a stopped trace and every loss is counted and logged")
    func stopAndDestroyEndWaits() throws {
        let logged = try LoggedMount()
        let ltt = logged.ltt
        #expect(writeControl(ltt + "/setup_trace", "big\n") == 0)
        #expect(writeControl(ltt + "/control/big/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/big/enabled", "1\n") == 0)
        startSmallUserspaceTrace(ltt, "small", blockingTimeoutMillis: 10_000)
        let reader = try BufferFD(ltt + "/small/userspace_0")   // a consumer that frees nothing
        let line = String(repeating: "s", count: 900) + "\n"
        let completed = Counter()
        let finished = Flag()
        let held = Shared(false)   // while set, the writer pauses between lines
        Thread {
            for _ in 0..<30 {
                let deadline = Date().addingTimeInterval(30)
                while held.load && Date() < deadline { _ = poll(nil, 0, 1) }
                if writeControl(ltt + "/write_event", line) == 0 { completed.add(1) }
            }
            finished.set()
        }.start()
        // "small" fills, and the writer waits for room there...
        #expect(waitForStat(ltt, "small", "userspace_0", "waiting", 1))
        let done = completed.load
        let smallWritten = statsRow(readControl(ltt + "/control/small/stats") ?? "", "userspace_0")?["written"] ?? -1
        #expect(smallWritten == done)
        // ...while "big" already has the waiting line: one full trace holds up no other.
        #expect(statsRow(readControl(ltt + "/control/big/stats") ?? "", "userspace_0")?["written"] == done + 1)
        // Stop ends the wait: the line is counted lost in "small", never recorded there.
        held.set(true)
        #expect(writeControl(ltt + "/control/small/enabled", "0\n") == 0)
        #expect(waitForStat(ltt, "small", "userspace_0", "lost", 1))
        #expect(waitForStat(ltt, "small", "userspace_0", "waiting", 0))
        #expect(statsRow(readControl(ltt + "/control/small/stats") ?? "", "userspace_0")?["written"] == smallWritten)
        // Started again, the writer waits again; destroy ends that wait too,
        // and its log counts both losses.
        #expect(writeControl(ltt + "/control/small/enabled", "1\n") == 0)
        held.set(false)
        #expect(waitForStat(ltt, "small", "userspace_0", "waiting", 1))
        held.set(true)   // no other line while destroy runs: the count below is exact
        #expect(writeControl(ltt + "/destroy_trace", "small\n") == 0)
        held.set(false)
        #expect(finished.wait(seconds: 10))
        #expect(completed.load == 30)   // every line recorded in "big": no write failed
        #expect(statsRow(readControl(ltt + "/control/big/stats") ?? "", "userspace_0")?["written"] == 30)
        #expect(logged.lines.load.contains("trace small: 2 events lost in userspace channel (cpu 0)"),
                "\(logged.lines.load)")
        _ = reader
    }

    @Test("a signal to a writer waiting on one full trace never duplicates its event: the others have it once, the full one counts it lost")
    func interruptedWriteIsExact() throws {
        try withMount(cpuCount: 1) { m in
            let ltt = m.ltt
            #expect(writeControl(ltt + "/setup_trace", "a\n") == 0)
            #expect(writeControl(ltt + "/control/a/alloc", "1\n") == 0)
            #expect(writeControl(ltt + "/control/a/enabled", "1\n") == 0)
            startSmallUserspaceTrace(ltt, "b")
            let reader = try BufferFD(ltt + "/b/userspace_0")
            installInterruptingHandler(SIGUSR1)
            let line = Array((String(repeating: "i", count: 900) + "\n").utf8)
            let outcome = Shared<(successes: Int, lastError: Int32)?>(nil)
            let tid = Shared<pthread_t?>(nil)
            // The writer outlives the signalling loop: a signal to a thread
            // that has finished is undefined behaviour.
            let doneSignalling = Flag()
            // Like a retrying writer: a write that fails is written again.
            Thread {
                tid.set(pthread_self())
                acceptSignalInThisThread(SIGUSR1)
                let fd = open(ltt + "/write_event", O_WRONLY)
                defer { close(fd) }
                var successes = 0
                for _ in 0..<12 {
                    var r = -1
                    var retries = 0
                    repeat {
                        r = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        retries += 1
                    } while r < 0 && errno == EINTR && retries < 100
                    if r == line.count { successes += 1 }
                }
                outcome.set((successes, 0))
                _ = doneSignalling.wait(seconds: 60)
            }.start()
            defer { doneSignalling.set() }
            // The writer waits on "b" for each line past what it holds; send
            // a signal every time it does, until all 12 lines are written.
            let deadline = Date().addingTimeInterval(20)
            while outcome.load == nil && Date() < deadline {
                if statsRow(readControl(ltt + "/control/b/stats") ?? "", "userspace_0")?["waiting"] == 1,
                   let t = tid.load {
                    pthread_kill(t, SIGUSR1)
                }
                _ = poll(nil, 0, 2)
            }
            doneSignalling.set()
            let done = try #require(outcome.load)
            #expect(done.successes == 12)
            let a = statsRow(readControl(ltt + "/control/a/stats") ?? "", "userspace_0")
            let b = statsRow(readControl(ltt + "/control/b/stats") ?? "", "userspace_0")
            #expect(a?["written"] == 12 && a?["lost"] == 0, "each line once in a: \(String(describing: a))")
            #expect((b?["written"] ?? 0) + (b?["lost"] ?? 0) == 12, "each line once in b, recorded or lost: \(String(describing: b))")
            #expect((b?["lost"] ?? 0) > 0)
            // A trace nobody reads holds up nobody: with no reader, no wait.
            _ = reader
        }
    }

    @Test("a full trace with no consumer never blocks write_event: the line goes to the others and is counted lost there")
    func forgottenTraceBlocksNobody() throws {
        try withMount(cpuCount: 1) { m in
            #expect(writeControl(m.ltt + "/setup_trace", "live\n") == 0)
            #expect(writeControl(m.ltt + "/control/live/alloc", "1\n") == 0)
            #expect(writeControl(m.ltt + "/control/live/enabled", "1\n") == 0)
            startSmallUserspaceTrace(m.ltt, "forgotten")
            let line = String(repeating: "f", count: 900) + "\n"
            let began = Date()
            for _ in 0..<40 { #expect(writeControl(m.ltt + "/write_event", line) == 0) }
            #expect(Date().timeIntervalSince(began) < 10)
            let live = statsRow(readControl(m.ltt + "/control/live/stats") ?? "", "userspace_0")
            let forgotten = statsRow(readControl(m.ltt + "/control/forgotten/stats") ?? "", "userspace_0")
            #expect(live?["written"] == 40)
            #expect((forgotten?["written"] ?? 0) + (forgotten?["lost"] ?? 0) == 40 && (forgotten?["lost"] ?? 0) > 30)
        }
    }

    @Test("a server stopped with traces still set up logs their losses, as destroy would")
    func shutdownLogsLosses() throws {
        let server = try ServerProcess()
        startSmallUserspaceTrace(server.ltt, "kept")
        for _ in 0..<40 { #expect(writeControl(server.ltt + "/write_event", String(repeating: "k", count: 900) + "\n") == 0) }
        let lost = statsRow(readControl(server.ltt + "/control/kept/stats") ?? "", "userspace_0")?["lost"] ?? 0
        #expect(lost > 30)
        server.stop()
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("trace kept: \(lost) events lost in userspace channel (cpu 0)"), "\(log)")
    }

    // MARK: The consumer ABI against misuse

    @Test("PUT without a GET on a real mount is EIO and moves nothing; lttfs subbuf put says what a double PUT is")
    func putWithoutGet() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "u", subbufSize: 4096, subbufNum: 4)
            for i in 0..<10 { #expect(writeControl(m.ltt + "/write_event", "before \(i)\n") == 0) }
            try m.tracer.flush("u")
            let file = m.ltt + "/u/userspace_0"
            do {
                let b = try BufferFD(file)
                #expect(b.put(0) == EIO)                            // the cookie equal to consumed, no GET
                #expect(b.put(4096) == EIO)
                let cookie = try #require(b.get())
                #expect(cookie == 0)                                // nothing moved
                #expect(b.put(cookie) == 0)
                #expect(b.put(cookie) == EIO)                       // twice
            }
            let stats = statsRow(readControl(m.ltt + "/control/u/stats") ?? "", "userspace_0")
            #expect(stats?["consumed"] == 1 && stats?["lost"] == 0)
            // The script's way: GET in one process, PUT in another, then again.
            let cookie = run([lttfsBinary, "subbuf", "get", file])
            #expect(cookie.status == 2)                            // nothing complete: EAGAIN
            #expect(writeControl(m.ltt + "/write_event", "after\n") == 0)
            try m.tracer.flush("u")
            let got = run([lttfsBinary, "subbuf", "get", file])
            let value = got.output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(got.status == 0 && value == "4096")
            #expect(run([lttfsBinary, "subbuf", "put", file, value]).status == 0)
            let again = run([lttfsBinary, "subbuf", "put", file, value])
            #expect(again.status == 2 && again.error.contains("already put, or never taken; nothing was lost"), "\(again.error)")
        }
    }

    @Test("mmap of a buffer file: MAP_SHARED is refused, MAP_PRIVATE reads the bytes and zeros and never kills the caller")
    func mmapNeverKills() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "mm", subbufSize: 4096, subbufNum: 4)
            let b = try BufferFD(m.ltt + "/mm/userspace_0")
            #expect(mmap(nil, 16384, PROT_READ, MAP_SHARED, b.fd, 0) == MAP_FAILED)
            #expect(writeControl(m.ltt + "/write_event", "mapped line\n") == 0)
            try m.tracer.flush("mm")
            let map = try #require(mmap(nil, 16384, PROT_READ, MAP_PRIVATE, b.fd, 0).flatMap { $0 == MAP_FAILED ? nil : $0 })
            defer { munmap(map, 16384) }
            // The first sub-buffer is readable: its header's magic is there.
            #expect(map.load(fromByteOffset: 16, as: UInt32.self) == 0x00D6_B7ED)
            // Past the readable bytes: zeros, not SIGBUS.
            var sum = 0
            for page in 1..<4 { sum += Int(map.load(fromByteOffset: page * 4096 + 100, as: UInt8.self)) }
            #expect(sum == 0)
            // read(2) still ends where the readable bytes end.
            var bytes = [UInt8](repeating: 0, count: 16384)
            #expect(pread(b.fd, &bytes, 16384, 0) == 4096)
        }
    }

    @Test("flight recorder: overwritten sub-buffers and their events show in stats")
    func overwritesCounted() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "fr", subbufSize: 4096, subbufNum: 2, overwrite: true)
            for i in 0..<100 { #expect(writeControl(m.ltt + "/write_event", "flight line \(i) " + String(repeating: "x", count: 200) + "\n") == 0) }
            let row = try #require(statsRow(readControl(m.ltt + "/control/fr/stats") ?? "", "flight-userspace_0"))
            #expect(row["written"] == 100 && row["lost"] == 0 && row["corrupted"] == 0)
            #expect((row["overwritten"] ?? 0) >= 4)
            // Every overwritten event was written; what is left is the rest.
            let overwritten = row["overwritten_events"] ?? 0
            #expect(overwritten > 50 && overwritten < 100)
        }
    }

    // MARK: Memory

    @Test("buffer memory is bounded: an alloc over the limit is ENOMEM with a log line, allocates nothing, and succeeds once it fits")
    func memoryBounded() throws {
        let server = try ServerProcess(arguments: ["--cpus", "1", "--buffer-memory", "4M"])
        defer { server.stop() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "m\n") == 0)
        #expect(writeControl(ltt + "/control/m/channel/userspace/subbuf_size", "1M\n") == EINVAL)
        #expect(writeControl(ltt + "/control/m/channel/userspace/subbuf_size", "1048576\n") == 0)
        #expect(writeControl(ltt + "/control/m/channel/userspace/subbuf_num", "4\n") == 0)
        #expect(writeControl(ltt + "/control/m/alloc", "1\n") == ENOMEM)   // 4 MiB + metadata's 256 KiB
        var st = stat()
        #expect(stat(ltt + "/m", &st) == -1 && errno == ENOENT)            // nothing allocated
        #expect(writeControl(ltt + "/control/m/enabled", "1\n") == EPERM)
        #expect(writeControl(ltt + "/control/m/channel/userspace/subbuf_num", "2\n") == 0)
        #expect(writeControl(ltt + "/control/m/alloc", "1\n") == 0)
        // A second trace of the same size does not fit beside the first...
        #expect(writeControl(ltt + "/setup_trace", "n\n") == 0)
        #expect(writeControl(ltt + "/control/n/channel/userspace/subbuf_size", "1048576\n") == 0)
        #expect(writeControl(ltt + "/control/n/channel/userspace/subbuf_num", "2\n") == 0)
        #expect(writeControl(ltt + "/control/n/alloc", "1\n") == ENOMEM)
        // ...until the first is destroyed and its memory given back.
        #expect(writeControl(ltt + "/destroy_trace", "m\n") == 0)
        #expect(writeControl(ltt + "/control/n/alloc", "1\n") == 0)
        server.stop()
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("out of buffer memory") && log.contains("(ENOMEM)"), "\(log)")
    }

    @Test("the Swift API gets the same ENOMEM as the control file, never a trap")
    func memoryBoundedInProcess() throws {
        let tracer = Tracer(cpuCount: 2, bufferMemoryLimit: 1 << 20)
        try tracer.setupTrace("big")
        #expect(throws: TraceError.self) { try tracer.allocTrace("big") }
        do { try tracer.allocTrace("big") } catch { #expect(error.errno == .noMemory) }
        #expect(tracer.bufferMemory.inUse == 0)
        #expect(tracer.trace("big")?.state == .setup)
        try tracer.updateChannel(trace: "big", channel: "userspace") { $0.subbufferSize = 4096; $0.subbufferCount = 2 }
        try tracer.allocTrace("big")
        #expect(tracer.bufferMemory.inUse == 2 * (4 * 65536 + 2 * 4096))
        try tracer.destroyTrace("big")
        #expect(tracer.bufferMemory.inUse == 0)
        #expect(BufferMemoryLimit.parse("256M") == 256 << 20 && BufferMemoryLimit.parse("3") == 3)
        #expect(BufferMemoryLimit.parse("+5") == nil && BufferMemoryLimit.parse("1.5G") == nil && BufferMemoryLimit.parse("") == nil)
        #expect(BufferMemoryLimit.default > 0 && BufferMemoryLimit.default <= BufferMemoryLimit.available)
    }

    @Test("the default limit follows the cgroup: v2 memory.max and v1 memory.limit_in_bytes, the smallest on the path")
    func memoryLimitFromCgroups() throws {
        let root = temporaryPath("cgroups")
        defer { try? FileManager.default.removeItem(atPath: root) }
        func put(_ path: String, _ value: String) throws {
            try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
            try value.write(toFile: root + path + "/" + (path.hasPrefix("/memory") ? "memory.limit_in_bytes" : "memory.max"),
                            atomically: true, encoding: .utf8)
        }
        try put("", "max\n")
        try put("/a", "1073741824\n")
        try put("/a/b", "max\n")
        #expect(BufferMemoryLimit.cgroupLimit(procCgroup: "0::/a/b\n", root: root) == 1 << 30)
        try put("/memory", "9223372036854771712\n")
        try put("/memory/x", "536870912\n")
        #expect(BufferMemoryLimit.cgroupLimit(procCgroup: "4:memory:/x\n1:cpu:/\n", root: root) == 512 << 20)
        #expect(BufferMemoryLimit.cgroupLimit(procCgroup: "4:memory:/x\n0::/a/b\n", root: root) == 512 << 20)
        #expect(BufferMemoryLimit.cgroupLimit(procCgroup: "1:cpu:/\n", root: root) == nil)
    }

    @Test("a server in a memory cgroup limits its buffers to half of it: an alloc past it is ENOMEM, not the OOM killer",
          .enabled(if: FileManager.default.isWritableFile(atPath: "/sys/fs/cgroup/memory/cgroup.procs")))
    func memoryCgroup() throws {
        let group = "/sys/fs/cgroup/memory/lttfs-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { _ = rmdir(group) }
        try "268435456\n".write(toFile: group + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        let path = makeMountPoint()
        defer { forceUnmount(path); try? FileManager.default.removeItem(atPath: path) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/bin/sh")
        server.arguments = ["-c", "echo $$ > \(group)/cgroup.procs && exec \(lttfsBinary) mount -f --cpus 1 \(path)"]
        let log = Pipe()
        server.standardError = log
        try server.run()
        defer { if server.isRunning { server.terminate(); _ = waitExit(server, seconds: 10) } }
        let deadline = Date().addingTimeInterval(10)
        while !isMounted(path) && Date() < deadline && server.isRunning { _ = poll(nil, 0, 10) }
        #expect(isMounted(path))
        let ltt = path + "/ltt"
        #expect(writeControl(ltt + "/setup_trace", "big\n") == 0)
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_size", "67108864\n") == 0)
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_num", "2\n") == 0)
        #expect(writeControl(ltt + "/control/big/alloc", "1\n") == ENOMEM)      // 128 MiB + metadata > 128 MiB
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_num", "1\n") == 0)   // rounded up to 2
        #expect(writeControl(ltt + "/control/big/channel/userspace/subbuf_size", "16777216\n") == 0)
        #expect(writeControl(ltt + "/control/big/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/big/enabled", "1\n") == 0)
        server.terminate()
        #expect(waitExit(server, seconds: 10) && server.terminationStatus == 0)
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("buffer memory limit: 134217728 bytes"), "\(text)")
    }

    // MARK: Lookups

    @Test("ls and cat stats answer within 100 ms while a marker registration waits on a full metadata channel")
    func lookupsNeverWait() throws {
        try withMount(cpuCount: 1) { m in
            #expect(writeControl(m.ltt + "/setup_trace", "md\n") == 0)
            #expect(writeControl(m.ltt + "/control/md/channel/metadata/subbuf_size", "4096\n") == 0)
            #expect(writeControl(m.ltt + "/control/md/channel/metadata/subbuf_num", "2\n") == 0)
            #expect(writeControl(m.ltt + "/control/md/alloc", "1\n") == 0)
            #expect(writeControl(m.ltt + "/control/md/enabled", "1\n") == 0)
            let reader = try BufferFD(m.ltt + "/md/metadata_0")   // a reader that frees nothing
            let registering = Flag()
            Thread {
                for i in 0..<200 {
                    // A channel the trace has: each marker is declared in its metadata.
                    _ = try? m.tracer.register(channel: "userspace", name: "marker_\(i)", format: "value %d")
                }
                registering.set()
            }.start()
            #expect(waitForStat(m.ltt, "md", "metadata_0", "waiting", 1), "a registration should wait for room")
            for _ in 0..<5 {
                let began = Date()
                let listed = (try? FileManager.default.contentsOfDirectory(atPath: m.ltt)) ?? []
                let stats = readControl(m.ltt + "/control/md/stats") ?? ""
                var st = stat()
                #expect(stat(m.ltt + "/md/metadata_0", &st) == 0)
                let took = Date().timeIntervalSince(began)
                #expect(listed.contains("md") && stats.contains("metadata_0"))
                #expect(took < 0.1, "ls, cat stats and stat took \(took) s")
            }
            #expect(writeControl(m.ltt + "/destroy_trace", "md\n") == 0)
            #expect(registering.wait(seconds: 30))
            _ = reader
        }
    }

    // MARK: Input

    @Test("names and numbers are strict: any whitespace ends a word, control bytes and signs are refused, logs escape and are rate-limited")
    func strictInput() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        let list = { (try? FileManager.default.contentsOfDirectory(atPath: ltt + "/control"))?.sorted() ?? [] }
        #expect(writeControl(ltt + "/setup_trace", "t5\r\n") == 0)
        #expect(writeControl(ltt + "/setup_trace", "q\r\nz") == 0)
        #expect(writeControl(ltt + "/setup_trace", "v\u{0B}w\n") == 0)
        #expect(list() == ["q", "t5", "v"])
        for bad in ["\u{01}x\n", "a\u{7F}\n", "caf\u{E9}\n", ".hidden\n", "-dash\n", String(repeating: "n", count: 65) + "\n",
                    "control\n", "x/y\n"] {
            #expect(writeControl(ltt + "/setup_trace", bad) == EINVAL, "\(bad.debugDescription)")
        }
        #expect(list() == ["q", "t5", "v"])
        let num = ltt + "/control/t5/channel/userspace/subbuf_num"
        for bad in ["+5\n", "-0\n", "0x+5\n", "0x\n", "5k\n", "٣\n", "18446744073709551616\n"] {
            #expect(writeControl(num, bad) == EINVAL, "\(bad.debugDescription)")
        }
        #expect(writeControl(num, "0x10\n") == 0 && readControl(num) == "16\n")
        #expect(writeControl(num, "\t 4 \n") == 0 && readControl(num) == "4\n")
        // A refusal that tries to forge a log line, then a flood of them.
        #expect(writeControl(ltt + "/destroy_trace", "nothere\n2026-01-01 forged line\n") == ENOENT)
        for _ in 0..<300 { #expect(writeControl(ltt + "/setup_trace", "t5\n") == EEXIST) }
        server.stop()
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = log.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix("2026-01-01 forged") })
        #expect(log.contains("\\n2026-01-01 forged line\\n"))
        let refused = lines.filter { $0.contains("refused") }
        #expect(refused.count < 60, "\(refused.count) refusal lines for over 300 refusals")
        #expect(log.contains("the next ones are counted, not logged"))
    }

    @Test("/proc/mounts: one parser, the kernel's octal escapes decoded")
    func mountTableEscapes() {
        let table = MountTable(text: """
            lttfs /mnt/with\\040space fuse.lttfs rw,nosuid 0 0
            lttfs /mnt/back\\134slash\\011tab fuse.lttfs rw 0 0
            /dev/sda1 / ext4 rw 0 0
            """)
        #expect(table.lttfsMountpoints == ["/mnt/with space", "/mnt/back\\slash\ttab"])
        #expect(table.isMounted("/mnt/with space") && !table.isMounted("/mnt/with\\040space"))
        #expect(table.entries.last?.type == "ext4")
    }
}
