import LTTSystem
import Foundation
import LTTTestSupport
import Synchronization
import CLinuxSupport
import LTTFS
import LTTMountTestSupport
import LTTFormat
import LTTRelay
import LTTTrace

/// The directory holding the built products (lttfs next to the test bundle).
let productsDirectory: String = {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}()
let lttfsBinary = productsDirectory + "/lttfs"
/// The project's strict lttd-style consumer (Tests/LTTDConformance).
let conformanceConsumer = productsDirectory + "/lttd-conform"

/// Waits (at most `seconds`) until `path` exists, or `stillRunning` says no.
func waitForFile(_ path: String, seconds: Double = 30, while stillRunning: () -> Bool = { true }) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !FileManager.default.fileExists(atPath: path) {
        if Date() > deadline || !stillRunning() { return FileManager.default.fileExists(atPath: path) }
        _ = poll(nil, 0, 5)
    }
    return true
}

/// Waits (at most `seconds`) until process `pid` has `path` open: a
/// consumer holds a buffer file, so recording can start.
func waitForOpen(_ pid: pid_t, _ path: String, seconds: Double = 30) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        for fd in fds where (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) == path {
            return true
        }
        _ = poll(nil, 0, 5)
    } while Date() < deadline
    return false
}

/// Waits (at most `seconds`) until thread `tid` of this process sleeps
/// inside poll(2) or ppoll(2): a poll that is waiting, as the kernel says.
func waitUntilBlockedInPoll(_ tid: Int32, seconds: Double = 5) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        let syscall = (try? String(contentsOfFile: "/proc/self/task/\(tid)/syscall", encoding: .utf8)) ?? ""
        let stat = (try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8)) ?? ""
        let number = syscall.split(separator: " ").first.flatMap { Int($0) }
        // The state follows the command name, which is in parentheses.
        let state = stat.split(separator: ")").last?.split(separator: " ").first
        // x86_64 numbers: poll 7, ppoll 271; aarch64 has only ppoll, 73.
        if [7, 271, 73].contains(number ?? -1) && state == "S" { return true }
        _ = poll(nil, 0, 1)
    } while Date() < deadline
    return false
}

/// lttd-conform draining a trace directory in the background. `init`
/// returns once it holds every buffer file open (its ready file exists),
/// so that nothing recorded afterwards can be missed.
final class ConformanceConsumer: @unchecked Sendable {
    let process = Process()
    let out = Pipe(), err = Pipe()
    let ready: String

    init(_ traceDirectory: String, into output: String, deadline: Int = 60, quiet: Bool = true) throws {
        ready = output + ".ready"
        process.executableURL = URL(fileURLWithPath: conformanceConsumer)
        process.arguments = ["-c", traceDirectory, "-t", output, "-T", String(deadline), "-r", ready] + (quiet ? ["-q"] : [])
        process.standardOutput = out
        process.standardError = err
        try process.run()
        guard waitForFile(ready, while: { process.isRunning }) else {
            let result = finish()
            throw ConsumerFailed(result: result)
        }
    }

    struct ConsumerFailed: Error { let result: RunResult }

    /// Waits for the consumer to exit (it does at POLLHUP on every buffer,
    /// or at its deadline) and returns what it said.
    @discardableResult
    func finish() -> RunResult {
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: ready)
        return RunResult(status: process.terminationStatus,
                         output: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                         error: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// The lttfs executable serving a mount point in the foreground, in a
/// child process (for tests that kill the server).
final class ServerProcess: @unchecked Sendable {
    let path: String
    let process = Process()
    let log = Pipe()

    init(arguments: [String] = ["--cpus", "1"]) throws {
        path = makeMountPoint()
        process.executableURL = URL(fileURLWithPath: lttfsBinary)
        process.arguments = ["mount", "-f"] + arguments + [path]
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !isMounted(path) && Date() < deadline && process.isRunning { usleep(10_000) }
        guard isMounted(path) else {
            stop()
            throw POSIXError(.EIO)
        }
    }

    var ltt: String { path + "/ltt" }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        forceUnmount(path)
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { stop() }
}

struct RunResult {
    var status: Int32
    var output: String
    var error: String
}

/// Runs a command with a deadline; a command still running then is killed.
func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 60,
         environment: [String: String]? = nil) -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let inPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    do { try process.run() } catch { return RunResult(status: -1, output: "", error: "\(error)") }
    if let input {
        inPipe.fileHandleForWriting.write(Data(input.utf8))
        try? inPipe.fileHandleForWriting.close()
    }
    // Read while it runs, so a full pipe never blocks it.
    let collected = Locked<(Data, Data)>((Data(), Data()))
    let group = DispatchGroup()
    for (index, pipe) in [out, err].enumerated() {
        group.enter()
        DispatchQueue.global().async {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            collected.withLock { if index == 0 { $0.0 = data } else { $0.1 = data } }
            group.leave()
        }
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
    _ = group.wait(timeout: .now() + 10)
    let (o, e) = collected.withLock { $0 }
    return RunResult(status: process.terminationStatus, output: String(decoding: o, as: UTF8.self),
                     error: String(decoding: e, as: UTF8.self))
}

// MARK: Syscalls, with errno

/// write(2) of `text` to a fresh open of `path`: 0 or the errno.
@discardableResult
func writeControl(_ path: String, _ text: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_TRUNC)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    return n == bytes.count ? 0 : (n < 0 ? errno : EIO)
}

func readControl(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}

/// An open buffer file, closed on deinit.
final class BufferFD: Sendable {
    let fd: Int32
    init(_ path: String, flags: Int32 = O_RDONLY) throws {
        fd = open(path, flags)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
    }
    deinit { close(fd) }

    /// An ioctl with a __u32: (0 or errno, value).
    func ioctl(_ request: RelayIoctl, _ value: UInt32 = 0) -> (Int32, UInt32) {
        var v = value
        let rc = lttfs_ioctl_u32(fd, UInt(request.rawValue), &v)
        return (rc == 0 ? 0 : errno, v)
    }

    func get() -> UInt32? {
        let (e, cookie) = ioctl(.getSubbuffer)
        return e == 0 ? cookie : nil
    }

    /// 0 or errno.
    func put(_ cookie: UInt32) -> Int32 { ioctl(.putSubbuffer, cookie).0 }

    /// poll(2) for POLLIN|POLLPRI with a timeout: the exact revents.
    func poll(timeoutMs: Int32) -> Int16 {
        var p = pollfd(fd: fd, events: Int16(POLLIN | POLLPRI), revents: 0)
        let rc = Glibc.poll(&p, 1, timeoutMs)
        return rc > 0 ? p.revents : 0
    }

    /// lttd's copy of one sub-buffer: splice with an explicit offset through
    /// a pipe, until `length` bytes. Throws if a splice returns 0 or fails.
    func spliceSubbuffer(length: Int) throws -> [UInt8] {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw POSIXError(.EMFILE) }
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        var offset: Int64 = 0
        var result = [UInt8]()
        result.reserveCapacity(length)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < length {
            let n = lttfs_splice(fd, &offset, pipeFDs[1], UInt(length - result.count), LTTFS_SPLICE_F_MOVE)
            if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno)!) }
            if n == 0 { throw SpliceReturnedZero(offset: offset) }
            var left = n
            while left > 0 {
                let r = chunk.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, min(left, $0.count)) }
                guard r > 0 else { throw POSIXError(.EIO) }
                result.append(contentsOf: chunk[0..<r])
                left -= r
            }
        }
        return result
    }
}

struct SpliceReturnedZero: Error { let offset: Int64 }

let POLLIN_: Int16 = 0x001, POLLPRI_: Int16 = 0x002, POLLHUP_: Int16 = 0x010
