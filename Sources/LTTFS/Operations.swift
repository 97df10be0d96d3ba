import CFuse

/// The libfuse low-level operations table. Each entry is a C function that
/// finds the FileSystem in the request's userdata and calls its handler.
/// Operations not listed answer ENOSYS, which the kernel turns into the
/// usual errors (for example ENOTTY is not among them: ioctl is listed).
@inline(__always)
private func fs(_ req: fuse_req_t?) -> FileSystem {
    Unmanaged<FileSystem>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

enum Operations {
    static func table() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.lookup = { req, parent, name in
            fs(req).lookup(req!, parent: parent, name: String(cString: name!))
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
            fs(req).getattr(req!, inode: ino, fh: fi?.pointee.fh)
        }
        ops.setattr = { req, ino, _, toSet, fi in
            fs(req).setattr(req!, inode: ino, fh: fi?.pointee.fh, changes: toSet)
        }
        // The tree is the server's: every call that would change it is EPERM
        // (left out, they would answer ENOSYS).
        ops.mkdir = { req, _, _, _ in fs(req).refuseTreeChange(req!, "mkdir") }
        ops.mknod = { req, _, _, _, _ in fs(req).refuseTreeChange(req!, "mknod") }
        ops.create = { req, _, _, _, _ in fs(req).refuseTreeChange(req!, "create") }
        ops.symlink = { req, _, _, _ in fs(req).refuseTreeChange(req!, "symlink") }
        ops.link = { req, _, _, _ in fs(req).refuseTreeChange(req!, "link") }
        ops.unlink = { req, _, _ in fs(req).refuseTreeChange(req!, "unlink") }
        ops.rmdir = { req, _, _ in fs(req).refuseTreeChange(req!, "rmdir") }
        ops.rename = { req, _, _, _, _, _ in fs(req).refuseTreeChange(req!, "rename") }
        ops.opendir = { req, ino, fi in
            fs(req).opendir(req!, inode: ino, fi: fi!)
        }
        ops.readdir = { req, _, size, off, fi in
            fs(req).readdir(req!, size: size, offset: Int(off), fh: fi!.pointee.fh)
        }
        ops.releasedir = { req, _, fi in
            fs(req).releasedir(req!, fh: fi!.pointee.fh)
        }
        ops.open = { req, ino, fi in
            fs(req).open(req!, inode: ino, fi: fi!)
        }
        ops.release = { req, _, fi in
            fs(req).release(req!, fh: fi!.pointee.fh)
        }
        ops.read = { req, _, size, off, fi in
            // The kernel names a lock owner for read(2) on a direct_io file
            // (fuse_send_read) and none when it fills its page cache
            // (splice, an mmap fault: fuse_read_folio, fuse_readahead).
            fs(req).read(req!, size: size, offset: Int(off), fh: fi!.pointee.fh,
                         fillsPageCache: fi!.pointee.lock_owner == 0)
        }
        ops.write = { req, _, buf, size, _, fi in
            fs(req).write(req!, bytes: UnsafeRawBufferPointer(start: buf, count: size), fh: fi!.pointee.fh)
        }
        ops.ioctl = { req, _, cmd, _, fi, _, inBuf, inSize, outSize in
            fs(req).ioctl(req!, command: cmd, fh: fi!.pointee.fh,
                          input: UnsafeRawBufferPointer(start: inBuf, count: inSize), outputSize: outSize)
        }
        ops.poll = { req, _, fi, ph in
            fs(req).poll(req!, fh: fi!.pointee.fh, pollHandle: ph)
        }
        return ops
    }
}
