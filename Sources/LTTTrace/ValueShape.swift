import LTTFormat

// The C library's values (`struct lttfs_value`, `ValueFields`) recorded
// with code made for the marker's shape, as `#record` records Swift values
// with code made for their types (TypedPayload.swift).
//
// A C compiler cannot instantiate Swift generics, so the shapes are made
// here, ahead of time: every list of 1 to `maximumFields` fields each of
// which is an integer stored in 4 or 8 bytes (host order) or a text, 39
// copies of the recording loop in all (about 220 KB of code in
// liblttfs-producer.so). A marker's shape is found once, at registration
// (`MarkerCore.valueShape`); a marker of another shape (a field stored in 1
// or 2 bytes, network order, no fields, four or more) keeps the general loop
// over its slots (`FieldsPayload<ValueFields>`), which stores the same
// bytes (tested shape by shape, ValueShapeTests).
//
// Each value is read from the caller's array once, into the part that sizes
// and stores it, so the event's size and its stores agree even if another
// thread of the caller changes the array meanwhile: the general path copies
// the whole array first for the same reason. Measured on an (int32, text)
// marker from a C producer process (one thread, no consumer): callgrind,
// 597 -> 515 instructions per event; 40 interleaved runs, median 120 -> 108
// ns.

/// What one field of a C caller's values is, among the kinds a `ValueShape`
/// has code for.
enum ValueKind: UInt8, Sendable, CaseIterable {
    /// An integer stored in 4 bytes, host order (`%d`, `%u`, `%x`, ...).
    case integer32
    /// An integer stored in 8 bytes, host order (`%lld`, `%llu`, and on
    /// 64-bit `%ld`, `%zu`, `%p`).
    case integer64
    /// A text (`%s`).
    case text

    /// The kind of a field stored as `slot` says, if it is one of these.
    init?(_ slot: PayloadLayout.Slot) {
        switch (slot.size, slot.networkOrder) {
        case (0, _): self = .text
        case (4, false): self = .integer32
        case (8, false): self = .integer64
        default: return nil
        }
    }
}

/// A marker's fields when they are 1 to `maximumFields` of `ValueKind`:
/// then its events from C go through code made for those kinds.
struct ValueShape: Sendable {
    static let maximumFields = 3
    /// How many fields, 1 to `maximumFields`.
    let count: Int
    /// The fields' kinds, the first `count` of them (plain values: the hot
    /// path reads them with no reference counting).
    private let kinds: (ValueKind, ValueKind, ValueKind)

    /// The shape of the fields `slots` describes; nil if no code is made
    /// for it.
    init?(_ slots: UnsafeBufferPointer<PayloadLayout.Slot>) {
        guard (1...Self.maximumFields).contains(slots.count) else { return nil }
        var kinds: [ValueKind] = []
        for slot in slots {
            guard let kind = ValueKind(slot) else { return nil }
            kinds.append(kind)
        }
        count = kinds.count
        kinds += repeatElement(.text, count: Self.maximumFields - count)
        self.kinds = (kinds[0], kinds[1], kinds[2])
    }

    /// Field `i`'s kind.
    @inline(__always)
    func kind(_ i: Int) -> ValueKind { i == 0 ? kinds.0 : i == 1 ? kinds.1 : kinds.2 }

    /// The kinds, in field order.
    var fieldKinds: [ValueKind] { (0..<count).map(kind) }
}

/// Values that read themselves from a C caller's array (16 bytes per
/// field, `ValueFields`), field `field` first.
protocol ValueParts: TypedPart {
    init(values: UnsafeRawPointer, field: Int)
}

extension TypedList: ValueParts where Head: ValueParts, Tail: ValueParts {
    @inline(__always)
    init(values: UnsafeRawPointer, field: Int) {
        self.init(Head(values: values, field: field), Tail(values: values, field: field &+ 1))
    }
}

extension TypedEnd: ValueParts {
    @inline(__always)
    init(values: UnsafeRawPointer, field: Int) { self.init() }
}

/// What is done with a shape's values once the type of its list of parts
/// is known: a generic method, so that each list type gets its own copy.
protocol ValuePartsUser {
    associatedtype Result
    func use<Parts: ValueParts>(_ parts: Parts.Type, values: UnsafeRawPointer) -> Result
}

/// Records the values: one copy of the recording loop per list type, the
/// 39 of them made here, in this module, whoever records.
struct RecordingParts: ValuePartsUser {
    let emitter: EventEmitter

    @inline(never)
    func use<Parts: ValueParts>(_ parts: Parts.Type, values: UnsafeRawPointer) -> EmitResult {
        emitter.emit(TypedPayload(Parts(values: values, field: 0)))
    }
}

extension ValueShape {
    /// Hands `user` this shape's list type and the values it reads: a
    /// switch per field on its kind, inlined into the caller.
    @inline(__always)
    func withParts<User: ValuePartsUser>(of values: UnsafeRawPointer, _ user: User) -> User.Result {
        // The last field's part goes before TypedEnd, then each field's
        // before the list of those after it.
        let first = KindBefore(shape: self, field: 0, next: user)
        switch count {
        case 1: return first.use(TypedEnd.self, values: values)
        case 2: return KindBefore(shape: self, field: 1, next: first).use(TypedEnd.self, values: values)
        default:
            return KindBefore(shape: self, field: 2, next: KindBefore(shape: self, field: 1, next: first))
                .use(TypedEnd.self, values: values)
        }
    }
}

/// Puts field `field`'s part before the list type it is handed, then hands
/// the longer list on to `next`: each kind is a type, so each branch of the
/// switch goes on with a different type (a switch cannot pick a type
/// otherwise).
private struct KindBefore<Next: ValuePartsUser>: ValuePartsUser {
    let shape: ValueShape
    let field: Int
    let next: Next

    @inline(__always)
    func use<Tail: ValueParts>(_ tail: Tail.Type, values: UnsafeRawPointer) -> Next.Result {
        switch shape.kind(field) {
        case .integer32: return next.use(TypedList<ValueInteger<UInt32>, Tail>.self, values: values)
        case .integer64: return next.use(TypedList<ValueInteger<UInt64>, Tail>.self, values: values)
        case .text: return next.use(TypedList<ValueText, Tail>.self, values: values)
        }
    }
}

/// An integer field of a C caller's values: its bit pattern, read once,
/// stored in `Stored`'s size in host order (as `ValueFields` and
/// `PayloadLayout.store` do: the low bytes of the 64-bit word).
struct ValueInteger<Stored: FixedWidthInteger & UnsignedInteger>: ValueParts {
    let bits: UInt64

    @inline(__always)
    init(values: UnsafeRawPointer, field: Int) { bits = ValueFields.integer(at: values + field &* ValueFields.stride) }

    @inline(__always)
    func advance(_ offset: inout Int, alignment: Int) {
        PayloadLayout.advance(&offset, overInteger: MemoryLayout<Stored>.size, alignment: alignment)
    }

    @inline(__always)
    func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int) {
        PayloadLayout.store(&offset, integer: bits, size: MemoryLayout<Stored>.size, networkOrder: false, base: base,
                            alignment: alignment)
    }
}

/// A text field of a C caller's values: its start and length, read once
/// (`ValueFields.text(at:)`: a NULL text is "(null)", a length no buffer
/// holds is clamped, and the event then counted lost).
struct ValueText: ValueParts {
    let start: UnsafeRawPointer
    let count: Int

    @inline(__always)
    init(values: UnsafeRawPointer, field: Int) { (start, count) = ValueFields.text(at: values + field &* ValueFields.stride) }

    @inline(__always)
    func advance(_ offset: inout Int, alignment: Int) { offset &+= count &+ 1 }

    @inline(__always)
    func store(_ offset: inout Int, at base: UnsafeMutableRawPointer, alignment: Int) {
        offset &+= PayloadLayout.storeText(at: base + offset, from: start, count: count)
    }
}
