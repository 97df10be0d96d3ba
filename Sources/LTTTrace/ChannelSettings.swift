import LTTFormat
import LTTRelay

/// What a user may set on a channel of a trace before `alloc`
/// (`ltt/control/<trace>/channel/<channel>/`).
public struct ChannelSettings: Sendable, Equatable {
    public var enabled = true
    /// Flight-recorder mode: the writer pushes the reader.
    public var overwrite = false
    /// Sub-buffers per CPU: a power of two, at least 2 (what is asked is
    /// rounded up when the settings change: `Tracer.updateChannel`).
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

    /// The ring these settings ask for: the requested numbers rounded and
    /// checked by `RelayGeometry`, the one place that validates a size.
    func geometry() throws(TraceError) -> RelayGeometry {
        do {
            return try RelayGeometry(requestedSubbufferSize: subbufferSize, requestedSubbufferCount: subbufferCount)
        } catch {
            throw .invalidValue(error.description)
        }
    }
}
