import Foundation
import LTTCTF
import LTTFormat
import LTTReader
import LTTTestSupport
import LTTTrace
import LTTTraceTestSupport
import Testing

/// The CTF writer and reader without babeltrace2: packets that wait for
/// their declarations, and lttfs's own reading of what it wrote.
@Suite("CTF writer: declarations that come late, and reading back")
struct WriterTests {
    static func metadata(_ markers: [(String, String, UInt64, String)], begin: UInt64 = 1_000) throws -> [UInt8] {
        var m = SubbufferBuilder(begin: begin)
        for (channel, name, id, format) in markers {
            try m.append(id: 0, Metadata.coreMarkerIDFormat, [channel, name, id, UInt64(4), UInt64(8), UInt64(8), UInt64(8), UInt64(8)])
            try m.append(id: 1, Metadata.coreMarkerFormatFormat, [channel, name, format])
        }
        return m.close()
    }

    static func data(_ begin: UInt64, _ values: [Int], id: UInt16 = 5) throws -> [UInt8] {
        var s = SubbufferBuilder(begin: begin)
        for v in values { try s.append(id: id, "n %d name %s", [v, "v\(v)"]) }
        return s.close()
    }

    func values(_ directory: String) -> [Int64] {
        CTFTraceReader().read(directory: directory).events.compactMap {
            if case .signed(let v)? = $0.field("n") { return v }
            return nil
        }
    }

    @Test("data that comes before its declarations waits, in order, and is written when they come")
    func lateDeclarations() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = try CTFTraceWriter(outputDirectory: dir.path + "/ctf", traceName: "t", channels: ["app"], hostname: "h")
        // Before any metadata: no clock, so everything waits.
        try writer.take(subbuffer: try Self.data(2_000, [1, 2]), channel: "app", cpu: 0)
        #expect(writer.summary.packets == 0)
        // The metadata's first sub-buffer declares nothing of app yet.
        try writer.take(subbuffer: try Self.metadata([("other", "x", 0, "v %d")]), channel: Metadata.channel, cpu: 0)
        try writer.take(subbuffer: try Self.data(3_000, [3]), channel: "app", cpu: 0)
        #expect(writer.summary.packets == 0, "app.tick is not declared yet: its packets wait, in order")
        // The declaration comes: both packets are written, in order.
        try writer.take(subbuffer: try Self.metadata([("app", "tick", 5, "n %d name %s")], begin: 1_500),
                        channel: Metadata.channel, cpu: 0)
        #expect(writer.summary.packets == 2)
        try writer.take(subbuffer: try Self.data(4_000, [4]), channel: "app", cpu: 0)
        let summary = try writer.finish()
        #expect(summary.packets == 3 && summary.events == 4 && summary.problems.isEmpty, "\(summary.problems)")
        #expect(values(dir.path + "/ctf") == [1, 2, 3, 4])
        #expect(CTFTraceReader().read(directory: dir.path + "/ctf").problems.isEmpty)
    }

    @Test("what is never declared is left out at the end, and reported; past the pending limit packets do not wait")
    func neverDeclared() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = try CTFTraceWriter(outputDirectory: dir.path + "/ctf", traceName: "t", channels: ["app"],
                                        hostname: "h", pendingLimit: 8192)
        try writer.take(subbuffer: try Self.metadata([("app", "tick", 5, "n %d name %s")]), channel: Metadata.channel, cpu: 0)
        try writer.take(subbuffer: try Self.data(2_000, [1], id: 6), channel: "app", cpu: 0)
        try writer.take(subbuffer: try Self.data(3_000, [2]), channel: "app", cpu: 0)
        #expect(writer.summary.packets == 0, "the second waits behind the first")
        // A third 4 KiB sub-buffer passes the 8 KiB limit: the oldest goes.
        try writer.take(subbuffer: try Self.data(4_000, [3]), channel: "app", cpu: 0)
        #expect(writer.summary.packets == 3)
        let summary = try writer.finish()
        #expect(summary.problems.map(\.description).contains { $0.hasPrefix("app_0 sub-buffer 0") && $0.contains("event id 6 is not declared") })
        #expect(values(dir.path + "/ctf") == [2, 3])
    }

    @Test("a damaged CTF stream: lttfs's reader reports where, reads what comes before, never traps")
    func damagedCTF() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let ctf = dir.path + "/ctf"
        let writer = try CTFTraceWriter(outputDirectory: ctf, traceName: "t", channels: ["app"], hostname: "h")
        try writer.take(subbuffer: try Self.metadata([("app", "tick", 5, "n %d name %s")]), channel: Metadata.channel, cpu: 0)
        for (i, begin) in [2_000, 3_000, 4_000].enumerated() {
            try writer.take(subbuffer: try Self.data(UInt64(begin), [i * 10, i * 10 + 1]), channel: "app", cpu: 0)
        }
        _ = try writer.finish()
        #expect(values(ctf) == [0, 1, 10, 11, 20, 21])
        let path = ctf + "/app_0"
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let second = original.withUnsafeBytes { CTFPacket.Context.packetBytes(in: $0) }
        // The second packet's magic, then a file cut in the third packet,
        // then an event id no class declares, then a packet size past the end.
        var badMagic = original
        badMagic[second] ^= 0xFF
        var badID = original
        badID[CTFPacket.headerSize] = 7              // first event's 5-bit id
        var hugeSize = original
        withUnsafeBytes(of: UInt64(1) << 60) { hugeSize.replaceSubrange(second + CTFPacket.Field.packetSize..<second + CTFPacket.Field.packetSize + 8, with: $0) }
        for (bytes, want, message) in [(badMagic, [Int64(0), 1], "no CTF magic"),
                                       (Array(original.dropLast(5)), [0, 1, 10, 11], "bytes left in the file"),
                                       (badID, [], "event id 7 of stream 0 is not declared"),
                                       (hugeSize, [0, 1], "bytes left in the file")] {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let result = CTFTraceReader().read(directory: ctf)
            #expect(result.problems.contains { $0.file == "app_0" && $0.message.contains(message) }, "\(result.problems)")
            #expect(values(ctf).prefix(want.count) == want[...], "\(values(ctf))")
        }
    }

    @Test("input that once trapped: event id 65535, a sub-buffer of another alignment, a CPU number past 32 bits")
    func hostileTraces() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        // Id 65535 declared and used (form 31 carries it).
        var app = SubbufferBuilder(begin: 2_000)
        try app.append(id: 65535, "n %d name %s", [7, "top"])
        // A sub-buffer written with another alignment than the trace's:
        // its events cannot be read with the trace's layout.
        var packed = SubbufferBuilder(alignment: 0, begin: 3_000)
        try packed.append(id: 65535, "n %d name %s", [8, "packed"])
        _ = FileManager.default.createFile(atPath: dir.path + "/metadata_0",
                                           contents: Data(try Self.metadata([("app", "tick", 65535, "n %d name %s")])))
        _ = FileManager.default.createFile(atPath: dir.path + "/app_0", contents: Data(app.close() + packed.close()))
        _ = FileManager.default.createFile(atPath: dir.path + "/app_4294967296", contents: Data(app.close()))
        let ltt = TraceReader().read(directory: dir.path)
        #expect(ltt.events.filter { $0.channel == "app" }.map(\.line).count == 1)
        #expect(ltt.problems.contains { $0.file == "app_0" && $0.subbuffer == 1 && $0.message.contains("alignment differs") })
        #expect(ltt.problems.contains { $0.file == "app_4294967296" && $0.message.contains("not <channel>_<cpu>") })
        let summary = try TraceConversion.convert(traceDirectory: dir.path, to: dir.path + "/ctf", hostname: "h")
        #expect(summary.events == 1 && summary.unreadableSubbuffers == 1)
        #expect(summary.problems.contains { $0.message.contains("alignment differs") })
        #expect(values(dir.path + "/ctf") == [7])
    }

    @Test("random damage to a CTF trace never traps lttfs's reader, and every problem says where")
    func fuzzCTF() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let ctf = dir.path + "/ctf"
        let writer = try CTFTraceWriter(outputDirectory: ctf, traceName: "t", channels: ["app"], hostname: "h")
        try writer.take(subbuffer: try Self.metadata([("app", "tick", 5, "n %d name %s"), ("app", "far", 40, "x #2u%u")]),
                        channel: Metadata.channel, cpu: 0)
        for begin in stride(from: UInt64(2_000), to: 12_000, by: 1_000) {
            var s = SubbufferBuilder(begin: begin)
            for i in 0..<40 { try s.append(id: i % 3 == 0 ? 40 : 5, i % 3 == 0 ? "x #2u%u" : "n %d name %s",
                                            i % 3 == 0 ? [UInt64(i)] : [i, String(repeating: "v", count: i % 9)],
                                            ticks: i == 20 ? 1 << 28 : 10) }
            try writer.take(subbuffer: s.close(), channel: "app", cpu: 0)
        }
        _ = try writer.finish()
        let path = ctf + "/app_0"
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var random = SplitMix64(state: 0x5EED_C7F)
        for round in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + Int(random.next() % 8)) {
                let at = Int(random.next() % UInt64(bytes.count))
                bytes[at] = round % 5 == 0 ? 0xFF : UInt8(truncatingIfNeeded: random.next())
            }
            if round % 7 == 0 { bytes.removeLast(Int(random.next() % 200)) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let result = CTFTraceReader().read(directory: ctf)
            #expect(result.problems.allSatisfy { $0.file == "app_0" && $0.subbuffer != nil })
            let stream = CTFTraceReader.stream(directory: ctf)
            let text = EventText(stream)
            var out = TextBuffer(capacity: 64)
            stream.forEach { text.append($0, to: &out) }
            #expect(stream.problems.count == result.problems.count - stream.metadata.problems.count)
        }
    }

    @Test("no metadata at all: nothing can be written, and the summary says so")
    func noMetadata() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writer = try CTFTraceWriter(outputDirectory: dir.path + "/ctf", traceName: "t", channels: ["app"], hostname: "h")
        try writer.take(subbuffer: try Self.data(2_000, [1]), channel: "app", cpu: 0)
        let summary = try writer.finish()
        #expect(summary.packets == 0)
        #expect(summary.problems.map(\.message) == ["no sub-buffer of metadata_0 came: the trace has no clock, 1 packet(s) not written"])
    }

    @Test("an output directory that is not empty is refused")
    func refusesNonEmpty() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        _ = FileManager.default.createFile(atPath: dir.path + "/x", contents: Data())
        #expect(throws: CTFError.outputNotEmpty(dir.path)) {
            _ = try CTFTraceWriter(outputDirectory: dir.path, traceName: "t", channels: [], hostname: "h")
        }
    }

    @Test("lttfs reads its CTF exactly as the LTT trace it came from: every field kind, empty strings, both alignments",
          arguments: [UInt8(0), 8])
    func readsBack(alignment: UInt8) throws {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 1, alignment: alignment, clock: { clock.now })
        let all = try tracer.marker("kinds", "all", ConversionTests.everyKind,
                                    as: (UInt8, Int16, Int32, Int, Int64, UInt32, UInt32, Int32, UInt32, UInt32,
                                         UnsafeRawPointer, String, Int32).self)
        let empty = try tracer.marker("kinds", "empty", "", as: Void.self)
        try tracer.setupTrace("t")
        try tracer.updateChannel(trace: "t", channel: "kinds") { $0.subbufferSize = 4096; $0.subbufferCount = 64 }
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        for i in 0..<300 {
            clock.advance(i % 50 == 0 ? 1 << 28 : 900)
            all.record(UInt8(i % 256), Int16(-i), Int32(i), -i, Int64(i) << 40, UInt32(i), UInt32(i), Int32(i), UInt32(i),
                       UInt32(i), UnsafeRawPointer(bitPattern: 0x1000 + i)!, String(repeating: "x", count: i % 3), Int32(-i))
            if i % 7 == 0 { empty.record() }
        }
        try tracer.stopTrace("t")
        let trace = try tracer.destroyTrace("t")
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        drain(trace, to: dir.path)
        let ltt = TraceReader().read(directory: dir.path)
        let summary = try TraceConversion.convert(traceDirectory: dir.path, to: dir.path + "-ctf", hostname: "h")
        defer { try? FileManager.default.removeItem(atPath: dir.path + "-ctf") }
        let ctf = CTFTraceReader().read(directory: dir.path + "-ctf")
        #expect(ltt.problems.isEmpty && summary.problems.isEmpty && ctf.problems.isEmpty, "\(ctf.problems.prefix(3))")
        let want = ltt.events.filter { $0.channel != Metadata.channel }.map(\.line)
        #expect(want.count == 300 + 43)
        #expect(ctf.events.map(\.line) == want)
        #expect(ctf.declarations["kinds"]?.count == ltt.declarations["kinds"]?.count)
    }
}
