import LTTFormat
import LTTTrace

/// The messages between the lttfs server and a producer process, over a
/// SOCK_SEQPACKET Unix socket (one message per packet, little-endian).
///
///     producer                               server
///     hello(version)                   ->
///                                      <-    welcome(version, token, cpus, clock) + [producers page]
///     register(channel, name, format)  ->
///                                      <-    registered(id, sized) | refused(errno, why)
///     traces                           ->
///                                      <-    trace(...) then channel(...) + [one memfd per CPU], ...
///                                      <-    tracesEnd
///
/// A consumer that has a buffer file open maps it the same way (ReaderGrants):
///
///     consumer                               server
///     hello(version)                   ->
///                                      <-    welcome(...) + [producers page, eventfd]
///     attachReader(token)              ->
///                                      <-    reader(geometry, cpu, header) + [memfd, eventfd]
///                                            | refused(errno, why)
///
/// The server trusts nothing a producer sends: every field is bounded
/// (`Reader`), a message that does not parse ends the connection.
enum ProducerWire {
    static let version: UInt32 = 1
    /// The largest message either side accepts.
    static let maximumMessage = 64 * 1024
    /// Descriptors in one message: SCM_MAX_FD.
    static let maximumDescriptors = 253

    enum Operation: UInt32 {
        case hello = 1, welcome, register, registered, refused, traces, trace, channel, tracesEnd
        case attachReader, reader
    }

    /// Which clock the server's traces use: a producer reads the same.
    enum ClockKind: UInt32 { case tsc = 0, monotonic = 1 }

    struct Writer {
        var bytes: [UInt8] = []
        init(_ operation: Operation) { put(operation.rawValue) }
        mutating func put<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        /// A string of at most 65535 bytes (cut there: the reader refuses
        /// longer ones anyway).
        mutating func put(_ text: String) {
            let utf8 = Array(text.utf8.prefix(Int(UInt16.max)))
            put(UInt16(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        let why: String
        var description: String { "malformed message: \(why)" }
    }

    struct Reader {
        let bytes: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func operation() throws(Malformed) -> Operation {
            let raw: UInt32 = try get()
            guard let op = Operation(rawValue: raw) else { throw Malformed(why: "operation \(raw)") }
            return op
        }
        mutating func get<T: FixedWidthInteger>(_: T.Type = T.self) throws(Malformed) -> T {
            let size = MemoryLayout<T>.size
            guard at + size <= bytes.count else { throw Malformed(why: "\(size) bytes at \(at) of \(bytes.count)") }
            var value: T = 0
            withUnsafeMutableBytes(of: &value) { raw in
                for i in 0..<size { raw[i] = bytes[at + i] }
            }
            at += size
            return T(littleEndian: value)
        }
        mutating func string(maximum: Int = 4096) throws(Malformed) -> String {
            let count = Int(try get(UInt16.self))
            guard count <= maximum, at + count <= bytes.count else { throw Malformed(why: "string of \(count) bytes at \(at)") }
            let utf8 = bytes[at..<at + count]
            at += count
            guard !utf8.contains(0), let text = String(validating: utf8, as: UTF8.self) else {
                throw Malformed(why: "a string that is not UTF-8 or holds NUL")
            }
            return text
        }
        func end() throws(Malformed) {
            guard at == bytes.count else { throw Malformed(why: "\(bytes.count - at) bytes too many") }
        }
    }

    /// A trace's state as it travels: only the states with buffers do.
    static func code(_ state: TraceState) -> UInt8 {
        switch state {
        case .active: 2
        case .stopped: 3
        default: 1   // allocated
        }
    }

    static func state(code: UInt8) -> TraceState {
        switch code {
        case 2: .active
        case 3: .stopped
        default: .allocated
        }
    }

    // The trace-wide header fields travel with each trace.
    static func put(_ h: TraceHeaderFields, into w: inout Writer) {
        w.put(h.alignment)
        w.put(h.archSize)
        w.put(h.startTimeSec)
        w.put(h.startTimeUsec)
        w.put(h.startFreq)
        w.put(h.freqScale)
        w.put(h.startTSC)
    }

    static func header(from r: inout Reader) throws(Malformed) -> TraceHeaderFields {
        var h = TraceHeaderFields()
        h.alignment = try r.get()
        h.archSize = try r.get()
        h.startTimeSec = try r.get()
        h.startTimeUsec = try r.get()
        h.startFreq = try r.get()
        h.freqScale = try r.get()
        h.startTSC = try r.get()
        return h
    }
}
