// The consumer's loop follows lttd, the LTTng 0.x daemon (2009):
//
// - every regular file below the trace directory is a per-CPU buffer; it is
//   opened O_RDONLY|O_NONBLOCK (one reader per buffer: a second open gets
//   EBUSY) and checked with RELAY_GET_SUBBUF_SIZE;
// - N reader threads each own a share of the buffers and poll(2) them for
//   POLLIN|POLLPRI. poll reports exactly one value per buffer: POLLIN (a
//   sub-buffer can be taken), POLLPRI (the buffer is full: served first),
//   POLLHUP (finalized and drained: that buffer is done), anything else is
//   an error;
// - on POLLIN or POLLPRI, until RELAY_GET_SUBBUF says EAGAIN: take the
//   next sub-buffer (GET gives a cookie), splice the whole sub-buffer from
//   offset 0 of the buffer file into a pipe and from the pipe to the end of
//   the output file, give it back with the cookie (PUT). EIO on PUT means
//   the writer pushed the sub-buffer while it was copied: counted, not
//   fatal;
// - the run ends when every buffer has hung up (the trace was destroyed and
//   everything read), when stop() is called (after the sub-buffer in hand),
//   or at the first failure.
//
// Beyond lttd: each reader's poll set also holds the read end of a wake
// pipe, written once by stop() or by a failing reader, so that every
// reader leaves its poll at once; and each sub-buffer's header is read
// back from the output to account the events lost and corrupted
// sub-buffers it reports.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTCTF
import LTTFormat
import LTTProducers
import LTTReader
import LTTRelay
import LTTRelayd
import LTTSystem
import SystemPackage
import Synchronization

/// An lttd-style consumer of a trace directory in a mounted lttfs: drains
/// every buffer file of the trace to one output file each.
///
///     let consumer = try TraceConsumer(traceDirectory: "/mnt/ltt/ltt/t", outputDirectory: "/tmp/t")
///     let outcome = consumer.run(threads: 2)   // until the trace is destroyed, or stop()
///     print(consumer.summary(stopped: outcome == .stopped))
///
/// The buffer files stay open (so no other consumer can take them) until
/// the consumer goes away.
public final class TraceConsumer: Sendable {
    /// A buffer file and where it is written.
    public struct Buffer: Sendable, Equatable {
        /// The buffer file: the trace directory, "/", its relative path.
        public let path: String
        /// The output file: the output directory, "/", the same relative path.
        public let outputPath: String
        /// Bytes per sub-buffer (RELAY_GET_SUBBUF_SIZE).
        public let subbufferSize: Int
    }

    /// How `run` ended.
    public enum Outcome: Sendable, Equatable {
        /// Every buffer hung up: the trace was destroyed and all of it read.
        case drained
        /// `stop()` ended it before every buffer hung up.
        case stopped
        /// A failure ended it (see `failures`).
        case failed
    }

    /// What the output is.
    public enum Format: Sendable, Equatable {
        /// LTT 2.3, lttd's: one file per buffer file, the sub-buffers as
        /// they are.
        case ltt
        /// CTF 1.8 (`LTTCTF`): one stream file per buffer file, one packet
        /// per sub-buffer, and the metadata; `hostname` names the machine
        /// (nil: this one).
        case ctf(hostname: String?)
        /// CTF streamed to an lttng-relayd session (`LTTRelayd`); the output
        /// directory takes what the relay daemon could not, should it fail.
        case relayd(RelaydOptions)
    }

    /// Where and how to stream to lttng-relayd.
    public typealias RelaydOptions = LTTRelayd.RelaydOptions

    /// How the sub-buffers come out of the buffers.
    public enum Transport: Sendable, Equatable {
        /// Through the buffers' shared memory where the server maps them
        /// for this process (`ReaderConnection`), else the files.
        case automatic
        /// lttd's way: GET, splice (or read) and PUT on the buffer files.
        case bufferFiles
        /// Through shared memory for every buffer, or not at all.
        case sharedMemory
    }

    /// The transport asked for.
    public let transport: Transport
    /// Buffers read through their shared memory (the others through their
    /// files).
    public var mappedBuffers: Int { readers.filter { $0.mapped != nil }.count }
    /// With `.automatic`, why no buffer could be mapped, if none was.
    public let mappingProblem: String?
    /// Keeps the buffer locks of this process recoverable by the server
    /// should it die holding one.
    private let readerConnection: ReaderConnection?

    public let traceDirectory: String
    public let outputDirectory: String
    public let format: Format
    /// The buffer files, in the order of their relative paths.
    public var buffers: [Buffer] { readers.map(\.buffer) }

    private let readers: [BufferReader]
    /// The CTF trace being written (format `.ctf`).
    private let ctfWriter: CTFTraceWriter?
    private let relaydDestination: RelaydDestination?

    /// With `.relayd`: what was sent, and what was kept locally after a
    /// failure of the relay daemon.
    public var relaydReport: RelaydDestination.Report? { relaydDestination?.report }

    /// With `.relayd`: where live readers find the session.
    public var relaydLocation: String? { relaydDestination?.location }
    private let ctfSummaryValue = Locked<CTFTraceWriter.Summary?>(nil)
    /// How long a reader waits in poll(2) before polling again with no news.
    private let pollTimeout: Int32
    /// Written once to end every reader's poll: by stop() or a failure.
    private let wake: OwnedPipe
    private let woken = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let failureList = Locked<[ConsumerError]>([])
    private let startTime = MonotonicClock.now()

    /// Opens every buffer file below `traceDirectory` and its output below
    /// `outputDirectory`, which must not exist unless `append` (it is
    /// created with its parents; with `append` each output file is
    /// extended, else truncated).
    ///
    /// A reader waits in poll(2) at most `pollTimeout` milliseconds before
    /// it polls again (-1: until the filesystem says something, as lttd
    /// does; at most a second with mapped buffers); a stop wakes it at once
    /// in any case. Throws the first problem; then nothing it opened stays
    /// open.
    public init(traceDirectory: String, outputDirectory: String, append: Bool = false,
                format: Format = .ltt, transport: Transport = .automatic,
                pollTimeout milliseconds: Int32 = 100) throws(ConsumerError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: traceDirectory, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw .notATraceDirectory(traceDirectory)
        }
        if FileManager.default.fileExists(atPath: outputDirectory) && !append {
            throw .outputExists(outputDirectory)
        }
        let names = Self.regularFiles(below: traceDirectory)
        var ctf: CTFTraceWriter?
        var relayd: RelaydDestination?
        let traceName = TraceReader.traceName(ofDirectory: traceDirectory)
        let buffers = names.compactMap { name in
            TraceReader.bufferName((name as NSString).lastPathComponent).map { (name: name, channel: $0.channel, cpu: $0.cpu) }
        }
        let channels = Set(buffers.map(\.channel)).subtracting([Metadata.channel]).sorted()
        switch format {
        case .ctf(let hostname):
            guard !append else { throw .ctfAppend }
            do throws(CTFError) {
                ctf = try CTFTraceWriter(outputDirectory: outputDirectory, traceName: traceName, channels: channels,
                                         hostname: hostname)
            } catch {
                throw .ctf(error)
            }
        case .relayd(let options):
            guard !append else { throw .ctfAppend }
            do throws(CTFError) {
                (ctf, relayd) = try RelaydDestination.open(options, traceName: traceName,
                                                          buffers: buffers.map { ($0.channel, $0.cpu) },
                                                          metadataChannel: Metadata.channel, fallbackDirectory: outputDirectory)
            } catch {
                throw .relayd(error.description)
            }
        case .ltt:
            do throws(Errno) { try makeDirectories(outputDirectory) } catch {
                throw .cannotCreateDirectory(outputDirectory, error)
            }
        }
        // The server of the mount maps buffers through its producers'
        // socket (when it has one: not every server takes other processes).
        var connection: ReaderConnection?
        var problem: String?
        if transport != .bufferFiles {
            do throws(Producer.Failure) {
                guard let mount = ReaderConnection.mountpoint(of: traceDirectory) else {
                    throw .noServer("no mount found above \(traceDirectory)")
                }
                connection = try ReaderConnection(mountpoint: mount)
            } catch {
                if transport == .sharedMemory { throw .sharedMemory(traceDirectory, error.description) }
                problem = error.description
            }
        }
        let required = transport == .sharedMemory
        // Every regular file below the directory is a buffer, as lttd
        // assumes (hidden ones aside); on any failure below, the readers
        // made so far go away and close what they opened.
        var readers: [BufferReader] = []
        for name in names {
            if let ctf {
                guard let (channel, cpu) = TraceReader.bufferName((name as NSString).lastPathComponent) else {
                    throw .notABufferFile(traceDirectory + "/" + name, .invalidArgument)
                }
                readers.append(try BufferReader(path: traceDirectory + "/" + name, outputPath: outputDirectory,
                                                append: false, ctf: (ctf, channel, cpu),
                                                readers: connection, mappingRequired: required))
                continue
            }
            let outputPath = outputDirectory + "/" + name
            let parent = (outputPath as NSString).deletingLastPathComponent
            // A failure here is the output file's open to report.
            try? makeDirectories(parent)
            readers.append(try BufferReader(path: traceDirectory + "/" + name, outputPath: outputPath, append: append,
                                            readers: connection, mappingRequired: required))
        }
        guard !readers.isEmpty else { throw .noBufferFiles(traceDirectory) }
        do throws(Errno) { wake = try OwnedPipe() } catch { throw .pipe(error) }
        self.traceDirectory = traceDirectory
        self.outputDirectory = outputDirectory
        self.format = format
        self.ctfWriter = ctf
        self.relaydDestination = relayd
        self.readers = readers
        self.transport = transport
        readerConnection = connection
        mappingProblem = readers.contains { $0.mapped != nil } ? nil : problem
        pollTimeout = milliseconds
    }

    // MARK: Running

    /// Runs `threads` reader threads, each owning every `threads`-th buffer
    /// (at most one thread per buffer), until every buffer hung up, `stop()`
    /// or a failure. Call it once.
    public func run(threads: Int = 1) -> Outcome {
        precondition(threads >= 1, "TraceConsumer.run needs at least one thread")
        precondition(!started.exchange(true, ordering: .acquiringAndReleasing), "TraceConsumer.run is called once")
        let count = min(threads, readers.count)
        let groups = (0..<count).map { t in stride(from: t, to: readers.count, by: count).map { readers[$0] } }
        let outcomes = Locked<[Outcome]>([])
        let done = DispatchSemaphore(value: 0)
        for (index, group) in groups.enumerated() {
            let thread = Thread { [self] in
                let outcome = read(group)
                outcomes.withLock { $0.append(outcome) }
                done.signal()
            }
            thread.name = "lttfs-consume-\(index)"
            thread.start()
        }
        for _ in groups { done.wait() }
        if let ctfWriter {
            // What waited for declarations is written now; the files close.
            do throws(CTFError) {
                let summary = try ctfWriter.finish()
                ctfSummaryValue.withLock { $0 = summary }
            } catch {
                fail(.ctf(error))
            }
        }
        let all = outcomes.withLock { $0 }
        if all.contains(.failed) || !failures.isEmpty { return .failed }
        return all.allSatisfy { $0 == .drained } ? .drained : .stopped
    }

    /// Asks every reader to stop after the sub-buffer in hand and wakes
    /// those waiting in poll. Thread-safe; any number of times, before or
    /// during `run` (before: `run` returns `.stopped` at once).
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wakeReaders()
    }

    /// Whether `stop()` was called.
    public var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    /// With CTF output, after `run`: what was written and the problems
    /// found in the sub-buffers (each left out, or the part of it that
    /// could not be read).
    public var ctfSummary: CTFTraceWriter.Summary? { ctfSummaryValue.withLock { $0 } }

    /// What ended or disturbed the run, in the order it happened.
    public var failures: [ConsumerError] { failureList.withLock { $0 } }

    // MARK: Progress

    /// The counters so far; any thread, any time.
    public var progress: ConsumerProgress {
        var p = ConsumerProgress()
        p.buffers = readers.count
        for r in readers {
            p.bytes += r.bytes.load(ordering: .relaxed)
            p.subbuffers += r.subbuffers.load(ordering: .relaxed)
            p.pushed += r.pushed.load(ordering: .relaxed)
            p.eventsLost += UInt64(r.eventsLost.load(ordering: .relaxed))
            p.corruptedSubbuffers += UInt64(r.corruptedSubbuffers.load(ordering: .relaxed))
        }
        return p
    }

    /// Seconds since the consumer was made.
    public var elapsedSeconds: Double { Double(MonotonicClock.now() - startTime) / 1e9 }

    /// The progress line: bytes, sub-buffers, buffers, rate, losses.
    public func progressLine() -> String { progress.line(seconds: elapsedSeconds) }

    /// "done: ..." or "stopped: ...": the progress line as a summary.
    public func summary(stopped: Bool) -> String { progress.summary(stopped: stopped, seconds: elapsedSeconds) }

    // MARK: The readers

    private var ending: Bool { woken.load(ordering: .acquiring) }

    private func wakeReaders() {
        guard !woken.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // One byte, never read: the pipe stays readable for every poll.
        // It cannot fail short of a bug (the pipe is empty and ours).
        try? wake.writeEnd.writeFully([1])
    }

    private func fail(_ error: ConsumerError) {
        failureList.withLock { $0.append(error) }
        wakeReaders()
    }

    /// One reader thread: poll its buffers and move what they deliver until
    /// each hung up, or the run ends.
    ///
    /// A mapped buffer is polled through its bell (the eventfd the server
    /// rings where it would wake the file's poll), and its state is the
    /// ring's. The bell says "look", not what is there, so a mapped buffer
    /// is looked at when it rang, after each drain of it, and at least
    /// every second; the file's poll, the server's word, decides what the
    /// ring cannot tell (its lock held, its state impossible, a buffer the
    /// server gave up) and confirms a hang-up.
    private func read(_ group: [BufferReader]) -> Outcome {
        let pipe: OwnedPipe
        do throws(Errno) { pipe = try OwnedPipe() } catch {
            fail(.pipe(error))
            return .failed
        }
        // A larger pipe moves a sub-buffer in fewer splices; the default
        // size works too (the copy loops until the sub-buffer is moved).
        _ = try? pipe.writeEnd.setPipeSize(1 << 20)

        let wanted = Int16(POLLIN | POLLPRI)
        var live = group
        // Slot 0 is the wake pipe; slot i + 1 is live[i]: its bell if it is
        // mapped, else its file.
        var slots = [pollfd(fd: wake.readEnd.rawValue, events: Int16(POLLIN), revents: 0)]
            + live.map { r in
                r.mapped.map { pollfd(fd: $0.bell.rawValue, events: Int16(POLLIN), revents: 0) }
                    ?? pollfd(fd: r.file.rawValue, events: wanted, revents: 0)
            }
        // When each mapped buffer was last looked at (monotonic ns).
        var looked = [UInt64](repeating: MonotonicClock.now(), count: live.count)
        let lookEvery: UInt64 = 1_000_000_000
        let timeout = live.contains { $0.mapped != nil } && (pollTimeout < 0 || pollTimeout > 1000) ? 1000 : pollTimeout
        while !live.isEmpty {
            do throws(Errno) {
                _ = try LTTSystem.poll(&slots, milliseconds: timeout)
            } catch {
                fail(.poll(error))
                return .failed
            }
            if slots[0].revents != 0 || ending { return endedBy() }
            let now = MonotonicClock.now()
            // What each buffer says: the file's poll value, or the ring's.
            var states: [(index: Int, revents: Int16, throughFile: Bool)] = []
            for (i, reader) in live.enumerated() {
                let revents = slots[i + 1].revents
                guard let mapped = reader.mapped else {
                    if revents != 0 { states.append((i, revents, false)) }
                    continue
                }
                if revents != 0 { mapped.quietBell() }
                guard revents != 0 || now &- looked[i] >= lookEvery else { continue }
                looked[i] = now
                if let state = Self.mappedState(reader, periodic: revents == 0) { states.append((i, state.revents, state.throughFile)) }
            }
            // Full buffers first, as lttd serves them.
            let ordered = states.filter { $0.revents == RelayPollState.full.pollMask }
                + states.filter { $0.revents != RelayPollState.full.pollMask }
            var hungUp: [Int] = []
            for (i, revents, throughFile) in ordered {
                let reader = live[i]
                switch revents {
                case RelayPollState.readable.pollMask, RelayPollState.full.pollMask:
                    do throws(ConsumerError) {
                        while try reader.moveSubbuffer(through: pipe, throughFile: throughFile) {
                            if ending { return endedBy() }
                        }
                    } catch {
                        fail(error)
                        return .failed
                    }
                    // Drained: a mapped buffer finalized before its last
                    // sub-buffers were taken rang its bell already; its
                    // hang-up is confirmed now, not at the next look.
                    // (Deliveries ring after the bell was quieted: none is
                    // missed.)
                    if reader.mapped != nil, mappedHungUp(reader) { hungUp.append(i) }
                case RelayPollState.hungUp.pollMask:
                    hungUp.append(i)
                default:
                    fail(.unexpectedPollEvents(reader.buffer.path, revents))
                    return .failed
                }
            }
            for i in Set(hungUp).sorted(by: >) {
                live.remove(at: i)
                slots.remove(at: i + 1)
                looked.remove(at: i)
            }
        }
        return .drained
    }

    /// Whether a mapped buffer's ring says it hung up and its file agrees.
    private func mappedHungUp(_ reader: BufferReader) -> Bool {
        guard reader.mapped?.buffer.readerPollState == .hungUp else { return false }
        return reader.filePollState() == RelayPollState.hungUp.pollMask
    }

    /// What a mapped buffer has: the ring's state if it can tell and has
    /// something (readable, full), else the file's poll value (nil: none).
    /// A ring that says nothing is asked of the file only when `periodic`
    /// (the server may have given the buffer up).
    private static func mappedState(_ reader: BufferReader, periodic: Bool) -> (revents: Int16, throughFile: Bool)? {
        guard let mapped = reader.mapped else { return nil }
        let state = mapped.buffer.readerPollState
        switch state {
        case .readable?, .full?:
            return (state!.pollMask, false)
        case RelayPollState.none? where !periodic:
            return nil
        default:
            let file = reader.filePollState()
            return file == 0 ? nil : (file, true)
        }
    }

    /// Why a reader leaves with buffers still live.
    private func endedBy() -> Outcome { failures.isEmpty ? .stopped : .failed }

    // MARK: Files

    /// The regular files below `directory` (symbolic links followed), by
    /// relative path, sorted; names starting with "." are left out.
    private static func regularFiles(below directory: String) -> [String] {
        var found: [String] = []
        let walker = FileManager.default.enumerator(atPath: directory)
        while let name = walker?.nextObject() as? String {
            if (name as NSString).lastPathComponent.hasPrefix(".") { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory),
               !isDirectory.boolValue {
                found.append(name)
            }
        }
        return found.sorted()
    }
}
