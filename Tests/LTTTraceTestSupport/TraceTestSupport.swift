import Foundation
import Synchronization
import LTTFormat
import LTTRelay
import LTTReader
import LTTTrace

/// A clock the test sets by hand.
public final class TestClock: Sendable {
    public init() {}
    public let value = Atomic<UInt64>(5_000_000_000)
    public func set(_ v: UInt64) { value.store(v, ordering: .relaxed) }
    public func advance(_ d: UInt64) { value.add(d, ordering: .relaxed) }
    public var now: UInt64 { value.load(ordering: .relaxed) }
}

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory {
    public let path: String
    public init() {
        path = NSTemporaryDirectory() + "lttfs-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Drains every buffer of a destroyed trace the way a consumer does (GET,
/// read the sub-buffer, PUT, until the hang-up) into one file per buffer.
public func drain(_ trace: Trace, to directory: String) {
    for (name, buffer) in trace.bufferFiles {
        var data = Data()
        var bytes = [UInt8](repeating: 0, count: Int(buffer.geometry.subbufferSize))
        var guardRounds = 0
        while buffer.pollState != .hungUp && guardRounds < 1_000_000 {
            guardRounds += 1
            guard case .success(let cookie) = buffer.getSubbuffer() else { break }
            let n = bytes.withUnsafeMutableBytes { buffer.read(at: 0, into: $0) }
            precondition(n == bytes.count)
            data.append(contentsOf: bytes)
            try! buffer.putSubbuffer(cookie: cookie)
        }
        _ = FileManager.default.createFile(atPath: directory + "/" + name, contents: data)
    }
}

/// Drains a destroyed trace into a temporary directory and reads it back.
public func drainAndRead(_ trace: Trace) -> TraceReader.Result {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    drain(trace, to: dir.path)
    return TraceReader().read(directory: dir.path)
}
