// What every test target shares: a deterministic generator, thread-safe
// flags and counters.
import LTTSystem
import Foundation
import Synchronization

/// SplitMix64: a fixed seed replays a failure.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A flag shared with other threads.
public final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
    /// Waits up to `seconds` for the flag.
    public func wait(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !isSet && Date() < deadline { usleep(1_000) }
        return isSet
    }
}

/// A counter shared with other threads.
public final class Counter: Sendable {
    private let value: Atomic<Int>
    public init(_ v: Int = 0) { value = Atomic(v) }
    @discardableResult public func add(_ n: Int) -> Int { value.add(n, ordering: .sequentiallyConsistent).newValue }
    public var load: Int { value.load(ordering: .sequentiallyConsistent) }
}

/// A value one thread sets and another reads.
public final class Shared<Value: Sendable>: Sendable {
    private let value: Locked<Value>
    public init(_ v: Value) { value = Locked(v) }
    public func set(_ v: Value) { value.withLock { $0 = v } }
    public var load: Value { value.withLock { $0 } }
}

/// Polls `condition` until it holds or `seconds` pass: waits for state the
/// test can observe, never for a time.
public func waitUntil(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if condition() { return true }
        _ = Glibc.poll(nil, 0, 2)
    } while Date() < deadline
    return condition()
}
