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
        var output: UnsafeMutableRawBufferPointer?
    }

    /// What one sub-buffer became.
    enum Written {
        case packet(bytes: Int, events: Int, problems: [TraceProblem], notes: [TraceProblem])
        /// An event id is not declared yet: nothing was written or changed.
        case needsDeclarations
        /// Its header is unusable: left out, counted as a lost packet.
        case unreadable(TraceProblem)
    }

    private let state: Locked<State>

    init(name: String, path: String, streamID: UInt32, cpu: UInt32) throws(CTFError) {
        self.name = name
        self.path = path
        self.streamID = streamID
        self.cpu = cpu
        let file: FileDescriptor
        do throws(Errno) {
            file = try CTFTraceWriter.create(path)
        } catch {
            throw .cannotWrite(path, error)
        }
        state = Locked(State(file: file))
    }

    deinit { close() }

    func close() {
        state.withLock { s in
            try? s.file?.close()
            s.file = nil
            s.output?.deallocate()
            s.output = nil
        }
    }

    /// Converts one sub-buffer with `shapes` and appends its packet.
    func write(_ bytes: [UInt8], shapes: PayloadShapes, uuid: [UInt8], final: Bool) throws(CTFError) -> Written {
        try state.withLock { (s: inout State) throws(CTFError) -> Written in
            guard let file = s.file else { return .unreadable(TraceProblem(file: name, "the stream is closed")) }
            let index = s.conversion.subbuffers
            let walk: SubbufferWalk
            do throws(SubbufferWalk.Problem) {
                walk = try SubbufferWalk(ByteReader(bytes: bytes), base: 0, size: bytes.count)
            } catch {
                s.conversion.subbuffers += 1
                // The next packet's number says one is missing.
                s.conversion.sequenceNumber += 1
                return .unreadable(TraceProblem(file: name, subbuffer: index, offset: error.offset,
                                                error.message + ": sub-buffer left out"))
            }
            let capacity = PacketConversion.capacity(for: bytes.count)
            if (s.output?.count ?? 0) < capacity {
                s.output?.deallocate()
                s.output = .allocate(byteCount: capacity, alignment: 8)
            }
            var problems: [TraceProblem] = [], notes: [TraceProblem] = []
            var conversion = s.conversion
            let outcome = PacketConversion.convert(walk, shapes: shapes, streamID: streamID, cpu: cpu, uuid: uuid,
                                                   final: final, state: &conversion, output: s.output!) { offset, message in
                problems.append(TraceProblem(file: name, subbuffer: index, offset: offset, message))
            } note: { offset, message in
                notes.append(TraceProblem(file: name, subbuffer: index, offset: offset, message))
            }
            switch outcome {
            case .needsDeclarations:
                return .needsDeclarations
            case .unreadable:
                s.conversion.subbuffers += 1
                s.conversion.sequenceNumber += 1
                return .unreadable(TraceProblem(file: name, subbuffer: index, "sub-buffer left out"))
            case .packet(let count, let events):
                do throws(Errno) {
                    try file.writeFully(UnsafeRawBufferPointer(rebasing: s.output![0..<count]))
                } catch {
                    throw .cannotWrite(path, error)
                }
                conversion.subbuffers += 1
                s.conversion = conversion
                return .packet(bytes: count, events: events, problems: problems, notes: notes)
            }
        }
    }
}
