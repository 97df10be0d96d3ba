// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "lttfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LTTRelay", targets: ["LTTRelay"]),
        .library(name: "LTTTrace", targets: ["LTTTrace"]),
        .library(name: "LTTReader", targets: ["LTTReader"]),
    ],
    targets: [
        // The seed's locked relay transport: pure Swift, no FUSE, no I/O.
        // Linux calls Swift's Glibc module leaves out (sched_getcpu, gettid).
        .target(name: "CLinuxSupport"),
        .target(name: "LTTRelay", dependencies: ["CLinuxSupport"]),
        // Userspace RCU (Debian's liburcu-dev): the producers' view of the
        // active traces, as the kernel tracer walked its trace list.
        .systemLibrary(name: "CURCU", pkgConfig: "liburcu-bp", providers: [.apt(["liburcu-dev"])]),
        // Markers, event encoding, metadata, traces and their life cycle.
        .target(name: "LTTTrace", dependencies: ["LTTRelay", "CURCU", "CLinuxSupport"]),
        // Reads a consumer's trace directory back, strictly.
        .target(name: "LTTReader", dependencies: ["LTTTrace", "LTTRelay"]),
        .testTarget(name: "LTTTraceTests", dependencies: ["LTTTrace", "LTTRelay", "LTTReader"]),
        .testTarget(name: "LTTRelayTests", dependencies: ["LTTRelay"]),
    ]
)
