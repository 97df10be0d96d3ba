import LTTFormat

/// `DecodedEvent.line`, written straight from a `TraceStream.Event`'s bytes
/// into a `TextBuffer`: the same text, with nothing allocated or retained
/// per event (the names are laid out once, in flat tables).
///
///     channel.marker: seconds.nanoseconds (cpu N) { name = value, ... }
public final class EventText {
    /// One field, as plain values.
    struct Field {
        var name: Int            // offset in `text`
        var nameCount: Int
        var size: Int            // 0: a string
        var signed: Bool
        var network: Bool
        var radix: UInt8         // 10, 16 (x, p), 17 (X: upper case), 8
    }

    struct MarkerEntry {
        var prefix: Int          // "channel.marker: " in `text`
        var prefixCount: Int
        var firstField: Int
        var fieldCount: Int
        /// The most bytes a line can take besides its strings.
        var fixedBound: Int
    }

    private let text: UnsafeMutableBufferPointer<UInt8>
    private let fields: UnsafeMutableBufferPointer<Field>
    private let markers: UnsafeMutableBufferPointer<MarkerEntry>
    private let time: TraceTime

    public init(_ stream: TraceStream) {
        var text: [UInt8] = []
        var fields: [Field] = []
        var markers: [MarkerEntry] = []
        for marker in stream.markers {
            let prefix = Array("\(marker.channel).\(marker.name): ".utf8)
            var entry = MarkerEntry(prefix: text.count, prefixCount: prefix.count, firstField: fields.count,
                                    fieldCount: marker.fields.count, fixedBound: prefix.count + 64)
            text += prefix
            for field in marker.fields {
                let name = Array("\(field.name) = ".utf8)
                var f = Field(name: text.count, nameCount: name.count, size: 0, signed: false, network: false, radix: 10)
                if case .integer(let size, let signed, let network) = field.kind {
                    f.size = size
                    f.signed = signed
                    f.network = network
                    switch field.conversion {
                    case "x", "p": f.radix = 16
                    case "X": f.radix = 17
                    case "o": f.radix = 8
                    default: f.radix = 10
                    }
                }
                text += name
                fields.append(f)
                entry.fixedBound += name.count + 2 + 24 + 2
            }
            markers.append(entry)
        }
        func copy<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, array.count))
            _ = p.initialize(from: array)
            return p
        }
        self.text = copy(text)
        self.fields = copy(fields)
        self.markers = copy(markers)
        time = stream.time ?? TraceTime(frequency: 1_000_000_000, offsetSeconds: 0, offsetCycles: 0)
    }

    deinit {
        text.deallocate()
        fields.deallocate()
        markers.deallocate()
    }

    /// Appends the line of `event` and a newline to `out`.
    public func append(_ event: borrowing TraceStream.Event, to out: inout TextBuffer) {
        let entry = markers[event.marker]
        let raw = event.bytes
        let limit = event.limit
        // Strings take at most the rest of the data (three times as much
        // where invalid UTF-8 becomes U+FFFD, reserved when met).
        out.reserve(entry.fixedBound + max(0, limit - event.payloadStart))
        let text = UnsafeRawPointer(self.text.baseAddress!)
        out.put(text + entry.prefix, entry.prefixCount)
        Self.putTime(time.nanoseconds(event.clock), to: &out)
        Self.put(" (cpu ", to: &out)
        Self.putDigits(UInt64(event.cpu), radix: 10, to: &out)
        Self.put(") { ", to: &out)
        let start = event.payloadStart
        let alignment = event.alignment
        var o = start
        for i in 0..<entry.fieldCount {
            let f = fields[entry.firstField + i]
            if i > 0 { Self.put(", ", to: &out) }
            out.put(text + f.name, f.nameCount)
            if f.size == 0 {
                let (end, ascii) = Self.scanString(raw, from: o, limit: limit)
                out.put(UInt8(ascii: "\""))
                if ascii {
                    if end > o { out.put(raw.baseAddress! + o, end - o) }
                } else {
                    // As every other reader shows it: invalid UTF-8 as U+FFFD.
                    out.put(String(decoding: UnsafeRawBufferPointer(rebasing: raw[o..<end]), as: UTF8.self))
                    out.reserve(entry.fixedBound + max(0, limit - end) * 3)
                }
                out.put(UInt8(ascii: "\""))
                o = end + 1
                continue
            }
            o += PayloadLayout.padding(at: o - start, size: f.size, alignment: alignment)
            guard o + f.size <= limit else { break }
            var bits: UInt64
            switch f.size {
            case 1: bits = UInt64(raw.load(fromByteOffset: o, as: UInt8.self))
            case 2:
                let v = raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)
                bits = UInt64(f.network ? v.bigEndian : v)
            case 4:
                let v = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)
                bits = UInt64(f.network ? v.bigEndian : v)
            default:
                let v = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
                bits = f.network ? v.bigEndian : v
            }
            o += f.size
            if f.signed {
                let shift = UInt64(64 - 8 * f.size)
                let value = Int64(bitPattern: bits << shift) >> Int64(shift)
                if value < 0 { out.put(UInt8(ascii: "-")) }
                Self.putDigits(value.magnitude, radix: 10, to: &out)
            } else {
                switch f.radix {
                case 16, 17:
                    Self.put("0x", to: &out)
                    Self.putDigits(bits, radix: 16, upper: f.radix == 17, to: &out)
                case 8:
                    out.put(UInt8(ascii: "0"))
                    Self.putDigits(bits, radix: 8, to: &out)
                default:
                    Self.putDigits(bits, radix: 10, to: &out)
                }
            }
        }
        Self.put(" }\n", to: &out)
    }

    @inline(__always)
    static func put(_ literal: StaticString, to out: inout TextBuffer) {
        out.put(literal.utf8Start, literal.utf8CodeUnitCount)
    }

    /// Where the NUL-terminated string at `start` ends (its NUL, or
    /// `limit`), and whether its bytes are all ASCII: eight bytes a step
    /// while eight remain before `limit`.
    @inline(__always)
    static func scanString(_ raw: UnsafeRawBufferPointer, from start: Int, limit: Int) -> (end: Int, ascii: Bool) {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var end = start
        var high: UInt64 = 0
        while end &+ 8 <= limit {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: end, as: UInt64.self))
            // Some byte is 0 (the classic test: exact for the lowest one).
            let zeros = (word &- ones) & ~word & highs
            if zeros != 0 {
                let n = zeros.trailingZeroBitCount >> 3
                // The high bits of the n bytes before the NUL.
                high |= n == 0 ? 0 : word & (highs >> UInt64(64 &- 8 &* n))
                return (end &+ n, high == 0)
            }
            high |= word & highs
            end &+= 8
        }
        while end < limit && raw[end] != 0 {
            high |= UInt64(raw[end] & 0x80)
            end &+= 1
        }
        return (end, high == 0)
    }

    /// "00" to "99": two decimal digits per division.
    private static let digitPairText: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
    @inline(__always) private static var digitPairs: UnsafePointer<UInt8> { digitPairText.utf8Start }

    /// Stores the `count` (even) last decimal digits of `value` at `at`,
    /// zero-padded.
    @inline(__always)
    private static func storePairs(_ value: UInt64, count: Int, at: UnsafeMutablePointer<UInt8>) {
        var v = value
        var i = count
        while i > 0 {
            let q = v / 100
            i &-= 2
            storePair(v &- q &* 100, at: at + i)
            v = q
        }
    }

    /// The two decimal digits of `value` (below 100) at `at`.
    @inline(__always)
    private static func storePair(_ value: UInt64, at: UnsafeMutablePointer<UInt8>) {
        let r = 2 &* Int(truncatingIfNeeded: value)
        at[0] = digitPairs[r]
        at[1] = digitPairs[r &+ 1]
    }

    /// `seconds.nanoseconds`, nine digits (`TraceTime.secondsString`).
    @inline(__always)
    static func putTime(_ nanoseconds: Int64, to out: inout TextBuffer) {
        if nanoseconds < 0 { out.put(UInt8(ascii: "-")) }
        let magnitude = nanoseconds.magnitude
        putDigits(magnitude / 1_000_000_000, radix: 10, to: &out)
        out.put(UInt8(ascii: "."))
        // Nine digits as one and two runs of four: three short chains of
        // divisions that run side by side.
        let fraction = magnitude % 1_000_000_000
        let at = out.base + out.count
        let eight = fraction % 100_000_000
        at[0] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: fraction / 100_000_000)
        storePairs(eight / 10_000, count: 4, at: at + 1)
        storePairs(eight % 10_000, count: 4, at: at + 5)
        out.advance(9)
    }

    /// `value` in `radix` (22 digits at most: 64 bits in octal). Each radix
    /// is its own loop, so that the divisions are by constants.
    @inline(__always)
    static func putDigits(_ value: UInt64, radix: UInt64, upper: Bool = false, to out: inout TextBuffer) {
        switch radix {
        case 10: putDecimal(value, &out)
        case 16: putDigits(value, 16, upper, &out)
        default: putDigits(value, 8, upper, &out)
        }
    }

    /// `value` in decimal, two digits per division.
    @inline(__always)
    private static func putDecimal(_ value: UInt64, _ out: inout TextBuffer) {
        if value < 10 {
            out.put(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value))
            return
        }
        // 20 digits at most; written backwards into 24 bytes, then copied.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            let at = d.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var v = value
            var i = 24
            while v >= 100 {
                let q = v / 100
                i &-= 2
                storePair(v &- q &* 100, at: at + i)
                v = q
            }
            if v >= 10 {
                i &-= 2
                storePair(v, at: at + i)
            } else {
                i &-= 1
                at[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v)
            }
            out.put(at + i, 24 &- i)
        }
    }

    @inline(__always)
    private static func putDigits(_ value: UInt64, _ radix: UInt64, _ upper: Bool, _ out: inout TextBuffer) {
        // Backwards into 24 bytes, then out in one copy.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            let letters = upper ? UInt8(ascii: "A") : UInt8(ascii: "a")
            var v = value
            var i = 24
            repeat {
                i &-= 1
                let digit = UInt8(truncatingIfNeeded: v % radix)
                d[i] = digit < 10 ? UInt8(ascii: "0") &+ digit : letters &+ digit &- 10
                v /= radix
            } while v != 0
            out.put(d.baseAddress! + i, 24 &- i)
        }
    }
}

