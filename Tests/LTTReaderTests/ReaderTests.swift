import Foundation
import LTTFormat
import LTTReader
import LTTTestSupport
import Testing

@Suite("The reader, on traces laid out by hand")
struct ReaderTests {
    /// metadata_0 declaring `app.tick` (id 5, `n %d name %s big %llu`) and
    /// `app.far` (id 40, `x #2u%u`).
    static func metadata() throws -> [UInt8] {
        var m = SubbufferBuilder()
        for (name, id, format) in [("tick", UInt64(5), "n %d name %s big %llu"), ("far", 40, "x #2u%u")] {
            try m.append(id: 0, Metadata.coreMarkerIDFormat, ["app", name, id, UInt64(4), UInt64(8), UInt64(8), UInt64(8), UInt64(8)])
            try m.append(id: 1, Metadata.coreMarkerFormatFormat, ["app", name, format])
        }
        return m.close()
    }

    func withTrace(_ files: [String: [UInt8]], _ body: (TraceReader.Result) throws -> Void) throws {
        let dir = NSTemporaryDirectory() + "lttfs-reader-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes) in files { _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes)) }
        try body(TraceReader().read(directory: dir))
    }

    @Test("every header form and field kind decodes, in time order, with declared names")
    func decodes() throws {
        var app = SubbufferBuilder()
        try app.append(id: 5, "n %d name %s big %llu", [-3, "héllo", UInt64(1) << 40])
        // Form 31; its 27 low clock bits wrap once since the last event.
        try app.append(id: 40, "x #2u%u", [UInt64(0xBEEF)], ticks: (1 << 27) - 5)
        // The clock jumps: form 29 carries it whole.
        try app.append(id: 5, "n %d name %s big %llu", [7, "", UInt64(9)], ticks: 1 << 28)
        try app.append(id: 5, "n %d name %s big %llu", [8, "x", UInt64(10)], form: .idSize)
        try withTrace(["metadata_0": try Self.metadata(), "app_0": app.close(eventsLost: 2)]) { r in
            #expect(r.problems.isEmpty, "\(r.problems)")
            let events = r.events.filter { $0.channel == "app" }
            #expect(events.map(\.marker) == ["tick", "far", "tick", "tick"])
            #expect(events[0].field("n") == .signed(-3))
            #expect(events[0].field("name") == .string("héllo"))
            #expect(events[0].field("big") == .unsigned(1 << 40))
            #expect(events[1].field("x") == .unsigned(0xBEEF))
            #expect(events[1].cycles == 1_010 + (1 << 27) - 5, "27 low bits that wrapped once are read whole")
            #expect(events[2].cycles == 1_010 + (1 << 27) - 5 + (1 << 28), "a full clock is read as it is")
            #expect(events[2].field("n") == .signed(7) && events[3].field("name") == .string("x"))
            #expect(events.map(\.cycles) == events.map(\.cycles).sorted())
            #expect(r.eventsLost == 2)
            #expect(r.declarations["app"]?[40]?.format == "x #2u%u")
        }
    }

    @Test("problems are reported with where they are, never a trap")
    func problems() throws {
        var app = SubbufferBuilder()
        try app.append(id: 9, "v %d", [1])       // never declared
        var open = SubbufferBuilder()
        try open.append(id: 5, "n %d name %s big %llu", [1, "a", UInt64(2)])
        let unclosed = open.bytes                // lost_size still 0xffffffff
        var badMagic = app.close()
        badMagic[SubbufferHeader.Field.magicNumber] ^= 0xFF
        try withTrace(["metadata_0": try Self.metadata(), "app_0": app.close(), "app_1": unclosed,
                       "app_2": badMagic, "app_3": [UInt8](repeating: 0, count: 50)]) { r in
            let messages = r.problems.map(\.description)
            #expect(messages.contains { $0.hasPrefix("app_0 sub-buffer 0") && $0.contains("event id 9 of channel app is not declared") })
            #expect(messages.contains { $0.hasPrefix("app_1") && $0.contains("never closed") })
            #expect(messages.contains { $0.hasPrefix("app_2") && $0.contains("bad magic") })
            #expect(messages.contains { $0.hasPrefix("app_3") && $0.contains("shorter than a sub-buffer header") })
        }
        try withTrace(["app_0": app.close()]) { r in
            #expect(r.problems.map(\.message) == ["no metadata_0: the trace cannot be decoded"])
        }
    }

    @Test("a payload that runs past the data is out of bounds, not read")
    func truncatedPayload() throws {
        var app = SubbufferBuilder()
        try app.append(id: 5, "n %d name %s big %llu", [1, String(repeating: "z", count: 40), UInt64(2)])
        var bytes = app.close()
        // Claim the data ends in the middle of the text.
        let lost = UInt32(4096 - (Int(SubbufferHeader.size) + 20))
        withUnsafeBytes(of: lost) { bytes.replaceSubrange(SubbufferHeader.Field.lostSize..<SubbufferHeader.Field.lostSize + 4, with: $0) }
        try withTrace(["metadata_0": try Self.metadata(), "app_0": bytes]) { r in
            #expect(r.events.filter { $0.channel == "app" }.isEmpty)
            #expect(r.problems.contains { $0.file == "app_0" && $0.message.contains("runs past the data") })
        }
    }
}
