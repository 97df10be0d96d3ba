import LTTFormat

/// The TSDL text (CTF 1.8 metadata) of a converted trace: the trace, its
/// environment, its clock and one stream class per LTT channel, declared
/// once (`preamble`), then one event class per marker, appended as the
/// markers become known (`event`). The layout declared is `CTFPacket`'s.
public struct CTFMetadata: Sendable {
    /// What the trace block and the environment say.
    public struct Trace: Sendable {
        public var uuid: [UInt8]
        public var time: TraceTime
        /// LTT's `alignment` (0: packed, else the architecture's word size).
        public var alignment: Int
        public var hostname: String
        public var traceName: String
        /// The data channels, in stream-id order.
        public var channels: [String]

        public init(uuid: [UInt8], time: TraceTime, alignment: Int, hostname: String, traceName: String, channels: [String]) {
            self.uuid = uuid
            self.time = time
            self.alignment = alignment
            self.hostname = hostname
            self.traceName = traceName
            self.channels = channels
        }
    }

    public let trace: Trace
    public init(trace: Trace) { self.trace = trace }

    public static let clockName = "ltt"

    /// A random (version 4, RFC 4122) UUID: a trace's, a session's.
    public static func randomUUID() -> [UInt8] {
        var uuid = (0..<16).map { _ in UInt8.random(in: 0...255) }
        uuid[6] = (uuid[6] & 0x0F) | 0x40      // version 4
        uuid[8] = (uuid[8] & 0x3F) | 0x80      // RFC 4122 variant
        return uuid
    }

    public static func uuidText(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { hex[$0].joined() }.joined(separator: "-")
    }

    /// The stream id of a channel, if it is one of the trace's.
    public func streamID(of channel: String) -> UInt32? {
        trace.channels.firstIndex(of: channel).map(UInt32.init)
    }

    /// Everything before the event classes.
    public var preamble: String {
        let t = trace
        let clock = "integer { size = 64; align = 8; signed = false; map = clock.\(Self.clockName).value; }"
        let channelEnv = t.channels.enumerated().map { "    lttfs_channel_\($0.offset) = \(Self.quoted($0.element));\n" }.joined()
        var text = """
            /* CTF 1.8 */
            /* Written by lttfs from an LTT 2.3 trace. */

            typealias integer { size = 8; align = 8; signed = false; } := uint8_t;
            typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
            typealias integer { size = 64; align = 8; signed = false; } := uint64_t;
            typealias \(clock) := uint64_clock_ltt_t;
            typealias integer { size = 27; align = 1; signed = false; map = clock.\(Self.clockName).value; } := uint27_clock_ltt_t;

            trace {
                major = 1;
                minor = 8;
                uuid = "\(Self.uuidText(t.uuid))";
                byte_order = \(Self.hostByteOrder);
                packet.header := struct {
                    uint32_t magic;
                    uint8_t uuid[16];
                    uint32_t stream_id;
                } align(8);
            };

            env {
                hostname = \(Self.quoted(t.hostname));
                domain = "lttfs";
                tracer_name = "lttfs";
                trace_name = \(Self.quoted(t.traceName));
                ltt_format = "2.3";
                ltt_alignment = \(t.alignment);
            \(channelEnv)};

            clock {
                name = \(Self.clockName);
                uuid = "\(Self.uuidText(t.uuid))";
                description = "The LTT trace clock";
                freq = \(t.time.frequency);
                precision = 1;
                offset_s = \(t.time.offsetSeconds);
                offset = \(t.time.offsetCycles);
                absolute = TRUE;
            };


            """
        for (id, _) in t.channels.enumerated() {
            text += """
                stream {
                    id = \(id);
                    packet.context := struct {
                        uint64_clock_ltt_t timestamp_begin;
                        uint64_clock_ltt_t timestamp_end;
                        uint64_t content_size;
                        uint64_t packet_size;
                        uint64_t packet_seq_num;
                        uint32_t events_discarded;
                        uint32_t cpu_id;
                    } align(8);
                    event.header := struct {
                        enum : integer { size = 5; align = 1; signed = false; } { compact = 0 ... 30, extended = 31 } id;
                        variant <id> {
                            struct { uint27_clock_ltt_t timestamp; } compact;
                            struct { uint32_t id; uint64_clock_ltt_t timestamp; } extended;
                        } v;
                    } align(8);
                };


                """
        }
        return text
    }

    /// The event class of a marker: `channel.marker`, its LTT id, its
    /// fields with their LTT types and alignment. Field names are made CTF
    /// identifiers (anything else becomes `_`) behind a `_` that readers
    /// drop, so that a name like `int` is not a keyword.
    public func event(channel: String, name: String, id: UInt16, fields: [MarkerField]) -> String {
        guard let stream = streamID(of: channel) else { return "" }
        var used: Set<String> = []
        var members = ""
        for field in fields {
            var identifier = Self.identifier(field.name)
            var n = 2
            while used.contains(identifier) {
                identifier = Self.identifier(field.name) + "_\(n)"
                n += 1
            }
            used.insert(identifier)
            members += "        \(type(of: field)) _\(identifier);\n"
        }
        return """
            event {
                name = \(Self.quoted(channel + "." + name));
                id = \(id);
                stream_id = \(stream);
                fields := struct {
            \(members)    };
            };


            """
    }

    /// The TSDL type of one field.
    func type(of field: MarkerField) -> String {
        switch field.kind {
        case .string:
            return "string { encoding = UTF8; }"
        case .integer(let size, let signed, let network):
            let align = trace.alignment == 0 ? 1 : min(size, trace.alignment)
            let base: Int
            switch field.conversion {
            case "x", "X", "p": base = 16
            case "o": base = 8
            default: base = 10
            }
            let order = network ? " byte_order = be;" : ""
            return "integer { size = \(size * 8); align = \(align * 8); signed = \(signed);\(order) base = \(base); }"
        }
    }

    /// `name` as a CTF identifier: letters, digits and `_` (what readers
    /// show of a field named `name`, unless two fields of an event map to
    /// the same: the second gets `_2`, the third `_3`).
    public static func identifier(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { s -> Character in
            s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "_") ? Character(s) : "_"
        }
        return mapped.isEmpty ? "_" : String(mapped)
    }

    /// A TSDL string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if s.value < 0x20 || s.value == 0x7F { out += "_" } else { out.unicodeScalars.append(s) }
            }
        }
        return out + "\""
    }

    static var hostByteOrder: String { 1.littleEndian == 1 ? "le" : "be" }
}
