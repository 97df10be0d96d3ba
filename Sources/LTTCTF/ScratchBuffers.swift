import LTTSystem

/// Output buffers for packets being converted, lent to one conversion at a
/// time and kept for the next: as many as conversions run at once (one per
/// thread), not one per stream.
final class ScratchBuffers: Sendable {
    /// Free buffers, as plain numbers (an address and a size) so that the
    /// list can sit behind a lock shared between threads.
    private let free = Locked<[(address: UInt, count: Int)]>([])

    /// A buffer of at least `capacity` bytes, for the length of `body`.
    func with<Result, E: Error>(capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> Result) throws(E) -> Result {
        var lent: UnsafeMutableRawBufferPointer?
        if let spare = free.withLock({ $0.popLast() }), let address = UnsafeMutableRawPointer(bitPattern: spare.address) {
            let buffer = UnsafeMutableRawBufferPointer(start: address, count: spare.count)
            if spare.count >= capacity { lent = buffer } else { buffer.deallocate() }
        }
        let buffer = lent ?? .allocate(byteCount: capacity, alignment: 8)
        defer {
            let spare = (UInt(bitPattern: buffer.baseAddress), buffer.count)
            free.withLock { $0.append(spare) }
        }
        return try body(buffer)
    }

    deinit {
        free.withLock { buffers in
            for spare in buffers {
                UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: spare.address), count: spare.count)
                    .deallocate()
            }
            buffers = []
        }
    }
}
