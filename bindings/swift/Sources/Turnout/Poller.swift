import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An HTTP response as the poller needs it (header names lowercased).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: Data
    public var headers: [String: String]

    public init(status: Int, body: Data = Data(), headers: [String: String] = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }
}

/// The default `Poller.Options.maxConfigBytes`: 16 MiB, the largest config the engine accepts.
public let defaultMaxConfigBytes = 16 * 1024 * 1024

/// How the poller talks HTTP: synchronously, on a worker thread that the poller
/// waits for until the request's deadline (`timeoutInterval`, the poller's
/// `timeout`) or `stop()`, whichever comes first.
/// Throw `TurnoutError.http(status: nil, ...)` when no complete response came.
public protocol HTTPTransport: Sendable {
    func send(_ request: URLRequest) throws -> HTTPResponse

    /// `send` with the poller's body limit: stop reading and throw once a 2xx
    /// body passes `maxBodyBytes` (from `Content-Length` before reading when it
    /// is declared), and throw for a body shorter than its `Content-Length`;
    /// `request.timeoutInterval` is the deadline of the whole request (connect,
    /// headers and body). The default calls `send(_:)`: the poller still stops
    /// waiting at the deadline and refuses a body over the limit, but cannot
    /// stop the transport's own I/O.
    func send(_ request: URLRequest, maxBodyBytes: Int) throws -> HTTPResponse
}

extension HTTPTransport {
    public func send(_ request: URLRequest, maxBodyBytes: Int) throws -> HTTPResponse {
        try send(request)
    }
}

/// The default transport: `URLSession` without a cache (so ETags and 304s are
/// the poller's, not the cache's).
///
/// `request.timeoutInterval` is the deadline of the whole request: connect,
/// headers and the whole body together (URLSession's own timeout only bounds
/// the idle time between packets); when it passes the task is cancelled. With
/// the session this transport makes itself, bodies stream through its delegate:
/// a larger `Content-Length` is refused before reading and no more than the
/// limit is ever buffered. With a session given to `init(session:)` (its own
/// delegate, TLS pinning, ...) URLSession buffers the body and the limit is
/// checked once it is complete. Either way a 2xx body shorter than its
/// `Content-Length` is an error (when there is no `Content-Encoding`).
public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    private let session: URLSession
    /// The delegate of the session this transport made (nil for an app's session).
    private let streaming: StreamingDelegate?

    public init(session: URLSession? = nil) {
        if let s = session {
            self.session = s
            self.streaming = nil
        } else {
            let config = URLSessionConfiguration.ephemeral
            config.urlCache = nil
            config.requestCachePolicy = .reloadIgnoringLocalCacheData
            let delegate = StreamingDelegate()
            self.session = URLSession(configuration: config, delegate: delegate, delegateQueue: nil)
            self.streaming = delegate
        }
    }

    deinit {
        // A session keeps its delegate until it is invalidated.
        if streaming != nil { session.finishTasksAndInvalidate() }
    }

    public func send(_ request: URLRequest) throws -> HTTPResponse {
        try send(request, maxBodyBytes: Int.max)
    }

    public func send(_ request: URLRequest, maxBodyBytes: Int) throws -> HTTPResponse {
        let what = "\(request.httpMethod ?? "GET") \(request.url?.absoluteString ?? "?")"
        let transfer = Transfer(what: what, maxBodyBytes: maxBodyBytes)
        let task: URLSessionDataTask
        if let delegate = streaming {
            task = session.dataTask(with: request)
            delegate.register(transfer, for: task)
        } else {
            task = session.dataTask(with: request) { data, response, error in
                transfer.completeBuffered(data: data, response: response, error: error)
            }
        }
        task.resume()
        let timeout = request.timeoutInterval > 0 ? request.timeoutInterval : 60
        if transfer.done.wait(timeout: .now() + timeout) == .timedOut {
            task.cancel()
            throw TurnoutError.http(status: nil, message: timedOutMessage(what, timeout))
        }
        return try transfer.result()
    }
}

/// The message of a request that passed its deadline.
func timedOutMessage(_ what: String, _ timeout: TimeInterval) -> String {
    "\(what): timed out: no complete response within \(timeout) s (connect, headers and body together)"
}

/// One request of `URLSessionTransport`: the response, the body read so far
/// (bounded), the failure; `done` is signalled when the task ended.
private final class Transfer: @unchecked Sendable {
    let what: String
    let maxBodyBytes: Int
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var response: HTTPURLResponse?
    private var body = Data()
    private var failure: Error?

    init(what: String, maxBodyBytes: Int) {
        self.what = what
        self.maxBodyBytes = maxBodyBytes
    }

    /// What is kept of the body of an error status.
    private static let errorBodyBytes = 64 * 1024

    private var isSuccess: Bool {
        guard let r = response else { return false }
        return (200..<300).contains(r.statusCode)
    }

    /// The declared `Content-Length` when it counts the body's bytes (no `Content-Encoding`).
    private static func declaredLength(_ r: HTTPURLResponse) -> Int64? {
        for (key, _) in r.allHeaderFields {
            if let k = key as? String, k.lowercased() == "content-encoding" { return nil }
        }
        return r.expectedContentLength >= 0 ? r.expectedContentLength : nil
    }

    private func tooLarge(_ how: String) -> TurnoutError {
        .http(status: response?.statusCode, message: "\(what): the body is larger than \(maxBodyBytes) bytes (\(how))")
    }

    /// The headers arrived; false (cancel the task) when a 2xx declares more than the limit.
    func accept(_ response: URLResponse) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let http = response as? HTTPURLResponse else {
            failure = TurnoutError.http(status: nil, message: "\(what): not an HTTP response")
            return false
        }
        self.response = http
        if isSuccess, let n = Transfer.declaredLength(http), n > Int64(maxBodyBytes) {
            failure = tooLarge("Content-Length \(n)")
            return false
        }
        return true
    }

    /// `accept(response)` unless the headers were seen already (in case the
    /// delegate's response callback was not called); false: cancel the task.
    func ensureResponse(_ response: URLResponse?) -> Bool {
        lock.lock()
        let seen = self.response != nil || failure != nil
        lock.unlock()
        guard !seen, let r = response else { return true }
        return accept(r)
    }

    /// Body bytes arrived; false (cancel the task) once a 2xx body passes the limit.
    func append(_ data: Data) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let limit = isSuccess ? maxBodyBytes : Transfer.errorBodyBytes
        if data.count > limit - body.count {
            if isSuccess {
                failure = tooLarge("while reading")
                return false
            }
            return true // an error status: the rest of its body is dropped
        }
        body.append(data)
        return true
    }

    /// The task ended (with `error`, or a cancellation after `accept`/`append` said no).
    func complete(_ error: Error?) {
        lock.lock()
        if failure == nil {
            if let e = error {
                failure = TurnoutError.http(status: nil, message: "\(what): \(e.localizedDescription)")
            } else if let r = response {
                if isSuccess, let n = Transfer.declaredLength(r), Int64(body.count) != n {
                    failure = TurnoutError.http(status: r.statusCode,
                                                message: "\(what): incomplete body: \(body.count) of \(n) bytes (Content-Length)")
                }
            } else {
                failure = TurnoutError.http(status: nil, message: "\(what): no response")
            }
        }
        lock.unlock()
        done.signal()
    }

    /// The completion handler of an app's session (URLSession buffered the body).
    func completeBuffered(data: Data?, response: URLResponse?, error: Error?) {
        if error == nil, let r = response, accept(r), let d = data {
            _ = append(d)
        }
        complete(error)
    }

    func result() throws -> HTTPResponse {
        lock.lock()
        defer { lock.unlock() }
        if let f = failure { throw f }
        guard let r = response else { throw TurnoutError.http(status: nil, message: "\(what): no response") }
        var headers: [String: String] = [:]
        for (key, value) in r.allHeaderFields {
            if let k = key as? String, let v = value as? String { headers[k.lowercased()] = v }
        }
        return HTTPResponse(status: r.statusCode, body: body, headers: headers)
    }
}

/// The delegate of `URLSessionTransport`'s own session: hands each task's
/// events to its `Transfer` (registered before the task is resumed).
private final class StreamingDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var transfers: [Int: Transfer] = [:]

    func register(_ transfer: Transfer, for task: URLSessionTask) {
        lock.lock()
        transfers[task.taskIdentifier] = transfer
        lock.unlock()
    }

    private func transfer(for task: URLSessionTask, removing: Bool = false) -> Transfer? {
        lock.lock()
        defer { lock.unlock() }
        return removing ? transfers.removeValue(forKey: task.taskIdentifier) : transfers[task.taskIdentifier]
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let go = transfer(for: dataTask)?.accept(response) ?? false
        completionHandler(go ? .allow : .cancel)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard let t = transfer(for: dataTask) else { return }
        if !t.ensureResponse(dataTask.response) || !t.append(data) { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        guard let t = transfer(for: task, removing: true) else { return }
        if error == nil { _ = t.ensureResponse(task.response) }
        t.complete(error)
    }
}

/// A request the poller waits for on its worker thread: the first of the
/// transport's answer, the deadline and `stop()` decides.
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

/// A config request abandoned by `stop()` (not a failure).
private struct Stopped: Error {}

/// Keeps a client's config up to date and its events delivered, on a
/// background thread:
///
/// - `GET configURL` every `interval` seconds with `If-None-Match` (the ETag
///   of the config in force); a `304` costs nothing; a `200` body goes to
///   `Client.updateConfig`. A config the engine rejects never replaces the
///   good one (the error goes to `onError`); an accepted one that changed
///   something calls `onChange(report)`.
/// - One deadline per request: `timeout` covers connect, headers and the whole
///   body. The transport runs on a worker thread that the poller stops waiting
///   for when the deadline passes (`TurnoutError.http(status: nil, ...)` whose
///   message says "timed out", a failure like any other: backoff) or when
///   `stop()` is called (a config request in progress is abandoned, so `stop()`
///   returns at once).
/// - Body limit: a config body larger than `maxConfigBytes` (16 MiB by
///   default, the engine's limit) is an error, refused from `Content-Length`
///   before reading by the default transport.
/// - ETag rule: the ETag is remembered only when the body was read completely
///   and the engine accepted it. A timed-out, truncated, over-limit or rejected
///   body leaves it as it was, so the next poll fetches the config again
///   instead of getting `304` for bytes that were never installed.
/// - Every `flushInterval` seconds the queue is drained: `takeBatch` ->
///   `POST eventsURL` (`application/octet-stream`) -> `ack` on 2xx, `nack`
///   otherwise (sent again later with the same bytes).
/// - Failures are reported to `onError`; the next attempt waits
///   `interval * 2^failures`, capped at `maxBackoff`, +-`jitter`.
/// - `stop()` ends the thread and makes a last flush.
public final class Poller: @unchecked Sendable {
    /// Timing and request options.
    public struct Options: Sendable {
        public var interval: TimeInterval
        public var flushInterval: TimeInterval?
        public var maxBackoff: TimeInterval
        public var timeout: TimeInterval
        public var headers: [String: String]
        public var maxEvents: UInt32
        public var jitter: Double
        /// The largest config body read (default `defaultMaxConfigBytes`, 16 MiB).
        public var maxConfigBytes: Int

        /// `timeout`: the one deadline of each request, connect, headers and the whole body together.
        public init(interval: TimeInterval = 30, flushInterval: TimeInterval? = nil, maxBackoff: TimeInterval = 300,
                    timeout: TimeInterval = 10, headers: [String: String] = [:], maxEvents: UInt32 = 1000,
                    jitter: Double = 0.1, maxConfigBytes: Int = defaultMaxConfigBytes) {
            self.interval = interval
            self.flushInterval = flushInterval
            self.maxBackoff = maxBackoff
            self.timeout = timeout
            self.headers = headers
            self.maxEvents = maxEvents
            self.jitter = jitter
            self.maxConfigBytes = maxConfigBytes
        }
    }

    public let client: Client
    public let configURL: URL?
    public let eventsURL: URL?
    public let options: Options
    private let transport: HTTPTransport
    private let onChange: ((UpdateReport) -> Void)?
    private let onError: ((Error) -> Void)?

    private let state = NSLock()
    private var currentEtag: String?
    private var configFailures = 0
    private var flushFailures = 0
    private let pollLock = NSLock()
    private let flushLock = NSLock()
    private let wake = NSCondition()
    private var stopping = false
    private var running = false
    private var finished: DispatchSemaphore?
    /// The config request in progress (`stop()` abandons it); guarded by `wake`.
    private var inflight: Pending?

    public init(client: Client, configURL: URL?, eventsURL: URL? = nil, options: Options = Options(),
                transport: HTTPTransport = URLSessionTransport(),
                onChange: ((UpdateReport) -> Void)? = nil, onError: ((Error) -> Void)? = nil) {
        self.client = client
        self.configURL = configURL
        self.eventsURL = eventsURL
        self.options = options
        self.transport = transport
        self.onChange = onChange
        self.onError = onError
    }

    /// The ETag of the config in force: of the last body read completely and
    /// accepted by the engine.
    public var etag: String? {
        state.lock()
        defer { state.unlock() }
        return currentEtag
    }

    /// Consecutive failed attempts (config and events together).
    public var failures: Int {
        state.lock()
        defer { state.unlock() }
        return configFailures + flushFailures
    }

    /// Whether the thread runs.
    public var isRunning: Bool {
        wake.lock()
        defer { wake.unlock() }
        return running
    }

    // MARK: one step, from any thread

    /// Fetches the config once, now, within `options.timeout`. Returns the
    /// report of an installed config, `nil` for `304`. Throws `TurnoutError.http`
    /// (also for a timeout, a body over `maxConfigBytes` or cut short) or
    /// `.config` (the good config stays). The ETag is kept only for a complete
    /// body the engine accepted.
    @discardableResult
    public func poll() throws -> UpdateReport? {
        do {
            return try poll(fromLoop: false)
        } catch is Stopped {
            throw TurnoutError.http(status: nil, message: "GET \(configURL?.absoluteString ?? "?"): aborted: the poller was stopped")
        }
    }

    private func poll(fromLoop: Bool) throws -> UpdateReport? {
        guard let url = configURL else { throw TurnoutError.state("this poller has no config URL") }
        pollLock.lock()
        defer { pollLock.unlock() }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: options.timeout)
        request.httpMethod = "GET"
        for (k, v) in options.headers { request.setValue(v, forHTTPHeaderField: k) }
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let tag = etag { request.setValue(tag, forHTTPHeaderField: "If-None-Match") }
        let limit = options.maxConfigBytes
        let sent = request
        let response = try exchange(request, config: true, fromLoop: fromLoop) { t in
            try t.send(sent, maxBodyBytes: limit)
        }
        if response.status == 304 { return nil }
        guard (200..<300).contains(response.status) else {
            throw TurnoutError.http(status: response.status, message: "GET \(url.absoluteString): HTTP \(response.status)")
        }
        guard response.body.count <= limit else {
            throw TurnoutError.http(status: response.status,
                                    message: "GET \(url.absoluteString): the body is larger than \(limit) bytes")
        }
        // A rejected config throws here: the ETag stays that of the config in
        // force, so the next poll fetches the config again.
        let report = try client.updateConfig(response.body)
        setEtag(response.headers["etag"])
        if report.hasChanges { onChange?(report) }
        return report
    }

    /// Uploads every queued batch now; returns how many were delivered. A failed
    /// upload is nacked (sent again later) and rethrown. Each upload is bounded
    /// by `options.timeout`.
    @discardableResult
    public func flush() throws -> Int {
        guard let url = eventsURL else { throw TurnoutError.state("this poller has no events URL") }
        flushLock.lock()
        defer { flushLock.unlock() }
        var delivered = 0
        while let batch = try client.takeBatch(maxEvents: options.maxEvents) {
            var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData,
                                     timeoutInterval: options.timeout)
            request.httpMethod = "POST"
            for (k, v) in options.headers { request.setValue(v, forHTTPHeaderField: k) }
            request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
            request.httpBody = batch.bytes
            let sent = request
            do {
                let response = try exchange(request, config: false, fromLoop: false) { t in try t.send(sent) }
                guard (200..<300).contains(response.status) else {
                    throw TurnoutError.http(status: response.status,
                                            message: "POST \(url.absoluteString): HTTP \(response.status)")
                }
            } catch {
                try client.nack(batch.seq)
                throw error
            }
            try client.ack(batch.seq)
            delivered += 1
        }
        return delivered
    }

    /// Runs `call` with the transport on a worker thread and waits for it until
    /// the deadline (`options.timeout`: a timeout error; the call is abandoned)
    /// or, for the config request, `stop()` (`Stopped`).
    private func exchange(_ request: URLRequest, config: Bool, fromLoop: Bool,
                          _ call: @escaping @Sendable (HTTPTransport) throws -> HTTPResponse) throws -> HTTPResponse {
        let pending = Pending()
        if config {
            wake.lock()
            // stop() came between the loop's wake-up and this request.
            let stopped = stopping && fromLoop
            if !stopped { inflight = pending }
            wake.unlock()
            if stopped { throw Stopped() }
        }
        defer {
            if config {
                wake.lock()
                if inflight === pending { inflight = nil }
                wake.unlock()
            }
        }
        let transport = self.transport
        let deadline = Date().addingTimeInterval(options.timeout)
        Thread.detachNewThread {
            do {
                let response = try call(transport)
                pending.finish(.success(response))
            } catch {
                pending.finish(.failure(error))
            }
        }
        guard let outcome = pending.wait(until: deadline) else {
            let what = "\(request.httpMethod ?? "GET") \(request.url?.absoluteString ?? "?")"
            throw TurnoutError.http(status: nil, message: timedOutMessage(what, options.timeout))
        }
        return try outcome.get()
    }

    private func setEtag(_ tag: String?) {
        state.lock()
        currentEtag = tag
        state.unlock()
    }

    // MARK: the thread

    /// Starts the background thread (the first poll happens at once).
    public func start() {
        wake.lock()
        defer { wake.unlock() }
        if running { return }
        running = true
        stopping = false
        let done = DispatchSemaphore(value: 0)
        finished = done
        let thread = Thread { [self] in
            self.run()
            self.wake.lock()
            self.running = false
            self.wake.unlock()
            done.signal()
        }
        thread.name = "turnout-poller"
        thread.start()
    }

    /// Stops the thread and, with `flush`, uploads what is queued one last
    /// time. A config request in progress is abandoned at once (not reported
    /// as a failure); an upload in progress is waited for up to `timeout`
    /// seconds (it ends by its own deadline anyway).
    public func stop(flush: Bool = true, timeout: TimeInterval = 10) {
        wake.lock()
        stopping = true
        wake.broadcast()
        let done = finished
        finished = nil
        let current = inflight
        wake.unlock()
        current?.finish(.failure(Stopped()))
        if let d = done { _ = d.wait(timeout: .now() + timeout) }
        if flush, eventsURL != nil, !client.closed {
            _ = attempt { _ = try self.flush() }
        }
    }

    /// The delay before the next attempt after `failures` consecutive failures.
    func delay(_ base: TimeInterval, failures: Int) -> TimeInterval {
        var d = failures == 0 ? base : min(base * pow(2.0, Double(failures)), max(options.maxBackoff, base))
        if options.jitter > 0 { d *= 1.0 + options.jitter * Double.random(in: -1.0...1.0) }
        return d
    }

    /// Waits until `deadline` or `stop()`; true when stopping.
    private func sleep(until deadline: Date) -> Bool {
        wake.lock()
        defer { wake.unlock() }
        while !stopping && Date() < deadline { _ = wake.wait(until: deadline) }
        return stopping
    }

    /// Runs one step; false when it failed (a rejected config is not a failure of the server).
    private func attempt(_ step: () throws -> Void) -> Bool {
        do {
            try step()
            return true
        } catch is Stopped {
            return true // stop() abandoned the request: not a failure
        } catch let e as TurnoutError {
            switch e {
            case .config:
                report(e)
                return true
            case .closed:
                wake.lock()
                stopping = true
                wake.unlock()
                return false
            default:
                report(e)
                return false
            }
        } catch {
            report(error)
            return false
        }
    }

    private func report(_ error: Error) {
        onError?(error)
    }

    /// Runs one step, counts its failure (or resets the count) and returns when the next one is due.
    private func step(_ work: () throws -> Void, failures: ReferenceWritableKeyPath<Poller, Int>,
                      every base: TimeInterval) -> Date {
        let ok = attempt(work)
        state.lock()
        self[keyPath: failures] = ok ? 0 : self[keyPath: failures] + 1
        let n = self[keyPath: failures]
        state.unlock()
        return Date().addingTimeInterval(delay(base, failures: n))
    }

    private func run() {
        let interval = options.interval
        let flushInterval = options.flushInterval ?? options.interval
        var nextConfig = configURL != nil ? Date() : Date.distantFuture
        var nextFlush = eventsURL != nil ? Date().addingTimeInterval(flushInterval) : Date.distantFuture
        while !sleep(until: min(nextConfig, nextFlush)) {
            let now = Date()
            if now >= nextConfig {
                nextConfig = step({ _ = try self.poll(fromLoop: true) }, failures: \Poller.configFailures, every: interval)
            }
            if now >= nextFlush {
                nextFlush = step({ _ = try self.flush() }, failures: \Poller.flushFailures, every: flushInterval)
            }
        }
    }
}

extension Client {
    /// A `Poller` for this client (not started).
    public func poller(configURL: URL?, eventsURL: URL? = nil, options: Poller.Options = Poller.Options(),
                       onChange: ((UpdateReport) -> Void)? = nil, onError: ((Error) -> Void)? = nil) -> Poller {
        Poller(client: self, configURL: configURL, eventsURL: eventsURL, options: options, onChange: onChange,
               onError: onError)
    }
}
