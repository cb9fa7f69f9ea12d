// swift-tools-version:5.7
// turnout from Swift: `swift run TurnoutExample http://127.0.0.1:8080/events`
// (after `cargo xtask swift`, which generates bindings/swift).
import PackageDescription

let package = Package(
    name: "TurnoutExample",
    platforms: [.macOS(.v12)],
    dependencies: [.package(path: "../../bindings/swift")],
    targets: [
        .executableTarget(
            name: "TurnoutExample",
            dependencies: [.product(name: "Turnout", package: "swift")],
            path: "Sources/TurnoutExample"
        ),
    ]
)
