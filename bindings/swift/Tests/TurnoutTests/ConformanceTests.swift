import Foundation
import XCTest
@testable import Turnout

/// Every conformance vector, discovered through tests/conformance/index.json,
/// through the one-shot path, the prepared path and the typed getters.
final class ConformanceTests: XCTestCase {
    func testDecisionVectors() throws {
        let files = try indexFiles("decisions")
        XCTAssertGreaterThanOrEqual(files.count, 6)
        for path in files {
            let doc = try loadJSON(conformanceDir.appendingPathComponent(path))
            guard case .int(let now)? = doc["nowMs"], case .array(let cases)? = doc["cases"], let config = doc["config"]
            else { return XCTFail("\(path): not a decision vector file") }
            let client = try Client(config: Data(try config.jsonText().utf8),
                                    options: ClientOptions(decisionEvents: .off, fixedTimeMs: now))
            var passed = 0
            var failures: [String] = []
            for c in cases {
                guard case .string(let name)? = c["variable"], let expected = c["expected"] else { continue }
                if case .int(let t)? = c["nowMs"] { try client.setTimeMs(t) } else { try client.setTimeMs(now) }
                let facets = vectorFacets(c["facets"])
                let oneShot = contractJSON(try client.getVariable(name, facets))
                let variable = try client.variable(name)
                let ctx = try client.context(facets)
                let prepared = contractJSON(try ctx.decision(variable))
                var ok = true
                for (kind, got) in [("one-shot", oneShot), ("prepared", prepared)] {
                    let same = ["value", "source", "experiment", "rule", "choice", "reason", "errorCode"].allSatisfy {
                        (got[$0] ?? .null).sameJSON(expected[$0] ?? .null)
                    }
                    if !same {
                        ok = false
                        failures.append("\(path) [\(kind)] \(name) \(c["facets"] ?? .null): expected \(expected), got \(got)")
                    }
                }
                // The C fast path agrees with the decision.
                if case .int(let v)? = expected["value"], try ctx.int64(variable, default: Int64.min) != v {
                    ok = false
                    failures.append("\(path) [int64] \(name): expected \(v)")
                }
                if case .bool(let b)? = expected["value"], try ctx.bool(variable, default: !b) != b {
                    ok = false
                    failures.append("\(path) [bool] \(name): expected \(b)")
                }
                if ok { passed += 1 }
            }
            ConformanceResults.shared.record(path, passed: passed, failed: cases.count - passed)
            XCTAssertEqual(passed, cases.count, "\(path): \(failures.prefix(5).joined(separator: "\n"))")
            print("\(path): \(passed) passed, \(cases.count - passed) failed")
        }
    }

    func testBatchVectors() throws {
        for path in try indexFiles("batches") {
            let doc = try loadJSON(conformanceDir.appendingPathComponent(path))
            guard case .array(let cases)? = doc["cases"], case .array(let invalid)? = doc["invalid"] else {
                return XCTFail("\(path): not a batch vector file")
            }
            var passed = 0
            for c in cases {
                guard case .string(let name)? = c["name"], case .string(let hex)? = c["hex"],
                      let header = c["header"], case .array(let events)? = c["events"] else { continue }
                let input = JSONValue.object(["header": header, "events": .array(events)])
                let bytes = try encodeBatch(json: try input.jsonText())
                XCTAssertEqual(hexString(bytes), hex, "\(name): encoded bytes differ")
                let decoded = try decodeBatch(dataFromHex(hex))
                // The decoder's JSON has no valueText: its value is exactly the wire text's JSON.
                var expectedEvents: [JSONValue] = []
                for (e, got) in zip(events, decodedEvents(decoded)) {
                    guard case .object(var o) = e else { continue }
                    if case .string(let text)? = o.removeValue(forKey: "valueText") {
                        XCTAssertEqual(got["value"], try JSONValue.parse(text), "\(name): valueText")
                    }
                    expectedEvents.append(.object(o))
                }
                let expected = exactInts(.object(["header": header, "events": .array(expectedEvents)]))
                XCTAssertTrue(decoded.sameJSON(expected), "\(name): \(decoded) != \(expected)")
                passed += 1
            }
            for c in invalid {
                guard case .string(let name)? = c["name"], case .string(let hex)? = c["hex"],
                      case .string(let kind)? = c["error"] else { continue }
                do {
                    _ = try decodeBatch(dataFromHex(hex))
                    XCTFail("\(name): a corrupted batch was accepted")
                } catch TurnoutError.batch(let got, _) {
                    XCTAssertEqual(got.rawValue, kind, name)
                    passed += 1
                }
            }
            XCTAssertEqual(passed, cases.count + invalid.count)
            XCTAssertGreaterThanOrEqual(passed, 10)
            ConformanceResults.shared.record(path, passed: passed, failed: cases.count + invalid.count - passed)
        }
    }

    /// The host protocol's scripts (docs/sync.md section 10), one case per script, through the
    /// generated `SyncMachine` (the one the poller drives; `NativeSyncMachine` in the facade).
    func testSyncVectors() throws {
        let files = try indexFiles("sync")
        XCTAssertGreaterThanOrEqual(files.count, 1)
        for path in files {
            let doc = try loadJSON(conformanceDir.appendingPathComponent(path))
            guard case .array(let scripts)? = doc["scripts"] else { return XCTFail("\(path): not a sync vector file") }
            var failures: [String] = []
            for script in scripts {
                do { try runSyncScript(script) } catch { failures.append("\(error)") }
            }
            let passed = scripts.count - failures.count
            ConformanceResults.shared.record(path, passed: passed, failed: failures.count)
            XCTAssertEqual(passed, scripts.count, "\(path): \(failures.joined(separator: "\n"))")
            print("\(path): \(passed) passed, \(failures.count) failed")
        }
    }

    private func decodedEvents(_ v: JSONValue) -> [JSONValue] {
        if case .array(let a)? = v["events"] { return a }
        return []
    }
}

func hexString(_ data: Data) -> String {
    data.map { String(format: "%02x", $0) }.joined()
}

func dataFromHex(_ hex: String) -> Data {
    var out = Data()
    var chars = hex.makeIterator()
    while let a = chars.next(), let b = chars.next() {
        if let byte = UInt8(String([a, b]), radix: 16) { out.append(byte) }
    }
    return out
}

/// A sync script that did not run as written.
struct SyncScriptFailure: Error, CustomStringConvertible {
    let description: String
}

private func text(_ v: JSONValue?) -> String? {
    if case .string(let s)? = v { return s }
    return nil
}

/// An action in the vectors' JSON form (upload bytes left out).
func syncActionJSON(_ a: NativeSyncAction) -> JSONValue {
    let str = { (s: String?) -> JSONValue in s.map { .string($0) } ?? .null }
    switch a.kind {
    case .fetch:
        return .object(["action": .string("fetch"), "url": str(a.url), "etag": str(a.etag),
                        "timeoutMs": .int(Int64(a.timeoutMs)), "maxBytes": .int(Int64(a.maxBytes))])
    case .upload:
        return .object(["action": .string("upload"), "url": str(a.url), "seq": .int(Int64(a.seq)),
                        "events": .int(Int64(a.events)), "timeoutMs": .int(Int64(a.timeoutMs))])
    case .wait:
        return .object(["action": .string("wait"), "ms": .int(Int64(a.waitMs))])
    case .stop:
        return .object(["action": .string("stop")])
    }
}

/// Runs one script of docs/sync.md section 10 (the Rust interpreter, core/src/sync/script.rs,
/// is the reference); throws at the first step that differs.
func runSyncScript(_ script: JSONValue) throws {
    let name = text(script["name"]) ?? "?"
    func fail(_ i: Int, _ m: String) -> SyncScriptFailure { SyncScriptFailure(description: "\(name): step \(i): \(m)") }
    // The client options the scripts use, mapped onto ClientOptions (anything else is refused).
    var options = ClientOptions()
    guard case .object(let co)? = script["clientOptions"] else { throw SyncScriptFailure(description: "\(name): clientOptions") }
    for (key, value) in co {
        switch key {
        case "service": options.service = text(value)
        case "clientId": options.clientId = text(value)
        case "fixedTimeMs": options.fixedTimeMs = value.int64Value
        case "maxConfigBytes": options.maxConfigBytes = value.int64Value.map { UInt64($0) }
        case "maxQueue": options.maxQueue = value.int64Value.map { UInt64($0) }
        case "maxUnackedBatches": options.maxUnackedBatches = value.int64Value.map { UInt64($0) }
        default: throw SyncScriptFailure(description: "\(name): clientOptions.\(key) is not mapped by this runner")
        }
    }
    let client: Client
    if let boot = script["bootstrap"], boot != .null {
        client = try Client(config: Data(try boot.jsonText().utf8), options: options)
    } else {
        client = try Client(options: options)
    }
    let sync = try mapErrors { try NativeSyncMachine(client: client.native, optionsJson: try (script["options"] ?? .null).jsonText()) }
    guard case .array(let steps)? = script["steps"] else { throw SyncScriptFailure(description: "\(name): no steps") }
    for (i, step) in steps.enumerated() {
        guard case .object(let o) = step, let at = o["at"]?.int64Value, let operation = o.first(where: { $0.key != "at" })
        else { throw fail(i, "not a step") }
        let (op, want) = (operation.key, operation.value)
        if let fixed = options.fixedTimeMs { try client.setTimeMs(fixed + at) }
        let now = UInt64(at)
        var got: JSONValue?
        switch op {
        case "next": got = syncActionJSON(sync.next(nowMs: now))
        case "notices": got = try JSONValue.parse(sync.takeNoticesJson())
        case "state":
            guard case .object(let fields) = want else { throw fail(i, "`state` must be an object") }
            let full = try JSONValue.parse(sync.stateJson())
            got = .object(Dictionary(uniqueKeysWithValues: fields.keys.map { ($0, full[$0] ?? .null) }))
        case "fetched":
            var body = Data()
            if let b = want["body"], b != .null {
                body = Data(try b.jsonText().utf8)
            } else if let t = text(want["bodyText"]) {
                body = Data(t.utf8)
            }
            sync.onFetch(nowMs: now, status: UInt16(clamping: want["status"]?.int64Value ?? 0), etag: text(want["etag"]),
                         retryAfter: text(want["retryAfter"]), body: body, failure: text(want["failure"]),
                         message: text(want["message"]) ?? "")
        case "uploaded":
            guard let seq = want["seq"]?.int64Value else { throw fail(i, "`uploaded` needs a seq") }
            sync.onUpload(nowMs: now, seq: UInt64(seq), status: UInt16(clamping: want["status"]?.int64Value ?? 0),
                          retryAfter: text(want["retryAfter"]), failure: text(want["failure"]),
                          message: text(want["message"]) ?? "")
        case "track":
            try client.track(text(want["name"]) ?? "event", value: want["value"]?.doubleValue ?? 1, facets: Facets())
        case "pollNow": sync.pollNow()
        case "flushNow": sync.flushNow()
        case "stop":
            if case .bool(let flush)? = want["flush"] { sync.stop(flush: flush) } else { sync.stop(flush: true) }
        default: throw fail(i, "unknown operation `\(op)`")
        }
        if let g = got, !g.sameJSON(want) {
            throw fail(i, "`\(op)`: expected \(want), got \(g)")
        }
    }
}
