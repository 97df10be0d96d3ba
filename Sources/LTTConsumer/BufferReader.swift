#if canImport(Glibc)
import Glibc
#endif
import LTTCTF
import LTTFormat
import LTTProducers
import LTTRelay
import LTTSystem
import SystemPackage
import Synchronization

/// One buffer file and its output file, both owned (closed when the reader
/// goes away), and lttd's step on it: take the next complete sub-buffer
/// (RELAY_GET_SUBBUF), splice all of it at offset 0 through a pipe to the
/// end of the output, read its header back to account what it says was
/// lost, give it back (RELAY_PUT_SUBBUF).
///
/// With the buffer mapped (`mapped`: ReaderConnection), the same step is
/// taken in the shared ring instead: GET and PUT are the ring's own, under
/// its lock, and the sub-buffer is written to the output straight from the
/// ring: one copy, no FUSE round trip. The file stays open (it is what
/// makes this process the buffer's reader) and answers whatever the ring
/// cannot tell.
///
/// One reader thread at a time steps a buffer; its counters may be read
/// from any thread.
final class BufferReader: Sendable {
    let buffer: TraceConsumer.Buffer
    let file: FileDescriptor
    /// The buffer in shared memory, when the server mapped it.
    let mapped: ReaderConnection.MappedBuffer?
    /// The LTT output file; nil when the sub-buffers go to `ctf`.
    let output: FileDescriptor?
    /// The CTF trace being written, and this buffer's channel and CPU.
    let ctf: (writer: CTFTraceWriter, channel: String, cpu: Int)?

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
    ///
    /// With `readers`, the buffer is mapped through it; if the server will
    /// not, the file is used, unless `mappingRequired`.
    init(path: String, outputPath: String, append: Bool,
         ctf: (writer: CTFTraceWriter, channel: String, cpu: Int)? = nil,
         readers: ReaderConnection? = nil, mappingRequired: Bool = false) throws(ConsumerError) {
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
        var mapped: ReaderConnection.MappedBuffer?
        if let readers {
            do throws(Producer.Failure) { mapped = try readers.map(bufferFile: file) } catch {
                if mappingRequired { throw .sharedMemory(path, error.description) }
            }
        }
        self.mapped = mapped

        if let ctf {
            buffer = TraceConsumer.Buffer(path: path, outputPath: ctf.writer.location, subbufferSize: Int(size))
            self.file = file
            output = nil
            self.ctf = ctf
            keepFile = true
            return
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
        self.ctf = nil
        keepFile = true
        keepOutput = true
    }

    deinit {
        try? file.close()
        try? output?.close()
    }

    /// Moves the next complete sub-buffer to the output. False when there
    /// is none (GET said EAGAIN), or when a mapped buffer's last PUT still
    /// cannot be made: back to poll. `throughFile`: lttd's way even when
    /// the buffer is mapped (the ring could not tell).
    func moveSubbuffer(through pipe: borrowing OwnedPipe, throughFile: Bool = false) throws(ConsumerError) -> Bool {
        if let mapped {
            // Nothing is taken while a sub-buffer written out is not given
            // back: it would be taken, and written, again.
            guard finishPendingPut(mapped) else { return false }
            if !throughFile { return try moveMapped(mapped) }
        }
        let path = buffer.path
        var cookie: UInt32 = 0
        do throws(Errno) {
            try file.ioctl(RelayIoctl.getSubbuffer.rawValue, &cookie)
        } catch .resourceTemporarilyUnavailable {
            return false
        } catch {
            throw .ioctl(path, .getSubbuffer, error)
        }

        if let ctf {
            try convert(to: ctf)
        } else if let output {
            try splice(through: pipe, to: output)
        }
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

    /// The step in shared memory: GET in the ring (the cookie and the
    /// bytes it names, under one hold of the lock), the sub-buffer written
    /// from the ring to the output, PUT in the ring.
    private func moveMapped(_ mapped: ReaderConnection.MappedBuffer) throws(ConsumerError) -> Bool {
        let ring = mapped.buffer
        guard let (cookie, region) = ring.takeSubbuffer() else { return false }
        if let header = SubbufferHeader(bytes: region) { account(header) }
        if let ctf {
            do throws(CTFError) { try ctf.writer.take(subbuffer: Array(region), channel: ctf.channel, cpu: ctf.cpu) } catch {
                throw .ctf(error)
            }
        } else if let output {
            do throws(Errno) { _ = try typedErrno { try output.writeAll(region) } } catch {
                throw .output(buffer.path, error)
            }
        }
        bytes.add(buffer.subbufferSize, ordering: .relaxed)
        subbuffers.add(1, ordering: .relaxed)
        pendingPut.withLock { $0 = cookie }
        return finishPendingPut(mapped)
    }

    /// A sub-buffer written out and not given back yet: its cookie.
    let pendingPut = Locked<UInt32?>(nil)

    /// Gives back the sub-buffer written out, if one is pending; false
    /// while that cannot be done. The ring's PUT first; when its lock stays
    /// with another holder, the file's PUT: the server waits its own
    /// patience and takes a dead holder's lock back. When neither can (a
    /// live holder keeps the lock: a producer stopped in it), the PUT waits
    /// for the next look at this buffer, and nothing else is taken.
    private func finishPendingPut(_ mapped: ReaderConnection.MappedBuffer) -> Bool {
        guard let cookie = pendingPut.withLock({ $0 }) else { return true }
        var done = true
        do throws(SubbufferAccessError) {
            try mapped.buffer.putSubbuffer(cookie: cookie)
        } catch .pushed {
            pushed.add(1, ordering: .relaxed)
        } catch .notReady {
            var word = cookie
            do throws(Errno) {
                try file.ioctl(RelayIoctl.putSubbuffer.rawValue, &word)
            } catch {
                // EIO: pushed, or the lock still kept, or the buffer given
                // up; only a hang-up settles it without the ring.
                done = filePollState() & Int16(POLLHUP) != 0
            }
        } catch {
            // notHeld: given back already (the file's PUT went through).
        }
        if done { pendingPut.withLock { $0 = nil } }
        return done
    }

    /// The buffer file's poll value now (no wait): the server's word on
    /// the buffer; 0 if poll itself failed (ask again later).
    func filePollState() -> Int16 {
        var slot = [pollfd(fd: file.rawValue, events: Int16(POLLIN | POLLPRI), revents: 0)]
        guard (try? LTTSystem.poll(&slot, milliseconds: 0)) != nil else { return 0 }
        return slot[0].revents
    }

    /// lttd's copy: the sub-buffer spliced from offset 0 of the buffer file
    /// through `pipe` to the end of `output`, its header read back.
    private func splice(through pipe: borrowing OwnedPipe, to output: FileDescriptor) throws(ConsumerError) {
        let path = buffer.path
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

        if let start, let header = readHeader(from: output, at: start) { account(header) }
    }

    /// CTF: the sub-buffer read(2) from offset 0 and handed to the writer,
    /// which re-frames it as a packet.
    private func convert(to ctf: (writer: CTFTraceWriter, channel: String, cpu: Int)) throws(ConsumerError) {
        var subbuffer = [UInt8](repeating: 0, count: buffer.subbufferSize)
        var filled = 0
        while filled < subbuffer.count {
            let read = subbuffer.withUnsafeMutableBytes { raw in
                Result { () throws(Errno) -> Int in
                    try typedErrno {
                        try file.read(fromAbsoluteOffset: Int64(filled), into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
                    }
                }
            }
            let n: Int
            switch read {
            case .success(let count): n = count
            case .failure(let error): throw .read(buffer.path, error)
            }
            guard n > 0 else { throw .read(buffer.path, nil) }
            filled += n
        }
        if let header = subbuffer.withUnsafeBytes({ SubbufferHeader(bytes: $0) }) { account(header) }
        do throws(CTFError) { try ctf.writer.take(subbuffer: subbuffer, channel: ctf.channel, cpu: ctf.cpu) } catch {
            throw .ctf(error)
        }
    }

    /// The sub-buffer header just written, read back from the output (the
    /// page cache).
    private func readHeader(from output: FileDescriptor, at start: Int64) -> SubbufferHeader? {
        var storage = [UInt8](repeating: 0, count: Int(SubbufferHeader.size))
        return storage.withUnsafeMutableBytes { raw -> SubbufferHeader? in
            guard let n = try? typedErrno({ try output.read(fromAbsoluteOffset: start, into: raw) }),
                  n == raw.count else { return nil }
            return SubbufferHeader(bytes: UnsafeRawBufferPointer(raw))
        }
    }

    /// Keeps a sub-buffer header's events_lost and subbuf_corrupt.
    private func account(_ header: SubbufferHeader) {
        eventsLost.store(header.eventsLost, ordering: .relaxed)
        corruptedSubbuffers.store(header.subbufCorrupt, ordering: .relaxed)
    }
}
