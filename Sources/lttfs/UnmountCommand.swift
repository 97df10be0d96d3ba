#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import LTTFS
import LTTSystem

struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Stop an lttfs server and unmount its mount point (lazily if the server died).",
        discussion: """
            A server started by `lttfs mount` is asked to stop with SIGTERM, as systemctl
            stop does: it answers every request that waits, lets the consumers reading
            its traces drain them to the end, then unmounts. Otherwise
            (a program serving lttfs itself, or a dead server) the mount is detached.
            Example:
              lttfs umount /mnt/ltt
            """)

    @Argument(help: "The mount point.")
    var mountpoint: String

    func run() throws {
        let path = resolvedPath(mountpoint) ?? mountpoint
        if let entry = MountTable.current().entries.last(where: { $0.mountpoint == path && $0.type == "fuse.lttfs" }),
           let pid = FileSystemServer.serverProcess(source: entry.source), Self.isLttfsServer(pid, serving: path) {
            // Its consumers may drain what is left first (up to 30 s), then
            // it stops (up to 10 s). Not ours to stop (EPERM): detach below.
            let signalled = (try? ProcessControl.send(SIGTERM, to: pid)) != nil
            let deadline = MonotonicClock.now() + (signalled ? 45_000_000_000 : 0)
            while MountTable.current().isMounted(path) && MonotonicClock.now() < deadline {
                MonotonicClock.sleep(nanoseconds: 10_000_000)
            }
            if !MountTable.current().isMounted(path) { return }
        }
        for arguments in [["-u", mountpoint], ["-u", "-z", mountpoint]] {
            if (try? ProcessControl.run(["fusermount3"] + arguments)) == 0 { return }
        }
        StandardError.write("lttfs: cannot unmount \(mountpoint)\n")
        throw ExitCode(1)
    }

    /// Whether `pid` is `lttfs mount ... MOUNTPOINT` for this mount point:
    /// the mount source names a PID, and anybody who can mount FUSE can
    /// name any PID there, so the process itself must say it serves `path`
    /// (not a program serving lttfs itself either, which SIGTERM would end).
    static func isLttfsServer(_ pid: pid_t, serving path: String) -> Bool {
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        guard comm.trimmingCharacters(in: .whitespacesAndNewlines) == "lttfs",
              let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard arguments.count > 2, arguments[1] == "mount", var last = arguments.last else { return false }
        if !last.hasPrefix("/"), let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") {
            last = cwd + "/" + last
        }
        let served = resolvedPath(last) ?? last
        return served == path
    }
}
