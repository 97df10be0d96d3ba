#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import ArgumentParser
import CLinuxSupport
import Foundation
import LTTFS
import LTTFormat
import LTTRelay
import LTTTrace
import Synchronization

/// An lttd-compatible consumer: poll every buffer file of a trace
/// directory, and for each delivered sub-buffer RELAY_GET_SUBBUF, splice it
/// to the output file through a pipe, RELAY_PUT_SUBBUF; exit when every
/// buffer has hung up.
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Drain a trace's buffer files to disk, the way lttd does.",
        discussion: """
            Example:
              lttfs consume -c /mnt/ltt/ltt/mytrace -t ~/traces/mytrace
            Writes one file per buffer (OUTDIR/<channel>_<cpu>), shows progress on a
            terminal, exits when the trace was destroyed and everything is read.
            SIGINT stops it cleanly with everything read so far on disk.
            """)

    @Option(name: .customShort("c"), help: "The trace's directory in the mounted tree (<mount>/ltt/<trace>).")
    var channels: String

    @Option(name: .customShort("t"), help: "The output directory (created; must not exist unless -a).")
    var trace: String

    @Flag(name: .customShort("a"), help: "Append to existing output files.")
    var append = false

    @Option(name: .customShort("n"), help: "Reader threads.")
    var threads = 1

    @Flag(name: .shortAndLong, help: "No progress line, no summary.")
    var quiet = false

    func run() throws {
        guard threads >= 1 && threads <= 256 else { throw Failure("-n \(threads): give 1 to 256 threads") }
        let consumer = try TraceConsumer(traceDirectory: channels, outputDirectory: trace, append: append)
        let stop = SignalStop()
        let progress = quiet || isatty(2) == 0 ? nil : ProgressLine(consumer: consumer)
        progress?.start()
        let outcome = consumer.run(threads: threads, stop: stop)
        progress?.stop()
        stop.release()
        if !quiet {
            StandardError.write(consumer.summary(stopped: outcome == .stopped) + "\n")
        }
        if let failure = consumer.failures.first {
            throw Failure(failure)
        }
    }
}

/// The consumer's state and loop, usable without the command line.
final class TraceConsumer: @unchecked Sendable {
    struct Buffer {
        let path: String
        let fd: Int32
        let out: Int32
        let subbufferSize: Int
    }

    enum Outcome { case drained, stopped }

    let buffers: [Buffer]
    let bytes = Atomic<Int>(0)
    let subbuffers = Atomic<Int>(0)
    let pushed = Atomic<Int>(0)
    let lost = Locked<[String: (events: UInt32, corrupted: UInt32)]>([:])
    private let failureList = Locked<[String]>([])
    let started = Date()

    var failures: [String] { failureList.withLock { $0 } }

    init(traceDirectory: String, outputDirectory: String, append: Bool) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: traceDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Failure("\(traceDirectory) is not a trace directory (expected <mount>/ltt/<trace>)")
        }
        if FileManager.default.fileExists(atPath: outputDirectory) && !append {
            throw Failure("\(outputDirectory) exists: choose a new directory, or -a to append")
        }
        do {
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw Failure("cannot create \(outputDirectory): \(error.localizedDescription)")
        }
        var found: [Buffer] = []
        // Every regular file below the directory is a buffer, as lttd assumes.
        let walker = FileManager.default.enumerator(atPath: traceDirectory)
        var relative: [String] = []
        while let name = walker?.nextObject() as? String {
            if (name as NSString).lastPathComponent.hasPrefix(".") { continue }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: traceDirectory + "/" + name, isDirectory: &isDir), !isDir.boolValue {
                relative.append(name)
            }
        }
        // On any failure below, nothing opened so far stays open.
        var complete = false
        defer { if !complete { found.forEach { close($0.fd); close($0.out) } } }
        for name in relative.sorted() {
            let path = traceDirectory + "/" + name
            let fd = open(path, O_RDONLY | O_NONBLOCK)
            guard fd >= 0 else {
                let e = errno
                throw Failure("cannot open \(path): \(String(cString: strerror(e)))\(e == EBUSY ? " (another consumer has it)" : "")")
            }
            var size: UInt32 = 0
            guard lttfs_ioctl_u32(fd, UInt(RelayIoctl.getSubbufferSize.rawValue), &size) == 0 else {
                close(fd)
                throw Failure("\(path) is not a buffer file (RELAY_GET_SUBBUF_SIZE: \(String(cString: strerror(errno))))")
            }
            let outPath = outputDirectory + "/" + name
            try? FileManager.default.createDirectory(atPath: (outPath as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            let out = open(outPath, O_RDWR | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
            guard out >= 0 else {
                close(fd)
                throw Failure("cannot create \(outPath): \(String(cString: strerror(errno)))")
            }
            found.append(Buffer(path: path, fd: fd, out: out, subbufferSize: Int(size)))
        }
        guard !found.isEmpty else { throw Failure("no buffer file in \(traceDirectory)") }
        complete = true
        buffers = found
    }

    deinit {
        for b in buffers {
            close(b.fd)
            close(b.out)
        }
    }

    func fail(_ message: String) { failureList.withLock { $0.append(message) } }

    /// Runs `threads` readers over the buffers until all hung up or `stop`.
    func run(threads: Int, stop: SignalStop) -> Outcome {
        let groups = (0..<min(threads, buffers.count)).map { t in
            stride(from: t, to: buffers.count, by: threads).map { buffers[$0] }
        }
        let done = DispatchSemaphore(value: 0)
        for group in groups {
            Thread { [self] in
                reader(group, stop: stop)
                done.signal()
            }.start()
        }
        for _ in groups { done.wait() }
        return stop.requested ? .stopped : .drained
    }

    private func reader(_ group: [Buffer], stop: SignalStop) {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            fail("cannot create a pipe: \(String(cString: strerror(errno)))")
            return
        }
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        _ = lttfs_set_pipe_size(pipeFDs[1], 1 << 20)
        var live = group
        var fds = live.map { pollfd(fd: $0.fd, events: Int16(POLLIN | POLLPRI), revents: 0) }
        while !live.isEmpty && !stop.requested && failures.isEmpty {
            let rc = poll(&fds, nfds_t(fds.count), 100)
            if rc < 0 {
                if errno == EINTR { continue }
                fail("poll: \(String(cString: strerror(errno)))")
                return
            }
            var hungUp: [Int] = []
            // Urgent ones first, as lttd does.
            let order = fds.indices.sorted { (fds[$0].revents == Int16(POLLPRI) ? 0 : 1) < (fds[$1].revents == Int16(POLLPRI) ? 0 : 1) }
            for i in order {
                switch fds[i].revents {
                case 0:
                    break
                case Int16(POLLIN), Int16(POLLPRI):
                    drain(live[i], pipe: pipeFDs)
                case Int16(POLLHUP):
                    hungUp.append(i)
                default:
                    fail("\(live[i].path): poll returned 0x\(String(fds[i].revents, radix: 16))")
                    return
                }
            }
            for i in hungUp.sorted(by: >) {
                live.remove(at: i)
                fds.remove(at: i)
            }
        }
    }

    /// GET / splice / PUT until the buffer has no complete sub-buffer.
    private func drain(_ b: Buffer, pipe p: [Int32]) {
        while true {
            var cookie: UInt32 = 0
            if lttfs_ioctl_u32(b.fd, UInt(RelayIoctl.getSubbuffer.rawValue), &cookie) != 0 {
                // EAGAIN: nothing complete any more, back to poll.
                if errno != EAGAIN { fail("\(b.path): RELAY_GET_SUBBUF: \(String(cString: strerror(errno)))") }
                return
            }
            var offset: Int64 = 0
            var left = b.subbufferSize
            let start = lseek(b.out, 0, SEEK_END)
            while left > 0 {
                let n = lttfs_splice(b.fd, &offset, p[1], UInt(left), LTTFS_SPLICE_F_MOVE)
                if n <= 0 {
                    fail("\(b.path): splice at offset \(offset) returned \(n)\(n < 0 ? ": " + String(cString: strerror(errno)) : "")")
                    return
                }
                var moved = 0
                while moved < n {
                    let m = lttfs_splice(p[0], nil, b.out, UInt(n - moved), LTTFS_SPLICE_F_MOVE)
                    if m <= 0 {
                        fail("\(b.path): writing the output: \(String(cString: strerror(errno)))")
                        return
                    }
                    moved += m
                }
                left -= n
            }
            // The counters of the sub-buffer header, read back from the
            // output (page cache): events lost and corrupted sub-buffers.
            var header = [UInt8](repeating: 0, count: 68)
            if start >= 0, header.withUnsafeMutableBytes({ pread(b.out, $0.baseAddress, 68, start) }) == 68 {
                account(b.path, header)
            }
            if lttfs_ioctl_u32(b.fd, UInt(RelayIoctl.putSubbuffer.rawValue), &cookie) != 0 {
                if errno == EIO {
                    pushed.add(1, ordering: .relaxed)
                } else {
                    fail("\(b.path): RELAY_PUT_SUBBUF: \(String(cString: strerror(errno)))")
                    return
                }
            }
            bytes.add(b.subbufferSize, ordering: .relaxed)
            subbuffers.add(1, ordering: .relaxed)
        }
    }

    private func account(_ path: String, _ header: [UInt8]) {
        let events = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 60, as: UInt32.self) }
        let corrupted = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 64, as: UInt32.self) }
        lost.withLock { $0[path] = (events, corrupted) }
    }

    func summary(stopped: Bool) -> String {
        let seconds = max(Date().timeIntervalSince(started), 0.001)
        let total = Double(bytes.load(ordering: .relaxed))
        let (events, corrupted) = lost.withLock { $0.values.reduce((UInt64(0), UInt64(0))) { ($0.0 + UInt64($1.events), $0.1 + UInt64($1.corrupted)) } }
        return "\(stopped ? "stopped" : "done"): \(Self.human(total)) in \(subbuffers.load(ordering: .relaxed)) sub-buffers "
            + "from \(buffers.count) buffers, \(Self.human(total / seconds))/s, \(events) events lost, "
            + "\(corrupted) corrupted sub-buffers, \(pushed.load(ordering: .relaxed)) pushed by the writer (EIO)"
    }

    /// 12.3 MiB, 640 KiB, 512 B.
    static func human(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// SIGINT / SIGTERM ask the consumer to stop after the sub-buffer in hand.
final class SignalStop: Sendable {
    private let stop = FlagBox()
    private let waiter: SignalWaiter

    init() {
        let stop = self.stop
        waiter = SignalWaiter(signals: [SIGINT, SIGTERM, SIGHUP]) { _ in stop.set() }
    }

    var requested: Bool { stop.isSet }

    /// Ends the signal thread.
    func release() { waiter.stop() }
}

final class FlagBox: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A live progress line on a terminal.
final class ProgressLine: @unchecked Sendable {
    let consumer: TraceConsumer
    private let thread = PeriodicThread(name: "lttfs-progress", interval: 0.25)
    init(consumer: TraceConsumer) { self.consumer = consumer }

    func start() {
        thread.start { [consumer] in
            let line = consumer.summary(stopped: false).replacingOccurrences(of: "done: ", with: "")
            StandardError.write("\r\u{1B}[K" + line)
        }
    }

    func stop() {
        thread.stop()
        StandardError.write("\r\u{1B}[K")
    }
}
