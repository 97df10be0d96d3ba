// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "lttfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LTTRelay", targets: ["LTTRelay"]),
    ],
    targets: [
        // The seed's locked relay transport: pure Swift, no FUSE, no I/O.
        // Linux calls Swift's Glibc module leaves out (sched_getcpu, gettid).
        .target(name: "CLinuxSupport"),
        .target(name: "LTTRelay", dependencies: ["CLinuxSupport"]),
        .testTarget(name: "LTTRelayTests", dependencies: ["LTTRelay"]),
    ]
)
