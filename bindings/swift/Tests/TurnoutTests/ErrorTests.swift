import Foundation
import XCTest
@testable import Turnout

/// Bad input from the host gives a typed error, never a crash.
final class ErrorTests: XCTestCase {
    let seed = repoRoot.appendingPathComponent("examples/configs/seed-rollout.json")

    private func assertThrows(_ expected: (TurnoutError) -> Bool, file: StaticString = #filePath, line: UInt = #line,
                              _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let e as TurnoutError {
            XCTAssertTrue(expected(e), "unexpected \(e)", file: file, line: line)
        } catch {
            XCTFail("not a TurnoutError: \(error)", file: file, line: line)
        }
    }

    func testMalformedConfigs() {
        for text in ["{", "[]", "{\"schema\": 1, \"rollouts\": [{\"variable\": 3}]}", ""] {
            assertThrows({ if case .config = $0 { return true }; return false }) {
                _ = try Client(config: Data(text.utf8))
            }
        }
    }

    func testARejectedUpdateKeepsTheConfig() throws {
        let client = try Client(contentsOf: seed)
        assertThrows({ if case .config = $0 { return true }; return false }) {
            try client.updateConfig(Data("{\"schema\": 1, \"rollouts\": [{\"variable\": \"x\", \"default\": }]}".utf8))
        }
        XCTAssertEqual(try client.getVariable("automatedMessageDelay", ["city": 6, "svc": 302]).int64(0), 60)
    }

    func testInvalidOptions() {
        assertThrows({ if case .options = $0 { return true }; return false }) {
            _ = try Client(options: ClientOptions(maxQueue: 0))
        }
    }

    func testClosedHandles() throws {
        let client = try Client(contentsOf: seed)
        let v = try client.variable("automatedMessageDelay")
        let ctx = try client.context(["city": 6, "svc": 302])
        XCTAssertEqual(try ctx.int64(v, default: 0), 60)
        ctx.close()
        ctx.close()
        let isClosed: (TurnoutError) -> Bool = { if case .closed = $0 { return true }; return false }
        assertThrows(isClosed) { _ = try ctx.int64(v, default: 0) }
        assertThrows(isClosed) { _ = try ctx.bool(v, default: false) }
        assertThrows(isClosed) { _ = try ctx.decision(v) }
        let kept = try client.context(["city": 6, "svc": 11])
        client.close()
        XCTAssertTrue(client.closed)
        assertThrows(isClosed) { _ = try client.getVariable("automatedMessageDelay") }
        assertThrows(isClosed) { _ = try client.variable("x") }
        assertThrows(isClosed) { _ = try client.takeBatch() }
        assertThrows(isClosed) { try client.updateConfig(Data()) }
        XCTAssertEqual(try kept.int64(v, default: 0), 60, "a context keeps the engine alive")
    }

    func testStateAndBatchErrors() throws {
        let client = try Client(contentsOf: seed)
        assertThrows({ if case .state = $0 { return true }; return false }) { try client.setTimeMs(1) }
        assertThrows({ if case .batch(.notABatch, _) = $0 { return true }; return false }) {
            _ = try decodeBatch(Data("nope".utf8))
        }
        assertThrows({ if case .batch(.json, _) = $0 { return true }; return false }) {
            _ = try encodeBatch(json: "not json")
        }
    }
}
