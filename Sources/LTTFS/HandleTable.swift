import LTTSystem
import LTTFormat
import LTTRelay
import Synchronization

/// An open file or directory of the filesystem (what `fi->fh` names).
final class Handle: @unchecked Sendable {
    enum Kind {
        /// A directory listing taken at opendir, so offsets stay valid.
        case directory([DirectoryEntry])
        /// A control file; `content` is the text taken at open for readers.
        case control(Node, content: [UInt8]?)
        case writeEvent
        /// A buffer file: the buffer stays alive while this handle does,
        /// even after its trace was destroyed.
        case buffer(RelayBuffer, inode: UInt64)
    }

    let kind: Kind
    /// Buffer files: a READ request arrived since the last GET (a read()
    /// consumer, or the kernel filling its page cache).
    let readSinceGet = Atomic<Bool>(false)
    /// Buffer files: no GET answered yet on this handle.
    let firstGet = Atomic<Bool>(true)
    /// The last poll(2) waiting on this file (buffer files).
    private let pollWaiter = Locked<(any PollWaiter)?>(nil)
    /// Buffer files: the leave to work the buffer through shared memory
    /// (LTTFS_READER_GRANT), made at the first ask, ended at release.
    private let grant = Locked<ReaderGrants.Grant?>(nil)

    init(_ kind: Kind) { self.kind = kind }

    var buffer: RelayBuffer? {
        if case .buffer(let b, _) = kind { return b }
        return nil
    }

    /// This buffer file's grant (made now if it has none). Buffer files only.
    var readerGrant: ReaderGrants.Grant {
        grant.withLock { g in
            if let g { return g }
            guard let buffer else { preconditionFailure("a reader grant for a file that is no buffer") }
            let made = ReaderGrants.Grant.make(for: buffer)
            g = made
            return made
        }
    }

    /// The grant, if one was asked for.
    var existingReaderGrant: ReaderGrants.Grant? { grant.withLock { $0 } }

    /// Keeps `waiter`; the one it replaces is dropped (it was answered by
    /// the poll reply that came with it).
    func setPollWaiter(_ waiter: any PollWaiter) {
        let old = pollWaiter.withLock { w -> (any PollWaiter)? in
            defer { w = waiter }
            return w
        }
        _ = old   // released here, outside the lock
    }

    /// Takes the waiter out (to wake it, or to drop it at release).
    func takePollWaiter() -> (any PollWaiter)? {
        pollWaiter.withLock { w in
            defer { w = nil }
            return w
        }
    }
}

/// One entry of a directory listing.
struct DirectoryEntry: Equatable, Sendable {
    let name: String
    let inode: UInt64
    let isDirectory: Bool
}

/// fh -> Handle, for every open file and directory.
final class HandleTable: Sendable {
    private struct State {
        var handles: [UInt64: Handle] = [:]
        /// The handle of each open buffer (one reader per buffer), for the
        /// notifier: no scan of every handle per posted buffer.
        var byBuffer: [ObjectIdentifier: Handle] = [:]
        var next: UInt64 = 1
    }
    private let state = Locked(State())

    func add(_ handle: Handle) -> UInt64 {
        state.withLock { s in
            let fh = s.next
            s.next += 1
            s.handles[fh] = handle
            if let buffer = handle.buffer { s.byBuffer[ObjectIdentifier(buffer)] = handle }
            return fh
        }
    }

    func get(_ fh: UInt64) -> Handle? { state.withLock { $0.handles[fh] } }

    @discardableResult
    func remove(_ fh: UInt64) -> Handle? {
        state.withLock { s in
            let handle = s.handles.removeValue(forKey: fh)
            if let buffer = handle?.buffer, s.byBuffer[ObjectIdentifier(buffer)] === handle {
                s.byBuffer[ObjectIdentifier(buffer)] = nil
            }
            return handle
        }
    }

    /// The open handle of the buffer `buffer` identifies (a buffer has one
    /// reader at most; the handle keeps it alive).
    func bufferHandle(of buffer: ObjectIdentifier) -> Handle? {
        state.withLock { $0.byBuffer[buffer] }
    }

    /// Every buffer a reader has open, with its file's inode (destroyed
    /// traces' too: their handles keep them).
    func openBuffers() -> [(buffer: RelayBuffer, inode: UInt64)] {
        state.withLock { s in
            s.byBuffer.values.compactMap { h in
                if case .buffer(let b, let i) = h.kind { return (b, i) }
                return nil
            }
        }
    }

    /// An open handle on the buffer file `inode`, if any.
    func bufferHandle(inode: UInt64) -> Handle? {
        state.withLock { s in
            s.byBuffer.values.first { h in
                if case .buffer(_, let i) = h.kind { return i == inode }
                return false
            }
        }
    }

}
