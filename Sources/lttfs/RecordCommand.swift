#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import LTTSystem
import Synchronization
import LTTFormat
import LTTProducers
import LTTTrace

/// `lttfs record`: one event (or a counted run of them) from the command
/// line, recorded by this process through shared memory, as any producer
/// process does (LTTProducers): no FUSE request per event.
struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record an event into the active traces of a mount, as a producer process (shared memory).",
        discussion: """
            Example:
              lttfs record -m /mnt/ltt app request "id %lu path %s" 42 /index.html
              lttfs record -m /mnt/ltt --count 1000 app tick "seq %lu" 0
            The marker is registered with the server (the same format everywhere it is
            used). Integer fields take decimal or 0x numbers, %s fields the text as given.
            With --count N the event is recorded N times, its first integer field
            counting up from the value given; with --count 0, until SIGINT or SIGTERM
            (the event in hand is finished). Recording ends early if the server stops or dies.
            The last line says how many events were recorded. Exit status 1 if an
            event was lost or the server went away.
            """)

    @Option(name: .shortAndLong, help: "The mount point (default: $LTTFS_MOUNT, else /mnt/ltt).")
    var mount: String?

    @Option(help: "Record the event this many times (0: until SIGINT or SIGTERM).")
    var count: Int = 1

    @Argument(help: "The marker's channel.") var channel: String
    @Argument(help: "The marker's name.") var name: String
    @Argument(help: "The marker's format, as in the kernel (\"pid %d comm %s\").") var format: String
    @Argument(help: "One value per field of the format.") var values: [String] = []

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count \(count): give 0 (until a signal) or more") }
    }

    func run() throws {
        let parsed: MarkerFormat
        do { parsed = try MarkerFormat(format) } catch { throw Failure("format \"\(format)\": \(error)") }
        guard values.count == parsed.fields.count else {
            throw Failure("\(values.count) values for the \(parsed.fields.count) fields of \"\(format)\"")
        }
        var arguments: [TraceArgument] = []
        for (text, field) in zip(values, parsed.fields) {
            guard let argument = Self.argument(text, for: field) else {
                throw Failure("\(field.name): \"\(text)\" is not a \(field.kind == .string ? "text" : "number") of this field")
            }
            arguments.append(argument)
        }
        // Blocked before the producer starts its watcher thread, so that
        // the signal reaches the waiter, not a thread's default action.
        let stop = Atomic<Bool>(false)
        let signals = count == 0 ? SignalWaiter(signals: [SIGINT, SIGTERM]) { _ in stop.store(true, ordering: .relaxed) } : nil
        defer { signals?.stop() }
        let producer: Producer
        do throws(Producer.Failure) { producer = try Producer(mountpoint: mount) } catch {
            throw Failure(error.description)
        }
        defer { producer.close() }
        let marker: MarkerCore
        do throws(TraceError) {
            marker = try producer.tracer.register(channel: channel, name: name, format: format)
        } catch {
            throw Failure(error.description)
        }
        let counter = parsed.fields.firstIndex { $0.kind != .string }
        var recorded = 0, lost = 0, events = 0
        while count == 0 ? !stop.load(ordering: .relaxed) : events < count {
            // Nothing would go anywhere (the producer said so on stderr).
            if producer.serverHasGone { break }
            var these = arguments
            if let counter, events > 0 {
                switch arguments[counter] {
                case .integer(let v): these[counter] = .integer(v &+ Int64(events))
                case .unsigned(let v): these[counter] = .unsigned(v &+ UInt64(events))
                case .string: break
                }
            }
            let result = marker.emit(arguments: these)!
            recorded += result.recorded
            lost += result.lost
            events += 1
        }
        StandardError.write("\(channel).\(name): \(events) events, recorded \(recorded) times, lost \(lost) times\n")
        if lost > 0 || producer.serverHasGone { throw ExitCode(1) }
    }

    /// A command-line value for `field`: a text, or a number in range of
    /// the field's stored size (decimal, or hexadecimal with 0x).
    static func argument(_ text: String, for field: MarkerField) -> TraceArgument? {
        if field.kind == .string { return .string(text) }
        let negative = text.hasPrefix("-")
        let digits = negative ? String(text.dropFirst()) : text
        let magnitude = digits.lowercased().hasPrefix("0x") ? UInt64(digits.dropFirst(2), radix: 16) : UInt64(digits)
        guard let magnitude else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return .integer(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
        }
        return .unsigned(magnitude)
    }
}
