import LTTSystem
import LTTFormat
import Foundation
import Synchronization
import LTTTraceTestSupport
import LTTTestSupport
import Testing
@testable import LTTRelay
import LTTReader
@testable import LTTTrace

@Suite("Record, drain, read back")
struct RoundTripTests {
    static let everyKind =
        "c %c h %hd i %d l %ld ll %lld u %u x %x X #2X%d big #n4u%u p %p str %s small #1u%d"

    @Test("every kind of field and every header form round-trips, packed and aligned", arguments: [UInt8(0), 8])
    func everyKindRoundTrips(alignment: UInt8) throws {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 1, alignment: alignment, clock: { clock.now })
        let all = try tracer.marker("kinds", "all", Self.everyKind,
                                    as: (UInt8, Int16, Int32, Int, Int64, UInt32, UInt32, Int32, UInt32,
                                         UnsafeRawPointer, String, Int32).self)
        // 30 more markers so that ids 29+ need form 31.
        var extra: [Marker<Int32>] = []
        for i in 0..<30 { extra.append(try tracer.marker("kinds", "m\(i)", "v %d", as: Int32.self)) }
        let big = try tracer.register(channel: "big", name: "blob", format: "data %s", sizedHeader: true)

        try tracer.setupTrace("t")
        try tracer.updateChannel(trace: "t", channel: "kinds") { $0.subbufferSize = 4096; $0.subbufferCount = 64 }
        try tracer.allocTrace("t")
        try tracer.startTrace("t")

        var expected: [(String, UInt64, [FieldValue])] = []
        let pointer = UnsafeRawPointer(bitPattern: 0xDEAD_BEEF)!
        for i in 0..<200 {
            clock.advance(UInt64(1000 + i))
            let text = String(repeating: "é", count: i % 7)
            all.record(UInt8(i % 256), Int16(-i), Int32(-100_000 * i), -i * 1_000_000_007, Int64.min + Int64(i),
                       UInt32(i), UInt32(0xABCD_0000) + UInt32(i), Int32(i * 3), UInt32(0x0102_0304),
                       pointer, text, Int32(i))
            expected.append(("all", clock.now, [
                .unsigned(UInt64(i % 256)), .signed(Int64(-i)), .signed(Int64(-100_000 * i)),
                .signed(Int64(-i * 1_000_000_007)), .signed(Int64.min + Int64(i)), .unsigned(UInt64(i)),
                .unsigned(UInt64(0xABCD_0000) + UInt64(i)), .unsigned(UInt64(UInt16(truncatingIfNeeded: i * 3))),
                .unsigned(0x0102_0304), .unsigned(0xDEAD_BEEF), .string(text), .unsigned(UInt64(UInt8(i))),
            ]))
            if i % 10 == 0 {
                clock.advance(1)
                extra[29 - i / 10].record(Int32(i))
                expected.append(("m\(29 - i / 10)", clock.now, [.signed(Int64(i))]))
            }
        }
        // A clock gap of 2^27 ticks and more: form 29.
        clock.advance(1 << 28)
        extra[0].record(-1)
        expected.append(("m0", clock.now, [.signed(-1)]))
        clock.advance((1 << 27) + 5)
        extra[0].record(-2)
        expected.append(("m0", clock.now, [.signed(-2)]))
        // An event that ends exactly at the end of a sub-buffer.
        let marker = try tracer.marker("kinds", "fill", "s %s", as: String.self)
        let buffer = tracer.trace("t")!.channels["kinds"]!.buffers[0]
        let offset = buffer.withRing { $0.offset }
        let room = Int(4096 - offset % 4096)
        #expect(room > 100)
        let headerAndPad = Int(EventHeader.size(at: offset, dataSize: 100,
                                                form: EventHeader.requestedForm(eventID: marker.core.eventID, sized: false),
                                                trace: TraceHeaderFields(alignment: alignment)).size)
        clock.advance(3)
        let filler = String(repeating: "z", count: room - headerAndPad - 1)
        marker.record(filler)
        expected.append(("fill", clock.now, [.string(filler)]))
        #expect(buffer.withRing { $0.offset } % 4096 == 0, "the filler must end exactly on the boundary")
        // A 70,000-byte payload: form 30 with the 32-bit size (after a first
        // event, which carries the full clock since the trace started).
        clock.advance(7)
        #expect(big.record(arguments: [.string("first")]))
        expected.append(("blob", clock.now, [.string("first")]))
        clock.advance(7)
        let blob = String(repeating: "b", count: 70_000)
        #expect(big.record(arguments: [.string(blob)]))
        expected.append(("blob", clock.now, [.string(blob)]))
        // And once more with a clock gap: form 29 with the 32-bit size.
        clock.advance(1 << 30)
        #expect(big.record(arguments: [.string("after a gap")]))
        expected.append(("blob", clock.now, [.string("after a gap")]))

        try tracer.stopTrace("t")
        let trace = try tracer.destroyTrace("t")
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        drain(trace, to: dir.path)
        let result = TraceReader().read(directory: dir.path)
        #expect(result.problems.isEmpty, "\(result.problems.prefix(5))")
        let data = result.events.filter { $0.channel != Metadata.channel }
        #expect(data.count == expected.count)
        for (event, want) in zip(data, expected) {
            #expect(event.marker == want.0)
            #expect(event.cycles == want.1)
            #expect(event.fields.map(\.value) == want.2, "\(event.line)")
            let header = trace.header
            #expect(event.timeNanoseconds == Int64(header.startTimeSec * 1_000_000_000 + header.startTimeUsec * 1000 + (want.1 - header.startTSC)))
        }
        // Every form was exercised.
        let forms = try formsUsed(in: dir.path + "/kinds_0", subbufferSize: 4096, alignment: alignment)
            .union(formsUsed(in: dir.path + "/big_0", subbufferSize: 256 * 1024, alignment: alignment))
        #expect(forms == [0, 29, 30, 31])
    }

    /// A started one-CPU trace whose `app` channel has a switch timer, with
    /// a marker on that channel and the channel's buffer.
    func startQuietTrace(_ tracer: Tracer, _ name: String, switchTimerMillis: UInt64) throws
        -> (Marker<Int32>, RelayBuffer) {
        let m = try tracer.marker("app", "quiet", "n %d", as: Int32.self)
        try tracer.setupTrace(name)
        try tracer.updateChannel(trace: name, channel: "app") { $0.switchTimerMillis = switchTimerMillis }
        try tracer.allocTrace(name)
        try tracer.startTrace(name)
        return (m, tracer.trace(name)!.channels["app"]!.buffers[0])
    }

    /// Waits up to 2 s for `buffer` to have a sub-buffer to read.
    func waitReadable(_ buffer: RelayBuffer) -> Bool {
        var waited = 0
        while buffer.pollState == .none && waited < 200 { usleep(10_000); waited += 1 }
        return buffer.pollState == .readable
    }

    /// The header forms of every event the reader decoded in one file
    /// (compact reported as 0).
    func formsUsed(in path: String, subbufferSize: Int, alignment: UInt8) throws -> Set<Int> {
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let trace = TraceHeaderFields(alignment: alignment)
        let result = TraceReader().read(directory: (path as NSString).deletingLastPathComponent)
        var forms = Set<Int>()
        for e in result.events where e.file == (path as NSString).lastPathComponent {
            // The event starts at its padding; the header word follows it.
            let word = e.offset + Int(trace.padding(at: UInt64(e.offset % subbufferSize), forSize: 4))
            let id = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: word, as: UInt32.self) } >> 27
            forms.insert(id >= 29 ? Int(id) : 0)
        }
        return forms
    }

    @Test("markers registered before alloc, after alloc and while recording are all declared and decodable")
    func metadataAtEveryStage() throws {
        let tracer = Tracer(cpuCount: 2)
        let before = try tracer.marker("app", "before", "n %d", as: Int32.self)
        try tracer.setupTrace("m")
        try tracer.allocTrace("m")
        let afterAlloc = try tracer.marker("app", "after_alloc", "n %d s %s", as: (Int32, String).self)
        try tracer.startTrace("m")
        before.record(1)
        afterAlloc.record(2, "two")
        let whileRecording = try tracer.marker("app", "while_recording", "n %lu", as: UInt.self)
        whileRecording.record(3)
        let otherChannel = try tracer.marker("late", "x", "n %d", as: Int32.self)  // no buffers in this trace
        otherChannel.record(4)
        #expect(!otherChannel.core.isRecording)
        try tracer.stopTrace("m")
        let trace = try tracer.destroyTrace("m")
        let result = drainAndRead(trace)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let names = result.events.filter { $0.channel == "app" }.map(\.marker)
        #expect(names == ["before", "after_alloc", "while_recording"])
        #expect(result.declarations["app"]?.count == 3)
        #expect(result.declarations["metadata"]?[0]?.name == "core_marker_id")
        #expect(result.declarations["metadata"]?[1]?.format == Metadata.coreMarkerFormatFormat)
        // metadata_<cpu> exists for every CPU, empty or not.
        #expect(result.files.contains("metadata_0") && result.files.contains("metadata_1"))
        #expect(result.files.contains("app_0") && result.files.contains("app_1"))
    }

    @Test("a disabled marker records nothing; enabling it again records")
    func enableDisable() throws {
        let tracer = Tracer(cpuCount: 1)
        let m = try tracer.marker("app", "toggle", "n %d", as: Int32.self)
        try tracer.setupTrace("e")
        try tracer.allocTrace("e")
        try tracer.startTrace("e")
        #expect(m.isRecording)
        m.record(1)
        try tracer.setMarkerEnabled(channel: "app", name: "toggle", false)
        #expect(!m.core.isRecording && !m.isRecording)
        m.record(2)
        try tracer.setMarkerEnabled(channel: "app", name: "toggle", true)
        #expect(m.isRecording)
        m.record(3)
        try tracer.stopTrace("e")
        #expect(!m.isRecording)
        let trace = try tracer.destroyTrace("e")
        let result = drainAndRead(trace)
        #expect(result.problems.isEmpty)
        #expect(result.events.filter { $0.channel == "app" }.map { $0.field("n") } == [.signed(1), .signed(3)])
    }

    @Test("two active traces both receive every event; a stopped one does not")
    func severalTraces() throws {
        let tracer = Tracer(cpuCount: 1)
        let m = try tracer.marker("app", "ev", "n %d", as: Int32.self)
        for name in ["a", "b"] {
            try tracer.setupTrace(name)
            try tracer.allocTrace(name)
            try tracer.startTrace(name)
        }
        m.record(1)
        try tracer.stopTrace("b")
        m.record(2)
        var counts: [String: Int] = [:]
        for name in ["a", "b"] {
            let trace = try tracer.destroyTrace(name)
            let result = drainAndRead(trace)
            #expect(result.problems.isEmpty)
            counts[name] = result.events.filter { $0.channel == "app" }.count
        }
        #expect(counts == ["a": 2, "b": 1])
    }

    @Test("the switch timer delivers a quiet channel's events without any other activity")
    func switchTimer() throws {
        let tracer = Tracer(cpuCount: 1)
        let (m, buffer) = try startQuietTrace(tracer, "s", switchTimerMillis: 20)
        // Ticks on a buffer without events deliver nothing (and one event
        // fills no sub-buffer: only the timer can deliver it).
        usleep(60_000)
        #expect(buffer.pollState == .none && buffer.counters.subbuffersDelivered == 0)
        m.record(1)
        #expect(waitReadable(buffer))
        // A quiet buffer is not switched again and again.
        let delivered = buffer.counters.subbuffersDelivered
        usleep(100_000)
        #expect(buffer.counters.subbuffersDelivered == delivered)
        try tracer.destroyTrace("s")
    }

    @Test("the switch timer's period is in the trace clock's ticks, whatever its frequency")
    func switchTimerPeriodInTicks() throws {
        // A clock of 1000 ticks a second that only moves when told.
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 1, clock: { clock.now }, clockFrequency: 1000)
        let (m, buffer) = try startQuietTrace(tracer, "p", switchTimerMillis: 50)
        m.record(1)
        clock.advance(49)
        usleep(100_000)                      // 20 timer ticks: 49 ticks are not 50 ms
        #expect(buffer.pollState == .none)
        clock.advance(1)
        #expect(waitReadable(buffer))
        try tracer.destroyTrace("p")
    }

    @Test("a producer waiting for room holds up no control operation; stop and destroy end its wait at once")
    func stopEndsProducerWaits() throws {
        for destroy in [false, true] {
            let tracer = Tracer(cpuCount: 1)
            let m = try tracer.marker("app", "fill", "n %lu pad %s", as: (UInt64, String).self)
            _ = try tracer.marker("app", "other", "n %d", as: Int32.self)
            try tracer.setupTrace("w")
            try tracer.updateChannel(trace: "w", channel: "app") {
                $0.subbufferSize = 4096
                $0.subbufferCount = 2
                $0.blockingTimeoutMillis = 60_000
            }
            try tracer.allocTrace("w")
            try tracer.startTrace("w")
            let buffer = tracer.trace("w")!.channels["app"]!.buffers[0]
            let finished = DispatchSemaphore(value: 0)
            let pad = String(repeating: "p", count: 200)
            Thread {
                // No consumer: the buffer fills, the producer waits.
                for i in 0..<100 { m.record(UInt64(i), pad) }
                finished.signal()
            }.start()
            // 8 KiB fill in microseconds; then the producer waits.
            let deadline = Date().addingTimeInterval(10)
            while buffer.waitingWriters != 1 && Date() < deadline { sched_yield() }
            #expect(buffer.waitingWriters == 1)
            let before = buffer.counters
            #expect(before.eventsWritten < 100 && before.eventsLost == 0, "\(before)")
            // Control operations that wait for an RCU grace period are not
            // held up by the waiting producer, and do not end its wait.
            let changed = Date()
            try tracer.setMarkerEnabled(channel: "app", name: "other", false)
            _ = try tracer.marker("app", "late", "n %d", as: Int32.self)
            #expect(Date().timeIntervalSince(changed) < 5)
            #expect(buffer.counters == before)
            let started = Date()
            if destroy { try tracer.destroyTrace("w") } else { try tracer.stopTrace("w") }
            #expect(Date().timeIntervalSince(started) < 5, "destroy: \(destroy)")
            #expect(finished.wait(timeout: .now() + 10) == .success)
            // The event that waited is lost and counted; the later ones are
            // not recorded at all (no trace records the marker any more).
            let c = buffer.counters
            #expect(c.eventsLost == 1 && c.eventsWritten == before.eventsWritten, "\(c)")
            if !destroy { try tracer.destroyTrace("w") }
        }
    }

    @Test("destroy reports what ltt_relay_print_buffer_errors did: lost events, corrupted and unfilled sub-buffers")
    func destroyReportsErrors() throws {
        let lines = Locked<[String]>([])
        let tracer = Tracer(cpuCount: 1, log: { _, line in lines.withLock { $0.append(line) } })
        try tracer.setupTrace("d")
        try tracer.updateChannel(trace: "d", channel: "userspace") { $0.subbufferSize = 4096; $0.subbufferCount = 2 }
        try tracer.allocTrace("d")
        try tracer.startTrace("d")
        let buffer = tracer.trace("d")!.channels["userspace"]!.buffers[0]
        // A writer that reserved and never committed (as the seed allows:
        // not one that died holding the lock, whose slot the next holder
        // repairs), then a switch: the sub-buffer stays unread with a
        // commit count that never fills.
        _ = buffer.withRing { ring in
            defer { ring.control.pointee.pending_size = 0 }
            return ring.reserve(dataSize: 100, tsc: 1)
        }
        buffer.forceSwitch()
        _ = buffer.record(eventID: 0, dataSize: 4000, largestAlign: 1) { _ in }
        // Too large for any sub-buffer: lost and counted.
        _ = buffer.record(eventID: 0, dataSize: 5000, largestAlign: 1) { _ in }
        try tracer.destroyTrace("d")
        let log = lines.withLock { $0 }
        #expect(log.contains { $0.contains("events lost in userspace channel (cpu 0)") }, "\(log)")
        #expect(log.contains { $0.contains("sub-buffers [0] have non filled commit counts") }, "\(log)")
    }

    @Test("a calibrated TSC trace clock: the header carries its frequency, decoded times follow real time")
    func tscClock() throws {
        guard let tsc = TraceClock.calibratedTSC() else { return }   // no invariant TSC: nothing to test
        #expect(tsc.frequency > 100_000_000 && tsc.frequency < 10_000_000_000)
        let tracer = Tracer(cpuCount: 1, traceClock: tsc)
        let m = try tracer.marker("app", "tick", "n %d", as: Int32.self)
        try tracer.setupTrace("tsc")
        try tracer.allocTrace("tsc")
        try tracer.startTrace("tsc")
        // The wall clock just before and just after each event: its decoded
        // time must fall between them, give or take the calibration's error
        // (a pause of the test between the two widens the window; it does
        // not fail the test).
        func wallNow() -> UInt64 {
            let t = Tracer.realTime()
            return t.seconds * 1_000_000_000 + t.microseconds * 1000
        }
        var wall: [(before: UInt64, after: UInt64)] = []
        for i in 0..<5 {
            let before = wallNow()
            m.record(Int32(i))
            wall.append((before, wallNow()))
            usleep(150_000)   // more than 2^27 ticks: the full-clock header too
        }
        let trace = try tracer.destroyTrace("tsc")
        #expect(trace.header.startFreq == tsc.frequency)
        let result = drainAndRead(trace)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let times = result.events.filter { $0.channel == "app" }.map { UInt64($0.timeNanoseconds) }
        #expect(times.count == 5)
        for (decoded, real) in zip(times, wall) {
            #expect(decoded + 5_000_000 >= real.before && decoded <= real.after + 5_000_000,
                    "decoded \(decoded) vs wall \(real.before)...\(real.after)")
        }
        for (a, b) in zip(times, times.dropFirst()) {
            #expect(b - a > 140_000_000 && b - a < 300_000_000, "\(b - a) ns between events 150 ms apart")
        }
    }

    /// The bytes mapped in (smaps' Rss) of this process's buffers of trace
    /// `trace` (their memfds are named `lttfs:<trace>:<file>`): other tests
    /// running meanwhile map and unmap their own.
    static func mappedBuffers(of trace: String) -> UInt64 {
        let smaps = (try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8)) ?? ""
        var inTrace = false
        var total: UInt64 = 0
        for line in smaps.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = words.first, first.contains("-"), words.count >= 5 {
                inTrace = line.contains("memfd:lttfs:\(trace):")
            } else if inTrace, words.first == "Rss:", let kB = UInt64(words[1]) {
                total += kB * 1024
            }
        }
        return total
    }

    @Test("alloc populates its buffers outside the control lock, a piece at a time, and stops at once when told to or when the trace is destroyed")
    func allocStopsPopulating() throws {
        let tracer = Tracer(cpuCount: 2, bufferMemoryLimit: 4 << 30)
        let piece: UInt64 = 4 << 20                                     // RingMapping.prefault's
        for ending in ["told", "destroyed"] {
            try tracer.setupTrace("prefaultstop")
            try tracer.updateChannel(trace: "prefaultstop", channel: "userspace") {
                $0.subbufferSize = 64 << 20
                $0.subbufferCount = 8
            }                                                           // 2 x 512 MiB
            var asked = 0
            let started = Date()
            try tracer.allocTrace("prefaultstop", preparing: {
                asked += 1
                guard asked == 16 else { return asked < 16 }
                if ending == "told" { return false }
                // Destroyed while it populates: from another thread, as a
                // control write would (no control lock is held here).
                let destroyed = Flag()
                Thread { _ = try? tracer.destroyTrace("prefaultstop"); destroyed.set() }.start()
                #expect(destroyed.wait(seconds: 10))
                return true
            })
            let mapped = Self.mappedBuffers(of: "prefaultstop")
            #expect(asked == 16 || (ending == "destroyed" && asked == 17), "\(ending): asked \(asked) times")
            #expect(mapped < 40 * piece, "\(ending): \(mapped >> 20) MiB mapped after 16 pieces of 4 MiB")
            #expect(Date().timeIntervalSince(started) < 10)
            if ending == "told" {
                #expect(tracer.trace("prefaultstop")?.state == .allocated, "the trace itself is whole")
                _ = try tracer.destroyTrace("prefaultstop")
            }
            #expect(tracer.trace("prefaultstop") == nil)
        }
    }

    @Test("life-cycle errors are typed and map to errno")
    func lifeCycleErrors() throws {
        let tracer = Tracer(cpuCount: 1)
        #expect(throws: TraceError.invalidName("trace name is empty")) { try tracer.setupTrace("") }
        #expect(throws: TraceError.self) { try tracer.setupTrace("a/b") }
        #expect(throws: TraceError.self) { try tracer.setupTrace(String(repeating: "x", count: 256)) }
        // A channel named like a flight-recorder file would share its files
        // with the channel after the prefix.
        #expect(throws: TraceError.self) { try tracer.register(channel: "flight-app", name: "m", format: "") }
        #expect(throws: TraceError.self) { try tracer.register(channel: "flight-", name: "m", format: "") }
        #expect((try? tracer.register(channel: "app-flight-", name: "m", format: "")) != nil)
        // Nor may a marker join the metadata channel's declarations.
        #expect(throws: TraceError.self) { try tracer.register(channel: "metadata", name: "evil", format: "") }
        try tracer.setupTrace("t")
        #expect(throws: TraceError.traceExists("t")) { try tracer.setupTrace("t") }
        #expect(throws: TraceError.wrongState("trace t has no buffers yet: write 1 to alloc first")) { try tracer.startTrace("t") }
        #expect(throws: TraceError.unknownTransport("relay-lockless")) { try tracer.setTransport(trace: "t", "relay-lockless") }
        #expect(throws: TraceError.channelNotFound("nope")) { try tracer.updateChannel(trace: "t", channel: "nope") { _ in } }
        try tracer.allocTrace("t")
        #expect(throws: TraceError.busy("trace t is already allocated")) { try tracer.allocTrace("t") }
        #expect((try? tracer.updateChannel(trace: "t", channel: "userspace") { $0.overwrite = true }) == nil)
        #expect(TraceError.busy("").errno == .resourceBusy && TraceError.traceExists("").errno == .fileExists)
        #expect(TraceError.traceNotFound("").errno == .noSuchFileOrDirectory && TraceError.invalidValue("").errno == .invalidArgument)
        #expect(throws: TraceError.traceNotFound("zz")) { try tracer.destroyTrace("zz") }
        #expect(throws: TraceError.typeMismatch("app.bad: field n is an integer")) {
            _ = try tracer.marker("app", "bad", "n %d", as: String.self)
        }
        #expect(throws: TraceError.self) { _ = try tracer.marker("app", "float", "v %f", as: Int32.self) }
        _ = try tracer.register(channel: "app", name: "same", format: "n %d")
        #expect(throws: TraceError.self) { _ = try tracer.register(channel: "app", name: "same", format: "n %u") }
        try tracer.destroyTrace("t")
    }
}
