import LTTFormat
import LTTRelay
import LTTTrace

/// What a path under the mount point is. The tree is not stored: every
/// lookup resolves names against the tracer's state, so nothing cached can
/// go stale (filesystem.md's tree).
enum Node: Hashable, Sendable {
    case root
    case ltt
    case setupTrace, destroyTrace, writeEvent
    /// `ltt/producer_socket`: the socket producer processes connect to.
    case producerSocket
    case controlDir
    case traceControl(trace: String)
    case traceControlFile(trace: String, TraceControlFile)
    case channelsDir(trace: String)
    case channelDir(trace: String, channel: String)
    case channelFile(trace: String, channel: String, ChannelFile)
    case markersDir
    case markerChannelDir(channel: String)
    case markerDir(channel: String, marker: String)
    case markerFile(channel: String, marker: String, MarkerFile)
    /// `ltt/<trace>/`, the buffer files of one trace instance.
    case traceDir(trace: String, serial: UInt64)
    case bufferFile(trace: String, serial: UInt64, file: String)

    enum TraceControlFile: String, CaseIterable, Sendable {
        case trans, alloc, enabled, stats
    }

    enum ChannelFile: String, CaseIterable, Sendable {
        case enable, overwrite
        case subbufNum = "subbuf_num"
        case subbufSize = "subbuf_size"
        case switchTimer = "switch_timer"
        case blockingTimeout = "blocking_timeout"
    }

    enum MarkerFile: String, CaseIterable, Sendable {
        case enable, info
    }

    var isDirectory: Bool {
        switch self {
        case .root, .ltt, .controlDir, .traceControl, .channelsDir, .channelDir, .markersDir, .markerChannelDir,
             .markerDir, .traceDir:
            true
        default:
            false
        }
    }

    /// Permission bits, checked by the kernel (`default_permissions`)
    /// against the mount's owner and its access group (`--group`, by
    /// default the owner's group), as tracefs does with `gid=`: others get
    /// nothing at all. The owner reads and controls everything; the group
    /// may look around, read every status and setting, drain buffer files
    /// (GET/PUT need only read access) and record with `write_event`, but
    /// cannot create, change or destroy traces.
    var mode: UInt32 {
        switch self {
        case _ where isDirectory: 0o750
        case .setupTrace, .destroyTrace, .traceControlFile(_, .alloc): 0o200
        case .writeEvent: 0o220
        case .traceControlFile(_, .stats), .markerFile(_, _, .info), .bufferFile, .producerSocket: 0o440
        default: 0o640
        }
    }
}

/// Resolves names to nodes against the tracer, and lists directories.
struct NodeResolver {
    let tracer: Tracer

    /// The child `name` of directory `parent`, if it exists now.
    func child(of parent: Node, named name: String) -> Node? {
        switch parent {
        case .root:
            return name == "ltt" ? .ltt : nil
        case .ltt:
            switch name {
            case "setup_trace": return .setupTrace
            case "destroy_trace": return .destroyTrace
            case "write_event": return .writeEvent
            case "producer_socket": return .producerSocket
            case "control": return .controlDir
            case "markers": return .markersDir
            default:
                guard let trace = tracer.trace(name), trace.state.hasBuffers else { return nil }
                return .traceDir(trace: name, serial: trace.serial)
            }
        case .controlDir:
            return tracer.trace(name) != nil ? .traceControl(trace: name) : nil
        case .traceControl(let trace):
            if name == "channel" { return .channelsDir(trace: trace) }
            return Node.TraceControlFile(rawValue: name).map { .traceControlFile(trace: trace, $0) }
        case .channelsDir(let trace):
            guard tracer.trace(trace)?.settings[name] != nil else { return nil }
            return .channelDir(trace: trace, channel: name)
        case .channelDir(let trace, let channel):
            return Node.ChannelFile(rawValue: name).map { .channelFile(trace: trace, channel: channel, $0) }
        case .markersDir:
            return tracer.markers(channel: name).isEmpty ? nil : .markerChannelDir(channel: name)
        case .markerChannelDir(let channel):
            return tracer.marker(channel: channel, name: name) != nil ? .markerDir(channel: channel, marker: name) : nil
        case .markerDir(let channel, let marker):
            return Node.MarkerFile(rawValue: name).map { .markerFile(channel: channel, marker: marker, $0) }
        case .traceDir(let trace, let serial):
            guard let t = tracer.trace(trace), t.serial == serial,
                  t.bufferFiles.contains(where: { $0.name == name }) else { return nil }
            return .bufferFile(trace: trace, serial: serial, file: name)
        default:
            return nil
        }
    }

    /// Does `node` still exist? (Its parent may have gone.)
    func exists(_ node: Node) -> Bool {
        switch node {
        case .root, .ltt, .setupTrace, .destroyTrace, .writeEvent, .producerSocket, .controlDir, .markersDir: return true
        case .traceControl(let t), .channelsDir(let t): return tracer.trace(t) != nil
        case .traceControlFile(let t, _): return tracer.trace(t) != nil
        case .channelDir(let t, let c), .channelFile(let t, let c, _): return tracer.trace(t)?.settings[c] != nil
        case .markerChannelDir(let c): return !tracer.markers(channel: c).isEmpty
        case .markerDir(let c, let m), .markerFile(let c, let m, _): return tracer.marker(channel: c, name: m) != nil
        case .traceDir(let t, let serial):
            guard let trace = tracer.trace(t) else { return false }
            return trace.serial == serial && trace.state.hasBuffers
        case .bufferFile(let t, let serial, let file):
            guard let trace = tracer.trace(t), trace.serial == serial else { return false }
            return trace.bufferFiles.contains { $0.name == file }
        }
    }

    /// The names in directory `node`, sorted.
    func list(_ node: Node) -> [String] {
        switch node {
        case .root: return ["ltt"]
        case .ltt:
            let traces = tracer.traces.filter { $0.state.hasBuffers }.map(\.name)
            return TraceName.lttFiles + traces.sorted()
        case .controlDir: return tracer.traces.map(\.name).sorted()
        case .traceControl: return ["channel"] + Node.TraceControlFile.allCases.map(\.rawValue)
        case .channelsDir(let t): return (tracer.trace(t)?.settings.keys.map { $0 } ?? []).sorted()
        case .channelDir: return Node.ChannelFile.allCases.map(\.rawValue)
        case .markersDir: return tracer.markerChannels
        case .markerChannelDir(let c): return tracer.markers(channel: c).keys.sorted()
        case .markerDir: return Node.MarkerFile.allCases.map(\.rawValue)
        case .traceDir(let t, let serial):
            guard let trace = tracer.trace(t), trace.serial == serial else { return [] }
            return trace.bufferFiles.map(\.name)
        default: return []
        }
    }

    /// The buffer behind a buffer file, if its trace still has it.
    func buffer(_ node: Node) -> RelayBuffer? {
        guard case .bufferFile(let t, let serial, let file) = node, let trace = tracer.trace(t),
              trace.serial == serial else { return nil }
        return trace.buffer(named: file)
    }
}
