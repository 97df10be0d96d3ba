#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import SystemPackage

/// Processes and their descriptors: what the server does when it goes to
/// the background and what `lttfs ctl` does to start a consumer.
public enum ProcessControl {
    /// Starts `path` with `arguments` (argv[0] included) in a session of its
    /// own, its standard streams on /dev/null and no other descriptor: a
    /// consumer that outlives the command that started it. Returns its pid.
    public static func spawnDetached(_ path: String, arguments: [String]) throws(Errno) -> pid_t {
        try spawn(path, arguments: arguments, detached: true)
    }

    /// Starts `path` with `arguments` (argv[0] included) and this process's
    /// standard streams, with no signal blocked and every signal at its
    /// default action (a thread of this process may block some: the child
    /// must still stop on SIGTERM). Returns its pid; `exitStatus` reaps it.
    public static func spawn(_ path: String, arguments: [String]) throws(Errno) -> pid_t {
        try spawn(path, arguments: arguments, detached: false)
    }

    /// The exit status of child `pid` (128 + the signal's number if a
    /// signal ended it), waiting for it to end if `wait`; nil if it still
    /// runs (and `wait` is false).
    public static func exitStatus(of pid: pid_t, wait: Bool) -> Int32? {
        var status: Int32 = 0
        guard let reaped = try? systemCall({ waitpid(pid, &status, wait ? 0 : WNOHANG) }), reaped == pid else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    private static func spawn(_ path: String, arguments: [String], detached: Bool) throws(Errno) -> pid_t {
        let pid = withCStringArray(arguments) { _, argv in lttfs_spawn(path, argv, detached ? 1 : 0) }
        guard pid > 0 else { throw Errno(rawValue: -pid) }
        return pid
    }

    /// Runs `arguments` (argv[0] looked up in PATH) with this process's
    /// standard streams and waits for it; returns its exit status (128 + the
    /// signal's number if a signal ended it).
    public static func run(_ arguments: [String]) throws(Errno) -> Int32 {
        // The child starts with no signal blocked and every signal at its
        // default action, whatever this thread blocks (a server blocks the
        // termination signals in every thread: see SignalWaiter).
        let pid = try spawn(arguments[0], arguments: arguments, detached: false)
        var status: Int32 = 0
        _ = try systemCall { waitpid(pid, &status, 0) }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Sends `signal` to process `pid`.
    public static func send(_ signal: Int32, to pid: pid_t) throws(Errno) {
        _ = try systemCall { kill(pid, signal) }
    }

    /// Closes every descriptor from `lowest` up but `keep` (a daemon keeps
    /// nothing its parent had open, except the FUSE device).
    public static func closeDescriptors(from lowest: Int32, keeping keep: Int32) {
        lttfs_close_descriptors_from(lowest, keep)
    }
}

/// Calls `body` with argc and a NULL-terminated C argv for `strings`.
public func withCStringArray<R>(_ strings: [String], _ body: (Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var argv = duplicated + [nil]
    return argv.withUnsafeMutableBufferPointer { body(Int32(strings.count), $0.baseAddress!) }
}

/// `path` with every symbolic link, `.` and `..` resolved (realpath(3)), or
/// nil if some part of it does not exist.
public func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
