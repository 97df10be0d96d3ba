#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemPackage

/// mkdir -p: `path` and every missing parent (mode 0755); an existing
/// directory is fine, anything else there is `ENOTDIR`.
public func makeDirectories(_ path: String) throws(Errno) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        prefix += "/" + component
        do throws(Errno) {
            _ = try systemCall { mkdir(prefix, 0o755) }
        } catch .fileExists {
            continue
        }
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw .notDirectory
    }
}
