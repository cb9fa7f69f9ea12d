import Foundation
import XCTest
@testable import Turnout

final class APITests: XCTestCase {
    let example = repoRoot.appendingPathComponent("examples/configs/example.json")

    func testOneShotPreparedAndBuilderAgree() throws {
        let client = try Client(contentsOf: example, options: ClientOptions(service: "booking"))
        let v = try client.variable("automatedMessageDelay")
        XCTAssertTrue(try client.variable("automatedMessageDelay") === v, "handles are cached")
        for pax in Int64(0)..<200 {
            let built = Facets().passenger(pax).city(10)
            let literal: Facets = ["pax": .int(pax), "city": 10]
            XCTAssertEqual(built, literal)
            let d = try client.getVariable("automatedMessageDelay", built)
            let ctx = try client.context(literal)
            XCTAssertEqual(try ctx.int64(v, default: 0), d.int64(0))
            XCTAssertEqual(try ctx.decision(v), d)
            XCTAssertTrue([30, 90].contains(d.int64(0)))
        }
    }

    func testDecisionFields() throws {
        let client = try Client(contentsOf: example)
        let d = try client.getVariable("automatedMessageDelay", Facets().city(6).service(302))
        XCTAssertEqual(d.value, .int(60))
        XCTAssertEqual(d.source, "rollout")
        XCTAssertEqual(d.rule, 0)
        XCTAssertEqual(d.label, "60s delay")
        XCTAssertEqual(d.float64(0), 60)
        XCTAssertEqual(d.string("x"), "x")
        let missing = try client.getVariable("noSuchVariable")
        XCTAssertTrue(missing.isFallback)
        XCTAssertEqual(missing.errorCode, "FLAG_NOT_FOUND")
        XCTAssertEqual(missing.int64(7), 7)
    }

    func testIdsAbove2Pow53AreExact() throws {
        let client = try Client(contentsOf: example)
        let ctx = try client.context(Facets().passenger(9_007_199_254_740_993))
        XCTAssertEqual(try ctx.facets()["pax"], .int(9_007_199_254_740_993))
    }

    func testTrackingAckAndNack() throws {
        let client = try Client(contentsOf: example, options: ClientOptions(service: "booking"))
        _ = try client.getVariable("automatedMessageDelay", ["city": 6, "svc": 302])
        _ = try client.getVariable("automatedMessageDelay", ["city": 6, "svc": 302])
        try client.track("pickupSeconds", value: 42.5, facets: Facets().passenger(7).booking("ADR-1"))
        let stats = try client.trackingStats()
        XCTAssertEqual(stats.recorded, 3)
        XCTAssertEqual(stats.folded, 1)
        guard let b = try client.takeBatch(maxEvents: 10) else { return XCTFail("no batch") }
        XCTAssertEqual(b.events, 2)
        XCTAssertTrue(try client.nack(b.seq))
        guard let again = try client.takeBatch(maxEvents: 10) else { return XCTFail("no batch after nack") }
        XCTAssertEqual(again, b, "a nacked batch comes back with the same bytes")
        XCTAssertTrue(try client.ack(again.seq))
        XCTAssertFalse(try client.ack(again.seq))
        let decoded = try decodeBatch(again.bytes)
        XCTAssertEqual(decoded["header"]?["sdk"], .string("turnout-swift"))
        XCTAssertNil(try client.takeBatch())
    }

    func testVersions() {
        XCTAssertEqual(specVersion(), 1)
        XCTAssertEqual(libraryVersion(), Client.version)
    }
}
