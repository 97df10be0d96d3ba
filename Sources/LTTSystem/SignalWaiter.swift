#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// One thread that takes termination signals with sigwait(2) and runs a
/// handler in ordinary thread context (so the handler may lock, log, and
/// unmount). The signals must be blocked in every thread, which `init`
/// does for the calling thread and so for every thread it starts later.
///
/// `stop()` releases the thread when no signal came: it is told with
/// SIGUSR2 only while it is known to be still waiting, never after it
/// returned (signalling a finished thread is undefined behaviour).
public final class SignalWaiter: @unchecked Sendable {
    public static let terminationSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]
    private static let release = SIGUSR2

    private struct State {
        var thread: pthread_t?
        var waiting = true
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
            sigwait(&wanted, &signal)
            state.withLock { $0.waiting = false }
            if signal != Self.release { handler(signal) }
            finished.signal()
        }
        thread.name = name
        thread.start()
        ready.wait()
    }

    /// Releases the thread if no signal came, and waits for it to end.
    public func stop() {
        state.withLock { s in
            // Under the lock: while `waiting` is true the thread has not
            // returned from sigwait, so it is alive to receive this.
            if s.waiting, let t = s.thread { pthread_kill(t, Self.release) }
        }
        finished.wait()
    }
}
