import ArgumentParser
import Foundation
import LTTCTF
import LTTReader
import LTTSystem
import SystemPackage

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a trace's events in time order, one line each (or check it).",
        discussion: """
            Example:
              lttfs dump ~/traces/mytrace
              lttfs dump --channel userspace --json ~/traces/mytrace
              lttfs dump --check ~/traces/mytrace   # exit 1 on any problem
              lttfs dump ~/traces/mytrace-ctf       # CTF from lttfs convert or consume --format ctf
            """)

    @Flag(help: "Only validate: print the problems, exit non-zero if there is any.")
    var check = false

    @Flag(help: "JSON Lines instead of text.")
    var json = false

    @Flag(help: "Also print the metadata channel's declarations.")
    var metadata = false

    @Option(help: "Only events of this channel.")
    var channel: String?

    @Option(help: "Only events of this marker.")
    var marker: String?

    @Option(help: "Only events at or after this time (seconds since the epoch).")
    var from: Double?

    @Option(help: "Only events before this time (seconds since the epoch).")
    var to: Double?

    @Argument(help: "The trace directory a consumer wrote: LTT 2.3, or CTF that lttfs wrote.")
    var directory: String

    func run() throws {
        let ctf = CTFTraceReader.isCTF(directory)
        if !check && !json && !metadata && channel != "metadata" {
            return try stream(ctf: ctf)
        }
        let result = ctf ? CTFTraceReader().read(directory: directory)
                                                     : TraceReader().read(directory: directory)
        for problem in result.problems {
            StandardError.write("problem: \(problem)\n")
        }
        if check {
            let events = result.events.filter { $0.channel != "metadata" }.count
            print("\(result.problems.isEmpty ? "OK" : "FAIL"): \(result.files.count) files, \(result.subbuffers) sub-buffers, "
                  + "\(events) events, \(result.eventsLost) lost, \(result.corruptedSubbuffers) corrupted sub-buffers, "
                  + "\(result.problems.count) problems")
            if !result.problems.isEmpty { throw ExitCode(1) }
            return
        }
        var out = ""
        for event in result.events {
            if event.channel == "metadata" && !metadata && channel != "metadata" { continue }
            if let channel, event.channel != channel { continue }
            if let marker, event.marker != marker { continue }
            let seconds = Double(event.timeNanoseconds) / 1e9
            if let from, seconds < from { continue }
            if let to, seconds >= to { continue }
            out += json ? Self.json(event) : event.line
            out += "\n"
            if out.utf8.count > 1 << 16 {
                print(out, terminator: "")
                out = ""
            }
        }
        print(out, terminator: "")
        if !result.problems.isEmpty { throw ExitCode(1) }
    }

    /// The text, streamed: the files merged by clock as they are read, each
    /// line written from the event's bytes into a buffer that goes out 256
    /// KiB at a time.
    func stream(ctf: Bool) throws {
        let stream = ctf ? CTFTraceReader.stream(directory: directory) : TraceStream(directory: directory)
        let text = EventText(stream)
        let wanted = stream.markers.map { m in
            (channel == nil || m.channel == channel) && (marker == nil || m.name == marker)
        }
        let fromNanoseconds = from.map(Self.nanoseconds)
        let toNanoseconds = to.map(Self.nanoseconds)
        var out = TextBuffer(capacity: 1 << 18 + 4096)
        var failure: Errno?
        stream.forEach { event in
            guard failure == nil, wanted[event.marker] else { return }
            if fromNanoseconds != nil || toNanoseconds != nil, let time = stream.time?.nanoseconds(event.clock) {
                if let fromNanoseconds, time < fromNanoseconds { return }
                if let toNanoseconds, time >= toNanoseconds { return }
            }
            text.append(event, to: &out)
            if out.count >= 1 << 18 {
                do throws(Errno) { try FileDescriptor.standardOutput.writeFully(out.bytes) } catch { failure = error }
                out.removeAll()
            }
        }
        if failure == nil {
            do throws(Errno) { try FileDescriptor.standardOutput.writeFully(out.bytes) } catch { failure = error }
        }
        if let failure { throw Failure("standard output: \(failure.explained)") }
        let problems = stream.metadata.problems + stream.problems
        for problem in problems { StandardError.write("problem: \(problem)\n") }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// Seconds as nanoseconds, rounded up and held within Int64.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        Int64(exactly: (seconds * 1e9).rounded(.up)) ?? (seconds < 0 ? .min : .max)
    }

    func validate() throws {
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, !value.isFinite { throw ValidationError("\(name) \(value): give a number of seconds") }
        }
    }

    static func json(_ e: DecodedEvent) -> String {
        var fields: [String: Any] = [:]
        for f in e.fields {
            switch f.value {
            case .signed(let v): fields[f.name] = v
            case .unsigned(let v): fields[f.name] = v
            case .string(let s): fields[f.name] = s
            }
        }
        let object: [String: Any] = ["channel": e.channel, "marker": e.marker, "time": e.timeString,
                                     "cycles": e.cycles, "cpu": e.cpu, "fields": fields]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
