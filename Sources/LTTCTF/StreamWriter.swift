import LTTFormat
import LTTReader
import LTTSystem
import SystemPackage

/// One stream file of a CTF trace being written, and what carries from one
/// of its packets to the next, under a lock of its own: streams convert
/// and write in parallel (one reader thread per buffer, or one conversion
/// thread per file). The writer's shared lock, when held, is taken first.
final class StreamWriter: Sendable {
    let name: String
    let streamID: UInt32
    let cpu: UInt32

    struct State {
        /// Where its packets go; nil once closed.
        var output: (any CTFStreamDestination)?
        var conversion = PacketConversion.StreamState()
        /// The sequence number of the last packet written.
        var lastWritten: UInt64?
    }

    /// What one sub-buffer became.
    enum Written {
        case packet(bytes: Int, events: Int, problems: [TraceProblem], notes: [TraceProblem])
        /// An event id is not declared yet: nothing was written or changed.
        case needsDeclarations
        /// Its header is unusable: left out, counted as a lost packet.
        case unreadable(TraceProblem)
        /// The stream was closed (`finish`): nothing was written.
        case closed
    }

    private let state: Locked<State>

    init(name: String, streamID: UInt32, cpu: UInt32, destination: any CTFDestination) throws(CTFError) {
        self.name = name
        self.streamID = streamID
        self.cpu = cpu
        let output = try destination.openStream(name: name, streamID: streamID, cpu: cpu)
        var state = State(output: output)
        state.conversion.sequenceNumber = output.firstSequenceNumber
        self.state = Locked(state)
    }

    /// Converts one sub-buffer (the trace's `first` header gives the fields
    /// every sub-buffer repeats) and appends its packet.
    func write(_ bytes: [UInt8], shapes: PayloadShapes, isDeclared: (UInt16) -> Bool, first: SubbufferHeader,
               uuid: [UInt8], final: Bool, scratch: ScratchBuffers) throws(CTFError) -> Written {
        try state.withLock { (s: inout State) throws(CTFError) -> Written in
            guard let output = s.output else { return .closed }
            let index = s.conversion.subbuffers
            let base = index * bytes.count
            let walk: SubbufferWalk
            do throws(SubbufferWalk.Problem) {
                walk = try SubbufferWalk(ByteReader(bytes: bytes), base: 0, size: bytes.count, trace: first)
            } catch {
                s.conversion.subbuffers += 1
                // The next packet's number says one is missing.
                s.conversion.sequenceNumber += 1
                return .unreadable(TraceProblem(file: name, subbuffer: index, offset: error.offset.map { base + $0 },
                                                error.message + ": sub-buffer left out"))
            }
            var problems: [TraceProblem] = [], notes: [TraceProblem] = []
            var conversion = s.conversion
            let outcome = scratch.with(capacity: PacketConversion.capacity(for: bytes.count)) { buffer in
                let outcome = PacketConversion.convert(walk, shapes: shapes, isDeclared: isDeclared, streamID: streamID,
                                                       cpu: cpu, uuid: uuid, final: final, state: &conversion,
                                                       output: buffer) { offset, message in
                    problems.append(TraceProblem(file: name, subbuffer: index, offset: offset.map { base + $0 }, message))
                } note: { offset, message in
                    notes.append(TraceProblem(file: name, subbuffer: index, offset: offset.map { base + $0 }, message))
                }
                guard case .packet(let count, _) = outcome else { return Result<PacketConversion.Outcome, CTFError>.success(outcome) }
                let packet = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                return Result { () throws(CTFError) in
                    try output.write(packet, context: CTFPacket.Context(bytes: packet)!)
                    return outcome
                }
            }
            switch outcome {
            case .failure(let error):
                throw error
            case .success(.needsDeclarations):
                return .needsDeclarations
            case .success(.packet(let count, let events)):
                s.lastWritten = conversion.sequenceNumber - 1
                conversion.subbuffers += 1
                s.conversion = conversion
                return .packet(bytes: count, events: events, problems: problems, notes: notes)
            }
        }
    }

    /// One sub-buffer that could not be taken (dropped): the next packet's
    /// number says one is missing.
    func skip() {
        state.withLock { s in
            s.conversion.subbuffers += 1
            s.conversion.sequenceNumber += 1
        }
    }

    /// Closes the stream. When sub-buffers after the last packet were left
    /// out, an empty packet with the next number ends it, so that readers
    /// count them as lost packets (babeltrace2 reports discarded packets).
    func finish(uuid: [UInt8]) throws(CTFError) -> Int {
        try state.withLock { (s: inout State) throws(CTFError) -> Int in
            guard let output = s.output else { return 0 }
            s.output = nil
            let next = s.conversion.sequenceNumber
            guard next > output.firstSequenceNumber, s.lastWritten.map({ $0 + 1 < next }) ?? true else {
                try output.close()
                return 0
            }
            let context = CTFPacket.Context(uuid: uuid, streamID: streamID, timestampBegin: s.conversion.lastEnd,
                                            timestampEnd: s.conversion.lastEnd, contentBytes: CTFPacket.headerSize,
                                            sequenceNumber: next, eventsDiscarded: s.conversion.lastDiscarded, cpuID: cpu)
            let packet = UnsafeMutableRawBufferPointer.allocate(byteCount: context.packetBytes, alignment: 8)
            defer { packet.deallocate() }
            packet.initializeMemory(as: UInt8.self, repeating: 0)
            context.write(to: packet.baseAddress!)
            try output.write(UnsafeRawBufferPointer(packet), context: context)
            try output.close()
            return packet.count
        }
    }
}
