/// The seed's `ltt_align(align_drift, size_of_type)`, the one alignment rule
/// of LTT 2.3: a field of `size` bytes at `offset` is aligned to
/// min(size, alignment), where `alignment` is the trace's (0 for a packed
/// trace: nothing is ever aligned). Returns the padding before the field.
///
/// Sub-buffer data, event headers and payloads all use it; positions are
/// relative to whatever the caller aligns against (the sub-buffer start,
/// or the payload start).
@inlinable @inline(__always)
public func lttAlignPadding<Offset: FixedWidthInteger>(at offset: Offset, size: Offset, alignment: Offset) -> Offset {
    guard alignment != 0, size > 1 else { return 0 }
    return (0 &- offset) & (Swift.min(size, alignment) &- 1)
}
