#if canImport(Glibc)
import Glibc
#endif
import CLinuxSupport
import CRelayABI
import LTTSystem
import SystemPackage

/// The memory of one shared relay buffer: a sealed memfd mapped once,
/// control block and counts first, the ring's bytes from `dataOffset` on
/// (the layout of lttfs_relay_abi.h).
///
/// The server makes it (`create`), which writes the identity and keeps the
/// descriptor to hand to producers; a producer maps the descriptor it was
/// given (`attach`), which checks the seals, the size and the identity
/// against what the server said over its socket before anything is used.
///
/// Its pages are allocated at `create` (the memfd is fallocated whole,
/// lttfs_sealed_memfd), and charged to the server's memory cgroup there,
/// not at first touch to whichever producer process writes a page first.
/// `prefault` then fills them and writes the server's page tables, chunk
/// by chunk, so that no event pays for a page's allocation and zeroing,
/// which the first pass through a buffer otherwise does once per page (the
/// kernel's relay buffers were pages allocated at alloc; LTTng-UST
/// zero-fills its buffers at creation). A process that maps the buffer
/// later (`attach`) finds every page there: its first touch of each only
/// maps it. It does not populate its page tables up front: a producer maps
/// every buffer of every trace, most of which it may never write, and the
/// pages it mapped would count as its own resident memory.
public final class RingMapping: @unchecked Sendable {
    public let geometry: RelayGeometry
    public let base: UnsafeMutableRawPointer
    public let size: Int
    /// The memfd, kept by the server to hand to producers; -1 in a
    /// producer, which closes it once mapped.
    public let descriptor: Int32

    public var control: UnsafeMutablePointer<lttfs_ring_control> {
        base.assumingMemoryBound(to: lttfs_ring_control.self)
    }
    public var data: UnsafeMutableRawPointer { base + Self.dataOffset(geometry) }

    /// Where the commit counts start: right after the control block.
    static func commitCounts(_ control: UnsafeMutablePointer<lttfs_ring_control>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(control) + MemoryLayout<lttfs_ring_control>.size).assumingMemoryBound(to: UInt64.self)
    }

    /// The control block and two counts per sub-buffer, rounded up to pages.
    public static func dataOffset(_ geometry: RelayGeometry) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = MemoryLayout<lttfs_ring_control>.size + 16 * Int(geometry.subbufferCount)
        return (bytes + page - 1) / page * page
    }

    /// Why a mapping could not be made or accepted.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case system(String, Errno)
        /// A producer was handed something that is not the buffer it was told of.
        case mismatch(String)

        public var description: String {
            switch self {
            case .system(let call, let errno): "\(call): \(errno.explained)"
            case .mismatch(let why): "not the shared buffer announced: \(why)"
            }
        }
    }

    private init(geometry: RelayGeometry, base: UnsafeMutableRawPointer, size: Int, descriptor: Int32) {
        self.geometry = geometry
        self.base = base
        self.size = size
        self.descriptor = descriptor
    }

    /// A new buffer's memory, identity written (the ring itself is not
    /// started: RelayRing.start).
    public static func create(name: String, geometry: RelayGeometry, overwrite: Bool, cpu: Int) throws(Failure) -> RingMapping {
        let offset = dataOffset(geometry)
        let size = offset + Int(geometry.allocSize)
        let fd = lttfs_sealed_memfd(name, UInt64(size))
        guard fd >= 0 else { throw .system("a sealed memfd of \(size) bytes", Errno(rawValue: errno)) }
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            let e = Errno(rawValue: errno)
            close(fd)
            throw .system("mmap", e)
        }
        let mapping = RingMapping(geometry: geometry, base: raw, size: size, descriptor: fd)
        let c = mapping.control
        c.pointee.magic = LTTFS_RING_MAGIC
        c.pointee.version = LTTFS_RING_VERSION
        c.pointee.subbuffer_size = geometry.subbufferSize
        c.pointee.subbuffer_count = geometry.subbufferCount
        c.pointee.data_offset = UInt64(offset)
        c.pointee.overwrite = overwrite ? 1 : 0
        c.pointee.cpu = UInt32(truncatingIfNeeded: cpu)
        c.pointee.recording = 1
        return mapping
    }

    /// Maps a buffer a server handed over as `descriptor` (taken: closed
    /// whatever happens), which must be what it announced.
    public static func attach(descriptor fd: Int32, geometry: RelayGeometry, overwrite: Bool, cpu: Int) throws(Failure) -> RingMapping {
        let offset = dataOffset(geometry)
        let size = offset + Int(geometry.allocSize)
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let e = Errno(rawValue: errno)
            close(fd)
            throw .system("fstat", e)
        }
        let seals = lttfs_get_seals(fd)
        guard info.st_size == size, seals >= 0, seals & LTTFS_SEALS_FIXED_SIZE == LTTFS_SEALS_FIXED_SIZE else {
            close(fd)
            throw .mismatch("size \(info.st_size) (want \(size)), seals \(seals)")
        }
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            let e = Errno(rawValue: errno)
            close(fd)
            throw .system("mmap", e)
        }
        close(fd)
        let mapping = RingMapping(geometry: geometry, base: raw, size: size, descriptor: -1)
        let c = mapping.control.pointee
        guard c.magic == LTTFS_RING_MAGIC, c.version == LTTFS_RING_VERSION, c.subbuffer_size == geometry.subbufferSize,
              c.subbuffer_count == geometry.subbufferCount, c.data_offset == UInt64(offset),
              c.overwrite == (overwrite ? 1 : 0), c.cpu == UInt32(truncatingIfNeeded: cpu) else {
            throw .mismatch("identity \(c.magic)/\(c.version)/\(c.subbuffer_size)x\(c.subbuffer_count)/cpu \(c.cpu)")
        }
        return mapping
    }

    /// How much `prefault` populates between two looks at `keepGoing`.
    public static let prefaultChunk = 4 << 20

    /// Writes this process's page tables for the whole buffer
    /// (MADV_POPULATE_WRITE, which faults each page in as a write would,
    /// without touching its bytes: producers may be recording meanwhile),
    /// `prefaultChunk` bytes at a time while `keepGoing()` says so. False
    /// if it stopped early, or the kernel cannot (before Linux 5.14: the
    /// pages are then faulted in by their first events, as before).
    @discardableResult
    public func prefault(while keepGoing: () -> Bool) -> Bool {
        var offset = 0
        while offset < size {
            guard keepGoing() else { return false }
            let length = min(Self.prefaultChunk, size - offset)
            guard madvise(base + offset, length, MADV_POPULATE_WRITE) == 0 else { return false }
            offset += length
        }
        return true
    }

    deinit {
        munmap(base, size)
        if descriptor >= 0 { close(descriptor) }
    }
}
