#if canImport(Glibc)
import Glibc
#endif
import LTTFormat
import LTTSystem
import SystemPackage
import Synchronization

/// One buffer file and its output file, both owned (closed when the reader
/// goes away), and lttd's step on it: take the next complete sub-buffer
/// (RELAY_GET_SUBBUF), splice all of it at offset 0 through a pipe to the
/// end of the output, read its header back to account what it says was
/// lost, give it back (RELAY_PUT_SUBBUF).
///
/// One reader thread at a time steps a buffer; its counters may be read
/// from any thread.
final class BufferReader: Sendable {
    let buffer: TraceConsumer.Buffer
    let file: FileDescriptor
    let output: FileDescriptor

    let bytes = Atomic<Int>(0)
    let subbuffers = Atomic<Int>(0)
    let pushed = Atomic<Int>(0)
    /// The header counters of the last sub-buffer moved: they are the
    /// buffer's running totals when that sub-buffer was closed.
    let eventsLost = Atomic<UInt32>(0)
    let corruptedSubbuffers = Atomic<UInt32>(0)

    /// Opens the buffer file (read-only, non-blocking, as lttd), checks it
    /// is one with RELAY_GET_SUBBUF_SIZE, and opens or creates its output:
    /// truncated, or with `append` positioned at its end. Whatever fails,
    /// nothing it opened stays open.
    init(path: String, outputPath: String, append: Bool) throws(ConsumerError) {
        let file: FileDescriptor
        do throws(Errno) {
            file = try typedErrno {
                try FileDescriptor.open(FilePath(path), .readOnly, options: [.nonBlocking, .closeOnExec])
            }
        } catch {
            throw .cannotOpen(path, error)
        }
        var keepFile = false
        defer { if !keepFile { try? file.close() } }

        var size: UInt32 = 0
        do throws(Errno) {
            try file.ioctl(RelayIoctl.getSubbufferSize.rawValue, &size)
        } catch {
            throw .notABufferFile(path, error)
        }

        // Not O_APPEND: splice(2) refuses (EINVAL) an output opened in
        // append mode, so appending is a seek to the end, as lttd -a does.
        let output: FileDescriptor
        do throws(Errno) {
            output = try typedErrno {
                try FileDescriptor.open(FilePath(outputPath), .readWrite,
                                        options: append ? [.create, .closeOnExec] : [.create, .truncate, .closeOnExec],
                                        permissions: [.ownerReadWrite, .groupRead, .otherRead])
            }
        } catch {
            throw .cannotCreateOutput(outputPath, error)
        }
        var keepOutput = false
        defer { if !keepOutput { try? output.close() } }
        if append {
            do throws(Errno) {
                _ = try typedErrno { try output.seek(offset: 0, from: .end) }
            } catch {
                throw .cannotCreateOutput(outputPath, error)
            }
        }

        buffer = TraceConsumer.Buffer(path: path, outputPath: outputPath, subbufferSize: Int(size))
        self.file = file
        self.output = output
        keepFile = true
        keepOutput = true
    }

    deinit {
        try? file.close()
        try? output.close()
    }

    /// Moves the next complete sub-buffer to the output. False when there
    /// is none (RELAY_GET_SUBBUF said EAGAIN): back to poll.
    func moveSubbuffer(through pipe: borrowing OwnedPipe) throws(ConsumerError) -> Bool {
        let path = buffer.path
        var cookie: UInt32 = 0
        do throws(Errno) {
            try file.ioctl(RelayIoctl.getSubbuffer.rawValue, &cookie)
        } catch .resourceTemporarilyUnavailable {
            return false
        } catch {
            throw .ioctl(path, .getSubbuffer, error)
        }

        // Where this sub-buffer starts in the output (its header, to read
        // back). Not knowing only costs the accounting, as before.
        let start = try? typedErrno { try output.seek(offset: 0, from: .current) }
        var offset: Int64 = 0
        var left = buffer.subbufferSize
        while left > 0 {
            let spliced: Int
            do throws(Errno) {
                spliced = try file.splice(from: &offset, to: pipe.writeEnd, length: left)
            } catch {
                throw .splice(path, offset: offset, error)
            }
            guard spliced > 0 else { throw .spliceReturnedZero(path, offset: offset) }
            var moved = 0
            while moved < spliced {
                let n: Int
                do throws(Errno) {
                    n = try pipe.readEnd.splice(to: output, length: spliced - moved)
                } catch {
                    throw .output(path, error)
                }
                guard n > 0 else { throw .output(path, nil) }
                moved += n
            }
            left -= spliced
        }

        if let start { accountHeader(at: start) }

        do throws(Errno) {
            try file.ioctl(RelayIoctl.putSubbuffer.rawValue, &cookie)
        } catch .ioError {
            // The writer pushed past it while it was copied (flight
            // recorder): counted, the copy may be torn, not fatal.
            pushed.add(1, ordering: .relaxed)
        } catch {
            throw .ioctl(path, .putSubbuffer, error)
        }
        bytes.add(buffer.subbufferSize, ordering: .relaxed)
        subbuffers.add(1, ordering: .relaxed)
        return true
    }

    /// Reads the sub-buffer header just written back from the output (the
    /// page cache) and keeps its events_lost and subbuf_corrupt.
    private func accountHeader(at start: Int64) {
        var storage = [UInt8](repeating: 0, count: Int(SubbufferHeader.size))
        let header = storage.withUnsafeMutableBytes { raw -> SubbufferHeader? in
            guard let n = try? typedErrno({ try output.read(fromAbsoluteOffset: start, into: raw) }),
                  n == raw.count else { return nil }
            return SubbufferHeader(bytes: UnsafeRawBufferPointer(raw))
        }
        guard let header else { return }
        eventsLost.store(header.eventsLost, ordering: .relaxed)
        corruptedSubbuffers.store(header.subbufCorrupt, ordering: .relaxed)
    }
}
