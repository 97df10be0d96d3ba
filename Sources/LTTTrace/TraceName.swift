/// What may name a trace, a channel or a marker: the one validator for all
/// three, since each name becomes a file name under the mount point and a
/// word in logs and metadata.
///
/// The safe set: ASCII letters, digits, `_`, `-` and `.`, starting with a
/// letter, a digit or `_`, at most `maximumLength` bytes. Nothing else: no
/// whitespace of any kind (a `\r` from a DOS-style line is not part of a
/// name), no control character, no `/`, nothing outside ASCII.
public enum TraceName {
    public static let maximumLength = 64

    public enum Kind: String, Sendable {
        case trace, channel, marker
    }

    /// The files of `<mount>/ltt/` itself, which a trace directory would
    /// shadow (the filesystem lists and finds exactly these).
    public static let lttFiles = ["control", "destroy_trace", "markers", "producer_socket", "setup_trace", "write_event"]

    /// What starts a flight-recorder buffer file's name (`flight-<channel>_<cpu>`):
    /// a channel named so would share its file names with the flight-recorder
    /// files of the channel after the prefix, and readers take the prefix off.
    public static let flightPrefix = "flight-"

    public static func validate(_ name: String, as kind: Kind) throws(TraceError) {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { throw .invalidName("\(kind.rawValue) name is empty") }
        guard bytes.count <= maximumLength else {
            throw .invalidName("\(kind.rawValue) name is longer than \(maximumLength) bytes")
        }
        func isAlphanumeric(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
        }
        guard isAlphanumeric(first) || first == UInt8(ascii: "_") else {
            throw .invalidName("\(kind.rawValue) name \(LogText.quoted(name)) must start with a letter, a digit or '_'")
        }
        for b in bytes where !(isAlphanumeric(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
                               || b == UInt8(ascii: ".")) {
            throw .invalidName("\(kind.rawValue) name \(LogText.quoted(name)) has \(LogText.quoted(bytes: [b])): use letters, digits, '_', '-' and '.'")
        }
        if kind == .trace && lttFiles.contains(name) {
            throw .invalidName("\(name) is a name of ltt/ itself")
        }
        if kind == .channel && name.hasPrefix(flightPrefix) {
            throw .invalidName("channel name \(LogText.quoted(name)) starts with \(LogText.quoted(flightPrefix)), which names flight-recorder buffer files")
        }
    }
}
