#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CFuse
import LTTFS
import LTTRelay
import LTTTrace
import Logging

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Serve the lttfs tree at MOUNTPOINT (in the background unless -f).",
        discussion: """
            Example:
              lttfs mount -f -o allow_other /mnt/ltt
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
        let tracer = Tracer(cpuCount: cpus ?? RelayChannel.configuredCPUCount, traceClock: traceClock, log: { lvl, message in
            switch lvl {
            case .info: logger.info("\(message)")
            case .warning: logger.warning("\(message)")
            case .error: logger.error("\(message)")
            }
        })
        let fuseOptions = options.flatMap { $0.split(separator: ",").map(String.init) }
            .filter { !["rw", "nosuid", "nodev", "noexec", "suid", "dev", "exec", "auto", "noauto", "user", "nouser", "_netdev"].contains($0) }
        let server = FileSystemServer(tracer: tracer, mountpoint: mountpoint, options: fuseOptions, logger: logger)
        do {
            try server.mount()
        } catch {
            logger.error("\(error.description)")
            throw ExitCode(1)
        }
        // Fork before any thread starts: threads do not survive it.
        if fuse_daemonize(foreground ? 1 : 0) != 0 {
            logger.error("cannot go to the background")
            throw ExitCode(1)
        }
        if !foreground { server.closeInheritedDescriptors() }
        let rc = server.runUntilSignalled()
        if rc != 0 { throw ExitCode(1) }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount an lttfs mount point (lazily if its server died).",
        discussion: "Example:\n  lttfs umount /mnt/ltt")

    @Argument(help: "The mount point.")
    var mountpoint: String

    func run() throws {
        for arguments in [["-u", mountpoint], ["-u", "-z", mountpoint]] {
            var pid: pid_t = 0
            let rc = withCStringArray(["fusermount3"] + arguments) { _, argv in
                posix_spawnp(&pid, "fusermount3", nil, nil, argv, environ)
            }
            guard rc == 0 else { continue }
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            if status == 0 { return }
        }
        StandardError.write("lttfs: cannot unmount \(mountpoint)\n")
        throw ExitCode(1)
    }
}

/// One message on stderr, written whole (no buffering to lose at exit).
enum StandardError {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
