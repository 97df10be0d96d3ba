import LTTSystem
import Synchronization

/// The memory all relay buffers of a server may take together.
///
/// Each channel's size is checked alone when it is set; what the machine
/// can afford is only known for the whole: a trace reserves the bytes of
/// every buffer it will allocate, all at once, before allocating any (so a
/// refused alloc allocates nothing), and gives them back when its last
/// buffer is freed (when the last reader of a destroyed trace closes).
public final class BufferMemoryBudget: Sendable {
    /// The most bytes all buffers may hold together.
    public let limit: UInt64
    private let used = Locked<UInt64>(0)

    public init(limit: UInt64) { self.limit = limit }

    /// Bytes reserved now.
    public var inUse: UInt64 { used.withLock { $0 } }

    /// Over budget: `requested` bytes would pass `limit`, `inUse` being taken.
    public struct Exceeded: Error, Equatable, CustomStringConvertible {
        public let requested: UInt64
        public let inUse: UInt64
        public let limit: UInt64
        public var description: String {
            "buffers of \(requested) bytes would pass the buffer memory limit of \(limit) bytes (\(inUse) in use)"
        }
    }

    /// Reserves `bytes`, or throws without reserving anything.
    public func reserve(_ bytes: UInt64) throws(Exceeded) -> Reservation {
        try used.withLock { (u: inout UInt64) throws(Exceeded) in
            let total = u.addingReportingOverflow(bytes)
            guard !total.overflow, total.partialValue <= limit else {
                throw Exceeded(requested: bytes, inUse: u, limit: limit)
            }
            u = total.partialValue
        }
        return Reservation(budget: self, bytes: bytes)
    }

    /// Reserved bytes, given back when the last owner lets go of it.
    public final class Reservation: Sendable {
        let budget: BufferMemoryBudget
        public let bytes: UInt64

        init(budget: BufferMemoryBudget, bytes: UInt64) {
            self.budget = budget
            self.bytes = bytes
        }

        deinit { budget.used.withLock { $0 -= bytes } }
    }
}
