import Foundation
import LTTFormat
import LTTRelay
import Testing
@testable import LTTTrace

@Suite("Declaring markers in the metadata channel")
struct DeclarationTests {
    @Test("a registration waits for stalled metadata readers at most 2 s, all its traces together, and the next does not wait until a reader frees room; every declaration lost is counted")
    func stalledMetadataReaders() throws {
        let tracer = Tracer(cpuCount: 1, log: { _, _ in })
        let names = ["a", "b", "c"]
        var metadata: [RelayBuffer] = []
        for name in names {
            try tracer.setupTrace(name)
            try tracer.updateChannel(trace: name, channel: Metadata.channel) {
                $0.subbufferSize = 4096
                $0.subbufferCount = 2
            }
            try tracer.allocTrace(name)
            metadata.append(try #require(tracer.trace(name)?.bufferFiles.first { $0.0 == "metadata_0" }?.1))
        }
        // With no reader, a full metadata channel loses a declaration at
        // once: fill all three.
        var n = 0
        while names.contains(where: { tracer.trace($0)!.metadataLost == 0 }) && n < 10_000 {
            try tracer.register(channel: "userspace", name: "fill\(n)", format: "n %u")
            n += 1
        }
        let lost = names.map { tracer.trace($0)!.metadataLost }
        #expect(lost.allSatisfy { $0 > 0 }, "the channels filled")
        // Readers that open the buffers and never free room.
        for buffer in metadata { #expect(buffer.openReader()) }
        defer { metadata.forEach { $0.closeReader() } }

        let first = Date()
        try tracer.register(channel: "userspace", name: "late", format: "n %u")
        let firstWait = Date().timeIntervalSince(first)
        #expect(firstWait >= 1.5 && firstWait < 4, "one bound for the three traces: waited \(firstWait) s")
        let second = Date()
        try tracer.register(channel: "userspace", name: "later", format: "n %u")
        let secondWait = Date().timeIntervalSince(second)
        #expect(secondWait < 1, "stalled readers are not waited for again: waited \(secondWait) s")
        #expect(names.map { tracer.trace($0)!.metadataLost } == lost.map { $0 + 2 })
    }
}
