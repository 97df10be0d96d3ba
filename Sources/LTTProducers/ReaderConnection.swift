#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTRelay
import LTTSystem
import SystemPackage

/// A consumer's connection to the server of a mount: it maps the buffers
/// whose files the consumer has open, to take and give back sub-buffers in
/// their shared memory (ReaderGrants) instead of through the files.
///
///     let readers = try ReaderConnection(mountpoint: "/mnt/ltt")
///     let mapped = try readers.map(bufferFile: fd)   // fd: the buffer file, open O_RDONLY
///     // poll mapped.bell; mapped.buffer.readerPollState, takeSubbuffer(), putSubbuffer(cookie:)
///
/// Keep the connection while the buffers are used: the server takes back
/// a buffer lock this process dies holding once the connection closed.
public final class ReaderConnection: Sendable {
    private let socket: SeqpacketSocket
    /// One request at a time; true once a request failed: a reply that
    /// comes late would answer the next one, so there is no next one.
    private let requests = Locked(false)

    /// A buffer mapped for its reader: its view, and the eventfd the server
    /// rings where it would wake the file's poll (closed with it).
    public final class MappedBuffer: Sendable {
        public let buffer: RelayBuffer
        public let bell: FileDescriptor

        init(buffer: RelayBuffer, bell: FileDescriptor) {
            self.buffer = buffer
            self.bell = bell
        }

        deinit { try? bell.close() }

        /// Empties the bell (after poll said it rang).
        public func quietBell() {
            var count: UInt64 = 0
            _ = read(bell.rawValue, &count, 8)
        }
    }

    /// Connects to the server of `mountpoint`.
    public init(mountpoint: String) throws(Producer.Failure) {
        let server = try ServerConnection(mountpoint: mountpoint)
        // A reader records nothing: the producers page and the deliveries'
        // eventfd are a producer's.
        close(server.pageDescriptor)
        close(server.deliveriesDescriptor)
        // The lock token is this process's PID as the server sees it.
        RelayLock.token.store(server.token, ordering: .relaxed)
        socket = server.socket
    }

    /// The mount a path is in: the topmost directory above it on the same
    /// device (`path` itself if it is the mount's root).
    public static func mountpoint(of path: String) -> String? {
        var current = URL(fileURLWithPath: path).standardizedFileURL.path
        var info = stat()
        guard stat(current, &info) == 0 else { return nil }
        let device = info.st_dev
        while current != "/" {
            let parent = (current as NSString).deletingLastPathComponent
            var above = stat()
            guard stat(parent, &above) == 0, above.st_dev == device else { break }
            current = parent
        }
        return current
    }

    /// Maps the buffer of `bufferFile`, a buffer file this process has open
    /// (O_RDONLY: its reader). Throws what the server or the file said.
    public func map(bufferFile: FileDescriptor) throws(Producer.Failure) -> MappedBuffer {
        try attach(try Self.grant(of: bufferFile))
    }

    /// A grant of the open buffer file `bufferFile` (LTTFS_READER_GRANT):
    /// good once, and while the file is open, for whoever redeems it.
    public static func grant(of bufferFile: FileDescriptor) throws(Producer.Failure) -> ReaderGrants.Token {
        var grant = [UInt8](repeating: 0, count: RelayIoctl.readerGrant.outputSize)
        let asked = grant.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try bufferFile.ioctl(RelayIoctl.readerGrant.rawValue, bytes: raw) }
        }
        if case .failure(let error) = asked {
            throw .refused("\(RelayIoctl.readerGrant.name): \(error.explained)")
        }
        guard let token = ReaderGrants.Token(bytes: grant) else { throw .protocolError("a grant of \(grant.count) bytes") }
        return token
    }

    /// Redeems a grant: the buffer it names, mapped.
    public func attach(_ token: ReaderGrants.Token) throws(Producer.Failure) -> MappedBuffer {
        var w = ProducerWire.Writer(.attachReader)
        w.put(token.low)
        w.put(token.high)
        let reply: (bytes: [UInt8], descriptors: [Int32])
        do throws(Errno) {
            reply = try requests.withLock { broken throws(Errno) in
                guard !broken else { throw .connectionAbort }
                do throws(Errno) {
                    try socket.send(w.bytes)
                    let answer = try socket.receive(capacity: ProducerWire.maximumMessage, descriptorCapacity: 2)
                    if answer.bytes.isEmpty { throw Errno.connectionReset }
                    return answer
                } catch {
                    broken = true
                    throw error
                }
            }
        } catch {
            throw .noServer("attaching a reader: \(error.explained)")
        }
        var fds = reply.descriptors
        defer { for fd in fds { close(fd) } }
        var r = ProducerWire.Reader(reply.bytes)
        do {
            switch try r.operation() {
            case .refused:
                let code: Int32 = try r.get()
                throw Producer.Failure.refused("\(try r.string()) (\(Errno(rawValue: code).name))")
            case .reader:
                let size: UInt64 = try r.get()
                let count: UInt64 = try r.get()
                let overwrite: UInt8 = try r.get()
                let cpu: UInt32 = try r.get()
                let header = try ProducerWire.header(from: &r)
                try r.end()
                guard fds.count == 2 else { throw ProducerWire.Malformed(why: "\(fds.count) descriptors with a reader") }
                let geometry = try RelayGeometry(subbufferSize: size, subbufferCount: count)
                let (memfd, bell) = (fds[0], fds[1])
                fds = []
                let bellFile = FileDescriptor(rawValue: bell)
                let mapping: RingMapping
                do throws(RingMapping.Failure) {
                    mapping = try RingMapping.attach(descriptor: memfd, geometry: geometry, overwrite: overwrite != 0, cpu: Int(cpu))
                } catch {
                    try? bellFile.close()
                    throw ProducerWire.Malformed(why: error.description)
                }
                return MappedBuffer(buffer: RelayBuffer(reading: mapping, overwrite: overwrite != 0, cpu: Int(cpu), trace: header),
                                    bell: bellFile)
            default:
                throw ProducerWire.Malformed(why: "not an answer to attachReader")
            }
        } catch let error as Producer.Failure {
            throw error
        } catch {
            throw .protocolError("attaching a reader: \(error)")
        }
    }
}
