import LTTFormat
import LTTRelay
import Synchronization

/// One trace as the rest of the program sees it: an immutable snapshot of
/// its settings, state and, from `alloc` on, its channels.
///
/// The tracer publishes a new snapshot after every control operation
/// (`Tracer.trace(_:)`, `Tracer.traces`), so that readers (the filesystem's
/// lookups, `cat stats`) never take the control lock and never see a trace
/// half-changed. The buffers a snapshot names are live objects with their
/// own locks: their counters are current, the rest of the snapshot is as of
/// the last control operation.
public struct Trace: Sendable {
    public let name: String
    /// Unique over the process's life: a trace set up again under the same
    /// name is another trace (the filesystem gives its files new inodes).
    public let serial: UInt64
    public let state: TraceState
    /// The transport; "relay-locked" is the only one.
    public let transport: String
    /// Settings per channel, fixed at alloc.
    public let settings: [String: ChannelSettings]
    /// Buffers per channel, from alloc on (enabled channels only).
    public let channels: [String: RelayChannel]
    /// The trace-wide part of every sub-buffer header, set at alloc.
    public let header: TraceHeaderFields
    /// Events whose declaration could not be written to the metadata
    /// channel (it was full); a non-zero value makes the trace hard to read.
    public let metadataLost: Int
    /// Every buffer of the trace, with its file name, sorted by name.
    public let bufferFiles: [(name: String, buffer: RelayBuffer)]

    /// The metadata channel's buffers (alloc on).
    public var metadata: RelayChannel? { channels[Metadata.channel] }

    /// The buffer behind a file name of `<mount>/ltt/<trace>/`.
    public func buffer(named file: String) -> RelayBuffer? {
        bufferFiles.first { $0.name == file }?.buffer
    }
}

/// The tracer's own, mutable record of a trace. Reached only with the
/// tracer's control lock held; what leaves that lock is a `Trace` snapshot.
// Sendable only so that it can live in the control lock; it never leaves it.
final class TraceRecord: @unchecked Sendable {
    let name: String
    let serial: UInt64 = TraceRecord.nextSerial.add(1, ordering: .relaxed).newValue
    static let nextSerial = Atomic<UInt64>(0)
    var state: TraceState = .setup
    var transport = "relay-locked"
    var settings: [String: ChannelSettings]
    var channels: [String: RelayChannel] = [:]
    var header = TraceHeaderFields()
    var metadataLost = 0
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

    var metadata: RelayChannel? { channels[Metadata.channel] }

    /// Runs `body` on every buffer of every channel.
    func forEachBuffer(_ body: (RelayBuffer) -> Void) {
        for channel in channels.values { channel.buffers.forEach(body) }
    }

    /// Opens or closes the data channels' buffers to writers in every
    /// process (`RelayBuffer.setRecording`). The metadata channel stays
    /// open: declarations go on while the trace is stopped.
    func setRecording(_ on: Bool) {
        for (name, channel) in channels where name != Metadata.channel {
            channel.buffers.forEach { $0.setRecording(on) }
        }
    }

    var snapshot: Trace {
        let files = channels.values.flatMap { channel in
            channel.buffers.map { (name: channel.fileName(cpu: $0.cpu), buffer: $0) }
        }.sorted { $0.name < $1.name }
        return Trace(name: name, serial: serial, state: state, transport: transport, settings: settings,
                     channels: channels, header: header, metadataLost: metadataLost, bufferFiles: files)
    }
}
