#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTConsumer
import LTTCTF
import LTTFormat
import LTTMountTestSupport
import LTTReader
import LTTRelayd
import LTTSystem
import LTTTestSupport
import LTTTrace
import LTTTraceTestSupport
import SystemPackage
import Testing

/// An lttng-relayd (Debian's lttng-tools 2.13) on loopback for one test:
/// free ports, a temporary output directory; stopped by its PID.
final class RelayDaemon: @unchecked Sendable {
    static let path = "/usr/bin/lttng-relayd"
    static var installed: Bool { FileManager.default.isExecutableFile(atPath: path) && Babeltrace.installed }

    let output = NSTemporaryDirectory() + "lttfs-relayd-" + UUID().uuidString
    private(set) var pid: pid_t = 0
    private(set) var base: UInt16 = 0
    private var exited = false
    var address: RelaydSession.Address { RelaydSession.Address(host: "127.0.0.1", controlPort: base, dataPort: base + 1) }
    var liveURL: String { "net://127.0.0.1:\(base + 2)" }

    /// Spawned with signals reset (the test process blocks some), so that
    /// SIGTERM stops it; started on fresh ports until they are free.
    init() throws {
        for _ in 0..<8 {
            base = UInt16.random(in: 20_000...60_000)
            exited = false
            pid = try ProcessControl.spawn("/bin/sh", arguments: ["sh", "-c",
                "exec \(Self.path) -o \(output) -C tcp://127.0.0.1:\(base) -D tcp://127.0.0.1:\(base + 1) -L tcp://127.0.0.1:\(base + 2) >/dev/null 2>&1"])
            // Listening when a connection succeeds; a busy port ends it.
            let listening = waitUntil(seconds: 10) {
                !isRunning || (try? TCPConnection.connect(host: "127.0.0.1", port: base + 2)) != nil
            }
            if listening && isRunning { return }
            stop()
        }
        throw RelaydSession.Failure.connect(address, .closedByPeer)
    }

    var isRunning: Bool {
        if exited { return false }
        if ProcessControl.exitStatus(of: pid, wait: false) != nil { exited = true }
        return !exited
    }

    func kill() { end(SIGKILL) }
    func stop() { end(SIGTERM) }

    private func end(_ signal: Int32) {
        guard isRunning else { return }
        try? ProcessControl.send(signal, to: pid)
        _ = ProcessControl.exitStatus(of: pid, wait: true)
        exited = true
    }

    deinit {
        end(SIGKILL)
        try? FileManager.default.removeItem(atPath: output)
    }

    /// How many live readers are attached to session `session` of `host`,
    /// as babeltrace2 lists the daemon's sessions ("<url>/host/<host>/<session>
    /// (timer = T, N stream(s), C client(s) connected)"); nil if not listed.
    func liveReaders(host: String, session: String) -> Int? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Babeltrace.path)
        process.arguments = ["--input-format=lttng-live", liveURL]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let listing = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for line in listing.split(separator: "\n") where line.contains("/host/\(host)/\(session) (") {
            guard let count = line.range(of: " stream(s), ") else { continue }
            return Int(line[count.upperBound...].prefix { $0.isNumber })
        }
        return nil
    }

    /// The trace directories it wrote for `host`: <output>/<host>/<session>-<date>/<pathname>.
    func traces(host: String) -> [String] {
        let hostDirectory = output + "/" + host
        return ((try? FileManager.default.contentsOfDirectory(atPath: hostDirectory)) ?? []).sorted().flatMap { session in
            ((try? FileManager.default.contentsOfDirectory(atPath: hostDirectory + "/" + session)) ?? []).sorted()
                .map { hostDirectory + "/" + session + "/" + $0 }
        }
    }
}

@Suite("Streaming to lttng-relayd, on loopback", .serialized, .enabled(if: RelayDaemon.installed, "lttng-relayd or babeltrace2 missing"))
struct RelaydStreamingTests {
    /// A started trace with an `app` channel whose sub-buffers a switch
    /// timer hands over every `switchTimer` ms.
    func makeTrace(_ m: TestMount, _ name: String, switchTimer: UInt32 = 0, start: Bool = true) throws -> Marker<UInt64, UInt32> {
        let marker = try m.tracer.marker("app", "item", "seq %lu cpu %u", as: (UInt64, UInt32).self)
        try m.tracer.setupTrace(name)
        for channel in ["app", "userspace"] {
            try m.tracer.updateChannel(trace: name, channel: channel) {
                $0.subbufferSize = 4096
                $0.subbufferCount = 64
                $0.switchTimerMillis = UInt64(switchTimer)
            }
        }
        try m.tracer.allocTrace(name)
        if start { try m.tracer.startTrace(name) }
        return marker
    }

    /// `count` events from a thread on each CPU in turn: the (seq, cpu) pairs.
    func record(_ m: TestMount, _ marker: Marker<UInt64, UInt32>, from: UInt64 = 0, count: Int) throws -> Set<[UInt64]> {
        var recorded: Set<[UInt64]> = []
        for cpu in 0..<m.tracer.cpuCount {
            let base = UInt64(cpu) * 1_000_000 + from
            #expect(onCPU(cpu) { for i in 0..<UInt64(count) { marker.record(base + i, UInt32(cpu)) } })
            for i in 0..<UInt64(count) { recorded.insert([base + i, UInt64(cpu)]) }
        }
        return recorded
    }

    /// The app events of a CTF trace lttfs reads, as (seq, cpu).
    func events(_ directory: String) -> (pairs: [[UInt64]], result: TraceReader.Result) {
        let result = CTFTraceReader().read(directory: directory)
        let pairs = result.events.filter { $0.channel == "app" }.compactMap { e -> [UInt64]? in
            guard case .unsigned(let seq)? = e.field("seq"), case .unsigned(let cpu)? = e.field("cpu"), Int(cpu) == e.cpu
            else { return nil }
            return [seq, cpu]
        }
        return (pairs, result)
    }

    @Test("addresses: HOST, HOST:PORT, HOST:CONTROL:DATA, net:// and [v6]; nonsense refused")
    func addresses() {
        typealias A = RelaydSession.Address
        #expect(A(parsing: "collector") == A(host: "collector", controlPort: 5342, dataPort: 5343))
        #expect(A(parsing: "net://collector:6000") == A(host: "collector", controlPort: 6000, dataPort: 6001))
        #expect(A(parsing: "tcp://10.0.0.1:6000:7000/") == A(host: "10.0.0.1", controlPort: 6000, dataPort: 7000))
        #expect(A(parsing: "[::1]:6000") == A(host: "::1", controlPort: 6000, dataPort: 6001))
        for bad in ["", ":5342", "host:0", "host:x", "host:1:2:3", "a/b", "[::1", "host:65535"] {
            #expect(A(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("two hosts stream to one relay daemon: each one's directory holds its trace, which babeltrace2 and lttfs read alike")
    func twoHosts() throws {
        let relayd = try RelayDaemon()
        var expected: [String: Set<[UInt64]>] = [:]
        for host in ["hostA", "hostB"] {
            try withMount(cpuCount: 2) { m in
                let marker = try makeTrace(m, "t")
                let fallback = TemporaryPath()
                defer { fallback.remove() }
                let options = TraceConsumer.RelaydOptions(address: relayd.address, sessionName: "twohosts", hostname: host,
                                                          liveTimerMilliseconds: 0)
                let consumer = try TraceConsumer(traceDirectory: m.ltt + "/t", outputDirectory: fallback.path,
                                                 format: .relayd(options))
                let run = BackgroundRun(consumer, threads: 2)
                defer { run.end() }
                expected[host] = try record(m, marker, count: 1500)
                try m.tracer.stopTrace("t")
                try m.tracer.destroyTrace("t")
                #expect(run.wait() == .drained)
                #expect(consumer.failures.isEmpty, "\(consumer.failures)")
                let report = try #require(consumer.relaydReport)
                #expect(report.failure == nil && report.packetsKeptLocally == 0 && report.packetsSent > 4)
                #expect(report.packetsConfirmed == report.packetsSent)
                #expect(!FileManager.default.fileExists(atPath: fallback.path), "nothing kept locally")
                #expect(consumer.ctfSummary?.problems.isEmpty == true)
            }
        }
        for host in ["hostA", "hostB"] {
            let traces = relayd.traces(host: host)
            #expect(traces.count == 1 && traces.first?.hasSuffix("/t") == true, "\(traces)")
            guard let trace = traces.first else { continue }
            let (pairs, result) = events(trace)
            #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
            #expect(pairs.count == expected[host]!.count && Set(pairs) == expected[host]!)
            let bt = try Babeltrace.read(trace)
            #expect(bt.status == 0 && bt.errors.isEmpty, "\(bt.errors.prefix(500))")
            let want = result.events.map { Babeltrace.line($0, host: host) }
            #expect(Set(bt.lines) == Set(want) && bt.lines.count == want.count)
        }
    }

    // Issue 14: the reader must be attached before the events it is to
    // show reach the daemon (it starts at the last packet of each stream),
    // and it ends only when the consumer closes the session's connections.
    @Test("live: babeltrace2 --input-format=lttng-live shows write_event lines while the trace runs, then all of them")
    func live() throws {
        let relayd = try RelayDaemon()
        try withMount(cpuCount: 2) { m in
            // As lttctl does it: buffers, the consumer, then recording.
            _ = try makeTrace(m, "livetrace", switchTimer: 100, start: false)
            let fallback = TemporaryPath()
            defer { fallback.remove() }
            let options = TraceConsumer.RelaydOptions(address: relayd.address, hostname: "livehost", liveTimerMilliseconds: 200,
                                                      idleLagMilliseconds: 100 + 200 + 1000)
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/livetrace", outputDirectory: fallback.path,
                                             format: .relayd(options))
            let run = BackgroundRun(consumer, threads: 2)
            defer { run.end() }
            // The reader attaches once every stream has opened (its first,
            // empty packet sent): relayd 2.13 serves a reader that attached
            // to a stream with no packet yet nothing of it.
            #expect(waitUntil { (consumer.relaydReport?.packetsSent ?? 0) >= 4 })
            let out = TemporaryPath()
            defer { out.remove() }
            let viewer = try ProcessControl.spawn("/bin/sh", arguments: ["sh", "-c",
                "exec \(Babeltrace.path) --input-format=lttng-live \(relayd.liveURL)/host/livehost/livetrace >\(out.path) 2>\(out.path).err"])
            var viewerStatus: Int32?
            defer {
                if viewerStatus == nil {
                    try? ProcessControl.send(SIGKILL, to: viewer)
                    _ = ProcessControl.exitStatus(of: viewer, wait: true)
                }
            }
            // babeltrace2 attaches at the end of each stream (SEEK_LAST): a
            // packet the daemon had before then is not shown. Recording
            // starts once the reader is attached, as someone watching does.
            #expect(waitUntil { relayd.liveReaders(host: "livehost", session: "livetrace") == 1 }, "the reader attached")
            func shown() -> [String] {
                ((try? String(contentsOfFile: out.path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                    .filter { $0.contains("userspace.event") }
            }
            try m.tracer.startTrace("livetrace")
            let lines = (0..<300).map { "live line \($0)\n" }
            let writeEvent = try FileDescriptor.open(FilePath(m.ltt + "/write_event"), .writeOnly)
            defer { try? writeEvent.close() }
            for line in lines { try writeEvent.writeAll(Array(line.utf8)) }
            // Shown while the trace is still recording (babeltrace2 writes
            // its lines as they come when the session ends a packet).
            let liveShown = waitUntil(seconds: 30) { shown().count == lines.count }
            let errors = String(((try? String(contentsOfFile: out.path + ".err", encoding: .utf8)) ?? "").suffix(1500))
            #expect(liveShown, "\(shown().count) of \(lines.count) shown live; \(String(describing: consumer.relaydReport)); \(errors)")
            #expect(m.tracer.trace("livetrace")?.state == .active)
            try m.tracer.stopTrace("livetrace")
            try m.tracer.destroyTrace("livetrace")
            #expect(run.wait() == .drained)
            #expect(waitUntil(seconds: 30) {
                viewerStatus = viewerStatus ?? ProcessControl.exitStatus(of: viewer, wait: false)
                return viewerStatus != nil
            }, "the reader ends when the session does")
            #expect(viewerStatus == 0)
            #expect(shown().count == lines.count)
            let report = try #require(consumer.relaydReport)
            #expect(report.failure == nil && report.idlePacketsSent > 0 && report.packetsBehindIdlePackets == 0)
        }
    }

    @Test("convert --relayd: a finished LTT trace sent to the daemon reads as convert's local CTF does")
    func convertToRelayd() throws {
        let relayd = try RelayDaemon()
        let local = TemporaryPath(), ltt = TemporaryPath()
        defer { local.remove(); ltt.remove() }
        var recorded = Set<[UInt64]>()
        try withMount(cpuCount: 2) { m in
            let marker = try makeTrace(m, "finished")
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/finished", outputDirectory: ltt.path)
            let run = BackgroundRun(consumer, threads: 1)
            defer { run.end() }
            recorded = try record(m, marker, count: 800)
            try m.tracer.stopTrace("finished")
            try m.tracer.destroyTrace("finished")
            #expect(run.wait() == .drained)
        }
        let options = RelaydOptions(address: relayd.address, sessionName: "sent", hostname: "archive", liveTimerMilliseconds: 0)
        var destination: RelaydDestination?
        let summary = try TraceConversion.convert(traceDirectory: ltt.path) { (name, _, files) throws(CTFError) in
            let opened = try RelaydDestination.open(options, traceName: name, buffers: files.map { ($0.channel, $0.cpu) },
                                                    metadataChannel: Metadata.channel, fallbackDirectory: local.path + "-fallback")
            destination = opened.destination
            return opened.writer
        }
        let report = try #require(destination?.report)
        #expect(summary.problems.isEmpty && report.failure == nil && report.packetsConfirmed == report.packetsSent)
        _ = try TraceConversion.convert(traceDirectory: ltt.path, to: local.path, hostname: "archive")
        let sent = try #require(relayd.traces(host: "archive").first)
        #expect(Set(events(sent).pairs) == recorded && Set(events(local.path).pairs) == recorded)
        let (fromDaemon, fromLocal) = (try Babeltrace.read(sent), try Babeltrace.read(local.path))
        #expect(fromDaemon.status == 0 && fromDaemon.errors.isEmpty && fromDaemon.lines == fromLocal.lines)
    }

    @Test("an unreachable relay daemon: a clear refusal at the start, nothing opened")
    func unreachable() throws {
        try withMount(cpuCount: 1) { m in
            _ = try makeTrace(m, "t")
            let out = TemporaryPath()
            defer { out.remove() }
            // A port nobody listens on: a daemon started and stopped.
            let relayd = try RelayDaemon()
            let address = relayd.address
            relayd.stop()
            do throws(ConsumerError) {
                _ = try TraceConsumer(traceDirectory: m.ltt + "/t", outputDirectory: out.path,
                                      format: .relayd(TraceConsumer.RelaydOptions(address: address)))
                Issue.record("a consumer was made with no relay daemon")
            } catch {
                #expect(error.description.contains("cannot connect to lttng-relayd at 127.0.0.1:\(address.controlPort)")
                        && error.description.contains("ECONNREFUSED"), "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: out.path))
            #expect(waitUntil { (try? FileDescriptor.open(FilePath(m.ltt + "/t/app_0"), .readOnly))
                .map { try? $0.close(); return true } ?? false }, "the buffer files were let go")
            try m.tracer.destroyTrace("t")
        }
    }

    @Test("the relay daemon killed mid-trace: the consumer neither hangs nor loses anything; the rest is kept locally, counted")
    func relaydKilled() throws {
        let relayd = try RelayDaemon()
        try withMount(cpuCount: 2) { m in
            let marker = try makeTrace(m, "t")
            let fallback = TemporaryPath()
            defer { fallback.remove() }
            let options = TraceConsumer.RelaydOptions(address: relayd.address, hostname: "doomed", liveTimerMilliseconds: 0)
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/t", outputDirectory: fallback.path, format: .relayd(options))
            let run = BackgroundRun(consumer, threads: 2)
            defer { run.end() }
            var recorded = try record(m, marker, count: 1500)
            try m.tracer.flush("t")
            #expect(waitUntil { (consumer.relaydReport?.packetsSent ?? 0) > 4 })
            relayd.kill()
            recorded.formUnion(try record(m, marker, from: 10_000, count: 1500))
            try m.tracer.stopTrace("t")
            try m.tracer.destroyTrace("t")
            #expect(run.wait() == .drained, "the consumer ends")
            let report = try #require(consumer.relaydReport)
            #expect(report.failure != nil && report.packetsKeptLocally > 0, "\(report)")
            // Every event is in the daemon's copy or the local one.
            var found = Set<[UInt64]>()
            for trace in relayd.traces(host: "doomed") { found.formUnion(events(trace).pairs) }
            let local = events(fallback.path)
            #expect(local.result.problems.isEmpty, "\(local.result.problems.prefix(3))")
            found.formUnion(local.pairs)
            #expect(recorded.isSubset(of: found), "\(recorded.subtracting(found).count) events neither sent nor kept")
            #expect(Babeltrace.installed ? (try Babeltrace.read(fallback.path)).status == 0 : true)
        }
    }
}
