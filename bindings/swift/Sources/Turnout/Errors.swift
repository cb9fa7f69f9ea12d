import Foundation
import TurnoutFFI

/// Why a batch could not be decoded (or encoded from JSON).
public enum BatchErrorKind: String, Equatable, Sendable {
    /// The CRC-32C trailer does not match: the bytes were corrupted.
    case checksum
    /// Too short, or not a turnout batch at all.
    case notABatch = "not-a-batch"
    /// A wire version this library does not read.
    case version
    /// The structure is inconsistent.
    case malformed
    /// The JSON form given to `encodeBatch` was not valid.
    case json
}

/// Every error the Turnout package throws.
public enum TurnoutError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A config was rejected; the previous config stays in force. One problem per line.
    case config(String)
    /// Facets could not be used.
    case facets(String)
    /// Client options were invalid.
    case options(String)
    /// A batch could not be encoded or decoded (corrupted bytes are rejected whole).
    case batch(BatchErrorKind, String)
    /// The call is not possible in this state (e.g. moving a clock that is not fixed).
    case state(String)
    /// A limit on hostile input was exceeded (docs/spec.md, section 16): a config over
    /// `ClientOptions.maxConfigBytes`, nested deeper than 64 or expanding to too many
    /// constraints (the previous config stays in force), or a batch that would decode to
    /// more than its expansion limit. The message names the limit:
    /// "limit `config_bytes` exceeded: found 3870, the maximum is 1000" (see `limitName`).
    case limit(String)
    /// The client, context or poller was closed.
    case closed(String)
    /// A request of the poller failed: the HTTP status, or `nil` when no response came.
    case http(status: Int?, message: String)

    /// The message without the kind.
    public var message: String {
        switch self {
        case .config(let m), .facets(let m), .options(let m), .state(let m), .limit(let m), .closed(let m):
            return m
        case .batch(_, let m):
            return m
        case .http(_, let m):
            return m
        }
    }

    public var description: String {
        switch self {
        case .config(let m): return "config: \(m)"
        case .facets(let m): return "facets: \(m)"
        case .options(let m): return "options: \(m)"
        case .batch(let kind, let m): return "batch (\(kind.rawValue)): \(m)"
        case .state(let m): return "state: \(m)"
        case .limit(let m): return "limit: \(m)"
        case .closed(let m): return "closed: \(m)"
        case .http(let status, let m): return "http \(status.map { String($0) } ?? "-"): \(m)"
        }
    }

    /// The one mapping from the generated bindings' error onto this one.
    init(native: TurnoutFFI.TurnoutError) {
        switch native {
        case .Config(let message): self = .config(message)
        case .Facets(let message): self = .facets(message)
        case .Options(let message): self = .options(message)
        case .Batch(let message): self = .batch(TurnoutError.batchKind(message), message)
        case .State(let message): self = .state(message)
        case .Limit(let message): self = .limit(message)
        }
    }

    /// For `.limit`: the name of the limit exceeded (`config_bytes`, `json_depth`,
    /// `expanded_constraints`, `facets`, `facet_value_bytes`, `decode_expansion`, ...).
    public var limitName: String? {
        guard case .limit(let m) = self,
              let start = m.range(of: "limit `"),
              let end = m.range(of: "` exceeded", range: start.upperBound..<m.endIndex)
        else { return nil }
        return String(m[start.upperBound..<end.lowerBound])
    }

    static func batchKind(_ message: String) -> BatchErrorKind {
        if message.hasPrefix("checksum mismatch") { return .checksum }
        if message.hasPrefix("not a turnout batch") { return .notABatch }
        if message.hasPrefix("unsupported batch version") { return .version }
        if message.hasPrefix("malformed batch") { return .malformed }
        return .json
    }
}

/// Runs a call into the generated bindings, mapping their errors.
@inline(__always)
func mapErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as TurnoutFFI.TurnoutError {
        throw TurnoutError(native: e)
    }
}
