/// A C handle (fuse_session *, fuse_pollhandle *) kept behind a lock. The
/// lock is what makes sharing it safe; the wrapper only says so to Swift.
struct UncheckedPointer: @unchecked Sendable, Equatable {
    let raw: OpaquePointer
    init?(_ raw: OpaquePointer?) {
        guard let raw else { return nil }
        self.raw = raw
    }
}
