import LTTFormat
import LTTRelay

/// What a user may set on a channel of a trace before `alloc`
/// (`ltt/control/<trace>/channel/<channel>/`).
public struct ChannelSettings: Sendable, Equatable {
    public var enabled = true
    /// Flight-recorder mode: the writer pushes the reader.
    public var overwrite = false
    /// Sub-buffers per CPU: a power of two, at least 2.
    public var subbufferCount: UInt64
    /// Bytes per sub-buffer: a power of two, at least a page.
    public var subbufferSize: UInt64
    /// Milliseconds between forced switches (0: none), so that a quiet
    /// channel still delivers what it has.
    public var switchTimerMillis: UInt64 = 0
    /// In normal mode, how long an in-process producer may wait for room
    /// in a full buffer before the event is lost (0: never wait, lose it at
    /// once, like the kernel tracer). Waiting producers lose nothing while
    /// a consumer keeps draining (the seed's user-blocking mode, bounded).
    public var blockingTimeoutMillis: UInt64 = 0

    public init(subbufferCount: UInt64, subbufferSize: UInt64) {
        self.subbufferCount = subbufferCount
        self.subbufferSize = subbufferSize
    }

    /// metadata: small, written at alloc and when markers register.
    public static let metadataDefault = ChannelSettings(subbufferCount: 4, subbufferSize: 64 * 1024)
    /// Every data channel: 8 x 256 KiB per CPU, enough for bursts of
    /// several hundred thousand small events between two consumer passes.
    public static let dataDefault = ChannelSettings(subbufferCount: 8, subbufferSize: 256 * 1024)

    public static let pageSize: UInt64 = 4096
    /// The largest sub-buffer accepted: 256 MiB.
    public static let maximumSubbufferSize: UInt64 = 256 << 20
    /// The most sub-buffers accepted per CPU.
    public static let maximumSubbufferCount: UInt64 = 1 << 16

    /// Rounds a requested sub-buffer size the kernel's way; nil if unusable.
    public static func roundedSubbufferSize(_ requested: UInt64) -> UInt64? {
        guard requested > 0, requested <= maximumSubbufferSize else { return nil }
        return RelayGeometry.roundUpPowerOfTwo(requested, minimum: pageSize)
    }

    /// Rounds a requested sub-buffer count the kernel's way; nil if unusable.
    public static func roundedSubbufferCount(_ requested: UInt64) -> UInt64? {
        guard requested > 0, requested <= maximumSubbufferCount else { return nil }
        return RelayGeometry.roundUpPowerOfTwo(requested, minimum: 2)
    }

    func geometry() throws(TraceError) -> RelayGeometry {
        do {
            return try RelayGeometry(subbufferSize: subbufferSize, subbufferCount: subbufferCount)
        } catch {
            throw .invalidValue(error.description)
        }
    }
}
