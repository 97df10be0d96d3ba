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
        lttAlignPadding(at: offset, size: size, alignment: UInt64(alignment))
    }
}
