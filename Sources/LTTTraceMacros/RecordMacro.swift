import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `#record(marker, v1, v2, ...)`: records the values through `marker` when
/// a trace records it, and otherwise evaluates nothing but the check, as
/// LTTng-UST's `tracepoint()` macro does not evaluate its arguments.
///
/// What it expands to, for one to eight values (`borrowedArities`):
///
///     marker.isRecording ? LTTTrace.MarkerRecording.record(marker, v1, v2) : ()
///
/// The values are evaluated only on the recording branch, where they are
/// passed to a generic function of fixed arity that borrows them: Swift
/// passes a parameter pack's values indirectly and copies them to do so (a
/// `String` is retained and released on every call, recording or not),
/// which `Marker.record(_:)` cannot avoid and a fixed-arity function does
/// not do. With more values than that, the expansion is the closure form,
/// `marker.record { (v1, v2, ...) }`, which also forms the values only when
/// recording; with none, `marker.record()`.
///
/// The marker expression is read twice (the check, then the recording), so
/// it must be a reference: a name or a member access (`request`,
/// `self.markers.request`, `Markers.request`), never a call. The expansion
/// introduces no closure parameter, so the values may use `$0` of an
/// enclosing closure.
public struct RecordMacro: ExpressionMacro {
    /// The arities `LTTTrace.MarkerRecording.record` is written for (keep
    /// the two in step: the library's tests record every one of them).
    static let borrowedArities = 1...8

    public static func expansion(of node: some FreestandingMacroExpansionSyntax,
                                 in context: some MacroExpansionContext) throws -> ExprSyntax {
        let arguments = Array(node.arguments)
        guard let marker = arguments.first, marker.label == nil else {
            throw MacroExpansionErrorMessage("#record needs a marker as its first argument: #record(marker, values...)")
        }
        let markerExpression = marker.expression.trimmed
        guard isReference(markerExpression) else {
            throw MacroExpansionErrorMessage(
                "#record reads its marker twice (the check, then the recording): pass a stored marker, "
                    + "a name or a member access, not '\(markerExpression)'")
        }
        let values = arguments.dropFirst().map { $0.expression.trimmed }
        if values.isEmpty {
            return "\(markerExpression).record()"
        }
        let list = values.map(\.description).joined(separator: ", ")
        guard borrowedArities.contains(values.count) else {
            return "\(markerExpression).record { (\(raw: list)) }"
        }
        return """
            \(markerExpression).isRecording ? LTTTrace.MarkerRecording.record(\(markerExpression), \(raw: list)) : ()
            """
    }

    /// A name, `self`, or a chain of member accesses on one: reading it twice
    /// reads the same marker and runs nothing else.
    static func isReference(_ expression: ExprSyntax) -> Bool {
        if expression.is(DeclReferenceExprSyntax.self) { return true }
        if let member = expression.as(MemberAccessExprSyntax.self) {
            guard let base = member.base else { return false }
            return isReference(base)
        }
        return false
    }
}
