import Foundation
import LTTTraceTestSupport
import Testing
import LTTTestSupport
import LTTFormat
import LTTRelay
import LTTReader
@testable import LTTTrace

@Suite("The reader against corrupted traces")
struct ReaderFuzzTests {
    /// A small valid trace on disk: returns file name -> bytes.
    static func validTrace(alignment: UInt8) throws -> [String: [UInt8]] {
        let clock = TestClock()
        let tracer = Tracer(cpuCount: 2, alignment: alignment, clock: { clock.now })
        let a = try tracer.marker("app", "a", "n %d s %s v %llu", as: (Int32, String, UInt64).self)
        let b = try tracer.marker("app", "b", "c %c h %hu", as: (UInt8, UInt16).self)
        try tracer.setupTrace("f")
        try tracer.updateChannel(trace: "f", channel: "app") { $0.subbufferSize = 4096; $0.subbufferCount = 8 }
        try tracer.allocTrace("f")
        try tracer.startTrace("f")
        for i in 0..<300 {
            clock.advance(UInt64(100 + i * 37))
            a.record(Int32(i), String(repeating: "x", count: i % 13), UInt64(i) << 40)
            b.record(UInt8(i & 0xFF), UInt16(i))
            if i % 50 == 0 { clock.advance(1 << 28) }
        }
        let trace = try tracer.destroyTrace("f")
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        drain(trace, to: dir.path)
        #expect(TraceReader().read(directory: dir.path).problems.isEmpty)
        var files: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            files[name] = [UInt8](FileManager.default.contents(atPath: dir.path + "/" + name)!)
        }
        return files
    }

    func write(_ files: [String: [UInt8]], to dir: String) {
        for (name, bytes) in files {
            _ = FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes))
        }
    }

    @Test("header fields set to bad values are each reported with file, sub-buffer and offset")
    func headerCorruptions() throws {
        let original = try Self.validTrace(alignment: 8)
        // The app file with the most sub-buffers (producers ran on any CPU).
        let target = original.filter { $0.key.hasPrefix("app_") }.max { $0.value.count < $1.value.count }!.key
        #expect(original[target]!.count >= 2 * 4096)
        let cases: [(Int, [UInt8], String)] = [
            (SubbufferHeader.Field.magicNumber, [0xEF, 0xBE, 0xAD, 0xDE], "magic"),
            (SubbufferHeader.Field.magicNumber, [0x00, 0xD6, 0xB7, 0xED], "other byte order"),
            (SubbufferHeader.Field.majorVersion, [3], "version"),
            (SubbufferHeader.Field.minorVersion, [2], "version"),
            (SubbufferHeader.Field.archSize, [5], "arch_size"),
            (SubbufferHeader.Field.alignment, [4], "alignment"),
            (SubbufferHeader.Field.bufSize, [0, 0x20, 0, 0], "buf_size"),
            (SubbufferHeader.Field.lostSize, [0xFF, 0xFF, 0xFF, 0xFF], "never closed"),
            (SubbufferHeader.Field.lostSize, [0xF0, 0x0F, 0, 0], "lost_size"),
            (SubbufferHeader.Field.cycleCountEnd, [0, 0, 0, 0, 0, 0, 0, 0], "cycle_count_end"),
            (SubbufferHeader.Field.startFreq, [0, 0, 0, 0, 0, 0, 0, 0], "start_freq"),
        ]
        for (field, bytes, words) in cases {
            var files = original
            let subbuffer = 1
            let base = subbuffer * 4096
            for (i, byte) in bytes.enumerated() { files[target]![base + field + i] = byte }
            let dir = TemporaryDirectory()
            write(files, to: dir.path)
            let result = TraceReader().read(directory: dir.path)
            dir.remove()
            let hit = result.problems.first { $0.file == target && $0.subbuffer == subbuffer }
            #expect(hit != nil, "\(words) not reported")
            #expect(hit?.message.contains(words) == true, "\(words): \(hit?.description ?? "-")")
            #expect(hit?.offset == base + field, "\(words): \(hit?.description ?? "-")")
        }
    }

    @Test("structural damage is reported: truncated file, missing metadata, undeclared id")
    func structuralDamage() throws {
        let original = try Self.validTrace(alignment: 0)
        let target = original.filter { $0.key.hasPrefix("app_") }.max { $0.value.count < $1.value.count }!.key
        var truncated = original
        truncated[target]!.removeLast(100)
        var noMetadata = original
        noMetadata["metadata_0"] = nil
        var undeclared = original
        // The first event of the first sub-buffer: set its 5-bit id to 20.
        let word = undeclared[target]!.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 68, as: UInt32.self) }
        let patched = (word & EventHeader.tscMask) | (20 << 27)
        withUnsafeBytes(of: patched) { for i in 0..<4 { undeclared[target]![68 + i] = $0[i] } }
        var badName = original
        badName["garbage"] = [1, 2, 3]
        for (files, words) in [(truncated, "whole number"), (noMetadata, "no metadata_0"),
                               (undeclared, "not declared"), (badName, "<channel>_<cpu>")] {
            let dir = TemporaryDirectory()
            write(files, to: dir.path)
            let result = TraceReader().read(directory: dir.path)
            dir.remove()
            #expect(result.problems.contains { $0.message.contains(words) }, "\(words): \(result.problems.prefix(3))")
        }
    }

    @Test("random corruption never crashes the reader, and every problem says where", arguments: [UInt8(0), 8])
    func randomCorruption(alignment: UInt8) throws {
        let original = try Self.validTrace(alignment: alignment)
        let names = original.keys.sorted()
        var rng = SplitMix64(state: 0x5EED + UInt64(alignment))
        let deadline = Date().addingTimeInterval(20)
        var iterations = 0, reported = 0
        while iterations < 300 && Date() < deadline {
            iterations += 1
            var files = original
            let name = names[Int(rng.next() % UInt64(names.count))]
            var bytes = files[name]!
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                switch rng.next() % 5 {
                case 0, 1: // flip a byte anywhere
                    if !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1 + rng.next() % 255) }
                case 2: // a byte in some sub-buffer header
                    if bytes.count >= 4096 {
                        let sub = Int(rng.next() % UInt64(bytes.count / 4096))
                        bytes[sub * 4096 + Int(rng.next() % 68)] = UInt8(truncatingIfNeeded: rng.next())
                    }
                case 3: // truncate
                    if !bytes.isEmpty { bytes.removeLast(Int(rng.next() % UInt64(min(bytes.count, 5000)))) }
                default: // a run of random bytes in the data
                    if bytes.count > 200 {
                        let at = Int(rng.next() % UInt64(bytes.count - 64))
                        for i in 0..<64 { bytes[at + i] = UInt8(truncatingIfNeeded: rng.next()) }
                    }
                }
            }
            files[name] = bytes
            let dir = TemporaryDirectory()
            write(files, to: dir.path)
            let result = TraceReader().read(directory: dir.path)
            dir.remove()
            if !result.problems.isEmpty { reported += 1 }
            for p in result.problems {
                #expect(!p.file.isEmpty && !p.message.isEmpty)
                if p.subbuffer != nil { #expect(p.offset != nil, "\(p)") }
            }
        }
        #expect(iterations >= 50)
        // Mutations inside string and integer payloads are valid traces with
        // other values; everything structural is caught. Most must be.
        #expect(reported * 2 >= iterations, "\(reported) of \(iterations) reported")
    }
}
