import LTTFormat

/// The markers a trace declares in its metadata channel, learned one
/// declaration event at a time (trace-format.md, "Metadata channel"): a
/// `core_marker_id` event gives a marker's id in its channel, a
/// `core_marker_format` event its format; a marker is known once both
/// came. The reader builds it from a whole trace, the CTF writer as the
/// metadata channel is drained.
public struct MarkerDeclarations: Sendable {
    /// One declared marker.
    public struct Marker: Sendable, Equatable {
        public let channel: String
        public let name: String
        public let id: UInt16
        public let formatText: String
        /// Nil when the format does not parse (its events cannot be read).
        public let format: MarkerFormat?
    }

    /// Known markers: channel -> id -> marker. The metadata channel's two
    /// core markers are known from the start.
    public private(set) var byChannel: [String: [UInt16: Marker]]
    private var ids: [String: [String: UInt16]] = [:]
    private var formats: [String: [String: String]] = [:]

    public init() {
        func core(_ name: String, _ id: UInt16, _ text: String) -> Marker {
            Marker(channel: Metadata.channel, name: name, id: id, formatText: text, format: try! MarkerFormat(text))
        }
        byChannel = [Metadata.channel: [0: core(Metadata.coreMarkerID, 0, Metadata.coreMarkerIDFormat),
                                        1: core(Metadata.coreMarkerFormat, 1, Metadata.coreMarkerFormatFormat)]]
    }

    /// The payload layouts of a channel's markers with a readable format.
    public func shapes(of channel: String) -> PayloadShapes {
        PayloadShapes((byChannel[channel] ?? [:]).compactMapValues { $0.format?.fields })
    }

    /// Takes one event of the metadata channel (`marker` is its name, the
    /// core marker's). Returns the marker it completed, if any, and the
    /// problems it shows.
    public mutating func take(marker: String, fields: [(name: String, value: FieldValue, conversion: Character)])
        -> (completed: Marker?, problems: [String]) {
        func field(_ name: String) -> FieldValue? { fields.first { $0.name == name }?.value }
        guard case .string(let channel)? = field("channel"), case .string(let name)? = field("name") else {
            return (nil, [])
        }
        var problems: [String] = []
        if marker == Metadata.coreMarkerID, case .unsigned(let raw)? = field("event_id") {
            let id = UInt16(truncatingIfNeeded: raw)
            if let previous = ids[channel]?[name] {
                if previous != id { problems.append("\(channel).\(name) declared with ids \(previous) and \(id)") }
                return (nil, problems)
            }
            ids[channel, default: [:]][name] = id
        } else if marker == Metadata.coreMarkerFormat, case .string(let text)? = field("format") {
            if let previous = formats[channel]?[name] {
                if previous != text { problems.append("\(channel).\(name) declared with formats \"\(previous)\" and \"\(text)\"") }
                return (nil, problems)
            }
            formats[channel, default: [:]][name] = text
        } else {
            return (nil, [])
        }
        guard let id = ids[channel]?[name], let text = formats[channel]?[name] else { return (nil, problems) }
        var format: MarkerFormat?
        do { format = try MarkerFormat(text) } catch {
            problems.append("\(channel).\(name): bad format \"\(text)\": \(error)")
        }
        if let existing = byChannel[channel]?[id] {
            // The core markers are declared in the trace too, as known.
            if existing.name == name && existing.formatText == text { return (nil, problems) }
            problems.append("event id \(id) of channel \(channel) declared for both \(existing.name) and \(name)")
            return (nil, problems)
        }
        let declared = Marker(channel: channel, name: name, id: id, formatText: text, format: format)
        byChannel[channel, default: [:]][id] = declared
        return (declared, problems)
    }

    /// What is still half declared: an id with no format, or the reverse.
    public var halfDeclared: [String] {
        var problems: [String] = []
        for (channel, byName) in ids.sorted(by: { $0.key < $1.key }) {
            for name in byName.keys.sorted() where formats[channel]?[name] == nil {
                problems.append("\(channel).\(name) has an id but no format declaration")
            }
        }
        for (channel, byName) in formats.sorted(by: { $0.key < $1.key }) {
            for name in byName.keys.sorted() where ids[channel]?[name] == nil {
                problems.append("\(channel).\(name) has a format but no id declaration")
            }
        }
        return problems
    }
}
