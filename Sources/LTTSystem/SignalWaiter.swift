#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// One thread that takes termination signals with sigwait(2) and runs a
/// handler in ordinary thread context (so the handler may lock, log, and
/// unmount), for every signal until `stop()`: a second Ctrl-C reaches the
/// handler too, which must therefore return promptly (start long work on a
/// thread of its own). The signals must be blocked in every thread, which
/// `init` does for the calling thread and so for every thread it starts
/// later.
///
/// `stop()` releases the thread with SIGUSR2, which it takes like the
/// others: it is alive until it took that one, so the signal always has a
/// thread to go to (signalling a finished thread is undefined behaviour).
public final class SignalWaiter: @unchecked Sendable {
    public static let terminationSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
    private static let release = SIGUSR2

    private struct State {
        var thread: pthread_t?
        var released = false
    }
    private let state = Locked(State())
    private let finished = DispatchSemaphore(value: 0)

    /// Blocks `signals` (and the internal release signal) from here on.
    @discardableResult
    public static func block(_ signals: [Int32] = terminationSignals) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals + [release] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        return set
    }

    public init(signals: [Int32] = terminationSignals, name: String = "lttfs-signals",
                handler: @escaping @Sendable (Int32) -> Void) {
        let set = Self.block(signals)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            state.withLock { $0.thread = pthread_self() }
            ready.signal()
            var wanted = set
            var signal: Int32 = 0
            while sigwait(&wanted, &signal) == 0 && signal != Self.release {
                handler(signal)
            }
            // Gone from here on: nothing may signal this thread any more
            // (stop() already said so when it released it).
            state.withLock { $0.released = true }
            finished.signal()
        }
        thread.name = name
        thread.start()
        ready.wait()
    }

    /// Sends `signal` to the waiting thread alone (tests: a process-wide
    /// signal would reach threads that do not block it).
    func send(_ signal: Int32) {
        state.withLock { s in
            if !s.released, let t = s.thread { pthread_kill(t, signal) }
        }
    }

    /// Releases the thread (after the handler it may be running) and waits
    /// for it to end. Any number of times.
    public func stop() {
        let first = state.withLock { s -> Bool in
            guard !s.released, let t = s.thread else { return false }
            s.released = true
            pthread_kill(t, Self.release)
            return true
        }
        if first { finished.wait() }
    }
}
