#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import ArgumentParser
import Foundation
import LTTFS
import LTTFormat
import LTTRelay
import LTTTrace
import Logging

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Serve the lttfs tree at MOUNTPOINT (in the background unless -f).",
        discussion: """
            Example:
              lttfs mount -f -o allow_other --group tracing /mnt/ltt
            Also usable as a mount helper: mount -t fuse.lttfs lttfs /mnt/ltt
            """)

    @Flag(name: .shortAndLong, help: "Stay in the foreground.")
    var foreground = false

    @Option(name: .customShort("o"), help: "FUSE mount options, comma separated (allow_other, ...).")
    var options: [String] = []

    @Option(help: "Trace clock: auto (tsc where the kernel keeps time with it, else monotonic), tsc (the CPU's invariant counter, calibrated; cheapest) or monotonic (exact nanoseconds).")
    var clock = "auto"

    @Option(help: "Per-CPU buffers per channel (default: every CPU of the machine).")
    var cpus: Int?

    @Option(help: ArgumentHelp("The tracing group: its members may drain buffer files, read settings and status, and record with write_event (also -o gid=GROUP). Default: the server's own group.", valueName: "group"))
    var group: String?

    @Option(help: ArgumentHelp("The most memory all buffers may take together, in bytes or with K, M, G, T (default: half of RAM or of the cgroup's memory.max, whichever is smaller).", valueName: "size"))
    var bufferMemory: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Argument(help: "The directory to mount on.")
    var mountpoint: String

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "lttfs")
        if let cpus, cpus < 1 || cpus > 4096 {
            logger.error("--cpus \(cpus): give a number from 1 to 4096")
            throw ExitCode(1)
        }
        let traceClock: TraceClock
        switch clock {
        case "monotonic": traceClock = .monotonic
        case "auto": traceClock = .preferred
        case "tsc":
            guard let tsc = TraceClock.calibratedTSC() else {
                logger.error("--clock tsc: this TSC is not invariant (constant_tsc, nonstop_tsc) or not the kernel's clocksource")
                throw ExitCode(1)
            }
            traceClock = tsc
        default:
            logger.error("--clock \(clock): choose auto, tsc or monotonic")
            throw ExitCode(1)
        }
        logger.info("trace clock: \(traceClock.name) at \(traceClock.frequency) Hz")
        var fuseOptions: [String] = []
        var groupName = group
        for option in options.flatMap({ $0.split(separator: ",").map(String.init) }) {
            if option.hasPrefix("gid=") {
                groupName = String(option.dropFirst(4))
            } else if !Self.mountOnlyOptions.contains(option) {
                fuseOptions.append(option)
            }
        }
        var accessGroup: gid_t?
        if let groupName {
            guard let gid = Self.groupID(groupName) else {
                logger.error("--group \(groupName): no such group (a name from /etc/group, or a number)")
                throw ExitCode(1)
            }
            accessGroup = gid
        }
        var memoryLimit = BufferMemoryLimit.default
        if let bufferMemory {
            guard let limit = BufferMemoryLimit.parse(bufferMemory), limit > 0 else {
                logger.error("--buffer-memory \(bufferMemory): give a size such as 268435456, 256M or 2G")
                throw ExitCode(1)
            }
            memoryLimit = limit
        }
        logger.info("buffer memory limit: \(memoryLimit) bytes")
        let tracer = Tracer(cpuCount: cpus ?? RelayChannel.configuredCPUCount, traceClock: traceClock,
                            bufferMemoryLimit: memoryLimit, log: { logger.log($0, $1) })
        let server = FileSystemServer(tracer: tracer, mountpoint: mountpoint, options: fuseOptions,
                                      accessGroup: accessGroup, logger: logger)
        do {
            try server.mount()
        } catch {
            logger.error("\(error.description)")
            throw ExitCode(1)
        }
        do throws(FileSystemServer.MountError) {
            try server.daemonize(foreground: foreground)
        } catch {
            logger.error("\(error.description)")
            throw ExitCode(1)
        }
        // Served from a thread started after the fork: Swift's Mutex keeps
        // its thread's id, and this thread's was the parent's before
        // daemonize forked. Locked by this thread and contended, a Mutex
        // would name a gone owner to the kernel (FUTEX_LOCK_PI: ESRCH), a
        // trap at shutdown. So this thread only waits from here on.
        // The termination signals stay blocked here and in every thread
        // (the serving thread's SignalWaiter takes them).
        FileSystemServer.blockTerminationSignals()
        let rc = Locked<Int32>(0)
        let done = DispatchSemaphore(value: 0)
        let serving = Thread {
            let code = server.runUntilSignalled()
            rc.withLock { $0 = code }
            done.signal()
        }
        serving.name = "lttfs-session"
        serving.start()
        done.wait()
        if rc.withLock({ $0 }) != 0 { throw ExitCode(1) }
    }


    /// Options mount(8) passes to a helper that are not FUSE's.
    static let mountOnlyOptions: Set<String> = ["rw", "nosuid", "nodev", "noexec", "suid", "dev", "exec", "auto",
                                                "noauto", "user", "nouser", "_netdev"]

    /// A group by name or number.
    static func groupID(_ name: String) -> gid_t? {
        if let number = gid_t(name) { return number }
        guard let entry = getgrnam(name) else { return nil }
        return entry.pointee.gr_gid
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
