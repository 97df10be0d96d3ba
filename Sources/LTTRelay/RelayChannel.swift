#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import LTTFormat
import CLinuxSupport
import Synchronization

/// A channel's buffers: one `RelayBuffer` per CPU, all of one geometry and
/// mode. A producer records into the buffer of the CPU it runs on; a thread
/// that migrates between picking the CPU and taking that buffer's lock is
/// harmless, since each buffer has its own lock (why the locked transport
/// suits user space).
public final class RelayChannel: @unchecked Sendable {
    public let name: String
    public let geometry: RelayGeometry
    public let overwrite: Bool
    public let buffers: [RelayBuffer]
    /// The same buffers, unretained, for the hot path: `buffers` owns them.
    @usableFromInline let unretained: UnsafeMutableBufferPointer<Unmanaged<RelayBuffer>>

    /// Producers that left their RCU read-side section, holding this
    /// channel, to wait for room in it (and then record, or count a loss).
    /// They raise it before leaving that section, so that once a grace
    /// period has passed after a trace stopped recording, none is added, and
    /// destroy waits for the rest before it finalizes and counts.
    public let producersOutside = Atomic<Int>(0)

    /// `traceName` names the buffers' memory (`memfd:lttfs:<trace>:<file>`
    /// in /proc/*/maps); `log` is where a buffer the server gives up says why.
    public init(name: String, geometry: RelayGeometry, overwrite: Bool, cpuCount: Int,
                trace: TraceHeaderFields, clock: TraceClock, doorbell: ReaderDoorbell? = nil,
                memoryReservation: BufferMemoryBudget.Reservation? = nil, traceName: String = "",
                log: (@Sendable (String) -> Void)? = nil) throws(RelayBuffer.AllocationFailed) {
        precondition(cpuCount > 0)
        self.name = name
        self.geometry = geometry
        self.overwrite = overwrite
        var made: [RelayBuffer] = []
        for cpu in 0..<cpuCount {
            made.append(try RelayBuffer(geometry: geometry, overwrite: overwrite, cpu: cpu, trace: trace,
                                        clock: clock, doorbell: doorbell, memoryReservation: memoryReservation,
                                        name: "lttfs:\(traceName):" + (overwrite ? "flight-" : "") + name + "_" + String(cpu),
                                        log: log))
        }
        buffers = made
        unretained = .allocate(capacity: cpuCount)
        for (i, b) in buffers.enumerated() { (unretained.baseAddress! + i).initialize(to: .passUnretained(b)) }
    }

    /// Populates the page tables of every buffer (RingMapping.prefault)
    /// while `keepGoing()` says so; false if it stopped early.
    @discardableResult
    public func prefault(while keepGoing: () -> Bool) -> Bool {
        buffers.allSatisfy { $0.mapping.prefault(while: keepGoing) }
    }

    /// A channel of buffers made elsewhere: a producer process's view of
    /// the server's (`RelayBuffer(attaching:)`), one per CPU in order.
    public init(name: String, overwrite: Bool, buffers: [RelayBuffer]) {
        precondition(!buffers.isEmpty)
        self.name = name
        geometry = buffers[0].geometry
        self.overwrite = overwrite
        self.buffers = buffers
        unretained = .allocate(capacity: buffers.count)
        for (i, b) in buffers.enumerated() { (unretained.baseAddress! + i).initialize(to: .passUnretained(b)) }
    }

    deinit { unretained.deallocate() }

    /// The buffer of the CPU this thread runs on now, without reference
    /// counting: valid as long as the channel is.
    @inlinable @inline(__always)
    public var currentBufferUnretained: Unmanaged<RelayBuffer> { unretained[currentIndex] }

    /// The buffer of `cpu` (a `lttfs_current_cpu()` reading): an event
    /// recorded into several traces reads its CPU once, and is on the same
    /// CPU in each, as the kernel's (preemption off) was.
    @inlinable @inline(__always)
    public func bufferUnretained(cpu: Int32) -> Unmanaged<RelayBuffer> { unretained[index(ofCPU: cpu)] }

    /// This thread's CPU now, for `bufferUnretained(cpu:)`.
    @inlinable @inline(__always)
    public static func currentCPU() -> Int32 { lttfs_current_cpu() }

    /// The index of this thread's CPU among the buffers.
    @inlinable @inline(__always)
    var currentIndex: Int { index(ofCPU: lttfs_current_cpu()) }

    /// The index of `cpu` among the buffers (sched_getcpu may fail, or name
    /// a CPU beyond the buffers configured).
    @inlinable @inline(__always)
    func index(ofCPU reading: Int32) -> Int {
        let cpu = Int(reading)
        let count = unretained.count
        return cpu >= 0 && cpu < count ? cpu : (cpu < 0 ? 0 : cpu % count)
    }

    /// The buffer file name: `<channel>_<cpu>`, or `flight-<channel>_<cpu>`
    /// in overwrite mode (`ltt_relay_create_channel`).
    public func fileName(cpu: Int) -> String {
        (overwrite ? "flight-" : "") + name + "_" + String(cpu)
    }

    /// The buffer of the CPU this thread runs on now.
    @inlinable @inline(__always)
    public var currentBuffer: RelayBuffer { buffers[currentIndex] }

    public func finalize() { buffers.forEach { $0.finalize() } }

    /// Waits (bounded) until no producer is outside its RCU section with
    /// this channel. Returns false if some still were at the deadline.
    public func waitForProducersOutside(timeoutNanoseconds: UInt64) -> Bool {
        let deadline = MonotonicClock.now() &+ timeoutNanoseconds
        while producersOutside.load(ordering: .acquiring) != 0 {
            if MonotonicClock.now() >= deadline { return false }
            var pause = timespec(tv_sec: 0, tv_nsec: 200_000)
            nanosleep(&pause, nil)
        }
        return true
    }

    /// The number of CPU numbers a channel needs: every configured CPU.
    public static var configuredCPUCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))) }
}
