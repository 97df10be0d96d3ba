// lttfs-alloc-check: heap allocations per event on every path that records
// into a trace, counted on the recording thread (CAllocCounter), for the
// tests (AllocationTests) to require none.
//
// Each path records 100 events first (a thread's first event registers it
// with RCU, and so on), then EVENTS more, counted. Prints one line per path:
// "PATH allocations=N events=EVENTS", then "available=0|1" (0: a
// sanitizer build, where nothing was counted).
#if canImport(Glibc)
import Glibc
#endif
import CAllocCounter
import CLTTProducer
import LTTProducerC
import LTTFormat
import LTTTrace

/// A value only its `TraceValue` methods know how to encode: the pack walk.
struct Celsius: TraceValue {
    var degrees: Int16
    var traceInteger: UInt64 { UInt64(bitPattern: Int64(degrees)) }
}

/// Allocations `record` makes on this thread in `events` calls, after 100
/// calls not counted.
func allocations(_ events: Int, _ record: (Int) -> Void) -> UInt64 {
    for i in 0..<100 { record(i) }
    let before = alloc_counter_thread_calls()
    for i in 0..<events { record(i) }
    return alloc_counter_thread_calls() &- before
}

let events = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 10_000 : 10_000
let tracer = Tracer(cpuCount: 1)
do {
    let marker = try tracer.marker("alloc", "typed", "n %d text %s", as: (Int32, String).self)
    let walked = try tracer.marker("alloc", "walked", "n %d c %hd", as: (Int32, Celsius).self)
    let dynamic = try tracer.marker("alloc", "dynamic", "n %d text %s", as: (Int32, String).self).core
    // A shape the C path has no code made for (a short): the loop over the slots.
    let slotted = try tracer.register(channel: "alloc", name: "slotted", format: "n %d text %s c %hd")
    try tracer.setupTrace("t")
    // A flight recorder: the buffer never fills, no event is refused.
    try tracer.updateChannel(trace: "t", channel: "alloc") { $0.overwrite = true }
    try tracer.updateChannel(trace: "t", channel: Metadata.userspaceChannel) { $0.overwrite = true }
    try tracer.allocTrace("t")
    try tracer.startTrace("t")
    // A heap String (longer than 15 bytes), as most are.
    let text = String(repeating: "heap text ", count: 3)
    let arguments: [TraceArgument] = [.integer(7), .string(text)]
    let line = Array("a write_event line".utf8)
    // The C library's arguments: an integer, a char pointer (and a short).
    let cText = strdup(text)!
    let values = UnsafeMutablePointer<lttfs_value>.allocate(capacity: 3)
    defer { free(cText); values.deallocate() }
    var counts: [(String, UInt64)] = []
    // C calls that did not record (a path that records nothing allocates
    // nothing either: it must not pass for one that records).
    var cFailures = 0
    counts.append(("#record", allocations(events) { #record(marker, Int32(truncatingIfNeeded: $0), text) }))
    counts.append(("record(values)", allocations(events) { marker.record(Int32(truncatingIfNeeded: $0), text) }))
    counts.append(("record{closure}", allocations(events) { i in marker.record { (Int32(truncatingIfNeeded: i), text) } }))
    counts.append(("pack-walk", allocations(events) { walked.record(Int32(truncatingIfNeeded: $0), Celsius(degrees: 3)) }))
    counts.append(("arguments", allocations(events) { _ in dynamic.record(arguments: arguments) }))
    counts.append(("write_event", allocations(events) { _ in
        line.withUnsafeBytes { _ = try? tracer.writeEvent($0) }
    }))
    counts.append(("c-library", allocations(events) { i in
        values[0].integer = UInt64(i)
        values[1].string = UnsafePointer(cText)
        values[1].length = UInt64(strlen(cText))
        if lttfsRecordValues(OpaquePointer(Unmanaged.passUnretained(dynamic).toOpaque()), values, 2) != 0 {
            cFailures += 1
        }
    }))
    counts.append(("c-library-slots", allocations(events) { i in
        values[0].integer = UInt64(i)
        values[1].string = UnsafePointer(cText)
        values[1].length = UInt64(strlen(cText))
        values[2].integer = 3
        if lttfsRecordValues(OpaquePointer(Unmanaged.passUnretained(slotted).toOpaque()), values, 3) != 0 {
            cFailures += 1
        }
    }))
    try tracer.stopTrace("t")
    let trace = try tracer.destroyTrace("t")
    let written = trace.channels.values.flatMap(\.buffers).reduce(0) { $0 + $1.counters.eventsWritten }
    for (path, count) in counts { print("\(path) allocations=\(count) events=\(events)") }
    print("written=\(written) available=\(alloc_counter_available())")
    if cFailures > 0 {
        print("lttfs-alloc-check: \(cFailures) C calls did not record their event")
        exit(1)
    }
} catch {
    print("lttfs-alloc-check: \(error)")
    exit(1)
}
