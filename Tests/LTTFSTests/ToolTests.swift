import LTTSystem
import Foundation
import Synchronization
import Testing
import LTTTestSupport
import LTTFS
import LTTReader
import LTTFormat
import LTTMountTestSupport
import LTTRelay
import LTTTrace

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func temporaryPath(_ tag: String) -> String { NSTemporaryDirectory() + "lttfs-\(tag)-" + UUID().uuidString }

/// Waits (bounded) for a child process started with `Process`.
func waitExit(_ p: Process, seconds: Double = 60) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return false }
    return true
}

func spawn(_ arguments: [String]) throws -> (Process, Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: arguments[0])
    p.arguments = Array(arguments.dropFirst())
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    return (p, err)
}

@Suite("The lttfs commands, end to end")
struct ToolTests {
    @Test("lttfs consume writes exactly the bytes lttd-conform writes for the same trace, and dump --check passes")
    func consumeMatchesRelayProbe() throws {
        // Two twin traces, byte for byte: a hand-moved clock, a fixed wall
        // clock, one CPU, and every event recorded into both.
        let clock = Locked<UInt64>(1_000_000_000)
        let tracer = Tracer(cpuCount: 1, clock: { clock.withLock { $0 } }, wallClock: { (1_700_000_000, 250_000) })
        let m = try TestMount(tracer: tracer)
        defer { m.close() }
        let marker = try tracer.marker("app", "item", "seq %lu label %s", as: (UInt64, String).self)
        for name in ["twin_a", "twin_b"] {
            #expect(writeControl(m.ltt + "/setup_trace", name + "\n") == 0)
            // Room for the whole burst: no loss, whatever the consumers' pace.
            #expect(writeControl(m.ltt + "/control/\(name)/channel/app/subbuf_size", "8192\n") == 0)
            #expect(writeControl(m.ltt + "/control/\(name)/channel/app/subbuf_num", "32\n") == 0)
            #expect(writeControl(m.ltt + "/control/\(name)/alloc", "1\n") == 0)
        }
        let outA = temporaryPath("consume"), outB = temporaryPath("probe")
        defer { try? FileManager.default.removeItem(atPath: outA); try? FileManager.default.removeItem(atPath: outB) }
        let (consume, consumeErr) = try spawn([lttfsBinary, "consume", "-n", "2", "-c", m.ltt + "/twin_a", "-t", outA])
        let probe = try ConformanceConsumer(m.ltt + "/twin_b", into: outB)
        // Every file open before recording: a reader's open of metadata_0
        // hands it the declarations so far (a switch), which must fall at
        // the same point of both traces.
        for file in ["app_0", "metadata_0", "userspace_0"] {
            #expect(waitForOpen(consume.processIdentifier, m.ltt + "/twin_a/" + file))
        }
        for name in ["twin_a", "twin_b"] { #expect(writeControl(m.ltt + "/control/\(name)/enabled", "1\n") == 0) }
        for i in 0..<3000 {
            clock.withLock { $0 += 1000 + UInt64(i % 7) }
            marker.record(UInt64(i), "label number \(i % 13)")
        }
        for name in ["twin_a", "twin_b"] {
            #expect(writeControl(m.ltt + "/control/\(name)/enabled", "0\n") == 0)
            #expect(writeControl(m.ltt + "/destroy_trace", name + "\n") == 0)
        }
        #expect(waitExit(consume))
        let probed = probe.finish()
        #expect(consume.terminationStatus == 0, "\(String(decoding: consumeErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        #expect(probed.status == 0, "\(probed.output)\(probed.error)")
        let files = try FileManager.default.contentsOfDirectory(atPath: outA).sorted()
        #expect(files == ["app_0", "metadata_0", "userspace_0"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: outB).sorted() == files)
        for file in files {
            let a = FileManager.default.contents(atPath: outA + "/" + file)
            let b = FileManager.default.contents(atPath: outB + "/" + file)
            #expect(a != nil && a == b, "\(file) differs: \(a?.count ?? -1) vs \(b?.count ?? -1) bytes")
        }
        let check = run([lttfsBinary, "dump", "--check", outA])
        #expect(check.status == 0 && check.output.hasPrefix("OK:") && check.output.contains("3000 events"), "\(check.output)\(check.error)")
        let json = run([lttfsBinary, "dump", "--json", "--marker", "item", outA])
        #expect(json.output.split(separator: "\n").count == 3000)
        #expect(json.output.hasPrefix("{\"channel\":\"app\""))
        let filtered = run([lttfsBinary, "dump", "--channel", "metadata", outA])
        #expect(filtered.output.contains("metadata.core_marker_id") && !filtered.output.contains("app.item"))
    }

    @Test("lttfs consume --format ctf drains a live trace to CTF: babeltrace2 reads every event, the same as lttfs convert of its LTT twin")
    func consumeCTF() throws {
        // Twin traces get the same events: one drained to LTT, one to CTF.
        let babeltrace = "/usr/bin/babeltrace2"
        let clock = Locked<UInt64>(1_000_000_000)
        let tracer = Tracer(cpuCount: 2, clock: { clock.withLock { $0 } }, wallClock: { (1_700_000_000, 250_000) })
        let m = try TestMount(tracer: tracer)
        defer { m.close() }
        let marker = try tracer.marker("app", "item", "seq %lu label %s cpu %u", as: (UInt64, String, UInt32).self)
        for name in ["twin_ltt", "twin_ctf"] {
            #expect(writeControl(m.ltt + "/setup_trace", name + "\n") == 0)
            #expect(writeControl(m.ltt + "/control/\(name)/channel/app/subbuf_size", "8192\n") == 0)
            #expect(writeControl(m.ltt + "/control/\(name)/channel/app/subbuf_num", "32\n") == 0)
            #expect(writeControl(m.ltt + "/control/\(name)/alloc", "1\n") == 0)
        }
        let ltt = temporaryPath("twin-ltt"), ctf = temporaryPath("twin-ctf"), converted = temporaryPath("converted")
        defer { for p in [ltt, ctf, converted] { try? FileManager.default.removeItem(atPath: p) } }
        let (a, aErr) = try spawn([lttfsBinary, "consume", "-c", m.ltt + "/twin_ltt", "-t", ltt])
        let (b, bErr) = try spawn([lttfsBinary, "consume", "--format", "ctf", "--hostname", "hostB", "-n", "2",
                                   "-c", m.ltt + "/twin_ctf", "-t", ctf])
        #expect(waitForOpen(a.processIdentifier, m.ltt + "/twin_ltt/app_1"))
        #expect(waitForOpen(b.processIdentifier, m.ltt + "/twin_ctf/app_1"))
        for name in ["twin_ltt", "twin_ctf"] { #expect(writeControl(m.ltt + "/control/\(name)/enabled", "1\n") == 0) }
        for cpu in 0..<2 {
            #expect(onCPU(cpu) {
                for i in 0..<1500 {
                    clock.withLock { $0 += 1000 + UInt64(i % 7) }
                    marker.record(UInt64(i), "label \"\(i % 13)\"", UInt32(cpu))
                }
            })
        }
        let lines = (0..<300).map { "shell line \($0)\n" }.joined()
        #expect(writeControl(m.ltt + "/write_event", lines) == 0)
        for name in ["twin_ltt", "twin_ctf"] {
            #expect(writeControl(m.ltt + "/control/\(name)/enabled", "0\n") == 0)
            #expect(writeControl(m.ltt + "/destroy_trace", name + "\n") == 0)
        }
        #expect(waitExit(a) && waitExit(b))
        let bError = String(decoding: bErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(a.terminationStatus == 0, "\(String(decoding: aErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        #expect(b.terminationStatus == 0 && bError.contains("ctf: 3300 events in ") && bError.contains(", 0 problems"), "\(bError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: ctf).sorted()
                == ["app_0", "app_1", "metadata", "userspace_0", "userspace_1"])

        // lttfs reads the CTF as it reads the LTT twin.
        let dumpLTT = run([lttfsBinary, "dump", ltt]), dumpCTF = run([lttfsBinary, "dump", ctf])
        #expect(dumpLTT.status == 0 && dumpCTF.status == 0, "\(dumpCTF.error)")
        #expect(dumpLTT.output.split(separator: "\n").count == 3300)
        #expect(dumpCTF.output == dumpLTT.output)
        #expect(run([lttfsBinary, "convert", "--hostname", "hostB", ltt, converted]).status == 0)
        #expect(run([lttfsBinary, "dump", converted]).output == dumpLTT.output)

        // babeltrace2 reads both CTF traces alike, every event once.
        guard FileManager.default.isExecutableFile(atPath: babeltrace) else { return }
        let live = run([babeltrace, "--clock-seconds", "--no-delta", ctf])
        let offline = run([babeltrace, "--clock-seconds", "--no-delta", converted])
        #expect(live.status == 0 && live.error.isEmpty, "\(live.error.prefix(800))")
        let liveLines = live.output.split(separator: "\n")
        #expect(liveLines.count == 3300)
        #expect(live.output == offline.output)
        #expect(liveLines.filter { $0.contains(" hostB userspace.event: ") && $0.contains("string = \"shell line ") }.count == 300)
        #expect(liveLines.contains { $0.contains("app.item: { cpu_id = 1 }, { seq = 1499, label = \"label \\\"4\\\"\", cpu = 1 }") })
    }

    @Test("lttfs convert reports a damaged trace's problems (exit 1) and converts the rest, the lost sub-buffer a missing packet; consume --format ctf refuses -a")
    func convertDamaged() throws {
        let out = temporaryPath("damaged-ltt"), ctf = temporaryPath("damaged-ctf")
        defer { for p in [out, ctf] { try? FileManager.default.removeItem(atPath: p) } }
        let lines = 400
        try withMount(cpuCount: 1) { m in
            startTrace(m, "dmg", subbufSize: 4096, subbufNum: 64)
            let refused = run([lttfsBinary, "consume", "--format", "ctf", "-a", "-c", m.ltt + "/dmg", "-t", ctf])
            #expect(refused.status != 0 && refused.error.contains("cannot be appended"), "\(refused.error)")
            let hostOnly = run([lttfsBinary, "consume", "--hostname", "h", "-c", m.ltt + "/dmg", "-t", ctf])
            #expect(hostOnly.status != 0 && hostOnly.error.contains("--format ctf"), "\(hostOnly.error)")
            let (consumer, _) = try spawn([lttfsBinary, "consume", "-q", "-c", m.ltt + "/dmg", "-t", out])
            #expect(waitForOpen(consumer.processIdentifier, m.ltt + "/dmg/userspace_0"))
            for i in 0..<lines { #expect(writeControl(m.ltt + "/write_event", "line \(i) of forty-odd bytes, padded out\n") == 0) }
            #expect(writeControl(m.ltt + "/destroy_trace", "dmg\n") == 0)
            #expect(waitExit(consumer))
        }
        let size = (try FileManager.default.attributesOfItem(atPath: out + "/userspace_0")[.size] as? NSNumber)?.intValue ?? 0
        #expect(size >= 3 * 4096, "several sub-buffers: \(size) bytes")
        // Damage the magic of the second sub-buffer.
        let handle = try #require(FileHandle(forWritingAtPath: out + "/userspace_0"))
        try handle.seek(toOffset: 4096 + 16)
        handle.write(Data([0xEF, 0xBE, 0xAD, 0xDE]))
        try handle.close()
        let lttLines = run([lttfsBinary, "dump", out]).output.split(separator: "\n")
        #expect(lttLines.count > 0 && lttLines.count < lines)
        let r = run([lttfsBinary, "convert", out, ctf])
        #expect(r.status == 1, "\(r.error)")
        #expect(r.error.contains("problem: userspace_0 sub-buffer 1 offset 4112: bad magic"), "\(r.error)")
        #expect(run([lttfsBinary, "dump", ctf]).output.split(separator: "\n") == lttLines)
        let check = run([lttfsBinary, "dump", "--check", ctf])
        #expect(check.status == 1 && check.error.contains("1 packet(s) missing before this one"), "\(check.error)")
        let again = run([lttfsBinary, "convert", out, ctf])
        #expect(again.status != 0 && again.error.contains("not empty"), "\(again.error)")
    }

    @Test("lttfs ctl: create with options, start with a consumer, pause, destroy; and its refusals")
    func ctl() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let out = temporaryPath("ctl")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let create = run([lttfsBinary, "ctl", "--mount", server.path, "-C", "-w", out,
                          "-o", "channel.all.bufnum=4", "-o", "channel.userspace.bufsize=5000", "t"])
        #expect(create.status == 0, "\(create.error)")
        #expect(readControl(server.ltt + "/control/t/channel/userspace/subbuf_size") == "8192\n")
        #expect(readControl(server.ltt + "/control/t/channel/metadata/subbuf_num") == "4\n")
        #expect(readControl(server.ltt + "/control/t/enabled") == "1\n")
        // ctl returns once its consumer reads every buffer: a destroy right
        // after cannot take the trace from under it.
        let readers = readControl(server.ltt + "/control/t/stats") ?? ""
        for buffer in ["metadata_0", "userspace_0", "metadata_1", "userspace_1"] where readers.contains(buffer) {
            #expect((statsRow(readers, buffer)?["reader"] ?? 0) != 0, "\(buffer) has no reader when ctl returns: \(readers)")
        }
        #expect(statsRow(readers, "userspace_0") != nil)
        for i in 0..<100 { #expect(writeControl(server.ltt + "/write_event", "ctl \(i)\n") == 0) }
        let stat = run([lttfsBinary, "stat", "--mount", server.path, "t"])
        #expect(stat.status == 0 && stat.output.contains("userspace_0") && stat.output.contains("100"))
        let pause = run([lttfsBinary, "ctl", "--mount", server.path, "-p", "t"])
        #expect(pause.status == 0 && readControl(server.ltt + "/control/t/enabled") == "0\n")
        let destroy = run([lttfsBinary, "ctl", "--mount", server.path, "-D", "t"])
        #expect(destroy.status == 0)
        #expect(waitForDecodedLines(out, expected: 100).count == 100)
        // Refusals: one line, non-zero.
        let twice = run([lttfsBinary, "ctl", "--mount", server.path, "-c", "t2"])
        #expect(twice.status == 0)
        let again = run([lttfsBinary, "ctl", "--mount", server.path, "-c", "t2"])
        #expect(again.status == 1 && again.error.contains("File exists") && again.error.split(separator: "\n").count == 1)
        let missing = run([lttfsBinary, "ctl", "--mount", server.path, "-s", "nope"])
        #expect(missing.status == 1 && missing.error.contains("No such file"))
        let badOption = run([lttfsBinary, "ctl", "--mount", server.path, "-c", "-o", "channel.x.colour=red", "t3"])
        #expect(badOption.status != 0 && badOption.error.contains("options are"))
        #expect(readControl(server.ltt + "/control/t3/enabled") == nil)   // nothing half-made
        let two = run([lttfsBinary, "ctl", "--mount", server.path, "-c", "-s", "t4"])
        #expect(two.status != 0 && two.error.contains("exactly one"))
        let noStat = run([lttfsBinary, "stat", "--mount", server.path, "nope"])
        #expect(noStat.status == 1 && noStat.error.contains("no trace named nope"))
    }

    @Test("lttfs consume's summary gives the events lost that the sub-buffer headers carry")
    func consumeCountsLostEvents() throws {
        try withMount(cpuCount: 1) { m in
            // Two 4 KiB sub-buffers, nobody reading yet: most of the burst is lost.
            startTrace(m, "lossy", subbufSize: 4096, subbufNum: 2)
            let marker = try m.tracer.marker("userspace", "burst", "seq %u", as: UInt32.self)
            for i in 0..<5000 { marker.record(UInt32(i)) }
            let lost = statsRow(readControl(m.ltt + "/control/lossy/stats") ?? "", "userspace_0")?["lost"] ?? 0
            #expect(lost > 3000)
            let out = temporaryPath("lossy")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let (consumer, err) = try spawn([lttfsBinary, "consume", "-c", m.ltt + "/lossy", "-t", out])
            #expect(waitForOpen(consumer.processIdentifier, m.ltt + "/lossy/userspace_0"))
            #expect(writeControl(m.ltt + "/control/lossy/enabled", "0\n") == 0)
            #expect(writeControl(m.ltt + "/destroy_trace", "lossy\n") == 0)
            #expect(waitExit(consumer))
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(consumer.terminationStatus == 0, "\(log)")
            #expect(log.contains(" \(lost) events lost,"), "\(log)")
        }
    }

    @Test("lttfs consume: refuses a busy buffer, an existing output, a non-trace; SIGINT stops it with what it read on disk")
    func consumeErrorsAndSigint() throws {
        try withMount(cpuCount: 1) { m in
            startTrace(m, "c")
            let out = temporaryPath("sigint")
            defer { try? FileManager.default.removeItem(atPath: out) }
            let notTrace = run([lttfsBinary, "consume", "-c", m.ltt + "/control", "-t", out])
            #expect(notTrace.status == 1 && notTrace.error.contains(m.ltt + "/control")
                    && notTrace.error.split(separator: "\n").count == 1, "\(notTrace.error)")
            try? FileManager.default.removeItem(atPath: out)
            let (consumer, err) = try spawn([lttfsBinary, "consume", "-c", m.ltt + "/c", "-t", out])
            #expect(waitForOpen(consumer.processIdentifier, m.ltt + "/c/userspace_0"))
            let busy = run([lttfsBinary, "consume", "-c", m.ltt + "/c", "-t", out + "-2"])
            #expect(busy.status == 1 && busy.error.contains("another consumer"))
            try? FileManager.default.removeItem(atPath: out + "-2")
            let exists = run([lttfsBinary, "consume", "-c", m.ltt + "/c", "-t", out])
            #expect(exists.status == 1 && exists.error.contains("exists"))
            for i in 0..<20 { #expect(writeControl(m.ltt + "/write_event", "before sigint \(i)\n") == 0) }
            try m.tracer.flush("c")
            #expect(waitForStat(m.ltt, "c", "userspace_0", "consumed", 1))
            kill(consumer.processIdentifier, SIGINT)
            #expect(waitExit(consumer, seconds: 10))
            #expect(consumer.terminationStatus == 0)
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(log.contains("stopped"))
            let data = FileManager.default.contents(atPath: out + "/userspace_0") ?? Data()
            #expect(data.count == 4096 && String(decoding: data, as: UTF8.self).contains("before sigint 19"))
        }
    }

    @Test("lttfs umount and the mount scripts recover a mount whose server died")
    func staleMountRecovery() throws {
        for tool in ["lttfs umount", "lttfs-umount.sh", "lttfs-mount.sh"] {
            let server = try ServerProcess()
            defer { server.stop() }
            kill(server.process.processIdentifier, SIGKILL)
            server.process.waitUntilExit()
            #expect(isMounted(server.path))
            switch tool {
            case "lttfs umount":
                #expect(run([lttfsBinary, "umount", server.path]).status == 0)
                #expect(!isMounted(server.path))
            case "lttfs-umount.sh":
                let r = run(["bash", repositoryRoot + "/mount-scripts/lttfs-umount.sh", server.path])
                #expect(r.status == 0 && r.error.contains("stale"))
                #expect(!isMounted(server.path))
            default:
                // Mounting again over the dead mount recovers it first.
                let r = run(["bash", repositoryRoot + "/mount-scripts/lttfs-mount.sh", server.path, "--cpus", "1"],
                            environment: ["LTTFS": lttfsBinary])
                #expect(r.status == 0, "\(r.error)")
                #expect(isMounted(server.path) && FileManager.default.fileExists(atPath: server.path + "/ltt/setup_trace"))
                #expect(run([lttfsBinary, "umount", server.path]).status == 0)
                #expect(!isMounted(server.path))
            }
        }
    }

    @Test("lttfs-umount.sh stops a live server through lttfs umount (SIGTERM: its consumers drain first), not by ending the session under it")
    func umountScriptStopsTheServer() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let r = run(["bash", repositoryRoot + "/mount-scripts/lttfs-umount.sh", server.path], environment: ["LTTFS": lttfsBinary])
        #expect(r.status == 0, "\(r.error)")
        #expect(!isMounted(server.path))
        #expect(waitExit(server.process, seconds: 10))
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("signal 15: stopping"), "\(log)")
    }

    @Test("the mount(8) helper mounts with options, the way mount -t fuse.lttfs calls it")
    func mountHelper() throws {
        let dir = makeMountPoint()
        defer { forceUnmount(dir); try? FileManager.default.removeItem(atPath: dir) }
        let r = run(["sh", repositoryRoot + "/mount-scripts/mount.fuse.lttfs", "lttfs", dir, "-o", "rw,nosuid,nodev"],
                    environment: ["LTTFS": lttfsBinary])
        #expect(r.status == 0, "\(r.error)")
        #expect(isMounted(dir))
        #expect(writeControl(dir + "/ltt/setup_trace", "helper\n") == 0)
        #expect(run([lttfsBinary, "umount", dir]).status == 0)
        #expect(!isMounted(dir))
    }

    @Test("lttfs mount --clock: auto, tsc (where the kernel trusts the TSC) and monotonic mount and say which; anything else is refused")
    func mountClock() throws {
        let bad = run([lttfsBinary, "mount", "-f", "--clock", "sundial", "/tmp"], timeout: 20)
        #expect(bad.status == 1 && bad.error.contains("choose auto, tsc or monotonic"))
        let tsc = TraceClock.calibratedTSC() != nil
        var choices: [(String, String)] = [("monotonic", "trace clock: monotonic at 1000000000 Hz"),
                                           ("auto", tsc ? "trace clock: tsc at" : "trace clock: monotonic at")]
        if tsc { choices.append(("tsc", "trace clock: tsc at")) }
        for (choice, said) in choices {
            let server = try ServerProcess(arguments: ["--cpus", "1", "--clock", choice])
            defer { server.stop() }
            #expect(writeControl(server.ltt + "/setup_trace", "c\n") == 0)
            #expect(writeControl(server.ltt + "/control/c/alloc", "1\n") == 0)
            let fd = try BufferFD(server.ltt + "/c/metadata_0")
            _ = fd
            server.stop()
            let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(log.contains(said), "--clock \(choice): \(log)")
        }
    }

    @Test("every command has --help with an example")
    func help() {
        for command in [[], ["mount"], ["umount"], ["ctl"], ["consume"], ["dump"], ["convert"], ["stat"], ["subbuf"],
                        ["subbuf", "get"], ["subbuf", "put"], ["subbuf", "info"]] {
            let r = run([lttfsBinary] + command + ["--help"])
            #expect(r.status == 0 && r.output.contains("Example"), "lttfs \(command.joined(separator: " ")) --help")
        }
    }

    @Test("install.sh puts the binary, the mount helper and a systemd unit where it is told; the helper mounts")
    func install() throws {
        let root = temporaryPath("install")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/units", withIntermediateDirectories: true)
        let r = run(["bash", repositoryRoot + "/mount-scripts/install.sh", "--prefix", root + "/usr",
                     "--helper-dir", root + "/sbin", "--systemd-dir", root + "/units", "--mountpoint", "/mnt/ltt-test",
                     "--binary", lttfsBinary, "--group", "tracing"], timeout: 60)
        #expect(r.status == 0, "\(r.output)\(r.error)")
        #expect(FileManager.default.isExecutableFile(atPath: root + "/usr/bin/lttfs"))
        let unit = (try? String(contentsOfFile: root + "/units/lttfs.service", encoding: .utf8)) ?? ""
        #expect(unit.contains("ExecStart=\(root)/usr/bin/lttfs mount -f -o allow_other --group tracing /mnt/ltt-test"))
        let helper = (try? String(contentsOfFile: root + "/sbin/mount.fuse.lttfs", encoding: .utf8)) ?? ""
        #expect(helper.contains(root + "/usr/bin/lttfs"))
        // The installed helper mounts with the installed binary.
        let dir = makeMountPoint()
        defer { forceUnmount(dir); try? FileManager.default.removeItem(atPath: dir) }
        #expect(run(["sh", root + "/sbin/mount.fuse.lttfs", "lttfs", dir, "-o", "rw,gid=65534"], environment: ["LTTFS": ""]).status == 0)
        #expect(isMounted(dir))
        var st = stat()
        #expect(stat(dir + "/ltt/setup_trace", &st) == 0 && st.st_gid == 65534)   // -o gid= names the tracing group
        #expect(run([root + "/usr/bin/lttfs", "umount", dir]).status == 0)
        #expect(!isMounted(dir))
    }

    @Test("lttfs dump --check exits 1 and names the problem on a damaged trace")
    func dumpCheckFails() throws {
        let out = temporaryPath("damaged")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try withMount(cpuCount: 1) { m in
            startTrace(m, "dmg")
            for i in 0..<10 { #expect(writeControl(m.ltt + "/write_event", "line \(i)\n") == 0) }
            let (consumer, _) = try spawn([lttfsBinary, "consume", "-q", "-c", m.ltt + "/dmg", "-t", out])
            #expect(waitForOpen(consumer.processIdentifier, m.ltt + "/dmg/userspace_0"))
            #expect(writeControl(m.ltt + "/destroy_trace", "dmg\n") == 0)
            #expect(waitExit(consumer))
        }
        #expect(run([lttfsBinary, "dump", "--check", out]).status == 0)
        // Damage the magic of the userspace file's first sub-buffer.
        let handle = try #require(FileHandle(forWritingAtPath: out + "/userspace_0"))
        try handle.seek(toOffset: 16)
        handle.write(Data([0xEF, 0xBE, 0xAD, 0xDE]))
        try handle.close()
        let r = run([lttfsBinary, "dump", "--check", out])
        #expect(r.status == 1 && r.output.hasPrefix("FAIL"))
        #expect(r.error.contains("userspace_0 sub-buffer 0 offset 16") && r.error.contains("bad magic"), "\(r.error)")
    }
}
