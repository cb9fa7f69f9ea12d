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

/// One problem found in a config: which document, which field, why.
public struct Problem: Equatable, Sendable, CustomStringConvertible {
    /// The document, e.g. `rollout "automatedMessageDelay"`, or `bundle`.
    public let document: String
    /// A JSON path inside the document (empty for the document as a whole).
    public let field: String
    /// What is wrong.
    public let message: String

    /// `document: field: message` (empty parts left out).
    public var description: String {
        [document, field, message].filter { !$0.isEmpty }.joined(separator: ": ")
    }

    init(_ p: TurnoutFFI.Problem) {
        (document, field, message) = (p.document, p.field, p.message)
    }

    init(json p: JSONValue) {
        func text(_ v: JSONValue?) -> String { if case .string(let s)? = v { return s }; return "" }
        (document, field, message) = (text(p["document"]), text(p["field"]), text(p["message"]))
    }
}

/// A document rejected inside an accepted bundle, and what happened to it.
public struct Rejected: Equatable, Sendable, CustomStringConvertible {
    /// The problems found in it.
    public let problems: [Problem]
    /// Its last good version stays in force.
    public let keptLastGood: Bool
    /// It said `"enabled": false`: the kill switch took effect anyway.
    public let killSwitch: Bool

    /// The problems on one line, `; `-separated, with what was kept.
    public var description: String {
        problems.map(\.description).joined(separator: "; ")
            + (killSwitch ? " (kill switch honoured)" : keptLastGood ? " (last good version kept)" : "")
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
    /// Documents rejected inside the accepted bundle.
    public let rejected: [Rejected]
    /// Things that load but are almost certainly mistakes.
    public let warnings: [Problem]

    /// Whether any variable was added, removed or changed.
    public var hasChanges: Bool { !(added.isEmpty && removed.isEmpty && changed.isEmpty) }

    init(_ r: TurnoutFFI.UpdateReport) {
        version = r.version
        added = r.added
        removed = r.removed
        changed = r.changed
        rejected = r.rejected.map { Rejected(problems: $0.problems.map(Problem.init), keptLastGood: $0.keptLastGood, killSwitch: $0.killSwitch) }
        warnings = r.warnings.map(Problem.init)
    }

    /// The report of a sync's `applied` notice (the core's JSON form).
    init(json: JSONValue) {
        func strings(_ v: JSONValue?) -> [String] {
            guard case .array(let a)? = v else { return [] }
            return a.compactMap { if case .string(let s) = $0 { return s }; return nil }
        }
        func list(_ v: JSONValue?) -> [JSONValue] {
            if case .array(let a)? = v { return a }
            return []
        }
        version = json["version"]?.int64Value
        added = strings(json["added"])
        removed = strings(json["removed"])
        changed = strings(json["changed"])
        rejected = list(json["rejected"]).map { r in
            Rejected(problems: list(r["problems"]).map(Problem.init(json:)),
                     keptLastGood: r["kept_last_good"] == .bool(true), killSwitch: r["kill_switch"] == .bool(true))
        }
        warnings = list(json["warnings"]).map(Problem.init(json:))
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
