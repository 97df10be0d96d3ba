#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CLinuxSupport
import CRelayABI
import CURCU
import Foundation
import LTTFormat
import LTTRelay
import LTTSystem
import LTTTrace
import Synchronization
import SystemPackage

/// A program that records into the traces of an lttfs server it does not
/// run: its markers are the tracer's own (`marker(...)`, `record`), its
/// events go straight into the server's buffers, mapped into this process,
/// with no system call per event.
///
///     let producer = try Producer()                   // $LTTFS_MOUNT, else /mnt/ltt
///     let request = try producer.marker("app", "request", "id %lu len %u", as: (UInt64, UInt32).self)
///     request.record(42, 512)
///
/// The server assigns each marker's ID and declares it in its traces' metadata,
/// so several processes registering one marker share it. A watcher thread
/// sleeps on the server's producers page and follows its traces (alloc,
/// start, stop, destroy) without the recording threads noticing.
///
/// After fork(2) the child records nothing through its parent's producer
/// (those events are refused, not counted: the buffers are the parent's);
/// it may make a `Producer` of its own.
public final class Producer: @unchecked Sendable {
    /// The default mount point, when neither the argument nor `LTTFS_MOUNT` says.
    public static let defaultMountpoint = "/mnt/ltt"

    public let mountpoint: String
    /// The tracer in producer role: `marker(...)` and its markers are the
    /// same API as in the server's own process.
    public let tracer: Tracer
    private let socket: SeqpacketSocket
    /// One request at a time, and the replies the server still owes for
    /// requests whose wait ran out (`Owed`).
    private let requests = Locked<[Owed]>([])
    private let page: ProducersPage
    /// Rung (outside the buffer lock) when a sub-buffer is delivered here;
    /// the buffers' delivery closures keep it, so it outlives them all.
    private let bell: DeliveryBell
    private let watching = WatchState()
    /// The fork epoch this producer was made in: a child of fork(2) does
    /// not use its parent's connection (lttfs_fork_epoch).
    private let epoch = lttfs_fork_epoch_load()
    private let clock: TraceClock
    /// The buffers mapped so far, by trace serial and channel.
    private let attached = Locked<[UInt64: [String: (RelayChannel, UInt64)]]>([:])

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noServer(String)
        case refused(String)
        case protocolError(String)

        public var description: String {
            switch self {
            case .noServer(let why): "no lttfs server to record into: \(why)"
            case .refused(let why): "the lttfs server refused: \(why)"
            case .protocolError(let why): "the lttfs server answered what it should not: \(why)"
            }
        }
    }

    /// Connects to the server of `mountpoint` (nil: `$LTTFS_MOUNT`, else
    /// `/mnt/ltt`), found through `<mount>/ltt/producer_socket`.
    public init(mountpoint given: String? = nil) throws(Failure) {
        let mountpoint = given ?? ProcessInfo.processInfo.environment["LTTFS_MOUNT"] ?? Self.defaultMountpoint
        self.mountpoint = mountpoint
        let server = try ServerConnection(mountpoint: mountpoint)
        socket = server.socket
        let connection = socket
        let pageSize = Int(getpagesize())
        let mapped = mmap(nil, pageSize, PROT_READ, MAP_SHARED, server.pageDescriptor, 0)
        Glibc.close(server.pageDescriptor)
        guard let mapped, mapped != MAP_FAILED, mapped.load(as: UInt32.self) == LTTFS_PRODUCERS_MAGIC else {
            Glibc.close(server.deliveriesDescriptor)
            throw .protocolError("the producers page cannot be mapped")
        }
        page = ProducersPage(base: mapped, size: pageSize)
        bell = DeliveryBell(descriptor: server.deliveriesDescriptor)
        let (token, cpus, kind, frequency) = (server.token, server.cpus, server.clockKind, server.frequency)
        clock = kind == .tsc ? TraceClock(name: "tsc", frequency: frequency, source: .tsc) : .monotonic
        Self.installForkHandler()
        RelayLock.token.store(token, ordering: .relaxed)
        // The registrar asks the server under the tracer's control lock;
        // `requests` is taken inside it and never around a tracer call.
        let requestLock = requests
        let madeIn = epoch
        tracer = Tracer(cpuCount: Int(cpus), traceClock: clock, role: .producer(registrar: { channel, name, format throws(TraceError) in
            // A child of fork(2) would read its parent's replies.
            guard lttfs_fork_epoch_load() == madeIn else {
                throw .server("this process is a child of the one that opened the producer: open one of its own")
            }
            return try requestLock.withLock { owed throws(TraceError) in
                try Self.register(connection, channel, name, format, owed: &owed)
            }
        }))
        // The generation before the first list: a change from here on is
        // seen by the watcher.
        let initial = page.generation
        try sync()
        // The watcher holds the producer only while it syncs: a producer
        // let go without close() still goes away.
        let (page, watching) = (self.page, self.watching)
        let thread = Thread { [weak self] in
            var seen = initial
            while !watching.stopping.load(ordering: .acquiring) {
                _ = lttfs_futex_wait_shared(page.generationWord, seen, 1_000_000_000)
                // A server killed outright says nothing: its socket hangs up.
                if connection.peerHasClosed, !watching.stopping.load(ordering: .acquiring) {
                    self?.serverIsGone()
                    break
                }
                let now = page.generation
                guard now != seen, !watching.stopping.load(ordering: .acquiring), let producer = self else {
                    if self == nil { break }
                    continue
                }
                seen = now
                do throws(Failure) { try producer.sync() } catch {
                    if !watching.stopping.load(ordering: .acquiring) {
                        FileHandle.standardError.write(Data("lttfs producer: \(error.description); no longer following the server\n".utf8))
                    }
                    break
                }
            }
            watching.done.signal()
        }
        thread.name = "lttfs-producer-watcher"
        thread.start()
    }

    /// The server hung up (stopped, or killed without a word): nobody will
    /// drain its buffers, end their waits or change its traces. Every wait
    /// for room ends now and nothing records any more (no trace), instead of
    /// each event waiting its `blocking_timeout` into buffers nobody reads.
    private func serverIsGone() {
        watching.serverGone.store(true, ordering: .releasing)
        for channels in attached.withLock({ $0 }).values {
            for (channel, _) in channels.values { channel.buffers.forEach { $0.endWaits() } }
        }
        try? tracer.mirror([])
        FileHandle.standardError.write(Data("lttfs producer: the server of \(mountpoint) is gone; recording nothing\n".utf8))
    }

    /// Whether the server is gone, stopped or killed (its socket hung up):
    /// nothing this producer records goes anywhere any more. A program that
    /// records until told to stop can end here.
    public var serverHasGone: Bool { watching.serverGone.load(ordering: .acquiring) }

    deinit {
        // The watcher may be asleep: it finds this producer gone and ends.
        stop(waiting: false)
    }

    /// Stops following the server (its traces stay as they were last
    /// seen until this producer goes away) and waits for the watcher.
    /// In a child of fork(2), only this process's side is let go: the
    /// connection is still the parent's.
    public func close() {
        stop(waiting: true)
    }

    private func stop(waiting: Bool) {
        guard !watching.stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        guard lttfs_fork_epoch_load() == epoch else { return }
        socket.shutdown()
        _ = lttfs_futex_wake_shared(page.generationWord, Int32.max)
        if waiting { _ = watching.done.wait(timeout: .now() + 5) }
    }

    /// A marker with typed arguments, registered with the server.
    public func marker<each Value: TraceValue>(_ channel: String, _ name: String, _ format: String,
                                               as types: (repeat each Value).Type = (repeat each Value).self)
        throws(TraceError) -> Marker<repeat each Value> {
        try tracer.marker(channel, name, format, as: types)
    }

    // MARK: Talking to the server

    /// A reply the server still owes: the wait for it ran out (a
    /// registration may wait seconds for each trace's metadata reader). The
    /// server answers a connection's requests in order, so it comes before
    /// the next request's reply, and is read and dropped first: taken for
    /// the next one's, it gave a marker another's ID.
    enum Owed {
        /// One message (registered or refused).
        case reply
        /// The rest of a trace list, up to its end.
        case traceList
    }

    /// Reads and drops what `owed` says the server still sends first.
    private static func settle(_ socket: SeqpacketSocket, _ owed: inout [Owed]) throws(Errno) {
        while let first = owed.first {
            let message = try socket.receive(capacity: ProducerWire.maximumMessage,
                                             descriptorCapacity: ProducerWire.maximumDescriptors)
            message.descriptors.forEach { _ = Glibc.close($0) }
            if message.bytes.isEmpty { throw .connectionReset }
            var r = ProducerWire.Reader(message.bytes)
            if first == .reply || (try? r.operation()) == .tracesEnd { owed.removeFirst() }
        }
    }

    static func register(_ socket: SeqpacketSocket, _ channel: String, _ name: String, _ format: String,
                                 owed: inout [Owed]) throws(TraceError) -> (UInt16, Bool) {
        var w = ProducerWire.Writer(.register)
        w.put(channel)
        w.put(name)
        w.put(format)
        let reply: [UInt8]
        var sent = false
        do throws(Errno) {
            try settle(socket, &owed)
            try socket.send(w.bytes)
            sent = true
            reply = try socket.receive(capacity: ProducerWire.maximumMessage).bytes
        } catch {
            if sent && error == .resourceTemporarilyUnavailable { owed.append(.reply) }
            throw .server("registering \(channel).\(name): \(error.explained)")
        }
        var r = ProducerWire.Reader(reply)
        do {
            switch try r.operation() {
            case .registered:
                let id: UInt16 = try r.get()
                let sized: UInt8 = try r.get()
                return (id, sized != 0)
            case .refused:
                let code: Int32 = try r.get()
                let why = try r.string()
                if Errno(rawValue: code) == .invalidArgument { throw TraceError.invalidFormat(why) }
                throw TraceError.server(why)
            default:
                throw ProducerWire.Malformed(why: "not an answer to register")
            }
        } catch let error as TraceError {
            throw error
        } catch {
            throw .server("registering \(channel).\(name): \(error)")
        }
    }

    /// Asks the server for its traces and mirrors them into the tracer.
    private func sync() throws(Failure) {
        let listed = try requests.withLock { owed throws(Failure) in try fetchTraces(owed: &owed) }
        do throws(TraceError) { try tracer.mirror(listed) } catch {
            throw .protocolError(error.description)
        }
    }

    private func fetchTraces(owed: inout [Owed]) throws(Failure) -> [Tracer.MirroredTrace] {
        do throws(Errno) {
            try Self.settle(socket, &owed)
            try socket.send(ProducerWire.Writer(.traces).bytes)
        } catch {
            throw .noServer("traces: \(error.explained)")
        }
        // Until its end is read, the rest of this list is owed.
        owed.append(.traceList)
        var traces: [Tracer.MirroredTrace] = []
        var known = attached.withLock { $0 }
        var seen = Set<UInt64>()
        while true {
            let message = try receive()
            var r = ProducerWire.Reader(message.bytes)
            do {
                let op = try r.operation()
                if op == .tracesEnd {
                    owed.removeLast()
                    break
                }
                guard op == .trace, message.descriptors.isEmpty else { throw ProducerWire.Malformed(why: "\(op) in a trace list") }
                let serial: UInt64 = try r.get()
                let stateCode: UInt8 = try r.get()
                let name = try r.string(maximum: 256)
                let header = try ProducerWire.header(from: &r)
                let channelCount: UInt32 = try r.get()
                try r.end()
                guard channelCount <= 4096 else { throw ProducerWire.Malformed(why: "\(channelCount) channels") }
                let state = ProducerWire.state(code: stateCode)
                var channels: [String: (channel: RelayChannel, blockingTimeoutMillis: UInt64)] = [:]
                for _ in 0..<channelCount {
                    let c = try receive()
                    let (channelName, made) = try attachChannel(c, known: known[serial], header: header)
                    channels[channelName] = (made.0, made.1)
                }
                seen.insert(serial)
                known[serial] = channels.mapValues { ($0.channel, $0.blockingTimeoutMillis) }
                traces.append(Tracer.MirroredTrace(name: name, serial: serial, state: state, header: header, channels: channels))
            } catch let error as Failure {
                throw error
            } catch {
                throw .protocolError("\(error)")
            }
        }
        attached.withLock { $0 = known.filter { seen.contains($0.key) } }
        return traces
    }

    private func receive() throws(Failure) -> (bytes: [UInt8], descriptors: [Int32]) {
        do throws(Errno) {
            let message = try socket.receive(capacity: ProducerWire.maximumMessage, descriptorCapacity: ProducerWire.maximumDescriptors)
            if message.bytes.isEmpty { throw Errno.connectionReset }
            return message
        } catch {
            throw .noServer("traces: \(error.explained)")
        }
    }

    /// One channel message: its buffers mapped (or the ones mapped before,
    /// for a trace already known; the descriptors are then closed).
    private func attachChannel(_ message: (bytes: [UInt8], descriptors: [Int32]),
                               known: [String: (RelayChannel, UInt64)]?, header: TraceHeaderFields)
        throws(ProducerWire.Malformed) -> (String, (RelayChannel, UInt64)) {
        var fds = message.descriptors
        defer { for fd in fds { Glibc.close(fd) } }
        var r = ProducerWire.Reader(message.bytes)
        guard try r.operation() == .channel else { throw ProducerWire.Malformed(why: "not a channel") }
        let name = try r.string(maximum: 256)
        let size: UInt64 = try r.get()
        let count: UInt64 = try r.get()
        let overwrite: UInt8 = try r.get()
        let blocking: UInt64 = try r.get()
        let cpus: UInt32 = try r.get()
        try r.end()
        guard cpus >= 1, Int(cpus) == fds.count else { throw ProducerWire.Malformed(why: "\(cpus) buffers, \(fds.count) descriptors") }
        if let existing = known?[name] { return (name, existing) }
        let geometry: RelayGeometry
        do { geometry = try RelayGeometry(subbufferSize: size, subbufferCount: count) } catch {
            throw ProducerWire.Malformed(why: "channel \(name): \(error)")
        }
        var buffers: [RelayBuffer] = []
        let bell = self.bell
        for cpu in 0..<Int(cpus) {
            let fd = fds[cpu]
            fds[cpu] = -1
            let mapping: RingMapping
            do throws(RingMapping.Failure) {
                mapping = try RingMapping.attach(descriptor: fd, geometry: geometry, overwrite: overwrite != 0, cpu: cpu)
            } catch {
                throw ProducerWire.Malformed(why: "channel \(name) cpu \(cpu): \(error.description)")
            }
            buffers.append(RelayBuffer(attaching: mapping, overwrite: overwrite != 0, cpu: cpu, trace: header, clock: clock,
                                       onDelivery: { bell.ring() }))
        }
        fds = fds.filter { $0 >= 0 }
        return (name, (RelayChannel(name: name, overwrite: overwrite != 0, buffers: buffers), blocking))
    }

    // MARK: fork

    private static let forkHandlerInstalled = Atomic<Bool>(false)

    /// In a child of fork(2), buffers mapped by the parent refuse events
    /// (RelayBuffer.forkEpoch): they are the parent's registration. RCU's
    /// own locks are taken across the fork (liburcu-bp's fork hooks), so
    /// that a child whose parent was in a grace period can make a
    /// producer of its own.
    private static func installForkHandler() {
        guard !forkHandlerInstalled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_atfork({ urcu_bp_before_fork() }, { urcu_bp_after_fork_parent() }) {
            urcu_bp_after_fork_child()
            RelayBuffer.forkedChild()
        }
    }
}

/// The producers page, mapped read-only: its generation word.
final class ProducersPage: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int
    /// The futex word the watcher sleeps on.
    let generationWord: UnsafeMutablePointer<UInt32>
    private let generationCounter: UnsafeAtomic<UInt32>

    init(base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
        let page = base.bindMemory(to: lttfs_producers_page.self, capacity: 1)
        generationWord = page.pointer(to: \.generation)!
        generationCounter = page.sharedAtomic(\.generation)
    }

    deinit { munmap(base, size) }

    var generation: UInt32 { generationCounter.load(ordering: .acquiring) }
}

/// The eventfd a producer process rings when it delivers a sub-buffer
/// (the server's connection thread listens): closed when the last buffer
/// that may ring it is gone.
final class DeliveryBell: Sendable {
    let descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { Glibc.close(descriptor) }

    func ring() {
        var one: UInt64 = 1
        _ = Glibc.write(descriptor, &one, 8)
    }
}

/// The watcher thread's stop flag and end.
final class WatchState: Sendable {
    let stopping = Atomic<Bool>(false)
    /// Set once the server hung up its socket (stopped, or killed).
    let serverGone = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)
}
