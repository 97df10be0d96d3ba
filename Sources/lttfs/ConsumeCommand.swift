#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import LTTConsumer
import LTTReader
import LTTRelayd
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

            Many machines: stream the CTF to an lttng-relayd (lttng-tools 2.13) instead:
              lttfs consume --relayd collector -c /mnt/ltt/ltt/mytrace
              babeltrace2 --input-format=lttng-live net://collector/host/$(hostname)/mytrace
            Live by default (--live-timer 1000 ms; give the channels a switch_timer so that
            idle ones show too). Should the relay daemon fail, the rest of the trace is kept
            in the -t directory (default ./<trace>-relayd-fallback), counted and reported.

            The buffers are read through their shared memory where the server maps them
            for this process (it must have their files open: the files' modes still
            decide who reads): the sub-buffers go from the ring to the output in one copy,
            with no FUSE round trip each. --transport files reads them as lttd does.
            """)

    @Option(name: .customShort("c"), help: "The trace's directory in the mounted tree (<mount>/ltt/<trace>).")
    var channels: String

    @Option(name: .customShort("t"), help: "The output directory (created; must not exist unless -a). With --relayd: where the trace goes if the relay daemon fails.")
    var trace: String?

    @Flag(name: .customShort("a"), help: "Append to existing output files (LTT only).")
    var append = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case ltt, ctf
    }

    @Option(help: "ltt (LTT 2.3, lttd's) or ctf (CTF 1.8).")
    var format: OutputFormat = .ltt

    @Option(help: "With --format ctf or --relayd: the host name the trace names (default: this machine's).")
    var hostname: String?

    @Option(help: "Stream CTF to lttng-relayd at HOST[:CONTROL_PORT[:DATA_PORT]] (or net://HOST...), ports 5342/5343 by default.")
    var relayd: String?

    @Option(help: "With --relayd: the session's name (default: the trace's).")
    var session: String?

    @Option(name: .customLong("live-timer"), help: "With --relayd: the live period in ms (0: not live).")
    var liveTimer: UInt32 = 1000

    @Option(name: .customShort("n"), help: "Reader threads.")
    var threads = 1

    enum TransportChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, files, shm
        var transport: TraceConsumer.Transport {
            switch self {
            case .auto: .automatic
            case .files: .bufferFiles
            case .shm: .sharedMemory
            }
        }
    }

    @Option(help: "auto (shared memory where the server maps the buffers, else the files), files (lttd's way), or shm (shared memory or fail).")
    var transport: TransportChoice = .auto

    @Flag(name: .shortAndLong, help: "No progress line, no summary.")
    var quiet = false

    func validate() throws {
        if relayd != nil {
            guard RelaydSession.Address(parsing: relayd!) != nil else {
                throw ValidationError("--relayd \(relayd!): give HOST, HOST:PORT or HOST:CONTROL_PORT:DATA_PORT")
            }
            if format == .ltt && append { throw ValidationError("--relayd streams CTF: -a does not apply") }
            return
        }
        if session != nil { throw ValidationError("--session names a relay daemon's session: add --relayd") }
        if hostname != nil && format != .ctf { throw ValidationError("--hostname names the host of a CTF trace: add --format ctf") }
        if trace == nil { throw ValidationError("give the output directory: -t DIR") }
    }

    /// The trace's channels' switch timers (ms), read from the control
    /// files next to its directory; nil where one cannot be read.
    func switchTimers() -> [String: UInt32?] {
        let traceDirectory = URL(fileURLWithPath: channels).standardizedFileURL
        let control = traceDirectory.deletingLastPathComponent().appendingPathComponent("control")
            .appendingPathComponent(traceDirectory.lastPathComponent).appendingPathComponent("channel").path
        var timers: [String: UInt32?] = [:]
        for channel in (try? FileManager.default.contentsOfDirectory(atPath: control)) ?? [] where channel != "metadata" {
            let text = try? String(contentsOfFile: control + "/" + channel + "/switch_timer", encoding: .utf8)
            timers[channel] = text.flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return timers
    }

    func run() throws {
        guard threads >= 1 && threads <= 256 else { throw Failure("-n \(threads): give 1 to 256 threads") }
        let consumer: TraceConsumer
        do throws(ConsumerError) {
            if let relayd, let address = RelaydSession.Address(parsing: relayd) {
                // Idle packets say an idle stream has nothing before "now" less
                // a lag: events older than that must have been delivered,
                // which only a switch timer on every channel makes sure of.
                let timers = switchTimers()
                var lag: UInt32?
                if liveTimer > 0 {
                    let values = timers.values.compactMap { $0 }
                    if !timers.isEmpty && values.count == timers.count && values.allSatisfy({ $0 > 0 }) {
                        lag = values.max()! + liveTimer + 1000
                    } else if !quiet {
                        StandardError.write("note: a channel has no switch_timer: live readers see its events as its sub-buffers fill\n")
                    }
                }
                let name = TraceReader.traceName(ofDirectory: channels)
                let options = TraceConsumer.RelaydOptions(address: address, sessionName: session, hostname: hostname,
                                                          liveTimerMilliseconds: liveTimer, idleLagMilliseconds: lag)
                consumer = try TraceConsumer(traceDirectory: channels, outputDirectory: trace ?? "./\(name)-relayd-fallback",
                                             format: .relayd(options), transport: transport.transport)
            } else {
                consumer = try TraceConsumer(traceDirectory: channels, outputDirectory: trace!, append: append,
                                             format: format == .ctf ? .ctf(hostname: hostname) : .ltt,
                                             transport: transport.transport)
            }
        } catch {
            throw Failure(error.description)
        }
        if let problem = consumer.mappingProblem, !quiet {
            StandardError.write("note: reading the buffer files (no shared memory: \(problem))\n")
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
        if let report = consumer.relaydReport {
            if !quiet {
                StandardError.write("relayd: \(report.packetsSent) packets (\(report.bytesSent) bytes), \(report.idlePacketsSent) idle packets"
                                    + " to \(consumer.relaydLocation ?? "")\n")
            }
            if let failure = report.failure {
                StandardError.write("relayd failed: \(failure)\n")
                if report.packetsKeptLocally > 0 || consumer.ctfSummary?.packets ?? 0 > report.packetsSent {
                    StandardError.write("relayd: \(report.packetsKeptLocally) packets it did not get are in \(consumer.outputDirectory)\n")
                }
                throw ExitCode(1)
            }
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
