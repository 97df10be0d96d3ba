/// A Swift value that can fill a marker field: integers fill integer fields,
/// strings fill `%s` fields. Recording a value allocates nothing and formats
/// nothing: integers are stored as they are, strings are copied as UTF-8.
public protocol TraceValue {
    /// Whether this type fills `%s` fields (else integer fields).
    static var isTraceString: Bool { get }
    /// The integer as a 64-bit pattern, sign-extended for signed types.
    var traceInteger: UInt64 { get }
    /// The UTF-8 bytes of a string value, without the NUL.
    func withTraceUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
}

extension TraceValue {
    public static var isTraceString: Bool { false }
    @inlinable public func withTraceUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
}

extension TraceValue where Self: BinaryInteger {
    @inlinable public var traceInteger: UInt64 { UInt64(truncatingIfNeeded: self) }
}

extension Int: TraceValue {}
extension Int8: TraceValue {}
extension Int16: TraceValue {}
extension Int32: TraceValue {}
extension Int64: TraceValue {}
extension UInt: TraceValue {}
extension UInt8: TraceValue {}
extension UInt16: TraceValue {}
extension UInt32: TraceValue {}
extension UInt64: TraceValue {}

extension Bool: TraceValue {
    @inlinable public var traceInteger: UInt64 { self ? 1 : 0 }
}

extension UnsafeRawPointer: TraceValue {
    @inlinable public var traceInteger: UInt64 { UInt64(UInt(bitPattern: self)) }
}

extension String: TraceValue {
    public static var isTraceString: Bool { true }
    @inlinable public var traceInteger: UInt64 { 0 }
    @inlinable public func withTraceUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var copy = self
        return copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}

extension StaticString: TraceValue {
    public static var isTraceString: Bool { true }
    @inlinable public var traceInteger: UInt64 { 0 }
    @inlinable public func withTraceUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUTF8Buffer { body(UnsafeRawBufferPointer($0)) }
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
    public func withTraceUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if case .string(let s) = self { return s.withTraceUTF8(body) }
        return body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
}
