import LTTTraceTestSupport
import Testing
import LTTReader
import LTTFormat
@testable import LTTTrace

/// `#record` into real traces, against `Marker.record` (the expansion's
/// text is LTTTraceMacrosTests').
@Suite("#record: borrowed values, formed only when recording")
struct RecordMacroRecordingTests {
    @Test("#record writes what record(...) writes, at every arity it borrows and past it, on both paths",
          arguments: [UInt8(0), 8])
    func sameAsRecord(alignment: UInt8) throws {
        let tracer = Tracer(cpuCount: 1, alignment: alignment)
        // Arities 0 to 9 (8 is the most #record passes borrowed; 9 takes
        // the closure form), mixed sizes and alignments; the last marker's
        // Celsius has no tuple layout, so it takes the pack walk.
        let m0 = try tracer.marker("m", "a0", "", as: Void.self)
        let m1 = try tracer.marker("m", "a1", "s %s", as: String.self)
        let m2 = try tracer.marker("m", "a2", "a %c s %s", as: (UInt8, String).self)
        let m3 = try tracer.marker("m", "a3", "a %c b %lld s %s", as: (UInt8, Int64, String).self)
        let m4 = try tracer.marker("m", "a4", "a %c b %lld s %s c %hd", as: (UInt8, Int64, String, Int16).self)
        let m5 = try tracer.marker("m", "a5", "a %c b %lld s %s c %hd d %u",
                                   as: (UInt8, Int64, String, Int16, UInt32).self)
        let m6 = try tracer.marker("m", "a6", "a %c b %lld s %s c %hd d %u t %s",
                                   as: (UInt8, Int64, String, Int16, UInt32, StaticString).self)
        let m7 = try tracer.marker("m", "a7", "a %c b %lld s %s c %hd d %u t %s e %d",
                                   as: (UInt8, Int64, String, Int16, UInt32, StaticString, Int32).self)
        let m8 = try tracer.marker("m", "a8", "a %c b %lld s %s c %hd d %u t %s e %d f %llu",
                                   as: (UInt8, Int64, String, Int16, UInt32, StaticString, Int32, UInt64).self)
        let m9 = try tracer.marker("m", "a9", "a %c b %lld s %s c %hd d %u t %s e %d f %llu u %s",
                                   as: (UInt8, Int64, String, Int16, UInt32, StaticString, Int32, UInt64, String).self)
        let walked = try tracer.marker("m", "walked", "a %c c %hd s %s", as: (UInt8, Celsius, String).self)
        #expect(m8.fields != nil && walked.fields == nil)
        // #record stores these with code specialized for their types; the
        // bare record(...) reads the same tuple through TupleLayout.
        #expect([m1.typedSlots, m2.typedSlots, m3.typedSlots, m4.typedSlots, m5.typedSlots, m6.typedSlots,
                 m7.typedSlots, m8.typedSlots].allSatisfy { $0 })
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        for i in 0..<40 {
            // Short texts live in the String itself, long ones on the heap;
            // lengths from 0 to 78 bytes, odd ones too.
            let s = String(repeating: "é", count: i) + (i % 3 == 1 ? "x" : "")
            let (a, b, c, d, e, f) = (UInt8(i), Int64(-i) * 1_000_000_007, Int16(i - 20), UInt32(i) &* 0x0101_0101,
                                      Int32(-i), UInt64(i) << 40)
            #record(m0); m0.record()
            #record(m1, s); m1.record(s)
            #record(m2, a, s); m2.record(a, s)
            #record(m3, a, b, s); m3.record(a, b, s)
            #record(m4, a, b, s, c); m4.record(a, b, s, c)
            #record(m5, a, b, s, c, d); m5.record(a, b, s, c, d)
            #record(m6, a, b, s, c, d, "static"); m6.record(a, b, s, c, d, "static")
            #record(m7, a, b, s, c, d, "static", e); m7.record(a, b, s, c, d, "static", e)
            #record(m8, a, b, s, c, d, "static", e, f); m8.record(a, b, s, c, d, "static", e, f)
            #record(m9, a, b, s, c, d, "static", e, f, s + "!"); m9.record(a, b, s, c, d, "static", e, f, s + "!")
            #record(walked, a, Celsius(degrees: c), s); walked.record(a, Celsius(degrees: c), s)
        }
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        let events = result.events.filter { $0.channel == "m" }
        #expect(events.count == 40 * 11 * 2)
        for pair in stride(from: 0, to: events.count - 1, by: 2) {
            #expect(events[pair].marker == events[pair + 1].marker)
            #expect(events[pair].fields.map(\.value) == events[pair + 1].fields.map(\.value), "\(events[pair].line)")
        }
        let last = try #require(events.last(where: { $0.marker == "a9" }))
        let long = String(repeating: "é", count: 39)
        let expected: [FieldValue] = [.unsigned(39), .signed(-39 * 1_000_000_007), .string(long), .signed(19),
                                      .unsigned(39 &* 0x0101_0101), .string("static"), .signed(-39),
                                      .unsigned(39 << 40), .string(long + "!")]
        #expect(last.fields.map(\.value) == expected)
    }

    @Test("#record of a marker whose slots are not its values' types as they are (a narrower or wider integer, network order) stores what the format says",
          arguments: [UInt8(0), 8])
    func slotsOtherThanTheTypes(alignment: UInt8) throws {
        let tracer = Tracer(cpuCount: 1, alignment: alignment)
        let narrow = try tracer.marker("m", "narrow", "n %d s %s", as: (Int, String).self)
        let wide = try tracer.marker("m", "wide", "c %c n %lld s %s", as: (UInt8, Int16, String).self)
        let network = try tracer.marker("m", "network", "n #n4u%u s %s", as: (UInt32, String).self)
        let natural = try tracer.marker("m", "natural", "n %d s %s", as: (Int32, String).self)
        #expect(!narrow.typedSlots && !wide.typedSlots && !network.typedSlots && natural.typedSlots)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        let text = "twenty-seven bytes of text."
        #record(narrow, -5, text)
        #record(wide, 200, -3, "")
        #record(network, 0x0102_0304, text)
        #record(natural, -5, text)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        let fields = result.events.filter { $0.channel == "m" }.map { $0.fields.map(\.value) }
        #expect(fields == [
            [.signed(-5), .string(text)],
            [.unsigned(200), .signed(-3), .string("")],
            [.unsigned(0x0102_0304), .string(text)],
            [.signed(-5), .string(text)],
        ])
    }

    @Test("#record's typed path stores what the general loop does for every kind of value it takes: a NUL inside a String, a one-scalar StaticString, Bool, a pointer, Int",
          arguments: [UInt8(0), 8])
    func typedPathValues(alignment: UInt8) throws {
        let tracer = Tracer(cpuCount: 1, alignment: alignment)
        let mixed = try tracer.marker("m", "mixed", "b %c p %p n %ld s %s t %s",
                                      as: (Bool, UnsafeRawPointer, Int, String, StaticString).self)
        #expect(mixed.typedSlots)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        let pointer = UnsafeRawPointer(bitPattern: 0x1234_5678)!
        for text in ["ab\0cd", "\0", "twenty-seven bytes of\0text.", String(repeating: "é", count: 40) + "\0!", "no nul"] {
            #record(mixed, true, pointer, -7, text, "😀"); mixed.record(true, pointer, -7, text, "😀")
            #record(mixed, false, pointer, .max, text, "é"); mixed.record(false, pointer, .max, text, "é")
        }
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        let events = result.events.filter { $0.channel == "m" }.map { $0.fields.map(\.value) }
        #expect(events.count == 20)
        for pair in stride(from: 0, to: events.count - 1, by: 2) {
            #expect(events[pair] == events[pair + 1])
        }
        #expect(events.first == [.unsigned(1), .unsigned(0x1234_5678), .signed(-7), .string("ab###"), .string("😀")])
        #expect(events[2] == [.unsigned(0), .unsigned(0x1234_5678), .signed(Int64.max), .string("ab###"), .string("é")])
        #expect(events[4] == [.unsigned(1), .unsigned(0x1234_5678), .signed(-7), .string("#"), .string("😀")])
        #expect(events[8][3] == .string("twenty-seven bytes of######"))
        #expect(events[12][3] == .string(String(repeating: "é", count: 40) + "##"))
    }

    /// Counts the evaluations of what is handed to `#record`.
    final class Evaluations {
        var values = 0
        let marker: Marker<Int32, String>
        init(_ marker: Marker<Int32, String>) { self.marker = marker }
        func path(_ n: Int32) -> String { values += 1; return "a path longer than fifteen bytes \(n)" }
    }

    @Test("#record evaluates its values only when the marker records; $0 of an enclosing closure is the caller's")
    func evaluation() throws {
        let tracer = Tracer(cpuCount: 1)
        let count = Evaluations(try tracer.marker("app", "req", "n %d path %s", as: (Int32, String).self))
        let nine = try tracer.marker("app", "nine", "a %d b %d c %d d %d e %d f %d g %d h %d s %s",
                                     as: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, String).self)
        #record(count.marker, 0, count.path(0))                 // no trace
        #record(nine, 0, 0, 0, 0, 0, 0, 0, 0, count.path(0))    // the closure form
        #expect(count.values == 0)
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        #record(count.marker, 1, count.path(1))                 // allocated, not started
        #expect(count.values == 0)
        try tracer.startTrace("t")
        #record(count.marker, 2, count.path(2))
        #record(nine, 1, 2, 3, 4, 5, 6, 7, 8, count.path(9))
        [Int32(10), 11].forEach { #record(count.marker, $0, count.path($0)) }
        #expect(count.values == 4)
        try tracer.setMarkerEnabled(channel: "app", name: "req", false)
        #record(count.marker, 3, count.path(3))                 // disabled marker
        #expect(count.values == 4)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty)
        #expect(result.events.filter { $0.channel == "app" }.map { $0.fields.map(\.value) } == [
            [.signed(2), .string("a path longer than fifteen bytes 2")],
            [.signed(1), .signed(2), .signed(3), .signed(4), .signed(5), .signed(6), .signed(7), .signed(8),
             .string("a path longer than fifteen bytes 9")],
            [.signed(10), .string("a path longer than fifteen bytes 10")],
            [.signed(11), .string("a path longer than fifteen bytes 11")],
        ])
    }
}
