import Foundation
import TurnoutFFI
import turnout_ffiFFI

/// How a bundle with a broken document is handled.
public enum Isolation: String, Sendable {
    /// A broken document keeps its last good version (the default).
    case perDocument
    /// Any problem rejects the whole update.
    case strict
}

/// Which decisions are recorded as events.
public enum DecisionEvents: String, Sendable {
    case all
    case experiments
    case off
}

/// Client options; every field is optional.
public struct ClientOptions: Sendable {
    /// The service this client runs in (prefixes tracked metric names).
    public var service: String?
    public var isolation: Isolation?
    public var decisionEvents: DecisionEvents?
    /// Facet names never recorded in events (PII).
    public var excludeFacets: [String]?
    public var maxQueue: UInt64?
    public var maxFoldKeys: UInt64?
    public var maxUnackedBatches: UInt64?
    /// Client instance id written in batch headers.
    public var clientId: String?
    public var sdkVersion: String?
    /// Platform written in batch headers (default: the OS).
    public var platform: String?
    /// Pins the clock at this unix time in ms (tests); move it with `Client.setTimeMs`.
    public var fixedTimeMs: Int64?
    /// The largest config accepted, in bytes (default 16 MiB); a larger one throws `.limit`.
    public var maxConfigBytes: UInt64?

    public init(
        service: String? = nil, isolation: Isolation? = nil, decisionEvents: DecisionEvents? = nil,
        excludeFacets: [String]? = nil, maxQueue: UInt64? = nil, maxFoldKeys: UInt64? = nil,
        maxUnackedBatches: UInt64? = nil, clientId: String? = nil, sdkVersion: String? = nil,
        platform: String? = nil, fixedTimeMs: Int64? = nil, maxConfigBytes: UInt64? = nil
    ) {
        self.service = service
        self.isolation = isolation
        self.decisionEvents = decisionEvents
        self.excludeFacets = excludeFacets
        self.maxQueue = maxQueue
        self.maxFoldKeys = maxFoldKeys
        self.maxUnackedBatches = maxUnackedBatches
        self.clientId = clientId
        self.sdkVersion = sdkVersion
        self.platform = platform
        self.fixedTimeMs = fixedTimeMs
        self.maxConfigBytes = maxConfigBytes
    }

    static var defaultPlatform: String {
        #if os(iOS)
        return "ios"
        #elseif os(macOS)
        return "macos"
        #else
        return "linux"
        #endif
    }

    /// The JSON of `turnout_core::host::HostOptions`.
    func json() throws -> String {
        var o: [String: Any] = ["sdk": "turnout-swift", "sdkVersion": sdkVersion ?? Client.version,
                                "platform": platform ?? ClientOptions.defaultPlatform]
        if let v = service { o["service"] = v }
        if let v = isolation { o["isolation"] = v.rawValue }
        if let v = decisionEvents { o["decisionEvents"] = v.rawValue }
        if let v = excludeFacets { o["excludeFacets"] = v }
        if let v = maxQueue { o["maxQueue"] = NSNumber(value: v) }
        if let v = maxFoldKeys { o["maxFoldKeys"] = NSNumber(value: v) }
        if let v = maxUnackedBatches { o["maxUnackedBatches"] = NSNumber(value: v) }
        if let v = clientId { o["clientId"] = v }
        if let v = fixedTimeMs { o["fixedTimeMs"] = NSNumber(value: v) }
        if let v = maxConfigBytes { o["maxConfigBytes"] = NSNumber(value: v) }
        let data = try JSONSerialization.data(withJSONObject: o, options: [])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A turnout client: the compiled config (swapped atomically on update) and
/// the event queue. Thread-safe; share one per process.
public final class Client: @unchecked Sendable {
    /// The package version (written in batch headers).
    public static let version = "0.2.0"

    let native: TurnoutFFI.Client
    private let lock = NSLock()
    private var variables: [String: Variable] = [:]
    private var isClosed = false

    /// A client bootstrapped with `config` (JSON bytes of a bundle or a single
    /// document), so the first decision never waits for the network.
    /// Throws `TurnoutError.config` or `.options`.
    public init(config: Data, options: ClientOptions = ClientOptions()) throws {
        let json = try options.json()
        native = try mapErrors { try TurnoutFFI.Client(config: config, optionsJson: json) }
    }

    /// A client with no config yet (every variable resolves to `fallback`
    /// until `updateConfig`).
    public init(options: ClientOptions = ClientOptions()) throws {
        let json = try options.json()
        native = try mapErrors { try TurnoutFFI.Client.empty(optionsJson: json) }
    }

    /// A client bootstrapped from a JSON file.
    public convenience init(contentsOf url: URL, options: ClientOptions = ClientOptions()) throws {
        try self.init(config: try Data(contentsOf: url), options: options)
    }

    func live() throws -> TurnoutFFI.Client {
        lock.lock()
        defer { lock.unlock() }
        if isClosed { throw TurnoutError.closed("this client is closed") }
        return native
    }

    // MARK: handles

    /// The handle for `name` (cached: the same object every time).
    public func variable(_ name: String) throws -> Variable {
        let n = try live()
        lock.lock()
        defer { lock.unlock() }
        if let v = variables[name] { return v }
        let v = Variable(n.variable(name: name), name: name)
        variables[name] = v
        return v
    }

    /// A prepared context for one unit or request. Facets over a limit (more than
    /// 1,024, a name over 1 KiB, a value over 8 KiB) give a context whose every
    /// decision is the caller's default with reason `ERROR`, error code `INVALID_CONTEXT`.
    public func context(_ facets: Facets = Facets()) throws -> Context {
        Context(try live().context(facets: facets.native), client: self)
    }

    // MARK: one-shot

    /// The decision for `name` and `facets` (records a decision event):
    /// `try client.getVariable("delay", Facets().passenger(7).city(10)).int64(30)`.
    public func getVariable(_ name: String, _ facets: Facets = Facets()) throws -> Decision {
        Decision(try live().getVariable(name: name, facets: facets.native))
    }

    /// Every variable assigned by the experiment, or the experiments of the domain, called `name`.
    public func getVariables(_ name: String, _ facets: Facets = Facets()) throws -> [Decision] {
        try live().getVariables(name: name, facets: facets.native).map { Decision($0) }
    }

    /// The decision with the steps that led to it (records nothing).
    public func explain(_ name: String, _ facets: Facets = Facets()) throws -> Explanation {
        let e = try live().explain(name: name, facets: facets.native)
        return Explanation(decision: Decision(e.decision), steps: e.steps)
    }

    // MARK: tracking

    /// Records a metric `service.name` with `value` and the facets.
    public func track(_ name: String, value: Double, facets: Facets = Facets()) throws {
        try live().track(name: name, value: value, facets: facets.native)
    }

    /// The next batch of at most `maxEvents` events, or `nil`.
    public func takeBatch(maxEvents: UInt32 = 1000) throws -> Batch? {
        guard let b = try live().takeBatch(maxEvents: maxEvents) else { return nil }
        return Batch(seq: b.seq, bytes: b.bytes, events: b.events)
    }

    /// Batch `seq` was delivered: forget it. `false` if unknown.
    @discardableResult
    public func ack(_ seq: UInt64) throws -> Bool { try live().ack(seq: seq) }

    /// Batch `seq` failed: it is taken again, same bytes, by the next `takeBatch`.
    @discardableResult
    public func nack(_ seq: UInt64) throws -> Bool { try live().nack(seq: seq) }

    /// The queue counters.
    public func trackingStats() throws -> TrackingStats {
        let s = try live().trackingStats()
        return TrackingStats(recorded: s.recorded, folded: s.folded, dropped: s.dropped,
                             foldOverflow: s.foldOverflow, queued: s.queued, inFlight: s.inFlight,
                             retrying: s.retrying)
    }

    // MARK: config

    /// Validates, compiles and atomically installs a config. On error
    /// (`TurnoutError.config`, or `.limit` for a config over a limit) the
    /// previous config stays in force.
    @discardableResult
    public func updateConfig(_ config: Data) throws -> UpdateReport {
        let n = try live()
        return UpdateReport(try mapErrors { try n.updateConfig(config: config) })
    }

    /// Checks a config without installing it.
    public func validate(_ config: Data) throws -> UpdateReport {
        let n = try live()
        return UpdateReport(try mapErrors { try n.validate(config: config) })
    }

    /// The `version` of the bundle in force.
    public func configVersion() throws -> Int64? { try live().configVersion() }

    /// Every variable the config defines, sorted.
    public func variableNames() throws -> [String] { try live().variableNames() }

    /// Moves the fixed clock (clients built with `fixedTimeMs` only; else `TurnoutError.state`).
    public func setTimeMs(_ ms: Int64) throws {
        let n = try live()
        try mapErrors { try n.setTimeMs(ms: ms) }
    }

    // MARK: lifetime

    /// Closes the client: every later call throws `TurnoutError.closed`. The
    /// native client is freed when the last reference goes (contexts keep it alive).
    public func close() {
        lock.lock()
        isClosed = true
        variables.removeAll()
        lock.unlock()
    }

    /// Whether `close()` was called.
    public var closed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return isClosed
    }
}

/// A variable handle: the name resolved once per config version (it survives updates).
public final class Variable: @unchecked Sendable {
    let native: TurnoutFFI.Variable
    /// The fast paths' handle of this variable (the C ABI's, from `fastHandle()`; freed in deinit).
    let handle: OpaquePointer?
    /// The variable's name.
    public let name: String

    init(_ native: TurnoutFFI.Variable, name: String) {
        self.native = native
        self.handle = OpaquePointer(bitPattern: Int(native.fastHandle()))
        self.name = name
    }

    deinit {
        turnout_variable_free(handle)
    }
}

/// The facets of one unit or request, prepared once. The typed getters are
/// the hot path: a C call with two handles and a number. `close()` makes
/// further use throw; the native context is freed with the last reference.
public final class Context: @unchecked Sendable {
    let native: TurnoutFFI.Context
    /// The fast paths' handle of this context (the C ABI's, from `fastHandle()`; freed in deinit).
    let handle: OpaquePointer?
    private let client: Client
    private let lock = NSLock()
    private var isClosed = false

    init(_ native: TurnoutFFI.Context, client: Client) {
        self.native = native
        self.handle = OpaquePointer(bitPattern: Int(native.fastHandle()))
        self.client = client
    }

    deinit {
        turnout_context_free(handle)
    }

    @inline(__always)
    private func check() throws {
        lock.lock()
        let c = isClosed
        lock.unlock()
        if c { throw TurnoutError.closed("this context is closed") }
    }

    /// The value as an integer, or `default` (fallback or another type).
    public func int64(_ variable: Variable, default orElse: Int64) throws -> Int64 {
        try check()
        return withExtendedLifetime(variable) { turnout_context_int64(handle, variable.handle, orElse) }
    }

    /// The value as a double (any number), or `default`.
    public func float64(_ variable: Variable, default orElse: Double) throws -> Double {
        try check()
        return withExtendedLifetime(variable) { turnout_context_float64(handle, variable.handle, orElse) }
    }

    /// The value as a boolean, or `default`.
    public func bool(_ variable: Variable, default orElse: Bool) throws -> Bool {
        try check()
        return withExtendedLifetime(variable) { turnout_context_bool(handle, variable.handle, orElse) }
    }

    /// The value as a string, or `default`.
    public func string(_ variable: Variable, default orElse: String) throws -> String {
        try check()
        return native.string(variable: variable.native, defaultValue: orElse)
    }

    /// The value as JSON, or `nil` (fallback).
    public func json(_ variable: Variable) throws -> JSONValue? {
        try check()
        return try native.json(variable: variable.native).map { try JSONValue.parse($0) }
    }

    /// The full decision (value, source, reason, experiment, ...).
    public func decision(_ variable: Variable) throws -> Decision {
        try check()
        return Decision(native.decision(variable: variable.native))
    }

    /// The typed getters by variable name (one cache lookup more).
    public func int64(_ name: String, default orElse: Int64) throws -> Int64 {
        try int64(try client.variable(name), default: orElse)
    }

    /// Records a metric `service.name` with this context's facets.
    public func track(_ name: String, value: Double) throws {
        try check()
        native.track(name: name, value: value)
    }

    /// The facets, as the engine holds them.
    public func facets() throws -> JSONValue {
        try check()
        return try JSONValue.parse(native.facetsJson())
    }

    /// Closes the context: later calls throw `TurnoutError.closed`.
    public func close() {
        lock.lock()
        isClosed = true
        lock.unlock()
    }
}
