/// At most `perSecond` log lines a second from one source that anyone can
/// drive (a script looping on a refused write, a flood of connections to an
/// abstract socket): the lines held back are counted, and the next line let
/// through says how many there were.
public final class LogRateLimit: Sendable {
    public enum Verdict: Equatable, Sendable {
        /// Log the line; `heldBack` lines were dropped since the last one logged.
        case log(heldBack: Int)
        /// Drop the line; `first`: the first dropped since one was logged
        /// (the moment to say that lines are being held back).
        case hold(first: Bool)
    }

    private struct Window {
        var second: UInt64 = .max   // MonotonicClock seconds; .max: none yet
        var logged = 0
        var heldBack = 0
    }
    private let window = Locked(Window())
    public let perSecond: Int

    public init(perSecond: Int) {
        precondition(perSecond > 0)
        self.perSecond = perSecond
    }

    /// Whether a line may be logged now (`now`: MonotonicClock nanoseconds).
    public func admit(now: UInt64 = MonotonicClock.now()) -> Verdict {
        let second = now / 1_000_000_000
        return window.withLock { w in
            if w.second != second {
                w.second = second
                w.logged = 0
            }
            guard w.logged < perSecond else {
                w.heldBack += 1
                return .hold(first: w.heldBack == 1)
            }
            w.logged += 1
            defer { w.heldBack = 0 }
            return .log(heldBack: w.heldBack)
        }
    }
}
