#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import LTTConsumer
import LTTSystem

/// `lttfs consume`: the command line over `LTTConsumer.TraceConsumer` (an
/// lttd-compatible consumer: poll every buffer file of a trace directory,
/// and for each delivered sub-buffer RELAY_GET_SUBBUF, splice it to the
/// output file through a pipe, RELAY_PUT_SUBBUF; exit when every buffer has
/// hung up).
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Drain a trace's buffer files to disk, the way lttd does.",
        discussion: """
            Example:
              lttfs consume -c /mnt/ltt/ltt/mytrace -t ~/traces/mytrace
              lttfs consume --format ctf -c /mnt/ltt/ltt/mytrace -t ~/traces/mytrace-ctf
            Writes one file per buffer (OUTDIR/<channel>_<cpu>), shows progress on a
            terminal, exits when the trace was destroyed and everything is read.
            SIGINT stops it cleanly with everything read so far on disk.
            With --format ctf the output is a CTF 1.8 trace (babeltrace2, Trace Compass)
            written as it drains: one packet per sub-buffer, the metadata as markers
            are declared.
            """)

    @Option(name: .customShort("c"), help: "The trace's directory in the mounted tree (<mount>/ltt/<trace>).")
    var channels: String

    @Option(name: .customShort("t"), help: "The output directory (created; must not exist unless -a).")
    var trace: String

    @Flag(name: .customShort("a"), help: "Append to existing output files (LTT only).")
    var append = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case ltt, ctf
    }

    @Option(help: "ltt (LTT 2.3, lttd's) or ctf (CTF 1.8).")
    var format: OutputFormat = .ltt

    @Option(help: "With --format ctf: the host name the trace names (default: this machine's).")
    var hostname: String?

    @Option(name: .customShort("n"), help: "Reader threads.")
    var threads = 1

    @Flag(name: .shortAndLong, help: "No progress line, no summary.")
    var quiet = false

    func validate() throws {
        if hostname != nil && format != .ctf { throw ValidationError("--hostname names the host of a CTF trace: add --format ctf") }
    }

    func run() throws {
        guard threads >= 1 && threads <= 256 else { throw Failure("-n \(threads): give 1 to 256 threads") }
        let consumer: TraceConsumer
        do throws(ConsumerError) {
            consumer = try TraceConsumer(traceDirectory: channels, outputDirectory: trace, append: append,
                                         format: format == .ctf ? .ctf(hostname: hostname) : .ltt)
        } catch {
            throw Failure(error.description)
        }
        // SIGINT / SIGTERM / SIGHUP stop it after the sub-buffer in hand
        // (blocked from here on, so in the reader threads too).
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM, SIGHUP]) { _ in consumer.stop() }
        let progress = quiet || isatty(2) == 0 ? nil : ProgressLine(consumer: consumer)
        progress?.start()
        let outcome = consumer.run(threads: threads)
        progress?.stop()
        signals.stop()
        if !quiet {
            StandardError.write(consumer.summary(stopped: outcome == .stopped) + "\n")
        }
        if let ctf = consumer.ctfSummary {
            for note in ctf.notes { StandardError.write("note: \(note)\n") }
            for problem in ctf.problems { StandardError.write("problem: \(problem)\n") }
            if !quiet {
                StandardError.write("ctf: \(ctf.events) events in \(ctf.packets) packets, \(ctf.problems.count) problems\n")
            }
        }
        if let failure = consumer.failures.first {
            throw Failure(failure.description)
        }
        // What could not be written is data lost: the run failed.
        if let ctf = consumer.ctfSummary, !ctf.problems.isEmpty { throw ExitCode(1) }
    }
}

/// A live progress line on a terminal.
final class ProgressLine: Sendable {
    let consumer: TraceConsumer
    private let thread = PeriodicThread(name: "lttfs-progress", interval: 0.25)
    init(consumer: TraceConsumer) { self.consumer = consumer }

    func start() {
        thread.start { [consumer] in
            StandardError.write("\r\u{1B}[K" + consumer.progressLine())
        }
    }

    func stop() {
        thread.stop()
        StandardError.write("\r\u{1B}[K")
    }
}
