// swift-tools-version: 6.1
// Benchmarks live in their own package so that the main build and CI do not
// compile the benchmark harness. Run: cd Benchmarks && swift package benchmark
import PackageDescription

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
                .product(name: "LTTRelay", package: "main"),
            ],
            path: "Benchmarks/RelayEngine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Tracer",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LTTTrace", package: "main"),
                .product(name: "LTTRelay", package: "main"),
                .product(name: "CLinuxSupport", package: "main"),
            ],
            path: "Benchmarks/Tracer",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ProducerBench",
            dependencies: [
                .product(name: "LTTFS", package: "main"),
                .product(name: "LTTTrace", package: "main"),
                .product(name: "LTTRelay", package: "main"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/ProducerBench"
        ),
        .executableTarget(
            name: "DrainBench",
            dependencies: [
                .product(name: "LTTFS", package: "main"),
                .product(name: "LTTTrace", package: "main"),
                .product(name: "LTTRelay", package: "main"),
                .product(name: "CLinuxSupport", package: "main"),
                .product(name: "CFuse", package: "main"),
            ],
            path: "Sources/DrainBench"
        ),
    ]
)
