import LTTFormat
import Testing
import LTTTestSupport
@testable import LTTRelay

/// A reference model of the same rules, written differently: sub-buffers are
/// numbered by sequence (0, 1, 2, ... forever) instead of masked positions,
/// and each keeps the bytes committed to it. It knows nothing of commit
/// masks, BUFFER_TRUNC or the seed's arithmetic.
struct RingModel {
    let S: UInt64, n: UInt64, overwrite: Bool
    var writeSeq: UInt64 = 0
    var writePos: UInt64 = 68          // inside writeSeq; S means "on the boundary"
    var readSeq: UInt64 = 0
    var committed: [UInt64: UInt64] = [0: 68]
    var lost: UInt64 = 0, corrupted: UInt64 = 0, delivered: UInt64 = 0
    var overwritten: UInt64 = 0
    var finalized = false
    /// The sub-buffer a GET took and no PUT gave back.
    var heldSeq: UInt64?
    /// The clock of the last reservation or switch: an event 2^27 ticks or
    /// more after it carries the full clock (16 header bytes, packed).
    var lastTSC: UInt64 = 1_000

    struct Slot { var seq: UInt64; var size: UInt64 }

    var offset: UInt64 { writeSeq * S + writePos }
    var consumed: UInt64 { readSeq * S }
    /// The sub-buffer the writer is in (the next one when on a boundary).
    var writerSeq: UInt64 { writePos == S ? writeSeq + 1 : writeSeq }
    func missing(_ seq: UInt64) -> UInt64 { S - (committed[seq] ?? 0) }

    mutating func addCommit(_ seq: UInt64, _ bytes: UInt64, deliverCheck: Bool = true) {
        committed[seq, default: 0] += bytes
        if deliverCheck && committed[seq] == S { delivered += 1 }
    }

    /// Opens sub-buffer `next`, pushing the reader if the writer reached it.
    /// Returns false (and counts) when normal mode is full.
    mutating func open(_ next: UInt64, liveSwitchOnly: Bool) -> Bool? {
        let occupant: UInt64? = next >= n ? next - n : nil
        let gap = occupant.map { missing($0) } ?? 0
        if gap == 0 && !overwrite && next - readSeq >= n { return nil }
        return true
    }

    mutating func pushAndOpen(_ next: UInt64) {
        let occupant: UInt64? = next >= n ? next - n : nil
        let gap = occupant.map { missing($0) } ?? 0
        if next - readSeq >= n {
            readSeq += 1
            if gap != 0, let occ = occupant {
                addCommit(occ, gap, deliverCheck: false)
                if !overwrite || gap != S { corrupted += 1 }
            } else {
                overwritten += 1
            }
        }
    }

    mutating func reserve(_ d: UInt64, tsc: UInt64) -> Slot? {
        if finalized { lost += 1; return nil }
        let size = (tsc - lastTSC >= 1 << 27 ? 16 : 4) + d
        var switching = false, closeOld = false
        if writePos == S { switching = true }
        else if writePos + size > S { switching = true; closeOld = true }
        if switching {
            let next = writeSeq + 1
            if open(next, liveSwitchOnly: false) == nil { lost += 1; return nil }
            if 68 + size > S { lost += 1; return nil }
            pushAndOpen(next)
            if closeOld { addCommit(writeSeq, S - writePos) }
            writeSeq = next
            writePos = 68
            addCommit(next, 68)
        }
        let slot = Slot(seq: writeSeq, size: size)
        lastTSC = tsc
        writePos += size
        if writePos == S { addCommit(writeSeq, 0) }
        return slot
    }

    mutating func commit(_ slot: Slot) { addCommit(slot.seq, slot.size) }

    mutating func forceActive(tsc: UInt64) -> Bool {
        if writePos == S { return false }
        let next = writeSeq + 1
        if open(next, liveSwitchOnly: true) == nil { return false }
        lastTSC = tsc
        pushAndOpen(next)
        addCommit(writeSeq, S - writePos)
        writeSeq = next
        writePos = 68
        addCommit(next, 68)
        return true
    }

    mutating func finalize() {
        guard !finalized else { return }
        finalized = true
        if writePos == S { return }
        addCommit(writeSeq, S - writePos)
        writePos = S
    }

    mutating func get() -> UInt64? {
        guard committed[readSeq] == S, readSeq < writerSeq else { return nil }
        heldSeq = readSeq
        return consumed
    }

    /// Only what a GET took goes back: a PUT without one, or twice, fails;
    /// one after the writer pushed past it fails once and forgets it.
    mutating func put(_ position: UInt64) -> Bool {
        guard let held = heldSeq else { return false }
        guard held == readSeq else {
            heldSeq = nil
            return false
        }
        guard position == consumed else { return false }
        heldSeq = nil
        readSeq += 1
        return true
    }

    var readable: UInt64 { (writerSeq - readSeq) * S }
    var poll: RelayPollState {
        let unread = (writerSeq - readSeq) * S
        if unread == 0 { return finalized ? .hungUp : .none }
        return unread >= n * S ? .full : .readable
    }
}

@Suite("Relay ring against a reference model")
struct RelayRingModelTests {
    @Test("random reserve, commit in any order, abandon, switch, get, read, put; checked after every step",
          arguments: [(false, UInt64(1)), (true, 2), (false, 3), (true, 4), (false, 5), (true, 6)])
    func randomWalk(overwrite: Bool, seed: UInt64) throws {
        let S: UInt64 = 4096, n: UInt64 = 4
        let b = makeBuffer(subbufferSize: S, count: n, overwrite: overwrite)
        var model = RingModel(S: S, n: n, overwrite: overwrite)
        var rng = SplitMix64(state: seed)
        var live: [(RelaySlot, RingModel.Slot)] = []
        var held: UInt64? = nil
        var now: UInt64 = 1_000
        var readBuffer = [UInt8](repeating: 0, count: Int(S * n))
        // Before a switch into sub-buffer `next`, commit (in random order)
        // the live slots it would recycle: a commit arriving after its
        // sub-buffer was reused is outside the rules of both (the seed holds
        // its lock from reserve to commit; only a dead writer never commits).
        func settle(_ next: UInt64) {
            live.shuffle(using: &rng)
            live.removeAll { slot, m in
                guard m.seq + n <= next else { return false }
                b.commitOnly(slot)
                model.commit(m)
                return true
            }
        }

        for step in 0..<20_000 {
            let op = rng.next() % 100
            switch op {
            case 0..<45:
                // Commit every live slot first when this reservation would
                // lap one: the model does not track a commit that arrives
                // after its sub-buffer was recycled (the seed cannot either).
                let d: UInt64 = rng.next() % 8 == 0 ? rng.next() % (S + 200) : rng.next() % 600
                // Now and then the clock jumps 2^27 ticks or more: the
                // full-clock header, and a reader push that must not wrap.
                now += rng.next() % 16 == 0 ? (1 << 27) + rng.next() % 5_000 : rng.next() % 200
                if model.writePos == S || model.writePos + 16 + d > S { settle(model.writeSeq + 1) }
                let real = b.reserveOnly(d, tsc: now)
                let expected = model.reserve(d, tsc: now)
                #expect(((try? real.get()) != nil) == (expected != nil), "step \(step): reserve \(d)")
                if let slot = try? real.get(), let m = expected {
                    #expect(slot.size == m.size)
                    #expect(slot.begin == m.seq * S + model.writePos - m.size)
                    live.append((slot, m))
                }
            case 45..<70:
                if !live.isEmpty {
                    let i = Int(rng.next() % UInt64(live.count))
                    let (slot, m) = live.remove(at: i)
                    b.commitOnly(slot)
                    model.commit(m)
                }
            case 70..<72:
                // A writer dies holding its slot: it is never committed.
                if !live.isEmpty { live.removeLast() }
            case 72..<77:
                settle(model.writeSeq + 1)
                #expect(b.withRing { $0.forceSwitch(.active, tsc: now) } == model.forceActive(tsc: now), "step \(step)")
            case 77..<88:
                let got = b.withRing { $0.getSubbuffer() }
                let want = model.get()
                #expect((try? got.get()) == want, "step \(step): get")
                if let position = want { held = position }
            case 88..<91:
                let n = readBuffer.withUnsafeMutableBytes { b.read(at: 0, into: $0) }
                #expect(UInt64(n) == model.readable)
            default:
                // Mostly the PUT of what GET took; sometimes one with no GET
                // (the current position, or the next), which must change nothing.
                let unasked = rng.next() % 4 == 0 ? [model.consumed, model.consumed + S][Int(rng.next() % 2)] : nil
                if let position = held ?? unasked {
                    let ok = (try? b.withRing { (r: RelayRing) throws(SubbufferAccessError) in
                        try r.putSubbuffer(position: position)
                    }) != nil
                    #expect(ok == model.put(position), "step \(step): put")
                    held = nil
                }
            }
            let (offset, consumed, lost, corrupted, delivered, poll, readable, overwritten) = b.withRing {
                ($0.offset, $0.consumed, $0.eventsLost, $0.corruptedSubbuffers, $0.subbuffersDelivered,
                 $0.pollState, $0.readableBytes(at: 0), $0.subbuffersOverwritten)
            }
            #expect(offset == model.offset, "step \(step)")
            #expect(consumed == model.consumed, "step \(step)")
            #expect(lost == model.lost, "step \(step)")
            #expect(corrupted == model.corrupted, "step \(step)")
            #expect(delivered == model.delivered, "step \(step)")
            #expect(poll == model.poll, "step \(step)")
            #expect(readable == model.readable, "step \(step)")
            #expect(overwritten == model.overwritten, "step \(step)")
            // Invariants of the design essay.
            #expect(consumed % S == 0 && consumed <= offset / S * S && offset / S * S - consumed <= S * n)
            if offset != model.offset { return }   // one report, not thousands
        }
        // The walk must have gone through the interesting branches.
        #expect(model.delivered > 100 && model.lost > 0 && model.corrupted > 0 && model.readSeq > 100,
                "delivered \(model.delivered) lost \(model.lost) corrupted \(model.corrupted) read \(model.readSeq)")
        if overwrite { #expect(model.overwritten > 0) }
        // The end of the trace: flush, then drain to the hang-up.
        for (slot, m) in live { b.commitOnly(slot); model.commit(m) }
        b.withRing { $0.finalize(tsc: now) }
        model.finalize()
        #expect(b.offset == model.offset)
        var rounds = 0
        while rounds < 10, let position = model.get() {
            #expect((try? b.withRing { $0.getSubbuffer() }.get()) == position)
            _ = model.put(position)
            try b.withRing { (r: RelayRing) throws(SubbufferAccessError) in try r.putSubbuffer(position: position) }
            rounds += 1
        }
        #expect(b.pollState == model.poll)
    }
}
