import LTTSystem

/// One session on an lttng-relayd: its two connections and the commands a
/// consumer sends on them (`RelaydProtocol.swift`). Thread-safe: each
/// connection is used under a lock of its own, a command and its reply
/// together.
///
/// Any failure is final for the session, as in lttng-consumerd: the relay
/// daemon closes a connection after most refusals, and has no way to
/// resume a stream.
public final class RelaydSession: Sendable {
    /// Where the relay daemon listens.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var controlPort: UInt16
        public var dataPort: UInt16

        public init(host: String, controlPort: UInt16 = 5342, dataPort: UInt16 = 5343) {
            self.host = host
            self.controlPort = controlPort
            self.dataPort = dataPort
        }

        /// `HOST`, `HOST:CONTROL_PORT`, `HOST:CONTROL_PORT:DATA_PORT` (the
        /// data port defaults to the control port + 1), or the same behind
        /// `net://` or `tcp://` as LTTng writes it; `[v6 address]` too.
        public init?(parsing text: String) {
            var rest = Substring(text)
            for scheme in ["net://", "tcp://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            var host: Substring
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { return nil }
                host = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
            } else {
                host = rest.prefix { $0 != ":" }
                rest = rest.dropFirst(host.count)
            }
            guard !host.isEmpty, !host.contains("/") else { return nil }
            let ports = rest.isEmpty ? [] : rest.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
            guard rest.isEmpty || rest.first == ":", ports.count <= 2 else { return nil }
            let numbers = ports.map { UInt16($0) }
            guard numbers.allSatisfy({ $0 != nil && $0 != 0 }) else { return nil }
            let control = numbers.first.flatMap { $0 } ?? 5342
            let data = numbers.count > 1 ? numbers[1]! : (control == 65535 ? 0 : control + 1)
            guard data != 0 else { return nil }
            self.init(host: String(host), controlPort: control, dataPort: data)
        }

        public var description: String { "\(host):\(controlPort):\(dataPort)" }
    }

    /// Why the session failed.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case connect(Address, TCPConnection.Failure)
        /// The relay daemon answered with another protocol major version.
        case version(major: UInt32, minor: UInt32)
        /// A command was refused (`code`: lttng's error code).
        case refused(command: String, code: UInt32)
        /// A connection failed while in use.
        case connection(String, TCPConnection.Failure)

        public var description: String {
            switch self {
            case .connect(let a, let e): "cannot connect to lttng-relayd at \(a): \(e)"
            case .version(let major, let minor): "lttng-relayd speaks protocol \(major).\(minor), not 2.x"
            case .refused(let command, let code): "lttng-relayd refused \(command) (lttng error \(code))"
            case .connection(let which, let e): "lttng-relayd \(which) connection: \(e)"
            }
        }
    }

    public let address: Address
    /// The relay daemon's session id and where it writes it (below its
    /// output directory), from CREATE_SESSION's reply.
    public let relaySessionID: UInt64
    public let outputPath: String
    public let sessionName: String
    public let hostname: String

    private let control: Locked<TCPConnection>
    private let data: Locked<TCPConnection>

    /// Connects, announces the protocol, creates the session (`liveTimer`
    /// microseconds, 0: not live) and its first trace chunk.
    public init(address: Address, sessionName: String, hostname: String, liveTimerMicroseconds: UInt32,
                creationTime: UInt64, uuid: [UInt8], sessionID: UInt64) throws(Failure) {
        let control: TCPConnection, data: TCPConnection
        do throws(TCPConnection.Failure) {
            control = try TCPConnection.connect(host: address.host, port: address.controlPort)
        } catch {
            throw .connect(address, error)
        }
        // VERSION: only the control connection has a handshake.
        var version = BigEndianBytes()
        version.u32(relaydProtocolMajor)
        version.u32(relaydProtocolMinor)
        var reply = try Self.exchange(control, version.command(.version), replyBytes: 8, "VERSION")
        let (major, minor) = (reply.u32(), reply.u32())
        guard major == relaydProtocolMajor, minor >= 11 else { throw .version(major: major, minor: minor) }

        // CREATE_SESSION, 2.11 layout.
        var create = BigEndianBytes()
        create.u32(UInt32(sessionName.utf8.count + 1))
        create.u32(UInt32(hostname.utf8.count + 1))
        create.u32(1)                                   // base path: ""
        create.u32(liveTimerMicroseconds)
        create.u8(0)                                    // not a snapshot
        create.u8(0)                                    // the name has no creation time: relayd adds it
        create.raw(uuid)
        create.u64(sessionID)
        create.u64(creationTime)
        create.u8(0)                                    // no current chunk yet
        create.u64(0)
        create.cString(sessionName)
        create.cString(hostname)
        create.cString("")
        reply = try Self.exchange(control, create.command(.createSession), replyBytes: 16, "CREATE_SESSION")
        let session = reply.u64()
        let code = reply.u32()
        let pathLength = Int(reply.u32())
        guard code == relaydOK else { throw .refused(command: "CREATE_SESSION", code: code) }
        let path: [UInt8]
        do throws(TCPConnection.Failure) { path = try control.receive(exactly: min(pathLength, 4096)) } catch {
            throw .connection("control", error)
        }
        // CREATE_TRACE_CHUNK: without a current chunk no stream can be added.
        var chunk = BigEndianBytes()
        chunk.u64(0)
        chunk.u64(creationTime)
        chunk.u32(0)                                    // no name of its own
        reply = try Self.exchange(control, chunk.command(.createTraceChunk), replyBytes: 4, "CREATE_TRACE_CHUNK")
        let chunkCode = reply.u32()
        guard chunkCode == relaydOK else { throw .refused(command: "CREATE_TRACE_CHUNK", code: chunkCode) }
        do throws(TCPConnection.Failure) {
            data = try TCPConnection.connect(host: address.host, port: address.dataPort)
        } catch {
            throw .connect(address, error)
        }
        self.address = address
        self.relaySessionID = session
        self.outputPath = String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
        self.sessionName = sessionName
        self.hostname = hostname
        self.control = Locked(control)
        self.data = Locked(data)
    }

    /// Sends a command and reads its `replyBytes`-byte reply.
    private static func exchange(_ connection: TCPConnection, _ message: [UInt8], replyBytes: Int,
                                 _ name: String) throws(Failure) -> BigEndianReader {
        do throws(TCPConnection.Failure) {
            try connection.send(message)
            return BigEndianReader(bytes: try connection.receive(exactly: replyBytes))
        } catch {
            throw .connection("control (\(name))", error)
        }
    }

    private func command(_ message: [UInt8], replyBytes: Int, _ name: String) throws(Failure) -> BigEndianReader {
        try control.withLock { (c: inout TCPConnection) throws(Failure) -> BigEndianReader in
            try Self.exchange(c, message, replyBytes: replyBytes, name)
        }
    }

    private func expectOK(_ message: [UInt8], _ name: String) throws(Failure) {
        var reply = try command(message, replyBytes: 4, name)
        let code = reply.u32()
        guard code == relaydOK else { throw .refused(command: name, code: code) }
    }

    /// ADD_STREAM: a stream file `channelName` in directory `pathname` of
    /// the session (`metadata` is the metadata stream); its handle.
    public func addStream(channelName: String, pathname: String) throws(Failure) -> UInt64 {
        var b = BigEndianBytes()
        b.u32(UInt32(channelName.utf8.count + 1))
        b.u32(UInt32(pathname.utf8.count + 1))
        b.u64(0)                                        // no size limit per file
        b.u64(0)
        b.u64(0)                                        // trace chunk 0
        b.cString(channelName)
        b.cString(pathname)
        var reply = try command(b.command(.addStream), replyBytes: 12, "ADD_STREAM")
        let handle = reply.u64()
        let code = reply.u32()
        guard code == relaydOK else { throw .refused(command: "ADD_STREAM \(channelName)", code: code) }
        return handle
    }

    /// STREAMS_SENT: the streams added so far are shown to live readers.
    public func streamsSent() throws(Failure) {
        try expectOK(BigEndianBytes().command(.streamsSent), "STREAMS_SENT")
    }

    /// SEND_METADATA: `text` appended to the metadata stream (no reply).
    public func sendMetadata(stream: UInt64, _ text: String) throws(Failure) {
        var b = BigEndianBytes()
        b.u64(stream)
        b.u32(0)                                        // no padding: it would put NULs in the text
        b.raw(Array(text.utf8))
        let message = b.command(.sendMetadata)
        try control.withLock { (c: inout TCPConnection) throws(Failure) in
            do throws(TCPConnection.Failure) { try c.send(message) } catch {
                throw .connection("control (SEND_METADATA)", error)
            }
        }
    }

    /// One packet on the data connection, then its index on the control
    /// connection (a live reader sees a packet once its index came).
    public func sendPacket(stream: UInt64, netSequenceNumber: UInt64, _ packet: UnsafeRawBufferPointer,
                           index: (contentBits: UInt64, begin: UInt64, end: UInt64, discarded: UInt64, streamClass: UInt64,
                                   instance: UInt64, packetSequenceNumber: UInt64)) throws(Failure) {
        var header = BigEndianBytes()
        header.u64(0)
        header.u64(stream)
        header.u64(netSequenceNumber)
        header.u32(UInt32(packet.count))
        header.u32(0)
        let head = header.bytes
        try data.withLock { (c: inout TCPConnection) throws(Failure) in
            do throws(TCPConnection.Failure) {
                try c.send(head)
                try c.send(packet)
            } catch {
                throw .connection("data", error)
            }
        }
        let entry = RelaydIndex(relayStreamID: stream, netSequenceNumber: netSequenceNumber,
                                packetSize: UInt64(packet.count) * 8, contentSize: index.contentBits,
                                timestampBegin: index.begin, timestampEnd: index.end, eventsDiscarded: index.discarded,
                                streamClassID: index.streamClass, streamInstanceID: index.instance,
                                packetSequenceNumber: index.packetSequenceNumber)
        try expectOK(entry.payload.command(.sendIndex), "SEND_INDEX")
    }

    /// DATA_PENDING: whether the relay daemon has written everything of
    /// `stream` up to `lastNetSequenceNumber` (packets and their indexes):
    /// what it got on a connection is not yet what it wrote.
    public func hasWritten(stream: UInt64, through lastNetSequenceNumber: UInt64) throws(Failure) -> Bool {
        var b = BigEndianBytes()
        b.u64(stream)
        b.u64(lastNetSequenceNumber)
        var reply = try command(b.command(.dataPending), replyBytes: 4, "DATA_PENDING")
        switch reply.u32() {
        case 0: return true
        case 1: return false
        case let code: throw .refused(command: "DATA_PENDING", code: code)
        }
    }

    /// Ends the session: both connections shut down. The relay daemon
    /// counts a session closed when its control connection is, not when
    /// its streams are: only then does a live reader get its end (it asks
    /// for new streams until then). Any command after it fails.
    public func close() {
        control.withLock { $0.shutdown() }
        data.withLock { $0.shutdown() }
    }

    /// CLOSE_STREAM: after its last packet (`UInt64.max`: none).
    public func closeStream(_ stream: UInt64, lastNetSequenceNumber: UInt64) throws(Failure) {
        var b = BigEndianBytes()
        b.u64(stream)
        b.u64(lastNetSequenceNumber)
        try expectOK(b.command(.closeStream), "CLOSE_STREAM")
    }
}
