#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LTTSystem

/// Runs `body` on a new thread bound to `cpu`; false if it could not be
/// bound there (then `body` does not run).
public func onCPU(_ cpu: Int, _ body: @escaping @Sendable () -> Void) -> Bool {
    let bound = Locked(false)
    let done = DispatchSemaphore(value: 0)
    Thread {
        if setAffinity(cpu) {
            bound.withLock { $0 = true }
            body()
        }
        done.signal()
    }.start()
    done.wait()
    return bound.withLock { $0 }
}

/// sched_setaffinity(2) of the calling thread to one CPU (Glibc's Swift
/// module leaves the GNU call out: it is looked up by name).
private func setAffinity(_ cpu: Int) -> Bool {
    typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return false }
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { $0[cpu / 8] |= UInt8(1 << (cpu % 8)) }
    let call = unsafeBitCast(symbol, to: SetAffinity.self)
    return withUnsafeBytes(of: &set) { call(0, $0.count, $0.baseAddress!) } == 0
}
