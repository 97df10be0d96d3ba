// The tracer's in-process API next to its baselines, in one run.
//
// disabled:  a registered marker with no active trace, through #record
//            (one load and a branch) and the bare record call (which
//            retains and releases its String first), next to an empty loop
//            iteration.
// record:    #record and Marker<Int32, String>.record of an int and a
//            28-byte text into an active flight-recorder trace, next to the
//            engine's own record of the same 32 bytes (issue 2's benchmark).
// clock:     the trace clocks: CLOCK_MONOTONIC through clock_gettime, the
//            same computed from the TSC in the process (the `monotonic`
//            trace clock where the TSC is trustworthy), and rdtsc (the
//            default where the kernel keeps time with the TSC).
import LTTSystem
import Benchmark
import CLinuxSupport
import LTTFormat
import LTTRelay
import LTTTrace

let events = 1_000_000

@inline(never) func sink<T>(_ value: T) { blackHole(value) }

final class Fixture: @unchecked Sendable {
    let tracer = Tracer(cpuCount: RelayChannel.configuredCPUCount)
    let marker: Marker<Int32, String>
    let idle: Marker<Int32, String>
    init() {
        marker = try! tracer.marker("bench", "event", "n %d text %s", as: (Int32, String).self)
        idle = try! tracer.marker("idle", "event", "n %d text %s", as: (Int32, String).self)
        try! tracer.setupTrace("bench")
        try! tracer.updateChannel(trace: "bench", channel: "bench") {
            $0.overwrite = true
            $0.subbufferSize = 1 << 16
            $0.subbufferCount = 8
        }
        try! tracer.updateChannel(trace: "bench", channel: "idle") { $0.enabled = false }
        try! tracer.allocTrace("bench")
        try! tracer.startTrace("bench")
    }
}

let text = "twenty-seven bytes of text."   // 27 + NUL = 28 bytes

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 20
    )

    Benchmark("baseline: empty loop iteration (ns/event)") { benchmark in
        for i in 0..<events { sink(i) }
    }

    Benchmark("tracer: disabled marker, #record, no active trace (ns/event)") { benchmark in
        let f = Fixture()
        let (idle, text) = (f.idle, text)
        benchmark.startMeasurement()
        for i in 0..<events { #record(idle, Int32(truncatingIfNeeded: i), text) }
    }

    Benchmark("tracer: disabled marker, bare record call, no active trace (ns/event)") { benchmark in
        let f = Fixture()
        benchmark.startMeasurement()
        for i in 0..<events { f.idle.record(Int32(truncatingIfNeeded: i), text) }
    }

    Benchmark("tracer: #record int + 28-byte text (ns/event)") { benchmark in
        let f = Fixture()
        let (marker, text) = (f.marker, text)
        benchmark.startMeasurement()
        for i in 0..<events { #record(marker, Int32(truncatingIfNeeded: i), text) }
    }

    Benchmark("tracer: Marker.record int + 28-byte text (ns/event)") { benchmark in
        let f = Fixture()
        benchmark.startMeasurement()
        for i in 0..<events { f.marker.record(Int32(truncatingIfNeeded: i), text) }
    }

    Benchmark("baseline: engine record of the same 32 bytes (ns/event)") { benchmark in
        let f = Fixture()
        let buffer = f.tracer.trace("bench")!.channels["bench"]!.currentBuffer
        benchmark.startMeasurement()
        for _ in 0..<events {
            _ = buffer.record(eventID: 0, dataSize: 32, largestAlign: 4) { p in
                p.storeBytes(of: 0, as: UInt64.self)
            }
        }
    }

    Benchmark("clock: CLOCK_MONOTONIC (ns/read)") { benchmark in
        for _ in 0..<events { sink(MonotonicClock.now()) }
    }

    Benchmark("clock: CLOCK_MONOTONIC from the TSC (ns/read)") { benchmark in
        _ = MonotonicClock.tracksWithTSC
        for _ in 0..<events { sink(MonotonicClock.fastNow()) }
    }

    Benchmark("clock: rdtsc (ns/read)") { benchmark in
        for _ in 0..<events { sink(lttfs_rdtsc()) }
    }
}
