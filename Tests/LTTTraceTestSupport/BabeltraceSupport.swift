import Foundation
import LTTCTF
import LTTFormat
import LTTReader
import LTTSystem

/// babeltrace2 (Debian's 2.0.4), the reader the CTF output is checked
/// against.
public enum Babeltrace {
    public static let path = "/usr/bin/babeltrace2"
    public static var installed: Bool { FileManager.default.isExecutableFile(atPath: path) }

    public struct Output {
        public var status: Int32
        public var lines: [String]
        public var errors: String
        /// The sums of babeltrace2's "Tracer discarded N events|packets"
        /// warnings.
        public var discardedEvents: Int { discarded(" event") }
        public var discardedPackets: Int { discarded(" packet") }

        public func discarded(_ what: String) -> Int {
            errors.split(separator: "\n").reduce(0) { sum, line in
                guard let r = line.range(of: "discarded ") else { return sum }
                let rest = line[r.upperBound...]
                guard rest.contains(what) else { return sum }
                return sum + (Int(rest.prefix { $0.isNumber }) ?? 0)
            }
        }
    }

    /// `babeltrace2 --clock-seconds --no-delta DIR`: one line per event.
    public static func read(_ directory: String, arguments: [String] = []) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--clock-seconds", "--no-delta"] + arguments + [directory]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both to the end before waiting (a full pipe would block it).
        let errors = Locked(Data())
        let errorsRead = DispatchSemaphore(value: 0)
        Thread {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errors.withLock { $0 = data }
            errorsRead.signal()
        }.start()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        errorsRead.wait()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        return Output(status: process.terminationStatus,
                      lines: text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init),
                      errors: String(decoding: errors.withLock { $0 }, as: UTF8.self))
    }

    /// The line babeltrace2 prints for `event` of a trace converted with
    /// host name `host`: its time, name, CPU and every field, as it
    /// formats them.
    public static func line(_ event: DecodedEvent, host: String) -> String {
        let fields = event.fields.map { "\(CTFMetadata.identifier($0.name)) = \(value($0.value, $0.conversion))" }
        return "[\(event.timeString)] \(host) \(event.channel).\(event.marker): { cpu_id = \(event.cpu) }, "
            + (fields.isEmpty ? "{ }" : "{ \(fields.joined(separator: ", ")) }")
    }

    public static func value(_ value: FieldValue, _ conversion: Character) -> String {
        switch (value, conversion) {
        case (.unsigned(let v), "x"), (.unsigned(let v), "X"), (.unsigned(let v), "p"):
            "0x" + String(v, radix: 16, uppercase: true)
        case (.unsigned(let v), "o"):
            "0" + String(v, radix: 8)
        case (.string(let s), _):
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n") + "\""
        default:
            value.description
        }
    }
}

/// Converts `trace` (an LTT directory) to CTF in a temporary directory.
public func convert(_ trace: String, host: String = "testhost") throws -> (ctf: TemporaryDirectory, summary: CTFTraceWriter.Summary) {
    let ctf = TemporaryDirectory()
    let summary = try TraceConversion.convert(traceDirectory: trace, to: ctf.path + "/ctf", hostname: host)
    return (ctf, summary)
}
