#if canImport(Glibc)
import Glibc
#endif
import LTTFormat
import LTTRelay
import LTTTrace
import SystemPackage

/// What the control files show and accept. Writes are parsed like the
/// kernel's debugfs handlers: the first whitespace-separated word counts, a
/// trailing newline is fine, and a refused write changes nothing.
struct ControlFiles {
    let tracer: Tracer
    /// Whether an alloc may go on populating its buffers (false once the
    /// server stops: `Tracer.allocTrace`).
    let preparing: @Sendable () -> Bool

    /// An error for write(2): the errno and the reason logged with it.
    struct Refusal: Error {
        let errno: Errno
        let reason: String
        init(_ errno: Errno, _ reason: String) {
            self.errno = errno
            self.reason = reason
        }
        init(_ error: TraceError) {
            errno = error.errno
            reason = error.description
        }
    }

    // MARK: Reading

    /// The text of a readable file, or nil when the node cannot be read.
    func content(of node: Node) throws(Refusal) -> String? {
        switch node {
        case .traceControlFile(let name, let file):
            guard let trace = tracer.trace(name) else { throw Refusal(.noSuchFileOrDirectory, "no trace named \(name)") }
            switch file {
            case .trans: return trace.transport + "\n"
            case .enabled: return (trace.state == .active ? "1" : "0") + "\n"
            case .alloc: return nil
            case .stats: return stats(of: trace)
            }
        case .channelFile(let name, let channel, let file):
            guard let settings = tracer.trace(name)?.settings[channel] else {
                throw Refusal(.noSuchFileOrDirectory, "no channel \(channel) in trace \(name)")
            }
            switch file {
            case .enable: return (settings.enabled ? "1" : "0") + "\n"
            case .overwrite: return (settings.overwrite ? "1" : "0") + "\n"
            case .subbufNum: return "\(settings.subbufferCount)\n"
            case .subbufSize: return "\(settings.subbufferSize)\n"
            case .switchTimer: return "\(settings.switchTimerMillis)\n"
            case .blockingTimeout: return "\(settings.blockingTimeoutMillis)\n"
            }
        case .markerFile(let channel, let name, let file):
            guard let marker = tracer.marker(channel: channel, name: name) else {
                throw Refusal(.noSuchFileOrDirectory, "no marker \(channel).\(name)")
            }
            switch file {
            case .enable: return (marker.isEnabled ? "1" : "0") + "\n"
            case .info:
                return "format: \(marker.format.text)\nstate: \(marker.isEnabled ? 1 : 0)\n"
                    + "event_id: \(marker.eventID)\nchannel: \(marker.channel)\n"
            }
        default:
            return nil
        }
    }

    /// Per channel and CPU: what was written, lost, corrupted, delivered,
    /// consumed, overwritten by the flight recorder (sub-buffers, events),
    /// what is readable now, how many writers wait for room, and whether a
    /// reader has the buffer (0: none, 1: through the file, 2: mapped too).
    func stats(of trace: Trace) -> String {
        var lines = ["trace \(trace.name): \(trace.state.rawValue)"]
        if trace.metadataLost > 0 { lines.append("metadata declarations lost: \(trace.metadataLost)") }
        let header = ["buffer", "written", "lost", "corrupted", "delivered", "consumed", "overwritten",
                      "overwritten_events", "readable", "waiting", "reader"]
        var rows = [header]
        for (name, buffer) in trace.bufferFiles {
            let c = buffer.counters
            rows.append([name, "\(c.eventsWritten)", "\(c.eventsLost)", "\(c.corruptedSubbuffers)",
                         "\(c.subbuffersDelivered)", "\(c.subbuffersConsumed)", "\(c.subbuffersOverwritten)",
                         "\(c.eventsOverwritten)", "\(c.bytesReadable)", "\(buffer.waitingWriters)",
                         buffer.hasMappedReader ? "2" : buffer.hasReader ? "1" : "0"])
        }
        let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(zip(row, widths).enumerated().map { i, cell in
                let pad = String(repeating: " ", count: cell.1 - cell.0.count)
                return i == 0 ? cell.0 + pad : pad + cell.0
            }.joined(separator: "  "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Writing

    /// The first whitespace-separated word of a write, as the kernel's
    /// debugfs handlers took it: any ASCII whitespace (space, tab, newline,
    /// carriage return, vertical tab, form feed) ends a word, and a NUL ends
    /// the text.
    static func firstWord(_ bytes: UnsafeRawBufferPointer) throws(Refusal) -> String {
        let text = bytes.prefix { $0 != 0 }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
        guard let start = text.firstIndex(where: { !isSpace($0) }) else { throw Refusal(.invalidArgument, "empty write") }
        let word = text[start...].prefix { !isSpace($0) }
        guard let string = String(validating: word, as: UTF8.self) else {
            throw Refusal(.invalidArgument, "\(LogText.quoted(bytes: word)) is not UTF-8 text")
        }
        return string
    }

    static func bool(_ word: String) throws(Refusal) -> Bool {
        switch word {
        case "1", "y", "Y": return true
        case "0", "n", "N": return false
        default: throw Refusal(.invalidArgument, "\(LogText.quoted(word)) is not 1/0/y/n")
        }
    }

    /// A decimal number, or a hexadecimal one after `0x`: digits only, no
    /// sign, no space, and it must fit in 64 bits. Zero only if allowed.
    static func number(_ word: String, allowZero: Bool = false) throws(Refusal) -> UInt64 {
        var digits = Substring(word)
        var radix = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            digits = digits.dropFirst(2)
            radix = 16
        }
        let valid = !digits.isEmpty && digits.allSatisfy { $0.isASCII && (radix == 16 ? $0.isHexDigit : $0.isNumber) }
        guard valid, let v = UInt64(digits, radix: radix) else {
            throw Refusal(.invalidArgument, "\(LogText.quoted(word)) is not a number")
        }
        guard v > 0 || allowZero else { throw Refusal(.invalidArgument, "0 is not allowed here") }
        return v
    }

    /// Applies a write to `node`; returns nothing or throws the refusal.
    func write(_ bytes: UnsafeRawBufferPointer, to node: Node) throws(Refusal) {
        let word = try Self.firstWord(bytes)
        do {
            switch node {
            case .setupTrace:
                try tracer.setupTrace(word)
            case .destroyTrace:
                try tracer.destroyTrace(word)
            case .traceControlFile(let name, let file):
                switch file {
                case .trans: try tracer.setTransport(trace: name, word)
                case .alloc:
                    guard try Self.bool(word) else { throw Refusal(.invalidArgument, "alloc takes 1, y or Y") }
                    try tracer.allocTrace(name, preparing: preparing)
                case .enabled:
                    if try Self.bool(word) { try tracer.startTrace(name) } else { try tracer.stopTrace(name) }
                case .stats:
                    throw Refusal(.permissionDenied, "stats is read-only")
                }
            case .channelFile(let name, let channel, let file):
                try channelSetting(trace: name, channel: channel, file, word)
            case .markerFile(let channel, let marker, .enable):
                try tracer.setMarkerEnabled(channel: channel, name: marker, try Self.bool(word))
            default:
                throw Refusal(.permissionDenied, "not writable")
            }
        } catch let error as TraceError {
            throw Refusal(error)
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            throw Refusal(.ioError, "\(error)")
        }
    }

    private func channelSetting(trace: String, channel: String, _ file: Node.ChannelFile, _ word: String) throws {
        // Parse before touching anything: a refused write changes nothing.
        switch file {
        case .enable:
            let on = try Self.bool(word)
            if channel == Metadata.channel && !on { throw Refusal(.invalidArgument, "the metadata channel cannot be disabled") }
            try tracer.updateChannel(trace: trace, channel: channel) { $0.enabled = on }
        case .overwrite:
            let on = try Self.bool(word)
            if channel == Metadata.channel && on { throw Refusal(.invalidArgument, "the metadata channel cannot overwrite") }
            try tracer.updateChannel(trace: trace, channel: channel) { $0.overwrite = on }
        case .subbufNum:
            let count = try Self.number(word)
            try tracer.updateChannel(trace: trace, channel: channel) { $0.subbufferCount = count }
        case .subbufSize:
            let size = try Self.number(word)
            try tracer.updateChannel(trace: trace, channel: channel) { $0.subbufferSize = size }
        case .switchTimer:
            let ms = try Self.number(word, allowZero: true)
            guard ms <= 3_600_000 else { throw Refusal(.invalidArgument, "switch_timer \(ms) ms: at most an hour") }
            try tracer.updateChannel(trace: trace, channel: channel) { $0.switchTimerMillis = ms }
        case .blockingTimeout:
            let ms = try Self.number(word, allowZero: true)
            guard ms <= 3_600_000 else { throw Refusal(.invalidArgument, "blocking_timeout \(ms) ms: at most an hour") }
            try tracer.updateChannel(trace: trace, channel: channel) { $0.blockingTimeoutMillis = ms }
        }
    }
}
