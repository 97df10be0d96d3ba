import Foundation
import LTTSystem
import SystemPackage

/// A CTF trace directory: `metadata` (the TSDL, appended to) and one file
/// per stream.
public final class CTFDirectory: CTFDestination {
    public let path: String
    public var location: String { path }
    private let metadata = Locked<FileDescriptor?>(nil)

    /// Creates `path` (it must not exist, or be empty).
    public init(path: String) throws(CTFError) {
        do throws(Errno) {
            try makeDirectories(path)
        } catch {
            throw .cannotCreate(path, error)
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        guard entries.isEmpty else { throw .outputNotEmpty(path) }
        self.path = path
    }

    deinit { metadata.withLock { try? $0?.close() } }

    public func appendMetadata(_ text: String) throws(CTFError) {
        let file = path + "/metadata"
        try metadata.withLock { (fd: inout FileDescriptor?) throws(CTFError) in
            if fd == nil {
                do throws(Errno) { fd = try Self.create(file) } catch { throw .cannotWrite(file, error) }
            }
            do throws(Errno) { try fd!.writeFully(Array(text.utf8)) } catch { throw .cannotWrite(file, error) }
        }
    }

    public func openStream(name: String, streamID: UInt32, cpu: UInt32) throws(CTFError) -> any CTFStreamDestination {
        let file = path + "/" + name
        do throws(Errno) { return StreamFile(path: file, descriptor: try Self.create(file)) } catch {
            throw .cannotWrite(file, error)
        }
    }

    public func finish() throws(CTFError) {
        metadata.withLock { fd in
            try? fd?.close()
            fd = nil
        }
    }

    static func create(_ path: String) throws(Errno) -> FileDescriptor {
        try typedErrno {
            try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                    permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
    }

    /// One stream file.
    final class StreamFile: CTFStreamDestination {
        let path: String
        private let descriptor: Locked<FileDescriptor?>

        init(path: String, descriptor: FileDescriptor) {
            self.path = path
            self.descriptor = Locked(descriptor)
        }

        deinit { descriptor.withLock { try? $0?.close() } }

        func write(_ packet: UnsafeRawBufferPointer, context: CTFPacket.Context) throws(CTFError) {
            try descriptor.withLock { (fd: inout FileDescriptor?) throws(CTFError) in
                guard let fd else { return }
                do throws(Errno) { try fd.writeFully(packet) } catch { throw .cannotWrite(path, error) }
            }
        }

        func close() throws(CTFError) {
            descriptor.withLock { fd in
                try? fd?.close()
                fd = nil
            }
        }
    }
}
