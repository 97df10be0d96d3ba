/// What the filesystem asks of the kernel on its own initiative, outside
/// any reply: the FUSE adapter implements these with libfuse's
/// notifications; tests implement them to watch what the logic asks.

/// The kernel's page cache of buffer files (fuse-kernel-notes.md, 1:
/// splice reads through it on these kernels).
protocol PageCache: Sendable {
    /// Drops every cached page of `inode`.
    func invalidate(inode: UInt64)
    /// Stores `bytes` as the cached contents of `inode` from offset 0.
    func store(inode: UInt64, bytes: UnsafeRawBufferPointer)
}

/// One poll(2) waiting on a buffer file. `wake` tells the kernel to ask
/// again; a waiter is woken at most once, and dropped (released) after, or
/// when the file is closed or a newer poll replaces it.
protocol PollWaiter: AnyObject, Sendable {
    func wake()
}
