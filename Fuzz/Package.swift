// swift-tools-version:5.4
// 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's entry point to `<module>_main`
// and links `main` to it, which leaves no room for libFuzzer's own `main`.
// libFuzzer targets for GatehouseCore's parsers. A package of its own, so that the root
// package's build and tests never see fuzzer flags: build and run with `Fuzz/run.sh`.
import Foundation
import PackageDescription

// A path dependency's identity is the name of its folder (`main` in a work tree called main),
// so read it from where this manifest sits rather than hard-coding it.
let rootFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = rootFolder.lastPathComponent.lowercased()

let core: Target.Dependency = .product(name: "GatehouseCore", package: rootIdentity)
// Each fuzz target is a main.swift without top-level code: libFuzzer brings `main` and calls
// LLVMFuzzerTestOneInput. `-sanitize=fuzzer,address` is passed on the command line instead
// (run.sh), because it must also reach GatehouseCore to instrument it for coverage.
let fuzzTarget: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "gatehouse-fuzz",
    platforms: [.macOS("15.0")],
    products: [
        .executable(name: "fuzz-basic", targets: ["fuzz-basic"]),
        .executable(name: "fuzz-htpasswd", targets: ["fuzz-htpasswd"]),
        .executable(name: "fuzz-htgroups", targets: ["fuzz-htgroups"]),
        .executable(name: "fuzz-registry-uri", targets: ["fuzz-registry-uri"]),
        .executable(name: "fuzz-config", targets: ["fuzz-config"]),
    ],
    dependencies: [
        .package(path: ".."),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [core]),
        .executableTarget(name: "fuzz-basic", dependencies: [core, "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-htpasswd", dependencies: [core, "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-htgroups", dependencies: [core, "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-registry-uri", dependencies: [core, "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-config", dependencies: [core, "FuzzSupport"], swiftSettings: fuzzTarget),
    ]
)
