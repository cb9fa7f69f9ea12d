import Foundation
import XCTest
@testable import Turnout

/// The poller: a config change picked up, 304 honoured, a bad config never
/// installed, the server down then up, events delivered exactly once per ack.
/// Scripted transport (FakeServer) for the logic, plus URLSession against a
/// local HTTP server on 127.0.0.1 where python3 is available.
final class PollerTests: XCTestCase {
    private let fast = Poller.Options(interval: 0.02, maxBackoff: 0.1, timeout: 2, jitter: 0)

    func testConfigChangeAnd304() throws {
        let server = FakeServer()
        server.serve(bundle(version: 1, value: 30), etag: "\"v1\"")
        let client = try Client()
        let lock = NSLock()
        var changes: [UpdateReport] = []
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/turnout.json")!,
                            options: fast, transport: server,
                            onChange: { r in lock.lock(); changes.append(r); lock.unlock() })
        poller.start()
        defer { poller.stop() }
        try waitFor { try client.configVersion() == 1 }
        XCTAssertEqual(try client.getVariable("delay").int64(0), 30)
        waitFor { server.notModified >= 3 }
        XCTAssertEqual(poller.etag, "\"v1\"")
        server.serve(bundle(version: 2, value: 45), etag: "\"v2\"")
        try waitFor { try client.configVersion() == 2 }
        XCTAssertEqual(try client.getVariable("delay").int64(0), 45)
        waitFor { lock.lock(); defer { lock.unlock() }; return changes.count == 2 }
        lock.lock()
        XCTAssertEqual(changes.first?.added, ["delay"])
        XCTAssertEqual(changes.last?.changed, ["delay"])
        lock.unlock()
    }

    func testABadConfigNeverReplacesTheGoodOne() throws {
        let server = FakeServer()
        server.serve(bundle(version: 1, value: 30), etag: "\"good\"")
        let client = try Client()
        let lock = NSLock()
        var errors: [Error] = []
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: fast,
                            transport: server, onError: { e in lock.lock(); errors.append(e); lock.unlock() })
        poller.start()
        try waitFor { try client.configVersion() == 1 }
        server.serve("{\"schema\": 1, \"rollouts\": [{\"variable\": 5}", etag: "\"broken\"")
        waitFor { lock.lock(); defer { lock.unlock() }; return !errors.isEmpty }
        let gets = server.gets
        waitFor { server.gets >= gets + 3 }
        poller.stop()
        lock.lock()
        XCTAssertEqual(errors.count, 1, "the broken bytes are fetched once, then 304")
        if case .config? = errors.first as? TurnoutError {} else { XCTFail("not a config error: \(errors)") }
        lock.unlock()
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertEqual(try client.getVariable("delay").int64(0), 30)
    }

    func testServerDownThenUp() throws {
        let server = FakeServer()
        server.setDown(true)
        let client = try Client()
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: fast,
                            transport: server)
        poller.start()
        defer { poller.stop() }
        waitFor { poller.failures >= 3 }
        XCTAssertTrue(try client.getVariable("delay").isFallback)
        server.serve(bundle(version: 7, value: 12), etag: "\"up\"")
        server.setDown(false)
        try waitFor { try client.configVersion() == 7 }
        waitFor { poller.failures == 0 }
        XCTAssertEqual(try client.getVariable("delay").int64(0), 12)
    }

    func testBackoffDoublesAndIsCapped() throws {
        let p = Poller(client: try Client(), configURL: nil,
                       options: Poller.Options(interval: 1, maxBackoff: 5, jitter: 0))
        XCTAssertEqual((0..<5).map { p.delay(1, failures: $0) }, [1, 2, 4, 5, 5])
    }

    func testEventsAreDeliveredExactlyOncePerAck() throws {
        let server = FakeServer()
        server.failPosts(2)
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8),
                                options: ClientOptions(service: "booking"))
        var options = fast
        options.flushInterval = 0.02
        options.maxEvents = 5
        let poller = Poller(client: client, configURL: nil, eventsURL: URL(string: "http://collector.test/events")!,
                            options: options, transport: server)
        poller.start()
        var decisions = 0
        for pax in 0..<40 {
            for _ in 0...(pax % 3) {
                _ = try client.getVariable("delay", Facets().passenger(Int64(pax)))
                decisions += 1
            }
            try client.track("pickupSeconds", value: Double(pax), facets: ["pax": .int(Int64(pax))])
        }
        try waitFor {
            let s = try client.trackingStats()
            return s.queued == 0 && s.inFlight == 0 && server.failed.count == 2
        }
        poller.stop()
        var seqs: [Int64] = []
        var decided: Int64 = 0
        var tracked: Int64 = 0
        for body in server.accepted {
            let batch = try decodeBatch(body)
            if case .int(let seq)? = batch["header"]?["seq"] { seqs.append(seq) }
            guard case .array(let events)? = batch["events"] else { continue }
            for e in events {
                guard case .int(let count)? = e["count"] else { continue }
                if case .string("decision")? = e["kind"] { decided += count } else { tracked += count }
            }
        }
        XCTAssertEqual(Set(seqs).count, seqs.count, "a batch was delivered twice: \(seqs)")
        XCTAssertEqual(decided, Int64(decisions))
        XCTAssertEqual(tracked, 40)
        for failed in server.failed { XCTAssertTrue(server.accepted.contains(failed), "a nacked batch went again") }
        let stats = try client.trackingStats()
        XCTAssertEqual([stats.queued, stats.inFlight, stats.retrying, stats.dropped], [0, 0, 0, 0])
    }

    #if os(macOS) || os(Linux)
    /// URLSession against a real HTTP server on 127.0.0.1 (python3's http.server).
    func testURLSessionAgainstALocalServer() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client()
        let poller = client.poller(configURL: URL(string: "\(server.url)/config")!,
                                   eventsURL: URL(string: "\(server.url)/events")!, options: fast)
        poller.start()
        try waitFor { try client.configVersion() == 3 }
        XCTAssertEqual(try client.getVariable("delay", ["pax": 1]).int64(0), 33)
        waitFor { poller.etag == "\"v3\"" }
        let before = try poller.poll()
        XCTAssertNil(before, "304 Not Modified")
        poller.stop()
        XCTAssertGreaterThanOrEqual(try server.count("posts"), 1)
        XCTAssertGreaterThanOrEqual(try server.count("notModified"), 1)
    }
    #endif
}

#if os(macOS) || os(Linux)
/// python3 serving a config (ETag "v3") and accepting POSTs on 127.0.0.1; its
/// counters are read from GET /stats.
final class LocalServer {
    let process: Process
    let url: String

    private init(process: Process, url: String) {
        self.process = process
        self.url = url
    }

    static let script = """
    import http.server, json, sys
    config = json.dumps({"schema": 1, "version": 3, "rollouts": [{"variable": "delay", "rollouts": [], "default": 33}]}).encode()
    stats = {"posts": 0, "notModified": 0}
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            if self.path == "/stats":
                body = json.dumps(stats).encode()
            elif self.headers.get("If-None-Match") == '"v3"':
                stats["notModified"] += 1
                self.send_response(304); self.end_headers(); return
            else:
                body = config
            self.send_response(200); self.send_header("ETag", '"v3"'); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0"))); stats["posts"] += 1
            self.send_response(204); self.end_headers()
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """

    static func start() throws -> LocalServer? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch { return nil }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            line.append(chunk)
        }
        let port = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard Int(port) != nil else { return nil }
        return LocalServer(process: p, url: "http://127.0.0.1:\(port)")
    }

    func count(_ name: String) throws -> Int64 {
        let data = try Data(contentsOf: URL(string: "\(url)/stats")!)
        if case .int(let n)? = try JSONValue.parse(data)[name] { return n }
        return -1
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
#endif
