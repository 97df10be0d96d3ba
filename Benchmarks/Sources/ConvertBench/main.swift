// ConvertBench WORK_DIR [EVENTS]
//
// `lttfs convert` throughput (LTT 2.3 trace directory -> CTF 1.8), in one
// run, side by side:
//   - an LTT trace of EVENTS events (default 2,000,000) recorded in-process
//     with LTTTrace (3 channels x 2 CPUs, integers of 1, 2, 4 and 8 bytes,
//     one in network byte order, strings), drained while it records by a
//     thread doing what a consumer does (GET, copy, PUT) into WORK_DIR,
//     and checked once by TraceReader (every event there, none lost);
//   - TraceConversion.convert (what `lttfs convert` runs), 3 rounds, each
//     into a fresh directory, the median printed;
//   - cp -r of the same input, 3 rounds (the disk's peer);
//   - the same conversion streamed to an lttng-relayd on loopback (what
//     `lttfs convert --relayd` and `lttfs consume --relayd` send), 3 rounds,
//     each a new session, next to the local directory's rate (skipped if
//     lttng-relayd is not installed);
//   - babeltrace2 on the converted trace, text to /dev/null and with the
//     dummy sink (no formatting), 1 round each, and its counter sink once
//     (not timed) to check that it reads every event.
// The input is read (by the check) before anything is timed. MB is 10^6
// bytes; MB/s is input bytes per second. Everything goes under WORK_DIR,
// which convert.sh creates and removes.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTCTF
import LTTFormat
import LTTReader
import LTTRelay
import LTTRelayd
import LTTSystem
import LTTTrace
import Synchronization

let cpus = 2
let traceName = "convbench"

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = now()
    try body()
    return Double(now() - t0) / 1e9
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// Bytes of the regular files under `path`.
func directoryBytes(_ path: String) -> Int {
    guard let walk = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total = 0
    for case let name as String in walk {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
        if attributes?[.type] as? FileAttributeType == .typeRegular {
            total += (attributes?[.size] as? NSNumber)?.intValue ?? 0
        }
    }
    return total
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ConvertBench: \(message)\n".utf8))
    exit(1)
}

/// Pins the calling thread to one CPU (false if that fails). glibc
/// declares sched_setaffinity only under _GNU_SOURCE, which Swift's Glibc
/// module does not define: found by name.
func pin(toCPU cpu: Int) -> Bool {
    typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    guard cpu < 64, let symbol = dlsym(nil, "sched_setaffinity") else { return false }   // nil: RTLD_DEFAULT
    let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { $0.storeBytes(of: UInt64(1) << UInt64(cpu), as: UInt64.self) }
    return withUnsafeBytes(of: &set) { setAffinity(0, $0.count, $0.baseAddress!) } == 0
}

/// Runs a program, stdout and stderr to files; its exit status and seconds.
func run(_ program: String, _ arguments: [String], stdout: String, stderr: String) -> (status: Int32, seconds: Double) {
    /// open(2), not FileManager.createFile: that one writes a new file and
    /// renames it over the path (it would replace /dev/null).
    func output(_ path: String) -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { fail("cannot open \(path): errno \(errno)") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    process.standardOutput = output(stdout)
    process.standardError = output(stderr)
    var status: Int32 = -1
    let s = seconds {
        do { try process.run() } catch { fail("cannot run \(program): \(error)") }
        process.waitUntilExit()
        status = process.terminationStatus
    }
    return (status, s)
}

/// The text of a file, "" if none.
func contents(_ path: String) -> String {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
}

// MARK: The trace

/// The consumer's side: every buffer file of the trace, drained into one
/// file per buffer (GET, write the sub-buffer, PUT), by a thread while the
/// producers record, then to the hang-up once the trace is destroyed.
final class Drainer: @unchecked Sendable {
    let buffers: [(buffer: RelayBuffer, fd: Int32)]
    let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(_ trace: Trace, into directory: String) {
        buffers = trace.bufferFiles.map { file in
            let fd = open(directory + "/" + file.name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { fail("cannot create \(directory)/\(file.name): errno \(errno)") }
            return (file.buffer, fd)
        }
    }

    /// Takes every complete sub-buffer there is; how many it took.
    func pass() -> Int {
        var taken = 0
        for (buffer, fd) in buffers {
            while case .success(let cookie) = buffer.getSubbuffer() {
                let size = Int(buffer.geometry.subbufferSize)
                var written = 0
                for region in buffer.readableRegions(at: 0, maxLength: size) {
                    var done = 0
                    while done < region.count {
                        let n = write(fd, region.baseAddress! + done, region.count - done)
                        if n <= 0 { fail("write: errno \(errno)") }
                        done += n
                    }
                    written += region.count
                }
                if written != size { fail("a sub-buffer read back \(written) of \(size) bytes") }
                do { try buffer.putSubbuffer(cookie: cookie) } catch { fail("PUT: \(error)") }
                taken += 1
            }
        }
        return taken
    }

    func start() {
        Thread {
            while !self.stopping.load(ordering: .acquiring) {
                if self.pass() == 0 { usleep(100) }
            }
            self.done.signal()
        }.start()
    }

    /// After destroy: stops the thread, drains the rest to the hang-up.
    func finish() {
        stopping.store(true, ordering: .releasing)
        done.wait()
        for _ in 0..<1_000_000 where buffers.contains(where: { $0.buffer.pollState != .hungUp }) {
            if pass() == 0 { usleep(100) }
        }
        if buffers.contains(where: { $0.buffer.pollState != .hungUp }) { fail("a buffer never hung up") }
        for (_, fd) in buffers { close(fd) }
    }
}

/// Records `events` events, spread over the markers and over two threads
/// (one pinned to each CPU), into a trace drained into `directory`.
func recordTrace(events: Int, into directory: String) throws -> (seconds: Double, pinned: Bool) {
    let tracer = Tracer(cpuCount: cpus)
    // Three data channels; integers of 1, 2, 4 and 8 bytes, signed and
    // unsigned, decimal and hex, one in network byte order; strings.
    let rx = try tracer.marker("net", "rx", "len %u port %hu proto %hhu addr #n4u%u",
                               as: (UInt32, UInt16, UInt8, UInt32).self)
    let tx = try tracer.marker("net", "tx", "len %u queue %hd flags %x", as: (UInt32, Int16, UInt32).self)
    let sw = try tracer.marker("sched", "switch", "prev_pid %d next_pid %d prev_prio %hd next_comm %s",
                               as: (Int32, Int32, Int16, String).self)
    let request = try tracer.marker("app", "request", "id %llu latency_ns %ld status %hu path %s",
                                    as: (UInt64, Int, UInt16, String).self)
    let log = try tracer.marker("app", "log", "level %c seq %lld msg %s", as: (UInt8, Int64, String).self)
    let comms = ["swapper/0", "kworker/1:2", "bash", "systemd-journal", "sshd", "swift-frontend", "cc1", "ld"]
    let paths = (0..<16).map { "/api/v\($0 % 3)/users/\(1000 + $0 * 37)/" + String(repeating: "items/", count: $0 % 5) }
    let messages = (0..<16).map { "message \($0): " + String(repeating: "lorem ipsum ", count: 1 + $0 % 8) }

    try tracer.setupTrace(traceName)
    for channel in ["net", "sched", "app"] {
        try tracer.updateChannel(trace: traceName, channel: channel) {
            $0.subbufferSize = 256 * 1024
            $0.subbufferCount = 16
            // A full buffer makes the producer wait for the drainer: nothing
            // is lost while it keeps up (checked after).
            $0.blockingTimeoutMillis = 10_000
        }
    }
    try tracer.allocTrace(traceName)
    guard let allocated = tracer.trace(traceName) else { fail("no trace after alloc") }
    let drainer = Drainer(allocated, into: directory)
    drainer.start()
    try tracer.startTrace(traceName)

    let pinned = Atomic<Int>(0)
    let finished = DispatchSemaphore(value: 0)
    let t = seconds {
        for cpu in 0..<cpus {
            let range = (events * cpu / cpus)..<(events * (cpu + 1) / cpus)
            Thread {
                if pin(toCPU: cpu) { pinned.add(1, ordering: .relaxed) }
                for i in range {
                    let n = UInt32(truncatingIfNeeded: i)
                    switch i & 7 {
                    case 0, 1, 2: rx.record(64 + n % 1400, UInt16(truncatingIfNeeded: 1024 + i % 50000),
                                            UInt8(i % 3 == 0 ? 6 : 17), 0xC0A8_0000 | (n & 0xFFFF))
                    case 3: tx.record(64 + n % 9000, Int16(truncatingIfNeeded: i % 8), n & 0x0F0F)
                    case 4, 5: sw.record(Int32(truncatingIfNeeded: i % 32768), Int32(truncatingIfNeeded: (i + 7) % 32768),
                                         Int16(i % 140) - 20, comms[i % comms.count])
                    case 6: request.record(UInt64(i), i % 1_000_000 * 1000, UInt16(i % 13 == 0 ? 500 : 200),
                                           paths[i % paths.count])
                    default: log.record(UInt8(ascii: "A") + UInt8(i % 5), Int64(i), messages[i % messages.count])
                    }
                }
                finished.signal()
            }.start()
        }
        for _ in 0..<cpus { finished.wait() }
    }
    try tracer.stopTrace(traceName)
    _ = try tracer.destroyTrace(traceName)
    drainer.finish()
    return (t, pinned.load(ordering: .relaxed) == cpus)
}

// MARK: Streaming

/// An lttng-relayd on loopback (free ports found by trying), output under
/// `work`; nil if it is not installed or does not start.
final class RelayDaemon {
    let pid: pid_t
    let address: RelaydSession.Address
    let output: String

    init?(work: String) {
        let path = "/usr/bin/lttng-relayd"
        guard FileManager.default.isExecutableFile(atPath: path) else { return nil }
        output = work + "/relayd"
        for _ in 0..<8 {
            let base = UInt16.random(in: 20_000...60_000)
            guard let pid = try? ProcessControl.spawn("/bin/sh", arguments: ["sh", "-c",
                "exec \(path) -o \(output) -C tcp://127.0.0.1:\(base) -D tcp://127.0.0.1:\(base + 1) -L tcp://127.0.0.1:\(base + 2) >/dev/null 2>&1"])
            else { return nil }
            for _ in 0..<1000 {
                if ProcessControl.exitStatus(of: pid, wait: false) != nil { break }
                if (try? TCPConnection.connect(host: "127.0.0.1", port: base + 2)) != nil {
                    self.pid = pid
                    address = RelaydSession.Address(host: "127.0.0.1", controlPort: base, dataPort: base + 1)
                    return
                }
                usleep(10_000)
            }
            try? ProcessControl.send(SIGKILL, to: pid)
            _ = ProcessControl.exitStatus(of: pid, wait: true)
        }
        return nil
    }

    deinit {
        try? ProcessControl.send(SIGTERM, to: pid)
        _ = ProcessControl.exitStatus(of: pid, wait: true)
    }
}

/// The conversion sent to a relay daemon, 3 rounds: its MB/s (input bytes),
/// nil if skipped. Each round must send every event, the daemon confirming
/// every packet, nothing kept locally.
func streamToRelayd(input: String, work: String, events: Int, bytes: Int) throws -> Double? {
    guard let relayd = RelayDaemon(work: work) else {
        print("lttng-relayd: not installed or did not start, streaming skipped")
        return nil
    }
    var times: [Double] = []
    for round in 1...3 {
        let options = RelaydOptions(address: relayd.address, sessionName: "bench\(round)", hostname: "benchhost",
                                    liveTimerMilliseconds: 0)
        var destination: RelaydDestination?
        var summary: CTFTraceWriter.Summary?
        times.append(try seconds {
            summary = try TraceConversion.convert(traceDirectory: input) { (name, _, files) throws(CTFError) in
                let opened = try RelaydDestination.open(options, traceName: name, buffers: files.map { ($0.channel, $0.cpu) },
                                                        metadataChannel: Metadata.channel, fallbackDirectory: work + "/fallback")
                destination = opened.destination
                return opened.writer
            }
        })
        guard let summary, let report = destination?.report else { fail("no conversion to lttng-relayd") }
        guard summary.events == events, report.failure == nil, report.packetsKeptLocally == 0,
              report.packetsConfirmed == report.packetsSent else {
            fail("streaming round \(round): \(summary.events) of \(events) events, \(report)")
        }
    }
    let received = directoryBytes(relayd.output) / 3
    let s = median(times)
    print(String(format: "to lttng-relayd     %6.2f s %6.0f MB/s %6.2f M events/s   (median of %@; loopback, %.1f MB received per round)",
                 s, Double(bytes) / 1e6 / s, Double(events) / s / 1e6, times.map { String(format: "%.2f", $0) }.joined(separator: " "),
                 Double(received) / 1e6))
    return Double(bytes) / 1e6 / s
}

// MARK: The benchmark

func runBenchmark() throws {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2, arguments.count <= 3 else {
        print("usage: ConvertBench WORK_DIR [EVENTS]")
        exit(2)
    }
    let work = arguments[1]
    let events = arguments.count > 2 ? (Int(arguments[2]) ?? 0) : 2_000_000
    if events < 1 { fail("EVENTS must be a positive number") }
    let input = work + "/" + traceName
    try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)

    let (recordSeconds, pinned) = try recordTrace(events: events, into: input)
    let inputBytes = directoryBytes(input)

    // The check, which also reads the input before anything is timed.
    let check = TraceReader().read(directory: input)
    var perCPU = [Int](repeating: 0, count: cpus)
    var channels = Set<String>()
    for event in check.events where event.channel != Metadata.channel {
        perCPU[event.cpu] += 1
        channels.insert(event.channel)
    }
    let read = perCPU.reduce(0, +)
    for problem in check.problems.prefix(10) { print("LTT problem: \(problem)") }
    guard read == events, check.eventsLost == 0, check.problems.isEmpty, check.corruptedSubbuffers == 0 else {
        fail("TraceReader read \(read) of \(events) events, \(check.eventsLost) lost, \(check.problems.count) problems, "
             + "\(check.corruptedSubbuffers) corrupted sub-buffers")
    }
    let mb = { (bytes: Int) in Double(bytes) / 1e6 }
    print(String(format: "trace: %d events, %d channels x %d CPUs, %.1f MB LTT, %d sub-buffers of 256 KiB", events,
                 channels.count, cpus, mb(inputBytes), check.subbuffers))
    print(String(format: "  recorded and drained in %.2f s%@; checked by TraceReader: %@ per CPU, 0 lost, 0 problems",
                 recordSeconds, pinned ? "" : " (threads not pinned)", perCPU.map(String.init).joined(separator: " + ")))

    // lttfs convert, in-process.
    var convertTimes: [Double] = []
    var last: CTFTraceWriter.Summary?
    let ctf = work + "/ctf"
    for round in 1...3 {
        let output = work + "/ctf-\(round)"
        convertTimes.append(try seconds {
            last = try TraceConversion.convert(traceDirectory: input, to: output)
        })
        if round < 3 { try FileManager.default.removeItem(atPath: output) }
        else { try FileManager.default.moveItem(atPath: output, toPath: ctf) }
    }
    let outputBytes = directoryBytes(ctf)
    guard let summary = last else { fail("no conversion") }
    let convertSeconds = median(convertTimes)
    let rounds = convertTimes.map { String(format: "%.2f", $0) }.joined(separator: " ")
    print(String(format: "lttfs convert       %6.2f s %6.0f MB/s %6.2f M events/s   (median of %@; %.1f MB CTF)",
                 convertSeconds, mb(inputBytes) / convertSeconds, Double(events) / convertSeconds / 1e6, rounds,
                 mb(outputBytes)))

    // cp -r: the disk's peer.
    var copyTimes: [Double] = []
    for round in 1...3 {
        let copy = work + "/copy-\(round)"
        let result = run("/bin/cp", ["-r", input, copy], stdout: "/dev/null", stderr: work + "/cp.err")
        if result.status != 0 { fail("cp -r failed: \(contents(work + "/cp.err"))") }
        copyTimes.append(result.seconds)
        try FileManager.default.removeItem(atPath: copy)
    }
    let copySeconds = median(copyTimes)
    print(String(format: "cp -r (disk peer)   %6.2f s %6.0f MB/s                    (median of %@)", copySeconds,
                 mb(inputBytes) / copySeconds, copyTimes.map { String(format: "%.2f", $0) }.joined(separator: " ")))

    // Streaming to lttng-relayd on loopback: the same conversion, sent.
    if let relaydMB = try streamToRelayd(input: input, work: work, events: events, bytes: inputBytes) {
        print(String(format: "  streaming is %.2fx the local directory's rate", relaydMB / (mb(inputBytes) / convertSeconds)))
    }

    // lttfs dump (the release binary convert.sh built), LTT and CTF, to
    // /dev/null: the reader's rate next to babeltrace2's below.
    var notes: [String] = []
    if let lttfs = ProcessInfo.processInfo.environment["LTTFS_BINARY"], FileManager.default.isExecutableFile(atPath: lttfs) {
        for (label, directory) in [("LTT", input), ("CTF", ctf)] {
            let err = work + "/dump-\(label).err"
            let result = run(lttfs, ["dump", directory], stdout: "/dev/null", stderr: err)
            let status = result.status == 0 ? "" : "   (exit status \(result.status))"
            print(String(format: "lttfs dump (%@, text) %6.2f s             %6.2f M events/s%@", label, result.seconds,
                         Double(events) / result.seconds / 1e6, status))
            let text = contents(err)
            if !text.isEmpty { notes.append("lttfs dump (\(label)) stderr:\n" + text.split(separator: "\n").prefix(20).joined(separator: "\n")) }
        }
    } else {
        print("lttfs dump: no LTTFS_BINARY, skipped")
    }

    // babeltrace2 on the converted trace.
    let babeltrace = "/usr/bin/babeltrace2"
    if FileManager.default.isExecutableFile(atPath: babeltrace) {
        for (label, extra) in [("text", [String]()), ("dummy", ["-c", "sink.utils.dummy"])] {
            let err = work + "/babeltrace2-\(label).err"
            let result = run(babeltrace, extra + [ctf], stdout: "/dev/null", stderr: err)
            let status = result.status == 0 ? "" : "   (exit status \(result.status))"
            print(String(format: "babeltrace2 (%@)%@ %6.2f s             %6.2f M events/s%@", label,
                         String(repeating: " ", count: 5 - label.count), result.seconds,
                         Double(events) / result.seconds / 1e6, status))
            let text = contents(err)
            if !text.isEmpty { notes.append("babeltrace2 (\(label)) stderr:\n" + text.split(separator: "\n").prefix(20).joined(separator: "\n")) }
        }
        // Not timed: babeltrace2's own count of what it read.
        let out = work + "/babeltrace2-counter.out", err = work + "/babeltrace2-counter.err"
        let counted = run(babeltrace, ["-c", "sink.utils.counter", ctf], stdout: out, stderr: err)
        // It prints its counts every so often; the last ones are the totals.
        let eventLine = contents(out).split(separator: "\n").last { $0.hasSuffix(" Event messages") || $0.hasSuffix(" Event message") }
        let countText = eventLine.map { $0.trimmingCharacters(in: .whitespaces) } ?? "no count (exit status \(counted.status))"
        let countNumber = eventLine.flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") }
        notes.insert("babeltrace2 counter sink: \(countText)" + (countNumber == events ? " (all of them)" : "   <-- expected \(events)"), at: 0)
        let text = contents(err)
        if !text.isEmpty { notes.append("babeltrace2 (counter) stderr:\n" + text.split(separator: "\n").prefix(20).joined(separator: "\n")) }
    } else {
        print("babeltrace2: not installed (\(babeltrace)), skipped")
    }
    notes.insert("convert summary: \(summary.events) events, \(summary.packets) packets, \(summary.bytesWritten) bytes, "
                 + "\(summary.unreadableSubbuffers) unreadable sub-buffers, \(summary.problems.count) problems"
                 + (summary.events == events ? "" : "   <-- expected \(events) events"), at: 0)
    for problem in summary.problems.prefix(20) { notes.append("convert problem: \(problem)") }
    for note in notes { print(note) }
}

try runBenchmark()
