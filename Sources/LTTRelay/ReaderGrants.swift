#if canImport(Glibc)
import Glibc
#endif
import LTTSystem

/// Leave for a reader in another process to work a buffer through its
/// shared memory instead of the buffer file: the consumer's drain without
/// the page cache's copy and without a FUSE round trip per sub-buffer.
///
/// The buffer file stays the door. A consumer opens it as lttd does (the
/// file's mode and owner, and the seed's one reader at a time, decide), then
/// asks its open file for a grant (`LTTFS_READER_GRANT`): an unguessable
/// token, good once, that names this open file's buffer. It hands the token
/// to the server over the producers' socket (whose peer checks apply) and
/// gets the buffer's memfd and an eventfd back. From then on it takes and
/// gives back sub-buffers in the shared ring (RELAY_GET_SUBBUF/PUT_SUBBUF's
/// algorithm, RelayBuffer's reader side) and the server rings the eventfd
/// where it would wake the file's poll. Closing the file ends the grant:
/// the eventfd is no longer rung, and a token not yet used is void.
///
/// Holding a grant gives nothing the open file did not: a reader could
/// already take, read and give back every sub-buffer of it.
public final class ReaderGrants: Sendable {
    /// A token: 128 random bits.
    public struct Token: Hashable, Sendable {
        public let high: UInt64
        public let low: UInt64
        public init(high: UInt64, low: UInt64) {
            self.high = high
            self.low = low
        }

        /// The 16 bytes an ioctl answers: low, then high, little-endian.
        public var bytes: [UInt8] {
            withUnsafeBytes(of: (low.littleEndian, high.littleEndian)) { Array($0) }
        }

        public init?(bytes: some Collection<UInt8>) {
            guard bytes.count == 16 else { return nil }
            let b = Array(bytes)
            let word = { (at: Int) in b[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
            self.init(high: word(8), low: word(0))
        }
    }

    /// One open buffer file's leave: its buffer, and the eventfd the server
    /// rings for the reader in another process while the file is open.
    public final class Grant: Sendable {
        public let buffer: RelayBuffer
        /// The eventfd kept by the server (-1: none yet); `revoked` once the
        /// file closed: nothing is attached any more.
        private let bell = Locked<(descriptor: Int32, revoked: Bool)>((-1, false))

        init(buffer: RelayBuffer) { self.buffer = buffer }

        /// A grant for an open buffer file's `buffer`, with no token yet.
        public static func make(for buffer: RelayBuffer) -> Grant { Grant(buffer: buffer) }

        deinit {
            let fd = bell.withLock { $0.descriptor }
            if fd >= 0 { close(fd) }
        }

        /// Keeps `descriptor` (taken: closed whatever happens) as the bell
        /// to ring; a bell attached before is closed (the reader attached
        /// again). False when the file was closed meanwhile.
        public func attach(bell descriptor: Int32) -> Bool {
            let (old, kept) = bell.withLock { b -> (Int32, Bool) in
                guard !b.revoked else { return (descriptor, false) }
                defer { b.descriptor = descriptor }
                return (b.descriptor, true)
            }
            if old >= 0 { close(old) }
            return kept
        }

        /// The buffer has news (a delivery, a finalize, given up): the
        /// reader in the other process wakes. Never blocks (the eventfd is
        /// non-blocking, and a full counter is a wake-up already pending).
        public func ring() {
            bell.withLock { b in
                guard b.descriptor >= 0 else { return }
                var one: UInt64 = 1
                _ = write(b.descriptor, &one, 8)
            }
        }

        /// Whether a reader in another process is attached.
        public var isAttached: Bool { bell.withLock { $0.descriptor >= 0 } }

        fileprivate func revoke() {
            let fd = bell.withLock { b -> Int32 in
                defer { b = (-1, true) }
                return b.descriptor
            }
            if fd >= 0 { close(fd) }
        }
    }

    /// Tokens issued and not used yet, each for its grant.
    private let pending = Locked<[Token: Grant]>([:])

    public init() {}

    /// A new token for `grant`; one it had and did not use is void.
    public func issueToken(for grant: Grant) -> Token {
        var random = SystemRandomNumberGenerator()
        let token = Token(high: random.next(), low: random.next())
        pending.withLock { p in
            p = p.filter { $0.value !== grant }
            p[token] = grant
        }
        return token
    }

    /// The grant `token` names, used up; nil for a token never issued,
    /// used already, or whose file closed.
    public func redeem(_ token: Token) -> Grant? {
        pending.withLock { $0.removeValue(forKey: token) }
    }

    /// The file of `grant` closed: its token is void and its bell is closed.
    public func revoke(_ grant: Grant) {
        pending.withLock { p in p = p.filter { $0.value !== grant } }
        grant.revoke()
    }
}
