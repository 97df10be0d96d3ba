/// The LTT 2.3 sub-buffer header (`struct ltt_subbuffer_header`): 68 bytes at
/// the start of every sub-buffer, natural alignment, machine byte order.
///
/// The engine owns the fields that belong to the buffer (clocks, lost_size,
/// buf_size, counters: the seed's `ltt_buffer_begin_callback` and
/// `ltt_buffer_end_callback`); the trace-wide fields come from the tracer as a
/// `TraceHeaderFields` value.
public enum SubbufferHeader {
    /// `ltt_subbuffer_header_size()`: offsetof(header_end), no tail padding.
    public static let size: UInt64 = 68
    public static let magic: UInt32 = 0x00D6_B7ED
    public static let majorVersion: UInt8 = 2
    public static let minorVersion: UInt8 = 3
    /// `lost_size` while the sub-buffer is being written ("for debugging").
    public static let lostSizeOpen: UInt32 = 0xFFFF_FFFF

    public enum Field {
        public static let cycleCountBegin = 0
        public static let cycleCountEnd = 8
        public static let magicNumber = 16
        public static let majorVersion = 20
        public static let minorVersion = 21
        public static let archSize = 22
        public static let alignment = 23
        public static let startTimeSec = 24
        public static let startTimeUsec = 32
        public static let startFreq = 40
        public static let freqScale = 48
        public static let lostSize = 52
        public static let bufSize = 56
        public static let eventsLost = 60
        public static let subbufCorrupt = 64
    }
}

/// The trace-wide part of every sub-buffer header (`ltt_write_trace_header`).
public struct TraceHeaderFields: Sendable, Equatable {
    /// 0 for a packed trace, else sizeof(void *): the largest alignment any
    /// field of the trace gets.
    public var alignment: UInt8
    public var archSize: UInt8
    public var startTimeSec: UInt64
    public var startTimeUsec: UInt64
    /// Clock ticks per second; with a nanosecond clock, 1_000_000_000.
    public var startFreq: UInt64
    /// Divisor applied to the frequency; at least 1.
    public var freqScale: UInt32
    /// The clock at trace start: the begin clock of every buffer's first
    /// sub-buffer (the seed's `trace->start_tsc`).
    public var startTSC: UInt64

    public init(alignment: UInt8 = UInt8(MemoryLayout<UnsafeRawPointer>.size),
                archSize: UInt8 = UInt8(MemoryLayout<UnsafeRawPointer>.size),
                startTimeSec: UInt64 = 0, startTimeUsec: UInt64 = 0,
                startFreq: UInt64 = 1_000_000_000, freqScale: UInt32 = 1,
                startTSC: UInt64 = 0) {
        self.alignment = alignment
        self.archSize = archSize
        self.startTimeSec = startTimeSec
        self.startTimeUsec = startTimeUsec
        self.startFreq = startFreq
        self.freqScale = freqScale
        self.startTSC = startTSC
    }

    /// The seed's `ltt_align(align_drift, size_of_type)`: padding needed to
    /// bring `offset` to the alignment of a `size`-byte field, never more than
    /// the trace alignment (none at all in a packed trace).
    @inlinable @inline(__always)
    public func padding(at offset: UInt64, forSize size: UInt64) -> UInt64 {
        guard alignment != 0, size > 1 else { return 0 }
        let a = min(size, UInt64(alignment))
        return (0 &- offset) & (a &- 1)
    }
}
