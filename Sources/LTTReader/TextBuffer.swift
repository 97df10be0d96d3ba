/// A growable byte buffer for text that is written out in large pieces:
/// bytes are put through a raw pointer after one `reserve` per item, with
/// no reference counting on the way (`[UInt8].append` retains and checks
/// for each call).
public struct TextBuffer: ~Copyable {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public private(set) var count = 0
    public private(set) var capacity: Int

    public init(capacity: Int = 1 << 18) {
        self.capacity = max(64, capacity)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `n` more bytes.
    @inline(__always)
    public mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    @inline(never)
    mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = newCapacity
    }

    /// Puts one byte; room must have been reserved.
    @inline(__always)
    public mutating func put(_ byte: UInt8) {
        base[count] = byte
        count &+= 1
    }

    /// Puts `n` bytes from `p`; room must have been reserved. Short runs
    /// (names, punctuation) are copied in line: a call to memmove costs
    /// more than they do.
    @inline(__always)
    public mutating func put(_ p: UnsafeRawPointer, _ n: Int) {
        let to = base + count
        if n <= 32 {
            let from = p.assumingMemoryBound(to: UInt8.self)
            var i = 0
            while i < n {
                to[i] = from[i]
                i &+= 1
            }
        } else {
            to.update(from: p.assumingMemoryBound(to: UInt8.self), count: n)
        }
        count &+= n
    }

    /// Puts a string's bytes (reserving room for them).
    public mutating func put(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            reserve(utf8.count)
            put(utf8.baseAddress!, utf8.count)
        }
    }

    /// Counts `n` bytes stored at `base + count` by the caller (room
    /// reserved).
    @inline(__always)
    public mutating func advance(_ n: Int) { count &+= n }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public mutating func removeAll() { count = 0 }
}
