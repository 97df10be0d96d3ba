// Records a request event per iteration into every active trace of the
// lttfs mount at $LTTFS_MOUNT (else /mnt/ltt), from its own process.
#if canImport(Glibc)
import Glibc
#endif
import LTTProducers
import LTTTrace   // #record

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
do {
    let producer = try Producer()
    let request = try producer.marker("app", "request", "id %lu pid %d path %s", as: (UInt64, Int32, String).self)
    let done = try producer.marker("app", "done", "requests %u", as: UInt32.self)
    let pid = getpid()
    for i in 0..<count {
        #record(request, UInt64(i), pid, i % 2 == 1 ? "/index.html" : "/api")
    }
    #record(done, UInt32(count))
    producer.close()
    print("\(count) requests recorded")
} catch {
    print("producer: \(error)")
    exit(1)
}
