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

    @Test("the marker is evaluated once, the values only on the recording branch, borrowed")
    func borrowedArity() {
        expect("#record(markers.request, status, request.path)",
               """
            { __macro_local_6markerfMu_ in
                __macro_local_6markerfMu_.isRecording ? LTTTrace.MarkerRecording.record(__macro_local_6markerfMu_, status, request.path) : ()
            }(markers.request)
            """)
        expect("#record(m, 1)",
               """
            { __macro_local_6markerfMu_ in
                __macro_local_6markerfMu_.isRecording ? LTTTrace.MarkerRecording.record(__macro_local_6markerfMu_, 1) : ()
            }(m)
            """)
    }

    @Test("eight values are the most passed borrowed; nine take the closure form")
    func arityLimit() {
        expect("#record(m, a, b, c, d, e, f, g, h)",
               """
            { __macro_local_6markerfMu_ in
                __macro_local_6markerfMu_.isRecording ? LTTTrace.MarkerRecording.record(__macro_local_6markerfMu_, a, b, c, d, e, f, g, h) : ()
            }(m)
            """)
        expect("#record(m, a, b, c, d, e, f, g, h, i)", """
            m.record {
                (a, b, c, d, e, f, g, h, i)
            }
            """)
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
