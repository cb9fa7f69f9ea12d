import Foundation
import XCTest
@testable import Turnout

/// 8 threads evaluating while another updates the config 1,000 times: no
/// crash, and every answer comes from the old or the new config.
final class ThreadTests: XCTestCase {
    private func config(_ value: Int, version: Int) -> Data {
        Data("""
        {"schema": 1, "version": \(version), "rollouts": [{"variable": "delay", "default": \(value),
         "rollouts": [{"value": \(value * 10), "constraints": [{"target": "city", "op": "=", "value": 6}]}]}]}
        """.utf8)
    }

    func testEightReadersAndOneWriter() throws {
        let configs = [config(1, version: 1), config(2, version: 2)]
        let client = try Client(config: configs[0], options: ClientOptions(maxQueue: 100_000))
        let variable = try client.variable("delay")
        let shared = Shared()
        let group = DispatchGroup()
        for i in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let city6 = try client.context(Facets().city(6).passenger(Int64(i)))
                    let other = try client.context(["city": 10, "pax": .int(Int64(i))])
                    var n = 0
                    while !shared.isDone {
                        let a = try other.int64(variable, default: -1)
                        let b = try city6.int64(variable, default: -1)
                        let c = try client.getVariable("delay", Facets().city(6)).int64(-1)
                        if ![1, 2].contains(a) || ![10, 20].contains(b) || ![10, 20].contains(c) {
                            shared.fail("reader \(i): \(a) \(b) \(c)")
                        }
                        n += 1
                        if n % 200 == 0 { while try client.takeBatch(maxEvents: 10_000) != nil {} }
                    }
                    shared.count(i, n)
                } catch {
                    shared.fail("reader \(i) threw \(error)")
                }
            }
        }
        for n in 0..<1000 {
            let report = try client.updateConfig(configs[(n + 1) % 2])
            XCTAssertEqual(report.changed, ["delay"])
        }
        shared.finish()
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(shared.failures, [])
        XCTAssertTrue(shared.counts.allSatisfy { $0 > 0 }, "\(shared.counts)")
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertEqual(try client.getVariable("delay", ["city": 5]).int64(-1), 1)
    }
}

/// State shared by the reader threads (behind a lock).
private final class Shared: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    private var bad: [String] = []
    private var perThread = [Int](repeating: 0, count: 8)

    var isDone: Bool { lock.lock(); defer { lock.unlock() }; return done }
    var failures: [String] { lock.lock(); defer { lock.unlock() }; return bad }
    var counts: [Int] { lock.lock(); defer { lock.unlock() }; return perThread }
    func finish() { lock.lock(); done = true; lock.unlock() }
    func fail(_ what: String) { lock.lock(); bad.append(what); lock.unlock() }
    func count(_ i: Int, _ n: Int) { lock.lock(); perThread[i] = n; lock.unlock() }
}
