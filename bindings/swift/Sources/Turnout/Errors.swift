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
    /// A config was rejected; the previous config stays in force. The message lists every
    /// problem; `problems` holds them.
    case config(String, problems: [Problem])
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
    /// "limit `config_bytes` exceeded: found 3870, the maximum is 1000"; `name` is that
    /// name as the engine reported it.
    case limit(String, name: String?)
    /// The client, context or poller was closed.
    case closed(String)
    /// A request of the poller failed: the HTTP status, or `nil` when no response came.
    case http(status: Int?, message: String)

    /// The message without the kind.
    public var message: String {
        switch self {
        case .facets(let m), .options(let m), .state(let m), .closed(let m):
            return m
        case .config(let m, _), .limit(let m, _):
            return m
        case .batch(_, let m):
            return m
        case .http(_, let m):
            return m
        }
    }

    public var description: String {
        switch self {
        case .config(let m, _): return "config: \(m)"
        case .facets(let m): return "facets: \(m)"
        case .options(let m): return "options: \(m)"
        case .batch(let kind, let m): return "batch (\(kind.rawValue)): \(m)"
        case .state(let m): return "state: \(m)"
        case .limit(let m, _): return "limit: \(m)"
        case .closed(let m): return "closed: \(m)"
        case .http(let status, let m): return "http \(status.map { String($0) } ?? "-"): \(m)"
        }
    }

    /// The one mapping from the generated bindings' error onto this one: the kind and
    /// the structured detail come as fields, never from the message.
    init(native: TurnoutFFI.TurnoutError) {
        switch native {
        case .Config(_, let message, let problems): self = .config(message, problems: problems.map(Problem.init))
        case .Facets(_, let message): self = .facets(message)
        case .Options(_, let message): self = .options(message)
        case .Batch(let kind, let message): self = .batch(BatchErrorKind(kind), message)
        case .State(_, let message): self = .state(message)
        case .Limit(_, let message, let limit, _, _): self = .limit(message, name: limit)
        }
    }

    /// For `.limit`: the name of the limit exceeded (`config_bytes`, `json_depth`,
    /// `expanded_constraints`, `decode_expansion`, ...).
    public var limitName: String? {
        guard case .limit(_, let name) = self else { return nil }
        return name
    }
}

extension BatchErrorKind {
    /// The batch kind of the engine's error kind (its stable code).
    init(_ code: String) {
        switch code {
        case "BATCH_CHECKSUM": self = .checksum
        case "NOT_A_BATCH": self = .notABatch
        case "BATCH_VERSION": self = .version
        case "BATCH_MALFORMED": self = .malformed
        default: self = .json
        }
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
