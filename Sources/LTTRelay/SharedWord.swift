import Atomics

extension UnsafeMutablePointer {
    /// The pointee's field `property` used atomically: a word of memory
    /// other processes share (a relay buffer's control block, the producers
    /// page), which `Synchronization.Atomic` cannot stand on.
    package func sharedAtomic<Value: AtomicValue>(_ property: WritableKeyPath<Pointee, Value>) -> UnsafeAtomic<Value> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(pointer(to: property)!).assumingMemoryBound(to: Value.AtomicRepresentation.self))
    }
}
