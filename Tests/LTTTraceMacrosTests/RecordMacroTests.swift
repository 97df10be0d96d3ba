import LTTTraceMacros
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacrosGenericTestSupport
import Testing

/// What `#record` expands to: the source the compiler then type-checks and
/// optimizes (LTTTraceTests record through it, into real traces).
@Suite("#record's expansion")
struct RecordMacroTests {
    let macros: [String: MacroSpec] = ["record": MacroSpec(type: RecordMacro.self)]

    func expect(_ source: String, _ expanded: String, diagnostics: [DiagnosticSpec] = [],
                sourceLocation: SourceLocation = #_sourceLocation) {
        assertMacroExpansion(source, expandedSource: expanded, diagnostics: diagnostics, macroSpecs: macros,
                             failureHandler: { Issue.record(Comment(rawValue: $0.message), sourceLocation: sourceLocation) })
    }

    @Test("the values are evaluated only on the recording branch, and passed borrowed")
    func borrowedArity() {
        expect("#record(markers.request, status, request.path)",
               "markers.request.isRecording ? LTTTrace.MarkerRecording.record(markers.request, status, request.path) : ()")
        expect("#record(m, 1)", "m.isRecording ? LTTTrace.MarkerRecording.record(m, 1) : ()")
        // No closure parameter of its own: an enclosing closure's $0 is the
        // caller's.
        expect("items.forEach { #record(self.m, $0) }",
               "items.forEach { self.m.isRecording ? LTTTrace.MarkerRecording.record(self.m, $0) : () }")
    }

    @Test("eight values are the most passed borrowed; nine take the closure form")
    func arityLimit() {
        expect("#record(m, a, b, c, d, e, f, g, h)",
               "m.isRecording ? LTTTrace.MarkerRecording.record(m, a, b, c, d, e, f, g, h) : ()")
        expect("#record(m, a, b, c, d, e, f, g, h, i)", """
            m.record {
                (a, b, c, d, e, f, g, h, i)
            }
            """)
    }

    @Test("a marker that is not a reference is refused: it would be evaluated twice")
    func markerMustBeAReference() {
        expect("#record(makeMarker(), 1)", "#record(makeMarker(), 1)",
               diagnostics: [DiagnosticSpec(message: "#record reads its marker twice (the check, then the recording): "
                                                + "pass a stored marker, a name or a member access, not 'makeMarker()'",
                                            line: 1, column: 1)])
        expect("#record(markers[0], 1)", "#record(markers[0], 1)",
               diagnostics: [DiagnosticSpec(message: "#record reads its marker twice (the check, then the recording): "
                                                + "pass a stored marker, a name or a member access, not 'markers[0]'",
                                            line: 1, column: 1)])
    }

    @Test("a marker with no values records through record()")
    func noValues() {
        expect("#record(m)", "m.record()")
    }

    @Test("a labeled first argument is refused with a clear message")
    func labeledMarker() {
        expect("#record(marker: m, 1)", "#record(marker: m, 1)",
               diagnostics: [DiagnosticSpec(message: "#record needs a marker as its first argument: #record(marker, values...)",
                                            line: 1, column: 1)])
    }
}
