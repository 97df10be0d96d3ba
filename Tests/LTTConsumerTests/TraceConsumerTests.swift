#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import LTTConsumer
import LTTCTF
import LTTProducers
import LTTFormat
import LTTReader
import LTTRelay
import LTTSystem
import LTTTrace
import SystemPackage
import LTTMountTestSupport
import LTTTestSupport
import Testing

/// The library consumer over a real mount: real buffer files, real poll,
/// ioctl and splice; the output read back by the strict reader.
/// Serialized: one test counts this process's descriptors.
@Suite("LTTConsumer: TraceConsumer drains real buffer files", .serialized)
struct TraceConsumerTests {
    /// The events recorded on each CPU by `recordOnEveryCPU`.
    static let eventsPerCPU = 1500

    /// A trace of `cpuCount` CPUs with an `app` channel holding room for
    /// everything recorded (no loss whatever the consumer's pace), started.
    func makeTrace(_ m: TestMount, _ name: String, subbuffers: UInt64 = 64) throws -> Marker<UInt64, UInt32> {
        let marker = try m.tracer.marker("app", "item", "seq %lu cpu %u", as: (UInt64, UInt32).self)
        try m.tracer.setupTrace(name)
        try m.tracer.updateChannel(trace: name, channel: "app") {
            $0.subbufferSize = 4096
            $0.subbufferCount = subbuffers
        }
        try m.tracer.allocTrace(name)
        try m.tracer.startTrace(name)
        return marker
    }

    /// Records `eventsPerCPU` events from a thread bound to each CPU in
    /// turn: every per-CPU buffer of `app` gets events. Returns the
    /// (seq, cpu) pairs recorded.
    func recordOnEveryCPU(_ m: TestMount, _ marker: Marker<UInt64, UInt32>) throws -> [Pair] {
        var recorded: [Pair] = []
        for cpu in 0..<m.tracer.cpuCount {
            let base = UInt64(cpu * 1_000_000)
            let bound = onCPU(cpu) {
                for i in 0..<UInt64(Self.eventsPerCPU) { marker.record(base + i, UInt32(cpu)) }
            }
            try #require(bound, "cannot bind a thread to CPU \(cpu)")
            recorded += (0..<UInt64(Self.eventsPerCPU)).map { Pair(seq: base + $0, cpu: cpu) }
        }
        return recorded
    }

    struct Pair: Hashable, Comparable {
        let seq: UInt64
        let cpu: Int
        static func < (a: Pair, b: Pair) -> Bool { (a.seq, a.cpu) < (b.seq, b.cpu) }
    }

    /// The app events of a trace read back: (seq, the CPU of the file it
    /// was in), each checked to carry the CPU it was recorded on.
    func appEvents(_ result: TraceReader.Result) -> [Pair] {
        result.events.filter { $0.channel == "app" }.compactMap { event in
            guard case .unsigned(let seq)? = event.field("seq"), case .unsigned(let cpu)? = event.field("cpu"),
                  Int(cpu) == event.cpu else { return nil }
            return Pair(seq: seq, cpu: event.cpu)
        }
    }

    /// Bytes of every regular file in `directory`.
    func fileSizes(_ directory: String) -> [String: Int] {
        var sizes: [String: Int] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)
            sizes[name] = (attributes?[.size] as? NSNumber)?.intValue
        }
        return sizes
    }

    /// Consumes a trace recorded on every CPU with `threads` readers while
    /// it is recorded, then destroys it; checks everything.
    func drainWhileRecording(threads: Int, transport: TraceConsumer.Transport = .automatic) throws {
        try withMount(cpuCount: 2) { m in
            let name = "drain\(threads)"
            let marker = try makeTrace(m, name)
            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/" + name, outputDirectory: out.path, transport: transport)
            // Every mount serves the producers' socket: automatic maps every buffer.
            #expect(consumer.mappedBuffers == (transport == .bufferFiles ? 0 : 6), "\(consumer.mappingProblem ?? "")")
            #expect(consumer.buffers.map { ($0.path as NSString).lastPathComponent }
                    == ["app_0", "app_1", "metadata_0", "metadata_1", "userspace_0", "userspace_1"])
            #expect(consumer.buffers.allSatisfy { $0.outputPath == out.path + "/" + ($0.path as NSString).lastPathComponent })
            let run = BackgroundRun(consumer, threads: threads)
            defer { run.end() }
            let recorded = try recordOnEveryCPU(m, marker)
            try m.tracer.stopTrace(name)
            try m.tracer.destroyTrace(name)
            let outcome = run.wait()
            #expect(outcome == .drained)
            #expect(consumer.failures.isEmpty, "\(consumer.failures)")

            let result = TraceReader().read(directory: out.path)
            #expect(result.problems.isEmpty, "\(result.problems)")
            let events = appEvents(result)
            #expect(events.count == recorded.count)
            #expect(events.sorted() == recorded.sorted())
            #expect(Set(events.map(\.cpu)) == [0, 1])
            #expect(result.eventsLost == 0 && result.corruptedSubbuffers == 0)

            // The counters are those of the files written.
            let progress = consumer.progress
            let sizes = fileSizes(out.path)
            #expect(progress.buffers == 6)
            #expect(progress.subbuffers == result.subbuffers)
            #expect(progress.bytes == sizes.values.reduce(0, +))
            #expect(progress.eventsLost == 0 && progress.corruptedSubbuffers == 0 && progress.pushed == 0)
            for buffer in consumer.buffers {
                let size = sizes[(buffer.outputPath as NSString).lastPathComponent] ?? -1
                #expect(size > 0 && size % buffer.subbufferSize == 0, "\(buffer.outputPath): \(size) bytes")
            }
            // 1500 events of 8 + 12 bytes or more on each CPU: several 4 KiB sub-buffers each.
            #expect(sizes["app_0", default: 0] >= 4 * 4096 && sizes["app_1", default: 0] >= 4 * 4096)
            let summary = consumer.summary(stopped: false)
            #expect(summary.hasPrefix("done: ")
                    && summary.contains(" in \(progress.subbuffers) sub-buffers from 6 buffers, ")
                    && summary.contains(", 0 events lost, 0 corrupted sub-buffers, 0 pushed by the writer (EIO)"),
                    "\(summary)")
        }
    }

    @Test("one reader drains every CPU's buffers: every event recorded is read back, the counters match the files",
          arguments: [TraceConsumer.Transport.sharedMemory, .bufferFiles])
    func drainsEveryBuffer(transport: TraceConsumer.Transport) throws {
        try drainWhileRecording(threads: 1, transport: transport)
    }

    @Test("several readers, and more readers than buffers, give the same result (shared memory and files)",
          arguments: [2, 9], [TraceConsumer.Transport.automatic, .bufferFiles])
    func multipleReaders(threads: Int, transport: TraceConsumer.Transport) throws {
        try drainWhileRecording(threads: threads, transport: transport)
    }

    @Test("stop() from another thread ends a live run at once, with everything consumed so far on disk and valid")
    func stopWhileLive() throws {
        // One CPU's buffers whichever CPU records: app_0 and metadata_0 get
        // everything, userspace_0 nothing.
        try withMount(cpuCount: 1) { m in
            let marker = try makeTrace(m, "live")
            let out = TemporaryPath()
            defer { out.remove() }
            // No periodic poll: only the stop can wake a reader that waits.
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/live", outputDirectory: out.path,
                                             pollTimeout: -1)
            let run = BackgroundRun(consumer, threads: 2)
            defer { run.end() }
            for i in 0..<200 { marker.record(UInt64(i), 0) }
            try m.tracer.flush("live")
            // Everything delivered is consumed: then nothing more comes.
            var delivered = 0
            #expect(waitUntil {
                delivered = statsTotal(m, "live", "delivered") ?? -1
                return delivered > 0 && consumer.progress.subbuffers == delivered
                    && statsTotal(m, "live", "consumed") == delivered
            }, "delivered \(delivered), consumed \(consumer.progress.subbuffers)")
            #expect(run.wait(seconds: 0) == nil)   // the trace is live: still running

            let stopper = Thread { consumer.stop() }
            let asked = MonotonicClock.now()
            stopper.start()
            let outcome = run.wait(seconds: 10)
            let seconds = Double(MonotonicClock.now() - asked) / 1e9
            #expect(outcome == .stopped)
            #expect(seconds < 5, "run() took \(seconds) s to return after stop()")
            #expect(consumer.isStopRequested && consumer.failures.isEmpty)
            #expect(consumer.progress.subbuffers == delivered)
            #expect(consumer.summary(stopped: outcome == .stopped).hasPrefix("stopped: "))

            // The buffers nothing was written to have delivered nothing yet:
            // their files are empty, all the others decode cleanly.
            let result = TraceReader().read(directory: out.path)
            let empty = fileSizes(out.path).filter { $0.value == 0 }.keys.sorted()
            #expect(empty == ["userspace_0"])
            #expect(result.problems.map(\.file).sorted() == empty
                    && result.problems.allSatisfy { $0.message.contains("0 bytes") }, "\(result.problems)")
            let seqs = appEvents(result).map(\.seq)
            #expect(Set(seqs).count == 200 && seqs.count == 200 && Set(seqs) == Set(0..<200))
            try m.tracer.destroyTrace("live")
        }
    }

    @Test("CTF output: stop() while live, with no flush, leaves a CTF trace of everything consumed so far, every event once")
    func stopWhileLiveCTF() throws {
        try withMount(cpuCount: 2) { m in
            let marker = try makeTrace(m, "livectf")
            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/livectf", outputDirectory: out.path,
                                             format: .ctf(hostname: "h"), pollTimeout: -1)
            let run = BackgroundRun(consumer, threads: 3)
            defer { run.end() }
            // The metadata channel is not full and nothing flushes it: the
            // declarations reach the consumer because it opened metadata_0.
            let recorded = try recordOnEveryCPU(m, marker)
            var delivered = 0
            #expect(waitUntil {
                delivered = statsTotal(m, "livectf", "delivered") ?? -1
                return delivered > 2 && statsTotal(m, "livectf", "consumed") == delivered
                    && consumer.progress.subbuffers == delivered
            }, "delivered \(delivered), consumed \(consumer.progress.subbuffers)")
            consumer.stop()
            #expect(run.wait(seconds: 10) == .stopped)
            let summary = try #require(consumer.ctfSummary)
            #expect(summary.problems.isEmpty, "\(summary.problems)")
            let result = CTFTraceReader().read(directory: out.path)
            #expect(result.problems.isEmpty, "\(result.problems)")
            let events = appEvents(result)
            // Full sub-buffers only (the last of each CPU is still open).
            #expect(events.count == summary.events && events.count > 0 && events.count < recorded.count)
            #expect(Set(events).count == events.count && Set(events).isSubset(of: Set(recorded)))
            try m.tracer.destroyTrace("livectf")
        }
    }

    @Test("stop() before run(): run() returns .stopped at once and moves nothing")
    func stopBeforeRun() throws {
        try withMount(cpuCount: 1) { m in
            let marker = try makeTrace(m, "early")
            for i in 0..<50 { marker.record(UInt64(i), 0) }
            try m.tracer.flush("early")
            #expect(waitUntil { (statsTotal(m, "early", "delivered") ?? 0) > 0 })
            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/early", outputDirectory: out.path,
                                             pollTimeout: -1)
            consumer.stop()
            let run = BackgroundRun(consumer, threads: 3)
            defer { run.end() }
            #expect(run.wait(seconds: 10) == .stopped)
            #expect(consumer.progress.subbuffers == 0 && consumer.progress.bytes == 0)
            try m.tracer.destroyTrace("early")
        }
    }

    @Test("through shared memory, a buffer the server gives up (its state made impossible) is learnt from the file: the consumer gets its hang-up and drains the others")
    func givenUpWhileMapped() throws {
        try withMount(cpuCount: 2) { m in
            let marker = try makeTrace(m, "gone")
            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/gone", outputDirectory: out.path, transport: .sharedMemory)
            let run = BackgroundRun(consumer, threads: 1)
            defer { run.end() }
            let recorded = try recordOnEveryCPU(m, marker)
            let trace = try #require(m.tracer.trace("gone"))
            let victim = try #require(trace.channels["app"]?.buffers[0])
            // A writer of the shared memory moves `consumed` off a
            // sub-buffer boundary (under the lock, as a process would).
            victim.withRing { _ in victim.mapping.control.pointee.consumed |= 1 }
            try m.tracer.stopTrace("gone")
            try m.tracer.destroyTrace("gone")
            #expect(run.wait() == .drained, "every buffer hung up, the given-up one too")
            #expect(consumer.failures.isEmpty, "\(consumer.failures)")
            #expect(victim.isAbandoned && victim.counters.abandoned)
            // The other CPU's events are all there.
            let events = appEvents(TraceReader().read(directory: out.path))
            #expect(Set(events.filter { $0.cpu == 1 }) == Set(recorded.filter { $0.cpu == 1 }))
        }
    }

    @Test("through shared memory, a live process keeping a buffer's lock stalls that buffer only; once it dies the server takes the lock back and the consumer drains every event")
    func lockHolderDiesWhileMapped() throws {
        try withMount(cpuCount: 2) { m in
            let marker = try makeTrace(m, "held")
            let recorded = try recordOnEveryCPU(m, marker)
            let trace = try #require(m.tracer.trace("held"))
            let (first, second) = (trace.channels["app"]!.buffers[0], trace.channels["app"]!.buffers[1])
            // A process that will hold the lock and do nothing.
            let holder = try ProcessControl.spawn("/bin/sleep", arguments: ["sleep", "600"])
            var reaped = false
            defer { if !reaped { try? ProcessControl.send(SIGKILL, to: holder); _ = ProcessControl.exitStatus(of: holder, wait: true) } }
            let word = first.mapping.control.sharedAtomic(\.lock)
            #expect(waitUntil { word.compareExchange(expected: 0, desired: UInt32(holder), ordering: .acquiringAndReleasing).exchanged })
            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/held", outputDirectory: out.path, transport: .sharedMemory)
            let run = BackgroundRun(consumer, threads: 1)
            defer { run.end() }
            // The other buffer is drained meanwhile; the held one waits.
            #expect(waitUntil { second.counters.subbuffersConsumed > 0 })
            #expect(first.lockHolder == UInt32(holder) && run.wait(seconds: 0) == nil)
            try ProcessControl.send(SIGKILL, to: holder)
            _ = ProcessControl.exitStatus(of: holder, wait: true)
            reaped = true
            #expect(waitUntil { first.counters.locksRecovered == 1 }, "the server took the lock back")
            try m.tracer.stopTrace("held")
            try m.tracer.destroyTrace("held")
            #expect(run.wait() == .drained)
            #expect(consumer.failures.isEmpty, "\(consumer.failures)")
            let events = appEvents(TraceReader().read(directory: out.path))
            #expect(events.sorted() == recorded.sorted(), "every event once")
        }
    }

    @Test("through shared memory, a PUT that cannot be made (a live process keeps the lock) is made later, never the copy: nothing is taken meanwhile, and once the holder is dead the server's PUT goes through")
    func pendingPutIsNeverCopiedTwice() throws {
        try withMount(cpuCount: 1) { m in
            let marker = try makeTrace(m, "put", subbuffers: 8)
            for i in 0..<UInt64(1000) { marker.record(i, 0) }   // several full 4 KiB sub-buffers
            let buffer = try #require(m.tracer.trace("put")?.channels["app"]?.buffers[0])
            let out = TemporaryPath()
            defer { out.remove() }
            let readers = try ReaderConnection(mountpoint: m.path)
            let reader = try BufferReader(path: m.ltt + "/put/app_0", outputPath: out.path, append: false,
                                          readers: readers, mappingRequired: true)
            let mapped = try #require(reader.mapped)
            // A sub-buffer taken and written out whose PUT did not happen.
            let (cookie, _) = try #require(mapped.buffer.takeSubbuffer())
            reader.pendingPut.withLock { $0 = cookie }
            // A live process keeps the lock.
            let holder = try ProcessControl.spawn("/bin/sleep", arguments: ["sleep", "600"])
            var reaped = false
            defer { if !reaped { try? ProcessControl.send(SIGKILL, to: holder); _ = ProcessControl.exitStatus(of: holder, wait: true) } }
            let word = buffer.mapping.control.sharedAtomic(\.lock)
            #expect(waitUntil { word.compareExchange(expected: 0, desired: UInt32(holder), ordering: .acquiringAndReleasing).exchanged })
            let pipe = try OwnedPipe()
            #expect(try reader.moveSubbuffer(through: pipe) == false, "nothing is taken while the PUT is pending")
            #expect(reader.pendingPut.withLock { $0 } == cookie && reader.subbuffers.load(ordering: .relaxed) == 0)
            try ProcessControl.send(SIGKILL, to: holder)
            _ = ProcessControl.exitStatus(of: holder, wait: true)
            reaped = true
            // The ring cannot take a dead holder's lock back; the file's PUT
            // makes the server do it. Then the next sub-buffer is moved.
            #expect(try reader.moveSubbuffer(through: pipe) == true)
            #expect(reader.pendingPut.withLock { $0 } == nil)
            #expect(buffer.counters.locksRecovered == 1)
            #expect(buffer.counters.subbuffersConsumed == 2, "the pending one and the one moved, each once")
            let written = (try FileManager.default.attributesOfItem(atPath: out.path)[.size] as? NSNumber)?.intValue
            #expect(reader.subbuffers.load(ordering: .relaxed) == 1 && written == 4096, "one sub-buffer written: \(String(describing: written))")
        }
    }

    @Test("events lost while nobody read are accounted: the summary's count is the trace's own")
    func lostEvents() throws {
        try withMount(cpuCount: 1) { m in
            // Two 4 KiB sub-buffers, normal mode, no reader: the writer
            // does not wait, most of the burst is lost.
            let marker = try makeTrace(m, "lossy", subbuffers: 2)
            let recorded = 5000
            for i in 0..<recorded { marker.record(UInt64(i), 0) }
            try m.tracer.stopTrace("lossy")
            let stats = statsRows((try? String(contentsOfFile: m.ltt + "/control/lossy/stats", encoding: .utf8)) ?? "")
            let lost = stats.values.reduce(0) { $0 + ($1["lost"] ?? 0) }
            let appLost = stats["app_0"]?["lost"] ?? -1
            #expect(lost > 3000 && appLost == lost, "\(stats)")

            let out = TemporaryPath()
            defer { out.remove() }
            let consumer = try TraceConsumer(traceDirectory: m.ltt + "/lossy", outputDirectory: out.path)
            let run = BackgroundRun(consumer, threads: 1)
            defer { run.end() }
            // The full sub-buffers are consumed before the trace is
            // finalized, so its last sub-buffer finds room for its header.
            let delivered = statsTotal(m, "lossy", "delivered") ?? -1
            #expect(waitUntil { consumer.progress.subbuffers == delivered })
            try m.tracer.destroyTrace("lossy")
            #expect(run.wait() == .drained)
            #expect(consumer.failures.isEmpty, "\(consumer.failures)")

            #expect(consumer.progress.eventsLost == UInt64(lost))
            let summary = consumer.summary(stopped: false)
            #expect(summary.contains(" \(lost) events lost,"), "\(summary)")
            let result = TraceReader().read(directory: out.path)
            #expect(result.problems.isEmpty, "\(result.problems)")
            #expect(result.eventsLost == UInt64(lost))
            #expect(appEvents(result).count == recorded - lost)
        }
    }

    @Test("append: a second trace is added at the end of each output file, the first left as it was")
    func appendToExistingOutput() throws {
        try withMount(cpuCount: 1) { m in
            let out = TemporaryPath()
            defer { out.remove() }
            var sizes: [[String: Int]] = []
            var firstContents: [String: Data] = [:]
            for (round, name) in ["first", "second"].enumerated() {
                let marker = try makeTrace(m, name)
                for i in 0..<300 { marker.record(UInt64(i), 0) }
                let consumer = try TraceConsumer(traceDirectory: m.ltt + "/" + name, outputDirectory: out.path,
                                                 append: round == 1)
                let run = BackgroundRun(consumer, threads: 1)
                defer { run.end() }
                try m.tracer.destroyTrace(name)
                #expect(run.wait() == .drained)
                #expect(consumer.failures.isEmpty, "\(consumer.failures)")
                let now = fileSizes(out.path)
                #expect(consumer.progress.bytes == now.values.reduce(0, +) - (sizes.first?.values.reduce(0, +) ?? 0))
                sizes.append(now)
                if round == 0 {
                    #expect(TraceReader().read(directory: out.path).problems.isEmpty)
                    for file in now.keys { firstContents[file] = FileManager.default.contents(atPath: out.path + "/" + file) }
                }
            }
            #expect(sizes.count == 2 && sizes[0].keys.sorted() == sizes[1].keys.sorted())
            for (file, first) in firstContents {
                let both = FileManager.default.contents(atPath: out.path + "/" + file) ?? Data()
                #expect(both.count > first.count && both.prefix(first.count) == first, "\(file)")
            }
        }
    }

    @Test("refusals: no trace directory, an existing output, a file that is no buffer, a buffer another reader has; nothing left open")
    func refusals() throws {
        try withMount(cpuCount: 2) { m in
            _ = try makeTrace(m, "r")
            let out = TemporaryPath()
            defer { out.remove() }

            // No such trace: refused before anything is created.
            #expect(throws: ConsumerError.notATraceDirectory(m.ltt + "/nope")) {
                try TraceConsumer(traceDirectory: m.ltt + "/nope", outputDirectory: out.path)
            }
            #expect(!FileManager.default.fileExists(atPath: out.path))

            // An existing output directory, without append.
            try FileManager.default.createDirectory(atPath: out.path, withIntermediateDirectories: true)
            #expect(throws: ConsumerError.outputExists(out.path)) {
                try TraceConsumer(traceDirectory: m.ltt + "/r", outputDirectory: out.path)
            }
            out.remove()

            // A control directory: its files are no buffers (the first may
            // not even open for reading).
            let before = openDescriptors()
            do throws(ConsumerError) {
                _ = try TraceConsumer(traceDirectory: m.ltt + "/control/r", outputDirectory: out.path)
                Issue.record("a control directory was taken for a trace")
            } catch {
                let path = error.path ?? ""
                #expect(path.hasPrefix(m.ltt + "/control/r/"), "\(error)")
                #expect(error == .cannotOpen(path, .permissionDenied)
                        || error == .notABufferFile(path, .inappropriateIOCTLForDevice), "\(error)")
                #expect(error.description.contains(path) && error.errno.map { error.description.contains($0.name) } == true,
                        "\(error)")
            }
            out.remove()

            // Buffers first, then a control file: the buffers opened before
            // the refusal are closed again.
            let mixed = TemporaryPath()
            try FileManager.default.createDirectory(atPath: mixed.path, withIntermediateDirectories: true)
            defer { mixed.remove() }
            for file in ["app_0", "metadata_0"] {
                try FileManager.default.createSymbolicLink(atPath: mixed.path + "/" + file,
                                                           withDestinationPath: m.ltt + "/r/" + file)
            }
            try FileManager.default.createSymbolicLink(atPath: mixed.path + "/zz_stats",
                                                       withDestinationPath: m.ltt + "/control/r/stats")
            do throws(ConsumerError) {
                _ = try TraceConsumer(traceDirectory: mixed.path, outputDirectory: out.path)
                Issue.record("a control file was taken for a buffer")
            } catch {
                #expect(error == .notABufferFile(mixed.path + "/zz_stats", .inappropriateIOCTLForDevice))
                #expect(error.description.contains(mixed.path + "/zz_stats") && error.description.contains("ENOTTY"),
                        "\(error)")
            }
            out.remove()
            // Descriptors of this test's mount and output (other suites run
            // in this process at the same time and open files of their own).
            #expect(openDescriptors().values.filter { $0.hasPrefix(m.path) || $0.hasPrefix(out.path) }.isEmpty,
                    "\(openDescriptors()) vs \(before)")
            // lttfs lets one reader open a buffer: the refused consumer let
            // go of app_0 (FUSE sends the release just after close returns).
            #expect(waitUntil { reopens(m.ltt + "/r/app_0") })

            // A buffer another reader holds: EBUSY, named; nothing left open.
            let held = try FileDescriptor.open(FilePath(m.ltt + "/r/userspace_1"), .readOnly)
            defer { try? held.close() }
            let beforeBusy = openDescriptors()
            do throws(ConsumerError) {
                _ = try TraceConsumer(traceDirectory: m.ltt + "/r", outputDirectory: out.path)
                Issue.record("a busy buffer was opened twice")
            } catch {
                #expect(error == .cannotOpen(m.ltt + "/r/userspace_1", .resourceBusy))
                #expect(error.description.contains("EBUSY") && error.description.contains("another consumer"), "\(error)")
            }
            let ours = { openDescriptors().values.filter { $0.hasPrefix(m.path) || $0.hasPrefix(out.path) }.sorted() }
            #expect(ours() == beforeBusy.values.filter { $0.hasPrefix(m.path) || $0.hasPrefix(out.path) }.sorted())
            #expect(openDescriptors().values.filter { $0.hasPrefix(m.ltt + "/r/") }.count == 1)
            #expect(waitUntil { reopens(m.ltt + "/r/app_0") && reopens(m.ltt + "/r/metadata_1") })
            try m.tracer.destroyTrace("r")
        }
    }

    /// Whether a buffer file can be opened now (nobody else has it).
    func reopens(_ path: String) -> Bool {
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly) else { return false }
        try? fd.close()
        return true
    }
}
