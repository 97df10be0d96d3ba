// What the consumer's tests need besides a mount (LTTMountTestSupport):
// output paths, waiting for observable state, the control files read back.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import LTTConsumer
import LTTFS
import LTTMountTestSupport
import LTTSystem
import LTTTestSupport
import LTTTrace

/// A fresh path under /tmp (not created), removed by `remove()`.
struct TemporaryPath {
    let path = NSTemporaryDirectory() + "lttfs-consumer-out-" + UUID().uuidString
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// `TraceConsumer.run` on a thread of its own.
final class BackgroundRun: Sendable {
    let consumer: TraceConsumer
    private let outcome = Locked<TraceConsumer.Outcome?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(_ consumer: TraceConsumer, threads: Int) {
        self.consumer = consumer
        let thread = Thread { [outcome, finished] in
            let result = consumer.run(threads: threads)
            outcome.withLock { $0 = result }
            finished.signal()
        }
        thread.name = "consumer-test-run"
        thread.start()
    }

    /// The outcome, or nil if `run` has not returned within `seconds`.
    func wait(seconds: Double = 30) -> TraceConsumer.Outcome? {
        if let done = outcome.withLock({ $0 }) { return done }
        guard finished.wait(timeout: .now() + seconds) == .success else { return nil }
        return outcome.withLock { $0 }
    }

    /// Ends the run however the test went (stop, then wait for it).
    func end() {
        consumer.stop()
        _ = wait(seconds: 30)
    }
}

/// One buffer's counters in a trace's `stats` control file.
func statsRows(_ stats: String) -> [String: [String: Int]] {
    let lines = stats.split(separator: "\n")
    guard let header = lines.first(where: { $0.hasPrefix("buffer") })?.split(separator: " ") else { return [:] }
    var rows: [String: [String: Int]] = [:]
    for line in lines where !line.hasPrefix("buffer") && !line.hasPrefix("trace ") && !line.contains(":") {
        let cells = line.split(separator: " ")
        guard cells.count == header.count else { continue }
        var row: [String: Int] = [:]
        for (name, value) in zip(header.dropFirst(), cells.dropFirst()) { row[String(name)] = Int(value) }
        rows[String(cells[0])] = row
    }
    return rows
}

/// A column of a trace's stats file summed over its buffers.
func statsTotal(_ m: TestMount, _ trace: String, _ column: String) -> Int? {
    guard let text = try? String(contentsOfFile: m.ltt + "/control/\(trace)/stats", encoding: .utf8) else { return nil }
    let rows = statsRows(text)
    guard !rows.isEmpty else { return nil }
    return rows.values.reduce(0) { $0 + ($1[column] ?? 0) }
}

/// Descriptors open in this process now.
func openDescriptors() -> [String: String] {
    var result: [String: String] = [:]
    for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
        result[fd] = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)) ?? "?"
    }
    return result
}

