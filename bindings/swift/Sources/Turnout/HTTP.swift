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

/// The default `Poller.Options.maxConfigBytes`: 16 MiB, the largest config the engine accepts by default.
public let defaultMaxConfigBytes = 16 * 1024 * 1024

/// A request that got no usable response, with its kind (docs/sync.md section 1). A transport
/// throws it; any other error counts as `network`.
public struct TransportError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The failure kinds of the host protocol.
    public enum Kind: String, Sendable {
        /// No HTTP response: refused, reset, DNS, TLS.
        case network = "NETWORK"
        /// The deadline passed (connect, headers and body together).
        case timeout = "TIMEOUT"
        /// The body was over the limit.
        case tooLarge = "TOO_LARGE"
        /// The body ended before its `Content-Length`, or was cut.
        case incomplete = "INCOMPLETE"
        /// The request was abandoned because the poller stopped.
        case aborted = "ABORTED"
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// How the poller talks HTTP: synchronously, on a worker thread that the poller
/// waits for until the request's deadline (`timeoutInterval`, the poller's
/// `timeout`) or `stop()`, whichever comes first. Throw a `TransportError`
/// when no complete response came (any other error counts as `network`).
public protocol HTTPTransport: Sendable {
    func send(_ request: URLRequest) throws -> HTTPResponse

    /// `send` with the poller's body limit: stop reading and throw `.tooLarge` once a 2xx
    /// body passes `maxBodyBytes` (from `Content-Length` before reading when it is declared),
    /// and throw `.incomplete` for a body shorter than its `Content-Length`;
    /// `request.timeoutInterval` is the deadline of the whole request (connect, headers and
    /// body). The default calls `send(_:)`: the poller still stops waiting at the deadline and
    /// refuses a body over the limit, but cannot stop the transport's own I/O.
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
/// `Content-Length` is `.incomplete` (when there is no `Content-Encoding`).
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
            throw TransportError(.timeout, timedOutMessage(what, timeout))
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
    private var failure: TransportError?

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

    private func tooLarge(_ how: String) -> TransportError {
        TransportError(.tooLarge, "\(what): the body is larger than \(maxBodyBytes) bytes (\(how))")
    }

    /// The headers arrived; false (cancel the task) when a 2xx declares more than the limit.
    func accept(_ response: URLResponse) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let http = response as? HTTPURLResponse else {
            failure = TransportError(.network, "\(what): not an HTTP response")
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
                // An error once the headers came is a body cut short; before, no response.
                let timedOut = (e as? URLError)?.code == .timedOut
                let kind: TransportError.Kind = timedOut ? .timeout : (response != nil ? .incomplete : .network)
                failure = TransportError(kind, "\(what): \(e.localizedDescription)")
            } else if let r = response {
                if isSuccess, let n = Transfer.declaredLength(r), Int64(body.count) != n {
                    failure = TransportError(.incomplete, "\(what): incomplete body: \(body.count) of \(n) bytes (Content-Length)")
                }
            } else {
                failure = TransportError(.network, "\(what): no response")
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
        guard let r = response else { throw TransportError(.network, "\(what): no response") }
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
