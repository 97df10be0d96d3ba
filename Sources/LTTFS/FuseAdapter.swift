#if canImport(Glibc)
import Glibc
#endif
import CFuse
import LTTRelay
import SystemPackage

/// Nothing under the mount point is cached by the kernel: entries and
/// attributes are asked again every time (filesystem.md: "visible at once").
private let cacheTimeout = 0.0

@inline(__always)
private func fs(_ req: fuse_req_t?) -> FileSystem {
    Unmanaged<FileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

/// Runs `body`, which replies on success; an errno it throws is the reply.
@inline(__always)
private func reply(_ req: fuse_req_t?, _ body: () throws(Errno) -> Void) {
    do { try body() } catch { fuse_reply_err(req, error.rawValue) }
}

private func refuse(_ req: fuse_req_t?, _ operation: String) {
    fuse_reply_err(req, fs(req).refuseTreeChange(operation).rawValue)
}

/// The one file that speaks libfuse's low-level API: each operation finds
/// the `FileSystem` in the request's userdata, calls its handler, and turns
/// the value or the errno it returns into the reply. Operations not listed
/// answer ENOSYS, which the kernel turns into the usual errors.
enum FuseAdapter {
    static func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.lookup = { req, parent, name in
            reply(req) { () throws(Errno) in
                let (inode, attributes) = try fs(req).lookup(parent: parent, name: String(cString: name!))
                var entry = fuse_entry_param()
                entry.ino = inode
                entry.generation = 1
                entry.attr = attributes
                entry.attr_timeout = cacheTimeout
                entry.entry_timeout = cacheTimeout
                fuse_reply_entry(req, &entry)
            }
        }
        ops.forget = { req, ino, count in
            fs(req).forget(ino, count: count)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            let f = fs(req)
            for i in 0..<count {
                f.forget(forgets![i].ino, count: forgets![i].nlookup)
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, fi in
            reply(req) { () throws(Errno) in
                var st = try fs(req).getattr(inode: ino, fh: fi?.pointee.fh)
                fuse_reply_attr(req, &st, cacheTimeout)
            }
        }
        ops.setattr = { req, ino, _, toSet, fi in
            reply(req) { () throws(Errno) in
                var changes = FileSystem.AttributeChanges()
                if toSet & FUSE_SET_ATTR_MODE != 0 { changes.insert(.mode) }
                if toSet & FUSE_SET_ATTR_UID != 0 { changes.insert(.owner) }
                if toSet & FUSE_SET_ATTR_GID != 0 { changes.insert(.group) }
                if toSet & FUSE_SET_ATTR_SIZE != 0 { changes.insert(.size) }
                var st = try fs(req).setattr(inode: ino, fh: fi?.pointee.fh, changes: changes)
                fuse_reply_attr(req, &st, cacheTimeout)
            }
        }
        // The tree is the server's: every call that would change it is EPERM
        // (left out, they would answer ENOSYS).
        ops.mkdir = { req, _, _, _ in refuse(req, "mkdir") }
        ops.mknod = { req, _, _, _, _ in refuse(req, "mknod") }
        ops.create = { req, _, _, _, _ in refuse(req, "create") }
        ops.symlink = { req, _, _, _ in refuse(req, "symlink") }
        ops.link = { req, _, _, _ in refuse(req, "link") }
        ops.unlink = { req, _, _ in refuse(req, "unlink") }
        ops.rmdir = { req, _, _ in refuse(req, "rmdir") }
        ops.rename = { req, _, _, _, _, _ in refuse(req, "rename") }
        ops.opendir = { req, ino, fi in
            reply(req) { () throws(Errno) in
                let fh = try fs(req).opendir(inode: ino)
                fi!.pointee.fh = fh
                // The opener is gone (killed while it waited): the kernel
                // will never release what it never got.
                if fuse_reply_open(req, fi) != 0 { fs(req).releasedir(fh: fh) }
            }
        }
        ops.readdir = { req, _, size, off, fi in
            reply(req) { () throws(Errno) in
                let entries = try fs(req).readdir(fh: fi!.pointee.fh, offset: Int(off))
                var buffer = [CChar](repeating: 0, count: size)
                var used = 0
                for (index, e) in zip(entries.indices, entries) {
                    var st = stat()
                    st.st_ino = UInt(e.inode)
                    st.st_mode = e.isDirectory ? S_IFDIR : S_IFREG
                    let needed = buffer.withUnsafeMutableBufferPointer { b in
                        fuse_add_direntry(req, b.baseAddress! + used, size - used, e.name, &st, off_t(index + 1))
                    }
                    if needed > size - used { break }
                    used += needed
                }
                fuse_reply_buf(req, buffer, used)
            }
        }
        ops.releasedir = { req, _, fi in
            fs(req).releasedir(fh: fi!.pointee.fh)
            fuse_reply_err(req, 0)
        }
        ops.open = { req, ino, fi in
            reply(req) { () throws(Errno) in
                let fh = try fs(req).open(inode: ino, flags: fi!.pointee.flags)
                // Never cached by the kernel but for the page-cache policy of
                // buffer files (FileSystem.refreshPageCache). Never
                // nonseekable: lttd splices with an explicit offset.
                lttfs_fi_set_direct_io(fi, 1)
                lttfs_fi_set_keep_cache(fi, 0)
                lttfs_fi_set_nonseekable(fi, 0)
                fi!.pointee.fh = fh
                // If the opener is gone (killed while the open was on its
                // way), the kernel never gets this file and never releases
                // it: release it here, or a buffer file would keep its one
                // reader slot taken (EBUSY for every consumer after).
                if fuse_reply_open(req, fi) != 0 { fs(req).release(fh: fh) }
            }
        }
        ops.release = { req, _, fi in
            fs(req).release(fh: fi!.pointee.fh)
            fuse_reply_err(req, 0)
        }
        ops.read = { req, _, size, off, fi in
            reply(req) { () throws(Errno) in
                // The kernel names a lock owner for read(2) on a direct_io
                // file (fuse_send_read) and none when it fills its page
                // cache (splice, an mmap fault: fuse_read_folio, fuse_readahead).
                switch try fs(req).read(fh: fi!.pointee.fh, size: size, offset: Int(off),
                                        fillsPageCache: fi!.pointee.lock_owner == 0) {
                case .regions(let regions) where regions.isEmpty:
                    fuse_reply_buf(req, nil, 0)
                case .regions(let regions):
                    var iov = regions.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
                    fuse_reply_iov(req, &iov, Int32(iov.count))
                case .text(let text):
                    _ = text.withUnsafeBytes { fuse_reply_buf(req, $0.baseAddress, $0.count) }
                }
            }
        }
        ops.write = { req, _, buf, size, _, fi in
            // A signal to the writer arrives as a FUSE interrupt: it ends a
            // write_event's wait for room (EINTR if the event went nowhere).
            let cancellation = WaitCancellation()
            let token = Unmanaged.passRetained(cancellation)
            fuse_req_interrupt_func(req, { _, data in
                guard let data else { return }
                Unmanaged<WaitCancellation>.fromOpaque(data).takeUnretainedValue().cancel()
            }, token.toOpaque())
            let result = Result { () throws(Errno) in
                try fs(req).write(fh: fi!.pointee.fh, bytes: UnsafeRawBufferPointer(start: buf, count: size),
                                  cancellation: cancellation)
            }
            fuse_req_interrupt_func(req, nil, nil)
            token.release()
            switch result {
            case .success(let used): fuse_reply_write(req, used)
            case .failure(let error): fuse_reply_err(req, error.rawValue)
            }
        }
        ops.ioctl = { req, _, cmd, _, fi, _, inBuf, inSize, outSize in
            reply(req) { () throws(Errno) in
                let input = UnsafeRawBufferPointer(start: inBuf, count: inSize)
                switch try fs(req).ioctl(fh: fi!.pointee.fh, command: cmd, input: input, outputSize: outSize) {
                case .nothing:
                    fuse_reply_ioctl(req, 0, nil, 0)
                case .word(var value):
                    fuse_reply_ioctl(req, 0, &value, 4)
                case .bytes(let bytes):
                    _ = bytes.withUnsafeBytes { fuse_reply_ioctl(req, 0, $0.baseAddress, $0.count) }
                }
            }
        }
        ops.poll = { req, _, fi, ph in
            let waiter = ph.map(FusePollHandle.init)
            fuse_reply_poll(req, UInt32(UInt16(bitPattern: fs(req).poll(fh: fi!.pointee.fh, waiter: waiter))))
        }
        return ops
    }
}

/// The kernel's poll handle of one POLL request: woken once, destroyed
/// when dropped.
final class FusePollHandle: PollWaiter, @unchecked Sendable {
    /// Owned: nothing else destroys it.
    private let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    func wake() { fuse_lowlevel_notify_poll(handle) }
    deinit { fuse_pollhandle_destroy(handle) }
}

/// The page cache of one session's buffer files, through libfuse's
/// notifications (inval_inode, store). Errors other than ENOENT (the
/// kernel has no such inode cached) are logged at debug level by the caller.
struct FusePageCache: PageCache, @unchecked Sendable {
    /// Valid from mount to unmount: the server detaches it first.
    let session: OpaquePointer
    let failed: @Sendable (String) -> Void

    func invalidate(inode: UInt64) {
        let rc = fuse_lowlevel_notify_inval_inode(session, inode, 0, 0)
        if rc != 0 && rc != -ENOENT { failed("inval_inode \(inode): \(Errno(rawValue: -rc).name)") }
    }

    func store(inode: UInt64, bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let rc = lttfs_fuse_notify_store(session, inode, 0, base, bytes.count)
        if rc != 0 && rc != -ENOENT { failed("notify_store \(inode): \(Errno(rawValue: -rc).name)") }
    }
}
