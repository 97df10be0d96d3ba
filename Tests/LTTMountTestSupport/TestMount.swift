// A real mount for the tests of every target that needs one (LTTFSTests,
// LTTConsumerTests): an in-process server on a fresh mount point, torn down
// on every path.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFS
import LTTTrace

/// A fresh directory under /tmp to mount on.
public func makeMountPoint() -> String {
    let path = NSTemporaryDirectory() + "lttfs-test-" + UUID().uuidString.prefix(8)
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

public func isMounted(_ path: String) -> Bool { MountTable.current().isMounted(path) }

/// Unmounts whatever is left at `path`, lazily if its server is gone.
public func forceUnmount(_ path: String) {
    guard isMounted(path) else { return }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["fusermount3", "-u", "-z", path]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    if (try? p.run()) != nil { p.waitUntilExit() }
}

/// An in-process server on a fresh mount point: the test process is the
/// traced program, as a program using the Swift API would be.
public final class TestMount: @unchecked Sendable {
    public let path: String
    public let tracer: Tracer
    public let server: FileSystemServer
    private var closed = false

    public init(cpuCount: Int = 2, alignment: UInt8 = 8, tracer given: Tracer? = nil) throws {
        path = makeMountPoint()
        tracer = given ?? Tracer(cpuCount: cpuCount, alignment: alignment)
        server = FileSystemServer(tracer: tracer, mountpoint: path)
        do {
            try server.startInBackground()
        } catch {
            forceUnmount(path)
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// The tracer's tree: setup_trace, control/, and one directory per trace.
    public var ltt: String { path + "/ltt" }

    public func close() {
        guard !closed else { return }
        closed = true
        _ = server.shutdown(timeout: 10)
        forceUnmount(path)
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { close() }
}

/// Runs `body` with a mount that is torn down however `body` ends.
public func withMount<T>(cpuCount: Int = 2, alignment: UInt8 = 8, _ body: (TestMount) throws -> T) throws -> T {
    let mount = try TestMount(cpuCount: cpuCount, alignment: alignment)
    defer { mount.close() }
    return try body(mount)
}
