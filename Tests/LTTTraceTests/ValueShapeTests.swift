import Foundation
import LTTTraceTestSupport
import Testing
import LTTFormat
import LTTReader
@testable import LTTTrace

/// The C library's values recorded through the code made for a marker's
/// shape (`ValueShape`), against the general loop over the slots
/// (`FieldsPayload<ValueFields>`) that every other marker takes.
@Suite("C values: code made for the common shapes")
struct ValueShapeTests {
    /// The format of a marker whose fields are `kinds`.
    static func format(_ kinds: [ValueKind]) -> String {
        kinds.enumerated().map { i, kind in
            switch kind {
            case .integer32: "f\(i) %d"
            case .integer64: "f\(i) %lld"
            case .text: "f\(i) %s"
            }
        }.joined(separator: " ")
    }

    /// Every list of 1 to 3 kinds: the 39 shapes with code made for them.
    static var everyShape: [[ValueKind]] {
        var shapes: [[ValueKind]] = [[]]
        var all: [[ValueKind]] = []
        for _ in 1...ValueShape.maximumFields {
            shapes = shapes.flatMap { shape in ValueKind.allCases.map { shape + [$0] } }
            all += shapes
        }
        return all
    }

    @Test("a marker's shape is found at registration: 32- and 64-bit integers in host order and texts, up to three fields; any other keeps the general loop")
    func shapes() throws {
        let tracer = Tracer(cpuCount: 1)
        var registered = 0
        func kinds(_ format: String) throws -> [ValueKind]? {
            registered += 1
            return try tracer.register(channel: "shape", name: "m\(registered)", format: format).valueShape?.fieldKinds
        }
        #expect(try kinds("a %d") == [.integer32])
        #expect(try kinds("a %u b %s") == [.integer32, .text])
        #expect(try kinds("a %lld b %ld c %p") == [.integer64, .integer64, .integer64])
        #expect(try kinds("s %s t %s u %s") == [.text, .text, .text])
        #expect(try kinds("a %x b %llu") == [.integer32, .integer64])
        #expect(try kinds("") == nil)                       // nothing to record but the header
        #expect(try kinds("a %c") == nil)                   // a byte
        #expect(try kinds("a %hd s %s") == nil)             // a short
        #expect(try kinds("a #n4u%u") == nil)               // network order
        #expect(try kinds("a #n8u%llu s %s") == nil)
        #expect(try kinds("a %d b %d c %d d %d") == nil)    // four fields
        #expect(Self.everyShape.count == 39)
        for shape in Self.everyShape {
            #expect(try kinds(Self.format(shape)) == shape)
        }
    }

    /// What a shape's list of parts sizes and stores, read from a C
    /// caller's values: its size, and the bytes it stores into a buffer of
    /// 0xAA bytes, with the guard bytes after it.
    struct PayloadBytes: ValuePartsUser {
        let alignment: Int
        func use<Parts: ValueParts>(_ parts: Parts.Type, values: UnsafeRawPointer) -> [UInt8] {
            TypedPayload(Parts(values: values, field: 0)).bytes(alignment: alignment)
        }
    }

    /// The values of one event, as the C library hands them over: 16 bytes
    /// per field, `struct lttfs_value`.
    final class Values {
        let entries: UnsafeMutableRawPointer
        var texts: [UnsafeMutablePointer<CChar>] = []
        init(count: Int) {
            entries = .allocate(byteCount: max(1, count) * ValueFields.stride, alignment: 16)
            entries.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, count) * ValueFields.stride)
        }
        deinit {
            texts.forEach { free($0) }
            entries.deallocate()
        }
        func integer(_ i: Int, _ bits: UInt64) {
            entries.storeBytes(of: bits, toByteOffset: i * ValueFields.stride, as: UInt64.self)
        }
        /// A text, with `length` as the caller measured it (its bytes up to
        /// a NUL inside it, or past it).
        func text(_ i: Int, _ bytes: [UInt8]?, length: UInt64? = nil) {
            guard let bytes else {
                integer(i, 0)
                entries.storeBytes(of: length ?? 0, toByteOffset: i * ValueFields.stride + 8, as: UInt64.self)
                return
            }
            // An allocation of exactly the text and its NUL: a read past
            // it is ASan's and the word copy's concern (FormatTests).
            let copy = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(copy).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            copy[bytes.count] = 0
            texts.append(copy)
            integer(i, UInt64(UInt(bitPattern: copy)))
            entries.storeBytes(of: length ?? UInt64(bytes.count), toByteOffset: i * ValueFields.stride + 8,
                               as: UInt64.self)
        }
    }

    /// Texts that reach every branch of the text store: empty, shorter
    /// than a word, word copies of odd and even lengths, past the word copy,
    /// a NUL inside, a length past the NUL, and NULL.
    static let texts: [[UInt8]?] = [
        [], Array("a".utf8), Array("abc".utf8), Array("twenty-seven bytes of text.".utf8),
        Array(String(repeating: "é", count: 32).utf8), Array(String(repeating: "x", count: 65).utf8),
        Array("ab\0cd".utf8), Array("é\0".utf8), nil,
    ]
    static let integers: [UInt64] = [0, 1, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0001, 0xDEAD_BEEF_0BAD_F00D, .max]

    @Test("every shape stores, at every alignment, the bytes the general loop stores, and sizes the event as it does",
          arguments: [0, 4, 8])
    func sameBytesAsTheGeneralLoop(alignment: Int) throws {
        let tracer = Tracer(cpuCount: 1)
        var compared = 0
        for (m, kinds) in Self.everyShape.enumerated() {
            let core = try tracer.register(channel: "shape", name: "s\(m)", format: Self.format(kinds))
            let shape = try #require(core.valueShape)
            let slots = UnsafePointer(core.slots.baseAddress!)
            // Each field takes each of its values once, the others theirs
            // at a rotating index: every value in every position, without
            // the product of all of them.
            let rounds = max(Self.texts.count, Self.integers.count)
            for round in 0..<rounds {
                let values = Values(count: kinds.count)
                for (i, kind) in kinds.enumerated() {
                    let pick = round &+ i * 3
                    switch kind {
                    case .integer32, .integer64: values.integer(i, Self.integers[pick % Self.integers.count])
                    case .text:
                        let text = Self.texts[pick % Self.texts.count]
                        // A length one past the NUL, as a caller that
                        // measured the wrong string would pass; a NULL
                        // text with a length, which must not count.
                        values.text(i, text, length: text.map { UInt64($0.count + (round % 4 == 3 ? 1 : 0)) }
                                        ?? [0, 100, .max][round % 3])
                    }
                }
                let general = FieldsPayload(ValueFields(values: values.entries), slots: slots, count: kinds.count)
                    .bytes(alignment: alignment)
                let shaped = shape.withParts(of: values.entries, PayloadBytes(alignment: alignment))
                #expect(shaped == general, "\(kinds), round \(round)")
                compared += 1
            }
        }
        #expect(compared == 39 * 9)
    }

    @Test("a text no buffer holds is sized as the general loop sizes it, clamped to 2^31 - 1 bytes, and the event is counted lost, not stored")
    func textTooLong() throws {
        let tracer = Tracer(cpuCount: 1)
        let core = try tracer.register(channel: "shape", name: "long", format: "n %d s %s")
        let shape = try #require(core.valueShape)
        struct Size: ValuePartsUser {
            func use<Parts: ValueParts>(_ parts: Parts.Type, values: UnsafeRawPointer) -> Int {
                TypedPayload(Parts(values: values, field: 0)).size(alignment: 8)
            }
        }
        // (length passed, bytes the text is sized as): 4 for the integer,
        // then the text and its NUL.
        let lengths: [(UInt64, Int)] = [(0x7FFF_FFFE, 0x7FFF_FFFE), (0x7FFF_FFFF, 0x7FFF_FFFF),
                                        (0x8000_0000, 0x7FFF_FFFF), (UInt64(UInt32.max), 0x7FFF_FFFF),
                                        (.max, 0x7FFF_FFFF)]
        let values = Values(count: 2)
        values.integer(0, 7)
        for (length, sized) in lengths {
            values.text(1, Array("abc".utf8), length: length)
            let general = FieldsPayload(ValueFields(values: values.entries),
                                        slots: UnsafePointer(core.slots.baseAddress!), count: 2).size(alignment: 8)
            #expect(shape.withParts(of: values.entries, Size()) == 4 + sized + 1, "\(length)")
            #expect(general == 4 + sized + 1, "\(length)")
        }
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        values.text(1, Array("abc".utf8), length: UInt64(UInt32.max))
        #expect(core.emit(fieldCount: 2, values: values.entries) == { var r = EmitResult(); r.lost = 1; return r }())
        values.text(1, Array("abc".utf8))
        #expect(core.emit(fieldCount: 2, values: values.entries)?.recorded == 1)
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty)
        #expect(result.events.filter { $0.channel == "shape" }.map { $0.fields.map(\.value) }
                    == [[.signed(7), .string("abc")]])
    }

    /// Sizes the payload, lets `change` rewrite the caller's array, then
    /// stores: what a second thread of a buggy caller can do.
    struct ChangedBetween: ValuePartsUser {
        let alignment: Int
        let change: () -> Void
        func use<Parts: ValueParts>(_ parts: Parts.Type, values: UnsafeRawPointer) -> [UInt8] {
            let payload = TypedPayload(Parts(values: values, field: 0))
            let size = payload.size(alignment: alignment)
            change()
            // Room for a wrong store of the changed values, so that a
            // failing test overruns nothing but its own guard bytes.
            var bytes = [UInt8](repeating: 0xAA, count: size + 4096)
            bytes.withUnsafeMutableBytes { payload.store(at: $0.baseAddress!, alignment: alignment) }
            let overrun = bytes[(size + 16)...].contains { $0 != 0xAA }
            return withUnsafeBytes(of: UInt64(size)) { Array($0) } + bytes[..<(size + 16)] + (overrun ? [0] : [])
        }
    }

    @Test("each value is read once: an array rewritten between the sizing and the stores changes nothing stored, and nothing is stored past the size",
          arguments: [0, 8])
    func valuesReadOnce(alignment: Int) throws {
        let tracer = Tracer(cpuCount: 1)
        let longer = Array(String(repeating: "a longer text ", count: 20).utf8)
        for (m, kinds) in Self.everyShape.enumerated() {
            let core = try tracer.register(channel: "shape", name: "once\(m)", format: Self.format(kinds))
            let shape = try #require(core.valueShape)
            let values = Values(count: kinds.count)
            for (i, kind) in kinds.enumerated() {
                switch kind {
                case .integer32, .integer64: values.integer(i, 0x0102_0304_0506_0708 &* UInt64(i + 1))
                case .text: values.text(i, Array("text \(i)".utf8))
                }
            }
            let expected = shape.withParts(of: values.entries, PayloadBytes(alignment: alignment))
            let changed = shape.withParts(of: values.entries, ChangedBetween(alignment: alignment) {
                for (i, kind) in kinds.enumerated() {
                    switch kind {
                    case .integer32, .integer64: values.integer(i, .max)
                    case .text: values.text(i, longer)
                    }
                }
            })
            #expect(changed == expected, "\(kinds)")
        }
    }

    @Test("events of every shape, recorded into a trace and read back, hold the values the caller passed",
          arguments: [UInt8(0), 8])
    func recordedAndReadBack(alignment: UInt8) throws {
        let tracer = Tracer(cpuCount: 1, alignment: alignment)
        let cores = try Self.everyShape.enumerated().map { m, kinds in
            try tracer.register(channel: "shape", name: "s\(m)", format: Self.format(kinds))
        }
        #expect(cores.allSatisfy { $0.valueShape != nil })
        try tracer.setupTrace("t")
        try tracer.allocTrace("t")
        try tracer.startTrace("t")
        var expected: [[FieldValue]] = []
        for (m, kinds) in Self.everyShape.enumerated() {
            let values = Values(count: kinds.count)
            var fields: [FieldValue] = []
            for (i, kind) in kinds.enumerated() {
                let n = UInt64(m * 10 + i)
                switch kind {
                case .integer32:
                    values.integer(i, UInt64(bitPattern: -Int64(n)))
                    fields.append(.signed(-Int64(n)))
                case .integer64:
                    values.integer(i, n << 33)
                    fields.append(.signed(Int64(n << 33)))
                case .text:
                    let text = m % 5 == 0 && i == 0 ? nil : "text \(n) " + String(repeating: "é", count: m % 40)
                    values.text(i, text.map { Array($0.utf8) })
                    fields.append(.string(text ?? "(null)"))
                }
            }
            #expect(cores[m].emit(fieldCount: kinds.count, values: values.entries)?.recorded == 1)
            // A wrong count is refused, and records nothing.
            #expect(cores[m].emit(fieldCount: kinds.count + 1, values: values.entries) == nil)
            expected.append(fields)
        }
        try tracer.stopTrace("t")
        let result = drainAndRead(try tracer.destroyTrace("t"))
        #expect(result.problems.isEmpty, "\(result.problems.prefix(3))")
        let events = result.events.filter { $0.channel == "shape" }
        #expect(events.map(\.marker) == Self.everyShape.indices.map { "s\($0)" })
        #expect(events.map { $0.fields.map(\.value) } == expected)
    }
}

extension EventPayload {
    /// The payload's size, then the bytes it stores into a buffer of 0xAA
    /// bytes (16 more than its size, to see a store past its end).
    func bytes(alignment: Int) -> [UInt8] {
        let size = size(alignment: alignment)
        var bytes = [UInt8](repeating: 0xAA, count: size + 16)
        bytes.withUnsafeMutableBytes { store(at: $0.baseAddress!, alignment: alignment) }
        return withUnsafeBytes(of: UInt64(size)) { Array($0) } + bytes
    }
}
