import Foundation
import XCTest
@testable import Turnout

/// The poller: a config change picked up, 304 honoured, a bad config never
/// installed, the server down then up, events delivered exactly once per ack;
/// one deadline per request, the body limit, the ETag kept only for a complete
/// body the engine accepted. Scripted transport (FakeServer) for the logic,
/// plus URLSession against a local HTTP server on 127.0.0.1 where python3 is
/// available (slow, truncated and over-limit bodies).
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
        waitFor { lock.lock(); defer { lock.unlock() }; return errors.count >= 3 }
        poller.stop()
        lock.lock()
        // The rejected config's ETag is never kept: each poll asks with the good one's.
        for e in errors {
            if case .config? = e as? TurnoutError {} else { XCTFail("not a config error: \(e)") }
        }
        lock.unlock()
        XCTAssertFalse(server.ifNoneMatch.contains("\"broken\""))
        XCTAssertEqual(poller.etag, "\"good\"")
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

    // MARK: one deadline, the body limit, the ETag rule (issue 13)

    func testARejectedConfigThenAValidOneWithTheSameETag() throws {
        let server = FakeServer()
        server.serve("{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}", etag: "\"E\"")
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: fast,
                            transport: server)
        XCTAssertThrowsError(try poller.poll()) { e in
            if case .config? = e as? TurnoutError {} else { XCTFail("not a config error: \(e)") }
        }
        XCTAssertNil(poller.etag)
        server.serve(bundle(version: 2, value: 45), etag: "\"E\"")
        XCTAssertNotNil(try poller.poll())
        XCTAssertEqual(try client.configVersion(), 2)
        XCTAssertEqual(poller.etag, "\"E\"")
        XCTAssertEqual(server.ifNoneMatch, [nil, nil])
    }

    func testABodyOverTheLimitKeepsNoETag() throws {
        let server = FakeServer()
        let big = bundle(version: 2, value: 45)
        server.serve(big, etag: "\"E\"")
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = fast
        options.maxConfigBytes = big.utf8.count - 1
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
                            transport: server)
        for _ in 0..<2 {
            XCTAssertThrowsError(try poller.poll()) { e in
                guard case .http(_, let m)? = e as? TurnoutError else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("larger than \(big.utf8.count - 1) bytes"), m)
            }
        }
        XCTAssertNil(poller.etag)
        XCTAssertEqual(server.ifNoneMatch, [nil, nil])
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertEqual(Poller.Options().maxConfigBytes, 16 * 1024 * 1024)
    }

    /// A transport that does not answer until released: the poller stops waiting
    /// at the deadline, and `stop()` does not wait at all.
    func testATransportThatHangsIsCutAtTheDeadlineAndStopIsPrompt() throws {
        let hanging = HangingTransport()
        defer { hanging.release() }
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = fast
        options.timeout = 1
        let poller = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
                            transport: hanging)
        let t0 = Date()
        XCTAssertThrowsError(try poller.poll()) { e in
            guard case .http(let status, let m)? = e as? TurnoutError else { return XCTFail("\(e)") }
            XCTAssertNil(status)
            XCTAssertTrue(m.contains("timed out"), m)
        }
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertTrue(elapsed >= 0.9 && elapsed < 2, "\(elapsed) s")
        XCTAssertNil(poller.etag)

        options.timeout = 10
        let lock = NSLock()
        var errors: [Error] = []
        let stopping = Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
                              transport: hanging, onError: { e in lock.lock(); errors.append(e); lock.unlock() })
        stopping.start()
        waitFor { hanging.calls >= 2 }
        Thread.sleep(forTimeInterval: 0.3)
        let t1 = Date()
        stopping.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t1), 0.5)
        XCTAssertFalse(stopping.isRunning)
        lock.lock()
        XCTAssertTrue(errors.isEmpty, "stopping is not a failure: \(errors)")
        lock.unlock()
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

    /// A body sent one byte every 0.5 s: URLSession's own timeout never fires
    /// (the connection is never idle that long); the poller's deadline does.
    func testURLSessionSlowBodyFailsAtTheDeadline() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = fast
        options.timeout = 1
        let poller = client.poller(configURL: URL(string: "\(server.url)/slow")!, options: options)
        let t0 = Date()
        XCTAssertThrowsError(try poller.poll()) { e in
            guard case .http(let status, let m)? = e as? TurnoutError else { return XCTFail("\(e)") }
            XCTAssertNil(status)
            XCTAssertTrue(m.contains("timed out"), m)
        }
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertTrue(elapsed >= 0.9 && elapsed < 2, "\(elapsed) s")
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertNil(poller.etag)

        // stop() during the slow body returns at once.
        options.timeout = 10
        let running = client.poller(configURL: URL(string: "\(server.url)/slow")!, options: options)
        let before = try server.count("slow")
        running.start()
        try waitFor { try server.count("slow") > before }
        Thread.sleep(forTimeInterval: 0.3)
        let t1 = Date()
        running.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t1), 0.5)
        XCTAssertEqual(try client.configVersion(), 1)
    }

    /// Cut short (Content-Length not met, then close-delimited), each with
    /// ETag "E"; then the full body with "E": installed, no If-None-Match "E"
    /// was ever sent before.
    func testURLSessionTruncatedBodiesKeepNoETag() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client()
        for path in ["truncated", "halfclose"] {
            let poller = client.poller(configURL: URL(string: "\(server.url)/\(path)")!, options: fast)
            XCTAssertThrowsError(try poller.poll(), path)  // http (incomplete) or config (the half is not JSON)
            XCTAssertNil(poller.etag, path)
            XCTAssertNotNil(try poller.poll(), path)
            XCTAssertEqual(poller.etag, "\"E\"", path)
            XCTAssertEqual(try server.ifNoneMatch(path), ["", ""], path)
        }
        XCTAssertEqual(try client.configVersion(), 4)
    }

    func testURLSessionBodyOverTheLimit() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client()
        var options = fast
        options.maxConfigBytes = 64
        for path in ["big", "bigclose"] {  // declared, then close-delimited
            let poller = client.poller(configURL: URL(string: "\(server.url)/\(path)")!, options: options)
            XCTAssertThrowsError(try poller.poll(), path) { e in
                guard case .http(_, let m)? = e as? TurnoutError else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("larger than 64 bytes"), m)
            }
            XCTAssertNil(poller.etag, path)
        }
        XCTAssertTrue(try client.getVariable("delay").isFallback)
    }
    #endif
}

/// A transport that blocks every call until `release()` (then fails it).
final class HangingTransport: HTTPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private let gate = DispatchSemaphore(value: 0)
    private var _calls = 0
    var calls: Int { lock.lock(); defer { lock.unlock() }; return _calls }

    func send(_ request: URLRequest) throws -> HTTPResponse {
        lock.lock()
        _calls += 1
        lock.unlock()
        gate.wait()
        gate.signal()
        throw TurnoutError.http(status: nil, message: "released")
    }

    func release() { gate.signal() }
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
    import http.server, json, sys, time
    def bundle(v, d):
        return json.dumps({"schema": 1, "version": v, "rollouts": [{"variable": "delay", "rollouts": [], "default": d}]}).encode()
    config = bundle(3, 33)
    stats = {"posts": 0, "notModified": 0, "slow": 0, "inm": {}}
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def head(self, etag, length):
            self.send_response(200); self.send_header("ETag", etag)
            if length is not None: self.send_header("Content-Length", str(length))
            self.end_headers()
        def scripted(self, name):
            # First GET: a broken answer with ETag "E"; then the full body with "E" (304 on a match).
            seen = stats["inm"].setdefault(name, [])
            seen.append(self.headers.get("If-None-Match") or "")
            full = bundle(4, 44)
            if name == "slow":
                stats["slow"] += 1; self.head('"E"', len(full))
                try:
                    for i in range(len(full)):
                        time.sleep(0.5); self.wfile.write(full[i:i + 1]); self.wfile.flush()
                except OSError: pass
            elif name in ("big", "bigclose"):
                self.head('"E"', len(full) if name == "big" else None); self.wfile.write(full)
            elif len(seen) == 1:
                self.head('"E"', len(full) if name == "truncated" else None); self.wfile.write(full[:len(full) // 2])
            elif self.headers.get("If-None-Match") == '"E"':
                self.send_response(304); self.end_headers()
            else:
                self.head('"E"', len(full)); self.wfile.write(full)
        def do_GET(self):
            name = self.path.strip("/")
            if name in ("slow", "truncated", "halfclose", "big", "bigclose"):
                return self.scripted(name)
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

    /// The If-None-Match of every GET of `/<path>` ("" when absent).
    func ifNoneMatch(_ path: String) throws -> [String] {
        let data = try Data(contentsOf: URL(string: "\(url)/stats")!)
        guard case .array(let items)? = try JSONValue.parse(data)["inm"]?[path] else { return [] }
        return items.map { if case .string(let s) = $0 { return s }; return "?" }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}
#endif
