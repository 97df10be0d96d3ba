import LTTCTF
import LTTFormat
import LTTSystem
import SystemPackage

/// Why a consumer could not be set up, or what stopped it: each case names
/// the file and, where a system call failed, its errno.
public enum ConsumerError: Error, Equatable, Sendable, CustomStringConvertible {
    // Setting up (thrown by `TraceConsumer.init`).

    /// The trace directory does not exist or is not a directory.
    case notATraceDirectory(String)
    /// The output directory exists and appending was not asked for.
    case outputExists(String)
    /// A directory of the output could not be created.
    case cannotCreateDirectory(String, Errno)
    /// The trace directory holds no regular file.
    case noBufferFiles(String)
    /// A buffer file could not be opened (EBUSY: another reader has it).
    case cannotOpen(String, Errno)
    /// A regular file of the trace directory refused RELAY_GET_SUBBUF_SIZE.
    case notABufferFile(String, Errno)
    /// An output file could not be created or opened.
    case cannotCreateOutput(String, Errno)

    // Running (collected in `TraceConsumer.failures`).

    /// A reader's splice pipe could not be created.
    case pipe(Errno)
    /// poll(2) failed.
    case poll(Errno)
    /// poll(2) reported something on a buffer file other than exactly one
    /// of POLLIN, POLLPRI, POLLHUP.
    case unexpectedPollEvents(String, Int16)
    /// RELAY_GET_SUBBUF failed with other than EAGAIN, or RELAY_PUT_SUBBUF
    /// with other than EIO.
    case ioctl(String, RelayIoctl, Errno)
    /// splice(2) from the buffer file failed.
    case splice(String, offset: Int64, Errno)
    /// splice(2) from the buffer file moved nothing before the end of the
    /// sub-buffer.
    case spliceReturnedZero(String, offset: Int64)
    /// Moving the bytes from the pipe to the output file failed (or moved
    /// nothing).
    case output(String, Errno?)
    /// The CTF trace could not be written.
    case ctf(CTFError)
    /// CTF output cannot be appended to.
    case ctfAppend
    /// lttng-relayd could not be reached or refused the session.
    case relayd(String)
    /// read(2) of a taken sub-buffer failed or ended early.
    case read(String, Errno?)
    /// Shared memory was asked for and the server would not map the buffer
    /// (TraceConsumer.Transport.sharedMemory).
    case sharedMemory(String, String)

    /// The buffer file, trace or output path the error is about.
    public var path: String? {
        switch self {
        case .notATraceDirectory(let p), .outputExists(let p), .cannotCreateDirectory(let p, _), .noBufferFiles(let p),
             .cannotOpen(let p, _), .notABufferFile(let p, _), .cannotCreateOutput(let p, _),
             .unexpectedPollEvents(let p, _), .ioctl(let p, _, _), .splice(let p, _, _), .spliceReturnedZero(let p, _),
             .output(let p, _), .read(let p, _), .sharedMemory(let p, _):
            p
        case .pipe, .poll, .ctf, .ctfAppend, .relayd:
            nil
        }
    }

    /// The errno of the failed system call, if one failed.
    public var errno: Errno? {
        switch self {
        case .cannotCreateDirectory(_, let e), .cannotOpen(_, let e), .notABufferFile(_, let e),
             .cannotCreateOutput(_, let e), .pipe(let e), .poll(let e), .ioctl(_, _, let e), .splice(_, _, let e):
            e
        case .output(_, let e), .read(_, let e):
            e
        case .ctf(.cannotCreate(_, let e)), .ctf(.cannotWrite(_, let e)):
            e
        case .notATraceDirectory, .outputExists, .noBufferFiles, .unexpectedPollEvents, .spliceReturnedZero, .ctf, .ctfAppend,
             .relayd, .sharedMemory:
            nil
        }
    }

    public var description: String {
        switch self {
        case .notATraceDirectory(let p):
            "\(p) is not a trace directory (expected <mount>/ltt/<trace>)"
        case .outputExists(let p):
            "\(p) exists: choose a new directory, or -a to append"
        case .cannotCreateDirectory(let p, let e):
            "cannot create \(p): \(e.explained)"
        case .noBufferFiles(let p):
            "no buffer file in \(p)"
        case .cannotOpen(let p, let e):
            "cannot open \(p): \(e.explained)\(e == .resourceBusy ? ": another consumer has it" : "")"
        case .notABufferFile(let p, let e):
            "\(p) is not a buffer file (\(RelayIoctl.getSubbufferSize.name): \(e.explained))"
        case .cannotCreateOutput(let p, let e):
            "cannot create \(p): \(e.explained)"
        case .pipe(let e):
            "cannot create a pipe: \(e.explained)"
        case .poll(let e):
            "poll: \(e.explained)"
        case .unexpectedPollEvents(let p, let revents):
            "\(p): poll returned 0x\(String(UInt16(bitPattern: revents), radix: 16))"
        case .ioctl(let p, let request, let e):
            "\(p): \(request.name): \(e.explained)"
        case .splice(let p, let offset, let e):
            "\(p): splice at offset \(offset): \(e.explained)"
        case .spliceReturnedZero(let p, let offset):
            "\(p): splice at offset \(offset) returned 0 before the end of the sub-buffer"
        case .output(let p, let e):
            "\(p): writing the output: \(e?.explained ?? "nothing moved")"
        case .ctf(let e):
            e.description
        case .ctfAppend:
            "a CTF trace cannot be appended to: choose a new directory"
        case .relayd(let why):
            why
        case .sharedMemory(let p, let why):
            "\(p): cannot be read through shared memory: \(why)"
        case .read(let p, let e):
            "\(p): read of the sub-buffer: \(e?.explained ?? "it ended early")"
        }
    }
}
