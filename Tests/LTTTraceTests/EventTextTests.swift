import Foundation
import LTTFormat
@testable import LTTReader
import LTTTestSupport
import LTTTrace
import LTTTraceTestSupport
import Testing

/// The fast paths of `EventText` (what `lttfs dump` prints with): strings
/// scanned eight bytes a step, decimal digits two per division, the
/// fraction of the time in three runs. Each against the plain way.
@Suite("EventText's fast paths: the plain way's results")
struct EventTextTests {
    /// The plain scan: the string's end (its NUL or the limit) and whether
    /// it is all ASCII.
    func plainScan(_ bytes: [UInt8], from start: Int, limit: Int) -> (Int, Bool) {
        var end = start
        var ascii = true
        while end < limit && bytes[end] != 0 {
            ascii = ascii && bytes[end] < 0x80
            end += 1
        }
        return (end, ascii)
    }

    @Test("every NUL position and limit, with bytes >= 0x80 before, at and after the string's end")
    func scan() {
        var checked = 0
        for length in 0..<24 {
            for start in 0..<3 {
                for high in [nil, 0, length / 2, length - 1, length + 1, length + 5] as [Int?] {
                    var bytes = [UInt8](repeating: 0x61, count: 40)
                    bytes[start + length] = 0
                    if let high, high >= 0, start + high < bytes.count { bytes[start + high] = 0xC3 }
                    for limit in [start, start + length, start + length + 1, bytes.count] where limit <= bytes.count {
                        let got = bytes.withUnsafeBytes { EventText.scanString($0, from: start, limit: limit) }
                        let want = plainScan(bytes, from: start, limit: limit)
                        #expect(got.end == want.0 && got.ascii == want.1,
                                "length \(length) start \(start) high \(String(describing: high)) limit \(limit)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 1000)
    }

    @Test("integers at every decimal length, signed and not, and times around every digit of the fraction")
    func numbers() {
        var values: [UInt64] = [0, 1, 9, UInt64.max, UInt64(Int64.max), UInt64(Int64.max) + 1]
        var power: UInt64 = 1
        for _ in 0..<19 {
            power *= 10
            values += [power - 1, power, power + 1, power / 10 * 9 + 7]
        }
        for value in values {
            var out = TextBuffer(capacity: 64)
            out.reserve(64)
            EventText.putDigits(value, radix: 10, to: &out)
            #expect(String(decoding: out.bytes, as: UTF8.self) == String(value))
        }
        var times: [Int64] = [0, 1, -1, Int64.max, Int64.min + 1, 1_796_191_070_753_903_083, -1_796_191_070_000_000_001]
        for digit in 0..<10 {
            var p: Int64 = 1
            for _ in 0..<digit { p *= 10 }
            times += [p - 1, p, p + 1, 1_000_000_000 * 1_700_000_000 + p, 1_000_000_000 * 1_700_000_000 + p - 1]
        }
        for time in times {
            var out = TextBuffer(capacity: 64)
            out.reserve(64)
            EventText.putTime(time, to: &out)
            #expect(String(decoding: out.bytes, as: UTF8.self) == TraceTime.secondsString(time), "\(time)")
        }
    }

    @Test("strings of every length to 40, ASCII and not, with the integers after them: the whole-trace reader's lines")
    func stringsInTraces() throws {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 1, clock: { clock.now })
        let marker = try tracer.marker("app", "text", "s %s n %llu m %lld t %s", as: (String, UInt64, Int64, String).self)
        try tracer.setupTrace("t")
        try tracer.updateChannel(trace: "t", channel: "app") { $0.subbufferSize = 4096; $0.subbufferCount = 64 }
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        var recorded = 0
        for length in 0...40 {
            for accent in [-1, 0, length / 2, length - 1] {
                var text = String(repeating: "a", count: max(0, length))
                if accent >= 0 && accent < length {
                    let at = text.index(text.startIndex, offsetBy: accent)
                    text.replaceSubrange(at...at, with: "é")
                }
                clock.advance(UInt64(1 + length * 977))
                marker.record(text, UInt64(length) * 1_000_003, -Int64(length) * 99_991, String(text.reversed()))
                recorded += 1
            }
        }
        try tracer.stopTrace("t")
        let (want, got, _) = streamedNextToWhole(try tracer.destroyTrace("t")) { $0.channel == "app" }
        #expect(got.split(separator: "\n").count == recorded)
        #expect(got == want)
    }
}
