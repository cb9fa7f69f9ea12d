// swift-tools-version:5.9
// The turnout Swift package: the UniFFI-generated bindings (TurnoutFFI), the C module of the
// native library (turnout_ffiFFI: UniFFI's header plus the hot-path functions) and the Swift
// facade (Turnout). No unsafeFlags, so it can be used as a dependency:
//
// - Apple platforms: turnout_ffiFFI is a binary target, an XCFramework of the static library
//   for every Apple slice with the header and module map (scripts/build-xcframework.sh, run on
//   macOS; a release replaces `path:` with the `url:` and `checksum:` the script prints).
// - Linux: turnout_ffiFFI is a system library found through pkg-config (`turnout_ffi.pc`,
//   shipped next to the static library in the release archive; set PKG_CONFIG_PATH to it).
//
// The generated sources (Sources/TurnoutFFI/turnout_ffi.swift, Sources/turnout_ffiFFI/
// turnout_ffiFFI.h) are written by `cargo xtask swift` in the repository and are part of the
// release archive built by `cargo xtask dist`.

import PackageDescription

#if os(Linux)
let native: Target = .systemLibrary(name: "turnout_ffiFFI", path: "Sources/turnout_ffiFFI", pkgConfig: "turnout_ffi")
#else
let native: Target = .binaryTarget(name: "turnout_ffiFFI", path: "turnout_ffiFFI.xcframework")
#endif

let package = Package(
    name: "Turnout",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Turnout", targets: ["Turnout"]),
    ],
    targets: [
        native,
        .target(name: "TurnoutFFI", dependencies: ["turnout_ffiFFI"], path: "Sources/TurnoutFFI"),
        .target(name: "Turnout", dependencies: ["TurnoutFFI", "turnout_ffiFFI"], path: "Sources/Turnout"),
        .testTarget(name: "TurnoutTests", dependencies: ["Turnout"], path: "Tests/TurnoutTests"),
    ]
)
