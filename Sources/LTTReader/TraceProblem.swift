/// Something wrong in a trace, with where it is: file, sub-buffer, and
/// byte offset from the start of the file.
public struct TraceProblem: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let subbuffer: Int?
    public let offset: Int?
    public let message: String

    public init(file: String, subbuffer: Int? = nil, offset: Int? = nil, _ message: String) {
        self.file = file
        self.subbuffer = subbuffer
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var s = file
        if let subbuffer { s += " sub-buffer \(subbuffer)" }
        if let offset { s += " offset \(offset)" }
        return s + ": " + message
    }
}
