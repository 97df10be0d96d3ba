import LTTFormat
import LTTRelay
import LTTSystem

/// The metadata channel: two event kinds that declare every marker that
/// can appear in the trace (trace-format.md, "Metadata channel").
/// Declaring markers in the metadata channel (the names and formats are
/// the format's: `LTTFormat.Metadata`).
extension Metadata {
    /// The arguments of a core_marker_id event declaring `marker`.
    static func idDeclaration(of marker: MarkerCore, alignment: UInt8) -> [TraceArgument] {
        [.string(marker.channel), .string(marker.name), .unsigned(UInt64(marker.eventID)),
         .unsigned(UInt64(MemoryLayout<CInt>.size)), .unsigned(UInt64(MemoryLayout<CLong>.size)),
         .unsigned(UInt64(MemoryLayout<UnsafeRawPointer>.size)), .unsigned(UInt64(MemoryLayout<Int>.size)),
         .unsigned(UInt64(alignment))]
    }

    /// The arguments of a core_marker_format event declaring `marker`.
    static func formatDeclaration(of marker: MarkerCore) -> [TraceArgument] {
        [.string(marker.channel), .string(marker.name), .string(marker.format.text)]
    }

    /// Writes both declarations of `marker` into metadata buffer 0. They
    /// must not be lost: when the channel is full, the writer waits for its
    /// reader to free room, until `deadline` (CLOCK_MONOTONIC ns, shared by
    /// the traces of one registration) but at least `minimumWait` ns, so
    /// that a reader that stalled in one trace never costs a healthy one
    /// its declaration; with no reader nobody would free room, and it does
    /// not wait. The caller holds the tracer's control lock, so a reader
    /// that let its wait run out is not waited for again until it frees
    /// room: each later declaration into its trace is lost at once
    /// (counted), rather than every registration holding every control
    /// operation for its full wait, trace by trace. Returns false if they
    /// could not be written.
    static func declare(_ marker: MarkerCore, idMarker: MarkerCore, formatMarker: MarkerCore,
                        in trace: TraceRecord, deadline: UInt64, minimumWait: UInt64 = 100_000_000) -> Bool {
        guard let metadata = trace.metadata else { return false }
        let alignment = Int(trace.header.alignment)
        let buffer = metadata.buffers[0]
        var ok = true
        for (core, arguments) in [(idMarker, idDeclaration(of: marker, alignment: trace.header.alignment)),
                                  (formatMarker, formatDeclaration(of: marker))] {
            guard let size = PayloadLayout.size(of: arguments, fields: core.format.fields, alignment: alignment) else {
                ok = false
                continue
            }
            let largest = PayloadLayout.largestAlign(maxIntegerSize: core.maxIntegerSize, alignment: alignment)
            var policy = RelayBuffer.WaitPolicy(onlyWithReader: true, notWhileStalled: true)
            policy.deadline = max(deadline, MonotonicClock.now() &+ minimumWait)
            let result = buffer.recordWaiting(eventID: core.eventID, dataSize: UInt64(size),
                                              largestAlign: UInt64(largest), policy: policy) { p in
                PayloadLayout.write(arguments, fields: core.format.fields, to: p, alignment: alignment)
            }
            if result != .recorded { ok = false }
        }
        return ok
    }
}
