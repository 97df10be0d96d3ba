import ArgumentParser
import LTTCTF

/// `lttfs convert`: LTT 2.3 to CTF 1.8, for babeltrace2 and Trace Compass.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an LTT 2.3 trace directory to a CTF 1.8 trace (for babeltrace2, Trace Compass).",
        discussion: """
            Example:
              lttfs convert ~/traces/mytrace ~/traces/mytrace-ctf
              babeltrace2 ~/traces/mytrace-ctf
            One stream file per buffer file, one packet per sub-buffer, lost events as
            CTF's discarded events. Problems in the trace are reported (exit status 1)
            and whatever can be read is converted.
            """)

    @Option(help: "The hostname the CTF trace names (default: this machine's).")
    var hostname: String?

    @Argument(help: "The trace directory lttd or lttfs consume wrote.")
    var traceDirectory: String

    @Argument(help: "The CTF directory to write (created; must not exist or be empty).")
    var ctfDirectory: String

    func run() throws {
        let summary: CTFTraceWriter.Summary
        do throws(CTFError) {
            summary = try TraceConversion.convert(traceDirectory: traceDirectory, to: ctfDirectory, hostname: hostname)
        } catch {
            throw Failure(error.description)
        }
        for note in summary.notes { StandardError.write("note: \(note)\n") }
        for problem in summary.problems { StandardError.write("problem: \(problem)\n") }
        StandardError.write("\(summary.events) events in \(summary.packets) packets, \(summary.bytesWritten) bytes"
                            + (summary.unreadableSubbuffers > 0 ? ", \(summary.unreadableSubbuffers) unreadable sub-buffers" : "")
                            + ", \(summary.problems.count) problems\n")
        if !summary.problems.isEmpty { throw ExitCode(1) }
    }
}
