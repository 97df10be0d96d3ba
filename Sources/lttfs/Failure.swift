/// A one-line error for stderr and an exit status.
struct Failure: Error, CustomStringConvertible {
    let description: String
    let code: Int32
    init(_ message: String, code: Int32 = 1) {
        description = message
        self.code = code
    }
}
