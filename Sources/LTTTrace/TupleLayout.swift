/// Where each value of a typed marker sits in the tuple `(repeat each
/// Value)`, computed once at registration so that recording reads the
/// values with plain loads (see `Marker`).
///
/// Swift lays a tuple out like a struct: each element at the next offset
/// aligned to its type's alignment, the next one after its size (not its
/// stride). The computed end is checked against the tuple's own size.
@usableFromInline
final class TupleLayout: @unchecked Sendable {
    /// One value: its offset in the tuple and how to read it.
    @usableFromInline struct Field {
        @usableFromInline let offset: Int
        /// 1, 2, 4 or 8 for an integer; 0 for a text.
        @usableFromInline let size: Int
        @usableFromInline let signed: Bool
        /// A text that is a `StaticString` (else a `String`).
        @usableFromInline let isStaticString: Bool

        init(offset: Int, size: Int, signed: Bool = false, isStaticString: Bool = false) {
            self.offset = offset
            self.size = size
            self.signed = signed
            self.isStaticString = isStaticString
        }

        /// The UTF-8 length of the text at this field.
        @inlinable @inline(__always)
        func textCount(in tuple: UnsafeRawPointer) -> Int {
            isStaticString
                ? (tuple + offset).assumingMemoryBound(to: StaticString.self).pointee.traceUTF8Count
                : (tuple + offset).assumingMemoryBound(to: String.self).pointee.utf8.count
        }

        /// Stores the text at this field at `destination`, its NUL
        /// included; returns the bytes used.
        @inlinable @inline(__always)
        func storeText(in tuple: UnsafeRawPointer, at destination: UnsafeMutableRawPointer) -> Int {
            isStaticString
                ? (tuple + offset).assumingMemoryBound(to: StaticString.self).pointee.traceStoreText(at: destination)
                : (tuple + offset).assumingMemoryBound(to: String.self).pointee.traceStoreText(at: destination)
        }

        /// The integer at this field, as `TraceValue.traceInteger` gives it
        /// (a 64-bit pattern, sign-extended for signed types).
        @inlinable @inline(__always)
        func load(from tuple: UnsafeRawPointer) -> UInt64 {
            let p = tuple + offset
            switch (size, signed) {
            case (1, false): return UInt64(p.load(as: UInt8.self))
            case (1, true): return UInt64(bitPattern: Int64(p.load(as: Int8.self)))
            case (2, false): return UInt64(p.load(as: UInt16.self))
            case (2, true): return UInt64(bitPattern: Int64(p.load(as: Int16.self)))
            case (4, false): return UInt64(p.load(as: UInt32.self))
            case (4, true): return UInt64(bitPattern: Int64(p.load(as: Int32.self)))
            default: return p.load(as: UInt64.self)
            }
        }
    }

    let fields: UnsafeMutableBufferPointer<Field>
    /// The values' count (`fields` holds at least one entry).
    let count: Int

    /// The layout of `(repeat each Value)`, or nil when some type's bytes are
    /// not a plain integer, a String or a StaticString (those record
    /// through their methods).
    init?<each Value: TraceValue>(of tuple: (repeat each Value).Type) {
        var found: [Field] = []
        var end = 0
        var plain = true
        for type in repeat (each Value).self {
            let (fieldSize, alignment) = (Self.size(of: type), Self.alignment(of: type))
            let offset = (end + alignment - 1) & ~(alignment - 1)
            end = offset + fieldSize
            switch type.traceRepresentation {
            case .integer(let signed) where [1, 2, 4, 8].contains(fieldSize):
                found.append(Field(offset: offset, size: fieldSize, signed: signed))
            // Read as a String's or a StaticString's bytes: only those types,
            // whatever another type says its representation is.
            case .string where type == String.self:
                found.append(Field(offset: offset, size: 0))
            case .staticString where type == StaticString.self:
                found.append(Field(offset: offset, size: 0, isStaticString: true))
            default:
                plain = false
            }
        }
        guard plain, end == MemoryLayout<(repeat each Value)>.size else { return nil }
        fields = .allocate(capacity: max(1, found.count))
        _ = fields.initialize(from: found)
        count = found.count
    }

    deinit { fields.deallocate() }

    private static func size<T>(of _: T.Type) -> Int { MemoryLayout<T>.size }
    private static func alignment<T>(of _: T.Type) -> Int { MemoryLayout<T>.alignment }
}
