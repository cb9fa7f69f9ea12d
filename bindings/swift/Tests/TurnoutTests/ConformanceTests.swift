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
