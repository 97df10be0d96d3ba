import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// `#record(marker, v1, v2, ...)`: records the values through `marker` when
/// a trace records it, and otherwise evaluates nothing but the check, as
/// LTTng-UST's `tracepoint()` macro does not evaluate its arguments.
///
/// What it expands to, for one to `MarkerRecording.maximumArity` values:
///
///     { m in m.isRecording ? LTTTrace.MarkerRecording.record(m, v1, v2) : () }(marker)
///
/// The marker expression is evaluated once (the closure's argument); the
/// values only on the recording branch, where they are passed to a generic
/// function of fixed arity that borrows them: Swift passes a parameter
/// pack's values indirectly and copies them to do so (a `String` is
/// retained and released on every call, recording or not), which
/// `Marker.record(_:)` cannot avoid and a fixed-arity function does not do.
/// With more values than that, the expansion is the closure form,
/// `marker.record { (v1, v2, ...) }`, which also forms the values only
/// when recording; with none, `marker.record()`.
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
        let values = arguments.dropFirst().map { $0.expression.trimmed }
        let markerExpression = marker.expression.trimmed
        if values.isEmpty {
            return "\(markerExpression).record()"
        }
        guard borrowedArities.contains(values.count) else {
            let tuple = values.map(\.description).joined(separator: ", ")
            return "\(markerExpression).record { (\(raw: tuple)) }"
        }
        // A closure parameter cannot be spelled as the compiler's unique
        // names are ("$s...": a property wrapper's projection), so the
        // name keeps their uniqueness without the dollar.
        let unique = context.makeUniqueName("marker").text
        let name = TokenSyntax.identifier(unique.hasPrefix("$") ? "__lttfs_" + unique.dropFirst() : unique)
        let passed = ([ExprSyntax("\(name)")] + values).map(\.description).joined(separator: ", ")
        return """
            { \(name) in \(name).isRecording ? LTTTrace.MarkerRecording.record(\(raw: passed)) : () }(\(markerExpression))
            """
    }
}
