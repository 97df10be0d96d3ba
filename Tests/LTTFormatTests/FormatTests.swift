@testable import LTTFormat
import Testing

/// Every encoder of the format against its decoder, and the decoders
/// against bytes laid out by hand from trace-format.md.
@Suite struct FormatTests {
    @Test func alignmentFollowsLTTAlign() {
        #expect(lttAlignPadding(at: 5, size: 4, alignment: 8) == 3)
        #expect(lttAlignPadding(at: 5, size: 8, alignment: 4) == 3)     // capped by the trace alignment
        #expect(lttAlignPadding(at: 5, size: 8, alignment: 8) == 3)
        #expect(lttAlignPadding(at: 9, size: 8, alignment: 8) == 7)
        #expect(lttAlignPadding(at: 5, size: 1, alignment: 8) == 0)     // bytes are never aligned
        #expect(lttAlignPadding(at: 5, size: 8, alignment: 0) == 0)     // packed trace
        #expect(TraceHeaderFields(alignment: 8).padding(at: 12, forSize: 8) == 4)
        #expect(PayloadLayout.padding(at: 2, size: 4, alignment: 8) == 2)
    }

    @Test func subbufferHeaderRoundTrips() throws {
        var bytes = [UInt8](repeating: 0xAA, count: 4096)
        let trace = TraceHeaderFields(alignment: 8, archSize: 8, startTimeSec: 1_700_000_000, startTimeUsec: 42,
                                      startFreq: 1_000_000_000, freqScale: 1, startTSC: 7)
        bytes.withUnsafeMutableBytes { SubbufferHeader.writeBegin(at: $0.baseAddress!, tsc: 100, bufSize: 4096, trace: trace) }
        let open = try #require(bytes.withUnsafeBytes { SubbufferHeader(bytes: $0) })
        #expect(open.magicNumber == SubbufferHeader.magic)
        #expect(open.majorVersion == 2 && open.minorVersion == 3)
        #expect(open.lostSize == SubbufferHeader.lostSizeOpen)
        #expect(open.cycleCountBegin == 100 && open.cycleCountEnd == 0)
        #expect(open.startTimeSec == 1_700_000_000 && open.startTimeUsec == 42 && open.alignment == 8)
        bytes.withUnsafeMutableBytes {
            SubbufferHeader.writeEnd(at: $0.baseAddress!, tsc: 200, lostSize: 12, eventsLost: 3, subbufCorrupt: 1)
        }
        let closed = try #require(bytes.withUnsafeBytes { SubbufferHeader(bytes: $0) })
        #expect(closed.cycleCountEnd == 200 && closed.lostSize == 12 && closed.eventsLost == 3 && closed.subbufCorrupt == 1)
        #expect(closed.bufSize == 4096)
        // The fields sit where struct ltt_subbuffer_header puts them.
        #expect(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 60, as: UInt32.self) } == 3)
        #expect(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 64, as: UInt32.self) } == 1)
        #expect(bytes[68] == 0xAA, "the header is 68 bytes, no more")
        #expect([UInt8](repeating: 0, count: 67).withUnsafeBytes { SubbufferHeader(bytes: $0) } == nil)
    }

    @Test(arguments: [EventHeaderForm.compact, .idSizeTSC, .idSize, .id], [UInt8(0), 8])
    func eventHeaderRoundTrips(form: EventHeaderForm, alignment: UInt8) throws {
        let trace = TraceHeaderFields(alignment: alignment)
        for (offset, dataSize) in [(68, UInt64(12)), (69, 0xFFFF), (71, 70_000), (100, 0)] {
            var bytes = [UInt8](repeating: 0, count: 256)
            let id: UInt16 = form == .compact ? 17 : 300
            let tsc: UInt64 = 0x1234_5678_9ABC
            let (size, padding) = EventHeader.size(at: UInt64(offset), dataSize: dataSize, form: form, trace: trace)
            let end = bytes.withUnsafeMutableBytes {
                EventHeader.write(to: $0.baseAddress!, at: UInt64(offset) + padding, eventID: id, dataSize: dataSize,
                                  tsc: tsc, form: form, trace: trace)
            }
            #expect(end == UInt64(offset) + size)
            let decoded = try EventHeader.read(from: ByteReader(bytes: bytes), base: 0, offset: offset, limit: bytes.count,
                                               trace: trace)
            #expect(decoded.end == Int(end))
            #expect(decoded.eventID == id)
            #expect(decoded.form == form)
            #expect(decoded.tscLow == UInt32(tsc & UInt64(EventHeader.tscMask)))
            switch form {
            case .compact, .id: #expect(decoded.dataSize == nil && decoded.fullTSC == nil)
            case .idSize: #expect(decoded.dataSize == Int(dataSize) && decoded.fullTSC == nil)
            case .idSizeTSC: #expect(decoded.dataSize == Int(dataSize) && decoded.fullTSC == tsc)
            }
            #expect(decoded.clock(after: tsc - 5) == tsc)
        }
    }

    @Test func clockWrapsOnceFromTheLowBits() {
        let header = EventHeader.Decoded(eventID: 1, form: .compact, dataSize: nil, fullTSC: nil, tscLow: 5, end: 0)
        let previous = (UInt64(3) << 27) | (UInt64(EventHeader.tscMask) - 2)
        #expect(header.clock(after: previous) == (UInt64(4) << 27) | 5)
    }

    @Test func truncatedHeaderIsOutOfBounds() {
        let bytes = ByteReader(bytes: [UInt8](repeating: 0xFF, count: 10))   // form 31: a u16 id follows
        #expect(throws: ByteReader.OutOfBounds.self) {
            try EventHeader.read(from: bytes, base: 0, offset: 4, limit: 9, trace: TraceHeaderFields(alignment: 8))
        }
    }

    /// What `storeText(at:from:count:)` must store, done the slow way: the
    /// bytes, from the first NUL on '#', then a NUL.
    static func expectedText(_ source: [UInt8]) -> [UInt8] {
        let cut = source.firstIndex(of: 0) ?? source.count
        return Array(source[..<cut]) + [UInt8](repeating: UInt8(ascii: "#"), count: source.count - cut) + [0]
    }

    @Test("a text is stored whole, cut at a NUL inside it with '#' to its end, and nothing past its NUL is touched, at every length the word copy takes and around it")
    func storeTextEveryLengthAndNUL() {
        for count in 0...(PayloadLayout.wordCopyLimit + 9) {
            // No NUL, then one at each position, then two.
            var sources: [[UInt8]] = [(0..<count).map { UInt8(truncatingIfNeeded: 0x21 + $0 * 7) | 0x80 }]
            for nul in 0..<count {
                var s = sources[0]
                s[nul] = 0
                sources.append(s)
                if nul + 3 < count { s[nul + 3] = 0; sources.append(s) }
            }
            // Bytes that a zero-byte test with carries could take for a NUL.
            sources.append((0..<count).map { $0 % 2 == 0 ? 0x01 : 0x80 })
            for source in sources {
                // The source is an allocation of exactly its bytes, at an
                // odd address (nothing past it belongs to the text).
                let from = UnsafeMutableRawPointer.allocate(byteCount: count + 1, alignment: 8)
                defer { from.deallocate() }
                from.copyMemory(from: [UInt8(0x5A)] + source, byteCount: count + 1)
                var to = [UInt8](repeating: 0xEE, count: count + 24)
                let used = to.withUnsafeMutableBytes { dst in
                    PayloadLayout.storeText(at: dst.baseAddress! + 3, from: from + 1, count: count)
                }
                #expect(used == count + 1)
                // The word copy takes every text of 4 to 64 bytes, and lets
                // none with a NUL through.
                if (4...PayloadLayout.wordCopyLimit).contains(count) {
                    var scratch = [UInt8](repeating: 0, count: count)
                    let clean = scratch.withUnsafeMutableBytes {
                        PayloadLayout.copyWords(from: from + 1, to: $0.baseAddress!, count: count)
                    }
                    #expect(clean == !source.contains(0), "count \(count): \(source)")
                    #expect(scratch == source)
                }
                #expect(Array(to[3..<(4 + count)]) == Self.expectedText(source), "count \(count): \(source)")
                #expect(to[..<3].allSatisfy { $0 == 0xEE } && to[(4 + count)...].allSatisfy { $0 == 0xEE })
            }
        }
        // No text at all: what was reserved for it is '#', then the NUL.
        var to = [UInt8](repeating: 0xEE, count: 6)
        #expect(to.withUnsafeMutableBytes { PayloadLayout.storeText(at: $0.baseAddress!, from: nil, count: 3) } == 4)
        #expect(to == Array("###".utf8) + [0, 0xEE, 0xEE])
    }

    @Test func payloadRoundTrips() throws {
        let format = try MarkerFormat("a %c b %hd text %s n #n4u%lu big %lld")
        for alignment in [0, 8] {
            var bytes = [UInt8](repeating: 0, count: 128)
            let values: [UInt64] = [0x41, UInt64(bitPattern: -2), 0, 0xDEAD_BEEF, UInt64(bitPattern: -9)]
            let slots = format.fields.map(PayloadLayout.Slot.init)
            let maxInt = format.fields.compactMap(\.storedSize).max() ?? 1
            let start = 3 + PayloadLayout.padding(at: 3,
                                                  size: PayloadLayout.largestAlign(maxIntegerSize: maxInt, alignment: alignment),
                                                  alignment: alignment)
            var o = 0
            bytes.withUnsafeMutableBytes { p in
                for (slot, value) in zip(slots, values) {
                    PayloadLayout.store(&o, into: slot, base: p.baseAddress! + start, alignment: alignment, integer: value) { d in
                        PayloadLayout.storeText(at: d) {
                            $0.copyMemory(from: "héllo", byteCount: 6)
                            return 6
                        }
                    }
                }
            }
            let decoded = try PayloadLayout.read(format.fields, from: ByteReader(bytes: bytes), base: 0, offset: 3,
                                                 limit: bytes.count, alignment: alignment)
            #expect(decoded.start == start)
            #expect(decoded.end == start + o)
            #expect(decoded.fields.map(\.value) == [.unsigned(0x41), .signed(-2), .string("héllo"),
                                                     .unsigned(0xDEAD_BEEF), .signed(-9)])
            // "#n4u": four bytes in network order.
            let n = decoded.fields[3]
            #expect(n.conversion == "u")
        }
    }

    @Test func markerFormatsParseAndRefuse() throws {
        let f = try MarkerFormat(Metadata.coreMarkerIDFormat)
        #expect(f.fields.map(\.name) == ["channel", "name", "event_id", "int", "long", "pointer", "size_t", "alignment"])
        #expect(f.fields[2].kind == .integer(size: 2, signed: false, networkOrder: false))
        #expect(f.fields[3].kind == .integer(size: 1, signed: false, networkOrder: false))
        #expect(throws: MarkerFormat.ParseError.missingName(conversion: "%d")) { try MarkerFormat("%d") }
        #expect(throws: MarkerFormat.ParseError.missingConversion(name: "x")) { try MarkerFormat("x") }
        #expect(throws: MarkerFormat.ParseError.floatingPoint("%f")) { try MarkerFormat("x %f") }
        #expect(throws: MarkerFormat.ParseError.badConversion("#3u%d")) { try MarkerFormat("x #3u%d") }
        #expect(throws: MarkerFormat.ParseError.nul) { try MarkerFormat("a\0b %d") }
    }

    @Test func abiValuesAreTheKernelOnes() {
        #expect(RelayIoctl.getSubbuffer.rawValue == 0x8004_F500)
        #expect(RelayIoctl.putSubbuffer.rawValue == 0x4004_F501)
        #expect(RelayPollState.readable.pollMask == 1)   // POLLIN
        #expect(RelayPollState.full.pollMask == 2)       // POLLPRI
        #expect(RelayPollState.hungUp.pollMask == 0x10)  // POLLHUP
        #expect(RelayPollState.none.pollMask == 0)
    }
}
