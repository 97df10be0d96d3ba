#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTMountTestSupport
import LTTReader
import LTTSystem
import LTTTestSupport
import LTTTrace
import Testing
@testable import LTTProducers

/// A producer process: `lttfs record` (LTTProducers, shared memory), its
/// stderr kept; started with signals reset so that SIGTERM and SIGKILL do
/// what they say.
final class RecorderProcess: @unchecked Sendable {
    let pid: pid_t
    let errorPath = NSTemporaryDirectory() + "lttfs-record-" + UUID().uuidString
    private(set) var status: Int32?

    init(_ arguments: [String], environment: String = "") throws {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        pid = try ProcessControl.spawn("/bin/sh", arguments: ["sh", "-c", "\(environment) exec \(quoted) 2>\(errorPath)"])
    }

    /// Waits for the exit (bounded): its status, nil if still running.
    @discardableResult
    func wait(seconds: Double = 120) -> Int32? {
        if status != nil { return status }
        _ = waitUntil(seconds: seconds) {
            status = ProcessControl.exitStatus(of: pid, wait: false)
            return status != nil
        }
        return status
    }

    func signal(_ signal: Int32) { try? ProcessControl.send(signal, to: pid) }

    var errorText: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// The count of events its last line reports ("N events, ...").
    var eventsReported: Int? {
        errorText.split(separator: "\n").last.flatMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
    }

    /// Has it mapped the buffers of `channel` (memfd "lttfs:<trace>:<channel>_...")?
    func hasMapped(_ channel: String) -> Bool {
        // Read to the end: procfs files say they are empty.
        let maps = FileHandle(forReadingAtPath: "/proc/\(pid)/maps").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) }
        return (maps ?? "").contains(":\(channel)_")
    }

    deinit {
        if status == nil {
            signal(SIGKILL)
            _ = ProcessControl.exitStatus(of: pid, wait: true)
        }
        try? FileManager.default.removeItem(atPath: errorPath)
    }
}

@Suite("Producer processes record through shared memory", .serialized)
struct ProducerProcessTests {
    static let format = "seq %lu src %u"

    /// A started trace whose `app` channel waits for room (nothing lost
    /// while a consumer drains) unless `blockingTimeoutMillis` is 0.
    func startTrace(_ m: TestMount, _ name: String, subbufferSize: UInt64 = 64 * 1024, subbufferCount: UInt64 = 16,
                    blockingTimeoutMillis: UInt64 = 30_000) throws -> Marker<UInt64, UInt32> {
        let marker = try m.tracer.marker("app", "item", Self.format, as: (UInt64, UInt32).self)
        try m.tracer.setupTrace(name)
        try m.tracer.updateChannel(trace: name, channel: "app") {
            $0.subbufferSize = subbufferSize
            $0.subbufferCount = subbufferCount
            $0.blockingTimeoutMillis = blockingTimeoutMillis
        }
        try m.tracer.allocTrace(name)
        try m.tracer.startTrace(name)
        return marker
    }

    func record(_ m: TestMount, count: Int, from base: UInt64, src: UInt32) throws -> RecorderProcess {
        try RecorderProcess([lttfsBinary, "record", "-m", m.path, "--count", String(count), "app", "item", Self.format,
                             String(base), String(src)])
    }

    /// The (seq, src) pairs of the app.item events of a drained trace.
    func items(_ directory: String) -> (pairs: [[UInt64]], result: TraceReader.Result) {
        items(TraceReader().read(directory: directory))
    }

    /// The app.item events of a trace already read.
    func items(_ result: TraceReader.Result) -> (pairs: [[UInt64]], result: TraceReader.Result) {
        let pairs = result.events.filter { $0.channel == "app" && $0.marker == "item" }.compactMap { e -> [UInt64]? in
            guard case .unsigned(let seq)? = e.field("seq"), case .unsigned(let src)? = e.field("src") else { return nil }
            return [seq, src]
        }
        return (pairs, result)
    }

    @Test("three producer processes, write_event lines and an in-process marker in one trace: the conformance consumer drains every event once")
    func mixedProducers() throws {
        try withMount(cpuCount: 2) { m in
            let marker = try startTrace(m, "mix")
            let out = NSTemporaryDirectory() + "lttfs-mix-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let consumer = try ConformanceConsumer(m.ltt + "/mix", into: out)
            let perProducer = 20_000
            let producers = try (1...3).map { src in try record(m, count: perProducer, from: UInt64(src) * 1_000_000, src: UInt32(src)) }
            for i in 0..<UInt64(perProducer) { marker.record(i, 0) }
            let lines = (0..<200).map { "line \($0) from a shell" }
            for line in lines { #expect(writeControl(m.ltt + "/write_event", line + "\n") == 0) }
            for p in producers {
                #expect(p.wait() == 0, "\(p.errorText)")
                #expect(p.errorText.contains("\(perProducer) events, recorded \(perProducer) times, lost 0 times"), "\(p.errorText)")
            }
            try m.tracer.stopTrace("mix")
            try m.tracer.destroyTrace("mix")
            let drained = consumer.finish()
            #expect(drained.status == 0, "\(drained.error)")
            let (pairs, result) = items(out)
            #expect(result.problems.isEmpty && result.eventsLost == 0 && result.corruptedSubbuffers == 0,
                    "\(result.problems.prefix(3)) lost \(result.eventsLost)")
            var expected: [[UInt64]] = (0..<UInt64(perProducer)).map { [$0, 0] }
            for src in 1...3 { expected += (0..<UInt64(perProducer)).map { [UInt64(src) * 1_000_000 + $0, UInt64(src)] } }
            #expect(pairs.count == expected.count, "each event once")
            #expect(Set(pairs) == Set(expected))
            let written = result.events.filter { $0.channel == "userspace" }.compactMap { e -> String? in
                if case .string(let s)? = e.field("string") { return s }
                return nil
            }
            #expect(written == lines)
        }
    }

    /// The README's example after `<!-- example: NAME -->`: the fenced block.
    static func readmeExample(_ name: String) throws -> String {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let after = try #require(text.range(of: "<!-- example: \(name) -->\n"))
        let lines = text[after.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
        let body = lines.dropFirst().prefix { !$0.hasPrefix("```") }
        return body.joined(separator: "\n") + "\n"
    }

    /// A trace of the examples' markers, registered first (the channel
    /// must exist at setup), drained by `lttfs consume` into `out`.
    func runExample(_ m: TestMount, _ command: [String], out: String, environment: String = "") throws -> RecorderProcess {
        _ = try m.tracer.register(channel: "app", name: "request", format: "id %lu pid %d path %s")
        _ = try m.tracer.register(channel: "app", name: "done", format: "requests %u")
        try m.tracer.setupTrace("example")
        try m.tracer.allocTrace("example")
        try m.tracer.startTrace("example")
        let consumer = try ConformanceConsumer(m.ltt + "/example", into: out)
        let example = try RecorderProcess(command, environment: "LTTFS_MOUNT=\(m.path) " + environment)
        #expect(example.wait() == 0, "\(example.errorText)")
        try m.tracer.stopTrace("example")
        try m.tracer.destroyTrace("example")
        #expect(consumer.finish().status == 0)
        return example
    }

    /// What the examples record: `count` requests of this pid, then done.
    func checkExampleTrace(_ out: String, count: Int) {
        let result = TraceReader().read(directory: out)
        #expect(result.problems.isEmpty && result.eventsLost == 0)
        let requests = result.events.filter { $0.marker == "request" }
        #expect(requests.count == count)
        let ids = requests.compactMap { e -> UInt64? in if case .unsigned(let v)? = e.field("id") { v } else { nil } }
        #expect(Set(ids) == Set(0..<UInt64(count)))
        #expect(requests.allSatisfy { e in
            guard case .unsigned(let id)? = e.field("id"), case .string(let path)? = e.field("path") else { return false }
            return path == (id % 2 == 1 ? "/index.html" : "/api")
        })
        let done = result.events.filter { $0.marker == "done" }
        #expect(done.count == 1 && done.first?.field("requests") == .unsigned(UInt64(count)))
    }

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// What install.sh --prefix installs (this build's lttfs and library),
    /// under a fresh directory the caller removes.
    func installPrefix() throws -> String {
        let prefix = NSTemporaryDirectory() + "lttfs-prefix-" + UUID().uuidString
        let installed = run(["bash", Self.repository + "/mount-scripts/install.sh", "--prefix", prefix, "--no-systemd",
                             "--helper-dir", prefix + "/sbin", "--binary", lttfsBinary,
                             "--library", productsDirectory + "/liblttfs-producer.so"], timeout: 120)
        #expect(installed.status == 0, "\(installed.error)")
        for file in ["include/lttfs/producer.h", "lib/liblttfs-producer.so", "lib/libswiftCore.so", "lib/pkgconfig/lttfs-producer.pc"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file) installed")
        }
        return prefix
    }

    /// `source` built in `prefix` with pkg-config only: the program's path.
    func buildC(_ source: String, named name: String, in prefix: String) throws -> String {
        try source.write(toFile: prefix + "/\(name).c", atomically: true, encoding: .utf8)
        let built = run(["sh", "-c", "cd \(prefix) && cc -Wall -Wextra -Werror -o \(name) \(name).c "
                         + "$(PKG_CONFIG_PATH=\(prefix)/lib/pkgconfig pkg-config --cflags --libs lttfs-producer)"])
        #expect(built.status == 0, "\(built.error)")
        return prefix + "/" + name
    }

    @Test("the README's C example, built against what install.sh --prefix installs (pkg-config, nothing else on the paths), records into a mount")
    func cProgramExample() throws {
        let prefix = try installPrefix()
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let program = try buildC(try Self.readmeExample("producer.c"), named: "producer", in: prefix)
        try withMount(cpuCount: 2) { m in
            let out = NSTemporaryDirectory() + "lttfs-c-example-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            _ = try runExample(m, [program, "5000"], out: out)
            checkExampleTrace(out, count: 5000)
        }
    }

    /// Builds the C check `Tests/<directory>/<name>.c` against an install.sh
    /// prefix, runs it against a trace `name` that the conformance consumer
    /// drains, and hands `check` the destroyed trace and what was drained.
    func runCCheck(_ directory: String, _ name: String, cpuCount: Int,
                   check: (Trace, TraceReader.Result) -> Void) throws {
        let prefix = try installPrefix()
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let program = try buildC(try String(contentsOfFile: Self.repository + "/Tests/\(directory)/\(name).c", encoding: .utf8),
                                 named: name, in: prefix)
        try withMount(cpuCount: cpuCount) { m in
            _ = try startTrace(m, name)
            let out = NSTemporaryDirectory() + "lttfs-\(name)-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let consumer = try ConformanceConsumer(m.ltt + "/" + name, into: out)
            let process = try RecorderProcess([program], environment: "LTTFS_MOUNT=\(m.path)")
            #expect(process.wait() == 0, "\(process.errorText)")
            try m.tracer.stopTrace(name)
            let trace = try m.tracer.destroyTrace(name)
            #expect(consumer.finish().status == 0)
            check(trace, TraceReader().read(directory: out))
        }
    }

    @Test("fork: a child records nothing through its parent's producer (refused, not counted), and records through one of its own")
    func cProgramForks() throws {
        try runCCheck("LTTForkCheck", "fork-check", cpuCount: 2) { trace, result in
            let (pairs, _) = items(result)
            #expect(result.problems.isEmpty && result.eventsLost == 0)
            var bySource: [UInt64: Set<UInt64>] = [:]
            for p in pairs { bySource[p[1], default: []].insert(p[0]) }
            #expect(bySource == [1: Set(0..<100), 2: Set(0..<100), 3: Set(0..<100)], "\(bySource.mapValues(\.count))")
            #expect(trace.channels["app"]!.buffers.allSatisfy { $0.counters.eventsLost == 0 }, "the refused events were not counted")
        }
    }

    @Test("a reply that comes after its wait ran out is dropped, not taken for the next request's: each marker gets its own ID")
    func lateReplyIsDropped() throws {
        let name = "lttfs-test-late-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let listening = try SeqpacketSocket.listen(name: name)
        let client = try SeqpacketSocket.connect(name: name)
        let server = try listening.accept()
        client.setReceiveTimeout(milliseconds: 100)
        func registered(_ id: UInt16) throws {
            var w = ProducerWire.Writer(.registered)
            w.put(id)
            w.put(UInt8(0))
            try server.send(w.bytes)
        }
        var owed: [Producer.Owed] = []
        // The server takes longer than the producer waits.
        #expect(throws: TraceError.self) { try Producer.register(client, "app", "slow", "v %u", owed: &owed) }
        #expect(owed.count == 1)
        try registered(7)                    // slow's answer, late
        try registered(9)                    // the next one's
        let next = try Producer.register(client, "app", "next", "w %u", owed: &owed)
        #expect(next.0 == 9, "the late answer (7) was taken for the next request's")
        #expect(owed.isEmpty)
        // What the server was asked, in order.
        for expected in ["slow", "next"] {
            var r = ProducerWire.Reader(try server.receive(capacity: 4096).bytes)
            #expect(try r.operation() == .register)
            _ = try r.string()
            #expect(try r.string() == expected)
        }
    }

    @Test("the C library's values: a NULL text records (null), a text's length is what is copied, a NUL within it ends the text, a length no buffer holds is a counted loss, a wrong count is EINVAL, a marker with no fields records with none")
    func cProgramValues() throws {
        try runCCheck("LTTValuesCheck", "values-check", cpuCount: 1) { trace, result in
            #expect(result.problems.isEmpty)
            let texts = result.events.filter { $0.marker == "texts" }.map { e -> String in
                guard case .string(let text)? = e.field("text"), case .unsigned(let n)? = e.field("n") else { return "?" }
                return "\(n):\(text)"
            }
            #expect(texts == ["1:(null)", "2:abc", "5:", "7:ij###"])
            #expect(result.events.filter { $0.marker == "bare" }.map(\.fields.count) == [0, 0])
            #expect(trace.channels["app"]!.buffers.reduce(0) { $0 + $1.counters.eventsLost } == 2)
        }
    }

    @Test("the README's Swift example is lttfs-example-producer, which records into a mount")
    func swiftExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try String(contentsOf: root.appendingPathComponent("Sources/lttfs-example-producer/main.swift"), encoding: .utf8)
        #expect(try Self.readmeExample("main.swift") == source, "the README shows the example as it is")
        try withMount(cpuCount: 2) { m in
            let out = NSTemporaryDirectory() + "lttfs-swift-example-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            _ = try runExample(m, [productsDirectory + "/lttfs-example-producer", "5000"], out: out)
            checkExampleTrace(out, count: 5000)
        }
    }

    @Test("a marker registered by two processes with one format has one ID; another format is refused with a clear error")
    func registration() throws {
        try withMount(cpuCount: 1) { m in
            let marker = try m.tracer.marker("app", "item", Self.format, as: (UInt64, UInt32).self)
            let same = try record(m, count: 1, from: 0, src: 9)
            #expect(same.wait() == 0, "\(same.errorText)")
            #expect(m.tracer.marker(channel: "app", name: "item")?.eventID == marker.core.eventID)
            let other = try RecorderProcess([lttfsBinary, "record", "-m", m.path, "app", "item", "seq %u", "1"])
            #expect(other.wait() == 1)
            #expect(other.errorText.contains("app.item is registered with format \"\(Self.format)\""), "\(other.errorText)")
        }
    }

    @Test("only the mount's owner, root and its access group may record: another user is refused, by the mount's modes and by the socket's peer credentials")
    func otherUserRefused() throws {
        try withMount(cpuCount: 1) { m in
            _ = try startTrace(m, "guarded")
            let lttfs = binariesForOtherUsers.lttfs
            // The socket's name is in a file only the owner and group read...
            let byFile = runAs("\(lttfs) record -m \(m.path) app item '\(Self.format)' 1 2")
            #expect(byFile.status == 1 && byFile.error.contains("cannot read \(m.path)/ltt/producer_socket"), "\(byFile.error)")
            // ...and the server checks whoever connects all the same.
            let name = try #require(readControl(m.ltt + "/producer_socket")).trimmingCharacters(in: .whitespacesAndNewlines)
            let bySocket = runAs("LTTFS_PRODUCER_SOCKET=\(name) \(lttfs) record -m \(m.path) app item '\(Self.format)' 1 2")
            #expect(bySocket.status == 1 && bySocket.error.contains("uid 65534 may not record into this mount"), "[\(bySocket.error)] [\(bySocket.output)]")
            #expect(m.tracer.trace("guarded")?.channels["app"]?.buffers.allSatisfy { $0.counters.eventsWritten == 0 } == true)
            try m.tracer.destroyTrace("guarded")
        }
    }

    @Test("another user flooding the producer socket with connections that never say hello takes no producer's place: root still records, and the server keeps a bounded number of threads")
    func connectionFlood() throws {
        _ = binariesForOtherUsers                 // makes the directory other users may enter
        let flood = directoryForOtherUsers + "/lttfs-flood"
        let built = run(["cc", "-O2", "-o", flood, Self.repository + "/Tests/LTTProducerFlood/flood.c"])
        try #require(built.status == 0, "\(built.error)")
        chmod(flood, 0o755)
        try withMount(cpuCount: 1) { m in
            _ = try startTrace(m, "flooded")
            let name = try #require(readControl(m.ltt + "/producer_socket")).trimmingCharacters(in: .whitespacesAndNewlines)
            // More connections than the server serves producers at once.
            let flooder = Process()
            flooder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            flooder.arguments = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", flood, name, "1100", "20"]
            let out = Pipe()
            flooder.standardOutput = out
            try flooder.run()
            defer {
                if flooder.isRunning { kill(flooder.processIdentifier, SIGKILL) }
                flooder.waitUntilExit()
            }
            let ready = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
            #expect(ready.hasPrefix("ready "), "\(ready)")
            let threads = { () -> Int in
                let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
                return Int(status.split(separator: "\n").first { $0.hasPrefix("Threads:") }?.split(separator: "\t").last ?? "") ?? 0
            }
            #expect(threads() < 300, "\(threads()) threads while \(ready) connections wait")
            let producer = try record(m, count: 100, from: 0, src: 1)
            #expect(producer.wait() == 0, "a producer of root's was refused during the flood: \(producer.errorText)")
            #expect(m.tracer.trace("flooded")?.channels["app"]?.buffers.reduce(0) { $0 + $1.counters.eventsWritten } == 100)
            try m.tracer.destroyTrace("flooded")
        }
    }

    @Test("a hostile process scribbles on one trace's shared buffers while lttd drains: the server neither crashes nor hangs, gives up the buffers whose state is impossible, and the other trace is drained whole",
          arguments: [7, 8, 9, 10])
    func scribbledSharedMemory(seed: Int) throws {
        try withMount(cpuCount: 2) { m in
            let marker = try m.tracer.marker("app", "item", Self.format, as: (UInt64, UInt32).self)
            for name in ["hostile", "safe"] {
                try m.tracer.setupTrace(name)
                try m.tracer.updateChannel(trace: name, channel: "app") {
                    $0.subbufferSize = 4096
                    $0.subbufferCount = 8
                    $0.blockingTimeoutMillis = name == "safe" ? 30_000 : 0
                }
                try m.tracer.allocTrace(name)
                try m.tracer.startTrace(name)
            }
            let (outSafe, outHostile) = (NSTemporaryDirectory() + "lttfs-safe-" + UUID().uuidString,
                                         NSTemporaryDirectory() + "lttfs-hostile-" + UUID().uuidString)
            defer { for o in [outSafe, outHostile] { try? FileManager.default.removeItem(atPath: o) } }
            let safe = try ConformanceConsumer(m.ltt + "/safe", into: outSafe, deadline: 120)
            let hostile = try ConformanceConsumer(m.ltt + "/hostile", into: outHostile, deadline: 120)
            let fuzzer = try RecorderProcess([productsDirectory + "/lttfs-shm-fuzz", String(getpid()), "lttfs:hostile:", "4000", String(seed)])
            // Recording into both traces while the fuzzer writes, and after.
            let count = 20_000
            for i in 0..<UInt64(count) {
                marker.record(i, UInt32(i % 2))
                if i == UInt64(count / 2) { #expect(fuzzer.wait() == 0, "\(fuzzer.errorText)") }
            }
            for name in ["hostile", "safe"] { try m.tracer.stopTrace(name) }
            let gone = try m.tracer.destroyTrace("hostile")
            try m.tracer.destroyTrace("safe")
            // The hostile trace's consumer ends (on the hang-up), whatever
            // it found in there; the safe one drains every event, strictly.
            #expect(hostile.finish().status != 3, "the consumer of the scribbled trace was not left waiting")
            let drained = safe.finish()
            #expect(drained.status == 0, "\(drained.error)")
            let (pairs, result) = items(outSafe)
            #expect(result.problems.isEmpty && result.eventsLost == 0)
            #expect(pairs.count == count && Set(pairs.map { $0[0] }) == Set(0..<UInt64(count)))
            let givenUp = gone.bufferFiles.filter { $0.buffer.counters.abandoned }.count
            #expect(givenUp > 0, "an impossible state was found and the buffer given up")
            // The server goes on serving.
            #expect(readControl(m.ltt + "/producer_socket") != nil)
            try m.tracer.setupTrace("after")
            try m.tracer.destroyTrace("after")
            print("scribbledSharedMemory: \(fuzzer.errorText.isEmpty ? "" : fuzzer.errorText)\(givenUp) hostile buffers given up")
        }
    }

    enum WaitEnd: String, CaseIterable { case stop, destroy, shutdown }

    @Test("a producer process waiting for room (blocking_timeout, no consumer) waits in shared memory; stop, destroy and the server's shutdown each end its wait at once, the event counted lost",
          arguments: WaitEnd.allCases)
    func remoteWaitEnds(_ end: WaitEnd) throws {
        let m = try TestMount(cpuCount: 1)
        defer { m.close() }
        _ = try m.tracer.marker("app", "item", Self.format, as: (UInt64, UInt32).self)
        try m.tracer.setupTrace("full")
        try m.tracer.updateChannel(trace: "full", channel: "app") {
            $0.subbufferSize = 4096
            $0.subbufferCount = 2
            $0.blockingTimeoutMillis = 600_000
        }
        try m.tracer.allocTrace("full")
        try m.tracer.startTrace("full")
        let buffer = try #require(m.tracer.trace("full")?.channels["app"]?.buffers.first)
        let producer = try record(m, count: 100_000, from: 0, src: 1)
        #expect(waitUntil { buffer.waitingWriters == 1 || producer.wait(seconds: 0) != nil }, "the producer waits for room")
        #expect(producer.wait(seconds: 0) == nil, "\(producer.errorText)")
        switch end {
        case .stop: try m.tracer.stopTrace("full")
        case .destroy: try m.tracer.destroyTrace("full")
        case .shutdown: m.close()
        }
        #expect(producer.wait(seconds: 20) == 1, "its wait ended and it went on: \(producer.errorText)")
        // The waiting event is lost, and so are the next ones that find the
        // buffer full before the producer learns of the change (stop,
        // destroy: its watcher) or for good (shutdown: nobody drains it).
        #expect(!producer.errorText.contains("lost 0 times"), "\(producer.errorText)")
        #expect(buffer.counters.eventsLost >= 1 && buffer.waitingWriters == 0)
    }

    /// A server process, a producer of this process connected to it, and
    /// its marker app.item ("n %u").
    func serverAndProducer() throws -> (ServerProcess, Producer, Marker<UInt32>) {
        let server = try ServerProcess(arguments: ["--cpus", "1"])
        do {
            let producer = try Producer(mountpoint: server.path)
            return (server, producer, try producer.marker("app", "item", "n %u", as: UInt32.self))
        } catch {
            server.stop()
            throw error
        }
    }

    @Test("a producer whose server is killed (-9) stops waiting for room and recording within about a second, instead of waiting each event's blocking_timeout")
    func serverKilled() throws {
        let (server, producer, marker) = try serverAndProducer()
        defer { server.stop() }
        defer { producer.close() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "k\n") == 0)
        #expect(writeControl(ltt + "/control/k/channel/app/subbuf_size", "4096\n") == 0)
        #expect(writeControl(ltt + "/control/k/channel/app/subbuf_num", "2\n") == 0)
        #expect(writeControl(ltt + "/control/k/channel/app/blocking_timeout", "600000\n") == 0)
        #expect(writeControl(ltt + "/control/k/alloc", "1\n") == 0)
        #expect(writeControl(ltt + "/control/k/enabled", "1\n") == 0)
        #expect(waitUntil { marker.isRecording }, "the producer follows the trace")
        let done = Flag()
        Thread {
            for n in 0..<UInt32(100_000) { marker.record(n) }    // no consumer: it waits once the ring is full
            done.set()
        }.start()
        let buffer = try #require(producer.tracer.trace("k")?.channels["app"]?.buffers.first)
        #expect(waitUntil { buffer.waitingWriters == 1 }, "the producer waits for room")
        // And `lttfs record --count 0`, which records until told to stop.
        let recorder = try RecorderProcess([lttfsBinary, "record", "-m", server.path, "--count", "0", "app", "item", "n %u", "0"])
        #expect(waitUntil { buffer.waitingWriters == 2 }, "the recorder waits for room too")
        kill(server.process.processIdentifier, SIGKILL)
        #expect(done.wait(seconds: 10), "the producer still waits for a dead server")
        #expect(!marker.isRecording)
        #expect(producer.serverHasGone)
        #expect(recorder.wait(seconds: 10) == 1, "lttfs record --count 0 still runs: \(recorder.errorText)")
        #expect(recorder.errorText.contains("is gone"), "\(recorder.errorText)")
    }

    @Test("no event of a producer process enters a trace once stop has returned, though the producer learns of the stop later; none is counted lost for it")
    func stopHoldsForProducerProcesses() throws {
        let (server, producer, marker) = try serverAndProducer()
        defer { server.stop() }
        defer { producer.close() }
        let ltt = server.ltt
        #expect(writeControl(ltt + "/setup_trace", "k\n") == 0)
        #expect(writeControl(ltt + "/control/k/channel/app/overwrite", "1\n") == 0)   // never full
        #expect(writeControl(ltt + "/control/k/alloc", "1\n") == 0)
        #expect(waitUntil { producer.tracer.trace("k") != nil }, "the producer maps the new trace")
        let buffer = try #require(producer.tracer.trace("k")?.channels["app"]?.buffers.first)
        let written = { buffer.counters.eventsWritten }
        let finished = Flag()
        let done = Flag()
        Thread {
            var n: UInt32 = 0
            while !finished.isSet {
                marker.record(n)
                n &+= 1
            }
            done.set()
        }.start()
        for cycle in 0..<10 {
            #expect(writeControl(ltt + "/control/k/enabled", "1\n") == 0)
            let before = written()
            #expect(waitUntil { written() > before + 1000 }, "cycle \(cycle): the producer records")
            #expect(writeControl(ltt + "/control/k/enabled", "0\n") == 0)
            // The producer's view still has the trace active until its
            // watcher catches up: meanwhile its events must find it closed.
            let atStop = written()
            #expect(waitUntil { !marker.isRecording }, "cycle \(cycle): the producer learns of the stop")
            #expect(written() == atStop, "cycle \(cycle): \(written() - atStop) events entered the stopped trace")
        }
        finished.set()
        #expect(done.wait(seconds: 10))
        #expect(buffer.counters.eventsLost == 0)
        #expect(writeControl(ltt + "/destroy_trace", "k\n") == 0)
    }

    @Test("100 times kill -9 of a producer at a random moment while two others record and a consumer drains: the survivors' events are all there once, the dead ones' losses are counted, nothing hangs")
    func killedProducers() throws {
        try withMount(cpuCount: 2) { m in
            // Small sub-buffers: the victims often die holding the lock,
            // in the middle of a sub-buffer or of a switch.
            _ = try startTrace(m, "kills", subbufferSize: 4096)
            let out = NSTemporaryDirectory() + "lttfs-kills-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: out) }
            let consumer = try ConformanceConsumer(m.ltt + "/kills", into: out, deadline: 300)
            let survivors = try (1...2).map { src in try record(m, count: 0, from: UInt64(src) << 40, src: UInt32(src)) }
            for s in survivors {
                #expect(waitUntil { s.hasMapped("app") || s.wait(seconds: 0) != nil }, "survivor \(s.pid) started recording")
                #expect(s.wait(seconds: 0) == nil, "survivor \(s.pid): \(s.errorText)")
            }
            var generator = SplitMix64(state: 12)
            var victims = 0
            for k in 0..<100 {
                let victim = try record(m, count: 0, from: UInt64(100 + k) << 40, src: UInt32(100 + k))
                #expect(waitUntil { victim.hasMapped("app") || victim.wait(seconds: 0) != nil }, "victim \(k) started")
                // A random moment of its recording loop.
                usleep(useconds_t(generator.next() % 20_000))
                victim.signal(SIGKILL)
                #expect(victim.wait() == 128 + SIGKILL, "\(victim.errorText)")
                victims += 1
            }
            for s in survivors { #expect(s.wait(seconds: 0) == nil, "survivor \(s.pid) still recording after the kills") }
            for s in survivors { s.signal(SIGTERM) }
            for s in survivors { #expect(s.wait() == 0, "\(s.errorText)") }
            try m.tracer.stopTrace("kills")
            let trace = try m.tracer.destroyTrace("kills")
            let drained = consumer.finish()
            #expect(drained.status == 0, "the consumer drained to the hang-up: \(drained.error)")
            let recovered = trace.channels["app"]!.buffers.reduce(0) { $0 + $1.counters.locksRecovered }
            let (pairs, result) = items(out)
            #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
            for (index, s) in survivors.enumerated() {
                let src = UInt64(index + 1)
                let count = try #require(s.eventsReported)
                let theirs = pairs.filter { $0[1] == src }.map { $0[0] - (src << 40) }
                #expect(theirs.count == count && Set(theirs) == Set(0..<UInt64(count)),
                        "survivor \(src): \(theirs.count) events read of \(count) recorded")
            }
            let dead = pairs.filter { $0[1] >= 100 }
            #expect(Set(dead).count == dead.count, "no dead producer's event twice")
            // Each slot a dead holder left is repaired: its event counted
            // lost, its sub-buffer corrupted; the reader sees the counts the
            // server has. (A holder may also die outside its slot: its lock
            // is taken back, nothing is lost.)
            let counters = trace.channels["app"]!.buffers.map(\.counters)
            let (corrupted, lost) = (counters.reduce(0) { $0 + $1.corruptedSubbuffers }, counters.reduce(0) { $0 + $1.eventsLost })
            #expect(recovered > 0, "with 100 kills on 4 KiB sub-buffers, some die holding a lock")
            #expect(corrupted <= recovered && lost >= corrupted, "\(recovered) locks recovered, \(corrupted) corrupted, \(lost) lost")
            #expect(result.corruptedSubbuffers == corrupted && result.eventsLost == lost,
                    "the trace says \(result.corruptedSubbuffers) corrupted and \(result.eventsLost) lost")
            print("killedProducers: \(victims) killed, \(recovered) died holding a lock, \(corrupted) inside a slot, \(dead.count) of their events read")
        }
    }
}
