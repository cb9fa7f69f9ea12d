import Foundation
import XCTest
@testable import Turnout

/// The repository root (this file is bindings/swift/Tests/TurnoutTests/Support.swift).
let repoRoot: URL = {
    if let r = ProcessInfo.processInfo.environment["TURNOUT_ROOT"] { return URL(fileURLWithPath: r) }
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<5 { u = u.deletingLastPathComponent() }
    return u
}()

let conformanceDir = repoRoot.appendingPathComponent("tests/conformance")

func loadJSON(_ url: URL) throws -> JSONValue {
    try JSONValue.parse(try Data(contentsOf: url))
}

/// The vector files of `kind` listed in tests/conformance/index.json (never a hard-coded list).
func indexFiles(_ kind: String) throws -> [String] {
    guard case .array(let files)? = try loadJSON(conformanceDir.appendingPathComponent("index.json"))["files"] else {
        throw TurnoutError.state("index.json has no files")
    }
    return files.compactMap { f -> String? in
        guard case .string(kind)? = f["kind"], case .string(let path)? = f["path"] else { return nil }
        return path
    }
}

/// Vector facets (`{"$int64": "..."}` -> an exact integer; null -> absent).
func vectorFacets(_ v: JSONValue?) -> Facets {
    guard case .object(let o)? = v else { return Facets() }
    var f = Facets()
    for (name, value) in o {
        switch value {
        case .string(let s): f = f.set(name, .string(s))
        case .int(let i): f = f.set(name, .int(i))
        case .double(let d): f = f.set(name, .double(d))
        case .bool(let b): f = f.set(name, .bool(b))
        case .object(let inner):
            if case .string(let s)? = inner["$int64"], let i = Int64(s) { f = f.set(name, .int(i)) }
        case .null, .array:
            break
        }
    }
    return f
}

/// `{"$int64": "..."}` anywhere -> an exact integer (the decoder writes exact numbers).
func exactInts(_ v: JSONValue) -> JSONValue {
    switch v {
    case .object(let o):
        if o.count == 1, case .string(let s)? = o["$int64"], let i = Int64(s) { return .int(i) }
        return .object(o.mapValues(exactInts))
    case .array(let a):
        return .array(a.map(exactInts))
    default:
        return v
    }
}

/// The decision as the contract's JSON object.
func contractJSON(_ d: Decision) -> JSONValue {
    .object([
        "value": d.value ?? .null,
        "source": .string(d.source),
        "experiment": d.experiment.map { .string($0) } ?? .null,
        "rule": d.rule.map { .int(Int64($0)) } ?? .null,
        "choice": d.choice.map { .int(Int64($0)) } ?? .null,
        "reason": .string(d.reason),
        "errorCode": d.errorCode.map { .string($0) } ?? .null,
    ])
}

/// Results for target/conformance/swift.json, written when the conformance tests finish.
final class ConformanceResults {
    static let shared = ConformanceResults()
    private let lock = NSLock()
    private var files: [String: JSONValue] = [:]

    func record(_ file: String, passed: Int, failed: Int) {
        lock.lock()
        files[file] = .object(["passed": .int(Int64(passed)), "failed": .int(Int64(failed))])
        let snapshot = JSONValue.object(["platform": .string("swift"), "files": .object(files)])
        lock.unlock()
        let dir = repoRoot.appendingPathComponent("target/conformance")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let text = try? snapshot.jsonText() {
            try? Data(text.utf8).write(to: dir.appendingPathComponent("swift.json"))
        }
    }
}

/// Waits until `condition` holds, failing the test after `timeout` seconds.
func waitFor(_ timeout: TimeInterval = 10, file: StaticString = #filePath, line: UInt = #line,
             _ condition: () throws -> Bool) rethrows {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        if Date() > deadline {
            XCTFail("condition not reached in \(timeout) s", file: file, line: line)
            return
        }
        Thread.sleep(forTimeInterval: 0.01)
    }
}

/// A scripted config server and event collector (the poller's logic without sockets).
final class FakeServer: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var _config = Data()
    private var _etag = ""
    private var _down = false
    private var _failPosts = 0
    private var _gets = 0
    private var _notModified = 0
    private var _accepted: [Data] = []
    private var _failed: [Data] = []
    private var _ifNoneMatch: [String?] = []

    func serve(_ json: String, etag: String) {
        lock.lock(); _config = Data(json.utf8); _etag = etag; lock.unlock()
    }
    func setDown(_ down: Bool) { lock.lock(); _down = down; lock.unlock() }
    func failPosts(_ n: Int) { lock.lock(); _failPosts = n; lock.unlock() }
    var gets: Int { lock.lock(); defer { lock.unlock() }; return _gets }
    var notModified: Int { lock.lock(); defer { lock.unlock() }; return _notModified }
    var accepted: [Data] { lock.lock(); defer { lock.unlock() }; return _accepted }
    var failed: [Data] { lock.lock(); defer { lock.unlock() }; return _failed }
    /// The If-None-Match of every GET.
    var ifNoneMatch: [String?] { lock.lock(); defer { lock.unlock() }; return _ifNoneMatch }

    func send(_ request: URLRequest) throws -> HTTPResponse {
        lock.lock()
        defer { lock.unlock() }
        if _down { throw TurnoutError.http(status: nil, message: "connection refused") }
        if request.httpMethod == "POST" {
            let body = request.httpBody ?? Data()
            if _failPosts > 0 {
                _failPosts -= 1
                _failed.append(body)
                return HTTPResponse(status: 500)
            }
            _accepted.append(body)
            return HTTPResponse(status: 204)
        }
        _gets += 1
        _ifNoneMatch.append(request.value(forHTTPHeaderField: "If-None-Match"))
        if !_etag.isEmpty, request.value(forHTTPHeaderField: "If-None-Match") == _etag {
            _notModified += 1
            return HTTPResponse(status: 304)
        }
        return HTTPResponse(status: 200, body: _config, headers: _etag.isEmpty ? [:] : ["etag": _etag])
    }
}

func bundle(version: Int, value: Int) -> String {
    "{\"schema\": 1, \"version\": \(version), \"rollouts\": [{\"variable\": \"delay\", \"rollouts\": [], \"default\": \(value)}]}"
}
