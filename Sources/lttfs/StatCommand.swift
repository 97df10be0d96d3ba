import ArgumentParser
import Foundation

struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Per-buffer counters of one trace or of all: written, lost, corrupted, delivered, consumed.",
        discussion: "Example:\n  lttfs stat mytrace")

    @Option(help: "The lttfs mount point (default: the first one in /proc/mounts).") var mount: String?
    @Argument(help: "A trace name (default: every trace).") var name: String?

    func run() throws {
        let control = try MountDiscovery.resolve(mount) + "/ltt/control"
        let names = try name.map { [$0] } ?? FileManager.default.contentsOfDirectory(atPath: control).sorted()
        if names.isEmpty { print("no trace") }
        for (i, trace) in names.enumerated() {
            guard let text = try? String(contentsOfFile: control + "/\(trace)/stats", encoding: .utf8) else {
                throw Failure("no trace named \(trace)")
            }
            print((i > 0 ? "\n" : "") + text, terminator: "")
        }
    }
}
