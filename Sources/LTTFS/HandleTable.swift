import LTTSystem
import CFuse
import LTTFormat
import LTTRelay
import Synchronization

/// An open file or directory of the filesystem (what `fi->fh` names).
final class Handle: @unchecked Sendable {
    enum Kind {
        /// A directory listing taken at opendir, so offsets stay valid.
        case directory([(name: String, inode: UInt64, isDirectory: Bool)])
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
    /// The kernel's poll handle of the last POLL on this file (buffer files).
    private let poll = Locked<UncheckedPointer?>(nil)

    init(_ kind: Kind) { self.kind = kind }

    var buffer: RelayBuffer? {
        if case .buffer(let b, _) = kind { return b }
        return nil
    }

    /// Keeps `handle`, destroying the one it replaces.
    func setPollHandle(_ handle: OpaquePointer) {
        let new = UncheckedPointer(handle)
        let old = poll.withLock { p -> UncheckedPointer? in
            defer { p = new }
            return p
        }
        if let old { fuse_pollhandle_destroy(old.raw) }
    }

    /// Takes the poll handle out (to notify it, or to drop it at release).
    func takePollHandle() -> OpaquePointer? {
        poll.withLock { p in
            defer { p = nil }
            return p
        }?.raw
    }
}

/// fh -> Handle, for every open file and directory.
final class HandleTable: Sendable {
    private struct State {
        var handles: [UInt64: Handle] = [:]
        var next: UInt64 = 1
    }
    private let state = Locked(State())

    func add(_ handle: Handle) -> UInt64 {
        state.withLock { s in
            let fh = s.next
            s.next += 1
            s.handles[fh] = handle
            return fh
        }
    }

    func get(_ fh: UInt64) -> Handle? { state.withLock { $0.handles[fh] } }

    @discardableResult
    func remove(_ fh: UInt64) -> Handle? { state.withLock { $0.handles.removeValue(forKey: fh) } }

    /// Every open buffer file (for the notifier).
    var bufferHandles: [Handle] {
        state.withLock { s in s.handles.values.filter { $0.buffer != nil } }
    }

    /// An open handle on the buffer file `inode`, if any.
    func bufferHandle(inode: UInt64) -> Handle? {
        state.withLock { s in
            s.handles.values.first { h in
                if case .buffer(_, let i) = h.kind { return i == inode }
                return false
            }
        }
    }

}
