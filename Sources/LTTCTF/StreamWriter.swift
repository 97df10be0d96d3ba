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
    let path: String
    let streamID: UInt32
    let cpu: UInt32

    struct State {
        var file: FileDescriptor?
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

    init(name: String, path: String, streamID: UInt32, cpu: UInt32) throws(CTFError) {
        self.name = name
        self.path = path
        self.streamID = streamID
        self.cpu = cpu
        let file: FileDescriptor
        do throws(Errno) { file = try CTFTraceWriter.create(path) } catch {
            throw .cannotWrite(path, error)
        }
        state = Locked(State(file: file))
    }

    deinit { state.withLock { s in try? s.file?.close() } }

    /// Converts one sub-buffer (the trace's `first` header gives the fields
    /// every sub-buffer repeats) and appends its packet.
    func write(_ bytes: [UInt8], shapes: PayloadShapes, isDeclared: (UInt16) -> Bool, first: SubbufferHeader,
               uuid: [UInt8], final: Bool, scratch: ScratchBuffers) throws(CTFError) -> Written {
        try state.withLock { (s: inout State) throws(CTFError) -> Written in
            guard let file = s.file else { return .closed }
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
            let outcome = scratch.with(capacity: PacketConversion.capacity(for: bytes.count)) { output in
                let outcome = PacketConversion.convert(walk, shapes: shapes, isDeclared: isDeclared, streamID: streamID,
                                                       cpu: cpu, uuid: uuid, final: final, state: &conversion,
                                                       output: output) { offset, message in
                    problems.append(TraceProblem(file: name, subbuffer: index, offset: offset.map { base + $0 }, message))
                } note: { offset, message in
                    notes.append(TraceProblem(file: name, subbuffer: index, offset: offset.map { base + $0 }, message))
                }
                guard case .packet(let count, _) = outcome else { return Result<PacketConversion.Outcome, Errno>.success(outcome) }
                return Result { () throws(Errno) in
                    try file.writeFully(UnsafeRawBufferPointer(rebasing: output[0..<count]))
                    return outcome
                }
            }
            switch outcome {
            case .failure(let error):
                throw .cannotWrite(path, error)
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
            guard let file = s.file else { return 0 }
            defer {
                try? file.close()
                s.file = nil
            }
            let next = s.conversion.sequenceNumber
            guard next > 0, s.lastWritten.map({ $0 + 1 < next }) ?? true else { return 0 }
            let context = CTFPacket.Context(uuid: uuid, streamID: streamID, timestampBegin: s.conversion.lastEnd,
                                            timestampEnd: s.conversion.lastEnd, contentBytes: CTFPacket.headerSize,
                                            sequenceNumber: next, eventsDiscarded: s.conversion.lastDiscarded, cpuID: cpu)
            var packet = [UInt8](repeating: 0, count: context.packetBytes)
            packet.withUnsafeMutableBytes { context.write(to: $0.baseAddress!) }
            do throws(Errno) { try file.writeFully(packet) } catch {
                throw .cannotWrite(path, error)
            }
            return packet.count
        }
    }
}
