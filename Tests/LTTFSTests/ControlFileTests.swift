import Foundation
import LTTTestSupport
import LTTMountTestSupport
import Testing
import LTTReader
import LTTTrace

@Suite("Control files: the input rules, the errno table, nothing lost")
struct ControlFileTests {
    @Test("every row of the errno table, each refusal logged, and the trace still records everything afterwards")
    func errnoTable() throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let ltt = server.ltt
        let w = { (file: String, text: String) in writeControl(ltt + "/" + file, text) }

        #expect(w("setup_trace", "good\n") == 0)
        #expect(w("control/good/alloc", "1\n") == 0)
        #expect(w("control/good/enabled", "1\n") == 0)
        #expect(w("write_event", "before the refusals\n") == 0)

        let refusals: [(String, String, Int32)] = [
            ("setup_trace", "\n", EINVAL),                                  // empty name
            ("setup_trace", "a/b\n", EINVAL),                               // '/'
            ("setup_trace", String(repeating: "n", count: 256) + "\n", EINVAL),  // > NAME_MAX
            ("setup_trace", "good\n", EEXIST),
            ("destroy_trace", "missing\n", ENOENT),
            ("control/good/channel/userspace/subbuf_num", "8\n", EBUSY),    // after alloc
            ("control/good/alloc", "1\n", EBUSY),                           // alloc twice
            ("control/good/enabled", "maybe\n", EINVAL),
            ("control/good/alloc", "0\n", EINVAL),
        ]
        #expect(w("setup_trace", "fresh\n") == 0)
        let fresh: [(String, String, Int32)] = [
            ("control/fresh/channel/userspace/subbuf_num", "abc\n", EINVAL),     // not a number
            ("control/fresh/channel/userspace/subbuf_num", "0\n", EINVAL),       // zero
            ("control/fresh/channel/userspace/subbuf_num", "-4\n", EINVAL),      // negative
            ("control/fresh/channel/userspace/subbuf_size", "99999999999999999999999\n", EINVAL),
            ("control/fresh/channel/userspace/subbuf_size", "1099511627776\n", EINVAL),  // 1 TiB
            ("control/fresh/channel/userspace/overwrite", "2\n", EINVAL),
            ("control/fresh/trans", "relay-lockless\n", EINVAL),                 // unknown transport
            ("control/fresh/enabled", "1\n", EPERM),                             // not allocated
        ]
        // No trace may be named as a file of ltt/ itself (the listing, not
        // a copy of it: a file added to ltt/ is covered).
        let own = try FileManager.default.contentsOfDirectory(atPath: ltt).filter { $0 != "good" }
        #expect(own.contains("producer_socket") && own.count == 6, "\(own)")
        let shadows = own.map { ("setup_trace", $0 + "\n", EINVAL) }
        for (file, text, expected) in refusals + fresh + shadows {
            #expect(w(file, text) == expected, "\(file) <- \(text.prefix(30))")
        }
        // A trace, channel or marker that does not exist: ENOENT at open.
        #expect(w("control/missing/enabled", "1\n") == ENOENT)
        #expect(w("control/good/channel/missing/enable", "1\n") == ENOENT)
        #expect(w("markers/userspace/missing/enable", "1\n") == ENOENT)
        // Reading write-only files and writing read-only ones.
        #expect(readControl(ltt + "/setup_trace") == nil)
        #expect(w("control/good/stats", "1\n") == EACCES)

        // Nothing half-applied: the fresh trace's settings are the defaults.
        #expect(readControl(ltt + "/control/fresh/channel/userspace/subbuf_num") == "8\n")
        #expect(readControl(ltt + "/control/fresh/trans") == "relay-locked\n")
        // Rounding like lttctl said: up to a power of two, at least a page.
        #expect(w("control/fresh/channel/userspace/subbuf_size", "5000\n") == 0)
        #expect(readControl(ltt + "/control/fresh/channel/userspace/subbuf_size") == "8192\n")
        #expect(w("control/fresh/channel/userspace/subbuf_size", "100\n") == 0)
        #expect(readControl(ltt + "/control/fresh/channel/userspace/subbuf_size") == "4096\n")
        #expect(w("control/fresh/channel/userspace/subbuf_num", "3\n") == 0)
        #expect(readControl(ltt + "/control/fresh/channel/userspace/subbuf_num") == "4\n")
        #expect(w("control/fresh/channel/userspace/subbuf_num", "0x10 trailing words\n") == 0)
        #expect(readControl(ltt + "/control/fresh/channel/userspace/subbuf_num") == "16\n")

        // The good trace lost nothing: drain it and count.
        #expect(w("write_event", "after the refusals\n") == 0)
        let out = NSTemporaryDirectory() + "lttfs-errno-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let probe = try ConformanceConsumer(ltt + "/good", into: out, deadline: 30)
        #expect(w("control/good/enabled", "0\n") == 0)
        #expect(w("destroy_trace", "good\n") == 0)
        let probed = probe.finish()
        #expect(probed.status == 0, "\(probed.output)\(probed.error)")
        let lines = waitForDecodedLines(out, expected: 2, seconds: 1)
        #expect(lines == ["before the refusals", "after the refusals"])

        // Every refusal was logged with its reason and errno.
        server.stop()
        let log = String(decoding: server.log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let refusedLines = log.split(separator: "\n").filter { $0.contains("refused") }
        #expect(refusedLines.count >= refusals.count + fresh.count - 0, "\(refusedLines.count) refusals logged")
        #expect(log.contains("(EEXIST)") && log.contains("(EBUSY)") && log.contains("(ENOENT)") && log.contains("(EINVAL)"))
    }

    @Test("entries appear and disappear at once: setup, alloc and destroy are visible to ls")
    func entriesAreFresh() throws {
        try withMount(cpuCount: 1) { m in
            let list = { (dir: String) in (try? FileManager.default.contentsOfDirectory(atPath: dir))?.sorted() ?? [] }
            #expect(!list(m.ltt + "/control").contains("v"))
            #expect(writeControl(m.ltt + "/setup_trace", "v\n") == 0)
            #expect(list(m.ltt + "/control").contains("v"))
            #expect(!list(m.ltt).contains("v"))
            var before = stat()
            #expect(stat(m.ltt + "/v/userspace_0", &before) == -1 && errno == ENOENT)   // a lookup, refused
            #expect(writeControl(m.ltt + "/control/v/alloc", "1\n") == 0)
            #expect(list(m.ltt).contains("v"))
            var after = stat()
            #expect(stat(m.ltt + "/v/userspace_0", &after) == 0)   // the same lookup, at once
            #expect(after.st_mode & S_IFMT == S_IFREG && after.st_mode & 0o777 == 0o440)
            #expect(list(m.ltt + "/v") == ["metadata_0", "userspace_0"])
            #expect(list(m.ltt + "/markers/userspace") == ["event"])
            #expect(readControl(m.ltt + "/markers/userspace/event/info")?.contains("format: string %s") == true)
            _ = try m.tracer.register(channel: "app", name: "late", format: "n %d")
            #expect(list(m.ltt + "/markers").contains("app"))
            #expect(writeControl(m.ltt + "/destroy_trace", "v\n") == 0)
            #expect(!list(m.ltt).contains("v"))
            #expect(!list(m.ltt + "/control").contains("v"))
            var st = stat()
            #expect(stat(m.ltt + "/v/userspace_0", &st) == -1 && errno == ENOENT)
            // The same name again is a new trace with new files.
            #expect(writeControl(m.ltt + "/setup_trace", "v\n") == 0)
            #expect(writeControl(m.ltt + "/control/v/alloc", "1\n") == 0)
            #expect(list(m.ltt + "/v").contains("userspace_0"))
        }
    }
}

/// Decodes the userspace lines of a consumer's output directory, waiting
/// (bounded) until `expected` lines are there.
func waitForDecodedLines(_ directory: String, expected: Int, seconds: Double = 30) -> [String] {
    let deadline = Date().addingTimeInterval(seconds)
    var lines: [String] = []
    repeat {
        let result = TraceReader().read(directory: directory)
        lines = result.events.filter { $0.channel == "userspace" }.compactMap {
            if case .string(let s)? = $0.field("string") { return s }
            return nil
        }
        if lines.count >= expected && result.problems.isEmpty { return lines }
        usleep(100_000)
    } while Date() < deadline
    return lines
}
