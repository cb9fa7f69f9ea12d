import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(os)
import os
#endif
import TurnoutFFI

/// One notice of a poller's sync (docs/sync.md section 7), as logged and passed to `onNotice`.
public struct SyncNotice: CustomStringConvertible, Sendable {
    /// The level it is logged at.
    public enum Level: String, Sendable { case debug, info, warning, error }

    /// Every field, as the core gives it: `notice`, `channel`, `kind`, `status`, `message`,
    /// `repeat`, `problems`, `limit`, `report`, `etag`, `failures`, `sinceMs`, `seq`, `events`.
    public let fields: [String: JSONValue]

    private func string(_ key: String) -> String? {
        if case .string(let s)? = fields[key] { return s }
        return nil
    }

    /// `ready`, `applied`, `error`, `recovered`, `stale`, `fresh` or `dropped`.
    public var type: String { string("notice") ?? "" }
    /// `config` or `events` (`error`, `recovered`).
    public var channel: String? { string("channel") }
    /// The error kind (`NETWORK`, `HTTP`, `TIMEOUT`, `TOO_LARGE`, `INCOMPLETE`, `ABORTED`, `INVALID_CONFIG`, ...).
    public var kind: String? { string("kind") }
    /// The HTTP status (`error`, `dropped`).
    public var status: Int? { fields["status"]?.int64Value.map { Int($0) } }
    /// The error's description.
    public var message: String { string("message") ?? "" }
    /// The same fault as the channel's previous error: passed to the callbacks, not logged again.
    public var isRepeat: Bool { fields["repeat"] == .bool(true) }
    /// A rejected config's problems (`error` of kind `INVALID_CONFIG`; empty otherwise).
    public var problems: [Problem] {
        guard case .array(let a)? = fields["problems"] else { return [] }
        return a.map(Problem.init(json:))
    }
    /// The name of the limit exceeded (`error` of kind `LIMIT_EXCEEDED`).
    public var limitName: String? {
        if case .string(let s)? = fields["limit"]?["limit"] { return s }
        return nil
    }
    /// The report of an `applied` config.
    public var report: UpdateReport? { fields["report"].map { UpdateReport(json: $0) } }

    /// docs/sync.md section 7.
    public var level: Level {
        switch type {
        case "error", "stale": return .warning
        case "dropped": return .error
        case "applied": return report?.hasChanges == true ? .info : .debug
        default: return .info
        }
    }

    /// The log line.
    public var description: String {
        let f = { (k: String) in fields[k].map { "\($0)" } ?? "null" }
        switch type {
        case "error": return "turnout: \(channel ?? "?"): \(message) (\(kind ?? "?"))"
        case "applied":
            let r = report
            return "turnout: config \(r?.version.map { String($0) } ?? "null") applied (ETag \(f("etag"))): "
                + "+\(r?.added ?? []) -\(r?.removed ?? []) ~\(r?.changed ?? [])"
        case "recovered": return "turnout: \(channel ?? "?") recovered after \(f("failures")) failures"
        case "stale": return "turnout: config stale: not confirmed since \(f("sinceMs")) ms"
        case "dropped": return "turnout: batch \(f("seq")) (\(f("events")) events) refused for good: HTTP \(f("status"))"
        default: return "turnout: config \(type)"
        }
    }
}

/// Keeps a client's config fresh and uploads its events: a thin driver of the
/// core's sync state machine (docs/sync.md), which owns every rule (intervals,
/// backoff with jitter, `Retry-After`, ETags and rejected configs, ack/nack,
/// staleness, readiness). The poller performs what the machine asks on one
/// background thread that sleeps between actions (`poll()`, `flush()` and
/// `stop()` wake it); each request runs on a worker thread and is abandoned at
/// its deadline (`Options.timeout`: connect, headers and body) or at `stop()`.
/// Every notice is logged (`os.Logger`, subsystem `dev.turnout`, where it
/// exists; a repeated fault once) and passed to the callbacks.
public final class Poller: @unchecked Sendable {
    /// Timing and request options, mapped onto the machine's (docs/sync.md section 2).
    public struct Options: Sendable {
        public var interval: TimeInterval
        public var flushInterval: TimeInterval?
        public var maxBackoff: TimeInterval
        /// The one deadline of each request: connect, headers and the whole body together.
        public var timeout: TimeInterval
        public var headers: [String: String]
        public var maxEvents: UInt32
        /// Random spread of every delay, a fraction in [0, 1).
        public var jitter: Double
        /// The largest config body read: the smaller of this and the client's `maxConfigBytes`.
        public var maxConfigBytes: Int
        /// Polls without a confirmed config before the client is stale.
        public var staleAfterPolls: UInt64
        /// The seed of the jitter's generator; nil: a random one.
        public var seed: UInt64?
        /// Replaces the default logging (`os.Logger`; standard error where there is none).
        public var log: (@Sendable (SyncNotice) -> Void)?

        public init(interval: TimeInterval = 30, flushInterval: TimeInterval? = nil, maxBackoff: TimeInterval = 300,
                    timeout: TimeInterval = 10, headers: [String: String] = [:], maxEvents: UInt32 = 1000,
                    jitter: Double = 0.1, maxConfigBytes: Int = defaultMaxConfigBytes, staleAfterPolls: UInt64 = 5,
                    seed: UInt64? = nil, log: (@Sendable (SyncNotice) -> Void)? = nil) {
            self.interval = interval
            self.flushInterval = flushInterval
            self.maxBackoff = maxBackoff
            self.timeout = timeout
            self.headers = headers
            self.maxEvents = maxEvents
            self.jitter = jitter
            self.maxConfigBytes = maxConfigBytes
            self.staleAfterPolls = staleAfterPolls
            self.seed = seed
            self.log = log
        }

        /// The JSON of `turnout_core::sync::SyncOptions`.
        func json(configURL: URL?, eventsURL: URL?) throws -> String {
            // Out of range (negative, NaN) stays out of range: the machine refuses it.
            let ms = { (t: TimeInterval) in NSNumber(value: t.isFinite ? Int64(max(-1, min(t * 1000, 9e15)).rounded()) : -1) }
            var o: [String: Any] = [
                "pollIntervalMs": ms(interval), "maxBackoffMs": ms(maxBackoff), "timeoutMs": ms(timeout),
                "jitter": jitter.isFinite ? jitter : -1, "maxBatchEvents": NSNumber(value: maxEvents),
                "staleAfterPolls": NSNumber(value: staleAfterPolls),
                "seed": NSNumber(value: seed ?? UInt64.random(in: 0..<(1 << 62))),
            ]
            if let u = configURL { o["configUrl"] = u.absoluteString }
            if let u = eventsURL { o["eventsUrl"] = u.absoluteString }
            if let f = flushInterval { o["flushIntervalMs"] = ms(f) }
            return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        }
    }

    public let client: Client
    public let configURL: URL?
    public let eventsURL: URL?
    public let options: Options
    private let transport: HTTPTransport
    private let onChange: ((UpdateReport) -> Void)?
    private let onError: ((Error) -> Void)?
    private let onNotice: ((SyncNotice) -> Void)?
    private let machine: TurnoutFFI.SyncMachine
    private let epoch = DispatchTime.now().uptimeNanoseconds
    private let wakeup = DispatchSemaphore(value: 0)
    /// Guards the fields below; broadcast when the client turns ready.
    private let lock = NSCondition()
    private var running = false
    private var begun = false
    private var stopping = false
    private var isReady = false
    private var finished: DispatchSemaphore?
    private var thread: Thread?
    /// The config request in flight (`stop()` abandons it).
    private var fetching: Pending?

    /// What one run of the loop gave, for `poll()` and `flush()`.
    private struct Round {
        var applied: UpdateReport?
        var delivered = 0
        var errors: [String: Error] = [:]
    }

    /// Throws `TurnoutError.options` when the machine refuses the options.
    public init(client: Client, configURL: URL?, eventsURL: URL? = nil, options: Options = Options(),
                transport: HTTPTransport = URLSessionTransport(), onChange: ((UpdateReport) -> Void)? = nil,
                onError: ((Error) -> Void)? = nil, onNotice: ((SyncNotice) -> Void)? = nil) throws {
        self.client = client
        self.configURL = configURL
        self.eventsURL = eventsURL
        self.options = options
        self.transport = transport
        self.onChange = onChange
        self.onError = onError
        self.onNotice = onNotice
        let json = try options.json(configURL: configURL, eventsURL: eventsURL)
        let native = try client.live()
        machine = try mapErrors { try TurnoutFFI.SyncMachine(client: native, optionsJson: json) }
        var round = Round()
        drain(&round) // a bootstrapped client is ready at once
    }

    /// The sync's state (docs/sync.md section 9): `ready`, `stale`, `etag`, `rejectedEtag`, ...
    public var state: JSONValue { (try? JSONValue.parse(machine.stateJson())) ?? .null }

    /// The ETag of the config in force (of a complete body the engine accepted).
    public var etag: String? {
        if case .string(let s)? = state["etag"] { return s }
        return nil
    }

    /// Consecutive failed attempts (config and events together).
    public var failures: Int {
        let s = state
        return Int((s["configFailures"]?.int64Value ?? 0) + (s["uploadFailures"]?.int64Value ?? 0))
    }

    /// Whether the background thread runs.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Waits until a config is in force (the bootstrap, or the first config installed); false
    /// when `timeout` seconds pass first.
    public func ready(timeout: TimeInterval) async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().async { c.resume(returning: self.waitReady(timeout: timeout)) }
        }
    }

    /// `ready(timeout:)`, blocking the calling thread.
    public func waitReady(timeout: TimeInterval) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while !isReady && lock.wait(until: end) {}
        return isReady
    }

    /// Fetches the config now. Started: wakes the thread and returns nil. Not started: fetches
    /// on this thread and returns the report of a config installed (nil: 304 or the same
    /// bytes), or throws the round's config error (`TurnoutError.http`, `.config`, `.limit`).
    @discardableResult
    public func poll() throws -> UpdateReport? {
        guard configURL != nil else { throw TurnoutError.state("this poller has no config URL") }
        let round = now(warmUp: false) { self.machine.pollNow() }
        if let e = round.errors["config"] { throw e }
        return round.applied
    }

    /// Uploads what is queued, batch after batch until one fails. Started: wakes the thread and
    /// returns 0. Not started: uploads on this thread and returns the batches delivered, or
    /// throws the round's upload error.
    @discardableResult
    public func flush() throws -> Int {
        guard eventsURL != nil else { throw TurnoutError.state("this poller has no events URL") }
        let round = now(warmUp: true) { self.machine.flushNow() }
        if let e = round.errors["events"] { throw e }
        return round.delivered
    }

    /// Starts the background thread (the first fetch runs at once).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        if running || stopping { return }
        running = true
        let done = DispatchSemaphore(value: 0)
        finished = done
        let thread = Thread { [self] in
            var round = Round()
            self.run(background: true, &round)
            self.lock.lock()
            self.running = false
            self.lock.unlock()
            done.signal()
        }
        thread.name = "turnout-poller"
        self.thread = thread
        thread.start()
    }

    /// Stops; with `flush`, uploads what is queued first (one attempt per batch). A config
    /// request in flight is abandoned at once (reported `ABORTED`: after a stop, no fault); an
    /// upload ends by its deadline. Waits up to `timeout` seconds for the thread.
    public func stop(flush: Bool = true, timeout: TimeInterval = 10) {
        lock.lock()
        stopping = true
        let current = fetching
        let done = finished
        finished = nil
        let own = thread
        lock.unlock()
        machine.stop(flush: flush)
        current?.finish(.failure(TransportError(.aborted, "\(configURL?.absoluteString ?? "?"): aborted: the poller is stopping")))
        wakeup.signal()
        if let d = done {
            if Thread.current != own { _ = d.wait(timeout: .now() + timeout) }
        } else {
            var round = Round()
            run(background: false, &round)
        }
    }

    private func nowMs() -> UInt64 { (DispatchTime.now().uptimeNanoseconds - epoch) / 1_000_000 }

    /// `ask`, then wake the thread, or run on this thread until the machine waits.
    private func now(warmUp: Bool, _ ask: () -> Void) -> Round {
        var round = Round()
        lock.lock()
        let background = running
        let fresh = !begun
        lock.unlock()
        if background {
            ask()
            wakeup.signal()
            return round
        }
        // The machine's first step schedules the first upload round an interval later (docs/sync.md section 3).
        if warmUp && fresh { run(background: false, &round) }
        ask()
        run(background: false, &round)
        return round
    }

    /// The loop: next action, perform it, drain the notices; on this thread until the machine waits.
    private func run(background: Bool, _ round: inout Round) {
        loop: while true {
            if client.closed { machine.stop(flush: false) }
            lock.lock()
            begun = true
            lock.unlock()
            let a = machine.next(nowMs: nowMs())
            switch a.kind {
            case .fetch, .upload: perform(a, &round)
            case .wait:
                if !background { break loop }
                _ = wakeup.wait(timeout: .now() + .milliseconds(Int(min(a.waitMs, 86_400_000))))
                while wakeup.wait(timeout: .now()) == .success {}
            case .stop: break loop
            }
            drain(&round)
        }
        drain(&round)
    }

    /// One request, reported to the machine: a response, or a failure with its kind.
    private func perform(_ a: SyncAction, _ round: inout Round) {
        let fetch = a.kind == .fetch
        let cap = Int(min(a.maxBytes, UInt64(max(options.maxConfigBytes, 0))))
        var response: HTTPResponse?
        var failure: TransportError?
        do {
            let r = try bounded(try request(a), fetch: fetch, cap: cap)
            if fetch && (200..<300).contains(r.status) && r.body.count > cap {
                throw TransportError(.tooLarge, "GET \(a.url ?? ""): the body is larger than \(cap) bytes")
            }
            response = r
        } catch let e as TransportError {
            failure = e
        } catch {
            failure = TransportError(.network, "\(a.url ?? ""): \(error)")
        }
        let status = UInt16(clamping: response?.status ?? 0)
        let retryAfter = response?.headers["retry-after"]
        if fetch {
            machine.onFetch(nowMs: nowMs(), status: status, etag: response?.headers["etag"], retryAfter: retryAfter,
                            body: response?.body ?? Data(), failure: failure?.kind.rawValue, message: failure?.message ?? "")
        } else {
            if let r = response, (200..<300).contains(r.status) { round.delivered += 1 }
            machine.onUpload(nowMs: nowMs(), seq: a.seq, status: status, retryAfter: retryAfter,
                             failure: failure?.kind.rawValue, message: failure?.message ?? "")
        }
    }

    /// The request of a fetch or an upload.
    private func request(_ a: SyncAction) throws -> URLRequest {
        guard let url = a.url.flatMap({ URL(string: $0) }) else { throw TransportError(.network, "not a URL: \(a.url ?? "")") }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                                 timeoutInterval: Double(a.timeoutMs) / 1000)
        for (k, v) in options.headers { request.setValue(v, forHTTPHeaderField: k) }
        if a.kind == .fetch {
            request.setValue("application/json", forHTTPHeaderField: "Accept")
            if let tag = a.etag { request.setValue(tag, forHTTPHeaderField: "If-None-Match") }
        } else {
            request.httpMethod = "POST"
            request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
            request.httpBody = a.bytes
        }
        return request
    }

    /// The transport on a worker thread, waited for until the deadline or, for a fetch, `stop()`.
    private func bounded(_ request: URLRequest, fetch: Bool, cap: Int) throws -> HTTPResponse {
        let pending = Pending()
        if fetch {
            lock.lock()
            fetching = pending
            let stopped = stopping
            lock.unlock()
            if stopped { throw TransportError(.aborted, "GET \(request.url?.absoluteString ?? "?"): aborted: the poller is stopping") }
        }
        defer {
            if fetch {
                lock.lock()
                if fetching === pending { fetching = nil }
                lock.unlock()
            }
        }
        let transport = self.transport
        Thread.detachNewThread {
            pending.finish(Result { try fetch ? transport.send(request, maxBodyBytes: cap) : transport.send(request) })
        }
        guard let outcome = pending.wait(until: Date().addingTimeInterval(request.timeoutInterval)) else {
            let what = "\(request.httpMethod ?? "GET") \(request.url?.absoluteString ?? "?")"
            throw TransportError(.timeout, timedOutMessage(what, request.timeoutInterval))
        }
        return try outcome.get()
    }

    /// Logs each notice (not a repeat) and passes it to the callbacks.
    private func drain(_ round: inout Round) {
        guard case .array(let notices)? = try? JSONValue.parse(machine.takeNoticesJson()) else { return }
        for value in notices {
            guard case .object(let fields) = value else { continue }
            let n = SyncNotice(fields: fields)
            if !n.isRepeat { emit(n) }
            switch n.type {
            case "ready":
                lock.lock()
                isReady = true
                lock.broadcast()
                lock.unlock()
            case "applied":
                round.applied = n.report
                if let r = n.report, r.hasChanges { onChange?(r) }
            case "error":
                let e: Error
                switch n.kind {
                case "INVALID_CONFIG": e = TurnoutError.config(n.message, problems: n.problems)
                case "LIMIT_EXCEEDED": e = TurnoutError.limit(n.message, name: n.limitName)
                default: e = TurnoutError.http(status: n.status, message: n.message)
                }
                if round.errors[n.channel ?? "config"] == nil { round.errors[n.channel ?? "config"] = e }
                onError?(e)
            default: break
            }
            onNotice?(n)
        }
    }

    #if canImport(os)
    private static let logger = Logger(subsystem: "dev.turnout", category: "sync")
    #endif

    /// Logs a notice: `Options.log`, else `os.Logger` (standard error where there is none).
    private func emit(_ n: SyncNotice) {
        if let custom = options.log { return custom(n) }
        #if canImport(os)
        let logger = Poller.logger
        let line = n.description
        switch n.level {
        case .debug: logger.debug("\(line, privacy: .public)")
        case .info: logger.info("\(line, privacy: .public)")
        case .warning: logger.warning("\(line, privacy: .public)")
        case .error: logger.error("\(line, privacy: .public)")
        }
        #else
        FileHandle.standardError.write(Data("[\(n.level.rawValue)] \(n.description)\n".utf8))
        #endif
    }
}

/// A request the poller waits for: the first of the transport's answer, the deadline and `stop()` decides.
private final class Pending: @unchecked Sendable {
    private let cond = NSCondition()
    private var outcome: Result<HTTPResponse, Error>?

    func finish(_ result: Result<HTTPResponse, Error>) {
        cond.lock()
        if outcome == nil {
            outcome = result
            cond.broadcast()
        }
        cond.unlock()
    }

    /// The outcome, or nil when `deadline` passed first.
    func wait(until deadline: Date) -> Result<HTTPResponse, Error>? {
        cond.lock()
        defer { cond.unlock() }
        while outcome == nil && Date() < deadline { _ = cond.wait(until: deadline) }
        return outcome
    }
}

/// The generated machine and its actions, for the tests' conformance runner (`@testable import Turnout`).
typealias NativeSyncMachine = TurnoutFFI.SyncMachine
typealias NativeSyncAction = TurnoutFFI.SyncAction

extension Client {
    /// A `Poller` for this client (not started). Throws `TurnoutError.options` for options the machine refuses.
    public func poller(configURL: URL?, eventsURL: URL? = nil, options: Poller.Options = Poller.Options(),
                       onChange: ((UpdateReport) -> Void)? = nil, onError: ((Error) -> Void)? = nil,
                       onNotice: ((SyncNotice) -> Void)? = nil) throws -> Poller {
        try Poller(client: self, configURL: configURL, eventsURL: eventsURL, options: options, onChange: onChange,
                   onError: onError, onNotice: onNotice)
    }
}
