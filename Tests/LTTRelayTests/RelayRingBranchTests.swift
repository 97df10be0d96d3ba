import LTTFormat
import Testing
@testable import LTTRelay

/// One test per branch of the seed's reserve / switch / push / commit / get /
/// put / poll logic. Geometry: 4 x 4096 unless said; packed trace, so a
/// compact event of `d` payload bytes takes 4 + d bytes.
@Suite("Relay ring, branch by branch")
struct RelayRingBranchTests {
    let S: UInt64 = 4096

    @Test("a new buffer opens sub-buffer 0 with the trace start clock and commits its header")
    func creation() {
        let b = makeBuffer()
        #expect(b.offset == 68)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == 68)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.magicNumber, as: UInt32.self) == 0x00D6B7ED)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.majorVersion, as: UInt8.self) == 2)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.minorVersion, as: UInt8.self) == 3)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == 0xFFFF_FFFF)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.bufSize, as: UInt32.self) == 4096)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.cycleCountBegin, as: UInt64.self) == 1_000)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.startFreq, as: UInt64.self) == 1_000_000_000)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.freqScale, as: UInt32.self) == 1)
        #expect(b.pollState == .none)
        #expect(b.getSubbuffer() == .failure(.notReady))
    }

    @Test("an event that fits is placed at the write offset and committed")
    func reserveFits() throws {
        let b = makeBuffer()
        let slot = try b.put(100).get()
        #expect(slot.begin == 68 && slot.size == 104 && slot.headerOffset == 68 && slot.payloadOffset == 72)
        #expect(b.offset == 172)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == 172)
        #expect(b.counters.eventsWritten == 1 && b.delivered == 0)
    }

    @Test("alignment pads the header word to 4 and the payload to its largest field, only when the trace is aligned")
    func alignment() throws {
        let aligned = makeBuffer(trace: alignedTrace)
        _ = aligned.put(1)                      // 68..73
        let a = try aligned.put(8, align: 8).get()  // pad 3 to 76, header to 80, payload at 80
        #expect(a.begin == 73 && a.headerOffset == 76 && a.payloadOffset == 80 && a.size == 15)
        let b2 = try aligned.put(8, align: 8, form: .idSizeTSC).get() // 88: word, id+size to 96, clock 96..104
        #expect(b2.headerOffset == 88 && b2.payloadOffset == 104 && b2.size == 24)

        let packed = makeBuffer(trace: packedTrace)
        _ = packed.put(1)
        let p = try packed.put(8, align: 8).get()
        #expect(p.begin == 73 && p.headerOffset == 73 && p.payloadOffset == 77 && p.size == 12)
    }

    @Test("header sizes of every form, with the 32-bit size past 0xFFFE bytes")
    func headerForms() {
        let t = alignedTrace
        #expect(EventHeader.size(at: 68, dataSize: 10, form: .compact, trace: t).size == 4)
        #expect(EventHeader.size(at: 68, dataSize: 10, form: .id, trace: t).size == 6)
        #expect(EventHeader.size(at: 68, dataSize: 10, form: .idSize, trace: t).size == 8)
        #expect(EventHeader.size(at: 68, dataSize: 0xFFFF, form: .idSize, trace: t).size == 12)
        #expect(EventHeader.size(at: 68, dataSize: 10, form: .idSizeTSC, trace: t).size == 20)   // 68+8=76 -> pad 4 -> 80 + 8
        #expect(EventHeader.size(at: 70, dataSize: 10, form: .compact, trace: t) == (6, 2))
        #expect(EventHeader.size(at: 70, dataSize: 10, form: .compact, trace: packedTrace) == (4, 0))
        #expect(EventHeader.requestedForm(eventID: 28, sized: false) == .compact)
        #expect(EventHeader.requestedForm(eventID: 29, sized: false) == .id)
        #expect(EventHeader.requestedForm(eventID: 3, sized: true) == .idSize)
    }

    @Test("an event that does not fit closes the old sub-buffer (lost_size, end clock, padding) and opens the next")
    func switchOnOverflow() throws {
        let b = makeBuffer()
        _ = b.put(S - 68 - 4 - 100, tsc: 2_000)   // offset 3996
        #expect(b.offset == 3996)
        let slot = try b.put(200, tsc: 3_000).get()
        #expect(slot.begin == S + 68)
        #expect(b.offset == S + 68 + 204)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == 100)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.cycleCountEnd, as: UInt64.self) == 3_000)
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.cycleCountBegin, as: UInt64.self) == 3_000)
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.lostSize, as: UInt32.self) == 0xFFFF_FFFF)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == S)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 1) } == 68 + 204)
        #expect(b.delivered == 1)
        #expect(b.getSubbuffer() == .success(0))
        #expect(b.pollState == .readable)
    }

    @Test("an event ending exactly on a boundary closes its sub-buffer at once; the next one opens without padding")
    func endExactlyOnBoundary() throws {
        let b = makeBuffer()
        _ = b.put(S - 68 - 4, tsc: 2_000)
        #expect(b.offset == S)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == 0)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.cycleCountEnd, as: UInt64.self) == 2_000)
        #expect(b.delivered == 1)
        #expect(b.getSubbuffer() == .success(0))
        let next = try b.put(10, tsc: 2_500).get()
        #expect(next.begin == S + 68)
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.cycleCountBegin, as: UInt64.self) == 2_500)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == S)
    }

    @Test("normal mode: a full buffer loses the event and counts it; a put makes room")
    func fullLosesEvent() throws {
        let b = makeBuffer()
        for _ in 0..<3 { _ = b.put(S - 68 - 4) }
        _ = b.put(100)
        #expect(b.pollState == .readable)   // 3 sub-buffers readable, writer in the 4th
        _ = b.put(S - 68 - 4 - 104)     // 4th ends on the boundary
        #expect(b.offset == 4 * S)
        #expect(b.pollState == .full)
        let before = b.offset
        #expect(b.put(10) == .failure(.full))
        #expect(b.eventsLost == 1 && b.offset == before)
        let cookie = try b.getSubbuffer().get()
        try b.putSubbuffer(cookie: cookie)
        #expect(try b.put(10).get().begin == 4 * S + 68)
        #expect(b.eventsLost == 1)
    }

    @Test("an event larger than a sub-buffer is lost and the switch is not completed")
    func tooLarge() {
        let b = makeBuffer()
        #expect(b.put(S) == .failure(.tooLarge))
        #expect(b.eventsLost == 1)
        #expect(b.offset == 68)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == 0xFFFF_FFFF)
        #expect(b.put(S - 68 - 4) != .failure(.tooLarge))  // the largest that fits
    }

    @Test("a sub-buffer left uncommitted is corrupted: the writer pushes the reader past it even in normal mode")
    func corruptedPushesReaderInNormalMode() throws {
        let b = makeBuffer()
        _ = try b.reserveOnly(100).get()             // a writer that never commits
        #expect(b.forceSwitch())                     // sub-buffer 0 closed, 104 bytes short
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == S - 104)
        #expect(b.delivered == 0)
        #expect(b.getSubbuffer() == .failure(.notReady))
        for _ in 1..<4 { _ = b.put(S - 68 - 4) }  // sub-buffers 1-3 full and complete
        #expect(b.offset == 4 * S)
        #expect(b.withRing { $0.incompleteSubbuffers() } == [0])
        _ = b.put(10)                             // wraps onto sub-buffer 0
        #expect(b.consumed == S)
        #expect(b.corrupted == 1 && b.eventsLost == 0)
        #expect(b.withRing { $0.commitCount(ofSubbuffer: 0) } == S + 68 + 14)
        #expect(b.getSubbuffer() == .success(UInt32(S)))
        // Full (sub-buffers 1-3 unread): a live switch is ignored. Once one
        // is read, the next close of sub-buffer 0 reports the corruption.
        #expect(b.forceSwitch() == false)
        try b.putSubbuffer(cookie: UInt32(S))
        #expect(b.forceSwitch())
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.subbufCorrupt, as: UInt32.self) == 1)
    }

    @Test("overwrite mode: the writer laps the reader, which gets EIO on PUT; a whole sub-buffer skipped is not corruption")
    func overwritePushesReader() throws {
        let b = makeBuffer(overwrite: true)
        _ = b.put(S - 68 - 4)
        let cookie = try b.getSubbuffer().get()
        #expect(cookie == 0)
        for _ in 1..<4 { _ = b.put(S - 68 - 4) }
        #expect(b.pollState == .full)
        _ = b.put(10)                           // laps sub-buffer 0
        #expect(b.consumed == S)
        #expect(b.corrupted == 0 && b.eventsLost == 0)
        #expect(throws: SubbufferAccessError.pushed) { try b.putSubbuffer(cookie: cookie) }
        #expect(b.getSubbuffer() == .success(UInt32(S)))
        try b.putSubbuffer(cookie: UInt32(S))
    }

    @Test("commits may come in any order; the sub-buffer is delivered by the last one")
    func outOfOrderCommit() throws {
        let b = makeBuffer()
        let a = try b.reserveOnly(100).get()
        let c = try b.reserveOnly(50).get()
        b.commitOnly(c)
        #expect(b.forceSwitch())
        #expect(b.delivered == 0)
        #expect(b.getSubbuffer() == .failure(.notReady))    // not fully committed
        b.commitOnly(a)
        #expect(b.delivered == 1)
        #expect(b.withRing { $0.wakeupReaders })            // ring-level flag, not posted by commitOnly
        #expect(b.getSubbuffer() == .success(0))
    }

    @Test("a clock that moved 2^27 ticks or more asks for the full-clock header")
    func tscOverflow() throws {
        let b = makeBuffer()
        let base: UInt64 = 1_000
        let s1 = try b.put(10, tsc: base + (1 << 27) - 1).get()
        #expect(s1.form == .compact)
        let s2 = try b.put(10, tsc: s1.tsc + (1 << 27)).get()
        #expect(s2.form == .idSizeTSC && s2.size == 4 + 4 + 8 + 10)
        let s3 = try b.put(10, tsc: s2.tsc + 5, form: .id).get()
        #expect(s3.form == .id)
        // Measured from the last event, not from the last long header.
        let s4 = try b.put(10, tsc: s3.tsc + (1 << 27) - 1).get()
        #expect(s4.form == .compact)
    }

    @Test("a clock read that is behind the buffer's last time (another CPU's TSC) is taken as that time")
    func clockNeverGoesBack() throws {
        let clock = ManualClock(50_000)
        let b = makeBuffer(clock: clock)
        let first = b.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }
        clock.set(49_990)                                    // 10 ticks behind
        let second = b.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }
        #expect(try first.get().tsc == 50_000)
        #expect(try second.get().tsc == 50_000)
        #expect(try second.get().form == .compact)          // not a 2^27 jump
        // Switches take the same care: the sub-buffer's end is not before its events.
        b.forceSwitch()
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.cycleCountEnd, as: UInt64.self) == 50_000)
        clock.set(60_000)
        #expect(try b.record(eventID: 1, dataSize: 8, largestAlign: 1) { _ in }.get().tsc == 60_000)
    }

    @Test("FORCE_ACTIVE closes the current sub-buffer and opens the next; nothing to do on a boundary; ignored when full")
    func forceSwitchActive() throws {
        let clock = ManualClock(5_000)
        let b = makeBuffer(clock: clock)
        _ = b.put(100)
        #expect(b.forceSwitch())
        #expect(b.offset == S + 68)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == UInt32(S - 172))
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.cycleCountEnd, as: UInt64.self) == 5_000)
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.cycleCountBegin, as: UInt64.self) == 5_000)
        #expect(b.delivered == 1)
        #expect(b.forceSwitch(onlyIfWritten: true) == false)     // a quiet buffer is left alone
        #expect(b.forceSwitch())                                  // the seed switches even an empty one
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.lostSize, as: UInt32.self) == UInt32(S - 68))

        let boundary = makeBuffer()
        _ = boundary.put(S - 68 - 4)
        #expect(boundary.forceSwitch() == false)

        let full = makeBuffer()
        for _ in 0..<3 { _ = full.put(S - 68 - 4) }
        _ = full.put(100)
        let offset = full.offset
        #expect(full.forceSwitch() == false)
        #expect(full.offset == offset && full.eventsLost == 0)
    }

    @Test("finalize flushes the partial sub-buffer (FORCE_FLUSH), opens nothing, and hangs up once drained")
    func finalizeFlush() throws {
        let b = makeBuffer()
        _ = b.put(100)
        #expect(b.pollState == .none)
        b.finalize()
        #expect(b.offset == S)
        #expect(headerField(b, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == UInt32(S - 172))
        #expect(headerField(b, subbuffer: 1, SubbufferHeader.Field.magicNumber, as: UInt32.self) == 0)
        #expect(b.pollState == .readable)               // not POLLHUP before the last sub-buffer is read
        let cookie = try b.getSubbuffer().get()
        try b.putSubbuffer(cookie: cookie)
        #expect(b.pollState == .hungUp)
        #expect(b.put(1) == .failure(.finalized))

        let empty = makeBuffer()
        empty.finalize()                                 // an empty sub-buffer: lost_size = buf_size - 68
        #expect(headerField(empty, subbuffer: 0, SubbufferHeader.Field.lostSize, as: UInt32.self) == UInt32(S - 68))
        #expect(empty.pollState == .readable)
    }

    @Test("GET refuses while the writer is in the sub-buffer; PUT with a stale or foreign cookie is EIO")
    func getPut() throws {
        let b = makeBuffer()
        _ = b.put(100)
        #expect(b.getSubbuffer() == .failure(.notReady))
        b.forceSwitch()
        let cookie = try b.getSubbuffer().get()
        #expect(throws: SubbufferAccessError.pushed) { try b.putSubbuffer(cookie: cookie &+ UInt32(S)) }   // not the one taken
        try b.putSubbuffer(cookie: cookie)
        #expect(throws: SubbufferAccessError.notHeld) { try b.putSubbuffer(cookie: cookie) }               // twice
        #expect(b.consumed == S && b.counters.subbuffersConsumed == 1)
        #expect(throws: SubbufferAccessError.notHeld) { try b.withRing { (r: RelayRing) throws(SubbufferAccessError) in try r.putSubbuffer(position: 0) } }
    }

    @Test("PUT without a GET is EIO and changes nothing; with events 2^27+ ticks apart the buffer still fills, drains and counts (the jammed-buffer reproducer)")
    func putWithoutGet() throws {
        let b = makeBuffer()                                      // 4 x 4096, normal mode
        // The cookie equal to `consumed`, with no GET: refused.
        #expect(throws: SubbufferAccessError.notHeld) { try b.putSubbuffer(cookie: 0) }
        #expect(b.consumed == 0 && b.counters.subbuffersConsumed == 0)
        // Events far apart in time: each takes the full-clock header.
        var tsc: UInt64 = 1_000
        var written = 0
        for _ in 0..<200 {
            tsc += (1 << 27) + 12_345
            if case .success = b.put(200, tsc: tsc) { written += 1 }
            // The reader never moves without a GET.
            #expect(throws: SubbufferAccessError.notHeld) { try b.putSubbuffer(cookie: UInt32(truncatingIfNeeded: b.consumed)) }
        }
        #expect(b.consumed == 0)
        #expect(b.pollState == .readable)                         // three sub-buffers to read, the writer in the last
        #expect(b.counters.eventsLost == UInt64(200 - written) && written > 0)
        // A consumer drains it the ABI's way, and the writer goes on.
        var drained = 0
        while case .success(let cookie) = b.getSubbuffer() {
            try b.putSubbuffer(cookie: cookie)
            drained += 1
        }
        #expect(drained == 3 && b.pollState == .none)
        tsc += (1 << 27) + 1
        #expect((try? b.put(200, tsc: tsc).get()) != nil)
        #expect(b.counters.eventsWritten == UInt64(written + 1))
    }

    @Test("flight recorder: each sub-buffer the writer overwrites unread is counted, with its events")
    func overwriteCounted() throws {
        let b = makeBuffer(overwrite: true)                       // 4 x 4096
        // 10 events of 396 bytes (+4 header) fill one sub-buffer: 68 + 10 * 400 = 4068.
        for _ in 0..<(10 * 4) { _ = b.put(396) }
        #expect(b.pollState == .readable && b.counters.subbuffersOverwritten == 0)
        for _ in 0..<(10 * 3) { _ = b.put(396) }                  // laps sub-buffers 0, 1, 2
        let c = b.counters
        #expect(c.subbuffersOverwritten == 3 && c.eventsOverwritten == 30)
        #expect(c.eventsLost == 0 && c.corruptedSubbuffers == 0 && c.eventsWritten == 70)
        // What a reader can still read plus what was overwritten is everything.
        var read = 0
        while case .success(let cookie) = b.getSubbuffer() {
            try b.putSubbuffer(cookie: cookie)
            read += 1
        }
        #expect(read == 3)                                        // the writer is in the fourth
        #expect(UInt64(read * 10 + 10) + c.eventsOverwritten == 70)
    }

    @Test("a read at a position returns the whole sub-buffers from consumed up to the writer's, and no more")
    func readableRange() throws {
        let b = makeBuffer()
        for i in 0..<2 { _ = b.put(S - 68 - 4, tsc: 1_000 + UInt64(i)) }
        _ = b.put(10)
        #expect(b.withRing { $0.readableBytes(at: 0) } == 2 * S)
        #expect(b.withRing { $0.readableBytes(at: 100) } == 2 * S - 100)
        #expect(b.withRing { $0.readableBytes(at: 3 * S) } == 0)
        var bytes = [UInt8](repeating: 0xAA, count: Int(3 * S))
        let n = bytes.withUnsafeMutableBytes { b.read(at: 0, into: $0) }
        #expect(n == Int(2 * S))
        #expect(bytes[16..<20] == [0xED, 0xB7, 0xD6, 0x00])          // magic of sub-buffer 0
        #expect(bytes[Int(S) + 16..<Int(S) + 20] == [0xED, 0xB7, 0xD6, 0x00])
        #expect(bytes[Int(2 * S)] == 0xAA)
        // After a PUT the file position 0 is the next sub-buffer.
        try b.putSubbuffer(cookie: try b.getSubbuffer().get())
        #expect(b.withRing { $0.readableBytes(at: 0) } == S)
    }

    @Test("reads wrap around the end of the ring memory")
    func readWraps() throws {
        let b = makeBuffer(count: 2)
        for _ in 0..<2 { _ = b.put(S - 68 - 4) }
        try b.putSubbuffer(cookie: try b.getSubbuffer().get())
        _ = b.put(S - 68 - 4, tsc: 7_777)              // sub-buffer index 0 again, position 2S
        #expect(b.withRing { $0.readableBytes(at: 0) } == 2 * S)
        var bytes = [UInt8](repeating: 0, count: Int(2 * S))
        #expect(bytes.withUnsafeMutableBytes { b.read(at: 0, into: $0) } == Int(2 * S))
        let secondBegin = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(S), as: UInt64.self) }
        #expect(secondBegin == 7_777)
    }

    @Test("recording from inside the tracer on the same thread is lost and counted, never a deadlock")
    func nestedRecordingIsLost() {
        let b = makeBuffer()
        var inner: Result<RelaySlot, ReserveFailure>?
        let outer = b.record(eventID: 1, dataSize: 8, largestAlign: 8) { _ in
            inner = b.record(eventID: 2, dataSize: 8, largestAlign: 8) { _ in }
        }
        #expect((try? outer.get()) != nil)
        #expect(inner == .failure(.nested))
        #expect(TracerNesting.isInside == false)
        _ = b.record(eventID: 1, dataSize: 8, largestAlign: 8) { _ in }
        #expect(b.counters.eventsLost == 1 && b.counters.eventsWritten == 2)
    }

    @Test("geometry: powers of two only, at least a page and two sub-buffers; lttctl rounding")
    func geometry() throws {
        #expect(throws: RelayGeometry.Invalid.subbufferSizeNotPowerOfTwo(5000)) {
            try RelayGeometry(subbufferSize: 5000, subbufferCount: 4)
        }
        #expect(throws: RelayGeometry.Invalid.subbufferSizeTooSmall(2048, minimum: 4096)) {
            try RelayGeometry(subbufferSize: 2048, subbufferCount: 4)
        }
        #expect(throws: RelayGeometry.Invalid.subbufferCountTooSmall(1)) {
            try RelayGeometry(subbufferSize: 4096, subbufferCount: 1)
        }
        #expect(throws: RelayGeometry.Invalid.subbufferCountNotPowerOfTwo(3)) {
            try RelayGeometry(subbufferSize: 4096, subbufferCount: 3)
        }
        #expect(throws: RelayGeometry.Invalid.tooLarge(subbufferSize: 1 << 30, subbufferCount: 8)) {
            try RelayGeometry(subbufferSize: 1 << 30, subbufferCount: 8)
        }
        // What a user asks for: rounded, then checked once.
        #expect(try RelayGeometry(requestedSubbufferSize: 5000, requestedSubbufferCount: 3)
                == RelayGeometry(subbufferSize: 8192, subbufferCount: 4))
        #expect(throws: RelayGeometry.Invalid.subbufferSizeOutOfRange(0, maximum: RelayGeometry.maximumSubbufferSize)) {
            try RelayGeometry(requestedSubbufferSize: 0, requestedSubbufferCount: 4)
        }
        #expect(throws: RelayGeometry.Invalid.subbufferCountOutOfRange(1 << 17, maximum: RelayGeometry.maximumSubbufferCount)) {
            try RelayGeometry(requestedSubbufferSize: 4096, requestedSubbufferCount: 1 << 17)
        }
        #expect(throws: RelayGeometry.Invalid.tooLarge(subbufferSize: 256 << 20, subbufferCount: 32)) {
            try RelayGeometry(requestedSubbufferSize: 256 << 20, requestedSubbufferCount: 32)
        }
        #expect(RelayGeometry.roundUpPowerOfTwo(5000, minimum: 4096) == 8192)
        #expect(RelayGeometry.roundUpPowerOfTwo(1, minimum: 4096) == 4096)
        #expect(RelayGeometry.roundUpPowerOfTwo(3, minimum: 2) == 4)
        #expect(RelayGeometry.roundUpPowerOfTwo(UInt64.max, minimum: 2) == nil)
    }
}
