import Foundation
import LTTFormat
import LTTReader

/// Reads back a CTF trace that lttfs wrote (`lttfs convert`, `lttfs
/// consume --format ctf`), into the same result as `TraceReader`'s, so that
/// `lttfs dump` shows either format the same way. It reads the TSDL lttfs
/// writes (`CTFMetadata`) and the packets of `CTFPacket`, and checks them as
/// strictly as the LTT reader does; other CTF traces are babeltrace2's.
public struct CTFTraceReader {
    public init() {}

    /// Whether `directory` holds a CTF trace (a `metadata` file in TSDL).
    public static func isCTF(_ directory: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: directory + "/metadata") else { return false }
        defer { try? handle.close() }
        let start = (try? handle.read(upToCount: 9)) ?? Data()
        return start.elementsEqual("/* CTF 1.".utf8)
    }

    /// Reads and checks the whole trace, every event decoded (`lttfs dump
    /// --check`, `--json`): the events of `stream(directory:)`, in values.
    public func read(directory: String) -> TraceReader.Result {
        let stream = Self.stream(directory: directory)
        var result = stream.metadata
        var events: [DecodedEvent] = []
        stream.forEach { events.append(stream.decoded($0)) }
        result.events = events
        result.problems += stream.problems
        result.subbuffers = stream.subbuffers
        result.eventsLost = stream.eventsLost
        return result
    }
}
