#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import Foundation
@testable import LTTSystem
import Synchronization
import Testing

/// `MonotonicClock.fastNow()` (MonotonicFromTSC.h) against clock_gettime:
/// every reading between the clock_gettime readings around it (give or
/// take `tolerance`), each thread's readings in order, across many
/// re-anchorings, from two threads at once, and after an idle time.
@Suite("CLOCK_MONOTONIC from the TSC", .serialized)
struct MonotonicFromTSCTests {
    /// How far a reading may be from clock_gettime's: the line's error is
    /// tens to hundreds of ns; this leaves room for a VM's noise.
    static let tolerance: UInt64 = 2_000

    /// Reads `fastNow` between two `now` until `enough()`, or 5 s (then
    /// fails). Returns the largest distance outside [before, after] and the
    /// largest step back between consecutive readings.
    static func sample(until enough: () -> Bool) -> (outside: UInt64, back: UInt64, readings: Int) {
        var (outside, back, readings): (UInt64, UInt64, Int) = (0, 0, 0)
        var previous: UInt64 = 0
        let limit = MonotonicClock.now() + 5_000_000_000
        while !enough() {
            let before = MonotonicClock.now()
            let reading = MonotonicClock.fastNow()
            let after = MonotonicClock.now()
            readings += 1
            if reading < before { outside = max(outside, before - reading) }
            if reading > after { outside = max(outside, reading - after) }
            if reading < previous { back = max(back, previous - reading) }
            previous = reading
            if after > limit { Issue.record("the clock did not re-anchor in 5 s"); break }
        }
        return (outside, back, readings)
    }

    @Test("fastNow stays with clock_gettime through re-anchorings, on two threads, in order on each")
    func tracksClockMonotonic() throws {
        guard MonotonicClock.tracksWithTSC else {
            // Not computed from the TSC here: it is clock_gettime itself.
            let before = MonotonicClock.now()
            let reading = MonotonicClock.fastNow()
            #expect(reading >= before && reading <= MonotonicClock.now())
            #expect(MonotonicClock.fastNowAnchors == 0)
            return
        }
        let start = MonotonicClock.fastNowAnchors
        let target = start + 8   // 80 ms of re-anchoring, shared by both threads
        let other = Mutex<(outside: UInt64, back: UInt64, readings: Int)?>(nil)
        let thread = Thread {
            let result = Self.sample { MonotonicClock.fastNowAnchors >= target }
            other.withLock { $0 = result }
        }
        thread.start()
        let mine = Self.sample { MonotonicClock.fastNowAnchors >= target }
        let limit = MonotonicClock.now() + 10_000_000_000
        while other.withLock({ $0 }) == nil && MonotonicClock.now() < limit { sched_yield() }
        let theirs = try #require(other.withLock { $0 })
        for (name, result) in [("this thread", mine), ("the other thread", theirs)] {
            #expect(result.readings > 1000, "\(name)")
            #expect(result.outside <= Self.tolerance, "\(name): \(result.outside) ns off clock_gettime")
            // A reading taken from clock_gettime while another thread
            // re-anchored may lead the new line by that line's error.
            #expect(result.back <= 200, "\(name): went back \(result.back) ns")
        }
    }

    /// Builds Tests/LTTClockCheck/clock-check.c with the library's C source
    /// and runs it in `mode`: what a test process cannot do to itself (a
    /// fork while it re-anchors, a suspend, the kernel leaving the TSC). Its
    /// exit status: 0 held, 2 the kernel is not on the TSC, 3 hung, 4 went
    /// back, 5 too far off, 6 retired wrongly, 7 changed errno.
    static func clockCheck(_ mode: String, _ arguments: String...) throws -> Int32 {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let program = NSTemporaryDirectory() + "lttfs-clock-check-\(getpid())-\(mode)"
        defer { unlink(program) }
        let built = try ProcessControl.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror",
                                            "-I", repository + "/Sources/CLinuxSupport/include",
                                            "-o", program, repository + "/Tests/LTTClockCheck/clock-check.c",
                                            repository + "/Sources/CLinuxSupport/MonotonicFromTSC.c", "-ldl", "-lpthread"])
        try #require(built == 0, "cc failed")
        return try ProcessControl.run([program, mode] + arguments)
    }

    /// clock-check held (0); 2 (it found the kernel off the TSC, so it
    /// checked nothing) only where this process does not track the TSC
    /// either (which also asks for an invariant TSC).
    static func expectHeld(_ status: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(status == 0 || (status == 2 && !MonotonicClock.tracksWithTSC),
                "clock-check exit \(status)", sourceLocation: sourceLocation)
    }

    @Test("a child forked while a thread re-anchored (its lock held, a slot's seq odd, its pair half set) reads a clock that goes on, in order, close to clock_gettime")
    func forkDuringReanchoring() throws {
        let status = try Self.clockCheck("fork")
        Self.expectHeld(status)
    }

    @Test("after a suspend (the TSC ran on, CLOCK_MONOTONIC did not), the clock is at clock_gettime's at once, not crawling nor ahead")
    func suspend() throws {
        let status = try Self.clockCheck("suspend")
        Self.expectHeld(status)
    }

    @Test("when the kernel leaves the TSC for another clocksource, the line retires within two seconds and the clock goes on from clock_gettime, in order; a clocksource file it cannot read stops nothing")
    func kernelLeavesTSC() throws {
        let source = NSTemporaryDirectory() + "lttfs-clocksource-\(getpid())"
        defer { unlink(source) }
        let status = try Self.clockCheck("leave", source)
        Self.expectHeld(status)
    }

    @Test("after an idle time of many periods, the first reading is clock_gettime's, not the old slope's")
    func idleTime() {
        guard MonotonicClock.tracksWithTSC else { return }
        _ = MonotonicClock.fastNow()
        let anchors = MonotonicClock.fastNowAnchors
        // Idle: no reading for 30 periods.
        MonotonicClock.sleep(nanoseconds: 300_000_000)
        let before = MonotonicClock.now()
        let reading = MonotonicClock.fastNow()
        let after = MonotonicClock.now()
        #expect(MonotonicClock.fastNowAnchors > anchors, "the first reading re-anchors")
        #expect(reading + Self.tolerance >= before && reading <= after + Self.tolerance,
                "\(Int64(bitPattern: reading &- before)) ns from the clock_gettime before it")
    }
}
