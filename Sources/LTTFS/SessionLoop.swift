#if canImport(Glibc)
import Glibc
#endif
import LTTSystem
import CFuse
import CLinuxSupport
import Foundation
import LTTFormat
import LTTRelay
import Synchronization

/// libfuse's multithreaded loop, kept in our hands so that it can end
/// without cancelling a thread.
///
/// Workers read requests from the session's device and serve them
/// (`fuse_session_receive_buf`, `fuse_session_process_buf`). There are
/// `idleThreads` at first; when every worker is busy (a write_event waiting
/// for room holds one), another starts, up to `maxThreads`, so that an
/// INTERRUPT or a reader's PUT can always be served.
///
/// libfuse's own loop ends by `pthread_cancel`ling the workers still blocked
/// in read(2): that leaves their state (and ThreadSanitizer's) mid-call. Here
/// `stop` sets the session's exit flag and sends each worker the wake signal
/// (`lttfs_wake_signal`), whose handler does nothing: the read returns
/// EINTR, the worker sees the flag and returns. A worker inside a handler
/// finishes it first, which is why shutdown ends every wait before.
final class SessionLoop: @unchecked Sendable {
    private let session: OpaquePointer
    private let maxThreads: Int
    private struct Workers {
        var threads: [pthread_t] = []
        /// Workers started, including one about to be: at most maxThreads.
        var started = 0
        var error: Int32 = 0
    }
    private let workers = Locked(Workers())
    /// Workers waiting in read(2) for a request: counted without the lock,
    /// which is taken only when none is left (to start one more).
    private let waiting = Atomic<Int>(0)
    private let running = DispatchGroup()

    init(session: OpaquePointer, maxThreads: Int, idleThreads: Int) {
        self.session = session
        self.maxThreads = max(1, maxThreads)
        let idle = min(max(1, idleThreads), self.maxThreads)
        workers.withLock { $0.started = idle }
        for _ in 0..<idle { startWorker() }
    }

    /// Waits until every worker has returned (the session exited, or the
    /// filesystem was unmounted). Returns 0, or the error that ended it.
    func wait() -> Int32 {
        running.wait()
        return workers.withLock { $0.error }
    }

    /// Ends the loop: the exit flag, then the wake signal to each worker,
    /// again every 10 ms (a signal sent between a worker's look at the flag
    /// and its read would be lost), until all have returned or `timeout`
    /// seconds passed. True when all have.
    func stop(timeout: TimeInterval) -> Bool {
        fuse_session_exit(session)
        let signal = lttfs_wake_signal()
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if running.wait(timeout: .now()) == .success { return true }
            // Under the lock: a worker leaves the list under it before it
            // returns, so every thread signalled here is still alive
            // (signalling a finished thread is undefined behaviour).
            workers.withLock { w in
                for thread in w.threads { pthread_kill(thread, signal) }
            }
            if Date() >= deadline { return false }
            _ = running.wait(timeout: .now() + .milliseconds(10))
        }
    }

    /// Starts a worker whose place in `started` is already taken.
    private func startWorker() {
        running.enter()
        let thread = Thread { [self] in
            serve()
            running.leave()
        }
        thread.name = "lttfs-fuse"
        thread.start()
    }

    private func serve() {
        let me = pthread_self()
        workers.withLock { $0.threads.append(me) }
        defer { workers.withLock { w in w.threads.removeAll { pthread_equal($0, me) != 0 } } }
        var buffer = fuse_buf()
        defer { free(buffer.mem) }
        while fuse_session_exited(session) == 0 {
            waiting.add(1, ordering: .relaxed)
            let received = fuse_session_receive_buf(session, &buffer)
            let idleLeft = waiting.subtract(1, ordering: .relaxed).newValue
            // The last idle worker takes a request: start another, so that
            // an INTERRUPT or a PUT always finds one free.
            let spawn = received > 0 && idleLeft == 0 && workers.withLock { w -> Bool in
                guard w.started < maxThreads else { return false }
                w.started += 1
                return true
            }
            if received == -EINTR { continue }
            if received <= 0 {
                // 0: unmounted (ENODEV); libfuse has set the exit flag.
                if received < 0 {
                    workers.withLock { $0.error = -received }
                    fuse_session_exit(session)
                }
                break
            }
            if spawn { startWorker() }
            fuse_session_process_buf(session, &buffer)
        }
    }
}
