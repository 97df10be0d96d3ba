/// The LTT 2.3 sub-buffer header (`struct ltt_subbuffer_header`): 68 bytes at
/// the start of every sub-buffer, natural alignment, machine byte order.
///
/// The engine writes it in two steps (`writeBegin` when a sub-buffer is
/// entered, `writeEnd` when it is closed: the seed's
/// `ltt_buffer_begin_callback` and `ltt_buffer_end_callback`); the
/// trace-wide fields come from the tracer as a `TraceHeaderFields` value.
/// Consumers and readers decode it with `init?(bytes:)`.
public struct SubbufferHeader: Sendable, Equatable {
    /// `ltt_subbuffer_header_size()`: offsetof(header_end), no tail padding.
    public static let size: UInt64 = 68
    public static let magic: UInt32 = 0x00D6_B7ED
    public static let formatMajor: UInt8 = 2
    public static let formatMinor: UInt8 = 3
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

    public var cycleCountBegin: UInt64
    public var cycleCountEnd: UInt64
    public var magicNumber: UInt32
    public var majorVersion: UInt8
    public var minorVersion: UInt8
    public var archSize: UInt8
    public var alignment: UInt8
    public var startTimeSec: UInt64
    public var startTimeUsec: UInt64
    public var startFreq: UInt64
    public var freqScale: UInt32
    /// Bytes of the sub-buffer after its last event (padding to the end).
    public var lostSize: UInt32
    public var bufSize: UInt32
    /// The buffer's lost-event count when the sub-buffer was closed.
    public var eventsLost: UInt32
    /// The buffer's corrupted sub-buffer count when it was closed.
    public var subbufCorrupt: UInt32

    /// A header with every field 0, to fill in.
    public init() {
        (cycleCountBegin, cycleCountEnd, magicNumber, majorVersion, minorVersion, archSize, alignment) = (0, 0, 0, 0, 0, 0, 0)
        (startTimeSec, startTimeUsec, startFreq, freqScale, lostSize, bufSize, eventsLost, subbufCorrupt) = (0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Decodes the header at the start of `bytes`; nil when `bytes` is
    /// shorter than a header. Nothing is checked: see `TraceReader`.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Int(Self.size) else { return nil }
        typealias F = Field
        func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        }
        cycleCountBegin = load(F.cycleCountBegin, UInt64.self)
        cycleCountEnd = load(F.cycleCountEnd, UInt64.self)
        magicNumber = load(F.magicNumber, UInt32.self)
        majorVersion = load(F.majorVersion, UInt8.self)
        minorVersion = load(F.minorVersion, UInt8.self)
        archSize = load(F.archSize, UInt8.self)
        alignment = load(F.alignment, UInt8.self)
        startTimeSec = load(F.startTimeSec, UInt64.self)
        startTimeUsec = load(F.startTimeUsec, UInt64.self)
        startFreq = load(F.startFreq, UInt64.self)
        freqScale = load(F.freqScale, UInt32.self)
        lostSize = load(F.lostSize, UInt32.self)
        bufSize = load(F.bufSize, UInt32.self)
        eventsLost = load(F.eventsLost, UInt32.self)
        subbufCorrupt = load(F.subbufCorrupt, UInt32.self)
    }

    /// `ltt_buffer_begin_callback`: the header of a sub-buffer being entered
    /// at clock `tsc`; it stays open (`lostSizeOpen`) until `writeEnd`.
    @inlinable @inline(__always)
    public static func writeBegin(at h: UnsafeMutableRawPointer, tsc: UInt64, bufSize: UInt32,
                                  trace: TraceHeaderFields) {
        h.storeBytes(of: tsc, toByteOffset: Field.cycleCountBegin, as: UInt64.self)
        h.storeBytes(of: 0, toByteOffset: Field.cycleCountEnd, as: UInt64.self)
        h.storeBytes(of: magic, toByteOffset: Field.magicNumber, as: UInt32.self)
        h.storeBytes(of: formatMajor, toByteOffset: Field.majorVersion, as: UInt8.self)
        h.storeBytes(of: formatMinor, toByteOffset: Field.minorVersion, as: UInt8.self)
        h.storeBytes(of: trace.archSize, toByteOffset: Field.archSize, as: UInt8.self)
        h.storeBytes(of: trace.alignment, toByteOffset: Field.alignment, as: UInt8.self)
        h.storeBytes(of: trace.startTimeSec, toByteOffset: Field.startTimeSec, as: UInt64.self)
        h.storeBytes(of: trace.startTimeUsec, toByteOffset: Field.startTimeUsec, as: UInt64.self)
        h.storeBytes(of: trace.startFreq, toByteOffset: Field.startFreq, as: UInt64.self)
        h.storeBytes(of: trace.freqScale, toByteOffset: Field.freqScale, as: UInt32.self)
        h.storeBytes(of: lostSizeOpen, toByteOffset: Field.lostSize, as: UInt32.self)
        h.storeBytes(of: bufSize, toByteOffset: Field.bufSize, as: UInt32.self)
        h.storeBytes(of: 0, toByteOffset: Field.eventsLost, as: UInt32.self)
        h.storeBytes(of: 0, toByteOffset: Field.subbufCorrupt, as: UInt32.self)
    }

    /// `ltt_buffer_end_callback`: closes the header at `h`.
    @inlinable @inline(__always)
    public static func writeEnd(at h: UnsafeMutableRawPointer, tsc: UInt64, lostSize: UInt32,
                                eventsLost: UInt32, subbufCorrupt: UInt32) {
        h.storeBytes(of: lostSize, toByteOffset: Field.lostSize, as: UInt32.self)
        h.storeBytes(of: tsc, toByteOffset: Field.cycleCountEnd, as: UInt64.self)
        h.storeBytes(of: eventsLost, toByteOffset: Field.eventsLost, as: UInt32.self)
        h.storeBytes(of: subbufCorrupt, toByteOffset: Field.subbufCorrupt, as: UInt32.self)
    }
}
