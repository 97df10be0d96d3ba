// swift-tools-version: 6.1
// Benchmarks live in their own package so that the main build and CI do not
// compile the benchmark harness. Run: cd Benchmarks && swift package benchmark
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory, which is whatever
/// the clone was called ("lttfs", "main", ...): take it from here.
let lttfs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "lttfs-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RelayEngine",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LTTFormat", package: lttfs),
                .product(name: "LTTSystem", package: lttfs),
                .product(name: "LTTRelay", package: lttfs),
                .product(name: "LTTTrace", package: lttfs),
            ],
            path: "Benchmarks/RelayEngine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Tracer",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LTTTrace", package: lttfs),
                .product(name: "LTTFormat", package: lttfs),
                .product(name: "LTTSystem", package: lttfs),
                .product(name: "LTTRelay", package: lttfs),
                .product(name: "CLinuxSupport", package: lttfs),
            ],
            path: "Benchmarks/Tracer",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .target(name: "MallocCounter", path: "Sources/MallocCounter"),
        .executableTarget(
            name: "ProducerBench",
            dependencies: [
                "MallocCounter",
                .product(name: "LTTProducers", package: lttfs),
                .product(name: "LTTFS", package: lttfs),
                .product(name: "LTTTrace", package: lttfs),
                .product(name: "LTTFormat", package: lttfs),
                .product(name: "LTTSystem", package: lttfs),
                .product(name: "LTTRelay", package: lttfs),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/ProducerBench"
        ),
        .executableTarget(
            name: "DrainBench",
            dependencies: [
                .product(name: "LTTConsumer", package: lttfs),
                .product(name: "LTTFS", package: lttfs),
                .product(name: "LTTTrace", package: lttfs),
                .product(name: "LTTFormat", package: lttfs),
                .product(name: "LTTSystem", package: lttfs),
                .product(name: "LTTRelay", package: lttfs),
                .product(name: "CLinuxSupport", package: lttfs),
                .product(name: "CFuse", package: lttfs),
            ],
            path: "Sources/DrainBench"
        ),
        .executableTarget(
            name: "ConvertBench",
            dependencies: [
                .product(name: "LTTCTF", package: lttfs),
                .product(name: "LTTRelayd", package: lttfs),
                .product(name: "LTTSystem", package: lttfs),
                .product(name: "LTTReader", package: lttfs),
                .product(name: "LTTTrace", package: lttfs),
                .product(name: "LTTFormat", package: lttfs),
                .product(name: "LTTRelay", package: lttfs),
            ],
            path: "Sources/ConvertBench"
        ),
    ]
)
