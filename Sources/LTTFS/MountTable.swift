#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The machine's mounts, from /proc/mounts: the one parser of it.
///
/// The kernel escapes four characters of each path with three octal digits
/// (`\040` space, `\011` tab, `\012` newline, `\134` backslash); they are
/// decoded here, so that a path compares equal to what the user typed.
public struct MountTable: Sendable {
    public struct Entry: Sendable, Equatable {
        public let source: String
        public let mountpoint: String
        public let type: String
        public let options: String
    }

    public let entries: [Entry]

    public init(text: String) {
        entries = text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: false)
            guard f.count >= 4 else { return nil }
            return Entry(source: Self.decode(f[0]), mountpoint: Self.decode(f[1]), type: String(f[2]),
                         options: String(f[3]))
        }
    }

    /// The mounts now (empty if /proc/mounts cannot be read).
    public static func current() -> MountTable {
        MountTable(text: (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "")
    }

    public func isMounted(_ path: String) -> Bool { entries.contains { $0.mountpoint == path } }

    /// Mount points of lttfs servers (type fuse.lttfs), in mount order.
    public var lttfsMountpoints: [String] { entries.filter { $0.type == "fuse.lttfs" }.map(\.mountpoint) }

    /// Decodes the kernel's `\ooo` escapes.
    static func decode(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let raw = Array(field.utf8)
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "\\"), i + 3 < raw.count, let value = octal(raw[(i + 1)...(i + 3)]) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(raw[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func octal(_ digits: ArraySlice<UInt8>) -> UInt8? {
        guard digits.count == 3 else { return nil }
        var value: UInt32 = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + UInt32(d - UInt8(ascii: "0"))
        }
        return value <= 0xFF ? UInt8(value) : nil
    }
}
