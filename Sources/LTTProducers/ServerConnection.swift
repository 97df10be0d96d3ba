#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTRelay
import LTTSystem
import SystemPackage

/// A connection to the lttfs server of a mount, through the socket named
/// in `<mount>/ltt/producer_socket`: the hello answered, and the server
/// found to be the mount's (its user owns the mount, or is root) before
/// anything it hands over is used. Producers and mapping readers start
/// with it.
struct ServerConnection {
    let socket: SeqpacketSocket
    /// What the welcome says: this process's lock token (its PID as the
    /// server sees it), the server's CPUs and clock.
    let token: UInt32
    let cpus: UInt32
    let clockKind: ProducerWire.ClockKind
    let frequency: UInt64
    /// The welcome's descriptors, the caller's to keep or close: the
    /// producers page, and the eventfd that tells the server of deliveries.
    let pageDescriptor: Int32
    let deliveriesDescriptor: Int32

    /// Connects to the server of `mountpoint`. `LTTFS_PRODUCER_SOCKET`
    /// names the socket where the mount cannot be read (another mount
    /// namespace); the checks are the same.
    init(mountpoint: String) throws(Producer.Failure) {
        let file = mountpoint + "/ltt/producer_socket"
        let named = ProcessInfo.processInfo.environment["LTTFS_PRODUCER_SOCKET"]
        guard let text = named ?? (try? String(contentsOfFile: file, encoding: .utf8)) else {
            throw .noServer("cannot read \(file) (is lttfs mounted there, and may this user record?)")
        }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let connection: SeqpacketSocket
        do throws(Errno) { connection = try SeqpacketSocket.connect(name: name) } catch {
            throw .noServer("cannot connect to \(name): \(error.explained)")
        }
        var hello = ProducerWire.Writer(.hello)
        hello.put(ProducerWire.version)
        let welcome: (bytes: [UInt8], descriptors: [Int32])
        // A server that refuses this process says why and closes at once,
        // maybe before the hello arrives: its answer is read either way.
        let sent = Result { () throws(Errno) in try connection.send(hello.bytes) }
        do throws(Errno) {
            welcome = try connection.receive(capacity: ProducerWire.maximumMessage, descriptorCapacity: 2)
        } catch {
            if case .failure(let refused) = sent { throw .noServer("hello: \(refused.explained)") }
            throw .noServer("hello: \(error.explained)")
        }
        if welcome.bytes.isEmpty {
            throw .noServer("hello: the server closed the connection" + ((try? sent.get()) == nil ? " (\(sent))" : ""))
        }
        var keep = false
        defer { if !keep { for fd in welcome.descriptors { close(fd) } } }
        let parsed: Result<(token: UInt32, cpus: UInt32, clockKind: UInt32, frequency: UInt64), Producer.Failure>
        do throws(ProducerWire.Malformed) { parsed = try Self.parseWelcome(welcome) } catch {
            parsed = .failure(.protocolError("\(error)"))
        }
        let token: UInt32, cpus: UInt32, clockKind: UInt32, frequency: UInt64
        switch parsed {
        case .success(let w): (token, cpus, clockKind, frequency) = (w.token, w.cpus, w.clockKind, w.frequency)
        case .failure(let error): throw error
        }
        // What is handed over is used only if it comes from the mount's
        // server: the mount's owner (the server's user: it answers stat on
        // its root) or root.
        var root = stat()
        guard stat(mountpoint, &root) == 0, let peer = try? connection.peerCredentials(),
              peer.uid == root.st_uid || peer.uid == 0 else {
            throw .noServer("the socket \(name) is not served by the owner of \(mountpoint)")
        }
        guard cpus >= 1, cpus <= 65_536, token != 0, frequency > 0,
              let kind = ProducerWire.ClockKind(rawValue: clockKind) else {
            throw .protocolError("welcome with \(cpus) CPUs, token \(token), clock \(clockKind) at \(frequency) Hz")
        }
        // Replies that never come end a request (a server stuck or gone)
        // instead of holding its caller for good.
        connection.setReceiveTimeout(milliseconds: 30_000)
        socket = connection
        self.token = token
        self.cpus = cpus
        self.clockKind = kind
        self.frequency = frequency
        pageDescriptor = welcome.descriptors[0]
        deliveriesDescriptor = welcome.descriptors[1]
        keep = true
    }

    private static func parseWelcome(_ welcome: (bytes: [UInt8], descriptors: [Int32])) throws(ProducerWire.Malformed)
        -> Result<(token: UInt32, cpus: UInt32, clockKind: UInt32, frequency: UInt64), Producer.Failure> {
        var r = ProducerWire.Reader(welcome.bytes)
        let op = try r.operation()
        if op == .refused {
            let code: Int32 = try r.get()
            return .failure(.refused("\(try r.string()) (\(Errno(rawValue: code).name))"))
        }
        guard op == .welcome, welcome.descriptors.count == 2 else { throw ProducerWire.Malformed(why: "no welcome") }
        _ = try r.get(UInt32.self)
        let token: UInt32 = try r.get()
        let cpus: UInt32 = try r.get()
        let clockKind: UInt32 = try r.get()
        let frequency: UInt64 = try r.get()
        try r.end()
        return .success((token, cpus, clockKind, frequency))
    }
}
