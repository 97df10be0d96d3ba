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

/// The values of a typed marker, laid out as a Swift tuple (`TupleLayout`).
@usableFromInline
struct TuplePayload: EventPayload {
    @usableFromInline let tuple: UnsafeRawPointer
    @usableFromInline let fields: UnsafePointer<TupleLayout.Field>
    @usableFromInline let slots: UnsafePointer<PayloadLayout.Slot>
    @usableFromInline let count: Int

    @inlinable init(tuple: UnsafeRawPointer, fields: UnsafePointer<TupleLayout.Field>,
                    slots: UnsafePointer<PayloadLayout.Slot>, count: Int) {
        self.tuple = tuple
        self.fields = fields
        self.slots = slots
        self.count = count
    }

    @inlinable @inline(__always)
    func size(alignment: Int) -> Int {
        var offset = 0
        for i in 0..<count {
            PayloadLayout.advance(&offset, over: slots[i], textCount: fields[i].textCount(in: tuple),
                                  alignment: alignment)
        }
        return offset
    }

    @inlinable @inline(__always)
    func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        var offset = 0
        for i in 0..<count {
            let field = fields[i]
            PayloadLayout.store(&offset, into: slots[i], base: base, alignment: alignment,
                                integer: field.load(from: tuple)) {
                field.copyText(in: tuple, to: $0)
                return field.textCount(in: tuple)
            }
        }
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
/// words:)`, the C library): field i's integer is the 64-bit word at
/// `words + 8 * i`, its text `texts[i]`, whichever its slot says it is.
/// Each text was measured once by the caller, so the size reserved and the
/// bytes stored agree even if the caller's memory changes meanwhile.
@usableFromInline
struct WordsPayload: EventPayload {
    @usableFromInline let words: UnsafeRawPointer
    @usableFromInline let texts: UnsafePointer<UnsafeRawBufferPointer>
    @usableFromInline let slots: UnsafePointer<PayloadLayout.Slot>
    @usableFromInline let count: Int

    @inlinable init(words: UnsafeRawPointer, texts: UnsafePointer<UnsafeRawBufferPointer>,
                    slots: UnsafePointer<PayloadLayout.Slot>, count: Int) {
        self.words = words
        self.texts = texts
        self.slots = slots
        self.count = count
    }

    @inlinable @inline(__always)
    func size(alignment: Int) -> Int {
        var offset = 0
        for i in 0..<count {
            PayloadLayout.advance(&offset, over: slots[i], textCount: texts[i].count, alignment: alignment)
        }
        return offset
    }

    @inlinable @inline(__always)
    func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        var offset = 0
        for i in 0..<count {
            PayloadLayout.store(&offset, into: slots[i], base: base, alignment: alignment,
                                integer: words.loadUnaligned(fromByteOffset: 8 &* i, as: UInt64.self)) { to in
                let bytes = texts[i]
                if let source = bytes.baseAddress, bytes.count > 0 { to.copyMemory(from: source, byteCount: bytes.count) }
                return bytes.count
            }
        }
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
        if let source = line.baseAddress, line.count > 0 { base.copyMemory(from: source, byteCount: line.count) }
        (base + line.count).storeBytes(of: 0, as: UInt8.self)
    }
}
