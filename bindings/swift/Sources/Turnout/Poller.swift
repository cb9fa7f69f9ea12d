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

/// How the poller talks HTTP: synchronously, on the poller's own thread.
/// Throw `TurnoutError.http(status: nil, ...)` when no response came.
public protocol HTTPTransport: Sendable {
    func send(_ request: URLRequest) throws -> HTTPResponse
}

/// The default transport: `URLSession` without a cache (so ETags and 304s are
/// the poller's, not the cache's).
public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    private let session: URLSession

    public init(session: URLSession? = nil) {
        if let s = session {
            self.session = s
        } else {
            let config = URLSessionConfiguration.ephemeral
            config.urlCache = nil
            config.requestCachePolicy = .reloadIgnoringLocalCacheData
            self.session = URLSession(configuration: config)
        }
    }

    public func send(_ request: URLRequest) throws -> HTTPResponse {
        let done = DispatchSemaphore(value: 0)
        let what = "\(request.httpMethod ?? "GET") \(request.url?.absoluteString ?? "?")"
        let box = ResultBox(.failure(TurnoutError.http(status: nil, message: "\(what): no response")))
        let task = session.dataTask(with: request) { data, response, error in
            if let error = error {
                box.result = .failure(TurnoutError.http(status: nil, message: "\(what): \(error.localizedDescription)"))
            } else if let http = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (key, value) in http.allHeaderFields {
                    if let k = key as? String, let v = value as? String { headers[k.lowercased()] = v }
                }
                box.result = .success(HTTPResponse(status: http.statusCode, body: data ?? Data(), headers: headers))
            }
            done.signal()
        }
        task.resume()
        done.wait()
        return try box.result.get()
    }
}

/// The completion handler's result, handed over by the semaphore (written
/// before `signal()`, read after `wait()`).
private final class ResultBox: @unchecked Sendable {
    var result: Result<HTTPResponse, Error>

    init(_ result: Result<HTTPResponse, Error>) {
        self.result = result
    }
}

/// Keeps a client's config up to date and its events delivered, on a
/// background thread:
///
/// - `GET configURL` every `interval` seconds with `If-None-Match`; a `304`
///   costs nothing; a `200` body goes to `Client.updateConfig`. A config the
///   engine rejects never replaces the good one (the error goes to `onError`
///   and its ETag is remembered, so the same bad bytes are not fetched again);
///   an accepted one that changed something calls `onChange(report)`.
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

        public init(interval: TimeInterval = 30, flushInterval: TimeInterval? = nil, maxBackoff: TimeInterval = 300,
                    timeout: TimeInterval = 10, headers: [String: String] = [:], maxEvents: UInt32 = 1000,
                    jitter: Double = 0.1) {
            self.interval = interval
            self.flushInterval = flushInterval
            self.maxBackoff = maxBackoff
            self.timeout = timeout
            self.headers = headers
            self.maxEvents = maxEvents
            self.jitter = jitter
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

    /// The ETag of the last config received (good or rejected).
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

    /// Fetches the config once, now. Returns the report of an installed config,
    /// `nil` for `304`. Throws `TurnoutError.http` or `.config` (the good config stays).
    @discardableResult
    public func poll() throws -> UpdateReport? {
        guard let url = configURL else { throw TurnoutError.state("this poller has no config URL") }
        pollLock.lock()
        defer { pollLock.unlock() }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: options.timeout)
        request.httpMethod = "GET"
        for (k, v) in options.headers { request.setValue(v, forHTTPHeaderField: k) }
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let tag = etag { request.setValue(tag, forHTTPHeaderField: "If-None-Match") }
        let response = try transport.send(request)
        if response.status == 304 { return nil }
        guard (200..<300).contains(response.status) else {
            throw TurnoutError.http(status: response.status, message: "GET \(url.absoluteString): HTTP \(response.status)")
        }
        let tag = response.headers["etag"]
        let report: UpdateReport
        do {
            report = try client.updateConfig(response.body)
        } catch let e as TurnoutError {
            if case .config = e { setEtag(tag) }  // the same bad bytes are not fetched again
            throw e
        }
        setEtag(tag)
        if report.hasChanges { onChange?(report) }
        return report
    }

    /// Uploads every queued batch now; returns how many were delivered. A failed
    /// upload is nacked (sent again later) and rethrown.
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
            do {
                let response = try transport.send(request)
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

    /// Stops the thread (waiting up to `timeout` seconds for a request in
    /// progress) and, with `flush`, uploads what is queued one last time.
    public func stop(flush: Bool = true, timeout: TimeInterval = 10) {
        wake.lock()
        stopping = true
        wake.broadcast()
        let done = finished
        finished = nil
        wake.unlock()
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
                nextConfig = step({ _ = try self.poll() }, failures: \Poller.configFailures, every: interval)
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
