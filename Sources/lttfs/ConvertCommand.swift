import ArgumentParser
import LTTCTF
import LTTFormat
import LTTReader
import LTTRelayd

/// `lttfs convert`: LTT 2.3 to CTF 1.8, for babeltrace2 and Trace Compass.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an LTT 2.3 trace directory to a CTF 1.8 trace (for babeltrace2, Trace Compass).",
        discussion: """
            Example:
              lttfs convert ~/traces/mytrace ~/traces/mytrace-ctf
              babeltrace2 ~/traces/mytrace-ctf
              lttfs convert --relayd collector ~/traces/mytrace
            With --relayd the CTF goes to an lttng-relayd session on the collector
            (host/HOSTNAME/TRACE_NAME below its output directory); should the daemon
            fail, what it did not take goes to CTF_DIR (default: ./TRACE_NAME-relayd-fallback)
            and the exit status is 1.
            One stream file per buffer file, one packet per sub-buffer, lost events as
            CTF's discarded events. Problems in the trace are reported (exit status 1)
            and whatever can be read is converted.
            """)

    @Option(help: "The hostname the CTF trace names (default: this machine's).")
    var hostname: String?

    @Option(name: .long, help: ArgumentHelp("Send the CTF to the lttng-relayd at HOST[:PORT] (also net://HOST...).",
                                            valueName: "HOST[:PORT]"))
    var relayd: String?

    @Option(help: "With --relayd: the session's name (default: the trace's).")
    var session: String?

    @Argument(help: "The trace directory lttd or lttfs consume wrote.")
    var traceDirectory: String

    @Argument(help: "The CTF directory to write (created; must not exist or be empty). With --relayd: where what the daemon did not take goes.")
    var ctfDirectory: String?

    func validate() throws {
        if let relayd, RelaydSession.Address(parsing: relayd) == nil {
            throw ValidationError("--relayd \(relayd): give HOST, HOST:PORT or HOST:CONTROL_PORT:DATA_PORT")
        }
        if session != nil && relayd == nil { throw ValidationError("--session names a relay daemon's session: add --relayd") }
        if relayd == nil && ctfDirectory == nil { throw ValidationError("give the CTF directory to write") }
    }

    func run() throws {
        let summary: CTFTraceWriter.Summary
        var destination: RelaydDestination?
        do throws(CTFError) {
            if let relayd, let address = RelaydSession.Address(parsing: relayd) {
                let name = TraceReader.traceName(ofDirectory: traceDirectory)
                let options = RelaydOptions(address: address, sessionName: session, hostname: hostname, liveTimerMilliseconds: 0)
                summary = try TraceConversion.convert(traceDirectory: traceDirectory) { (_, _, files) throws(CTFError) in
                    let opened = try RelaydDestination.open(options, traceName: name, buffers: files.map { ($0.channel, $0.cpu) },
                                                            metadataChannel: Metadata.channel,
                                                            fallbackDirectory: ctfDirectory ?? "./\(name)-relayd-fallback")
                    destination = opened.destination
                    return opened.writer
                }
            } else {
                summary = try TraceConversion.convert(traceDirectory: traceDirectory, to: ctfDirectory!, hostname: hostname)
            }
        } catch {
            throw Failure(error.description)
        }
        if let report = destination?.report {
            StandardError.write("sent to \(destination!.location): \(report.packetsSent) packets, \(report.bytesSent) bytes"
                                + (report.failure.map { "; lttng-relayd failed (\($0)): \(report.packetsKeptLocally) packets kept in \(destination!.fallbackDirectory)" } ?? "")
                                + "\n")
        }
        for note in summary.notes { StandardError.write("note: \(note)\n") }
        for problem in summary.problems { StandardError.write("problem: \(problem)\n") }
        StandardError.write("\(summary.events) events in \(summary.packets) packets, \(summary.bytesWritten) bytes"
                            + (summary.unreadableSubbuffers > 0 ? ", \(summary.unreadableSubbuffers) unreadable sub-buffers" : "")
                            + ", \(summary.problems.count) problems\n")
        if !summary.problems.isEmpty || destination?.report.failure != nil { throw ExitCode(1) }
    }
}
