#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The default limit on all relay buffers of a server: half of the memory
/// the process may use, which is the smaller of the machine's RAM and the
/// `memory.max` of its cgroup and every cgroup above it (cgroup v2). An
/// allocation past what the cgroup allows would not fail: the kernel's OOM
/// killer would end the server, and its mount with it.
public enum BufferMemoryLimit {
    public static let `default`: UInt64 = available / 2

    /// The memory this process may use: RAM, or less if its cgroups say so.
    public static var available: UInt64 {
        let ram = UInt64(sysconf(Int32(_SC_PHYS_PAGES))) &* UInt64(sysconf(Int32(_SC_PAGESIZE)))
        return min(ram, cgroupLimit ?? .max)
    }

    /// The smallest `memory.max` on the path of this process's cgroup.
    static var cgroupLimit: UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        var path = String(line.dropFirst(3))
        var smallest: UInt64?
        while true {
            let file = "/sys/fs/cgroup" + (path == "/" ? "" : path) + "/memory.max"
            if let value = try? String(contentsOfFile: file, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), let limit = UInt64(value) {
                smallest = min(smallest ?? .max, limit)
            }
            guard path != "/", let slash = path.lastIndex(of: "/") else { break }
            path = slash == path.startIndex ? "/" : String(path[..<slash])
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
