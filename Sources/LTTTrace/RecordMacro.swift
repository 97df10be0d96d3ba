/// `#record(marker, values...)`: records the values through `marker` when
/// a trace records it; otherwise only the check runs and the values are
/// not evaluated, whatever their types (LTTng-UST's `tracepoint()` macro
/// does not evaluate its arguments either). When it records, the values are
/// borrowed: a `String` is neither retained nor released.
///
///     let request = try tracer.marker("http", "request", "status %d path %s",
///                                     as: (Int32, String).self)
///     #record(request, 200, path)
///
/// This is the fast way to record: `request.record(200, path)` copies its
/// values into a parameter pack before its check, a retain and a release
/// of each `String` on every call, recording or not.
///
/// The marker expression is read twice (the check, then the recording), so
/// it must be a name or a member access (`request`, `self.markers.request`),
/// which the macro checks; the values may use an enclosing closure's `$0`.
/// (See `RecordMacro` in LTTTraceMacros for the expansion.)
@freestanding(expression)
public macro record<each Value: TraceValue>(_ marker: Marker<repeat each Value>, _ values: repeat each Value) =
    #externalMacro(module: "LTTTraceMacros", type: "RecordMacro")

/// What `#record` expands to for one to eight values: a function of fixed
/// arity, whose parameters Swift passes borrowed (a parameter pack's
/// values are copied into the pack instead). Each copies its values'
/// bytes, not the values, into a stack tuple laid out as `(A, B, ...)`,
/// which `TupleLayout` reads as `Marker.record` does. Call `#record`; these
/// are public only for its expansion. (LTTTraceMacros'
/// `RecordMacro.borrowedArities` names the arities written here.)
public enum MarkerRecording {
    @inlinable @inline(__always)
    public static func record<A: TraceValue>(_ marker: Marker<A>, _ a: A) {
        marker.record(bitwise: A.self, { TypedList($0.append(a), TypedEnd()) }, otherwise: { marker.recordWalkingPack(a) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue>(_ marker: Marker<A, B>, _ a: A, _ b: B) {
        marker.record(bitwise: (A, B).self, { TypedList($0.append(a), TypedList($0.append(b), TypedEnd())) }, otherwise: { marker.recordWalkingPack(a, b) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue>(_ marker: Marker<A, B, C>, _ a: A, _ b: B, _ c: C) {
        marker.record(bitwise: (A, B, C).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedEnd()))) }, otherwise: { marker.recordWalkingPack(a, b, c) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue, D: TraceValue>(_ marker: Marker<A, B, C, D>, _ a: A, _ b: B, _ c: C, _ d: D) {
        marker.record(bitwise: (A, B, C, D).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedList($0.append(d), TypedEnd())))) }, otherwise: { marker.recordWalkingPack(a, b, c, d) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue, D: TraceValue, E: TraceValue>(_ marker: Marker<A, B, C, D, E>, _ a: A, _ b: B, _ c: C, _ d: D, _ e: E) {
        marker.record(bitwise: (A, B, C, D, E).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedList($0.append(d), TypedList($0.append(e), TypedEnd()))))) }, otherwise: { marker.recordWalkingPack(a, b, c, d, e) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue, D: TraceValue, E: TraceValue, F: TraceValue>(_ marker: Marker<A, B, C, D, E, F>, _ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F) {
        marker.record(bitwise: (A, B, C, D, E, F).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedList($0.append(d), TypedList($0.append(e), TypedList($0.append(f), TypedEnd())))))) }, otherwise: { marker.recordWalkingPack(a, b, c, d, e, f) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue, D: TraceValue, E: TraceValue, F: TraceValue, G: TraceValue>(_ marker: Marker<A, B, C, D, E, F, G>, _ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G) {
        marker.record(bitwise: (A, B, C, D, E, F, G).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedList($0.append(d), TypedList($0.append(e), TypedList($0.append(f), TypedList($0.append(g), TypedEnd()))))))) }, otherwise: { marker.recordWalkingPack(a, b, c, d, e, f, g) })
    }

    @inlinable @inline(__always)
    public static func record<A: TraceValue, B: TraceValue, C: TraceValue, D: TraceValue, E: TraceValue, F: TraceValue, G: TraceValue, H: TraceValue>(_ marker: Marker<A, B, C, D, E, F, G, H>, _ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F, _ g: G, _ h: H) {
        marker.record(bitwise: (A, B, C, D, E, F, G, H).self, { TypedList($0.append(a), TypedList($0.append(b), TypedList($0.append(c), TypedList($0.append(d), TypedList($0.append(e), TypedList($0.append(f), TypedList($0.append(g), TypedList($0.append(h), TypedEnd())))))))) }, otherwise: { marker.recordWalkingPack(a, b, c, d, e, f, g, h) })
    }
}

/// A stack tuple filled with the bytes of borrowed values: each at the next
/// offset aligned for its type, as Swift lays out a tuple (which
/// `TupleLayout` checks against the tuple's own size at registration). The
/// copies are never destroyed, so no reference count moves: they are only
/// read, while the values they copy are borrowed by the caller.
@frozen @usableFromInline
struct BitwiseTuple {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline var end = 0

    @inlinable @inline(__always)
    init(base: UnsafeMutableRawPointer) { self.base = base }

    /// Copies `value`'s bytes to the next offset; returns where they are.
    @inlinable @inline(__always)
    mutating func append<T: TraceValue>(_ value: T) -> TypedValue<T> {
        let offset = (end &+ MemoryLayout<T>.alignment &- 1) & ~(MemoryLayout<T>.alignment &- 1)
        withUnsafePointer(to: value) {
            (base + offset).copyMemory(from: UnsafeRawPointer($0), byteCount: MemoryLayout<T>.size)
        }
        end = offset &+ MemoryLayout<T>.size
        return TypedValue(bits: base + offset)
    }
}

extension Marker {
    /// Records the values that `fill` copies, bytes only, into a stack
    /// tuple of type `Tuple` (`(repeat each Value)`), returning them as a
    /// `TypedPart` list: recorded through it when the marker's slots are
    /// the types' own (`typedSlots`), else through `TupleLayout`. Runs
    /// `walk` when the marker has opaque types (no `TupleLayout`).
    @inlinable @inline(__always)
    func record<Tuple, Parts: TypedPart>(bitwise _: Tuple.Type, _ fill: (inout BitwiseTuple) -> Parts,
                                         otherwise walk: () -> Void) {
        guard let fields else { return walk() }
        let (emitter, count, typed) = (emitter, fieldCount, typedSlots)
        withUnsafeTemporaryAllocation(of: Tuple.self, capacity: 1) { storage in
            var tuple = BitwiseTuple(base: UnsafeMutableRawPointer(storage.baseAddress!))
            let parts = fill(&tuple)
            if typed {
                emitter.record(typed: parts)
            } else {
                emitter.record(tuple: UnsafeRawPointer(tuple.base), fields: fields, count: count)
            }
        }
    }
}
