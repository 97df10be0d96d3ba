import LTTFormat
import Synchronization
@testable import LTTRelay

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    let value: Atomic<UInt64>
    init(_ start: UInt64 = 1_000) { value = Atomic(start) }
    func advance(_ by: UInt64) { value.add(by, ordering: .relaxed) }
    func set(_ to: UInt64) { value.store(to, ordering: .relaxed) }
    var now: UInt64 { value.load(ordering: .relaxed) }
    var function: @Sendable () -> UInt64 { { [self] in self.now } }
}

let packedTrace = TraceHeaderFields(alignment: 0, startTSC: 1_000)
let alignedTrace = TraceHeaderFields(alignment: 8, startTSC: 1_000)

func makeBuffer(subbufferSize: UInt64 = 4096, count: UInt64 = 4, overwrite: Bool = false,
                trace: TraceHeaderFields = packedTrace, clock: ManualClock = ManualClock()) -> RelayBuffer {
    let geometry = try! RelayGeometry(subbufferSize: subbufferSize, subbufferCount: count)
    return try! RelayBuffer(geometry: geometry, overwrite: overwrite, cpu: 0, trace: trace, clock: clock.function)
}

/// Reads a little-endian (machine order) field of a sub-buffer header.
func headerField<T: FixedWidthInteger>(_ buffer: RelayBuffer, subbuffer: Int, _ field: Int, as: T.Type) -> T {
    (buffer.memory + subbuffer * Int(buffer.geometry.subbufferSize)).loadUnaligned(fromByteOffset: field, as: T.self)
}

extension RelayBuffer {
    /// Reserve + commit of `dataSize` zero bytes, through the ring directly.
    @discardableResult
    func put(_ dataSize: UInt64, tsc: UInt64 = 1_000, align: UInt64 = 1, form: EventHeaderForm = .compact)
        -> Result<RelaySlot, ReserveFailure> {
        withRing { ring in
            let r = ring.reserve(dataSize: dataSize, largestAlign: align, form: form, tsc: tsc)
            if case .success(let slot) = r { ring.commit(slot) }
            return r
        }
    }

    /// A reservation that a writer will commit later (out of order) or
    /// never, as the seed's algorithm allows: the slot is not left pending
    /// (which would say its holder died inside the lock, for the next
    /// holder to repair: SharedBufferTests).
    func reserveOnly(_ dataSize: UInt64, tsc: UInt64 = 1_000) -> Result<RelaySlot, ReserveFailure> {
        withRing { ring in
            defer { ring.control.pointee.pending_size = 0 }
            return ring.reserve(dataSize: dataSize, largestAlign: 1, form: .compact, tsc: tsc)
        }
    }

    func commitOnly(_ slot: RelaySlot) { withRing { $0.commit(slot) } }

    var offset: UInt64 { withRing { $0.offset } }
    var consumed: UInt64 { withRing { $0.consumed } }
    var eventsLost: UInt64 { withRing { $0.eventsLost } }
    var corrupted: UInt64 { withRing { $0.corruptedSubbuffers } }
    var delivered: UInt64 { withRing { $0.subbuffersDelivered } }
}

/// One event decoded from a sub-buffer by the tests' minimal parser.
struct ParsedEvent: Equatable {
    var id: UInt16
    var form: EventHeaderForm
    var size: UInt64?
    var tsc27: UInt32
    var fullTSC: UInt64?
    var payloadOffset: Int
}

/// Parses events of a fixed payload size from one sub-buffer's bytes.
func parseSubbuffer(_ bytes: UnsafeRawBufferPointer, payloadSize: Int, payloadAlign: UInt64,
                    trace: TraceHeaderFields) -> [ParsedEvent] {
    let lost = Int(bytes.loadUnaligned(fromByteOffset: SubbufferHeader.Field.lostSize, as: UInt32.self))
    let end = bytes.count - lost
    var events: [ParsedEvent] = []
    var o = UInt64(SubbufferHeader.size)
    while Int(o) < end {
        o += trace.padding(at: o, forSize: 4)
        let word = bytes.loadUnaligned(fromByteOffset: Int(o), as: UInt32.self)
        o += 4
        let top = UInt8(word >> 27)
        var e = ParsedEvent(id: UInt16(top), form: .compact, size: nil, tsc27: word & EventHeader.tscMask,
                            fullTSC: nil, payloadOffset: 0)
        switch top {
        case 29, 30:
            e.form = top == 29 ? .idSizeTSC : .idSize
            e.id = bytes.loadUnaligned(fromByteOffset: Int(o), as: UInt16.self)
            var size = UInt64(bytes.loadUnaligned(fromByteOffset: Int(o) + 2, as: UInt16.self))
            o += 4
            if size == 0xFFFF {
                size = UInt64(bytes.loadUnaligned(fromByteOffset: Int(o), as: UInt32.self))
                o += 4
            }
            e.size = size
            if top == 29 {
                o += trace.padding(at: o, forSize: 8)
                e.fullTSC = bytes.loadUnaligned(fromByteOffset: Int(o), as: UInt64.self)
                o += 8
            }
        case 31:
            e.form = .id
            e.id = bytes.loadUnaligned(fromByteOffset: Int(o), as: UInt16.self)
            o += 2
        default:
            break
        }
        o += trace.padding(at: o, forSize: payloadAlign)
        e.payloadOffset = Int(o)
        o += UInt64(payloadSize)
        events.append(e)
    }
    return events
}
