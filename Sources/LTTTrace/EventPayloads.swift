import LTTFormat

// The payloads EventEmitter.emit records, one per way values reach it. Each
// is a plain value; `size` and `store` must agree for a given alignment
// (the reserve is `size`'s, the bytes `store`'s).

/// What an event carries, as the recording loop needs it: its size in a
/// trace of a given alignment, and the stores that write it. A generic
/// parameter of `EventEmitter.emit`, a value of one of the concrete types
/// below, not two closures: nothing is built per event to hand on to the
/// slow path, on the stack or (closures made escaping) on the heap.
@usableFromInline
protocol EventPayload {
    /// The payload's size in bytes for a trace of `alignment`.
    func size(alignment: Int) -> Int
    /// Writes the payload at `base`. Runs under the buffer lock: it must
    /// only store bytes.
    func store(at base: UnsafeMutableRawPointer, alignment: Int)
}

/// A payload's values as the size and store loops of `FieldsPayload` read
/// them: field i's integer (its 64-bit pattern) or its text, whichever the
/// field's slot says it is.
@usableFromInline
protocol PayloadFields {
    func integer(_ i: Int) -> UInt64
    func textCount(_ i: Int) -> Int
    /// Stores field i's text at `destination` (`PayloadLayout.storeText`,
    /// its NUL included); returns the bytes used, `textCount(i) + 1`.
    func storeText(_ i: Int, at destination: UnsafeMutableRawPointer) -> Int
}

/// `count` fields laid out by `slots` (ltt-serialize.c's rules, in
/// `PayloadLayout`), read from `fields`: the one size loop and the one
/// store loop of every payload whose values are plain integers and texts.
@usableFromInline
struct FieldsPayload<Fields: PayloadFields>: EventPayload {
    @usableFromInline let fields: Fields
    @usableFromInline let slots: UnsafePointer<PayloadLayout.Slot>
    @usableFromInline let count: Int

    @inlinable init(_ fields: Fields, slots: UnsafePointer<PayloadLayout.Slot>, count: Int) {
        self.fields = fields
        self.slots = slots
        self.count = count
    }

    @inlinable @inline(__always)
    func size(alignment: Int) -> Int {
        var offset = 0
        for i in 0..<count {
            PayloadLayout.advance(&offset, over: slots[i], textCount: fields.textCount(i), alignment: alignment)
        }
        return offset
    }

    @inlinable @inline(__always)
    func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        var offset = 0
        for i in 0..<count {
            PayloadLayout.store(&offset, into: slots[i], base: base, alignment: alignment,
                                integer: fields.integer(i)) { fields.storeText(i, at: $0) }
        }
    }
}

/// The values of a typed marker, laid out as a Swift tuple: each read at the
/// offset `TupleLayout` found for it.
@usableFromInline
struct TupleFields: PayloadFields {
    @usableFromInline let tuple: UnsafeRawPointer
    @usableFromInline let layout: UnsafePointer<TupleLayout.Field>

    @inlinable init(tuple: UnsafeRawPointer, layout: UnsafePointer<TupleLayout.Field>) {
        self.tuple = tuple
        self.layout = layout
    }

    @inlinable @inline(__always) func integer(_ i: Int) -> UInt64 { layout[i].load(from: tuple) }
    @inlinable @inline(__always) func textCount(_ i: Int) -> Int { layout[i].textCount(in: tuple) }
    @inlinable @inline(__always) func storeText(_ i: Int, at destination: UnsafeMutableRawPointer) -> Int {
        layout[i].storeText(in: tuple, at: destination)
    }
}

/// The values of a typed marker with an opaque type (no `TupleLayout`):
/// each value sizes and stores itself through its `TraceValue` methods.
@usableFromInline
struct PackPayload<each Value: TraceValue>: EventPayload {
    @usableFromInline let values: (repeat each Value)
    @usableFromInline let slots: UnsafePointer<PayloadLayout.Slot>

    @inlinable init(values: (repeat each Value), slots: UnsafePointer<PayloadLayout.Slot>) {
        self.values = values
        self.slots = slots
    }

    @inlinable
    func size(alignment: Int) -> Int {
        var size = 0
        var index = 0
        repeat (each values).traceAdvance(&size, slot: slots[postIncrement(&index)], alignment: alignment)
        return size
    }

    @inlinable
    func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        var offset = 0
        var index = 0
        repeat (each values).traceStore(&offset, slot: slots[postIncrement(&index)], base: base, alignment: alignment)
    }
}

/// `i++`: the field index while walking a parameter pack.
@inlinable @inline(__always)
func postIncrement(_ i: inout Int) -> Int {
    defer { i &+= 1 }
    return i
}

/// The values of a caller that is not Swift (`MarkerCore.emit(fieldCount:
/// values:)`, the C library's `struct lttfs_value` array): 16 bytes per
/// field, a 64-bit word (an integer's bit pattern, or a text's `const char
/// *`) then a text's length in bytes, which `LTTFS_STR` measured at the
/// call. The size reserved and the bytes stored both come from that length,
/// read twice from the same memory: `MarkerCore.emitThroughSlots` hands
/// over its own copy of the caller's array, which nothing else writes. So
/// they agree even if the caller's text changes meanwhile (at worst the
/// copy is torn, never longer; a NUL that appears within it ends the text,
/// `PayloadLayout.store`). A NULL text records "(null)"; a length
/// past `maximumTextCount` (no sub-buffer holds it) is sized as that, and
/// the event, too large for any buffer, is counted lost.
@usableFromInline
struct ValueFields: PayloadFields {
    @usableFromInline let values: UnsafeRawPointer

    @inlinable init(values: UnsafeRawPointer) { self.values = values }

    @usableFromInline static let stride = 16
    @usableFromInline static let maximumTextCount = Int(Int32.max)

    @inlinable @inline(__always) func integer(_ i: Int) -> UInt64 { Self.integer(at: values + Self.stride &* i) }
    @inlinable @inline(__always) func textCount(_ i: Int) -> Int { Self.text(at: values + Self.stride &* i).count }
    @inlinable @inline(__always) func storeText(_ i: Int, at destination: UnsafeMutableRawPointer) -> Int {
        let (start, count) = Self.text(at: values + Self.stride &* i)
        return PayloadLayout.storeText(at: destination, from: start, count: count)
    }

    /// An entry's integer: its 64-bit word.
    @inlinable @inline(__always)
    static func integer(at entry: UnsafeRawPointer) -> UInt64 { entry.loadUnaligned(as: UInt64.self) }

    /// An entry's text: where it starts and its length, clamped to
    /// `maximumTextCount`; a NULL text is `MarkerCore.nullText`. (Every C
    /// path reads a text through this: `ValueText` too.)
    @inlinable @inline(__always)
    static func text(at entry: UnsafeRawPointer) -> (start: UnsafeRawPointer, count: Int) {
        guard let start = UnsafeRawPointer(bitPattern: UInt(truncatingIfNeeded: integer(at: entry))) else {
            return (UnsafeRawPointer(MarkerCore.nullText.utf8Start), MarkerCore.nullText.utf8CodeUnitCount)
        }
        let length = entry.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        return (start, length < UInt64(maximumTextCount) ? Int(length) : maximumTextCount)
    }
}

/// Run-time arguments (the dynamic API, `lttfs record`), already checked
/// against the format's fields.
@usableFromInline
struct ArgumentsPayload: EventPayload {
    @usableFromInline let arguments: [TraceArgument]
    @usableFromInline let fields: [MarkerField]

    @usableFromInline init(arguments: [TraceArgument], fields: [MarkerField]) {
        self.arguments = arguments
        self.fields = fields
    }

    @usableFromInline func size(alignment: Int) -> Int {
        PayloadLayout.size(of: arguments, fields: fields, alignment: alignment)!
    }

    @usableFromInline func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        PayloadLayout.write(arguments, fields: fields, to: base, alignment: alignment)
    }
}

/// A text and its NUL: a `write_event` line (`Tracer.writeEvent`), whose
/// size is the same for every alignment.
@usableFromInline
struct TextLinePayload: EventPayload {
    @usableFromInline let line: UnsafeRawBufferPointer

    @usableFromInline init(line: UnsafeRawBufferPointer) { self.line = line }

    @usableFromInline func size(alignment: Int) -> Int { line.count &+ 1 }

    @usableFromInline func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        // The filesystem cuts lines at NULs; the Swift API may not.
        _ = PayloadLayout.storeText(at: base, from: line.baseAddress, count: line.count)
    }
}
