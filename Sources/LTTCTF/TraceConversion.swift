import Foundation
import LTTFormat
import LTTReader
import LTTSystem
import SystemPackage

/// `lttfs convert`: an LTT 2.3 trace directory (written by lttd or `lttfs
/// consume`) to a CTF 1.8 one, through `CTFTraceWriter`: the metadata
/// channel first (so every marker is declared before its events), then the
/// other buffer files, in parallel (one per CPU), each one sub-buffer at a
/// time (memory stays at a few sub-buffers whatever the trace's size).
public enum TraceConversion {
    typealias BufferFile = TraceReader.BufferFile

    public static func convert(traceDirectory: String, to outputDirectory: String,
                               hostname: String? = nil) throws(CTFError) -> CTFTraceWriter.Summary {
        try convert(traceDirectory: traceDirectory) { (traceName, channels, _) throws(CTFError) in
            try CTFTraceWriter(outputDirectory: outputDirectory, traceName: traceName, channels: channels, hostname: hostname)
        }
    }

    /// Converts into the writer `makeWriter` returns for the trace's name,
    /// its data channels and its buffer files (another destination than a
    /// directory: a relay daemon).
    public static func convert(traceDirectory: String,
                               writer makeWriter: (_ traceName: String, _ channels: [String], _ files: [TraceReader.BufferFile])
                                   throws(CTFError) -> CTFTraceWriter) throws(CTFError) -> CTFTraceWriter.Summary {
        var problems: [TraceProblem] = []
        let files = TraceReader.bufferFiles(in: traceDirectory, problems: &problems)
        let channels = Array(Set(files.map(\.channel)).subtracting([Metadata.channel])).sorted()
        let writer = try makeWriter(TraceReader.traceName(ofDirectory: traceDirectory), channels, files)
        for file in files where file.channel == Metadata.channel {
            problems += try feed(traceDirectory + "/" + file.name, file, to: writer)
        }
        // Without the clock nothing can be written: the data is not read.
        guard writer.hasClock else {
            var summary = try writer.finish()
            summary.problems = problems + summary.problems
            return summary
        }
        // The streams are independent: their files convert in parallel.
        let data = files.filter { $0.channel != Metadata.channel }
        let outcomes = Locked([Result<[TraceProblem], CTFError>?](repeating: nil, count: data.count))
        DispatchQueue.concurrentPerform(iterations: data.count) { i in
            let outcome = Result { () throws(CTFError) -> [TraceProblem] in
                try feed(traceDirectory + "/" + data[i].name, data[i], to: writer)
            }
            outcomes.withLock { $0[i] = outcome }
        }
        for outcome in outcomes.withLock({ $0 }) {
            switch outcome {
            case .success(let found): problems += found
            case .failure(let error): throw error
            case nil: break
            }
        }
        var summary = try writer.finish()
        summary.problems = problems + summary.problems
        return summary
    }

    /// Feeds one buffer file to the writer, sub-buffer by sub-buffer (the
    /// size from its first header).
    static func feed(_ path: String, _ file: BufferFile, to writer: CTFTraceWriter) throws(CTFError) -> [TraceProblem] {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            return [TraceProblem(file: file.name, "cannot open: \(error)")]
        }
        defer { try? fd.close() }
        var header = [UInt8](repeating: 0, count: Int(SubbufferHeader.size))
        let got = (try? header.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        guard got == header.count, let h = header.withUnsafeBytes({ SubbufferHeader(bytes: $0) }) else {
            return [TraceProblem(file: file.name, "file of \(got) bytes is shorter than a sub-buffer header")]
        }
        let size = Int(h.bufSize)
        let fileSize = (try? fd.seek(offset: 0, from: .end)) ?? 0
        guard size >= 4096, size & (size - 1) == 0, size <= fileSize else {
            return [TraceProblem(file: file.name, subbuffer: 0, offset: SubbufferHeader.Field.bufSize,
                                 "buf_size \(size) is not a power of two of at least 4096 within the file's \(fileSize) bytes")]
        }
        var offset: Int64 = 0
        var subbuffer = [UInt8](repeating: 0, count: size)
        while true {
            var filled = 0
            while filled < size {
                let n = (try? subbuffer.withUnsafeMutableBytes {
                    try fd.read(fromAbsoluteOffset: offset + Int64(filled), into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
                }) ?? 0
                if n <= 0 { break }
                filled += n
            }
            if filled == 0 { return [] }
            guard filled == size else {
                return [TraceProblem(file: file.name, offset: Int(offset),
                                     "the last \(filled) bytes are not a whole \(size)-byte sub-buffer: left out")]
            }
            try writer.take(subbuffer: subbuffer, channel: file.channel, cpu: file.cpu)
            offset += Int64(size)
        }
    }
}
