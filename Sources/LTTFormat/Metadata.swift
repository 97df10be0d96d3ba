/// The metadata channel of an LTT 2.3 trace (trace-format.md, "Metadata
/// channel"): two event kinds, with fixed ids 0 and 1, declare every marker
/// that can appear in the trace: its id, then its format.
public enum Metadata {
    public static let channel = "metadata"
    public static let userspaceChannel = "userspace"

    public static let coreMarkerID = "core_marker_id"
    public static let coreMarkerIDFormat =
        "channel %s name %s event_id %hu int #1u%zu long #1u%zu pointer #1u%zu size_t #1u%zu alignment #1u%u"
    public static let coreMarkerFormat = "core_marker_format"
    public static let coreMarkerFormatFormat = "channel %s name %s format %s"
}
