#if canImport(Glibc)
import Glibc
#endif

/// Where each field of a payload goes, ltt-serialize.c's rules: an integer
/// is aligned, relative to the payload start, to min(trace alignment, its
/// size); a string is NUL-terminated and not aligned; the payload itself
/// starts aligned to its largest field, so relative and absolute alignment
/// agree.
public enum PayloadLayout {
    /// Padding before an integer of `size` bytes at `offset`.
    @inlinable @inline(__always)
    public static func padding(at offset: Int, size: Int, alignment: Int) -> Int {
        lttAlignPadding(at: offset, size: size, alignment: alignment)
    }

    /// The alignment the payload start needs: its largest field's.
    @inlinable @inline(__always)
    public static func largestAlign(maxIntegerSize: Int, alignment: Int) -> Int {
        alignment == 0 ? 1 : max(1, min(maxIntegerSize, alignment))
    }

    /// One field as the hot path needs it: plain values, no reference
    /// counting (a MarkerField carries its name, a String).
    public struct Slot: Sendable {
        /// Stored integer size; 0 for a string.
        public let size: Int
        public let networkOrder: Bool
        public init(_ field: MarkerField) {
            if case .integer(let size, _, let network) = field.kind {
                self.size = size
                networkOrder = network
            } else {
                size = 0
                networkOrder = false
            }
        }
    }

    @inlinable @inline(__always)
    public static func storeInteger(_ bits: UInt64, size: Int, networkOrder: Bool, at p: UnsafeMutableRawPointer) {
        switch size {
        case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: bits), as: UInt8.self)
        case 2:
            let v = UInt16(truncatingIfNeeded: bits)
            p.storeBytes(of: networkOrder ? v.bigEndian : v, as: UInt16.self)
        case 4:
            let v = UInt32(truncatingIfNeeded: bits)
            p.storeBytes(of: networkOrder ? v.bigEndian : v, as: UInt32.self)
        default:
            p.storeBytes(of: networkOrder ? bits.bigEndian : bits, as: UInt64.self)
        }
    }

    /// Moves `offset` past one field: an integer of the slot's size after
    /// its padding, or a text of `textCount` bytes and its NUL.
    @inlinable @inline(__always)
    public static func advance(_ offset: inout Int, over slot: Slot, textCount: @autoclosure () -> Int,
                               alignment: Int) {
        if slot.size == 0 {
            offset &+= textCount() &+ 1
        } else {
            advance(&offset, overInteger: slot.size, alignment: alignment)
        }
    }

    /// Moves `offset` past an integer of `size` bytes, after its padding.
    @inlinable @inline(__always)
    public static func advance(_ offset: inout Int, overInteger size: Int, alignment: Int) {
        offset &+= padding(at: offset, size: size, alignment: alignment) &+ size
    }

    /// Stores an integer of `size` bytes at `base + offset` after its
    /// padding, and moves `offset` past it.
    @inlinable @inline(__always)
    public static func store(_ offset: inout Int, integer bits: UInt64, size: Int, networkOrder: Bool,
                             base: UnsafeMutableRawPointer, alignment: Int) {
        let o = offset &+ padding(at: offset, size: size, alignment: alignment)
        storeInteger(bits, size: size, networkOrder: networkOrder, at: base + o)
        offset = o &+ size
    }

    /// Stores one field at `base + offset` and moves `offset` past it: the
    /// integer (padded, in the slot's size and byte order), or the text that
    /// `storeText` stores at the address it is given, its NUL included
    /// (returning the bytes it used: `storeText(at:from:count:)` does it).
    @inlinable @inline(__always)
    public static func store(_ offset: inout Int, into slot: Slot, base: UnsafeMutableRawPointer, alignment: Int,
                             integer: @autoclosure () -> UInt64, storeText: (UnsafeMutableRawPointer) -> Int) {
        if slot.size == 0 {
            offset &+= storeText(base + offset)
        } else {
            store(&offset, integer: integer(), size: slot.size, networkOrder: slot.networkOrder, base: base,
                  alignment: alignment)
        }
    }
}

extension PayloadLayout {
    /// Stores a `%s` text at `text`: the bytes `copy` copies there
    /// (returning their count), then its NUL. Returns the bytes used.
    ///
    /// A `%s` field ends at its first NUL, and a reader finds the next field
    /// there: a NUL inside the text (a Swift `String` may hold "\0"; a C
    /// caller's length may reach past its string's end) would make it read
    /// the rest of the text as the following fields and events. As LTTng-UST's
    /// `lib_ring_buffer_strcpy` does, the text is cut there and the bytes
    /// reserved after it become '#' (`padInnerNUL`).
    @inlinable @inline(__always)
    public static func storeText(at text: UnsafeMutableRawPointer, _ copy: (UnsafeMutableRawPointer) -> Int) -> Int {
        let count = copy(text)
        padInnerNUL(text, count: count)
        (text + count).storeBytes(of: 0, as: UInt8.self)
        return count &+ 1
    }

    /// `storeText` of the `count` bytes at `source`: the text, its inner
    /// NULs made '#', then its NUL. Returns the bytes used, `count + 1`
    /// (with no source, `count` '#': the size reserved is always kept).
    ///
    /// A text of 4 to `wordCopyLimit` bytes, the common case, is copied a
    /// word at a time, each word tested for a zero byte as it is stored, so
    /// that the copy and the NUL search are one pass with no call: for a
    /// 27-byte text, `memmove` and `memchr` (two calls, and their vector
    /// set-up for so few bytes) cost a producer about 10 ns per event
    /// (ProducerBench, with and without them). The test is exact on
    /// the stored bytes: any word that held a zero sends the text to the
    /// general path, which searches what was stored, so a source that
    /// changes during the copy (another process's memory) is cut at a NUL
    /// it really left there, never past one.
    @inlinable @inline(__always)
    public static func storeText(at text: UnsafeMutableRawPointer, from source: UnsafeRawPointer?, count: Int) -> Int {
        guard let source, count > 0 else {
            let count = max(0, count)
            text.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "#"), count: count)
            (text + count).storeBytes(of: 0, as: UInt8.self)
            return count &+ 1
        }
        if count >= 4 && count <= wordCopyLimit && copyWords(from: source, to: text, count: count) {
            (text + count).storeBytes(of: 0, as: UInt8.self)
            return count &+ 1
        }
        return storeText(at: text) {
            $0.copyMemory(from: source, byteCount: count)
            return count
        }
    }

    /// The longest text `storeText(at:from:count:)` copies by words.
    @inlinable public static var wordCopyLimit: Int { 64 }

    /// Copies `count` bytes (4 ... `wordCopyLimit`) from `source` to
    /// `destination` in 8-byte (under 8 bytes: 4-byte) words, the last one
    /// ending at `count` and overlapping the one before. Returns false if a
    /// stored word held a zero byte (the caller then searches the text).
    @inlinable @inline(__always)
    static func copyWords(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, count: Int) -> Bool {
        // A word w holds a zero byte iff (w - 0x01..01) & ~w & 0x80..80 != 0.
        if count < 8 {
            let first = source.loadUnaligned(as: UInt32.self)
            let last = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            destination.storeBytes(of: first, as: UInt32.self)
            destination.storeBytes(of: last, toByteOffset: count &- 4, as: UInt32.self)
            let zero = ((first &- 0x0101_0101) & ~first) | ((last &- 0x0101_0101) & ~last)
            return zero & 0x8080_8080 == 0
        }
        var zero: UInt64 = 0
        var i = 0
        while i &+ 8 < count {
            let word = source.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            destination.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
            zero |= (word &- 0x0101_0101_0101_0101) & ~word
            i &+= 8
        }
        let word = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        destination.storeBytes(of: word, toByteOffset: count &- 8, as: UInt64.self)
        zero |= (word &- 0x0101_0101_0101_0101) & ~word
        return zero & 0x8080_8080_8080_8080 == 0
    }

    /// The '#' that replaces a stored text from its first NUL on: the
    /// reserved size does not change, and the field ends where it should.
    @inlinable @inline(__always)
    public static func padInnerNUL(_ text: UnsafeMutableRawPointer, count: Int) {
        guard count > 0, let nul = memchr(text, 0, count) else { return }
        nul.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "#"), count: text + count - nul)
    }
}

/// One field of a decoded payload.
public enum FieldValue: Sendable, Equatable, CustomStringConvertible {
    case signed(Int64)
    case unsigned(UInt64)
    case string(String)

    public var description: String {
        switch self {
        case .signed(let v): String(v)
        case .unsigned(let v): String(v)
        case .string(let s): "\"" + s + "\""
        }
    }
}

extension PayloadLayout {
    /// A payload as a reader finds it.
    public struct Decoded: Sendable {
        /// Where the payload starts (after its alignment padding) and ends,
        /// relative to the sub-buffer.
        public var start: Int
        public var end: Int
        public var fields: [(name: String, value: FieldValue, conversion: Character)]
    }

    /// Reads the payload of `fields` that follows an event header ending at
    /// `offset` (relative to the sub-buffer at `base`), reading nothing at or
    /// past `limit` (absolute): the inverse of `store`.
    public static func read(_ fields: [MarkerField], from bytes: ByteReader, base: Int, offset: Int, limit: Int,
                            alignment: Int) throws(ByteReader.OutOfBounds) -> Decoded {
        let maxInteger = fields.compactMap(\.storedSize).max() ?? 1
        let largest = largestAlign(maxIntegerSize: maxInteger, alignment: alignment)
        var o = offset + padding(at: offset, size: largest, alignment: alignment)
        let start = o
        var values: [(name: String, value: FieldValue, conversion: Character)] = []
        values.reserveCapacity(fields.count)
        for field in fields {
            switch field.kind {
            case .string:
                let (text, after) = try bytes.cString(base + o, limit: limit)
                values.append((field.name, .string(text), "s"))
                o = after - base
            case .integer(let size, let signed, let network):
                o += padding(at: o - start, size: size, alignment: alignment)
                let raw: UInt64
                switch size {
                case 1: raw = UInt64(try bytes.load(base + o, as: UInt8.self, limit: limit))
                case 2:
                    let v = try bytes.load(base + o, as: UInt16.self, limit: limit)
                    raw = UInt64(network ? v.bigEndian : v)
                case 4:
                    let v = try bytes.load(base + o, as: UInt32.self, limit: limit)
                    raw = UInt64(network ? v.bigEndian : v)
                default:
                    let v = try bytes.load(base + o, as: UInt64.self, limit: limit)
                    raw = network ? v.bigEndian : v
                }
                o += size
                if signed {
                    let shift = UInt64(64 - 8 * size)
                    values.append((field.name, .signed(Int64(bitPattern: raw << shift) >> Int64(shift)), field.conversion))
                } else {
                    values.append((field.name, .unsigned(raw), field.conversion))
                }
            }
        }
        return Decoded(start: start, end: o, fields: values)
    }
}
