// The relay engine's hot path next to its floor, in one run.
//
// floor:   what any locked ring must pay per event: an uncontended
//          lock/unlock (the engine's spin lock), a read of the engine's
//          clock (the TSC where the kernel trusts it) and a 32-byte copy.
// engine:  RelayBuffer.record of a 32-byte payload (reserve + header +
//          payload + commit, sub-buffer switches included), flight-recorder
//          mode so that no consumer is needed.
// x2:      the same with 2 threads, each on its own CPU's buffer, reported
//          per event per thread.
//
// Goal (issue 2): engine <= 2x floor, and 0 mallocs per event.
import Benchmark
import Foundation
import LTTFormat
import LTTRelay
import LTTTrace
import Synchronization

let eventsPerThread = 1_000_000
let clock = TraceClock.preferred

func makeChannel() -> RelayChannel {
    let geometry = try! RelayGeometry(subbufferSize: 1 << 16, subbufferCount: 8)
    return try! RelayChannel(name: "bench", geometry: geometry, overwrite: true,
                        cpuCount: RelayChannel.configuredCPUCount,
                        trace: TraceHeaderFields(startTSC: clock.now()), clock: clock)
}

@inline(never)
func recordOne(_ buffer: RelayBuffer, _ payload: UnsafeRawPointer) {
    _ = buffer.record(eventID: 3, dataSize: 32, largestAlign: 8) { p in
        p.copyMemory(from: payload, byteCount: 32)
    }
}

final class Floor: @unchecked Sendable {
    // The engine's lock, around its clock read and a 32-byte store.
    // Padded so that two floors never share a cache line.
    let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    let mapping = try! RingMapping.create(name: "floor", geometry: try! RelayGeometry(subbufferSize: 4096, subbufferCount: 2),
                                          overwrite: false, cpu: 0)
    lazy var lock = RelayLock(control: mapping.control)
    let jammed = Atomic<UInt64>(0)
    var position: UInt64 = 0
    let padding2: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    let destination = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
    @inline(never)
    func one(_ payload: UnsafeRawPointer) {
        _ = lock.lock(jammed: jammed, recoverDead: false)
        let t = clock.now()
        (destination + Int(position & 2047)).copyMemory(from: payload, byteCount: 32)
        position &+= t & 1 &+ 32
        lock.unlock()
    }
}

/// Runs `body(threadIndex)` on `threads` threads started together, and
/// waits for all of them.
func inParallel(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    let start = DispatchSemaphore(value: 0)
    for i in 0..<threads {
        Thread {
            start.wait()
            body(i)
            done.signal()
        }.start()
    }
    for _ in 0..<threads { start.signal() }
    for _ in 0..<threads { done.wait() }
}

nonisolated(unsafe) let payload: UnsafeRawPointer = {
    let p = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
    for i in 0..<32 { p.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
    return UnsafeRawPointer(p)
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 20
    )

    Benchmark("floor: lock + clock + 32-byte copy, 1 thread (ns/event)") { benchmark in
        let floor = Floor()
        benchmark.startMeasurement()
        for _ in 0..<eventsPerThread { floor.one(payload) }
    }

    Benchmark("engine: record 32-byte event, 1 thread (ns/event)") { benchmark in
        let channel = makeChannel()
        let buffer = channel.currentBuffer
        benchmark.startMeasurement()
        for _ in 0..<eventsPerThread { recordOne(buffer, payload) }
    }

    Benchmark("floor: lock + clock + 32-byte copy, 2 threads (ns/event/thread)") { benchmark in
        let floors = [Floor(), Floor()]
        benchmark.startMeasurement()
        inParallel(threads: 2) { i in
            for _ in 0..<eventsPerThread { floors[i].one(payload) }
        }
    }

    Benchmark("engine: record 32-byte event, 2 threads (ns/event/thread)") { benchmark in
        let channel = makeChannel()
        benchmark.startMeasurement()
        inParallel(threads: 2) { _ in
            for _ in 0..<eventsPerThread { recordOne(channel.currentBuffer, payload) }
        }
    }
}
