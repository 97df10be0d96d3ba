/// The payload layouts of a channel's markers, by event id, compiled for
/// walking payloads without decoding them: each field's stored size (0 for
/// a string), in flat tables that a walk reads with no reference counting
/// (it looks an id up once per event). `measure` finds where a payload
/// starts and ends by `PayloadLayout.read`'s rules, reading only the bytes
/// it must (the strings' NULs).
public final class PayloadShapes: Sendable {
    struct Entry {
        var firstSize: Int
        var count: Int
        var maxIntegerSize: Int
        var declared: Bool
    }

    nonisolated(unsafe) private let entries: UnsafeMutableBufferPointer<Entry>
    nonisolated(unsafe) private let sizes: UnsafeMutableBufferPointer<Int>

    /// `fields` by event id: nil for an id that is not declared (or whose
    /// format cannot be read).
    public init(_ byID: [UInt16: [MarkerField]]) {
        let count = byID.keys.max().map { Int($0) + 1 } ?? 0
        entries = .allocate(capacity: max(1, count))
        entries.initialize(repeating: Entry(firstSize: 0, count: 0, maxIntegerSize: 1, declared: false))
        var flat: [Int] = []
        for (id, fields) in byID {
            entries[Int(id)] = Entry(firstSize: flat.count, count: fields.count,
                                     maxIntegerSize: fields.compactMap(\.storedSize).max() ?? 1, declared: true)
            flat += fields.map { $0.storedSize ?? 0 }
        }
        sizes = .allocate(capacity: max(1, flat.count))
        _ = sizes.initialize(from: flat)
        idCount = count
    }

    deinit {
        entries.deallocate()
        sizes.deallocate()
    }

    private let idCount: Int

    /// Whether event `id` has a layout.
    @inline(__always)
    public func contains(_ id: UInt16) -> Bool { Int(id) < idCount && entries[Int(id)].declared }

    /// The largest integer size of event `id`'s fields (1 without any).
    public func maxIntegerSize(_ id: UInt16) -> Int { contains(id) ? entries[Int(id)].maxIntegerSize : 1 }

    /// The payload of event `id` that follows an event header ending at
    /// `offset` (relative to the sub-buffer at `base`), reading nothing at
    /// or past `limit` (absolute): where it starts, after its alignment
    /// padding, and where it ends, relative to `base`. Nil when `id` has
    /// no layout.
    public func measure(_ id: UInt16, in bytes: ByteReader, base: Int, offset: Int, limit: Int,
                        alignment: Int) throws(ByteReader.OutOfBounds) -> (start: Int, end: Int)? {
        guard contains(id) else { return nil }
        let entry = entries[Int(id)]
        let largest = PayloadLayout.largestAlign(maxIntegerSize: entry.maxIntegerSize, alignment: alignment)
        var o = offset + PayloadLayout.padding(at: offset, size: largest, alignment: alignment)
        let start = o
        for i in entry.firstSize..<(entry.firstSize + entry.count) {
            let size = sizes[i]
            if size == 0 {
                o = try bytes.endOfCString(base + o, limit: limit) - base
            } else {
                o += PayloadLayout.padding(at: o - start, size: size, alignment: alignment)
                guard base + o + size <= limit else { throw ByteReader.OutOfBounds(offset: base + o, size: size) }
                o += size
            }
        }
        return (start, o)
    }
}
