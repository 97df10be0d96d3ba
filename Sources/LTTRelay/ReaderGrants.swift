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
/// algorithm, RelayBuffer's reader side), and the buffer rings the eventfd
/// (`ReaderBell`) wherever it posts news for the file's poll: a delivery, a
/// finalize, a give-up. Closing the file ends the grant: the eventfd is no
/// longer rung, and a token not yet used is void.
///
/// Holding a grant gives nothing the open file did not: a reader could
/// already take, read and give back every sub-buffer of it. (A process the
/// producers' socket admits maps every buffer anyway, to record.)
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

    /// One open buffer file's leave: its buffer, which rings the reader's
    /// bell while the file is open.
    public final class Grant: Sendable {
        public let buffer: RelayBuffer
        /// Set once the file closed: nothing is attached any more.
        private let revoked = Locked(false)

        init(buffer: RelayBuffer) { self.buffer = buffer }

        /// A grant for an open buffer file's `buffer`, with no token yet.
        public static func make(for buffer: RelayBuffer) -> Grant { Grant(buffer: buffer) }

        /// Keeps `descriptor` (taken: closed whatever happens) as the bell
        /// the buffer rings; a bell attached before is let go (the reader
        /// attached again). False when the file was closed meanwhile.
        public func attach(bell descriptor: Int32) -> Bool {
            let bell = ReaderBell(descriptor: descriptor)
            let kept = revoked.withLock { gone in
                guard !gone else { return false }
                buffer.setReaderBell(bell)
                return true
            }
            // What was delivered before rang nobody: the reader looks once.
            if kept { bell.ring() }
            return kept
        }

        fileprivate func revoke() {
            revoked.withLock { gone in
                gone = true
                buffer.setReaderBell(nil)
            }
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

/// The eventfd a reader in another process polls: rung by its buffer (a
/// delivery, a finalize, a give-up), closed when the last ringer lets it go,
/// so that no write ever reaches a descriptor number reused meanwhile.
public final class ReaderBell: Sendable {
    private let descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Never blocks: the eventfd is non-blocking, and a full counter is a
    /// wake-up already pending.
    func ring() {
        var one: UInt64 = 1
        _ = write(descriptor, &one, 8)
    }
}
