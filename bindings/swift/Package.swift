// swift-tools-version:5.7
// The turnout Swift package: the UniFFI-generated bindings (TurnoutFFI, written
// by `cargo xtask swift`, not in git), the C module for their header plus the
// hot-path functions (turnout_ffiFFI), and the Swift facade (Turnout).
//
// The native library is linked from TURNOUT_LIB_DIR, by default the
// workspace's target/release (`cargo build --release -p turnout-ffi`).
// For iOS, package libturnout_ffi.a per architecture as an XCFramework and
// replace the linker settings with a binaryTarget (see README.md).

import Foundation
import PackageDescription

let packageDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
let libDir = ProcessInfo.processInfo.environment["TURNOUT_LIB_DIR"]
    ?? packageDir.appendingPathComponent("../../target/release").standardizedFileURL.path

let package = Package(
    name: "Turnout",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Turnout", targets: ["Turnout"]),
    ],
    targets: [
        .systemLibrary(name: "turnout_ffiFFI", path: "Sources/turnout_ffiFFI"),
        .target(
            name: "TurnoutFFI",
            dependencies: ["turnout_ffiFFI"],
            path: "Sources/TurnoutFFI",
            linkerSettings: [.unsafeFlags(["-L", libDir, "-Xlinker", "-rpath", "-Xlinker", libDir])]
        ),
        .target(name: "Turnout", dependencies: ["TurnoutFFI", "turnout_ffiFFI"], path: "Sources/Turnout"),
        .testTarget(name: "TurnoutTests", dependencies: ["Turnout"], path: "Tests/TurnoutTests"),
    ]
)
