import Foundation
import LTTFormat

/// The TSDL that `CTFMetadata` writes, read back: the clock, the channels
/// (environment `lttfs_channel_<stream id>`), the alignment and the event
/// classes with their fields as marker formats.
struct ParsedMetadata {
    struct EventClass {
        var name: String
        var marker: String
        var id: UInt16
        var stream: UInt32
        var format: MarkerFormat
    }

    struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    var uuid: [UInt8] = []
    var time = TraceTime(frequency: 1_000_000_000, offsetSeconds: 0, offsetCycles: 0)
    var alignment = 0
    var channels: [String] = []
    var events: [EventClass] = []
    var byStream: [UInt32: [UInt16: EventClass]] = [:]

    init(_ text: String) throws(Unreadable) {
        func block(_ keyword: String, in text: Substring) -> [Substring] {
            var found: [Substring] = []
            var rest = text[...]
            while let r = rest.range(of: "\n" + keyword + " {") {
                var depth = 0
                var i = r.upperBound
                var end = rest.endIndex
                // From the opening brace to its match.
                i = rest.index(before: i)
                while i < rest.endIndex {
                    if rest[i] == "{" { depth += 1 }
                    if rest[i] == "}" {
                        depth -= 1
                        if depth == 0 { end = i; break }
                    }
                    i = rest.index(after: i)
                }
                found.append(rest[r.upperBound..<end])
                rest = rest[end...]
            }
            return found
        }
        // A value: a string literal to its closing quote (escapes
        // included, so a `;` inside does not end it), else up to `;`.
        func attribute(_ name: String, in body: Substring) -> Substring? {
            guard let r = body.range(of: "\n    " + name + " = ") ?? body.range(of: " " + name + " = ") else { return nil }
            let rest = body[r.upperBound...]
            guard rest.first == "\"" else { return rest.prefix { $0 != ";" && $0 != "\n" } }
            var i = rest.index(after: rest.startIndex)
            while i < rest.endIndex && rest[i] != "\"" {
                if rest[i] == "\\" { i = rest.index(after: i) }
                if i < rest.endIndex { i = rest.index(after: i) }
            }
            return i < rest.endIndex ? rest[...i] : nil
        }
        // The literal's text, its escapes (`\"`, `\\`, `\n`) undone in one
        // pass from the left.
        func quoted(_ value: Substring?) -> String? {
            guard let v = value, v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") else { return nil }
            var out = ""
            var escaped = false
            for c in v.dropFirst().dropLast() {
                if escaped {
                    out.append(c == "n" ? "\n" : c)
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else {
                    out.append(c)
                }
            }
            return out
        }
        let all = "\n" + text[...]
        guard let clock = block("clock", in: all[...]).first,
              let freq = attribute("freq", in: clock).flatMap({ UInt64($0) }),
              let seconds = attribute("offset_s", in: clock).flatMap({ Int64($0) }),
              let cycles = attribute("offset", in: clock).flatMap({ UInt64($0) }) else {
            throw Unreadable(description: "no clock with freq, offset_s and offset: not a trace lttfs wrote")
        }
        time = TraceTime(frequency: freq, offsetSeconds: seconds, offsetCycles: cycles)
        guard let trace = block("trace", in: all[...]).first, let uuidText = quoted(attribute("uuid", in: trace)) else {
            throw Unreadable(description: "no trace block with a uuid")
        }
        let hex = uuidText.filter { $0 != "-" }
        uuid = stride(from: 0, to: hex.count, by: 2).compactMap {
            UInt8(hex.dropFirst($0).prefix(2), radix: 16)
        }
        guard uuid.count == 16 else { throw Unreadable(description: "uuid \"\(uuidText)\" is not 16 bytes") }
        guard let env = block("env", in: all[...]).first else { throw Unreadable(description: "no env block") }
        alignment = attribute("ltt_alignment", in: env).flatMap { Int($0) } ?? 0
        var index = 0
        while let channel = quoted(attribute("lttfs_channel_\(index)", in: env)) {
            channels.append(channel)
            index += 1
        }
        for body in block("event", in: all[...]) {
            guard let name = quoted(attribute("name", in: body)),
                  let id = attribute("id", in: body).flatMap({ UInt16($0) }),
                  let stream = attribute("stream_id", in: body).flatMap({ UInt32($0) }), Int(stream) < channels.count,
                  let fieldsStart = body.range(of: "fields := struct {") else {
                throw Unreadable(description: "an event class without name, id, a declared stream_id and fields")
            }
            var format: [String] = []
            for line in body[fieldsStart.upperBound...].split(separator: "\n") {
                let line = line.trimmingCharacters(in: .whitespaces)
                guard line.hasSuffix(";"), !line.hasPrefix("}") else { continue }
                guard let nameStart = line.lastIndex(of: " ") else { continue }
                var field = String(line[line.index(after: nameStart)...].dropLast())
                if field.hasPrefix("_") { field.removeFirst() }
                if line.hasPrefix("string") {
                    format.append("\(field) %s")
                    continue
                }
                guard line.hasPrefix("integer {"),
                      let size = attribute("size", in: Substring(" " + line)).flatMap({ Int($0) }), [8, 16, 32, 64].contains(size),
                      let signed = attribute("signed", in: Substring(" " + line)) else {
                    throw Unreadable(description: "\(name): field \"\(line)\" is not an integer or a string lttfs writes")
                }
                let base = attribute("base", in: Substring(" " + line)) ?? "10"
                let network = line.contains("byte_order = be")
                let conversion = base == "16" ? "x" : base == "8" ? "o" : signed == "true" ? "d" : "u"
                format.append("\(field) #\(network ? "n" : "")\(size / 8)\(signed == "true" ? "d" : "u")%\(conversion)")
            }
            let parsed: MarkerFormat
            do { parsed = try MarkerFormat(format.joined(separator: " ")) } catch {
                throw Unreadable(description: "\(name): \(error)")
            }
            let channel = channels[Int(stream)]
            let marker = name.hasPrefix(channel + ".") ? String(name.dropFirst(channel.count + 1)) : name
            let eventClass = EventClass(name: name, marker: marker, id: id, stream: stream, format: parsed)
            events.append(eventClass)
            byStream[stream, default: [:]][id] = eventClass
        }
    }
}
