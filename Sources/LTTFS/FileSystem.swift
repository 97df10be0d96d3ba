#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import CFuse
import Foundation
import LTTFormat
import LTTRelay
import LTTTrace
import Logging
import Synchronization

/// The request handlers: the tree of filesystem.md and, for buffer files,
/// the consumer ABI of consumer-abi.md. One instance per mounted session;
/// libfuse calls it from its worker threads (see Operations.swift).
final class FileSystem: @unchecked Sendable {
    let tracer: Tracer
    let logger: Logger
    let inodes = InodeTable()
    let handles = HandleTable()
    let resolver: NodeResolver
    let control: ControlFiles
    /// Set once the session exists; used for kernel notifications.
    var session: OpaquePointer?
    /// Owner of every file: the user the server runs as.
    let uid = getuid()
    /// Group of every file: the access group (`--group`), else the server's.
    let gid: gid_t
    let mountTime = time(nil)
    let refusals: RefusalLog
    /// Every write_event request waiting for room, so that shutdown can
    /// end their waits and answer them before it unmounts.
    private let waits = Locked<(stopping: Bool, pending: [ObjectIdentifier: WaitCancellation])>((false, [:]))
    /// Nothing under the mount point is cached by the kernel: entries and
    /// attributes are asked again every time (filesystem.md: "visible at once").
    static let timeout = 0.0
    /// The longest line `write_event` takes (the kernel never cuts a line
    /// this long across two requests).
    static let maximumLine = 65536
    /// A control write must be shorter than a page (what stdio writes at once).
    static let maximumControlWrite = 4096
    /// Zeros for page-cache reads past the readable bytes (at most what the
    /// kernel asks in one read: max_read, 128 KiB by default; 1 MiB here).
    /// Written once, at its initialization; only read after.
    nonisolated(unsafe) static let zeros = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        .initializeMemory(as: UInt8.self, repeating: 0))

    init(tracer: Tracer, logger: Logger, accessGroup: gid_t? = nil) {
        self.tracer = tracer
        self.logger = logger
        gid = accessGroup ?? getgid()
        refusals = RefusalLog(logger: logger)
        resolver = NodeResolver(tracer: tracer)
        control = ControlFiles(tracer: tracer)
    }

    // MARK: Attributes

    func attributes(of node: Node, inode: UInt64, buffer: RelayBuffer? = nil) -> stat {
        var st = stat()
        st.st_ino = UInt(inode)
        st.st_mode = (node.isDirectory ? S_IFDIR : S_IFREG) | node.mode
        st.st_nlink = node.isDirectory ? 2 : 1
        st.st_uid = uid
        st.st_gid = gid
        st.st_blksize = 4096
        st.st_atim.tv_sec = mountTime
        st.st_mtim.tv_sec = mountTime
        st.st_ctim.tv_sec = mountTime
        if case .bufferFile = node, let b = buffer ?? resolver.buffer(node) {
            // splice() reads through the page cache on these kernels and
            // stops at the file size: report the whole ring.
            st.st_size = Int(b.geometry.allocSize)
        }
        return st
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .root: "/"
        case .ltt: "ltt"
        case .setupTrace: "ltt/setup_trace"
        case .destroyTrace: "ltt/destroy_trace"
        case .writeEvent: "ltt/write_event"
        case .controlDir: "ltt/control"
        case .traceControl(let t): "ltt/control/\(t)"
        case .traceControlFile(let t, let f): "ltt/control/\(t)/\(f.rawValue)"
        case .channelsDir(let t): "ltt/control/\(t)/channel"
        case .channelDir(let t, let c): "ltt/control/\(t)/channel/\(c)"
        case .channelFile(let t, let c, let f): "ltt/control/\(t)/channel/\(c)/\(f.rawValue)"
        case .markersDir: "ltt/markers"
        case .markerChannelDir(let c): "ltt/markers/\(c)"
        case .markerDir(let c, let m): "ltt/markers/\(c)/\(m)"
        case .markerFile(let c, let m, let f): "ltt/markers/\(c)/\(m)/\(f.rawValue)"
        case .traceDir(let t, _): "ltt/\(t)"
        case .bufferFile(let t, _, let f): "ltt/\(t)/\(f)"
        }
    }

    // MARK: Lookup, getattr, forget

    func lookup(_ req: fuse_req_t, parent: UInt64, name: String) {
        guard let parentNode = inodes.node(for: parent), let child = resolver.child(of: parentNode, named: name) else {
            fuse_reply_err(req, ENOENT)
            return
        }
        var entry = fuse_entry_param()
        entry.ino = inodes.inode(for: child, lookup: true)
        entry.generation = 1
        entry.attr = attributes(of: child, inode: entry.ino)
        entry.attr_timeout = Self.timeout
        entry.entry_timeout = Self.timeout
        fuse_reply_entry(req, &entry)
    }

    func getattr(_ req: fuse_req_t, inode: UInt64, fh: UInt64?) {
        // fstat(2) reaches here without a file handle: a buffer file whose
        // trace was destroyed still exists for the reader that holds it open.
        let handle = fh.flatMap { handles.get($0) } ?? handles.bufferHandle(inode: inode)
        guard let node = inodes.node(for: inode), handle != nil || resolver.exists(node) else {
            fuse_reply_err(req, ENOENT)
            return
        }
        var st = attributes(of: node, inode: inode, buffer: handle?.buffer)
        fuse_reply_attr(req, &st, Self.timeout)
    }

    /// Truncation (`echo x > file` opens with O_TRUNC) and new times are
    /// accepted and ignored: control files have no contents to cut. Modes
    /// and owners are the server's to set (EPERM): a chmod that answered 0
    /// and changed nothing would lie.
    func setattr(_ req: fuse_req_t, inode: UInt64, fh: UInt64?, changes: Int32) {
        if changes & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0 {
            let what = inodes.node(for: inode).map(describe) ?? "inode \(inode)"
            refusals.log(.info, "chmod/chown of \(what) refused: modes and owners are set by the server (EPERM)")
            fuse_reply_err(req, EPERM)
            return
        }
        getattr(req, inode: inode, fh: fh)
    }

    /// create, mkdir, mknod, symlink, link, unlink, rmdir, rename: the tree
    /// is the server's; users change it only through the control files.
    func refuseTreeChange(_ req: fuse_req_t, _ operation: String) {
        refusals.log(.info, "\(operation) refused: the tree changes only through the control files (EPERM)")
        fuse_reply_err(req, EPERM)
    }

    func forget(_ inode: UInt64, count: UInt64) {
        inodes.forget(inode, count: count) { resolver.exists($0) }
    }

    // MARK: Directories

    func opendir(_ req: fuse_req_t, inode: UInt64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let node = inodes.node(for: inode), node.isDirectory, resolver.exists(node) else {
            fuse_reply_err(req, ENOENT)
            return
        }
        var entries: [(name: String, inode: UInt64, isDirectory: Bool)] = [(".", inode, true), ("..", 1, true)]
        for name in resolver.list(node) {
            guard let child = resolver.child(of: node, named: name) else { continue }
            entries.append((name, inodes.inode(for: child, lookup: false), child.isDirectory))
        }
        fi.pointee.fh = handles.add(Handle(.directory(entries)))
        fuse_reply_open(req, fi)
    }

    func readdir(_ req: fuse_req_t, size: Int, offset: Int, fh: UInt64) {
        guard let handle = handles.get(fh), case .directory(let entries) = handle.kind else {
            fuse_reply_err(req, EBADF)
            return
        }
        var buffer = [CChar](repeating: 0, count: size)
        var used = 0
        var index = offset
        while index < entries.count {
            let e = entries[index]
            var st = stat()
            st.st_ino = UInt(e.inode)
            st.st_mode = e.isDirectory ? S_IFDIR : S_IFREG
            let needed = buffer.withUnsafeMutableBufferPointer { b in
                fuse_add_direntry(req, b.baseAddress! + used, size - used, e.name, &st, off_t(index + 1))
            }
            if needed > size - used { break }
            used += needed
            index += 1
        }
        fuse_reply_buf(req, buffer, used)
    }

    func releasedir(_ req: fuse_req_t, fh: UInt64) {
        handles.remove(fh)
        fuse_reply_err(req, 0)
    }

    // MARK: Open and release

    func open(_ req: fuse_req_t, inode: UInt64, fi: UnsafeMutablePointer<fuse_file_info>) {
        guard let node = inodes.node(for: inode), resolver.exists(node), !node.isDirectory else {
            fuse_reply_err(req, ENOENT)
            return
        }
        let accessMode = fi.pointee.flags & O_ACCMODE
        let reading = accessMode == O_RDONLY || accessMode == O_RDWR
        let writing = accessMode == O_WRONLY || accessMode == O_RDWR
        let handle: Handle
        switch node {
        case .bufferFile:
            // Only O_RDONLY, one reader at a time (the seed's _ltt_open).
            guard accessMode == O_RDONLY else {
                refusals.log(.warning, "open \(describe(node)): buffer files are read-only (EACCES)")
                fuse_reply_err(req, EACCES)
                return
            }
            guard let buffer = resolver.buffer(node) else {
                fuse_reply_err(req, ENOENT)
                return
            }
            guard buffer.openReader() else {
                refusals.log(.info, "open \(describe(node)): already open by a reader (EBUSY)")
                fuse_reply_err(req, EBUSY)
                return
            }
            handle = Handle(.buffer(buffer, inode: inode))
        case .writeEvent, .setupTrace, .destroyTrace:
            guard !reading else {
                fuse_reply_err(req, EACCES)
                return
            }
            handle = Handle(node == .writeEvent ? .writeEvent : .control(node, content: nil))
        default:
            if writing && node.mode & 0o200 == 0 {
                fuse_reply_err(req, EACCES)
                return
            }
            var content: [UInt8]?
            if reading {
                do {
                    guard let text = try control.content(of: node) else {
                        fuse_reply_err(req, EACCES)
                        return
                    }
                    content = Array(text.utf8)
                } catch {
                    fuse_reply_err(req, error.errno)
                    return
                }
            }
            handle = Handle(.control(node, content: content))
        }
        lttfs_fi_set_direct_io(fi, 1)
        lttfs_fi_set_keep_cache(fi, 0)
        // Never nonseekable: lttd splices with an explicit offset.
        lttfs_fi_set_nonseekable(fi, 0)
        fi.pointee.fh = handles.add(handle)
        fuse_reply_open(req, fi)
    }

    func release(_ req: fuse_req_t, fh: UInt64) {
        if let handle = handles.remove(fh), let buffer = handle.buffer {
            if let ph = handle.takePollHandle() { fuse_pollhandle_destroy(ph) }
            buffer.closeReader()
        }
        fuse_reply_err(req, 0)
    }

    // MARK: Read and write

    func read(_ req: fuse_req_t, size: Int, offset: Int, fh: UInt64, fillsPageCache: Bool) {
        guard let handle = handles.get(fh) else {
            fuse_reply_err(req, EBADF)
            return
        }
        switch handle.kind {
        case .buffer(let buffer, _):
            handle.readSinceGet.store(true, ordering: .relaxed)
            // Zero copy: the reply points into the ring (consumer-abi.md,
            // "read and splice": the bytes at consumed + offset).
            let regions = buffer.readableRegions(at: UInt64(max(0, offset)), maxLength: size)
            var iov = regions.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
            // A short read into the page cache makes the kernel shrink the
            // file to it (fuse_short_read), and an mmap of the file then
            // dies of SIGBUS past that point (MAP_PRIVATE cannot be refused
            // on a direct_io file; MAP_SHARED is, with ENODEV). So the cache
            // gets whole pages: zeros past the readable bytes. read(2) still
            // ends at them: it never goes through the cache.
            let copied = regions.reduce(0) { $0 + $1.count }
            if fillsPageCache && copied < size {
                iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: Self.zeros.baseAddress),
                                 iov_len: min(size - copied, Self.zeros.count)))
            }
            if iov.isEmpty {
                fuse_reply_buf(req, nil, 0)
            } else {
                fuse_reply_iov(req, &iov, Int32(iov.count))
            }
        case .control(_, let content?):
            let start = min(max(0, offset), content.count)
            let end = min(content.count, start + size)
            _ = content.withUnsafeBytes { fuse_reply_buf(req, $0.baseAddress.map { $0 + start }, end - start) }
        default:
            fuse_reply_err(req, EBADF)
        }
    }

    func write(_ req: fuse_req_t, bytes: UnsafeRawBufferPointer, fh: UInt64) {
        guard let handle = handles.get(fh) else {
            fuse_reply_err(req, EBADF)
            return
        }
        switch handle.kind {
        case .writeEvent:
            writeEvent(req, bytes)
        case .control(let node, _):
            // stdio cuts writes at 4 KiB: a longer value would arrive as two
            // writes, the second read as a value of its own.
            guard bytes.count < Self.maximumControlWrite else {
                refusals.log(.warning, "write of \(bytes.count) bytes to \(describe(node)) refused: control values are shorter than \(Self.maximumControlWrite) bytes (EINVAL)")
                fuse_reply_err(req, EINVAL)
                return
            }
            do {
                try control.write(bytes, to: node)
                fuse_reply_write(req, bytes.count)
            } catch {
                refusals.log(.warning, "write \(LogText.quoted(bytes: bytes)) to \(describe(node)) refused: \(LogText.escaped(error.reason)) (\(errnoName(error.errno)))")
                fuse_reply_err(req, error.errno)
            }
        default:
            fuse_reply_err(req, EBADF)
        }
    }

    /// One event per line (ltt-userspace-event.c): the write is cut at the
    /// first newline or NUL, and write(2) returns the bytes used.
    func writeEvent(_ req: fuse_req_t, _ bytes: UnsafeRawBufferPointer) {
        let cut = bytes.firstIndex { $0 == 0x0A || $0 == 0 }
        let line = UnsafeRawBufferPointer(rebasing: bytes[..<(cut ?? bytes.count)])
        let used = cut.map { $0 + 1 } ?? bytes.count
        // The kernel cuts a large write(2) into requests of about max_write
        // bytes, never fewer than 124 KiB but for the last: a line longer
        // than that could arrive as two, and become two events. Lines are
        // therefore at most `maximumLine` bytes, whole in any request.
        guard line.count <= Self.maximumLine else {
            refusals.log(.warning, "write_event: a line of \(line.count) bytes or more is longer than \(Self.maximumLine) (EINVAL)")
            fuse_reply_err(req, EINVAL)
            return
        }
        // A signal to the writer arrives as a FUSE interrupt: it ends the
        // wait for room (EINTR if the event went nowhere yet), as does
        // shutdown.
        let cancellation = WaitCancellation()
        let token = Unmanaged.passRetained(cancellation)
        fuse_req_interrupt_func(req, { _, data in
            guard let data else { return }
            Unmanaged<WaitCancellation>.fromOpaque(data).takeUnretainedValue().cancel()
        }, token.toOpaque())
        waits.withLock { w in
            if w.stopping { cancellation.cancel() }
            w.pending[ObjectIdentifier(cancellation)] = cancellation
        }
        var failure: Int32 = 0
        do throws(Tracer.WriteEventError) {
            try tracer.writeEvent(line, cancellation: cancellation)
        } catch {
            switch error {
            case .tooLong:
                refusals.log(.warning, "write_event: a line of \(line.count) bytes does not fit in a sub-buffer (EINVAL)")
                failure = EINVAL
            case .interrupted:
                refusals.log(.info, "write_event: interrupted while waiting for room; nothing recorded (EINTR)")
                failure = EINTR
            }
        }
        _ = waits.withLock { $0.pending.removeValue(forKey: ObjectIdentifier(cancellation)) }
        fuse_req_interrupt_func(req, nil, nil)
        token.release()
        if failure != 0 {
            fuse_reply_err(req, failure)
        } else {
            fuse_reply_write(req, used)
        }
    }

    /// Shutdown: every write_event waiting for room stops waiting now and is
    /// answered, and any that comes later does not wait at all.
    func endRequestWaits() {
        let pending = waits.withLock { w in
            w.stopping = true
            return Array(w.pending.values)
        }
        pending.forEach { $0.cancel() }
    }

    // MARK: ioctl and poll

    func ioctl(_ req: fuse_req_t, command: UInt32, fh: UInt64, input: UnsafeRawBufferPointer, outputSize: Int) {
        guard let handle = handles.get(fh), case .buffer(let buffer, let inode) = handle.kind else {
            fuse_reply_err(req, ENOTTY)
            return
        }
        guard let ioctl = RelayIoctl(rawValue: command) else {
            fuse_reply_err(req, ENOTTY)
            return
        }
        func replyU32(_ value: UInt32) {
            guard outputSize >= 4 else {
                fuse_reply_err(req, EINVAL)
                return
            }
            var v = value
            fuse_reply_ioctl(req, 0, &v, 4)
        }
        switch ioctl {
        case .getSubbuffer:
            switch buffer.getSubbuffer() {
            case .success(let cookie):
                refreshPageCache(inode: inode, buffer: buffer, handle: handle)
                replyU32(cookie)
            case .failure:
                fuse_reply_err(req, EAGAIN)
            }
        case .putSubbuffer:
            guard input.count >= 4 else {
                fuse_reply_err(req, EINVAL)
                return
            }
            let cookie = input.loadUnaligned(as: UInt32.self)
            do throws(SubbufferAccessError) {
                try buffer.putSubbuffer(cookie: cookie)
                fuse_reply_ioctl(req, 0, nil, 0)
            } catch {
                // Both are EIO to a consumer (consumer-abi.md); only the log
                // tells them apart.
                logger.debug("RELAY_PUT_SUBBUF \(cookie) on inode \(inode): \(error == .notHeld ? "no sub-buffer taken" : "pushed by the writer") (EIO)")
                fuse_reply_err(req, EIO)
            }
        case .getSubbufferCount:
            replyU32(UInt32(buffer.geometry.subbufferCount))
        case .getSubbufferSize:
            replyU32(UInt32(buffer.geometry.subbufferSize))
        }
    }

    /// splice() serves buffer files from the page cache on these kernels
    /// (fuse-kernel-notes.md, 1): before a GET answers, the cache must not
    /// hold anything of an earlier sub-buffer. Two ways, chosen per open
    /// file from what its consumer does:
    ///
    /// - no READ since the last GET: the consumer took the previous
    ///   sub-buffer from pages this server stored (lttd's splice), so the
    ///   cache holds exactly [0, subbuf_size); storing the new sub-buffer
    ///   there replaces all of it, and the splice needs no READ at all;
    /// - a READ since the last GET (a read() consumer, or the kernel
    ///   filling its cache): drop every cached page, store nothing;
    /// - the first GET on a handle knows nothing of the cache: both.
    func refreshPageCache(inode: UInt64, buffer: RelayBuffer, handle: Handle) {
        guard let session else { return }
        let first = handle.firstGet.exchange(false, ordering: .relaxed)
        let sawReads = handle.readSinceGet.exchange(false, ordering: .relaxed)
        if first || sawReads {
            let rc = fuse_lowlevel_notify_inval_inode(session, inode, 0, 0)
            if rc != 0 && rc != -ENOENT { logger.debug("inval_inode \(inode): \(rc)") }
        }
        if first || !sawReads {
            // The held sub-buffer is contiguous in the ring (it never wraps).
            let regions = buffer.readableRegions(at: 0, maxLength: Int(buffer.geometry.subbufferSize))
            if let region = regions.first, let base = region.baseAddress {
                let rc = lttfs_fuse_notify_store(session, inode, 0, base, region.count)
                if rc != 0 && rc != -ENOENT { logger.debug("notify_store \(inode): \(rc)") }
            }
        }
    }

    func poll(_ req: fuse_req_t, fh: UInt64, pollHandle: OpaquePointer?) {
        guard let handle = handles.get(fh), let buffer = handle.buffer else {
            fuse_reply_poll(req, UInt32(POLLIN | POLLOUT))
            return
        }
        // Keep the handle before looking at the state: a delivery after this
        // point is seen by the notifier, one before it by the state below.
        if let pollHandle { handle.setPollHandle(pollHandle) }
        fuse_reply_poll(req, UInt32(buffer.pollState.pollMask))
    }

    // MARK: The notifier

    /// One pass of the notifier thread: wake the pollers of every buffer
    /// that delivered a sub-buffer or was finalized since the last pass.
    func notifyPollers() {
        for handle in handles.bufferHandles {
            guard let buffer = handle.buffer, buffer.takeReaderWakeup() else { continue }
            if let ph = handle.takePollHandle() {
                fuse_lowlevel_notify_poll(ph)
                fuse_pollhandle_destroy(ph)
            }
        }
    }
}

func errnoName(_ e: Int32) -> String {
    switch e {
    case EINVAL: "EINVAL"
    case ENOENT: "ENOENT"
    case EEXIST: "EEXIST"
    case EBUSY: "EBUSY"
    case EACCES: "EACCES"
    case EPERM: "EPERM"
    case EIO: "EIO"
    case ENOSPC: "ENOSPC"
    case EINTR: "EINTR"
    case ENOMEM: "ENOMEM"
    default: "errno \(e)"
    }
}
