import Foundation
import XCTest
@testable import Turnout

/// The poller, a driver of the core's sync state machine (docs/sync.md): a config change
/// picked up, 304 honoured, a bad config never installed (its ETag sent until the server
/// changes), the server down then up, events delivered exactly once per ack; one deadline per
/// request, the body limit. Scripted transport (FakeServer) for the driver, plus URLSession
/// against a local HTTP server on 127.0.0.1 where python3 is available: slow, truncated and
/// over-limit bodies, and the fault injection with the log captured.
final class PollerTests: XCTestCase {
    private let fast = Poller.Options(interval: 0.02, maxBackoff: 0.1, timeout: 2, jitter: 0)
    /// For calls of `poll()` / `flush()` on the test's thread: one request each (nothing else is due).
    private let slow = Poller.Options(interval: 60, maxBackoff: 60, timeout: 2, jitter: 0)

    func testConfigChangeAnd304() throws {
        let server = FakeServer()
        server.serve(bundle(version: 1, value: 30), etag: "\"v1\"")
        let client = try Client()
        let lock = NSLock()
        var changes: [UpdateReport] = []
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/turnout.json")!,
                                options: fast, transport: server,
                                onChange: { r in lock.lock(); changes.append(r); lock.unlock() })
        poller.start()
        defer { poller.stop() }
        XCTAssertTrue(poller.waitReady(timeout: 5))
        XCTAssertEqual(try client.configVersion(), 1)
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

    func testReadiness() async throws {
        let server = FakeServer()
        server.serve(bundle(version: 1, value: 30), etag: "\"v1\"")
        let boot = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        let ready = try Poller(client: boot, configURL: URL(string: "http://config.test/")!, options: slow, transport: server)
        let bootReady = await ready.ready(timeout: 0)
        XCTAssertTrue(bootReady, "a bootstrapped client is ready at once")
        let empty = try Poller(client: try Client(), configURL: URL(string: "http://config.test/")!, options: slow,
                               transport: server)
        let notYet = await empty.ready(timeout: 0.1)
        XCTAssertFalse(notYet)
        empty.start()
        defer { empty.stop() }
        let later = await empty.ready(timeout: 5)
        XCTAssertTrue(later)
    }

    func testABadConfigNeverReplacesTheGoodOne() throws {
        let server = FakeServer()
        server.serve(bundle(version: 1, value: 30), etag: "\"good\"")
        let client = try Client()
        let lock = NSLock()
        var errors: [Error] = []
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: fast,
                                transport: server, onError: { e in lock.lock(); errors.append(e); lock.unlock() })
        poller.start()
        defer { poller.stop() }
        try waitFor { try client.configVersion() == 1 }
        // JSON but not a valid config (a body that is not JSON keeps no ETag: it may be cut short).
        server.serve("{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}", etag: "\"broken\"")
        // The rejected config's ETag is sent: the server answers 304, nothing is compiled again.
        waitFor { server.ifNoneMatch.filter { $0 == "\"broken\"" }.count >= 3 }
        lock.lock()
        XCTAssertEqual(errors.count, 1, "one rejection, then 304s: \(errors)")
        if case .config? = errors.first as? TurnoutError {} else { XCTFail("not a config error: \(errors)") }
        lock.unlock()
        XCTAssertEqual(poller.etag, "\"good\"")
        XCTAssertEqual(poller.state["rejectedEtag"], .string("\"broken\""))
        XCTAssertEqual(poller.failures, 0, "a rejected config is not a transport failure")
        XCTAssertEqual(try client.configVersion(), 1)
        XCTAssertEqual(try client.getVariable("delay").int64(0), 30)
    }

    func testServerDownThenUp() throws {
        let server = FakeServer()
        server.setDown(true)
        let client = try Client()
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: fast,
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

    func testInvalidOptionsAreTheMachinesToRefuse() throws {
        let client = try Client()
        for options in [Poller.Options(jitter: 1), Poller.Options(interval: 0)] {
            XCTAssertThrowsError(try Poller(client: client, configURL: URL(string: "http://config.test/")!,
                                            options: options)) { e in
                guard case .options? = e as? TurnoutError else { return XCTFail("\(e)") }
            }
        }
    }

    func testEventsAreDeliveredExactlyOncePerAck() throws {
        let server = FakeServer()
        server.failPosts(2)
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8),
                                options: ClientOptions(service: "booking"))
        var options = fast
        options.flushInterval = 0.02
        options.maxEvents = 5
        let poller = try Poller(client: client, configURL: nil, eventsURL: URL(string: "http://collector.test/events")!,
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
            return s.queued == 0 && s.inFlight == 0 && s.retrying == 0 && server.failed.count == 2
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
                let count = e["count"]?.int64Value ?? 1
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

    // MARK: one deadline, the body limit, the ETag rules

    /// A rejected config's ETag is sent until the server changes it: the same ETag with other
    /// bytes is a server bug the client cannot see (docs/sync.md section 4).
    func testARejectedConfigsETagIsSentUntilTheServerChangesIt() throws {
        let server = FakeServer()
        server.serve("{\"schema\": 1, \"rollouts\": [{\"variable\": 5}]}", etag: "\"E\"")
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: slow,
                                transport: server)
        XCTAssertThrowsError(try poller.poll()) { e in
            if case .config? = e as? TurnoutError {} else { XCTFail("not a config error: \(e)") }
        }
        XCTAssertNil(poller.etag)
        server.serve(bundle(version: 2, value: 45), etag: "\"E\"")
        XCTAssertNil(try poller.poll(), "304 to the rejected ETag")
        XCTAssertEqual(try client.configVersion(), 1)
        server.serve(bundle(version: 2, value: 45), etag: "\"E2\"")
        XCTAssertNotNil(try poller.poll())
        XCTAssertEqual(try client.configVersion(), 2)
        XCTAssertEqual(poller.etag, "\"E2\"")
        XCTAssertEqual(server.ifNoneMatch, [nil, "\"E\"", "\"E\""])
    }

    func testABodyOverTheLimitKeepsNoETag() throws {
        let server = FakeServer()
        let big = bundle(version: 2, value: 45)
        server.serve(big, etag: "\"E\"")
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = slow
        options.maxConfigBytes = big.utf8.count - 1
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
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

    /// A transport that does not answer until released: the poller stops waiting at the
    /// deadline, and `stop()` does not wait at all.
    func testATransportThatHangsIsCutAtTheDeadlineAndStopIsPrompt() throws {
        let hanging = HangingTransport()
        defer { hanging.release() }
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = slow
        options.timeout = 1
        let poller = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
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
        let stopping = try Poller(client: client, configURL: URL(string: "http://config.test/")!, options: options,
                                  transport: hanging, onError: { e in lock.lock(); errors.append(e); lock.unlock() })
        stopping.start()
        waitFor { hanging.calls >= 2 }
        Thread.sleep(forTimeInterval: 0.3)
        let t1 = Date()
        stopping.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t1), 0.5)
        XCTAssertFalse(stopping.isRunning)
        lock.lock()
        XCTAssertTrue(errors.isEmpty, "stopping is not a failure (an ABORTED fetch after stop() is no fault): \(errors)")
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
        let poller = try client.poller(configURL: URL(string: "\(server.url)/config")!,
                                       eventsURL: URL(string: "\(server.url)/events")!, options: fast)
        poller.start()
        try waitFor { try client.configVersion() == 3 }
        XCTAssertEqual(try client.getVariable("delay", ["pax": 1]).int64(0), 33)
        waitFor { poller.etag == "\"v3\"" }
        XCTAssertNil(try poller.poll(), "started: poll() wakes the thread")
        waitFor { (try? server.count("notModified")) ?? 0 >= 1 }
        poller.stop()
        XCTAssertGreaterThanOrEqual(try server.count("posts"), 1)
    }

    /// A body sent one byte every 0.5 s: URLSession's own timeout never fires
    /// (the connection is never idle that long); the poller's deadline does.
    func testURLSessionSlowBodyFailsAtTheDeadline() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client(config: Data(bundle(version: 1, value: 30).utf8))
        var options = slow
        options.timeout = 1
        let poller = try client.poller(configURL: URL(string: "\(server.url)/slow")!, options: options)
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
        let running = try client.poller(configURL: URL(string: "\(server.url)/slow")!, options: options)
        let before = try server.count("slow")
        running.start()
        try waitFor { try server.count("slow") > before }
        Thread.sleep(forTimeInterval: 0.3)
        let t1 = Date()
        running.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t1), 0.5)
        XCTAssertEqual(try client.configVersion(), 1)
    }

    /// Cut short (Content-Length not met, then close-delimited), each with ETag "E"; then the
    /// full body with "E": installed, no If-None-Match "E" was ever sent before (a body cut short
    /// is INCOMPLETE, or not JSON: neither keeps an ETag).
    func testURLSessionTruncatedBodiesKeepNoETag() throws {
        guard let server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let client = try Client()
        for path in ["truncated", "halfclose"] {
            let poller = try client.poller(configURL: URL(string: "\(server.url)/\(path)")!, options: slow)
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
        var options = slow
        options.maxConfigBytes = 64
        for path in ["big", "bigclose"] {  // declared, then close-delimited
            let poller = try client.poller(configURL: URL(string: "\(server.url)/\(path)")!, options: options)
            XCTAssertThrowsError(try poller.poll(), path) { e in
                guard case .http(_, let m)? = e as? TurnoutError else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("larger than 64 bytes"), m)
            }
            XCTAssertNil(poller.etag, path)
        }
        XCTAssertTrue(try client.getVariable("delay").isFallback)
    }

    /// The fault injection: one poller in the background while events are tracked
    /// all along, against a local server that returns 500s, a truncated body, a body over the
    /// limit, a config that fails validation, a body slower than the deadline, 304s with a stale
    /// ETag, and that goes away and comes back. After each fault the client answers from its last
    /// good config, recovers when the server does, and the fault is logged once (the log is
    /// captured through `Options.log`); no event is lost.
    func testFaultInjection() throws {
        guard var server = try LocalServer.start() else {
            throw XCTSkip("python3 is not available to run a local HTTP server")
        }
        defer { server.stop() }
        let logged = Locked<[SyncNotice]>([])
        let client = try Client(options: ClientOptions(service: "svc", decisionEvents: .off))
        let options = Poller.Options(interval: 0.02, flushInterval: 0.03, maxBackoff: 0.06, timeout: 0.3, jitter: 0,
                                     maxConfigBytes: 4096, staleAfterPolls: 1000,
                                     log: { n in logged.update { $0.append(n) } })
        let poller = try client.poller(configURL: URL(string: "\(server.url)/fconfig")!,
                                       eventsURL: URL(string: "\(server.url)/fevents")!, options: options)
        poller.start()
        XCTAssertTrue(poller.waitReady(timeout: 5))
        let tracked = Locked<Int64>(0)
        let tracking = Locked(true)
        let trackingDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while tracking.value {
                let n = tracked.update { v -> Int64 in v += 1; return v }
                try? client.track("tick", value: 1, facets: Facets().passenger(n % 7))
                Thread.sleep(forTimeInterval: 0.003)
            }
            trackingDone.signal()
        }
        var posts: [Data] = []
        var version: Int64 = 1
        let faults: [(String, String?)] = [("500", "HTTP"), ("truncated", "INCOMPLETE"), ("large", "TOO_LARGE"),
                                           ("invalid", "INVALID_CONFIG"), ("slow", "TIMEOUT"), ("stale304", nil),
                                           ("down", "NETWORK")]
        for (fault, kind) in faults {
            let from = logged.value.count
            let gets = try server.count("fgets")
            if fault == "down" {
                posts += try server.posts()
                server.stop()
                waitFor { poller.state["configFailures"]?.int64Value ?? 0 >= 4 && poller.state["uploadFailures"]?.int64Value ?? 0 >= 2 }
            } else {
                try server.control("fault", fault)
                try waitFor { try server.count("fgets") - gets >= 4 }
            }
            XCTAssertEqual(try client.configVersion(), version, fault)
            XCTAssertEqual(try client.getVariable("delay", Facets().city(6)).int64(0), 59 + version, "\(fault): last good config")
            let errors = logged.value.dropFirst(from).filter { $0.type == "error" }
            if let k = kind {
                XCTAssertEqual(errors.filter { $0.channel == "config" && $0.kind == k }.count, 1, "\(fault): logged once: \(errors)")
            } else {
                XCTAssertTrue(errors.isEmpty, "\(fault): nothing to log: \(errors)")
                XCTAssertEqual(poller.etag, "\"v\(version)\"", "a 304 changes no ETag")
            }
            if fault == "500" || fault == "down" {
                XCTAssertEqual(errors.filter { $0.channel == "events" }.count, 1, "\(fault): upload fault logged once: \(errors)")
            }
            version += 1
            if fault == "down" {
                guard let back = try LocalServer.start(port: server.port) else { return XCTFail("the server did not come back") }
                server = back
            }
            try server.control("fault", "none")
            try server.control("version", String(version))
            try waitFor(5) { try client.configVersion() == version }
            XCTAssertEqual(try client.getVariable("delay", Facets().city(6)).int64(0), 59 + version)
        }
        tracking.update { $0 = false }
        trackingDone.wait()
        poller.stop()  // the final flush
        posts += try server.posts()
        let stats = try client.trackingStats()
        XCTAssertEqual([stats.queued, stats.inFlight, stats.retrying, stats.dropped], [0, 0, 0, 0])
        var seqs: [Int64] = []
        var counted: Int64 = 0
        for body in posts {
            let batch = try decodeBatch(body)
            if case .int(let seq)? = batch["header"]?["seq"] { seqs.append(seq) }
            guard case .array(let events)? = batch["events"] else { continue }
            counted += events.reduce(0) { $0 + ($1["count"]?.int64Value ?? 1) }
        }
        XCTAssertEqual(Set(seqs).count, seqs.count, "each batch delivered once (no response was lost): \(seqs)")
        XCTAssertEqual(counted, tracked.value, "every event tracked was delivered")
    }
    #endif
}

/// A value behind a lock.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    @discardableResult
    func update<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&v) }
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
/// counters are read from GET /stats. `/fconfig` and `/fevents` misbehave as
/// `GET /control/fault/<mode>` says (`500`, `truncated`, `large`, `invalid`,
/// `slow`, `stale304`, `none`) and serve version `GET /control/version/<n>`.
final class LocalServer {
    let process: Process
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static let script = """
    import base64, http.server, json, sys, time
    def bundle(v, d):
        return json.dumps({"schema": 1, "version": v, "rollouts": [{"variable": "delay", "rollouts": [], "default": d}]}).encode()
    def fbundle(v):
        rule = {"value": 59 + v, "constraints": [{"target": "city", "op": "=", "value": 6}]}
        return json.dumps({"schema": 1, "version": v, "rollouts": [{"variable": "delay", "rollouts": [rule], "default": 30}]}).encode()
    config = bundle(3, 33)
    stats = {"posts": 0, "notModified": 0, "slow": 0, "inm": {}, "fgets": 0}
    faults = {"fault": "none", "version": 1, "posts": []}
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def empty(self, status, etag=None):
            self.send_response(status)
            if etag: self.send_header("ETag", etag)
            self.send_header("Content-Length", "0"); self.end_headers()
        def fconfig(self):
            stats["fgets"] += 1
            inm, fault, v = self.headers.get("If-None-Match"), faults["fault"], faults["version"]
            body, etag = (b'{"schema": 1, "rollouts": [{"variable": 5}]}', '"bad"') if fault == "invalid" else (fbundle(v), '"v%d"' % v)
            if fault == "500": return self.empty(500)
            if fault == "stale304" and inm: return self.empty(304, '"stale"')
            if fault in ("none", "invalid") and inm == etag: return self.empty(304)
            if fault == "large": body = body + b" " * 8192
            self.head(etag, len(body))
            try:
                if fault == "truncated":
                    self.wfile.write(body[:len(body) // 2]); self.close_connection = True; return
                if fault == "slow":
                    self.wfile.flush(); time.sleep(1)
                self.wfile.write(body)
            except OSError: pass
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
            if name == "fconfig":
                return self.fconfig()
            if name.startswith("control/"):
                _, key, value = name.split("/")
                faults[key] = int(value) if key == "version" else value
                return self.empty(204)
            if self.path == "/stats":
                body = json.dumps(stats).encode()
            elif self.path == "/fposts":
                body = json.dumps(faults["posts"]).encode()
            elif self.headers.get("If-None-Match") == '"v3"':
                stats["notModified"] += 1
                self.send_response(304); self.end_headers(); return
            else:
                body = config
            self.send_response(200); self.send_header("ETag", '"v3"'); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length", "0"))); stats["posts"] += 1
            if self.path == "/fevents":
                if faults["fault"] == "500": return self.empty(500)
                faults["posts"].append(base64.b64encode(data).decode())
            self.send_response(204); self.end_headers()
    s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), H)
    print(s.server_address[1], flush=True)
    s.serve_forever()
    """

    /// Starts the server, on `port` when it is not 0 (to come back after `stop()`).
    static func start(port: Int = 0) throws -> LocalServer? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, String(port)]
        let out = Pipe()
        p.standardOutput = out
        do { try p.run() } catch { return nil }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bound = Int(text) else { return nil }
        return LocalServer(process: p, port: bound)
    }

    /// `GET /control/<key>/<value>`: the fault mode (`fault`) or the config version (`version`).
    func control(_ key: String, _ value: String) throws {
        _ = try Data(contentsOf: URL(string: "\(url)/control/\(key)/\(value)")!)
    }

    /// The bodies POSTed to `/fevents` that were accepted.
    func posts() throws -> [Data] {
        guard case .array(let items) = try JSONValue.parse(try Data(contentsOf: URL(string: "\(url)/fposts")!)) else {
            return []
        }
        return items.compactMap { if case .string(let s) = $0 { return Data(base64Encoded: s) }; return nil }
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
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
#endif
