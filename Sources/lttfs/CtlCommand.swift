#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import ArgumentParser
import Foundation
import SystemPackage
import LTTFS

/// lttctl's options, working through the mounted tree.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Control traces the way lttctl did (create, start, pause, destroy).",
        discussion: """
            Examples:
              lttfs ctl -C -w ~/traces/t1 t1          # create, start, and consume to ~/traces/t1
              lttfs ctl -c -o channel.all.bufnum=16 -o channel.userspace.overwrite=1 t2
              lttfs ctl -s t2
              lttfs ctl -D t2                         # pause and destroy
            Channel options: enable, overwrite, bufnum, bufsize, switch_timer (ms), blocking_timeout (ms).
            """)

    @Flag(name: .customShort("c"), help: "Create the trace (setup and alloc).") var create = false
    @Flag(name: .customShort("d"), help: "Destroy the trace.") var destroy = false
    @Flag(name: .customShort("s"), help: "Start tracing.") var start = false
    @Flag(name: .customShort("p"), help: "Pause tracing.") var pause = false
    @Flag(name: .customShort("C"), help: "Create and start.") var createStart = false
    @Flag(name: .customShort("D"), help: "Pause and destroy.") var pauseDestroy = false

    @Option(help: "Transport (relay-locked).") var transport: String?

    @Option(name: .customShort("o"), help: "channel.<name|all>.<enable|overwrite|bufnum|bufsize|switch_timer>=VALUE")
    var channelOptions: [String] = []

    @Option(name: .customShort("w"), help: "Start a consumer writing the trace to this directory.")
    var writeOut: String?

    @Flag(name: .customShort("a"), help: "With -w: append to existing files.") var append = false
    @Option(name: .customShort("n"), help: "With -w: consumer threads.") var threads = 1

    @Option(help: "The lttfs mount point (default: the first one in /proc/mounts).") var mount: String?

    @Argument(help: "The trace name.") var name: String

    func validate() throws {
        let actions = [create, destroy, start, pause, createStart, pauseDestroy].filter { $0 }.count
        guard actions == 1 else { throw ValidationError("give exactly one of -c, -d, -s, -p, -C, -D") }
        if writeOut != nil && !(start || createStart) { throw ValidationError("-w starts a consumer: use it with -s or -C") }
        // Check every -o before anything is written: no half-made trace.
        for option in channelOptions { _ = try Self.parse(option) }
    }

    static let optionFiles = ["enable": "enable", "overwrite": "overwrite", "bufnum": "subbuf_num",
                              "bufsize": "subbuf_size", "switch_timer": "switch_timer",
                              "blocking_timeout": "blocking_timeout"]

    /// channel.<name|all>.<option>=<value> -> (channel, file, value)
    static func parse(_ option: String) throws -> (channel: String, file: String, value: String) {
        let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
        let key = parts.first?.split(separator: ".").map(String.init) ?? []
        guard parts.count == 2, key.count == 3, key[0] == "channel", !parts[1].isEmpty else {
            throw ValidationError("-o \(option): expected channel.<name|all>.<option>=<value>")
        }
        guard let file = optionFiles[key[2]] else {
            throw ValidationError("-o \(option): options are \(optionFiles.keys.sorted().joined(separator: ", "))")
        }
        return (key[1], file, parts[1])
    }

    func run() throws {
        let ltt = try MountDiscovery.resolve(mount) + "/ltt"
        let control = ltt + "/control/" + name
        if create || createStart {
            try MountDiscovery.write(ltt + "/setup_trace", name)
            if let transport { try MountDiscovery.write(control + "/trans", transport) }
            for option in channelOptions { try applyChannelOption(option, control: control) }
            try MountDiscovery.write(control + "/alloc", "1")
        }
        if start || createStart {
            if let writeOut {
                let pid = try startConsumer(trace: ltt + "/" + name, out: writeOut)
                try waitForConsumer(pid, stats: control + "/stats")
            }
            try MountDiscovery.write(control + "/enabled", "1")
        }
        if pause || pauseDestroy { try MountDiscovery.write(control + "/enabled", "0") }
        if destroy || pauseDestroy { try MountDiscovery.write(ltt + "/destroy_trace", name) }
    }

    func applyChannelOption(_ option: String, control: String) throws {
        let (channel, file, value) = try Self.parse(option)
        let channels = channel == "all"
            ? ((try? FileManager.default.contentsOfDirectory(atPath: control + "/channel"))?.sorted() ?? [])
            : [channel]
        for name in channels {
            if channel == "all" && name == "metadata" && (file == "overwrite" || file == "enable") { continue }
            try MountDiscovery.write(control + "/channel/\(name)/\(file)", value)
        }
    }

    /// Starts `lttfs consume` in the background, in its own session.
    func startConsumer(trace: String, out: String) throws -> pid_t {
        var arguments = [CommandLine.arguments[0], "consume", "-q", "-c", trace, "-t", out, "-n", String(threads)]
        if append { arguments.append("-a") }
        let pid: pid_t
        do throws(Errno) {
            pid = try ProcessControl.spawnDetached(CommandLine.arguments[0], arguments: arguments)
        } catch {
            throw Failure("cannot start the consumer: \(error.explained)")
        }
        print("consumer \(pid) writing \(trace) to \(out)")
        return pid
    }

    /// Waits until the consumer reads every buffer of the trace (the
    /// `reader` column of its stats), so that what is recorded once this
    /// command returns reaches it, even if the trace is destroyed at once
    /// (a trace destroyed before its consumer opened the files is gone
    /// for it). Fails if the consumer exits first; after 10 s, goes on
    /// with a warning (a very slow machine: the consumer may still come).
    func waitForConsumer(_ pid: pid_t, stats: String) throws {
        let deadline = MonotonicClock.now() &+ 10_000_000_000
        while true {
            if let status = ProcessControl.exitStatus(of: pid, wait: false) {
                throw Failure("the consumer (\(pid)) exited with status \(status) before it opened the trace's buffers")
            }
            if let text = try? String(contentsOfFile: stats, encoding: .utf8), Self.everyBufferHasReader(text) { return }
            if MonotonicClock.now() >= deadline {
                StandardError.write("lttfs ctl: warning: the consumer (\(pid)) has not opened every buffer after 10 s\n")
                return
            }
            MonotonicClock.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Whether a trace's stats text shows at least one buffer, each with a
    /// reader (its `reader` column not 0).
    static func everyBufferHasReader(_ stats: String) -> Bool {
        let rows = stats.split(separator: "\n").map { $0.split(separator: " ") }
        guard let header = rows.firstIndex(where: { $0.first == "buffer" }),
              let column = rows[header].firstIndex(of: "reader") else { return false }
        let buffers = rows[(header + 1)...]
        return !buffers.isEmpty && buffers.allSatisfy { $0.count > column && $0[column] != "0" }
    }
}
