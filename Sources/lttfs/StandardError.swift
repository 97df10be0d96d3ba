import SystemPackage

/// One message on stderr, written whole (no buffering to lose at exit).
enum StandardError {
    static func write(_ s: String) {
        _ = try? FileDescriptor.standardError.writeAll(s.utf8)
    }
}
