// ProducerBench MODE THREADS EVENTS LTTFS_BINARY [auto|monotonic] [wait|discard|overwrite] [PRODUCER]
//
// The lttfs side of the LTTng-UST comparison (issue 6): an in-process
// lttfs mount, a trace whose channel has the same buffer memory as the
// UST channel (8 x 256 KiB per CPU), `lttfs consume -n <CPUs>` draining it
// to BENCH_OUTPUT_DIR (else /tmp), and THREADS threads recording EVENTS
// events each of the same
// 32-byte payload (an int and a 28-byte text) through the typed marker,
// with `#record(marker, n, text)` (BENCH_RECORD=call: the bare
// `marker.record(n, text)`, which retains and releases the text).
// MODE "traced" prints ns per event and events lost; MODE "disabled"
// records with `#record` and no trace at all (the disabled-marker cost),
// "disabled-call" with the bare call, "disabled-guarded" with the bare call
// behind `if marker.isRecording`, "disabled-closure" with
// `record { (n, text) }` (arguments formed only when recording), and
// "disabled-static" with the text as a StaticString (a literal: no
// reference counting, like the C tracepoint's char array).
//
// BENCH_PACE_NS (in-process, traced mode): each thread records one event
// per that many ns (compare.sh's paced row: lttfs producers at LTTng-UST's
// full-speed rate), and, as UST's producer, does not catch up after it was
// descheduled.
//
// BENCH_NO_CONSUMER (in-process, flight recorder): no consumer at all, to
// profile the producer alone (perf, valgrind --tool=callgrind).
//
// PRODUCER (traced mode): who records. "in-process" (the default) is this
// process's threads; "swift" is another ProducerBench, in mode "producer"
// (a producer process: LTTProducers, the same typed marker); any other
// value is a program to run as the producer process (compare.sh's C one,
// bench-producer), with THREADS EVENTS and LTTFS_MOUNT set. The producer
// process prints its own ns per event and allocations per event.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFS
import LTTFormat
import LTTRelay
import LTTTrace
import Logging
import LTTProducers
import MallocCounter

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
}

/// Per-thread results, each slot written by its own thread only.
final class Results: @unchecked Sendable {
    private var values: [Double]
    private let lock = NSLock()
    init(_ n: Int) { values = Array(repeating: 0, count: n) }
    func set(_ i: Int, _ v: Double) { lock.lock(); values[i] = v; lock.unlock() }
    var mean: Double { lock.lock(); defer { lock.unlock() }; return values.reduce(0, +) / Double(values.count) }
}

func runBenchmark() throws {
    let arguments = CommandLine.arguments
    guard arguments.count >= 5 else {
        print("usage: ProducerBench traced|disabled|disabled-call|disabled-guarded|disabled-closure|disabled-static|clock THREADS EVENTS LTTFS_BINARY [auto|monotonic] [wait|discard|overwrite] [PRODUCER]")
        exit(2)
    }
    let mode = arguments[1]
    // "disabled-guarded": `if marker.isRecording { record }`; "disabled-call":
    // a bare record call; otherwise `#record`.
    let guarded = mode == "disabled-guarded"
    let closure = mode == "disabled-closure"
    let call = mode == "disabled-call" || ProcessInfo.processInfo.environment["BENCH_RECORD"] == "call"
    let threads = Int(arguments[2])!
    let events = Int(arguments[3])!
    let lttfs = arguments[4]
    LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }

    // The fifth argument: "monotonic" for CLOCK_MONOTONIC; otherwise the
    // default clock (the TSC where the kernel trusts it).
    let traceClock = arguments.count > 5 && arguments[5] == "monotonic" ? TraceClock.monotonic : .preferred
    let tracer = Tracer(traceClock: traceClock)
    let marker = try tracer.marker("bench", "event", "n %d text %s", as: (Int32, String).self)
    let text = "twenty-seven bytes of text."   // 27 bytes + NUL = 28
    if mode == "disabled-static" {
        let literal = try tracer.marker("bench", "literal", "n %d text %s", as: (Int32, StaticString).self)
        print(String(format: "ns_per_event=%.2f", timeDisabled(literal, events: events)))
        return
    }

    let pace = ProcessInfo.processInfo.environment["BENCH_PACE_NS"].flatMap(Double.init) ?? 0
    func record(_ marker: Marker<Int32, String>) -> Double {
        let barrier = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let results = Results(threads)
        for t in 0..<threads {
            Thread {
                // Locals: the loop must not reload captured context per event.
                let localMarker = marker
                let localText = text
                let count = events
                barrier.wait()
                let t0 = DispatchTime.now().uptimeNanoseconds
                if guarded {
                    for i in 0..<count where localMarker.isRecording {
                        localMarker.record(Int32(truncatingIfNeeded: i), localText)
                    }
                } else if closure {
                    for i in 0..<count { localMarker.record { (Int32(truncatingIfNeeded: i), localText) } }
                } else if pace > 0 {
                    // Event i is due `pace` ns after event i - 1 was: UST's
                    // rate on average. A thread that was descheduled
                    // (this VM's hypervisor takes CPU time in stalls of
                    // milliseconds) records its next event at once and
                    // keeps the pace from there, as UST's producer would;
                    // it does not catch up the schedule at full speed, 3x
                    // UST's rate, for as long as it had been away.
                    var due = Double(t0)
                    for i in 0..<count {
                        var now = Double(DispatchTime.now().uptimeNanoseconds)
                        while now < due { now = Double(DispatchTime.now().uptimeNanoseconds) }
                        due = max(due + pace, now)
                        #record(localMarker, Int32(truncatingIfNeeded: i), localText)
                    }
                } else if call {
                    for i in 0..<count { localMarker.record(Int32(truncatingIfNeeded: i), localText) }
                } else {
                    for i in 0..<count { #record(localMarker, Int32(truncatingIfNeeded: i), localText) }
                }
                results.set(t, Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(events))
                done.signal()
            }.start()
        }
        for _ in 0..<threads { barrier.signal() }
        for _ in 0..<threads { done.wait() }
        return results.mean
    }

    if mode == "producer" {
        // A producer process: the server is another ProducerBench.
        let producer = try Producer()
        let remote = try producer.marker("bench", "event", "n %d text %s", as: (Int32, String).self)
        let before = malloc_counter_calls()
        let ns = record(remote)
        let allocations = Double(malloc_counter_calls() - before) / Double(events * threads)
        producer.close()
        print(String(format: "ns_per_event=%.2f allocs_per_event=%.4f", ns, allocations))
        return
    }
    if mode == "clock" {
        print("\(traceClock.name) at \(traceClock.frequency) Hz")
        return
    }
    if mode.hasPrefix("disabled") {
        print(String(format: "ns_per_event=%.2f", record(marker)))
        return
    }

    let mountpoint = "/tmp/lttfs-compare-\(getpid())"
    mkdir(mountpoint, 0o755)
    let server = FileSystemServer(tracer: tracer, mountpoint: mountpoint)
    try server.startInBackground()
    // Where the consumer writes: BENCH_OUTPUT_DIR (compare.sh gives both
    // systems the same one), else /tmp.
    let outputBase = ProcessInfo.processInfo.environment["BENCH_OUTPUT_DIR"] ?? "/tmp"
    let out = outputBase + "/lttfs-compare-out-\(getpid())"
    defer {
        server.shutdown()
        rmdir(mountpoint)
        try? FileManager.default.removeItem(atPath: out)
    }
    try tracer.setupTrace("bench")
    try tracer.updateChannel(trace: "bench", channel: "bench") {
        $0.subbufferSize = 256 * 1024
        $0.subbufferCount = 8
        // "wait" (the default): normal mode that never drops while the
        // consumer drains: a full buffer makes the producer wait (at most a
        // second) for room. "discard": a full buffer loses the event, as
        // LTTng-UST's discard mode does. "overwrite": flight recorder, the
        // writer never waits nor loses, it overwrites the oldest sub-buffer.
        let policy = arguments.count > 6 ? arguments[6] : "wait"
        $0.blockingTimeoutMillis = policy == "wait" ? 1000 : 0
        $0.overwrite = policy == "overwrite"
    }
    try tracer.allocTrace("bench")
    let consumer = Process()
    consumer.executableURL = URL(fileURLWithPath: lttfs)
    // One reader thread per CPU, as one runs lttd -n <CPUs> on an SMP
    // machine: each per-CPU buffer has its own thread.
    let readers = ProcessInfo.processInfo.environment["BENCH_CONSUMER_THREADS"] ?? String(tracer.cpuCount)
    // BENCH_CONSUMER_TRANSPORT: files (lttd's way, through FUSE), shm or
    // auto (the default: the buffers' shared memory).
    let transport = ProcessInfo.processInfo.environment["BENCH_CONSUMER_TRANSPORT"] ?? "auto"
    consumer.arguments = ["consume", "-q", "-n", readers, "--transport", transport, "-c", mountpoint + "/ltt/bench", "-t", out]
    let noConsumer = ProcessInfo.processInfo.environment["BENCH_NO_CONSUMER"] != nil
    if !noConsumer { try consumer.run() }
    // The consumer opens (and maps) every buffer before anything is
    // recorded, as UST's consumer daemon is ready before `lttng start` (and
    // a wait mode producer waits only for a buffer that has a reader).
    let buffers = tracer.trace("bench")!.bufferFiles.map(\.buffer)
    let deadline = Date().addingTimeInterval(30)
    // (A consumer that could not map falls back to the files: with "auto"
    // that would measure the other drain, so it is an error here.)
    while !noConsumer && !buffers.allSatisfy({ $0.hasReader && (transport == "files" || $0.hasMappedReader) }) {
        guard Date() < deadline, consumer.isRunning else {
            if consumer.isRunning { consumer.terminate() }
            consumer.waitUntilExit()
            throw BenchFailure(description: "the consumer did not open (and map) every buffer within 30 s")
        }
        usleep(1000)
    }
    try tracer.startTrace("bench")
    let producerKind = arguments.count > 7 ? arguments[7] : "in-process"
    var ns = 0.0, extra = ""
    if producerKind == "in-process" {
        ns = record(marker)
    } else {
        // Another process records: this one serves (mount, consumer).
        let producer = Process()
        producer.executableURL = URL(fileURLWithPath: producerKind == "swift" ? CommandLine.arguments[0] : producerKind)
        producer.arguments = producerKind == "swift" ? ["producer", String(threads), String(events), lttfs] : [String(threads), String(events)]
        producer.environment = ProcessInfo.processInfo.environment.merging(["LTTFS_MOUNT": mountpoint]) { $1 }
        let output = Pipe()
        producer.standardOutput = output
        try producer.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        producer.waitUntilExit()
        guard producer.terminationStatus == 0,
              let value = said.split(separator: " ").first(where: { $0.hasPrefix("ns_per_event=") })
                  .flatMap({ Double($0.dropFirst("ns_per_event=".count)) }) else {
            // Thrown, not exit(1): the deferred shutdown unmounts.
            throw BenchFailure(description: "the producer process failed: \(said)")
        }
        ns = value
        extra = said.split(separator: " ").filter { $0.hasPrefix("allocs_per_event=") }
            .map { " " + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined()
    }
    try tracer.stopTrace("bench")
    let trace = try tracer.destroyTrace("bench")
    if !noConsumer { consumer.waitUntilExit() }
    let counters = trace.channels["bench"]!.buffers.map(\.counters)
    let lost = counters.reduce(0) { $0 + $1.eventsLost }
    let written = counters.reduce(0) { $0 + $1.eventsWritten }
    print(String(format: "ns_per_event=%.2f lost=%llu written=%llu", ns, lost, written) + extra)
}

/// One thread recording `events` events into a marker no trace records.
func timeDisabled(_ marker: Marker<Int32, StaticString>, events: Int) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    for i in 0..<events { marker.record(Int32(truncatingIfNeeded: i), "twenty-seven bytes of text.") }
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(events)
}

do {
    try runBenchmark()
} catch {
    FileHandle.standardError.write(Data("ProducerBench: \(error)\n".utf8))
    exit(1)
}
