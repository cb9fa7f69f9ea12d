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
        let lock = NSLock()
        var bad: [String] = []
        var done = false
        var counts = [Int](repeating: 0, count: 8)
        let group = DispatchGroup()
        for i in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let city6 = try client.context(Facets().city(6).passenger(Int64(i)))
                    let other = try client.context(["city": 10, "pax": .int(Int64(i))])
                    var n = 0
                    while true {
                        lock.lock()
                        let stop = done
                        lock.unlock()
                        if stop { break }
                        let a = try other.int64(variable, default: -1)
                        let b = try city6.int64(variable, default: -1)
                        let c = try client.getVariable("delay", Facets().city(6)).int64(-1)
                        if ![1, 2].contains(a) || ![10, 20].contains(b) || ![10, 20].contains(c) {
                            lock.lock(); bad.append("reader \(i): \(a) \(b) \(c)"); lock.unlock()
                        }
                        n += 1
                        if n % 200 == 0 { while try client.takeBatch(maxEvents: 10_000) != nil {} }
                    }
                    lock.lock(); counts[i] = n; lock.unlock()
                } catch {
                    lock.lock(); bad.append("reader \(i) threw \(error)"); lock.unlock()
                }
            }
        }
        for n in 0..<1000 {
            let report = try client.updateConfig(configs[(n + 1) % 2])
            XCTAssertEqual(report.changed, ["delay"])
        }
        lock.lock(); done = true; lock.unlock()
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(bad, [])
        XCTAssertTrue(counts.allSatisfy { $0 > 0 }, "\(counts)")
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertEqual(try client.getVariable("delay", ["city": 5]).int64(-1), 1)
    }
}
