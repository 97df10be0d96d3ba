import CURCU
import LTTRelay
import Synchronization

/// Where a marker's events go right now: one entry per active trace that
/// has the marker's channel enabled. Immutable once published; replaced as
/// a whole and freed after an RCU grace period.
public final class MarkerSinks: @unchecked Sendable {
    public struct Sink {
        /// Unowned: `owners` below keeps every channel alive as long as
        /// this list exists; no reference counting on the hot path.
        public unowned(unsafe) let channel: RelayChannel
        public let alignment: Int
        /// Writers of `write_event` wait for space in normal mode.
        public let blocking: Bool
    }
    public let sinks: UnsafeMutableBufferPointer<Sink>
    private let owners: [RelayChannel]

    init(_ entries: [(RelayChannel, Int, Bool)]) {
        owners = entries.map(\.0)
        sinks = .allocate(capacity: entries.count)
        for (i, e) in entries.enumerated() {
            (sinks.baseAddress! + i).initialize(to: Sink(channel: e.0, alignment: e.1, blocking: e.2))
        }
    }

    deinit {
        sinks.deinitialize()
        sinks.deallocate()
    }
}

/// A registered marker: (channel, name, format) with its per-channel event
/// id, its enable state, and the RCU-published list of where to record.
public final class MarkerCore: @unchecked Sendable, CustomStringConvertible {
    public let channel: String
    public let name: String
    public let format: MarkerFormat
    public let eventID: UInt16
    /// Largest stored integer size: fixes the payload alignment per trace.
    public let maxIntegerSize: Int
    /// Whether every event carries an explicit size (form 30): off for
    /// in-process markers, on for `write_event` so that line lengths are
    /// visible without decoding.
    public let sizedHeader: Bool
    /// The RCU-protected `MarkerSinks` pointer; nil while nothing records.
    @usableFromInline let sinksSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let enabledFlag = Atomic<Bool>(true)

    init(channel: String, name: String, format: MarkerFormat, eventID: UInt16, sizedHeader: Bool) {
        self.channel = channel
        self.name = name
        self.format = format
        self.eventID = eventID
        self.sizedHeader = sizedHeader
        maxIntegerSize = format.fields.compactMap(\.storedSize).max() ?? 1
        sinksSlot = .allocate(capacity: 1)
        sinksSlot.initialize(to: nil)
    }

    deinit {
        if let old = sinksSlot.pointee { Unmanaged<MarkerSinks>.fromOpaque(old).release() }
        sinksSlot.deallocate()
    }

    public var description: String { "\(channel).\(name)" }

    /// Connected (recording when a trace is active) or not.
    public var isEnabled: Bool { enabledFlag.load(ordering: .relaxed) }

    /// Whether any trace would record this marker now: one plain load.
    @inlinable @inline(__always)
    public var isRecording: Bool { lttfs_rcu_is_null(sinksSlot) == 0 }

    /// Replaces the sinks; returns the old list, to release after a grace period.
    func publish(_ sinks: MarkerSinks?) -> UnsafeMutableRawPointer? {
        let new = sinks.map { Unmanaged.passRetained($0).toOpaque() }
        return lttfs_rcu_xchg_pointer(sinksSlot, new)
    }

    /// Runs `body` on each sink inside an RCU read-side critical section.
    @inlinable @inline(__always)
    public func forEachSink(_ body: (MarkerSinks.Sink) -> Void) {
        lttfs_rcu_read_lock()
        defer { lttfs_rcu_read_unlock() }
        guard let raw = lttfs_rcu_dereference(sinksSlot) else { return }
        Unmanaged<MarkerSinks>.fromOpaque(raw)._withUnsafeGuaranteedRef { list in
            for i in 0..<list.sinks.count { body(list.sinks[i]) }
        }
    }

    /// Records run-time arguments (the dynamic API). Returns false when the
    /// arguments do not fit the format.
    @discardableResult
    public func record(arguments: [TraceArgument]) -> Bool {
        guard PayloadLayout.size(of: arguments, fields: format.fields, alignment: 0) != nil else { return false }
        forEachSink { sink in
            let size = PayloadLayout.size(of: arguments, fields: format.fields, alignment: sink.alignment)!
            _ = sink.channel.currentBuffer.record(
                eventID: eventID, dataSize: UInt64(size),
                largestAlign: UInt64(PayloadLayout.largestAlign(maxIntegerSize: maxIntegerSize, alignment: sink.alignment)),
                sizedHeader: sizedHeader) { p in
                    PayloadLayout.write(arguments, fields: format.fields, to: p, alignment: sink.alignment)
                }
        }
        return true
    }
}

/// A marker with typed arguments: register once, then call `record` with
/// values of exactly the types given at registration. Nothing is allocated
/// or formatted on this path; a marker no trace records costs one load.
///
///     let request = try tracer.marker("http", "request", "status %d path %s",
///                                     as: (Int32, String).self)
///     request.record(200, "/index.html")
public struct Marker<each Value: TraceValue>: Sendable {
    public let core: MarkerCore

    init(core: MarkerCore) { self.core = core }

    @inlinable
    public func record(_ values: repeat each Value) {
        guard core.isRecording else { return }
        let fields = core.format.fields
        let id = core.eventID
        let sized = core.sizedHeader
        let maxInt = core.maxIntegerSize
        core.forEachSink { sink in
            let alignment = sink.alignment
            var size = 0
            var index = 0
            for value in repeat each values {
                size = PayloadLayout.advance(size, over: value, in: fields[index], alignment: alignment)
                index += 1
            }
            _ = sink.channel.currentBuffer.record(
                eventID: id, dataSize: UInt64(size),
                largestAlign: UInt64(PayloadLayout.largestAlign(maxIntegerSize: maxInt, alignment: alignment)),
                sizedHeader: sized) { p in
                    var offset = 0
                    var i = 0
                    for value in repeat each values {
                        offset = PayloadLayout.store(value, in: fields[i], at: p, offset: offset, alignment: alignment)
                        i += 1
                    }
                }
        }
    }
}
