import Foundation
import LTTFormat
import LTTReader
import LTTTestSupport
import LTTTrace
import LTTTraceTestSupport
import Testing

/// `TraceStream` and `EventText` (what `lttfs dump` streams) against the
/// reader that decodes everything (`TraceReader`, `DecodedEvent.line`).
@Suite("The streaming reader: the same lines as the whole-trace reader")
struct StreamTests {
    /// A drained trace of one channel, "app", whose marker "tick" (n %d)
    /// recorded `events` events on each of `cpus` CPUs, 4 KiB sub-buffers.
    func tickTrace(cpus: Int, events: Int) throws -> TemporaryDirectory {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: cpus, clock: { clock.now })
        let tick = try tracer.marker("app", "tick", "n %d", as: Int32.self)
        try tracer.setupTrace("t")
        try tracer.updateChannel(trace: "t", channel: "app") { $0.subbufferSize = 4096; $0.subbufferCount = 16 }
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        for cpu in 0..<cpus {
            #expect(onCPU(cpu) {
                for i in 0..<events {
                    clock.advance(100)
                    tick.record(Int32(i))
                }
            })
        }
        try tracer.stopTrace("t")
        let trace = try tracer.destroyTrace("t")
        let dir = TemporaryDirectory()
        drain(trace, to: dir.path)
        return dir
    }

    @Test("every field kind, both alignments, two CPUs, three channels, clock gaps, empty payloads and strings",
          arguments: [UInt8(0), 8])
    func sameLines(alignment: UInt8) throws {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 2, alignment: alignment, clock: { clock.now })
        let all = try tracer.marker("kinds", "all", RoundTripTests.everyKind,
                                    as: (UInt8, Int16, Int32, Int, Int64, UInt32, UInt32, Int32, UInt32,
                                         UnsafeRawPointer, String, Int32).self)
        let empty = try tracer.marker("other", "empty", "", as: Void.self)
        let octal = try tracer.marker("third", "oct", "o %o n #n8u%llu X %X", as: (UInt32, UInt64, UInt32).self)
        try tracer.setupTrace("t")
        try tracer.updateChannel(trace: "t", channel: "kinds") { $0.subbufferSize = 4096; $0.subbufferCount = 64 }
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        for cpu in 0..<2 {
            #expect(onCPU(cpu) {
                let pointer = UnsafeRawPointer(bitPattern: 0xF00D)!
                for i in 0..<400 {
                    clock.advance(i % 97 == 0 ? 1 << 28 : UInt64(500 + i))
                    all.record(UInt8(i % 256), Int16(-i), Int32(i * 1000), -i, Int64.min + Int64(i), UInt32(i), UInt32(i),
                               Int32(i), UInt32(i), pointer, String(repeating: "ü", count: i % 3), Int32(-i))
                    if i % 5 == 0 { empty.record() }
                    if i % 9 == 0 { octal.record(UInt32(i), UInt64(i) << 33, 0xABCDEF) }
                }
            })
        }
        try tracer.stopTrace("t")
        let (want, text, stream) = streamedNextToWhole(try tracer.destroyTrace("t")) { $0.channel != Metadata.channel }
        #expect(text.split(separator: "\n").count == 2 * (400 + 80 + 45))
        #expect(text == want)
        #expect(stream.problems.isEmpty && stream.metadata.problems.isEmpty)
    }

    @Test("a damaged buffer file: the same problems as the whole-trace reader, the readable events streamed")
    func damaged() throws {
        let dir = try tickTrace(cpus: 1, events: 2000)
        defer { dir.remove() }
        // The second sub-buffer's magic and the third's last event.
        let path = dir.path + "/app_0"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[4096 + SubbufferHeader.Field.magicNumber] ^= 0xFF
        let lost = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2 * 4096 + SubbufferHeader.Field.lostSize, as: UInt32.self) }
        withUnsafeBytes(of: lost - 3) { bytes.replaceSubrange(2 * 4096 + SubbufferHeader.Field.lostSize..<2 * 4096 + SubbufferHeader.Field.lostSize + 4, with: $0) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let whole = TraceReader().read(directory: dir.path)
        let (text, stream) = streamed(dir.path)
        #expect(!stream.problems.isEmpty)
        #expect(stream.problems.map(\.description) == whole.problems.map(\.description))
        #expect(text == whole.events.filter { $0.channel == "app" }.map { $0.line + "\n" }.joined())
    }

    @Test("a header that claims 1 GiB sub-buffers in a file of a few: reported, the other files streamed")
    func hugeSubbufferClaim() throws {
        let dir = try tickTrace(cpus: 2, events: 300)
        defer { dir.remove() }
        let path = dir.path + "/app_0"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fileSize = bytes.count
        withUnsafeBytes(of: UInt32(1 << 30)) {
            bytes.replaceSubrange(SubbufferHeader.Field.bufSize..<SubbufferHeader.Field.bufSize + 4, with: $0)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (text, stream) = streamed(dir.path)
        #expect(stream.problems.map(\.description).contains { $0.contains("app_0") &&
            $0.contains("the last \(fileSize) bytes are not a whole \(1 << 30)-byte sub-buffer") },
                "\(stream.problems.map(\.description))")
        #expect(text.split(separator: "\n").count == 300)
        #expect(!text.contains("(cpu 0)") && text.contains("(cpu 1)"))
    }
}

/// What `lttfs dump` prints for the trace in `directory`, and the stream
/// (its problems).
/// Drains `trace` into a temporary directory and reads it both ways: whole
/// (`TraceReader`, which must find no problem) and streamed. `want` is the
/// whole reader's text of the events `keep` selects, `text` the stream's.
func streamedNextToWhole(_ trace: Trace, keep: (DecodedEvent) -> Bool)
    -> (want: String, text: String, stream: TraceStream) {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    drain(trace, to: dir.path)
    let whole = TraceReader().read(directory: dir.path)
    #expect(whole.problems.isEmpty)
    let (text, stream) = streamed(dir.path)
    return (whole.events.filter(keep).map { $0.line + "\n" }.joined(), text, stream)
}

func streamed(_ directory: String) -> (text: String, stream: TraceStream) {
    let stream = TraceStream(directory: directory)
    let text = EventText(stream)
    var out = TextBuffer(capacity: 64)
    stream.forEach { text.append($0, to: &out) }
    return (String(decoding: out.bytes, as: UTF8.self), stream)
}
