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
        let pid = withCStringArray(arguments) { _, argv in lttfs_spawn_detached(path, argv) }
        guard pid > 0 else { throw Errno(rawValue: -pid) }
        return pid
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
