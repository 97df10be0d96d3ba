import LTTFormat

/// A Swift value that can fill a marker field: integers fill integer fields,
/// strings fill `%s` fields. Recording a value allocates nothing and formats
/// nothing: integers are stored as they are, strings are copied as UTF-8.
///
/// `traceAdvance` and `traceStore` are requirements, not helpers, so that
/// each type answers with its own concrete code even where the typed
/// marker's parameter pack is not specialized.
public protocol TraceValue {
    /// Whether this type fills `%s` fields (else integer fields).
    static var isTraceString: Bool { get }
    /// What a value's bytes are, for the typed marker's fast path.
    static var traceRepresentation: TraceValueRepresentation { get }
    /// The integer as a 64-bit pattern, sign-extended for signed types.
    var traceInteger: UInt64 { get }
    /// The number of UTF-8 bytes of a string value, without the NUL.
    var traceUTF8Count: Int { get }
    /// Copies the UTF-8 bytes of a string value (no NUL) to `destination`.
    func traceCopyUTF8(to destination: UnsafeMutableRawPointer)
    /// Moves `offset` past this value stored in `slot`.
    func traceAdvance(_ offset: inout Int, slot: PayloadLayout.Slot, alignment: Int)
    /// Stores this value in `slot` at `base + offset` and moves `offset` past it.
    func traceStore(_ offset: inout Int, slot: PayloadLayout.Slot, base: UnsafeMutableRawPointer, alignment: Int)
}

/// What the bytes of a `TraceValue` are: a typed marker reads a plain
/// integer or a String straight from memory; anything else through the
/// protocol's methods.
public enum TraceValueRepresentation: Sendable, Equatable {
    /// The value's bytes are this integer (of the type's size).
    case integer(signed: Bool)
    /// A Swift `String`.
    case string
    /// A `StaticString`: a literal, no reference counting at all.
    case staticString
    /// Only the type's `traceInteger` / `traceCopyUTF8` know.
    case opaque
}

extension TraceValue {
    @inlinable public static var isTraceString: Bool { false }
    public static var traceRepresentation: TraceValueRepresentation { .opaque }
    @inlinable public var traceUTF8Count: Int { 0 }
    @inlinable public func traceCopyUTF8(to destination: UnsafeMutableRawPointer) {}

    @inlinable @inline(__always)
    public func traceAdvance(_ offset: inout Int, slot: PayloadLayout.Slot, alignment: Int) {
        PayloadLayout.advance(&offset, over: slot, textCount: traceUTF8Count, alignment: alignment)
    }

    @inlinable @inline(__always)
    public func traceStore(_ offset: inout Int, slot: PayloadLayout.Slot, base: UnsafeMutableRawPointer, alignment: Int) {
        PayloadLayout.store(&offset, into: slot, base: base, alignment: alignment, integer: traceInteger) {
            PayloadLayout.storeText(at: $0) {
                traceCopyUTF8(to: $0)
                return traceUTF8Count
            }
        }
    }
}

extension TraceValue where Self: BinaryInteger {
    @inlinable public var traceInteger: UInt64 { UInt64(truncatingIfNeeded: self) }
}

/// The standard integers, whose bytes are their value. (Another integer
/// type that conforms to TraceValue is read through `traceInteger`: its
/// layout is its own business.)
protocol StandardTraceInteger: TraceValue, FixedWidthInteger {}

extension StandardTraceInteger {
    public static var traceRepresentation: TraceValueRepresentation { .integer(signed: Self.isSigned) }
}

extension Int: StandardTraceInteger {}
extension Int8: StandardTraceInteger {}
extension Int16: StandardTraceInteger {}
extension Int32: StandardTraceInteger {}
extension Int64: StandardTraceInteger {}
extension UInt: StandardTraceInteger {}
extension UInt8: StandardTraceInteger {}
extension UInt16: StandardTraceInteger {}
extension UInt32: StandardTraceInteger {}
extension UInt64: StandardTraceInteger {}

extension Bool: TraceValue {
    @inlinable public var traceInteger: UInt64 { self ? 1 : 0 }
    /// One byte, 0 or 1.
    public static var traceRepresentation: TraceValueRepresentation { .integer(signed: false) }
}

extension UnsafeRawPointer: TraceValue {
    @inlinable public var traceInteger: UInt64 { UInt64(UInt(bitPattern: self)) }
    public static var traceRepresentation: TraceValueRepresentation { .integer(signed: false) }
}

extension String: TraceValue {
    @inlinable public static var isTraceString: Bool { true }
    public static var traceRepresentation: TraceValueRepresentation { .string }
    @inlinable public var traceInteger: UInt64 { 0 }
    @inlinable public var traceUTF8Count: Int { utf8.count }
    @inlinable public func traceCopyUTF8(to destination: UnsafeMutableRawPointer) {
        withTraceUTF8 { bytes in
            if let base = bytes.baseAddress { destination.copyMemory(from: base, byteCount: bytes.count) }
        }
    }
    /// Stores the text as a `%s` field at `destination`, its NUL included
    /// (`PayloadLayout.storeText`): `traceUTF8Count + 1` bytes, returned.
    /// Not a `TraceValue` requirement: the typed paths call it on `String`
    /// and `StaticString` only, whose counts they trust.
    @inlinable @inline(__always) func traceStoreText(at destination: UnsafeMutableRawPointer) -> Int {
        withTraceUTF8 { PayloadLayout.storeText(at: destination, from: UnsafeRawPointer($0.baseAddress), count: $0.count) }
    }
    /// Runs `body` on the UTF-8 bytes: a native string's own, contiguous
    /// (no copy); any other's, made contiguous first.
    @inlinable @inline(__always) func withTraceUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return copy.withUTF8(body)
    }
}

extension StaticString: TraceValue {
    @inlinable public static var isTraceString: Bool { true }
    public static var traceRepresentation: TraceValueRepresentation { .staticString }
    @inlinable public var traceInteger: UInt64 { 0 }
    /// (utf8CodeUnitCount is unspecified for a one-scalar literal.)
    @inlinable public var traceUTF8Count: Int {
        hasPointerRepresentation ? utf8CodeUnitCount : withUTF8Buffer { $0.count }
    }
    @inlinable public func traceCopyUTF8(to destination: UnsafeMutableRawPointer) {
        // A one-scalar literal has no pointer: withUTF8Buffer covers both.
        withUTF8Buffer { bytes in
            if let base = bytes.baseAddress { destination.copyMemory(from: base, byteCount: bytes.count) }
        }
    }
    /// `String.traceStoreText`'s, for a literal.
    @inlinable @inline(__always) func traceStoreText(at destination: UnsafeMutableRawPointer) -> Int {
        withUTF8Buffer { PayloadLayout.storeText(at: destination, from: UnsafeRawPointer($0.baseAddress), count: $0.count) }
    }
}

/// A field value known only at run time (the dynamic API, the metadata
/// channel, tests).
public enum TraceArgument: Sendable, Equatable, TraceValue {
    case integer(Int64)
    case unsigned(UInt64)
    case string(String)

    public static var isTraceString: Bool { false }
    public var isString: Bool { if case .string = self { true } else { false } }
    public var traceInteger: UInt64 {
        switch self {
        case .integer(let v): UInt64(bitPattern: v)
        case .unsigned(let v): v
        case .string: 0
        }
    }
    public var traceUTF8Count: Int {
        if case .string(let s) = self { return s.traceUTF8Count }
        return 0
    }
    public func traceCopyUTF8(to destination: UnsafeMutableRawPointer) {
        if case .string(let s) = self { s.traceCopyUTF8(to: destination) }
    }
}

extension PayloadLayout {
    /// Size of a payload given as run-time arguments, or nil when the
    /// arguments do not match the fields (count or kind).
    public static func size(of arguments: [TraceArgument], fields: [MarkerField], alignment: Int) -> Int? {
        guard arguments.count == fields.count else { return nil }
        var offset = 0
        for (argument, field) in zip(arguments, fields) {
            guard argument.isString == (field.kind == .string) else { return nil }
            argument.traceAdvance(&offset, slot: Slot(field), alignment: alignment)
        }
        return offset
    }

    /// Writes run-time arguments already checked by `size(of:...)`.
    public static func write(_ arguments: [TraceArgument], fields: [MarkerField], to base: UnsafeMutableRawPointer,
                             alignment: Int) {
        var offset = 0
        for (argument, field) in zip(arguments, fields) {
            argument.traceStore(&offset, slot: Slot(field), base: base, alignment: alignment)
        }
    }
}
