extension PayloadLayout {
    /// A marker format compiled for walking payloads without decoding
    /// them: the stored size of each field (0 for a string). `measure` finds
    /// where a payload starts and ends by `read`'s rules, reading only the
    /// bytes it must (the strings' NULs).
    public struct Shape: Sendable, Equatable {
        public let sizes: [Int]
        public let maxIntegerSize: Int

        public init(_ fields: [MarkerField]) {
            sizes = fields.map { $0.storedSize ?? 0 }
            maxIntegerSize = fields.compactMap(\.storedSize).max() ?? 1
        }

        /// The payload that follows an event header ending at `offset`
        /// (relative to the sub-buffer at `base`), reading nothing at or past
        /// `limit` (absolute): where it starts, after its alignment padding,
        /// and where it ends, relative to `base`.
        public func measure(in bytes: ByteReader, base: Int, offset: Int, limit: Int,
                            alignment: Int) throws(ByteReader.OutOfBounds) -> (start: Int, end: Int) {
            let largest = largestAlign(maxIntegerSize: maxIntegerSize, alignment: alignment)
            var o = offset + padding(at: offset, size: largest, alignment: alignment)
            let start = o
            for size in sizes {
                if size == 0 {
                    o = try bytes.endOfCString(base + o, limit: limit) - base
                } else {
                    o += padding(at: o - start, size: size, alignment: alignment)
                    guard base + o + size <= limit else { throw ByteReader.OutOfBounds(offset: base + o, size: size) }
                    o += size
                }
            }
            return (start, o)
        }
    }
}
