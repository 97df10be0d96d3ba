import SwiftCompilerPlugin
import SwiftSyntaxMacros

/// The compiler plugin that serves LTTTrace's macros.
@main
struct LTTTraceMacrosPlugin: CompilerPlugin {
    let providingMacros: [Macro.Type] = [RecordMacro.self]
}
