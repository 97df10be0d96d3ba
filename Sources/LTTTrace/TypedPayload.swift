import LTTFormat

// The payload of `#record` when the compiler knows the values' types: the
// size and the stores are straight-line code for those types, with no loop
// over the fields and no test of what each field is. The fixed-arity
// `MarkerRecording.record` functions build a `TypedList` of `TypedValue`s
// (a list in the type, so that each value's code is specialized for its
// own type and the list unrolls at compile time: Swift does not unroll a
// loop over a parameter pack), and `EventEmitter.record(typed:)` records it
// through a copy of the recording loop specialized for that list.
//
// Only for markers whose every integer field is stored in its Swift type's
// own size and byte order (`Marker.typedSlots`, decided at registration):
// otherwise the format decides sizes at run time, and the general loop over
// `TupleLayout` records the same tuple. Measured with
// `PayloadLayout.storeText`'s word copy (ProducerBench, one thread, no
// consumer, 30 interleaved runs, an Int32 and a 27-byte String): 127 -> 111
// ns per event, median, and 89 once `String.traceStoreText` was inlined
// here too (as a call, with its closure, it was 122 of 449 instructions).

/// A list of values that sizes and stores itself field after field.
@usableFromInline
protocol TypedPart {
    /// Moves `offset` past these fields, as `PayloadLayout.advance` does.
    func advance(_ offset: inout Int, alignment: Int)
    /// Stores these fields at `base + offset`, as `PayloadLayout.store` does.
    func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int)
}

/// One value, read where `BitwiseTuple` copied its bytes: an integer in its
/// own size, or a text.
@frozen @usableFromInline
struct TypedValue<Value: TraceValue>: TypedPart {
    @usableFromInline let bits: UnsafeRawPointer

    @inlinable @inline(__always)
    init(bits: UnsafeRawPointer) { self.bits = bits }

    @inlinable @inline(__always)
    var value: Value { bits.assumingMemoryBound(to: Value.self).pointee }

    @inlinable @inline(__always)
    func advance(_ offset: inout Int, alignment: Int) {
        if Value.isTraceString {
            offset &+= value.traceUTF8Count &+ 1
        } else {
            PayloadLayout.advance(&offset, overInteger: MemoryLayout<Value>.size, alignment: alignment)
        }
    }

    @inlinable @inline(__always)
    func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int) {
        if Value.isTraceString {
            // Only String and StaticString reach here (`TupleLayout`).
            if Value.self == String.self {
                offset &+= bits.assumingMemoryBound(to: String.self).pointee.traceStoreText(at: base + offset)
            } else if Value.self == StaticString.self {
                offset &+= bits.assumingMemoryBound(to: StaticString.self).pointee.traceStoreText(at: base + offset)
            } else {
                offset &+= PayloadLayout.storeText(at: base + offset) {
                    value.traceCopyUTF8(to: $0)
                    return value.traceUTF8Count
                }
            }
        } else {
            PayloadLayout.store(&offset, integer: value.traceInteger, size: MemoryLayout<Value>.size, networkOrder: false,
                                base: base, alignment: alignment)
        }
    }
}

/// `head`'s fields, then `tail`'s.
@frozen @usableFromInline
struct TypedList<Head: TypedPart, Tail: TypedPart>: TypedPart {
    @usableFromInline let head: Head
    @usableFromInline let tail: Tail

    @inlinable @inline(__always)
    init(_ head: Head, _ tail: Tail) {
        self.head = head
        self.tail = tail
    }

    @inlinable @inline(__always)
    func advance(_ offset: inout Int, alignment: Int) {
        head.advance(&offset, alignment: alignment)
        tail.advance(&offset, alignment: alignment)
    }

    @inlinable @inline(__always)
    func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int) {
        head.store(&offset, at: base, alignment: alignment)
        tail.store(&offset, at: base, alignment: alignment)
    }
}

/// The end of a list.
@frozen @usableFromInline
struct TypedEnd: TypedPart {
    @inlinable @inline(__always) init() {}
    @inlinable @inline(__always) func advance(_ offset: inout Int, alignment: Int) {}
    @inlinable @inline(__always) func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int) {}
}

/// A `TypedPart` list as the payload `EventEmitter.emit` records.
@frozen @usableFromInline
struct TypedPayload<Parts: TypedPart>: EventPayload {
    @usableFromInline let parts: Parts

    @inlinable @inline(__always)
    init(_ parts: Parts) { self.parts = parts }

    @inlinable @inline(__always)
    func size(alignment: Int) -> Int {
        var offset = 0
        parts.advance(&offset, alignment: alignment)
        return offset
    }

    @inlinable @inline(__always)
    func store(at base: UnsafeMutableRawPointer, alignment: Int) {
        var offset = 0
        parts.store(&offset, at: base, alignment: alignment)
    }
}

extension EventEmitter {
    /// Records a typed payload: one copy of the recording loop per list
    /// type, made in the module that records (the generic function is
    /// inlinable, not inlined), shared by all its call sites.
    @inlinable @inline(never)
    func record<Parts: TypedPart>(typed parts: Parts) {
        emit(TypedPayload(parts))
    }
}
