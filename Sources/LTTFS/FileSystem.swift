#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFormat
import LTTRelay
import LTTSystem
import LTTTrace
import Logging
import SystemPackage
import Synchronization

/// The filesystem's logic: the tree of filesystem.md and, for buffer
/// files, the consumer ABI of consumer-abi.md. Every handler returns a value
/// or throws the errno the caller answers with; none knows of libfuse
/// (`FuseAdapter` turns them into replies), so each can be tested without
/// a mount. One instance per mounted session; called from the FUSE workers.
final class FileSystem: Sendable {
    let tracer: Tracer
    let logger: Logger
    let inodes = InodeTable()
    let handles = HandleTable()
    let resolver: NodeResolver
    let control: ControlFiles
    /// The kernel's page cache, once there is a session (`attach`).
    private let pageCache = Locked<(any PageCache)?>(nil)
    /// Owner of every file: the user the server runs as.
    let uid: uid_t
    /// Group of every file: the access group (`--group`), else the server's.
    let gid: gid_t
    let mountTime = time(nil)
    /// The abstract socket producer processes connect to (ProducerService),
    /// while the service runs.
    let producerSocket = Locked<String?>(nil)
    let refusals: RefusalLog
    /// Every write_event request waiting for room, so that shutdown can
    /// end their waits and answer them before it unmounts.
    private let waits: Locked<(stopping: Bool, pending: [ObjectIdentifier: WaitCancellation])>
    /// The longest line `write_event` takes (the kernel never cuts a line
    /// this long across two requests).
    static let maximumLine = 65536
    /// The longest one write_event request waits for room, all its lines
    /// together, whatever the channels' `blocking_timeout`: the kernel
    /// holds the file's lock for the request, and every other writer of
    /// `write_event` waits behind it, unkillable (D state), for as long.
    let longestWriteEventWait: UInt64
    static let defaultLongestWriteEventWait: UInt64 = 10_000_000_000
    /// A control write must be shorter than a page (what stdio writes at once).
    static let maximumControlWrite = 4096
    /// Zeros for page-cache reads past the readable bytes (at most what the
    /// kernel asks in one read: max_read, 128 KiB by default; 1 MiB here).
    /// Written once, at its initialization; only read after.
    nonisolated(unsafe) static let zeros = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        .initializeMemory(as: UInt8.self, repeating: 0))

    /// How long an open of a buffer file waits for the RELEASE of a reader
    /// that closed it a moment before (`openBufferReader`).
    let releasePatience: UInt64
    static let defaultReleasePatience: UInt64 = 200_000_000
    /// Opens waiting for a release now, and how many may: each holds a
    /// FUSE worker thread (16 at most), and the PUTs, interrupts and the
    /// very RELEASEs they wait for need the others.
    private let opensWaitingForRelease = Atomic<Int>(0)
    static let mostOpensWaitingForRelease = 2

    init(tracer: Tracer, logger: Logger, accessGroup: gid_t? = nil,
         longestWriteEventWait: UInt64 = FileSystem.defaultLongestWriteEventWait,
         releasePatience: UInt64 = FileSystem.defaultReleasePatience) {
        self.tracer = tracer
        self.logger = logger
        self.longestWriteEventWait = longestWriteEventWait
        self.releasePatience = releasePatience
        uid = getuid()
        gid = accessGroup ?? getgid()
        refusals = RefusalLog(logger: logger)
        resolver = NodeResolver(tracer: tracer)
        let waits = Locked<(stopping: Bool, pending: [ObjectIdentifier: WaitCancellation])>((false, [:]))
        self.waits = waits
        // An alloc populating its buffers stops when the server does.
        control = ControlFiles(tracer: tracer, preparing: { !waits.withLock { $0.stopping } })
    }

    /// The session's page cache, from mount to unmount (nil: none).
    func attach(_ cache: (any PageCache)?) {
        pageCache.withLock { $0 = cache }
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
        case .producerSocket: "ltt/producer_socket"
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

    // MARK: Lookup, attributes, forget

    /// The inode and attributes of `name` in directory `parent` (ENOENT).
    func lookup(parent: UInt64, name: String) throws(Errno) -> (inode: UInt64, attributes: stat) {
        guard let parentNode = inodes.node(for: parent), let child = resolver.child(of: parentNode, named: name) else {
            throw .noSuchFileOrDirectory
        }
        let inode = inodes.inode(for: child, lookup: true)
        return (inode, attributes(of: child, inode: inode))
    }

    func getattr(inode: UInt64, fh: UInt64?) throws(Errno) -> stat {
        // fstat(2) reaches here without a file handle: a buffer file whose
        // trace was destroyed still exists for the reader that holds it open.
        let handle = fh.flatMap { handles.get($0) } ?? handles.bufferHandle(inode: inode)
        guard let node = inodes.node(for: inode), handle != nil || resolver.exists(node) else {
            throw .noSuchFileOrDirectory
        }
        return attributes(of: node, inode: inode, buffer: handle?.buffer)
    }

    /// What a setattr asks to change.
    struct AttributeChanges: OptionSet, Sendable {
        let rawValue: Int32
        static let mode = AttributeChanges(rawValue: 1 << 0)      // FUSE_SET_ATTR_MODE
        static let owner = AttributeChanges(rawValue: 1 << 1)     // FUSE_SET_ATTR_UID
        static let group = AttributeChanges(rawValue: 1 << 2)     // FUSE_SET_ATTR_GID
        static let size = AttributeChanges(rawValue: 1 << 3)      // FUSE_SET_ATTR_SIZE
    }

    /// Truncation (`echo x > file` opens with O_TRUNC) and new times are
    /// accepted and ignored: control files have no contents to cut. Modes
    /// and owners are the server's to set (EPERM): a chmod that answered 0
    /// and changed nothing would lie.
    func setattr(inode: UInt64, fh: UInt64?, changes: AttributeChanges) throws(Errno) -> stat {
        if !changes.isDisjoint(with: [.mode, .owner, .group]) {
            let what = inodes.node(for: inode).map(describe) ?? "inode \(inode)"
            refusals.log(.info, "chmod/chown of \(what) refused: modes and owners are set by the server (EPERM)")
            throw .notPermitted
        }
        return try getattr(inode: inode, fh: fh)
    }

    /// create, mkdir, mknod, symlink, link, unlink, rmdir, rename: the tree
    /// is the server's; users change it only through the control files.
    func refuseTreeChange(_ operation: String) -> Errno {
        refusals.log(.info, "\(operation) refused: the tree changes only through the control files (EPERM)")
        return .notPermitted
    }

    func forget(_ inode: UInt64, count: UInt64) {
        inodes.forget(inode, count: count) { resolver.exists($0) }
    }

    // MARK: Directories

    /// Takes the listing at open, so that offsets stay valid while the
    /// tree changes. Returns the directory handle.
    func opendir(inode: UInt64) throws(Errno) -> UInt64 {
        guard let node = inodes.node(for: inode), node.isDirectory, resolver.exists(node) else {
            throw .noSuchFileOrDirectory
        }
        var entries = [DirectoryEntry(name: ".", inode: inode, isDirectory: true),
                       DirectoryEntry(name: "..", inode: 1, isDirectory: true)]
        for name in resolver.list(node) {
            guard let child = resolver.child(of: node, named: name) else { continue }
            entries.append(DirectoryEntry(name: name, inode: inodes.inode(for: child, lookup: false),
                                          isDirectory: child.isDirectory))
        }
        return handles.add(Handle(.directory(entries)))
    }

    /// The entries from `offset` on (an entry's offset is its index + 1).
    func readdir(fh: UInt64, offset: Int) throws(Errno) -> ArraySlice<DirectoryEntry> {
        guard let handle = handles.get(fh), case .directory(let entries) = handle.kind else { throw .badFileDescriptor }
        return entries[min(max(0, offset), entries.count)...]
    }

    func releasedir(fh: UInt64) {
        handles.remove(fh)
    }

    // MARK: Open and release

    /// `_ltt_open`, where FUSE answers a reader's close(2) before the server
    /// hears of it: an open that finds the place taken waits up to
    /// `releasePatience` for that RELEASE (RelayBuffer.openReader(waitingForRelease:)),
    /// unless `mostOpensWaitingForRelease` opens wait already (a crowd of
    /// openers of a file somebody keeps open would hold every worker
    /// thread): then a taken place is EBUSY at once. O_NONBLOCK waits too:
    /// lttd opens every buffer so (for its reads), and a new lttd started
    /// as the last one exits is the case this is for.
    private func openBufferReader(_ buffer: RelayBuffer) -> Bool {
        if buffer.openReader() { return true }
        defer { opensWaitingForRelease.subtract(1, ordering: .relaxed) }
        guard opensWaitingForRelease.add(1, ordering: .relaxed).newValue <= Self.mostOpensWaitingForRelease else {
            return buffer.openReader()
        }
        return buffer.openReader(waitingForRelease: releasePatience)
    }

    /// Opens `inode` with open(2)'s `flags`; returns the file handle.
    func open(inode: UInt64, flags: Int32) throws(Errno) -> UInt64 {
        guard let node = inodes.node(for: inode), resolver.exists(node), !node.isDirectory else {
            throw .noSuchFileOrDirectory
        }
        let accessMode = flags & O_ACCMODE
        let reading = accessMode == O_RDONLY || accessMode == O_RDWR
        let writing = accessMode == O_WRONLY || accessMode == O_RDWR
        let handle: Handle
        switch node {
        case .bufferFile:
            // Only O_RDONLY, one reader at a time (the seed's _ltt_open).
            guard accessMode == O_RDONLY else {
                refusals.log(.warning, "open \(describe(node)): buffer files are read-only (EACCES)")
                throw .permissionDenied
            }
            guard let buffer = resolver.buffer(node) else { throw .noSuchFileOrDirectory }
            guard openBufferReader(buffer) else {
                refusals.log(.info, "open \(describe(node)): already open by a reader (EBUSY)")
                throw .resourceBusy
            }
            // Declarations made before this reader came are handed to it
            // at once (the tracer does so for later ones while a reader is
            // there): a consumer that describes events as they come (CTF,
            // streaming) needs them before the events.
            if case .bufferFile(_, _, let file) = node, file == Metadata.channel + "_0" {
                buffer.forceSwitch(onlyIfWritten: true)
            }
            handle = Handle(.buffer(buffer, inode: inode))
        case .producerSocket:
            guard !writing else { throw .permissionDenied }
            guard let name = producerSocket.withLock({ $0 }) else {
                refusals.log(.info, "open ltt/producer_socket: this server takes no producer processes (ENXIO)")
                throw .noSuchAddressOrDevice
            }
            handle = Handle(.control(node, content: Array((name + "\n").utf8)))
        case .writeEvent, .setupTrace, .destroyTrace:
            guard !reading else { throw .permissionDenied }
            handle = Handle(node == .writeEvent ? .writeEvent : .control(node, content: nil))
        default:
            if writing && node.mode & 0o200 == 0 { throw .permissionDenied }
            var content: [UInt8]?
            if reading {
                let text: String?
                do { text = try control.content(of: node) } catch { throw error.errno }
                guard let text else { throw .permissionDenied }
                content = Array(text.utf8)
            }
            handle = Handle(.control(node, content: content))
        }
        return handles.add(handle)
    }

    func release(fh: UInt64) {
        if let handle = handles.remove(fh), let buffer = handle.buffer {
            _ = handle.takePollWaiter()
            if let grant = handle.existingReaderGrant { tracer.readerGrants.revoke(grant) }
            buffer.closeReader()
        }
    }

    // MARK: Read and write

    /// What a read answers: memory of the ring (valid while the file is
    /// open: the handle keeps its buffer) or a control file's text.
    enum ReadReply {
        case regions([UnsafeRawBufferPointer])
        case text(ArraySlice<UInt8>)
    }

    /// `fillsPageCache`: the kernel reads to fill its page cache (splice, an
    /// mmap fault), not for read(2).
    func read(fh: UInt64, size: Int, offset: Int, fillsPageCache: Bool) throws(Errno) -> ReadReply {
        guard let handle = handles.get(fh) else { throw .badFileDescriptor }
        switch handle.kind {
        case .buffer(let buffer, _):
            handle.readSinceGet.store(true, ordering: .relaxed)
            // Zero copy: the reply points into the ring (consumer-abi.md,
            // "read and splice": the bytes at consumed + offset).
            var regions = buffer.readableRegions(at: UInt64(max(0, offset)), maxLength: size)
            // A short read into the page cache makes the kernel shrink the
            // file to it (fuse_short_read), and an mmap of the file then
            // dies of SIGBUS past that point (MAP_PRIVATE cannot be refused
            // on a direct_io file; MAP_SHARED is, with ENODEV). So the cache
            // gets whole pages: zeros past the readable bytes. read(2) still
            // ends at them: it never goes through the cache.
            let copied = regions.reduce(0) { $0 + $1.count }
            if fillsPageCache && copied < size {
                regions.append(UnsafeRawBufferPointer(rebasing: Self.zeros[..<min(size - copied, Self.zeros.count)]))
            }
            return .regions(regions)
        case .control(_, let content?):
            let start = min(max(0, offset), content.count)
            return .text(content[start..<min(content.count, start + size)])
        default:
            throw .badFileDescriptor
        }
    }

    /// A write to a control file or to write_event; returns the bytes used.
    /// `cancellation` ends a write_event's wait for room (the adapter
    /// cancels it on a FUSE interrupt: a signal to the writer).
    func write(fh: UInt64, bytes: UnsafeRawBufferPointer, cancellation: WaitCancellation) throws(Errno) -> Int {
        guard let handle = handles.get(fh) else { throw .badFileDescriptor }
        switch handle.kind {
        case .writeEvent:
            return try writeEvent(bytes, cancellation: cancellation)
        case .control(let node, _):
            // stdio cuts writes at 4 KiB: a longer value would arrive as two
            // writes, the second read as a value of its own.
            guard bytes.count < Self.maximumControlWrite else {
                refusals.log(.warning, "write of \(bytes.count) bytes to \(describe(node)) refused: control values are shorter than \(Self.maximumControlWrite) bytes (EINVAL)")
                throw .invalidArgument
            }
            // A trace set up, allocated or started now would be cut off by
            // the unmount; the ones being drained are the consumers' last.
            guard !isStopping else {
                refusals.log(.info, "write to \(describe(node)) refused: the server is stopping (EBUSY)")
                throw .resourceBusy
            }
            do {
                try control.write(bytes, to: node)
                return bytes.count
            } catch {
                refusals.log(.warning, "write \(LogText.quoted(bytes: bytes)) to \(describe(node)) refused: \(LogText.escaped(error.reason)) (\(error.errno.name))")
                throw error.errno
            }
        default:
            throw .badFileDescriptor
        }
    }

    /// One event per line (ltt-userspace-event.c), every complete line of the
    /// request in this one request: lines end at a newline or a NUL, and
    /// write(2) returns the bytes of the lines recorded.
    ///
    /// A request does not say whether it ends its write(2): the kernel cuts
    /// a write(2) into requests of at most max_write bytes and max_pages
    /// pages (fuse_direct_io), and each buffer of a writev(2) takes pages of
    /// its own, so a writev of many short pieces ends a request after a few
    /// KiB, anywhere in a line. So the piece after a request's last newline
    /// is left for the writer to send again (a short write, which the C
    /// library completes: the piece then starts the next request), and a
    /// request that holds no newline at all is one event: no line is cut in
    /// two but one that is longer than a request. A line that cannot be recorded
    /// (longer than `maximumLine`, too long for every sub-buffer,
    /// interrupted while waiting for room) ends the batch: the lines before
    /// it are answered as a short write, and the writer's next write(2)
    /// starts with that line and gets its error.
    private func writeEvent(_ bytes: UnsafeRawBufferPointer, cancellation: WaitCancellation) throws(Errno) -> Int {
        // Shutdown ends a wait for room too (`endRequestWaits`).
        waits.withLock { w in
            if w.stopping { cancellation.cancel() }
            w.pending[ObjectIdentifier(cancellation)] = cancellation
        }
        defer { _ = waits.withLock { $0.pending.removeValue(forKey: ObjectIdentifier(cancellation)) } }
        let deadline = MonotonicClock.now() &+ longestWriteEventWait
        var used = 0
        while used < bytes.count {
            let rest = bytes[used...]
            let cut = rest.firstIndex { $0 == 0x0A || $0 == 0 }
            if cut == nil && used > 0 { break }   // the piece comes again, whole
            let end = cut ?? bytes.count
            let line = UnsafeRawBufferPointer(rebasing: bytes[used..<end])
            let failure: Errno
            if line.count > Self.maximumLine {
                refusals.log(.warning, "write_event: a line of \(line.count) bytes or more is longer than \(Self.maximumLine) (EINVAL)")
                failure = .invalidArgument
            } else {
                do throws(Tracer.WriteEventError) {
                    try tracer.writeEvent(line, cancellation: cancellation, deadline: deadline)
                    used = cut.map { $0 + 1 } ?? bytes.count
                    continue
                } catch {
                    switch error {
                    case .tooLong:
                        refusals.log(.warning, "write_event: a line of \(line.count) bytes does not fit in a sub-buffer (EINVAL)")
                        failure = .invalidArgument
                    case .interrupted:
                        refusals.log(.info, "write_event: interrupted while waiting for room; nothing recorded (EINTR)")
                        failure = .interrupted
                    }
                }
            }
            // The lines before this one are recorded: say so (a short
            // write); this one's error comes with the next write(2).
            if used > 0 { return used }
            throw failure
        }
        return used
    }

    /// Every buffer file a reader has open, named as in the tree
    /// ("ltt/<trace>/<channel>_<cpu>"), destroyed traces' included.
    func openBufferFiles() -> [(name: String, buffer: RelayBuffer)] {
        handles.openBuffers().map { open in
            (inodes.node(for: open.inode).map(describe) ?? "buffer file \(open.inode)", open.buffer)
        }
    }

    /// Whether shutdown has begun (`endRequestWaits`).
    var isStopping: Bool { waits.withLock { $0.stopping } }

    /// Shutdown: every write_event waiting for room stops waiting now and is
    /// answered, and any that comes later does not wait at all; an alloc
    /// populating its buffers stops there (ControlFiles.preparing).
    func endRequestWaits() {
        let pending = waits.withLock { w in
            w.stopping = true
            return Array(w.pending.values)
        }
        pending.forEach { $0.cancel() }
    }

    // MARK: ioctl and poll

    /// What an ioctl answers besides its return value.
    enum IoctlReply: Equatable {
        case nothing
        /// A `__u32` (the relay ioctls).
        case word(UInt32)
        case bytes([UInt8])

        /// The `__u32`, if that is the answer.
        var word: UInt32? {
            if case .word(let w) = self { return w }
            return nil
        }
    }

    /// A buffer file's ioctl.
    func ioctl(fh: UInt64, command: UInt32, input: UnsafeRawBufferPointer, outputSize: Int) throws(Errno) -> IoctlReply {
        guard let handle = handles.get(fh), case .buffer(let buffer, let inode) = handle.kind,
              let ioctl = RelayIoctl(rawValue: command) else {
            throw .inappropriateIOCTLForDevice
        }
        // With less room than the answer needs, EINVAL, before anything is
        // taken.
        if outputSize < ioctl.outputSize { throw .invalidArgument }
        switch ioctl {
        case .getSubbuffer:
            // The cookie and the bytes it names, under one hold of the lock:
            // the page cache gets the sub-buffer the cookie names.
            guard let (cookie, bytes) = buffer.takeSubbuffer() else { throw .resourceTemporarilyUnavailable }
            refreshPageCache(inode: inode, bytes: bytes, handle: handle)
            return .word(cookie)
        case .putSubbuffer:
            guard input.count >= 4 else { throw .invalidArgument }
            let cookie = input.loadUnaligned(as: UInt32.self)
            do throws(SubbufferAccessError) {
                try buffer.putSubbuffer(cookie: cookie)
                return .nothing
            } catch {
                // Both are EIO to a consumer (consumer-abi.md); only the log
                // tells them apart.
                logger.debug("RELAY_PUT_SUBBUF \(cookie) on inode \(inode): \(error == .notHeld ? "no sub-buffer taken" : "pushed by the writer") (EIO)")
                throw .ioError
            }
        case .getSubbufferCount:
            return .word(UInt32(buffer.geometry.subbufferCount))
        case .getSubbufferSize:
            return .word(UInt32(buffer.geometry.subbufferSize))
        case .readerGrant:
            return .bytes(tracer.readerGrants.issueToken(for: handle.readerGrant).bytes)
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
    private func refreshPageCache(inode: UInt64, bytes: UnsafeRawBufferPointer, handle: Handle) {
        guard let cache = pageCache.withLock({ $0 }) else { return }
        let first = handle.firstGet.exchange(false, ordering: .relaxed)
        let sawReads = handle.readSinceGet.exchange(false, ordering: .relaxed)
        if first || sawReads {
            cache.invalidate(inode: inode)
        }
        if first || !sawReads {
            // The held sub-buffer is contiguous in the ring (it never wraps).
            cache.store(inode: inode, bytes: bytes)
        }
    }

    /// The poll mask of the file now; `waiter`, if given, is woken when a
    /// buffer file has news (`notifyPollers`). Other files are always
    /// readable and writable.
    func poll(fh: UInt64, waiter: (any PollWaiter)?) -> Int16 {
        guard let handle = handles.get(fh), let buffer = handle.buffer else {
            return Int16(POLLIN | POLLOUT)
        }
        // Keep the waiter before looking at the state: a delivery after this
        // point is seen by the notifier, one before it by the state below.
        if let waiter { handle.setPollWaiter(waiter) }
        return buffer.pollState.pollMask
    }

    // MARK: The notifier

    /// One pass of the notifier thread: wake the poller of each buffer
    /// posted to the tracer's doorbell (a delivered sub-buffer, a finalize)
    /// since the last pass. A buffer nobody has open is nobody's news. (A
    /// reader working the ring through shared memory is rung by the buffer
    /// itself: ReaderGrants.)
    func notifyPollers(_ posted: [ObjectIdentifier]) {
        for buffer in posted {
            handles.bufferHandle(of: buffer)?.takePollWaiter()?.wake()
        }
    }
}
