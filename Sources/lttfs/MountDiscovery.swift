#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFS
import LTTSystem
import SystemPackage

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
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, .writeOnly, options: [.truncate, .closeOnExec])
        } catch let error as Errno {
            throw Failure("\(path): \(error.explained)")
        }
        defer { try? fd.close() }
        do throws(Errno) {
            try fd.writeFully(Array((text + "\n").utf8))
        } catch {
            throw Failure("writing \"\(text)\" to \(path): \(error.explained)")
        }
    }
}
