#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The default limit on all relay buffers of a server: half of the memory
/// the process may use, which is the smaller of the machine's RAM and the
/// memory limit of its cgroup and every cgroup above it (`memory.max` in
/// cgroup v2, `memory.limit_in_bytes` in v1's memory hierarchy). An
/// allocation past what the cgroup allows would not fail: the kernel's OOM
/// killer would end the server, and its mount with it.
public enum BufferMemoryLimit {
    public static let `default`: UInt64 = available / 2

    /// The memory this process may use: RAM, or less if its cgroups say so.
    public static var available: UInt64 {
        let ram = UInt64(sysconf(Int32(_SC_PHYS_PAGES))) &* UInt64(sysconf(Int32(_SC_PAGESIZE)))
        return min(ram, cgroupLimit(procCgroup: (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
                            ?? .max)
    }

    /// The smallest memory limit on the path of this process's cgroups, as
    /// /proc/self/cgroup names them (`0::/path` for v2, `N:memory:/path` or
    /// `N:...,memory,...:/path` for v1), read under `root`.
    public static func cgroupLimit(procCgroup: String, root: String = "/sys/fs/cgroup") -> UInt64? {
        var smallest: UInt64?
        for line in procCgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let places: [(directory: String, file: String)]
            if fields[0] == "0" && fields[1].isEmpty {
                places = [(root, "memory.max"), (root + "/unified", "memory.max")]
            } else if fields[1].split(separator: ",").contains("memory") {
                places = [(root + "/memory", "memory.limit_in_bytes")]
            } else {
                continue
            }
            for (directory, file) in places {
                var path = String(fields[2])
                while true {
                    let name = directory + (path == "/" ? "" : path) + "/" + file
                    if let text = try? String(contentsOfFile: name, encoding: .utf8),
                       let limit = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                        smallest = min(smallest ?? .max, limit)
                    }
                    guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                    path = slash == path.startIndex ? "/" : String(path[..<slash])
                }
            }
        }
        return smallest
    }

    /// Parses a size as `lttfs mount --buffer-memory` takes it: bytes, or
    /// a number with a K, M, G or T suffix (powers of 1024).
    public static func parse(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var scale: UInt64 = 1
        if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][String(last).uppercased()] {
            scale = 1 << UInt64(shift)
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else {
            return nil
        }
        let scaled = value.multipliedReportingOverflow(by: scale)
        return scaled.overflow ? nil : scaled.partialValue
    }
}
