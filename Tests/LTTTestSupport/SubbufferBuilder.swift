import LTTFormat

/// One sub-buffer laid out by hand with the format's encoders, as the
/// engine lays it out: header, events (header + aligned payload), the
/// header closed with lost_size and the end clock.
public struct SubbufferBuilder {
    public let size: Int
    public let trace: TraceHeaderFields
    public var bytes: [UInt8]
    public var offset = Int(SubbufferHeader.size)
    public var clock: UInt64

    public init(size: Int = 4096, alignment: UInt8 = 8, begin: UInt64 = 1_000) {
        self.size = size
        trace = TraceHeaderFields(alignment: alignment, startTimeSec: 1_700_000_000, startTSC: begin)
        bytes = [UInt8](repeating: 0, count: size)
        clock = begin
        bytes.withUnsafeMutableBytes { [trace] in
            SubbufferHeader.writeBegin(at: $0.baseAddress!, tsc: begin, bufSize: UInt32(size), trace: trace)
        }
    }

    /// Appends one event of `format` with `values` (integers as 64-bit
    /// patterns; texts as strings), `ticks` after the previous one.
    public mutating func append(id: UInt16, _ format: String, _ values: [Any], ticks: UInt64 = 10,
                         form requested: EventHeaderForm? = nil) throws {
        let fields = try MarkerFormat(format).fields
        let slots = fields.map(PayloadLayout.Slot.init)
        let alignment = Int(trace.alignment)
        var dataSize = 0
        for (slot, value) in zip(slots, values) {
            PayloadLayout.advance(&dataSize, over: slot, textCount: (value as? String)?.utf8.count ?? 0, alignment: alignment)
        }
        clock += ticks
        // The engine's rule: a clock that moved 2^27 ticks or more needs
        // the full value (form 29).
        let form = ticks >= 1 << 27 ? .idSizeTSC : requested ?? EventHeader.requestedForm(eventID: id, sized: false)
        let (headerSize, padding) = EventHeader.size(at: UInt64(offset), dataSize: UInt64(dataSize), form: form, trace: trace)
        let maxInt = fields.compactMap(\.storedSize).max() ?? 1
        let largest = PayloadLayout.largestAlign(maxIntegerSize: maxInt, alignment: alignment)
        let payloadStart = offset + Int(headerSize)
        let start = payloadStart + PayloadLayout.padding(at: payloadStart, size: largest, alignment: alignment)
        let (tsc, header) = (clock, trace)
        let at = offset + Int(padding)
        bytes.withUnsafeMutableBytes { p in
            _ = EventHeader.write(to: p.baseAddress!, at: UInt64(at), eventID: id, dataSize: UInt64(dataSize),
                                  tsc: tsc, form: form, trace: header)
            var o = 0
            for (slot, value) in zip(slots, values) {
                let text = Array(((value as? String) ?? "").utf8)
                PayloadLayout.store(&o, into: slot, base: p.baseAddress! + start, alignment: alignment,
                                    integer: (value as? UInt64) ?? UInt64(bitPattern: Int64((value as? Int) ?? 0))) { d in
                    text.withUnsafeBytes { PayloadLayout.storeText(at: d, from: $0.baseAddress, count: $0.count) }
                }
            }
        }
        offset = start + dataSize
    }

    /// Closes the header: lost_size, end clock, counters.
    public mutating func close(eventsLost: UInt32 = 0) -> [UInt8] {
        let (lost, end) = (UInt32(size - offset), clock)
        bytes.withUnsafeMutableBytes {
            SubbufferHeader.writeEnd(at: $0.baseAddress!, tsc: end, lostSize: lost, eventsLost: eventsLost, subbufCorrupt: 0)
        }
        return bytes
    }
}

