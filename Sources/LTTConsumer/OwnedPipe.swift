import SystemPackage

/// A pipe whose two ends are closed when it goes away, on every path.
/// Close-on-exec: a library must not leak descriptors into the host
/// program's children.
struct OwnedPipe: ~Copyable, Sendable {
    let readEnd: FileDescriptor
    let writeEnd: FileDescriptor

    init() throws(Errno) {
        (readEnd, writeEnd) = try FileDescriptor.pipe(options: .closeOnExec)
    }

    deinit {
        try? readEnd.close()
        try? writeEnd.close()
    }
}
