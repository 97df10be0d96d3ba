/// A bounds-checked view of a file's bytes: every read says where it failed
/// instead of reading past the end.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// A read of `size` bytes at `offset` that would leave the bytes (or
    /// the limit it was given).
    public struct OutOfBounds: Error, Equatable {
        public let offset: Int
        public let size: Int
    }

    public func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type, limit: Int? = nil) throws(OutOfBounds) -> T {
        let end = limit ?? bytes.count
        guard offset >= 0, offset <= end - MemoryLayout<T>.size else {
            throw OutOfBounds(offset: offset, size: MemoryLayout<T>.size)
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// The NUL-terminated string at `offset`, ending before `limit`, and the
    /// offset after its NUL.
    public func cString(_ offset: Int, limit: Int) throws(OutOfBounds) -> (String, Int) {
        guard offset >= 0, offset < limit, limit <= bytes.count else { throw OutOfBounds(offset: offset, size: 1) }
        var end = offset
        while end < limit && bytes[end] != 0 { end += 1 }
        guard end < limit else { throw OutOfBounds(offset: offset, size: end - offset + 1) }
        return (String(decoding: bytes[offset..<end], as: UTF8.self), end + 1)
    }

    /// The offset after the NUL of the string at `offset`, which ends
    /// before `limit`.
    public func endOfCString(_ offset: Int, limit: Int) throws(OutOfBounds) -> Int {
        guard offset >= 0, offset < limit, limit <= bytes.count else { throw OutOfBounds(offset: offset, size: 1) }
        let end = bytes.withUnsafeBufferPointer { p -> Int in
            var i = offset
            while i < limit && p[i] != 0 { i &+= 1 }
            return i
        }
        guard end < limit else { throw OutOfBounds(offset: offset, size: end - offset + 1) }
        return end + 1
    }
}
