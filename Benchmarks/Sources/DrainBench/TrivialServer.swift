// The ceiling: a trivial FUSE server with one file, `data`, served from
// memory (direct_io, no page-cache tricks), on the same libfuse and the
// same machine as lttfs; writes to it are answered at once and dropped.
#if canImport(Glibc)
import Glibc
#endif
import CFuse
import Foundation

final class TrivialServer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    let mountpoint: String
    var session: OpaquePointer?
    let done = DispatchSemaphore(value: 0)

    init(size: Int, mountpoint: String) {
        bytes = .allocate(byteCount: size, alignment: 4096)
        for i in stride(from: 0, to: size, by: 8) { bytes.storeBytes(of: UInt64(i), toByteOffset: i, as: UInt64.self) }
        self.mountpoint = mountpoint
    }

    func start() {
        var ops = fuse_lowlevel_ops()
        ops.lookup = { req, parent, name in
            let s = Unmanaged<TrivialServer>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
            guard parent == 1, String(cString: name!) == "data" else { fuse_reply_err(req, ENOENT); return }
            var e = fuse_entry_param()
            e.ino = 2
            e.attr = s.attr(2)
            fuse_reply_entry(req, &e)
        }
        ops.getattr = { req, ino, _ in
            let s = Unmanaged<TrivialServer>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
            var st = s.attr(ino)
            fuse_reply_attr(req, &st, 0)
        }
        ops.open = { req, _, fi in
            lttfs_fi_set_direct_io(fi, 1)
            fuse_reply_open(req, fi)
        }
        // Writes are taken and dropped: a write round trip and nothing else
        // (the peer of lttfs's write_event in Benchmarks/write-event.sh).
        ops.write = { req, _, _, size, _, _ in
            fuse_reply_write(req, size)
        }
        ops.read = { req, _, size, off, _ in
            let s = Unmanaged<TrivialServer>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
            let start = min(Int(off), s.bytes.count)
            let n = min(size, s.bytes.count - start)
            fuse_reply_buf(req, s.bytes.baseAddress! + start, n)
        }
        let me = Unmanaged.passRetained(self).toOpaque()
        let args = ["trivial", "-o", "fsname=trivial,subtype=trivial"]
        let dup = args.map { strdup($0) }
        var argv = dup + [nil]
        session = argv.withUnsafeMutableBufferPointer {
            lttfs_fuse_session_new(Int32(args.count), $0.baseAddress!, &ops, MemoryLayout<fuse_lowlevel_ops>.size, me)
        }
        dup.forEach { free($0) }
        precondition(session != nil && fuse_session_mount(session, mountpoint) == 0, "trivial server: mount failed")
        Thread { [self] in
            _ = lttfs_fuse_session_loop_mt(session!, 16, 4)
            done.signal()
        }.start()
    }

    func attr(_ ino: UInt64) -> stat {
        var st = stat()
        st.st_ino = UInt(ino)
        st.st_mode = ino == 1 ? S_IFDIR | 0o555 : S_IFREG | 0o666
        st.st_nlink = 1
        st.st_size = ino == 1 ? 0 : bytes.count
        return st
    }

    func stop() {
        if let session {
            fuse_session_exit(session)
            fuse_session_unmount(session)
            done.wait()
            fuse_session_destroy(session)
        }
        session = nil
    }
}
