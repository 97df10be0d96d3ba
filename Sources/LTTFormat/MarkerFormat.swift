/// A marker's format string, parsed the way ltt-serialize.c and LTTV read it:
/// a sequence of `name %conv` fields. `%conv` is a printf conversion
/// (`d i u o x X c s p` with qualifiers `h l ll L z Z t`) naming the type of
/// the argument; an optional `#[n]N<conv>` before it (N = 1, 2, 4, 8; `n`
/// for network byte order) fixes the size stored in the trace.
///
///     "channel %s name %s event_id %hu int #1u%zu"
public struct MarkerFormat: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public let fields: [MarkerField]

    public var description: String { text }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case missingName(conversion: String)
        case missingConversion(name: String)
        case badConversion(String)
        case floatingPoint(String)
        /// The metadata channel declares a format as a NUL-terminated text.
        case nul

        public var description: String {
            switch self {
            case .missingName(let c): "conversion \"\(c)\" has no field name before it"
            case .missingConversion(let n): "field \"\(n)\" has no %conversion after it"
            case .badConversion(let c): "\"\(c)\" is not a conversion this format knows (d i u o x X c s p)"
            case .floatingPoint(let c): "\"\(c)\": floating point fields are not part of LTT 2.3"
            case .nul: "a format cannot hold a NUL (the metadata channel declares it as a NUL-terminated text)"
            }
        }
    }

    public init(_ text: String) throws(ParseError) {
        guard !text.utf8.contains(0) else { throw .nul }
        self.text = text
        var fields: [MarkerField] = []
        var pendingName: String?
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            let word = String(token)
            if word.hasPrefix("%") || word.hasPrefix("#") {
                guard let name = pendingName else { throw .missingName(conversion: word) }
                fields.append(try MarkerField(name: name, spec: word))
                pendingName = nil
            } else {
                if let name = pendingName { throw .missingConversion(name: name) }
                pendingName = word
            }
        }
        if let name = pendingName { throw .missingConversion(name: name) }
        self.fields = fields
    }

    /// The format with no fields at all (a marker that carries nothing).
    public static let empty = try! MarkerFormat("")
}

/// One field of a marker's payload.
public struct MarkerField: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// An integer stored in `size` bytes.
        case integer(size: Int, signed: Bool, networkOrder: Bool)
        /// A NUL-terminated string, not aligned.
        case string
    }

    public let name: String
    public let kind: Kind
    /// The printf conversion character, for display (d, u, x, c, p, s...).
    public let conversion: Character
    /// The size of the C argument the `%` part names (what a caller passes).
    public let argumentSize: Int

    /// Stored size of an integer field; strings have none.
    public var storedSize: Int? {
        if case .integer(let size, _, _) = kind { return size }
        return nil
    }

    init(name: String, spec: String) throws(MarkerFormat.ParseError) {
        self.name = name
        var rest = Substring(spec)
        var storedOverride: (size: Int, signed: Bool?, network: Bool)?
        if rest.hasPrefix("#") {
            // "#[n]N<conv>" fixes the stored size (parse_trace_type).
            rest = rest.dropFirst()
            var network = false
            while rest.first == "n" {
                network = true
                rest = rest.dropFirst()
            }
            guard let digit = rest.first, let n = Int(String(digit)), [1, 2, 4, 8].contains(n) else {
                throw .badConversion(spec)
            }
            rest = rest.dropFirst()
            var signed: Bool?
            if let c = rest.first, c != "%" {
                switch c {
                case "d", "i": signed = true
                case "u", "o", "x", "X", "c", "p": signed = false
                default: throw .badConversion(spec)
                }
                rest = rest.dropFirst()
            }
            storedOverride = (n, signed, network)
            guard rest.hasPrefix("%") else { throw .badConversion(spec) }
        }
        guard rest.hasPrefix("%") else { throw .badConversion(spec) }
        rest = rest.dropFirst()
        var qualifier = ""
        while let c = rest.first, "hlLzZt".contains(c) {
            qualifier.append(c)
            rest = rest.dropFirst()
        }
        guard rest.count == 1, let conv = rest.first else { throw .badConversion(spec) }
        if "eEfFgGaA".contains(conv) { throw .floatingPoint(spec) }
        conversion = conv
        let argumentSize: Int
        switch qualifier {
        case "": argumentSize = 4
        case "h": argumentSize = 2
        case "hh": argumentSize = 1
        case "l", "ll", "L", "z", "Z", "t": argumentSize = 8
        default: throw .badConversion(spec)
        }
        switch conv {
        case "s":
            guard qualifier.isEmpty, storedOverride == nil else { throw .badConversion(spec) }
            kind = .string
            self.argumentSize = 0
            return
        case "c":
            self.argumentSize = 1
            kind = .integer(size: storedOverride?.size ?? 1, signed: storedOverride?.signed ?? false,
                            networkOrder: storedOverride?.network ?? false)
            return
        case "p":
            self.argumentSize = MemoryLayout<UnsafeRawPointer>.size
            kind = .integer(size: storedOverride?.size ?? self.argumentSize, signed: false,
                            networkOrder: storedOverride?.network ?? false)
            return
        case "d", "i":
            kind = .integer(size: storedOverride?.size ?? argumentSize, signed: storedOverride?.signed ?? true,
                            networkOrder: storedOverride?.network ?? false)
        case "u", "o", "x", "X":
            kind = .integer(size: storedOverride?.size ?? argumentSize, signed: storedOverride?.signed ?? false,
                            networkOrder: storedOverride?.network ?? false)
        default:
            throw .badConversion(spec)
        }
        self.argumentSize = argumentSize
    }
}
