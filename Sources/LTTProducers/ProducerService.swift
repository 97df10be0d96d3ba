#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import CRelayABI
import Foundation
import LTTFormat
import LTTRelay
import LTTSystem
import LTTTrace
import Synchronization
import SystemPackage
import Atomics

/// The server's side of producer processes: they connect to `socketName`
/// (abstract namespace), register their markers, and receive the buffers of
/// the server's traces as memfds to record into with the tracer's own code
/// (`Producer`). Nothing they do reaches the server's hot path; what they
/// send is checked, and what they map is the only thing they can touch.
///
/// - Who may connect: the peer's credentials, as the kernel gives them
///   (SO_PEERCRED, SO_PEERGROUPS), must pass `admits` (the mount's owner,
///   root, the tracing group): others are refused and logged.
/// - Changes of the traces reach producers through the producers page:
///   `generation` moves (the tracer's `onChange`), and each producer's
///   watcher thread, asleep on it, asks for the traces again.
/// - Deliveries: a producer that delivers a sub-buffer marks the buffer
///   (`remote_wakeup`) and writes its connection's eventfd; the connection's
///   thread then posts the marked buffers to the tracer's doorbell, which
///   wakes their readers as for the server's own producers.
/// - A producer that dies: its connection closes; once its PID is gone,
///   every buffer lock it held is taken back (RelayBuffer.recoverLock) and
///   the sub-buffers it left incomplete become the seed's corrupted ones.
public final class ProducerService: @unchecked Sendable {
    public let tracer: Tracer
    /// The abstract socket name producers connect to.
    public let socketName: String
    private let listener: SeqpacketSocket
    private let page: UnsafeMutablePointer<lttfs_producers_page>
    private let pageDescriptor: Int32
    private let generation: UnsafeAtomic<UInt32>
    private let admits: @Sendable (_ uid: uid_t, _ gid: gid_t, _ groups: [gid_t]) -> Bool
    private let log: @Sendable (TracerLogLevel, String) -> Void
    private let clockKind: ProducerWire.ClockKind

    private struct State {
        var connections: [ObjectIdentifier: SeqpacketSocket] = [:]
        var threads = 0
        var stopping = false
        /// Connections being told they may not record (`refuseUnadmitted`).
        var refusing = 0
    }
    private let state = Locked(State())
    private let threadsDone = DispatchSemaphore(value: 0)

    /// Why the service cannot start.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public init(tracer: Tracer, admits: @escaping @Sendable (uid_t, gid_t, [gid_t]) -> Bool,
                log: @escaping @Sendable (TracerLogLevel, String) -> Void) throws(Failure) {
        self.tracer = tracer
        self.admits = admits
        self.log = log
        switch tracer.clock.source {
        case .tsc: clockKind = .tsc
        case .monotonic: clockKind = .monotonic
        case .custom: throw Failure(description: "the trace clock is a function of this process: no other process can read it")
        }
        let size = Int(getpagesize())
        let fd = lttfs_sealed_memfd_open("lttfs-producers", UInt64(size))
        guard fd >= 0 else { throw Failure(description: "memfd_create: \(Errno(rawValue: errno).explained)") }
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            let e = Errno(rawValue: errno)
            close(fd)
            throw Failure(description: "mmap: \(e.explained)")
        }
        // Producers map it read-only and cannot make it writable.
        guard lttfs_seal_future_write(fd) == 0 else {
            let e = Errno(rawValue: errno)
            munmap(raw, size)
            close(fd)
            throw Failure(description: "F_SEAL_FUTURE_WRITE: \(e.explained)")
        }
        page = raw.bindMemory(to: lttfs_producers_page.self, capacity: 1)
        page.pointee.magic = LTTFS_PRODUCERS_MAGIC
        page.pointee.version = ProducerWire.version
        pageDescriptor = fd
        generation = page.sharedAtomic(\.generation)
        var name = ""
        var listening: SeqpacketSocket?
        for _ in 0..<8 where listening == nil {
            name = "lttfs-\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            listening = try? SeqpacketSocket.listen(name: name)
        }
        guard let listening else {
            munmap(raw, size)
            close(fd)
            throw Failure(description: "cannot listen on an abstract Unix socket")
        }
        listener = listening
        socketName = name
        tracer.onChange { [weak self] in self?.tracesChanged() }
        startThread(name: "lttfs-producers") { [self] in acceptLoop() }
    }

    /// The traces changed: every producer's watcher wakes and asks again.
    private func tracesChanged() {
        generation.wrappingIncrement(ordering: .releasing)
        _ = lttfs_futex_wake_shared(page.pointer(to: \.generation)!, Int32.max)
    }

    deinit {
        munmap(UnsafeMutableRawPointer(page), Int(getpagesize()))
        close(pageDescriptor)
    }

    /// Stops accepting, ends every connection and every producer's wait
    /// for room (nobody will drain the buffers any more: each waiting event
    /// is counted lost), and waits (bounded) for the threads. Producers
    /// keep recording into what they mapped.
    public func shutdown() {
        forEachBuffer { _, _, buffer in buffer.endWaits() }
        let connections = state.withLock { s -> [SeqpacketSocket] in
            s.stopping = true
            return Array(s.connections.values)
        }
        listener.shutdown()
        for connection in connections { connection.shutdown() }
        let threads = state.withLock { $0.threads }
        for _ in 0..<threads where threadsDone.wait(timeout: .now() + 5) == .timedOut {
            log(.error, "producers: a connection thread did not end within 5 s")
            break
        }
    }

    /// Starts a thread `shutdown` waits for (`counted`: the caller has
    /// counted it already, under the lock that saw no shutdown yet).
    private func startThread(name: String, counted: Bool = false, _ body: @escaping @Sendable () -> Void) {
        if !counted { state.withLock { $0.threads += 1 } }
        let thread = Thread { [threadsDone] in
            body()
            threadsDone.signal()
        }
        thread.name = name
        thread.start()
    }

    private func acceptLoop() {
        while true {
            let connection: SeqpacketSocket
            do throws(Errno) { connection = try listener.accept() } catch {
                if state.withLock({ $0.stopping }) { return }
                if error == .tooManyOpenFiles || error == .noMemory || error == .noBufferSpace {
                    log(.error, "producers: accept: \(error.explained)")
                    usleep(100_000)
                    continue
                }
                return
            }
            // Credentials first, from the socket itself: whoever may not
            // record never takes a producer's place (abstract sockets have no
            // file mode: anyone can connect, and a flood of them did).
            let pid: pid_t
            do throws(Errno) {
                let credentials = try connection.peerCredentials()
                guard admits(credentials.uid, credentials.gid, try connection.peerGroups()) else {
                    refuseUnadmitted(connection, pid: credentials.pid, uid: credentials.uid)
                    continue
                }
                pid = credentials.pid
            } catch {
                warn("producers: a connection without credentials refused: \(error.explained)")
                continue
            }
            let admitted = state.withLock { s -> Bool in
                guard !s.stopping, s.connections.count < Self.maximumConnections else { return false }
                s.connections[ObjectIdentifier(connection)] = connection
                s.threads += 1
                return true
            }
            guard admitted else {
                if state.withLock({ $0.stopping }) { return }
                warn("producers: \(Self.maximumConnections) connections already: one refused")
                continue
            }
            startThread(name: "lttfs-producer", counted: true) { [self] in
                serve(connection, pid: pid)
                state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
                connection.shutdown()
                recoverLocks(of: pid)
                // A delivery it marked but did not get to tell of.
                postDeliveries()
            }
        }
    }

    /// Connections served at once, at most.
    static let maximumConnections = 1024

    /// Connections told at once that they may not record, at most: past
    /// that, one is closed without a word.
    static let maximumRefusing = 16

    /// Tells a peer whose credentials `admits` refuses why, after its hello
    /// is read (waiting at most a second, on a thread of its own), so that
    /// the refusal reaches it rather than a reset. These never count among
    /// the producers' connections, and at most `maximumRefusing` wait at
    /// once.
    private func refuseUnadmitted(_ connection: SeqpacketSocket, pid: pid_t, uid: uid_t) {
        warn("producers: pid \(pid) (uid \(uid)) may not record here: refused")
        let taken = state.withLock { s -> Bool in
            guard !s.stopping, s.refusing < Self.maximumRefusing else { return false }
            s.refusing += 1
            s.threads += 1
            return true
        }
        guard taken else { return }
        startThread(name: "lttfs-producer-refusal", counted: true) { [self] in
            var fds = [pollfd(fd: connection.descriptor, events: Int16(POLLIN), revents: 0)]
            if (try? LTTSystem.poll(&fds, milliseconds: 1000)) == 1 {
                for fd in (try? connection.receive(capacity: ProducerWire.maximumMessage))?.descriptors ?? [] { close(fd) }
            }
            refuse(connection, .permissionDenied,
                   "uid \(uid) may not record into this mount (its owner, root and its access group may)")
            state.withLock { $0.refusing -= 1 }
        }
    }

    /// A warning about connections, at most `warningsPerSecond` a second
    /// (anyone may connect, as often as they like): the ones left out are
    /// counted in the next one logged.
    private func warn(_ message: String) {
        guard case .log(let dropped) = warnings.admit() else { return }
        log(.warning, dropped > 0 ? "\(message) (and \(dropped) more connection warnings not logged)" : message)
    }

    static let warningsPerSecond = 20
    private let warnings = LogRateLimit(perSecond: ProducerService.warningsPerSecond)

    // MARK: One producer

    private func serve(_ connection: SeqpacketSocket, pid: pid_t) {
        let deliveries = lttfs_eventfd()
        guard deliveries >= 0 else {
            log(.error, "producers: eventfd: \(Errno(rawValue: errno).explained)")
            return
        }
        defer { close(deliveries) }
        do throws(Errno) {
            var fds = [pollfd(fd: connection.descriptor, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: deliveries, events: Int16(POLLIN), revents: 0)]
            while true {
                _ = try LTTSystem.poll(&fds, milliseconds: -1)
                if fds[1].revents & Int16(POLLIN) != 0 {
                    var count: UInt64 = 0
                    _ = Glibc.read(deliveries, &count, 8)
                    postDeliveries()
                }
                if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let message = try connection.receive(capacity: ProducerWire.maximumMessage)
                    for fd in message.descriptors { close(fd) }
                    if message.bytes.isEmpty { return }
                    do throws(ProducerWire.Malformed) {
                        try handle(message.bytes, from: connection, pid: pid, deliveries: deliveries)
                    } catch {
                        log(.warning, "producers: pid \(pid): \(error.description): connection closed")
                        return
                    }
                }
            }
        } catch {
            if !state.withLock({ $0.stopping }) && error != .connectionReset {
                log(.info, "producers: pid \(pid): \(error.explained)")
            }
        }
    }

    private func handle(_ bytes: [UInt8], from connection: SeqpacketSocket, pid: pid_t, deliveries: Int32)
        throws(ProducerWire.Malformed) {
        var r = ProducerWire.Reader(bytes)
        switch try r.operation() {
        case .hello:
            let version: UInt32 = try r.get()
            try r.end()
            guard version == ProducerWire.version else {
                refuse(connection, .protocolNotSupported, "protocol version \(version); this server speaks \(ProducerWire.version)")
                return
            }
            var w = ProducerWire.Writer(.welcome)
            w.put(ProducerWire.version)
            w.put(UInt32(truncatingIfNeeded: pid))   // the producer's lock token
            w.put(UInt32(tracer.cpuCount))
            w.put(clockKind.rawValue)
            w.put(tracer.clock.frequency)
            try? connection.send(w.bytes, descriptors: [pageDescriptor, deliveries])
        case .register:
            let channel = try r.string(maximum: 256)
            let name = try r.string(maximum: 256)
            let format = try r.string()
            try r.end()
            do throws(TraceError) {
                let marker = try tracer.register(channel: channel, name: name, format: format)
                var w = ProducerWire.Writer(.registered)
                w.put(marker.eventID)
                w.put(UInt8(marker.sizedHeader ? 1 : 0))
                try? connection.send(w.bytes)
            } catch {
                log(.warning, "producers: pid \(pid): marker \(channel).\(name) refused: \(error.description)")
                refuse(connection, error.errno, error.description)
            }
        case .traces:
            try r.end()
            sendTraces(to: connection)
        case .attachReader:
            let low: UInt64 = try r.get()
            let high: UInt64 = try r.get()
            try r.end()
            attachReader(ReaderGrants.Token(high: high, low: low), to: connection, pid: pid)
        default:
            throw ProducerWire.Malformed(why: "a message only the server sends")
        }
    }

    private func refuse(_ connection: SeqpacketSocket, _ errno: Errno, _ why: String) {
        var w = ProducerWire.Writer(.refused)
        w.put(errno.rawValue)
        w.put(why)
        try? connection.send(w.bytes)
    }

    /// Every trace with buffers: a `trace` message, then a `channel` message
    /// per channel with its buffers' memfds, then `tracesEnd`.
    private func sendTraces(to connection: SeqpacketSocket) {
        // A list cut short would leave the producer waiting for its end:
        // the connection ends instead.
        var failed = false
        defer { if failed { connection.shutdown() } }
        for trace in tracer.traces where trace.state.hasBuffers {
            // The metadata channel is the server's alone: producers never
            // record into it, and are not handed it.
            let channels = trace.channels.filter { $0.key != Metadata.channel }
            var w = ProducerWire.Writer(.trace)
            w.put(trace.serial)
            w.put(ProducerWire.code(trace.state))
            w.put(trace.name)
            ProducerWire.put(trace.header, into: &w)
            w.put(UInt32(channels.count))
            do throws(Errno) {
                try connection.send(w.bytes)
                for (name, channel) in channels.sorted(by: { $0.key < $1.key }) {
                    var c = ProducerWire.Writer(.channel)
                    c.put(name)
                    c.put(channel.geometry.subbufferSize)
                    c.put(channel.geometry.subbufferCount)
                    c.put(UInt8(channel.overwrite ? 1 : 0))
                    c.put(trace.settings[name]?.blockingTimeoutMillis ?? 0)
                    let buffers = channel.buffers.prefix(ProducerWire.maximumDescriptors)
                    c.put(UInt32(buffers.count))
                    try connection.send(c.bytes, descriptors: buffers.map(\.mapping.descriptor))
                }
            } catch {
                failed = true
                return
            }
        }
        do throws(Errno) { try connection.send(ProducerWire.Writer(.tracesEnd).bytes) } catch { failed = true }
    }

    /// A consumer redeems the grant of a buffer file it has open: it gets
    /// the buffer's memfd and an eventfd the server rings where it would
    /// wake the file's poll. The token alone is the proof (ReaderGrants):
    /// only the open file could issue it, and it is good once.
    private func attachReader(_ token: ReaderGrants.Token, to connection: SeqpacketSocket, pid: pid_t) {
        guard let grant = tracer.readerGrants.redeem(token) else {
            log(.warning, "producers: pid \(pid): a reader grant that no open buffer file issued, or used already: refused")
            refuse(connection, .permissionDenied, "no open buffer file issued this grant, or it was used already")
            return
        }
        let buffer = grant.buffer
        guard !buffer.isAbandoned else {
            refuse(connection, .ioError, "the server gave this buffer up: read it through its file")
            return
        }
        let bell = lttfs_eventfd()
        guard bell >= 0 else {
            let e = Errno(rawValue: errno)
            log(.error, "producers: eventfd: \(e.explained)")
            refuse(connection, e, "eventfd: \(e.explained)")
            return
        }
        // The consumer's copy goes with the message; the grant keeps ours
        // (closed when the file closes, or now if it closed meanwhile).
        defer { close(bell) }
        let kept = dup(bell)
        guard kept >= 0, grant.attach(bell: kept) else {
            refuse(connection, .badFileDescriptor, "the buffer file was closed")
            return
        }
        var w = ProducerWire.Writer(.reader)
        w.put(buffer.geometry.subbufferSize)
        w.put(buffer.geometry.subbufferCount)
        w.put(UInt8(buffer.overwrite ? 1 : 0))
        w.put(UInt32(truncatingIfNeeded: buffer.cpu))
        ProducerWire.put(buffer.trace, into: &w)
        try? connection.send(w.bytes, descriptors: [buffer.mapping.descriptor, bell])
    }

    /// A producer delivered sub-buffers: the buffers it marked are posted
    /// to the doorbell (their readers are woken).
    private func postDeliveries() {
        forEachBuffer { _, _, buffer in buffer.postRemoteDelivery() }
    }

    /// Every buffer of every trace that has buffers: what producers map.
    private func forEachBuffer(_ body: (_ trace: String, _ file: String, RelayBuffer) -> Void) {
        for trace in tracer.traces where trace.state.hasBuffers {
            for (file, buffer) in trace.bufferFiles { body(trace.name, file, buffer) }
        }
    }

    /// After a producer's connection closed: once its process is gone
    /// (bounded wait: it may still be exiting), every lock it held is
    /// taken back. A process that closed its connection and lives on
    /// keeps its locks: its writes are still coming.
    private func recoverLocks(of pid: pid_t) {
        let token = UInt32(truncatingIfNeeded: pid)
        var dead = RelayLock.isDead(token)
        for _ in 0..<200 where !dead && !state.withLock({ $0.stopping }) {
            usleep(10_000)
            dead = RelayLock.isDead(token)
        }
        guard dead else { return }
        forEachBuffer { trace, file, buffer in
            if buffer.lockHolder == token && buffer.recoverLock(from: token) {
                log(.warning, "trace \(trace): producer pid \(pid) died holding the lock of \(file): taken back; its unfinished event makes that sub-buffer corrupted")
            }
        }
    }
}
