// Drain throughput of a full trace of 1 MiB sub-buffers, lttd's way
// (GET, splice at an explicit offset into a pipe, PUT) and with read(2),
// next to a trivial FUSE server serving the same number of bytes from
// memory, in one run, interleaved A B A B. Issue 4's goal: lttfs within
// 1.5x of that ceiling on each path.
#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation
import LTTConsumer
import LTTFS
import LTTFormat
import LTTRelay
import LTTTrace

let subbufferSize = 1 << 20
let subbufferCount = 64
let rounds = Int(CommandLine.arguments.dropFirst().first ?? "5") ?? 5   // (or serve-trivial MOUNTPOINT)
let total = subbufferSize * (subbufferCount - 1)   // what one full trace drains

func mountPoint(_ tag: String) -> String {
    let p = "/tmp/lttfs-bench-\(tag)-\(getpid())"
    mkdir(p, 0o755)
    return p
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

func runBenchmark() throws {
    let devNull = open("/dev/null", O_WRONLY)
    var pipeFDs: [Int32] = [0, 0]
    _ = pipe(&pipeFDs)
    _ = lttfs_set_pipe_size(pipeFDs[1], 1 << 20)
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: subbufferSize, alignment: 4096)

    /// splice `length` bytes at `offset` from fd through the pipe to /dev/null.
    func spliceOut(_ fd: Int32, offset start: Int64, length: Int) {
        var offset = start
        var left = length
        while left > 0 {
            let n = lttfs_splice(fd, &offset, pipeFDs[1], UInt(left), LTTFS_SPLICE_F_MOVE)
            precondition(n > 0, "splice returned \(n) errno \(errno)")
            var moved = 0
            while moved < n { moved += lttfs_splice(pipeFDs[0], nil, devNull, UInt(n - moved), LTTFS_SPLICE_F_MOVE) }
            left -= n
        }
    }

    func readOut(_ fd: Int32, offset: Int, length: Int) {
        var done = 0
        while done < length {
            let n = pread(fd, scratch + done, length - done, off_t(offset + done))
            precondition(n > 0, "read returned \(n)")
            done += n
        }
    }

    // lttfs: an in-process server; each round fills a fresh trace to the brim.
    let lttfsMount = mountPoint("lttfs")
    let tracer = Tracer(cpuCount: 1)
    let blob = try tracer.marker("bench", "blob", "data %s", as: String.self)
    let server = FileSystemServer(tracer: tracer, mountpoint: lttfsMount)
    try server.startInBackground()
    let trivialMount = mountPoint("trivial")
    let trivial = TrivialServer(size: total, mountpoint: trivialMount)
    trivial.start()
    defer {
        server.shutdown()
        trivial.stop()
        rmdir(lttfsMount)
        rmdir(trivialMount)
    }

    func fillTrace(_ name: String) throws -> String {
        try tracer.setupTrace(name)
        try tracer.updateChannel(trace: name, channel: "bench") {
            $0.subbufferSize = UInt64(subbufferSize)
            $0.subbufferCount = UInt64(subbufferCount)
        }
        try tracer.allocTrace(name)
        try tracer.startTrace(name)
        let payload = String(repeating: "x", count: 4000)
        let buffer = tracer.trace(name)!.channels["bench"]!.buffers[0]
        while buffer.counters.eventsLost == 0 { blob.record(payload) }
        try tracer.stopTrace(name)
        return lttfsMount + "/ltt/\(name)/bench_0"
    }

    /// Drains a full lttfs buffer file; returns seconds.
    func drainLTTFS(_ path: String, splice: Bool) -> (Double, Int) {
        let fd = open(path, O_RDONLY)
        precondition(fd >= 0)
        defer { close(fd) }
        var bytes = 0
        let t = seconds {
            var cookie: UInt32 = 0
            while lttfs_ioctl_u32(fd, UInt(RelayIoctl.getSubbuffer.rawValue), &cookie) == 0 {
                if splice { spliceOut(fd, offset: 0, length: subbufferSize) } else { readOut(fd, offset: 0, length: subbufferSize) }
                precondition(lttfs_ioctl_u32(fd, UInt(RelayIoctl.putSubbuffer.rawValue), &cookie) == 0)
                bytes += subbufferSize
            }
        }
        return (t, bytes)
    }

    /// Drains a full, destroyed trace with the consumer library (what
    /// `lttfs consume` runs) into a file on /dev/shm: through the files
    /// (poll, GET, splice, the header read back, PUT) or through shared
    /// memory (GET, write from the ring, PUT); returns seconds and the
    /// bytes it moved.
    func drainWithConsumer(_ name: String, transport: TraceConsumer.Transport) throws -> (Double, Int) {
        let out = "/dev/shm/lttfs-bench-consume-\(getpid())-\(name)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let consumer = try TraceConsumer(traceDirectory: lttfsMount + "/ltt/\(name)", outputDirectory: out, transport: transport)
        try tracer.destroyTrace(name)   // its buffer files stay for the consumer that holds them
        var outcome = TraceConsumer.Outcome.stopped
        let t = seconds { outcome = consumer.run(threads: 1) }
        precondition(outcome == .drained && consumer.failures.isEmpty, "consumer: \(outcome) \(consumer.failures)")
        return (t, consumer.progress.bytes)
    }

    func drainTrivial(splice: Bool) -> Double {
        let fd = open(trivialMount + "/data", O_RDONLY)
        precondition(fd >= 0)
        defer { close(fd) }
        return seconds {
            for i in 0..<(subbufferCount - 1) {
                if splice { spliceOut(fd, offset: Int64(i * subbufferSize), length: subbufferSize) } else {
                    readOut(fd, offset: i * subbufferSize, length: subbufferSize)
                }
            }
        }
    }

    func memcpyRate() -> Double {
        let source = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 4096)
        memset(source, 1, total)
        defer { source.deallocate() }
        return seconds {
            for i in 0..<(subbufferCount - 1) { memcpy(scratch, source + i * subbufferSize, subbufferSize) }
        }
    }

    var results: [String: [Double]] = [:]
    for round in 0..<rounds {
        for splice in [true, false] {
            let path = try fillTrace("r\(round)\(splice ? "s" : "r")")
            let (t, bytes) = drainLTTFS(path, splice: splice)
            precondition(bytes == total, "drained \(bytes) of \(total)")
            try tracer.destroyTrace("r\(round)\(splice ? "s" : "r")")
            results["lttfs \(splice ? "splice" : "read")", default: []].append(Double(total) / t / 1e6)
            results["trivial \(splice ? "splice" : "read")", default: []].append(Double(total) / drainTrivial(splice: splice) / 1e6)
        }
        for (key, transport) in [("files", TraceConsumer.Transport.bufferFiles), ("shm", .sharedMemory)] {
            _ = try fillTrace("r\(round)c\(key)")
            let (t, bytes) = try drainWithConsumer("r\(round)c\(key)", transport: transport)
            precondition(bytes >= total, "the consumer drained \(bytes) of \(total)")
            results["consume \(key)", default: []].append(Double(bytes) / t / 1e6)
        }
        results["memcpy", default: []].append(Double(total) / memcpyRate() / 1e6)
    }

    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
    print("drain of \(subbufferCount - 1) x 1 MiB sub-buffers, \(rounds) rounds interleaved, MB/s (median, min, max)")
    func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
    print(pad("path", 16) + "   median      min      max  vs the trivial FUSE server")
    for path in ["splice", "read"] {
        for who in ["lttfs", "trivial"] {
            let v = results["\(who) \(path)"]!
            let ratio = who == "lttfs" ? String(format: "%.2fx its time", median(results["trivial \(path)"]!) / median(v)) : ""
            print(pad("\(who) \(path)", 16) + String(format: " %8.0f %8.0f %8.0f  ", median(v), v.min()!, v.max()!) + ratio)
        }
    }
    for (key, what) in [("files", "the library through the files: poll, splice to a file, header read back"),
                        ("shm", "the library through shared memory: write from the ring")] {
        let c = results["consume \(key)"]!
        print(pad("consume \(key)", 16) + String(format: " %8.0f %8.0f %8.0f  ", median(c), c.min()!, c.max()!)
            + String(format: "%.2fx its time (", median(results["trivial splice"]!) / median(c)) + what + ")")
    }
    let m = results["memcpy"]!
    print(pad("memcpy", 16) + String(format: " %8.0f %8.0f %8.0f", median(m), m.min()!, m.max()!))

}

/// `DrainBench serve-trivial MOUNTPOINT`: serve the trivial server there
/// until SIGINT or SIGTERM (Benchmarks/write-event.sh's write peer).
func serveTrivial(at mountpoint: String) {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &signals, nil)   // before the workers start: they inherit it
    let server = TrivialServer(size: 4096, mountpoint: mountpoint)
    server.start()
    var signal: Int32 = 0
    sigwait(&signals, &signal)
    server.stop()
}

if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "serve-trivial" {
    serveTrivial(at: CommandLine.arguments[2])
} else {
    try runBenchmark()
}
