/// The shape of one per-CPU ring: `subbufferCount` sub-buffers of
/// `subbufferSize` bytes, both powers of two.
///
/// Positions (`offset`, `consumed`) are free-running 64-bit byte counts that
/// never wrap in practice; the ring index of a position is its low bits. All
/// the arithmetic of the seed is the six macros below, kept under their seed
/// names so that the algorithm reads like ltt-relay-locked.c.
public struct RelayGeometry: Sendable, Equatable, CustomStringConvertible {
    /// Bytes per sub-buffer (a power of two).
    public let subbufferSize: UInt64
    /// Sub-buffers per ring (a power of two, at least 2).
    public let subbufferCount: UInt64
    /// log2(subbufferSize).
    public let subbufferSizeOrder: UInt64
    /// log2(subbufferCount): the seed's `n_subbufs_order`.
    public let subbufferCountOrder: UInt64
    /// subbufferSize * subbufferCount: the seed's `alloc_size`.
    public let allocSize: UInt64
    /// The seed's `commit_count_mask` (`~0UL >> n_subbufs_order`).
    public let commitCountMask: UInt64

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case subbufferSizeNotPowerOfTwo(UInt64)
        case subbufferSizeTooSmall(UInt64, minimum: UInt64)
        case subbufferCountNotPowerOfTwo(UInt64)
        case subbufferCountTooSmall(UInt64)
        case tooLarge(subbufferSize: UInt64, subbufferCount: UInt64)
        case subbufferSizeOutOfRange(UInt64, maximum: UInt64)
        case subbufferCountOutOfRange(UInt64, maximum: UInt64)

        public var description: String {
            switch self {
            case .subbufferSizeOutOfRange(let v, let m): "sub-buffer size \(v): give 1 to \(m) bytes"
            case .subbufferCountOutOfRange(let v, let m): "sub-buffer count \(v): give 1 to \(m)"
            case .subbufferSizeNotPowerOfTwo(let v): "sub-buffer size \(v) is not a power of two"
            case .subbufferSizeTooSmall(let v, let m): "sub-buffer size \(v) is below \(m)"
            case .subbufferCountNotPowerOfTwo(let v): "sub-buffer count \(v) is not a power of two"
            case .subbufferCountTooSmall(let v): "sub-buffer count \(v) is below 2"
            case .tooLarge(let size, let count):
                "\(count) sub-buffers of \(size) bytes make a ring of more than 4 GiB"
            }
        }
    }

    /// The largest ring the engine accepts (4 GiB): the consumer's cookie is
    /// the low 32 bits of a position, so a ring must fit in 32 bits.
    public static let maximumAllocSize: UInt64 = 1 << 32

    /// The largest sub-buffer a user may ask for: 256 MiB.
    public static let maximumSubbufferSize: UInt64 = 256 << 20
    /// The most sub-buffers a user may ask for per ring.
    public static let maximumSubbufferCount: UInt64 = 1 << 16

    /// What a user asks for (`subbuf_size`, `subbuf_num`), rounded the
    /// kernel's way (up to powers of two, at least a page and 2
    /// sub-buffers), then checked: the one place a ring's size is validated.
    public init(requestedSubbufferSize size: UInt64, requestedSubbufferCount count: UInt64,
                pageSize: UInt64 = 4096) throws(Invalid) {
        guard size > 0, size <= Self.maximumSubbufferSize else {
            throw .subbufferSizeOutOfRange(size, maximum: Self.maximumSubbufferSize)
        }
        guard count > 0, count <= Self.maximumSubbufferCount else {
            throw .subbufferCountOutOfRange(count, maximum: Self.maximumSubbufferCount)
        }
        // Both maxima are far below 2^62: rounding cannot fail here.
        try self.init(subbufferSize: Self.roundUpPowerOfTwo(size, minimum: pageSize) ?? size,
                      subbufferCount: Self.roundUpPowerOfTwo(count, minimum: 2) ?? count, minimumSubbufferSize: pageSize)
    }

    public init(subbufferSize: UInt64, subbufferCount: UInt64, minimumSubbufferSize: UInt64 = 4096) throws(Invalid) {
        guard subbufferSize > 0, subbufferSize & (subbufferSize - 1) == 0 else {
            throw .subbufferSizeNotPowerOfTwo(subbufferSize)
        }
        guard subbufferSize >= minimumSubbufferSize else {
            throw .subbufferSizeTooSmall(subbufferSize, minimum: minimumSubbufferSize)
        }
        guard subbufferCount >= 2 else { throw .subbufferCountTooSmall(subbufferCount) }
        guard subbufferCount & (subbufferCount - 1) == 0 else {
            throw .subbufferCountNotPowerOfTwo(subbufferCount)
        }
        let sizeOrder = UInt64(subbufferSize.trailingZeroBitCount)
        let countOrder = UInt64(subbufferCount.trailingZeroBitCount)
        guard sizeOrder + countOrder <= 32 else { throw .tooLarge(subbufferSize: subbufferSize, subbufferCount: subbufferCount) }
        self.subbufferSize = subbufferSize
        self.subbufferCount = subbufferCount
        self.subbufferSizeOrder = sizeOrder
        self.subbufferCountOrder = countOrder
        self.allocSize = subbufferSize << countOrder
        self.commitCountMask = ~UInt64(0) >> countOrder
    }

    public var description: String { "\(subbufferCount) x \(subbufferSize) bytes" }

    // MARK: The seed's macros

    /// BUFFER_TRUNC: the position of the start of the ring pass holding `offset`.
    @inlinable @inline(__always) public func bufferTrunc(_ offset: UInt64) -> UInt64 { offset & ~(allocSize &- 1) }
    /// BUFFER_OFFSET: the byte index of `offset` inside the ring memory.
    @inlinable @inline(__always) public func bufferOffset(_ offset: UInt64) -> UInt64 { offset & (allocSize &- 1) }
    /// SUBBUF_OFFSET: the byte index of `offset` inside its sub-buffer.
    @inlinable @inline(__always) public func subbufOffset(_ offset: UInt64) -> UInt64 { offset & (subbufferSize &- 1) }
    /// SUBBUF_ALIGN: the start of the sub-buffer after the one holding `offset`.
    @inlinable @inline(__always) public func subbufAlign(_ offset: UInt64) -> UInt64 {
        (offset &+ subbufferSize) & ~(subbufferSize &- 1)
    }
    /// SUBBUF_TRUNC: the start of the sub-buffer holding `offset`.
    @inlinable @inline(__always) public func subbufTrunc(_ offset: UInt64) -> UInt64 { offset & ~(subbufferSize &- 1) }
    /// SUBBUF_INDEX: which of the ring's sub-buffers holds `offset`.
    @inlinable @inline(__always) public func subbufIndex(_ offset: UInt64) -> Int {
        // (`&>>`: the orders are below 64 by construction; `>>` would
        // test for larger shifts on every event.)
        Int(truncatingIfNeeded: bufferOffset(offset) &>> subbufferSizeOrder)
    }

    /// The commit count a sub-buffer must reach to be complete on the ring
    /// pass holding `offset`, compared the seed's way: a sub-buffer is complete
    /// when `(commit_count - subbuf_size) & mask == BUFFER_TRUNC(p) >> order`.
    @inlinable @inline(__always) public func isComplete(commitCount: UInt64, at offset: UInt64) -> Bool {
        ((commitCount &- subbufferSize) & commitCountMask) == (bufferTrunc(offset) &>> subbufferCountOrder)
    }

    /// Rounds a requested size the way lttctl told its users the kernel did:
    /// up to a power of two, and at least `minimum`.
    public static func roundUpPowerOfTwo(_ value: UInt64, minimum: UInt64) -> UInt64? {
        let v = max(value, minimum)
        guard v <= (1 << 62) else { return nil }
        if v & (v - 1) == 0 { return v }
        return 1 << UInt64(64 - (v - 1).leadingZeroBitCount)
    }
}
