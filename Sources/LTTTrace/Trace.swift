import LTTRelay
import Synchronization

/// One trace: its settings, its state and, from `alloc` on, its channels.
///
/// A Trace is changed only by its Tracer, under the tracer's control lock;
/// what it exposes is a snapshot taken under that lock (`Tracer.withTrace`).
public final class Trace: @unchecked Sendable {
    public let name: String
    /// Unique over the process's life: a trace set up again under the same
    /// name is another trace (the filesystem gives its files new inodes).
    public let serial: UInt64 = Trace.nextSerial.add(1, ordering: .relaxed).newValue
    static let nextSerial = Atomic<UInt64>(0)
    public internal(set) var state: TraceState = .setup
    /// The transport; "relay-locked" is the only one.
    public internal(set) var transport = "relay-locked"
    /// Settings per channel, fixed at alloc.
    public internal(set) var settings: [String: ChannelSettings]
    /// Buffers per channel, from alloc on (enabled channels only).
    public internal(set) var channels: [String: RelayChannel] = [:]
    /// The trace-wide part of every sub-buffer header, set at alloc.
    public internal(set) var header = TraceHeaderFields()
    /// Events whose declaration could not be written to the metadata
    /// channel (it was full); a non-zero value makes the trace hard to read.
    public internal(set) var metadataLost = 0
    /// Last forced switch per channel, in clock ticks (for switch timers).
    var lastSwitch: [String: UInt64] = [:]

    init(name: String, channels: [String]) {
        self.name = name
        var settings: [String: ChannelSettings] = [:]
        for channel in channels {
            settings[channel] = channel == Metadata.channel ? .metadataDefault : .dataDefault
        }
        self.settings = settings
    }

    /// The metadata channel's buffers (alloc on).
    public var metadata: RelayChannel? { channels[Metadata.channel] }

    /// Runs `body` on every buffer of every channel.
    func forEachBuffer(_ body: (RelayBuffer) -> Void) {
        for channel in channels.values { channel.buffers.forEach(body) }
    }

    /// Every buffer of the trace, with its file name, sorted by name.
    public var bufferFiles: [(name: String, buffer: RelayBuffer)] {
        channels.values.flatMap { channel in
            channel.buffers.map { (channel.fileName(cpu: $0.cpu), $0) }
        }.sorted { $0.name < $1.name }
    }

    /// Checks a trace name: what setup_trace accepts.
    public static func validate(name: String) throws(TraceError) {
        if name.isEmpty { throw .invalidName("empty") }
        if name.contains("/") { throw .invalidName("\(name) contains '/'") }
        if name.utf8.count > 255 { throw .invalidName("longer than NAME_MAX (255 bytes)") }
        if name.hasPrefix(".") { throw .invalidName("\(name) starts with '.'") }
        if name.contains("\0") { throw .invalidName("contains NUL") }
        if name == "control" { throw .invalidName("control is the directory of the control files") }
        if ["setup_trace", "destroy_trace", "write_event", "markers"].contains(name) {
            throw .invalidName("\(name) is a file of ltt/")
        }
    }
}
