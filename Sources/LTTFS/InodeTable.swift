import LTTSystem
import LTTFormat
import LTTRelay
import Synchronization

/// Inode numbers for nodes, stable while the kernel knows them.
///
/// A node gets a number at its first lookup and keeps it until the kernel
/// forgets it (FUSE_FORGET brings its lookup count to zero) and it no longer
/// exists; a trace set up again under an old name is another node (its
/// serial differs), so it never inherits the numbers of the destroyed one.
final class InodeTable: Sendable {
    struct State {
        var byNode: [Node: UInt64] = [.root: 1]
        var byInode: [UInt64: Node] = [1: .root]
        var lookups: [UInt64: UInt64] = [:]
        var next: UInt64 = 2
    }

    private let state = Locked(State())

    /// The inode of `node`, counting one kernel lookup when `lookup` is set.
    func inode(for node: Node, lookup: Bool) -> UInt64 {
        state.withLock { s in
            let ino: UInt64
            if let known = s.byNode[node] {
                ino = known
            } else {
                ino = s.next
                s.next += 1
                s.byNode[node] = ino
                s.byInode[ino] = node
            }
            if lookup { s.lookups[ino, default: 0] += 1 }
            return ino
        }
    }

    func node(for inode: UInt64) -> Node? {
        state.withLock { $0.byInode[inode] }
    }

    /// FUSE_FORGET: the kernel dropped `count` lookups. A node nobody looks
    /// up and that `stillExists` denies is removed.
    func forget(_ inode: UInt64, count: UInt64, stillExists: (Node) -> Bool) {
        state.withLock { s in
            guard inode != 1, let node = s.byInode[inode] else { return }
            let left = (s.lookups[inode] ?? 0) >= count ? (s.lookups[inode] ?? 0) - count : 0
            if left == 0 {
                s.lookups[inode] = nil
                if !stillExists(node) {
                    s.byInode[inode] = nil
                    s.byNode[node] = nil
                }
            } else {
                s.lookups[inode] = left
            }
        }
    }

}
