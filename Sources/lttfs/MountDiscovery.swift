#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFS

/// Finds lttfs mounts: entries of type fuse.lttfs in /proc/mounts.
enum MountDiscovery {
    static func lttfsMounts() -> [String] { MountTable.current().lttfsMountpoints }

    /// The mount given, or the first lttfs mount of the machine.
    static func resolve(_ given: String?) throws -> String {
        if let given { return given }
        guard let first = lttfsMounts().first else {
            throw Failure("no lttfs mount found in /proc/mounts: mount one (lttfs mount DIR) or give --mount DIR")
        }
        return first
    }

    /// Writes `text` to a control file; a refusal becomes a one-line error.
    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else { throw Failure("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array((text + "\n").utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            throw Failure("writing \"\(text)\" to \(path): \(String(cString: strerror(errno)))")
        }
    }
}
