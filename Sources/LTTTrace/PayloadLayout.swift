/// Where each field of a payload goes, ltt-serialize.c's rules: an integer
/// is aligned, relative to the payload start, to min(trace alignment, its
/// size); a string is NUL-terminated and not aligned; the payload itself
/// starts aligned to its largest field, so relative and absolute alignment
/// agree.
public enum PayloadLayout {
    /// Padding before an integer of `size` bytes at `offset`.
    @inlinable @inline(__always)
    public static func padding(at offset: Int, size: Int, alignment: Int) -> Int {
        guard alignment != 0, size > 1 else { return 0 }
        return (0 &- offset) & (min(size, alignment) &- 1)
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
            offset &+= padding(at: offset, size: slot.size, alignment: alignment) &+ slot.size
        }
    }

    /// Stores one field at `base + offset` and moves `offset` past it: the
    /// integer (padded, in the slot's size and byte order), or the text that
    /// `copyText` copies to the address it is given (returning its length)
    /// followed by a NUL.
    @inlinable @inline(__always)
    public static func store(_ offset: inout Int, into slot: Slot, base: UnsafeMutableRawPointer, alignment: Int,
                             integer: @autoclosure () -> UInt64, copyText: (UnsafeMutableRawPointer) -> Int) {
        if slot.size == 0 {
            let count = copyText(base + offset)
            (base + offset + count).storeBytes(of: 0, as: UInt8.self)
            offset &+= count &+ 1
        } else {
            let o = offset &+ padding(at: offset, size: slot.size, alignment: alignment)
            storeInteger(integer(), size: slot.size, networkOrder: slot.networkOrder, at: base + o)
            offset = o &+ slot.size
        }
    }

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
