import Foundation
import XCTest
@testable import Turnout

/// The limits on hostile input (docs/spec.md, section 17): each is `TurnoutError.limit`
/// naming the limit (or, for facets, the caller's default with `INVALID_CONTEXT`); the
/// previous config stays in force and nothing costs more than its input's size.
final class LimitTests: XCTestCase {
    let seed = repoRoot.appendingPathComponent("examples/configs/seed-rollout.json")
    let example = repoRoot.appendingPathComponent("examples/configs/example.json")
    let delay = "automatedMessageDelay"

    private func assertLimit(_ name: String, file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let e as TurnoutError {
            guard case .limit(let m, _) = e else { return XCTFail("not .limit: \(e)", file: file, line: line) }
            XCTAssertTrue(m.contains("limit `\(name)` exceeded: found "), m, file: file, line: line)
            XCTAssertEqual(e.limitName, name, file: file, line: line)
        } catch {
            XCTFail("not a TurnoutError: \(error)", file: file, line: line)
        }
    }

    private func assertStillSeed(_ client: Client, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try client.getVariable(delay, ["city": 6, "svc": 302]).int64(0), 60,
                       "the previous config is in force", file: file, line: line)
    }

    /// One segment of 1,000 constraints referenced 10,000 times: 10,000,000 constraints from ~80 KB.
    private func blowUpBundle() -> Data {
        let constraints = (0..<1000).map { "{\"target\":\"city\",\"op\":\"=\",\"value\":\($0)}" }.joined(separator: ",")
        let refs = Array(repeating: "\"s\"", count: 10000).joined(separator: ",")
        return Data("""
            {"schema": 1, "version": 2, "segments": {"s": {"constraints": [\(constraints)]}},
             "rollouts": [{"variable": "blowUp", "rollouts": [{"value": 1, "segments": [\(refs)]}], "default": 0}]}
            """.utf8)
    }

    private func bigFacets(_ n: Int) -> Facets {
        var v: [String: FacetValue] = ["city": .int(6), "svc": .int(302)]
        for i in 0..<n { v["f\(i)"] = .int(Int64(i)) }
        return Facets(v)
    }

    func testAConfigOverMaxConfigBytes() throws {
        let big = try Data(contentsOf: example)
        assertLimit("config_bytes") { _ = try Client(config: big, options: ClientOptions(maxConfigBytes: 1000)) }
        let client = try Client(config: try Data(contentsOf: seed), options: ClientOptions(maxConfigBytes: 1000))
        assertLimit("config_bytes") { try client.updateConfig(big) }
        assertLimit("config_bytes") { _ = try client.validate(big) }
        assertStillSeed(client)
    }

    func testASegmentReferenced10000Times() throws {
        let client = try Client(contentsOf: seed)
        let bundle = blowUpBundle()
        assertLimit("expanded_constraints") { try client.updateConfig(bundle) }
        assertLimit("expanded_constraints") { _ = try client.validate(bundle) }
        assertLimit("expanded_constraints") { _ = try Client(config: bundle) }
        assertStillSeed(client)
        XCTAssertEqual(try client.getVariable("blowUp").int64(-1), -1)
    }

    func testAConfigOf100NestedArrays() throws {
        let client = try Client(contentsOf: seed)
        assertLimit("json_depth") {
            try client.updateConfig(Data((String(repeating: "[", count: 100) + String(repeating: "]", count: 100)).utf8))
        }
        assertStillSeed(client)
    }

    func testFacetsOverALimitGiveInvalidContext() throws {
        let client = try Client(contentsOf: seed)
        let v = try client.variable(delay)
        let cases: [(String, Facets)] = [
            ("2,000 facets", bigFacets(2000)),
            ("a 10,000-byte value", Facets(["city": 6, "svc": 302]).set("note", .string(String(repeating: "x", count: 10000)))),
        ]
        for (what, facets) in cases {
            let d = try client.getVariable(delay, facets)
            XCTAssertEqual(d.reason, "ERROR", what)
            XCTAssertEqual(d.errorCode, "INVALID_CONTEXT", what)
            XCTAssertEqual(d.int64(-7), -7, what)
            let ctx = try client.context(facets)
            XCTAssertEqual(try ctx.int64(v, default: -7), -7, what)
            XCTAssertEqual(try ctx.decision(v).errorCode, "INVALID_CONTEXT", what)
            ctx.close()
            XCTAssertEqual(try client.explain(delay, facets).decision.errorCode, "INVALID_CONTEXT", what)
            try client.track("m", value: 1, facets: facets)
            assertStillSeed(client)
        }
    }

    func testABatchThatDecodesBeyondItsLimit() throws {
        // One 1,000-facet set shared by 200 events: ~10 KB on the wire, ~3 MB once every
        // event's copy of the set is counted (the budget: ~1.4 MB).
        let facets = "{" + (0..<1000).map { "\"f\($0)\":\($0)" }.joined(separator: ",") + "}"
        let events = (0..<200).map {
            "{\"kind\": \"track\", \"name\": \"m\", \"service\": \"s\", \"time\": \(1_700_000_000_000 + $0), \"count\": 1, \"value\": 1, \"facets\": \(facets)}"
        }.joined(separator: ",")
        let json = """
            {"header": {"clientId": "limits", "seq": 1, "createdAtMs": 1700000000000, "sdk": "swift-test",
             "sdkVersion": "1", "platform": "swift", "dropped": 0, "foldOverflow": 0}, "events": [\(events)]}
            """
        let bytes = try encodeBatch(json: json)
        XCTAssertLessThan(bytes.count, 100 << 10)
        assertLimit("decode_expansion") { _ = try decodeBatch(bytes) }
    }
}
