#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import CFuse
import CLinuxSupport
import Foundation
import LTTFormat
import LTTRelay
import LTTProducers
import LTTTrace
import Logging
import Synchronization
import SystemPackage

/// A mounted lttfs: the FUSE session, its worker threads and the notifier.
///
///     let server = try FileSystemServer(tracer: .shared, mountpoint: "/mnt/ltt")
///     try server.mount()
///     server.run()          // until unmounted or signalled
///
/// or, inside a program that traces itself, `startInBackground()` and
/// `shutdown()`.
public final class FileSystemServer: @unchecked Sendable {
    public enum MountError: Error, CustomStringConvertible, Equatable {
        case mountpointMissing(String)
        case notADirectory(String)
        case alreadyMounted(String)
        case noFuseDevice(String)
        case sessionFailed(String)
        case mountFailed(String)
        case daemonizeFailed

        public var description: String {
            switch self {
            case .mountpointMissing(let p): "mount point \(p) does not exist"
            case .notADirectory(let p): "mount point \(p) is not a directory"
            case .alreadyMounted(let p): "mount point \(p) is busy: something is already mounted there"
            case .noFuseDevice(let why): "cannot use /dev/fuse: \(why) (is the fuse module loaded, and fuse3 installed?)"
            case .sessionFailed(let why): "cannot create the FUSE session: \(why)"
            case .mountFailed(let p): "mounting \(p) failed (see the message above)"
            case .daemonizeFailed: "cannot go to the background"
            }
        }
    }

    public let mountpoint: String
    public let tracer: Tracer
    let fs: FileSystem
    let logger: Logger
    private let options: [String]
    /// Wakes the pollers of buffers with news: kicked by the tracer's
    /// doorbell when a buffer posts a delivery or a finalize; its tick is
    /// only a safety net.
    private let notifier = PeriodicThread(name: "lttfs-notifier", interval: 0.1)
    private struct State: @unchecked Sendable {
        var session: UncheckedPointer?
        var mounted = false
        /// The workers serving requests, while they do.
        var loop: SessionLoop?
        /// `shutdown` was asked before `run` started its loop.
        var stopping = false
        /// `run` is over: the loop ended, the mount is released.
        var finished = false
        /// `runUntilSignalled` took a signal and started the shutdown.
        var signalled = false
    }
    private let state = Locked(State())
    /// Set by a second termination signal: shutdown stops waiting for the
    /// consumers to drain.
    private let drainCut = Atomic<Bool>(false)
    /// The operations table lives as long as the server: libfuse keeps a copy,
    /// but the userdata it passes back is this object.
    private var userdata: Unmanaged<FileSystem>?

    /// `options` are FUSE mount options (`allow_other`, ...); the kernel
    /// always checks permissions (`default_permissions`). `accessGroup`
    /// owns every file as its group (the tracing group): by default the
    /// server's own group.
    public init(tracer: Tracer, mountpoint: String, options: [String] = [], accessGroup: gid_t? = nil,
                logger: Logger = Logger(label: "lttfs")) {
        self.tracer = tracer
        self.mountpoint = mountpoint
        self.options = options
        self.logger = logger
        fs = FileSystem(tracer: tracer, logger: logger, accessGroup: accessGroup)
    }

    deinit { userdata?.release() }

    /// The mount's source in /proc/mounts, `lttfs:<pid>`: `lttfs umount`
    /// finds the server there, to ask it to stop (SIGTERM) rather than
    /// detach the mount under a server that still serves open files.
    static var source: String { "lttfs:\(getpid())" }

    /// The server process of a mount whose source is `lttfs:<pid>`.
    public static func serverProcess(source: String) -> pid_t? {
        guard source.hasPrefix("lttfs:"), let pid = pid_t(source.dropFirst(6)), pid > 0 else { return nil }
        return pid
    }

    /// Checks the mount point and /dev/fuse, creates the session and mounts.
    public func mount() throws(MountError) {
        var st = stat()
        do {
            _ = try systemCall { stat(mountpoint, &st) }
        } catch .noSuchFileOrDirectory {
            throw .mountpointMissing(mountpoint)
        } catch {
            throw .mountpointMissing("\(mountpoint): \(error.explained)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .notADirectory(mountpoint) }
        let resolved = resolvedPath(mountpoint)
        if MountTable.current().isMounted(resolved ?? mountpoint) {
            throw .alreadyMounted(mountpoint)
        }
        do throws(Errno) {
            try typedErrno { try FileDescriptor.open("/dev/fuse", .readWrite, options: .closeOnExec).close() }
        } catch {
            throw .noFuseDevice(error.explained)
        }

        // default_permissions in every mode: the kernel checks each access
        // against the modes and owners of the tree (Node.mode), for root's
        // mounts with allow_other as for anyone's.
        let arguments = ["lttfs", "-o",
                         (["fsname=\(Self.source)", "subtype=lttfs", "default_permissions"] + options)
                            .joined(separator: ",")]
        let retained = Unmanaged.passRetained(fs)
        userdata = retained
        var ops = FuseAdapter.operations()
        let session: OpaquePointer? = withCStringArray(arguments) { argc, argv in
            lttfs_fuse_session_new(argc, argv, &ops, MemoryLayout<fuse_lowlevel_ops>.size, retained.toOpaque())
        }
        guard let session else { throw .sessionFailed("bad options \(options)?") }
        guard fuse_session_mount(session, mountpoint) == 0 else {
            fuse_session_destroy(session)
            throw .mountFailed(mountpoint)
        }
        let logger = logger
        fs.attach(FusePageCache(session: session) { logger.debug("\($0)") })
        state.withLock { $0 = State(session: UncheckedPointer(session), mounted: true) }
        logger.info("mounted on \(mountpoint)")
    }

    /// Serves requests until the filesystem is unmounted or `shutdown` is
    /// called, then unmounts and frees the session. Start it after any
    /// daemonizing fork: threads do not survive one.
    @discardableResult
    public func run(maxThreads: UInt32 = 16) -> Int32 {
        // Workers inherit this thread's signal mask: shutdown wakes them
        // out of their reads with this signal.
        _ = lttfs_wake_signal_accept()
        guard let session = state.withLock({ $0.session })?.raw else { return -1 }
        let doorbell = fs.tracer.readerDoorbell
        // Subscribe first: a post from now on kicks the notifier; its first
        // pass takes whatever was posted before it started.
        let wakeups = doorbell.subscribe { [notifier] in notifier.kick() }
        notifier.start { [fs] in fs.notifyPollers(wakeups.takePosted()) }
        let producers = startProducerService()
        let loop = SessionLoop(session: session, maxThreads: Int(maxThreads), idleThreads: 4)
        let stopAtOnce = state.withLock { s -> Bool in
            s.loop = loop
            return s.stopping
        }
        if stopAtOnce { _ = loop.stop(timeout: 10) }
        let rc = loop.wait()
        state.withLock { $0.loop = nil }
        producers?.shutdown()
        fs.producerSocket.withLock { $0 = nil }
        wakeups.cancel()
        notifier.stop()
        // Closes the FUSE device first (libfuse does), which fails whatever
        // the kernel still queues for this mount, then detaches the mount.
        unmountOnce()
        state.withLock { $0.session = nil }
        fs.attach(nil)
        fuse_session_destroy(session)
        logger.info("unmounted \(mountpoint)")
        // Traces that were never destroyed: their losses are said too.
        tracer.logErrorsOfEveryTrace()
        state.withLock { $0.finished = true }
        return rc
    }

    /// Serves like `run` until unmounted or until SIGINT, SIGTERM, SIGHUP or
    /// SIGQUIT. The signals are blocked in every thread and taken by one
    /// `sigwait` thread, so whichever thread the kernel picks, the session
    /// ends cleanly and the mount point is released.
    ///
    /// The first signal starts `shutdown` on a thread of its own; a second
    /// one (Ctrl-C again) ends the consumers' drain at once.
    @discardableResult
    public func runUntilSignalled(maxThreads: UInt32 = 16) -> Int32 {
        let stopped = DispatchSemaphore(value: 0)
        let signals = SignalWaiter { [self] signal in
            let first = state.withLock { s -> Bool in
                defer { s.signalled = true }
                return !s.signalled
            }
            if first {
                logger.info("signal \(signal): stopping, then unmounting \(mountpoint)")
                let thread = Thread { [self] in
                    shutdown(timeout: 10)
                    stopped.signal()
                }
                thread.name = "lttfs-shutdown"
                thread.start()
            } else {
                logger.warning("signal \(signal) again: not waiting for the consumers any longer")
                drainCut.store(true, ordering: .releasing)
            }
        }
        let rc = run(maxThreads: maxThreads)
        signals.stop()
        // The shutdown thread returns once `run` has finished: bounded.
        if state.withLock({ $0.signalled }) { _ = stopped.wait(timeout: .now() + 15) }
        return rc
    }

    /// After `mount` and before `run` (threads do not survive a fork):
    /// libfuse's daemonize. In the background: fork, setsid, chdir /,
    /// standard streams on /dev/null (the parent exits once the child is
    /// ready), then every other inherited descriptor but the FUSE device is
    /// closed, so the server holds none of its caller's pipes open. In the
    /// foreground only chdir /, so the server keeps no directory busy.
    public func daemonize(foreground: Bool = false) throws(MountError) {
        guard let session = state.withLock({ $0.session })?.raw else { throw .sessionFailed("not mounted") }
        guard fuse_daemonize(foreground ? 1 : 0) == 0 else { throw .daemonizeFailed }
        if !foreground { ProcessControl.closeDescriptors(from: 3, keeping: fuse_session_fd(session)) }
    }

    /// Blocks the termination signals in the calling thread and every
    /// thread it starts later. A program that starts threads before
    /// `runUntilSignalled` calls this first, so that no thread takes a
    /// termination signal's default action.
    public static func blockTerminationSignals() {
        SignalWaiter.block()
    }

    /// Mounts and serves on a background thread (a program tracing itself).
    public func startInBackground() throws(MountError) {
        try mount()
        let thread = Thread { [self] in run() }
        thread.name = "lttfs-session"
        thread.start()
    }

    /// Ends the session and waits until `run` has unmounted. In this order:
    /// every request that waits (write_event waiting for room) is answered,
    /// and control writes are refused from then on; the consumers reading
    /// traces drain them (`drainReaders`, at most `drainLimit` seconds);
    /// the workers are told to stop and woken out of their reads
    /// (`SessionLoop.stop`), each finishing the request it serves; then
    /// `run` unmounts, which this waits for at most `timeout` seconds.
    /// Nothing here touches the mount point: a request to our own mount
    /// from this process could wait for a worker that is gone.
    @discardableResult
    public func shutdown(timeout: TimeInterval = 10, drainLimit: TimeInterval = 30) -> Bool {
        fs.endRequestWaits()
        drainReaders(limitNanoseconds: UInt64(max(0, drainLimit) * 1e9))
        let loop = state.withLock { s -> SessionLoop? in
            s.stopping = true
            return s.loop
        }
        let deadline = Date().addingTimeInterval(timeout)
        if let loop, !loop.stop(timeout: timeout) { return false }
        while !state.withLock({ $0.finished || $0.session == nil && !$0.mounted }) {
            if Date() >= deadline { return false }
            MonotonicClock.sleep(nanoseconds: 2_000_000)
        }
        return true
    }

    /// Shutdown with consumers attached: what they have not taken yet would
    /// go with the session (lttd would see POLLERR, and lose the end of
    /// the trace). So every trace a reader drains is destroyed as
    /// destroy_trace does (stopped, its partial sub-buffers delivered, its
    /// buffers finalized, its losses logged), and shutdown waits while the
    /// readers keep taking sub-buffers, until every reader has closed its
    /// buffers, those of traces destroyed earlier included: lttd closes each
    /// at POLLHUP, which it must still be able to poll after its last PUT
    /// (a session ended then answers POLLERR). When no reader took or
    /// closed anything for `stallNanoseconds`, they are given up on, and
    /// after `limitNanoseconds` from the start (the destroys included), or
    /// at a second signal; what they left is logged. A consumer that opens
    /// a trace during the drain is taken in the same way. Traces nobody
    /// reads are left as they are (their losses are logged at unmount).
    func drainReaders(stallNanoseconds: UInt64 = 2_000_000_000, limitNanoseconds: UInt64 = 30_000_000_000) {
        let start = MonotonicClock.now()
        guard limitNanoseconds > 0 else { return }
        var watched: [ObjectIdentifier: (name: String, buffer: RelayBuffer)] = [:]
        // The buffers readers have open that are not watched yet: their
        // traces are destroyed, and they are watched from now on. Asked at
        // every pass, so a consumer that opened a trace after the signal
        // drains it too (within the same bounds).
        func watchNewReaders() -> Bool {
            let new = fs.openBufferFiles().filter { watched[ObjectIdentifier($0.buffer)] == nil }
            guard !new.isEmpty else { return false }
            let ids = Set(new.map { ObjectIdentifier($0.buffer) })
            for trace in tracer.traces where trace.bufferFiles.contains(where: { ids.contains(ObjectIdentifier($0.buffer)) }) {
                // The very trace seen (not a new one of the same name).
                guard tracer.trace(trace.name)?.serial == trace.serial else { continue }
                _ = try? tracer.destroyTrace(trace.name)
            }
            for file in new { watched[ObjectIdentifier(file.buffer)] = file }
            return true
        }
        guard watchNewReaders() else { return }
        logger.info("shutdown: \(watched.count) buffer(s) read by a consumer: letting the consumers drain them first")
        var (progressAt, progress) = (MonotonicClock.now(), UInt64.max)
        while true {
            let joined = watchNewReaders()
            // A buffer given up (its lock jammed) says nothing more, nor waits.
            let pending = watched.values.filter { $0.buffer.hasReader && !$0.buffer.isAbandoned }
            if pending.isEmpty {
                logger.info("shutdown: the consumers drained their buffers and closed them")
                return
            }
            // Sub-buffers taken, buffers closed, readers come: the consumers go on.
            let taken = pending.reduce(UInt64(0)) { $0 &+ $1.buffer.counters.subbuffersConsumed }
            let done = taken &+ UInt64(watched.count - pending.count)
            let now = MonotonicClock.now()
            if done != progress || joined { (progressAt, progress) = (now, done) }
            let why: String? = drainCut.load(ordering: .acquiring) ? "a second signal"
                : now &- start >= limitNanoseconds ? "\(limitNanoseconds / 1_000_000_000) s passed"
                : now &- progressAt >= stallNanoseconds ? "they took and closed nothing for \(stallNanoseconds / 1_000_000) ms"
                : nil
            if let why {
                let left = pending.map { b -> String in
                    let c = b.buffer.counters
                    return "\(b.name) (\(c.subbuffersDelivered &- c.subbuffersConsumed) sub-buffer(s) not taken)"
                }.sorted()
                logger.warning("shutdown: not waiting for the consumers any longer (\(why)); still open: \(left.joined(separator: ", "))")
                return
            }
            MonotonicClock.sleep(nanoseconds: 2_000_000)
        }
    }

    /// The socket service of producer processes: those the mount's
    /// permissions allow (its owner, root, the access group) record into
    /// its traces through shared memory. nil, logged, if it cannot run.
    private func startProducerService() -> ProducerService? {
        let (owner, group) = (fs.uid, fs.gid)
        let logger = self.logger
        do throws(ProducerService.Failure) {
            let service = try ProducerService(tracer: tracer, admits: { uid, gid, groups in
                uid == owner || uid == 0 || gid == group || groups.contains(group)
            }, log: { logger.log($0, $1) })
            fs.producerSocket.withLock { $0 = service.socketName }
            return service
        } catch {
            logger.warning("no producer processes: \(error.description)")
            return nil
        }
    }

    /// Unmounts once (the session thread, after its workers are gone).
    private func unmountOnce() {
        let session = state.withLock { s -> UncheckedPointer? in
            guard s.mounted else { return nil }
            s.mounted = false
            return s.session
        }
        if let session { fuse_session_unmount(session.raw) }
    }

}
