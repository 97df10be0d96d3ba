/// Text quoted for a log line: printable ASCII as is, everything else
/// escaped (`\n`, `\r`, `\t`, `\xNN`), and cut at `limit` bytes, so that what
/// a user wrote can never forge a log line or flood one.
public enum LogText {
    public static func quoted(_ text: String, limit: Int = 64) -> String {
        quoted(bytes: Array(text.utf8), limit: limit)
    }

    public static func quoted<C: Collection>(bytes: C, limit: Int = 64) -> String where C.Element == UInt8 {
        "\"" + escaped(bytes: bytes, limit: limit, quote: true)
    }

    /// `text` with everything but printable ASCII escaped, not quoted: for
    /// messages that may carry what a user wrote. A backslash stays as it
    /// is, so a message that quotes text already is not escaped twice.
    public static func escaped(_ text: String, limit: Int = 512) -> String {
        escaped(bytes: Array(text.utf8), limit: limit, quote: false)
    }

    static func escaped<C: Collection>(bytes: C, limit: Int, quote: Bool) -> String where C.Element == UInt8 {
        var out = ""
        for b in bytes.prefix(limit) {
            switch b {
            case UInt8(ascii: "\n"): out += "\\n"
            case UInt8(ascii: "\r"): out += "\\r"
            case UInt8(ascii: "\t"): out += "\\t"
            case UInt8(ascii: "\"") where quote: out += "\\\""
            case UInt8(ascii: "\\") where quote: out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        if quote { out += "\"" }
        if bytes.count > limit { out += "... (\(bytes.count) bytes)" }
        return out
    }
}
