import LTTSystem
import Foundation
import LTTTraceTestSupport
import Testing
import LTTReader
@testable import LTTTrace

/// A value only its `TraceValue` methods know how to encode.
struct Celsius: TraceValue {
    var degrees: Int16
    var traceInteger: UInt64 { UInt64(bitPattern: Int64(degrees)) }
}

@Suite("Typed markers: the tuple fast path and the pack walk")
struct TypedMarkerTests {
    @Test("TupleLayout finds every value where Swift put it, for mixed sizes and alignments")
    func tupleOffsets() throws {
        typealias Mixed = (UInt8, Int64, Bool, String, Int16, UnsafeRawPointer, Int8, UInt32, Int, String)
        let layout = try #require(TupleLayout(of: Mixed.self))
        let pointer = UnsafeRawPointer(bitPattern: 0x1234_5678)!
        let text = "a string long enough to live on the heap"
        let values: Mixed = (0xAB, -2, true, "short", -300, pointer, -5, 0xDEAD_BEEF, Int.min, text)
        let integers: [UInt64?] = [0xAB, UInt64(bitPattern: -2), 1, nil, UInt64(bitPattern: -300),
                                   0x1234_5678, UInt64(bitPattern: -5), 0xDEAD_BEEF, UInt64(bitPattern: Int64.min), nil]
        let strings: [String?] = [nil, nil, nil, "short", nil, nil, nil, nil, nil, text]
        withUnsafeBytes(of: values) { raw in
            for i in 0..<integers.count {
                let field = layout.fields[i]
                if let expected = integers[i] {
                    #expect(field.size > 0 && field.load(from: raw.baseAddress!) == expected, "field \(i)")
                } else {
                    #expect(field.size == 0, "field \(i)")
                    let s = (raw.baseAddress! + field.offset).assumingMemoryBound(to: String.self).pointee
                    #expect(s == strings[i], "field \(i)")
                }
            }
        }
        // One value: the "tuple" is the value itself.
        let single = try #require(TupleLayout(of: UInt16.self))
        #expect(single.fields[0].offset == 0 && single.fields[0].size == 2 && !single.fields[0].signed)
    }

    @Test("a type that is not a plain integer or String takes the pack walk")
    func opaqueTypesWalkThePack() {
        #expect(TupleLayout(of: (Int32, Celsius).self) == nil)
        #expect(TupleLayout(of: (TraceArgument).self) == nil)
    }

    @Test("a StaticString records like the same String")
    func staticStrings() throws {
        let tracer = Tracer(cpuCount: 1)
        let m = try tracer.marker("lit", "pair", "a %s b %s n %d", as: (StaticString, String, Int32).self)
        #expect(m.fields != nil)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        m.record("a literal longer than fifteen bytes", "a literal longer than fifteen bytes", 1)
        m.record("é", "é", 2)
        m.record("", "", 3)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty)
        let fields = result.events.filter { $0.channel == "lit" }.map { $0.fields.map(\.value) }
        #expect(fields == [
            [.string("a literal longer than fifteen bytes"), .string("a literal longer than fifteen bytes"), .signed(1)],
            [.string("é"), .string("é"), .signed(2)],
            [.string(""), .string(""), .signed(3)],
        ])
    }

    @Test("a NUL inside a text ends it: the bytes reserved after it are '#', and the fields after it read right, on every path that stores text")
    func innerNULs() throws {
        let tracer = Tracer(cpuCount: 1)
        let fast = try tracer.marker("nul", "fast", "s %s n %d", as: (String, Int32).self)
        let walked = try tracer.marker("nul", "walked", "s %s c %d", as: (String, Celsius).self)
        let dynamic = try tracer.register(channel: "nul", name: "dynamic", format: "s %s n %u")
        let c = try tracer.register(channel: "nul", name: "c", format: "s %s n %u")
        #expect(fast.fields != nil)
        // A format is declared as a text: one that holds a NUL is refused.
        #expect(throws: TraceError.self) { try tracer.register(channel: "nul", name: "bad", format: "a\0b %d") }
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        fast.record("ab\0cd", 1)
        walked.record("\0x", Celsius(degrees: 2))
        #expect(dynamic.record(arguments: [.string("e\0\0f"), .integer(3)]))
        // The C library's values: a text whose length runs past its NUL.
        let text = strdup("gh")!
        defer { free(text) }
        let values = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        defer { values.deallocate() }
        values.storeBytes(of: UInt64(UInt(bitPattern: text)), toByteOffset: 0, as: UInt64.self)
        values.storeBytes(of: 3, toByteOffset: 8, as: UInt64.self)          // "gh" and its NUL
        values.storeBytes(of: 4, toByteOffset: 16, as: UInt64.self)
        #expect(c.emit(fieldCount: 2, values: values)?.recorded == 1)
        // A write_event line from the Swift API (the filesystem cuts lines at NULs).
        let line = Array("k\0l".utf8)
        #expect(try line.withUnsafeBytes { try tracer.writeEvent($0) }.recorded == 1)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty)
        let fields = result.events.filter { $0.channel == "nul" }.map { $0.fields.map(\.value) }
        #expect(fields == [
            [.string("ab###"), .signed(1)],
            [.string("##"), .signed(2)],
            [.string("e###"), .unsigned(3)],
            [.string("gh#"), .unsigned(4)],
        ])
        let lines = result.events.filter { $0.marker == "event" }.map { $0.fields.map(\.value) }
        #expect(lines == [[.string("k##")]])
    }

    @Test("record { ... } forms its arguments only when the marker records, and records what record(...) does")
    func closureForm() throws {
        let tracer = Tracer(cpuCount: 1)
        let m = try tracer.marker("app", "req", "n %d path %s", as: (Int32, String).self)
        let single = try tracer.marker("app", "one", "v %lu", as: UInt64.self)
        var formed = 0
        func form(_ n: Int32) -> (Int32, String) {
            formed += 1
            return (n, "a path longer than fifteen bytes \(n)")
        }
        m.record { form(0) }                    // no trace: not formed
        #expect(formed == 0)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        m.record { form(1) }                    // allocated, not started: not formed
        #expect(formed == 0)
        try tracer.startTrace("t")
        m.record { form(2) }
        m.record(3, "a path longer than fifteen bytes 3")
        single.record { 42 }
        #expect(formed == 1)
        try tracer.setMarkerEnabled(channel: "app", name: "req", false)
        m.record { form(4) }                    // disabled marker: not formed
        #expect(formed == 1)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty)
        #expect(result.events.filter { $0.channel == "app" }.map { $0.fields.map(\.value) } == [
            [.signed(2), .string("a path longer than fifteen bytes 2")],
            [.signed(3), .string("a path longer than fifteen bytes 3")],
            [.unsigned(42)],
        ])
    }

    @Test("the fast path and the pack walk write the same payloads, packed and aligned", arguments: [UInt8(0), 8])
    func bothPathsAgree(alignment: UInt8) throws {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 1, alignment: alignment, clock: { clock.now })
        let format = "a %c b %ld c %hd d %s e %u"
        let fast = try tracer.marker("agree", "fast", format, as: (UInt8, Int, Int16, String, UInt32).self)
        let walked = try tracer.marker("agree", "walked", format, as: (UInt8, Int, Celsius, String, UInt32).self)
        #expect(fast.fields != nil && walked.fields == nil)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        for i in 0..<300 {
            let text = String(repeating: "x", count: i % 40)
            clock.advance(10)
            fast.record(UInt8(i % 256), -i * 77, Int16(i - 150), text, UInt32(i))
            clock.advance(10)
            walked.record(UInt8(i % 256), -i * 77, Celsius(degrees: Int16(i - 150)), text, UInt32(i))
        }
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        let events = result.events.filter { $0.channel == "agree" }
        #expect(events.count == 600)
        for pair in stride(from: 0, to: events.count - 1, by: 2) {
            #expect(events[pair].marker == "fast" && events[pair + 1].marker == "walked")
            #expect(events[pair].fields.map(\.value) == events[pair + 1].fields.map(\.value), "\(events[pair].line)")
        }
        #expect(events.first?.fields.map(\.value) == [.unsigned(0), .signed(0), .signed(-150), .string(""), .unsigned(0)])
    }
}

@Suite("PeriodicThread")
struct PeriodicThreadTests {
    @Test("kick runs the body now instead of at the next tick; stop joins")
    func kick() {
        let thread = PeriodicThread(name: "test-kick", interval: 60)
        let runs = DispatchSemaphore(value: 0)
        thread.start { runs.signal() }
        #expect(runs.wait(timeout: .now() + 5) == .success)      // the first pass runs at start
        #expect(runs.wait(timeout: .now() + 0.2) == .timedOut)   // then nothing for a minute
        thread.kick()
        #expect(runs.wait(timeout: .now() + 5) == .success)
        thread.kick()
        thread.kick()
        #expect(runs.wait(timeout: .now() + 5) == .success)
        thread.stop()
        #expect(!thread.isRunning)
    }
}
