import Foundation
import TurnoutFFI

/// One decision: the value and why. Typed getters take the caller's default,
/// returned when the source is `fallback` or the value has another type.
public struct Decision: Equatable, Hashable, Sendable {
    /// The variable's name.
    public let variable: String
    /// The value; `nil` when the source is `fallback`.
    public let value: JSONValue?
    /// The value as compact JSON text, as the engine has it.
    public let valueJSON: String?
    /// The matched rule's `string` label, if any.
    public let label: String?
    /// `experiment`, `rollout`, `default` or `fallback`.
    public let source: String
    /// The experiment that assigned the value (source `experiment`).
    public let experiment: String?
    /// The matched rule's index (source `rollout`).
    public let rule: Int?
    /// The assigned choice's index (source `experiment`).
    public let choice: Int?
    /// `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED` or `ERROR`.
    public let reason: String
    /// With reason `ERROR`: `FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PARSE_ERROR` or
    /// `INVALID_CONTEXT` (the facets were over a limit: more than 1,024, a name over
    /// 1 KiB or a value over 8 KiB; the value is the caller's default).
    public let errorCode: String?

    init(_ d: TurnoutFFI.Decision) {
        variable = d.variable
        valueJSON = d.valueJson
        value = d.valueJson.flatMap { try? JSONValue.parse($0) }
        label = d.label
        source = d.source
        experiment = d.experiment
        rule = d.rule.map { Int($0) }
        choice = d.choice.map { Int($0) }
        reason = d.reason
        errorCode = d.errorCode
    }

    /// True when there is no value: the caller's default applies.
    public var isFallback: Bool { source == "fallback" }

    /// The value as an integer (integral numbers only), or `orElse`.
    public func int64(_ orElse: Int64) -> Int64 { value?.int64Value ?? orElse }

    /// The value as a double (any number), or `orElse`.
    public func float64(_ orElse: Double) -> Double { value?.doubleValue ?? orElse }

    /// The value as a boolean, or `orElse`.
    public func bool(_ orElse: Bool) -> Bool {
        if case .bool(let b)? = value { return b }
        return orElse
    }

    /// The value as a string, or `orElse`.
    public func string(_ orElse: String) -> String {
        if case .string(let s)? = value { return s }
        return orElse
    }
}

/// What a config update (or a validation) changed.
public struct UpdateReport: Equatable, Sendable {
    /// The bundle's `version`, if it has one.
    public let version: Int64?
    /// Variables that did not exist before (sorted).
    public let added: [String]
    /// Variables that no longer exist (sorted).
    public let removed: [String]
    /// Variables whose documents changed (sorted).
    public let changed: [String]
    /// Documents rejected inside the accepted bundle, one line each.
    public let rejected: [String]
    /// Things that load but are almost certainly mistakes.
    public let warnings: [String]

    /// Whether any variable was added, removed or changed.
    public var hasChanges: Bool { !(added.isEmpty && removed.isEmpty && changed.isEmpty) }

    init(_ r: TurnoutFFI.UpdateReport) {
        version = r.version
        added = r.added
        removed = r.removed
        changed = r.changed
        rejected = r.rejected
        warnings = r.warnings
    }

    /// The report of a sync's `applied` notice (the core's JSON form), with its rejected
    /// documents and warnings in the lines of `init(_:)`: `document: field: message`, a
    /// document's problems joined by `; `.
    init(json: JSONValue) {
        func strings(_ v: JSONValue?) -> [String] {
            guard case .array(let a)? = v else { return [] }
            return a.compactMap { if case .string(let s) = $0 { return s }; return nil }
        }
        func list(_ v: JSONValue?) -> [JSONValue] {
            if case .array(let a)? = v { return a }
            return []
        }
        func problem(_ p: JSONValue) -> String {
            strings(.array([p["document"] ?? .null, p["field"] ?? .null, p["message"] ?? .null]))
                .filter { !$0.isEmpty }.joined(separator: ": ")
        }
        version = json["version"]?.int64Value
        added = strings(json["added"])
        removed = strings(json["removed"])
        changed = strings(json["changed"])
        rejected = list(json["rejected"]).map { r in
            let kept = r["kill_switch"] == .bool(true) ? " (kill switch honoured)"
                : r["kept_last_good"] == .bool(true) ? " (last good version kept)" : ""
            return list(r["problems"]).map(problem).joined(separator: "; ") + kept
        }
        warnings = list(json["warnings"]).map(problem)
    }
}

/// A batch of events to upload (`application/octet-stream`); then `ack` or `nack` its `seq`.
public struct Batch: Equatable, Sendable {
    /// Sequence number; with the client id, the collector's de-duplication key.
    public let seq: UInt64
    /// The encoded batch (docs/wire-format.md).
    public let bytes: Data
    /// How many events (folded records) it holds.
    public let events: UInt64
}

/// Event queue counters; every loss is counted.
public struct TrackingStats: Equatable, Sendable {
    public let recorded: UInt64
    public let folded: UInt64
    public let dropped: UInt64
    public let foldOverflow: UInt64
    public let queued: UInt64
    public let inFlight: UInt64
    public let retrying: UInt64
}

/// A decision with the steps that led to it.
public struct Explanation: Equatable, Sendable {
    public let decision: Decision
    public let steps: [String]
}

/// Encodes `{"header": {...}, "events": [...]}` (the JSON form of `turnout decode`) into wire bytes.
public func encodeBatch(json: String) throws -> Data {
    try mapErrors { try TurnoutFFI.encodeBatchJson(json: json) }
}

/// Decodes wire bytes into `{"header": {...}, "events": [...]}`. Throws `.batch` for
/// corrupted bytes and `.limit` for a batch that would decode to more than its
/// expansion limit.
public func decodeBatch(_ bytes: Data) throws -> JSONValue {
    let text = try mapErrors { try TurnoutFFI.decodeBatchJson(bytes: bytes) }
    return try JSONValue.parse(text)
}

/// The evaluation contract version (docs/spec.md) the library implements.
public func specVersion() -> Int { Int(TurnoutFFI.specVersion()) }

/// The native library's version.
public func libraryVersion() -> String { TurnoutFFI.libraryVersion() }
