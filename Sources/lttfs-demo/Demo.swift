// lttfs-demo: a Swift program that traces itself with lttfs.
//
// It mounts its own lttfs tree at the directory given, registers two
// markers and records from worker threads whenever a trace is active.
// Everything else (creating traces, consuming, decoding) happens from the
// outside, through the files, exactly as with the kernel tracer:
//
//   lttfs-demo /tmp/ltt &
//   lttfs ctl --mount /tmp/ltt -C -w /tmp/trace demo
//   ...
//   lttfs ctl --mount /tmp/ltt -D demo
//   kill %1
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTFS
import LTTTrace
import Logging

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: lttfs-demo MOUNTPOINT [WORKERS] [EVENTS_PER_SECOND]\n".utf8))
    exit(2)
}
let mountpoint = arguments[1]
let workers = arguments.count > 2 ? Int(arguments[2]) ?? 2 : 2
let rate = arguments.count > 3 ? Double(arguments[3]) ?? 2000 : 2000

// Before any thread starts: termination signals go to the server's
// signal thread, which unmounts, whichever thread the kernel picks.
FileSystemServer.blockTerminationSignals()
LoggingSystem.bootstrap(StreamLogHandler.standardError)
let tracer = Tracer()
// Register once; then record typed values with no allocation.
let request = try tracer.marker("demo", "request", "worker %u seq %lu latency_ns %llu path %s",
                                as: (UInt32, UInt64, UInt64, String).self)
let heartbeat = try tracer.marker("demo", "heartbeat", "uptime_ms %lu", as: UInt64.self)

let server = FileSystemServer(tracer: tracer, mountpoint: mountpoint)
do {
    try server.mount()
} catch {
    FileHandle.standardError.write(Data("lttfs-demo: \(error)\n".utf8))
    exit(1)
}

let started = Date()
let paths = ["/", "/index.html", "/api/items", "/api/items/42", "/static/app.js"]
for worker in 0..<workers {
    Thread {
        var seq: UInt64 = 0
        let pause = useconds_t(1_000_000 / max(1, rate / Double(workers)))
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let path = paths[Int(seq) % paths.count]
            request.record(UInt32(worker), seq, DispatchTime.now().uptimeNanoseconds - t0, path)
            seq += 1
            usleep(pause)
        }
    }.start()
}
Thread {
    while true {
        heartbeat.record(UInt64(Date().timeIntervalSince(started) * 1000))
        sleep(1)
    }
}.start()

// Serve until SIGINT/SIGTERM, then unmount cleanly.
exit(server.runUntilSignalled() == 0 ? 0 : 1)
