// swift-tools-version: 6.1
import CompilerPluginSupport
import PackageDescription

let package = Package(
    name: "lttfs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LTTFormat", targets: ["LTTFormat"]),
        .library(name: "LTTSystem", targets: ["LTTSystem"]),
        .library(name: "LTTRelay", targets: ["LTTRelay"]),
        .library(name: "LTTTrace", targets: ["LTTTrace"]),
        .library(name: "LTTReader", targets: ["LTTReader"]),
        .library(name: "LTTCTF", targets: ["LTTCTF"]),
        .library(name: "LTTRelayd", targets: ["LTTRelayd"]),
        .library(name: "LTTFS", targets: ["LTTFS"]),
        .library(name: "LTTProducers", targets: ["LTTProducers"]),
        .library(name: "lttfs-producer", type: .dynamic, targets: ["LTTProducerC"]),
        .library(name: "LTTConsumer", targets: ["LTTConsumer"]),
        .library(name: "CLinuxSupport", targets: ["CLinuxSupport"]),
        .library(name: "CFuse", targets: ["CFuse"]),
        .library(name: "CRelayABI", targets: ["CRelayABI"]),
        .executable(name: "lttfs", targets: ["lttfs"]),
        .executable(name: "lttfs-demo", targets: ["lttfs-demo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        // For #record only: the macro that forms a marker's arguments only
        // when it records (the compiler's own major version, 603 for 6.3).
        .package(url: "https://github.com/swiftlang/swift-syntax", "603.0.0"..<"604.0.0"),
    ],
    targets: [
        // What Swift cannot call: the rseq CPU number, ioctl, splice, rdtsc,
        // __thread, the wake signal, ThreadSanitizer marks.
        .target(name: "CLinuxSupport"),
        // LTT 2.3 on disk and the consumer ABI: headers, alignment, marker
        // formats, payloads, metadata names, ioctl numbers, poll values.
        // Imports nothing.
        .target(name: "LTTFormat"),
        .testTarget(name: "LTTFormatTests", dependencies: ["LTTFormat"]),
        // The system layer: system calls with typed errors (swift-system's
        // Errno) and EINTR handled in one place, locks, threads, signals,
        // clocks, processes.
        .target(name: "LTTSystem", dependencies: [
            "CLinuxSupport", .product(name: "SystemPackage", package: "swift-system"),
        ]),
        .testTarget(name: "LTTSystemTests", dependencies: ["LTTSystem", "CLinuxSupport",
                                                          .product(name: "SystemPackage", package: "swift-system")]),
        // The seed's locked relay transport: pure Swift, no FUSE, no I/O (of
        // the system layer it takes its locks and the monotonic clock).
        .target(name: "LTTRelay", dependencies: ["LTTFormat", "LTTSystem", "CLinuxSupport", "CRelayABI",
                                                .product(name: "Atomics", package: "swift-atomics"),
                                                .product(name: "SystemPackage", package: "swift-system")]),
        // The layout of a relay buffer shared with producer processes
        // (lttfs_relay_abi.h): plain C, so that it is fixed for every compiler.
        .target(name: "CRelayABI"),
        // Userspace RCU (Debian's liburcu-dev): the producers' view of the
        // active traces, as the kernel tracer walked its trace list.
        .systemLibrary(name: "CURCU", pkgConfig: "liburcu-bp", providers: [.apt(["liburcu-dev"])]),
        // #record(marker, values...): a marker's check, and its values passed
        // to the recording only when it records, borrowed (LTTng-UST's
        // tracepoint() macro, in Swift).
        .macro(name: "LTTTraceMacros", dependencies: [
            .product(name: "SwiftSyntax", package: "swift-syntax"),
            .product(name: "SwiftSyntaxBuilder", package: "swift-syntax"),
            .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
            .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
        ]),
        .testTarget(name: "LTTTraceMacrosTests", dependencies: [
            "LTTTraceMacros",
            .product(name: "SwiftSyntaxMacrosGenericTestSupport", package: "swift-syntax"),
        ]),
        // Markers, event encoding, metadata, traces and their life cycle.
        .target(name: "LTTTrace", dependencies: ["LTTTraceMacros", "LTTFormat", "LTTRelay", "LTTSystem", "CURCU", "CLinuxSupport",
                                                .product(name: "SystemPackage", package: "swift-system")]),
        // Reads a consumer's trace directory back, strictly.
        .target(name: "LTTReader", dependencies: ["LTTFormat"]),
        .testTarget(name: "LTTReaderTests", dependencies: ["LTTReader", "LTTFormat", "LTTTestSupport"]),
        // CTF 1.8 for today's viewers (babeltrace2): LTT sub-buffers
        // re-framed as CTF packets, TSDL from the markers, and the reader
        // of what it writes.
        .target(name: "LTTCTF", dependencies: [
            "LTTFormat", "LTTReader", "LTTSystem", .product(name: "SystemPackage", package: "swift-system"),
        ]),
        .testTarget(name: "LTTTraceTests", dependencies: ["LTTFormat", "LTTTrace", "LTTRelay", "LTTSystem", "LTTReader", "LTTTestSupport",
                                                     "LTTTraceTestSupport"]),
        .testTarget(name: "LTTCTFTests", dependencies: ["LTTCTF", "LTTFormat", "LTTTrace", "LTTReader", "LTTSystem",
                                                   "LTTTestSupport", "LTTTraceTestSupport"]),
        // Streaming CTF to lttng-relayd (lttng-tools 2.13's network
        // protocol): a CTF destination on a relay daemon's session.
        .target(name: "LTTRelayd", dependencies: [
            "LTTCTF", "LTTFormat", "LTTSystem", .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Other processes record into the server's traces: the server's
        // socket service and the producer's side (markers registered with
        // the server, its buffers mapped from memfds).
        .target(name: "LTTProducers", dependencies: [
            "LTTTrace", "LTTRelay", "LTTFormat", "LTTSystem", "CLinuxSupport", "CRelayABI", "CURCU",
            .product(name: "Atomics", package: "swift-atomics"),
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The C producer library: <lttfs/producer.h> (CLTTProducer) and its
        // functions, a thin face over LTTProducers (LTTProducerC), built as
        // liblttfs-producer.so; mount-scripts/install.sh installs both
        // with a pkg-config file.
        .target(name: "CLTTProducer"),
        .target(name: "LTTProducerC", dependencies: ["CLTTProducer", "LTTProducers", "LTTTrace", "LTTSystem"]),
        // The C shim over libfuse3 (Debian's libfuse3-dev).
        .target(name: "CFuse", linkerSettings: [.linkedLibrary("fuse3"), .linkedLibrary("pthread")]),
        // The filesystem: the tree, the handlers, the notifier thread.
        .target(name: "LTTFS", dependencies: [
            "CFuse", "LTTFormat", "LTTTrace", "LTTRelay", "LTTProducers", "LTTSystem", "CLinuxSupport",
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The lttd-style consumer (poll, GET, splice, PUT) as a library: the
        // format and the system layer, nothing of the filesystem; with the
        // producers' socket's client (LTTProducers.ReaderConnection) it
        // works the buffers of the files it opened in their shared memory.
        .target(name: "LTTConsumer", dependencies: [
            "LTTFormat", "LTTReader", "LTTCTF", "LTTRelayd", "LTTRelay", "LTTProducers", "LTTSystem",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        .testTarget(name: "LTTConsumerTests", dependencies: ["LTTConsumer", "LTTCTF", "LTTRelayd", "LTTRelay", "LTTTraceTestSupport", "LTTFS", "LTTTrace", "LTTReader", "LTTFormat",
                                                          "LTTSystem", "LTTTestSupport", "LTTMountTestSupport"]),
        .executableTarget(name: "lttfs", dependencies: [
            "LTTConsumer", "LTTCTF", "LTTRelayd", "LTTProducers",
            "LTTFS", "LTTFormat", "LTTTrace", "LTTReader", "LTTRelay", "LTTSystem",
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The README's Swift producer: another process recording into a
        // mount's traces (the tests check that the README shows this file).
        .executableTarget(name: "lttfs-example-producer", dependencies: ["LTTProducers", "LTTTrace"]),
        // A Swift program that traces itself through lttfs (the quick start's workload).
        .executableTarget(name: "lttfs-demo", dependencies: [
            "LTTFS", "LTTTrace", "LTTSystem", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "LTTFSTests", dependencies: ["LTTFS", "LTTFormat", "LTTSystem", "LTTTrace", "LTTReader", "LTTRelay", "LTTProducers", "CLinuxSupport",
                                                    "LTTTestSupport", "LTTMountTestSupport"]),
        // The tests' strict lttd-style consumer: C, independent of the Swift
        // code, doing exactly what the 2009 lttd does to a buffer file.
        .executableTarget(name: "lttd-conform", path: "Tests/LTTDConformance",
                          cSettings: [.unsafeFlags(["-Wall", "-Wextra"])]),
        // The tests' hostile producer: random writes into another process's
        // shared buffers (reopened through /proc/PID/fd).
        .executableTarget(name: "lttfs-shm-fuzz", path: "Tests/LTTShmFuzz",
                          cSettings: [.unsafeFlags(["-Wall", "-Wextra"])]),
        // The tests' allocation count: heap allocations per event on every
        // path that records (AllocationTests), counted by a malloc of its
        // own (CAllocCounter) on the recording thread.
        .target(name: "CAllocCounter", path: "Tests/CAllocCounter"),
        .executableTarget(name: "lttfs-alloc-check", dependencies: ["CAllocCounter", "CLTTProducer", "LTTProducerC", "LTTTrace", "LTTFormat"],
                          path: "Tests/LTTAllocCheck"),
        // Shared by the test targets: a seeded generator, flags, counters.
        .target(name: "LTTTestSupport", dependencies: ["LTTSystem", "LTTFormat"], path: "Tests/LTTTestSupport"),
        // Traces recorded in-process and drained to a directory, for the
        // test targets of the tracer and of what reads traces.
        .target(name: "LTTTraceTestSupport", dependencies: ["LTTTrace", "LTTRelay", "LTTReader", "LTTFormat", "LTTCTF", "LTTSystem"],
                path: "Tests/LTTTraceTestSupport"),
        // A real mount, for the test targets that need one.
        .target(name: "LTTMountTestSupport", dependencies: ["LTTFS", "LTTTrace"], path: "Tests/LTTMountTestSupport"),
        .testTarget(name: "LTTRelayTests", dependencies: ["LTTFormat", "LTTRelay", "LTTSystem", "LTTTestSupport"]),
    ]
)
