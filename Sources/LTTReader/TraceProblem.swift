/// Something wrong in a trace, with where it is: file, sub-buffer, and
/// byte offset from the start of the file.
public struct TraceProblem: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let subbuffer: Int?
    public let offset: Int?
    public let message: String

    public init(file: String, subbuffer: Int? = nil, offset: Int? = nil, _ message: String) {
        self.file = file
        self.subbuffer = subbuffer
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var s = file
        if let subbuffer { s += " sub-buffer \(subbuffer)" }
        if let offset { s += " offset \(offset)" }
        return s + ": " + message
    }
}

/// A bounds-checked view of a file's bytes: every read says where it failed
/// instead of reading past the end.
struct ByteReader {
    let bytes: [UInt8]

    struct OutOfBounds: Error {
        let offset: Int
        let size: Int
    }

    func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type, limit: Int? = nil) throws(OutOfBounds) -> T {
        let end = limit ?? bytes.count
        guard offset >= 0, offset <= end - MemoryLayout<T>.size else {
            throw OutOfBounds(offset: offset, size: MemoryLayout<T>.size)
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    /// The NUL-terminated string at `offset`, ending before `limit`, and the
    /// offset after its NUL.
    func cString(_ offset: Int, limit: Int) throws(OutOfBounds) -> (String, Int) {
        guard offset >= 0, offset < limit, limit <= bytes.count else { throw OutOfBounds(offset: offset, size: 1) }
        var end = offset
        while end < limit && bytes[end] != 0 { end += 1 }
        guard end < limit else { throw OutOfBounds(offset: offset, size: end - offset + 1) }
        return (String(decoding: bytes[offset..<end], as: UTF8.self), end + 1)
    }
}
