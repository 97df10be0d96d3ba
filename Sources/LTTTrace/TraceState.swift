/// The life of a trace, in the order lttctl drove it.
public enum TraceState: String, Sendable, Equatable {
    /// Created by setup_trace; channel settings may change.
    case setup
    /// Buffers exist (alloc); nothing is recorded.
    case allocated
    /// Recording (enabled = 1).
    case active
    /// Paused (enabled = 0 after a start); buffers keep what they hold.
    case stopped
    /// Flushed and finalized; readers drain what is left.
    case destroyed

    public var hasBuffers: Bool { self == .allocated || self == .active || self == .stopped }
}
