import Foundation
import TurnoutFFI

/// One facet value. Integers are exact 64-bit (ids above 2^53 bucket exactly
/// as on every other platform); an integral double buckets like the integer.
/// Literals work: `["pax": 7, "country": "SG", "beta": true]`.
public enum FacetValue: Equatable, Hashable, Sendable,
    ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral
{
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    var native: TurnoutFFI.FacetValue {
        switch self {
        case .string(let s): return .str(value: s)
        case .int(let i): return .int(value: i)
        case .double(let d): return .float(value: d)
        case .bool(let b): return .bool(value: b)
        }
    }
}

/// The facets of a unit or request, built in the style of Grab's SDK:
/// `Facets().passenger(123).city(6)`. A value type: every setter returns a
/// new set. A dictionary literal works too: `["pax": 123, "city": 6]`.
public struct Facets: Equatable, Hashable, Sendable, ExpressibleByDictionaryLiteral {
    /// The facets by name.
    public private(set) var values: [String: FacetValue]

    /// An empty set.
    public init() { values = [:] }

    /// A set from a dictionary.
    public init(_ values: [String: FacetValue]) { self.values = values }

    public init(dictionaryLiteral elements: (String, FacetValue)...) {
        var v: [String: FacetValue] = [:]
        for (name, value) in elements { v[name] = value }
        values = v
    }

    /// Sets `name` (`nil` removes it).
    public func set(_ name: String, _ value: FacetValue?) -> Facets {
        var copy = self
        copy.values[name] = value
        return copy
    }

    /// Sets `pax`, the passenger id.
    public func passenger(_ id: Int64) -> Facets { set("pax", .int(id)) }
    /// Sets `drv`, the driver id.
    public func driver(_ id: Int64) -> Facets { set("drv", .int(id)) }
    /// Sets `svc`, the service (vehicle type) id.
    public func service(_ id: Int64) -> Facets { set("svc", .int(id)) }
    /// Sets `city`, the city id.
    public func city(_ id: Int64) -> Facets { set("city", .int(id)) }
    /// Sets `ts`, unix time in seconds (otherwise the client's clock is used).
    public func ts(_ unixSeconds: Int64) -> Facets { set("ts", .int(unixSeconds)) }
    /// Sets `country`.
    public func country(_ code: String) -> Facets { set("country", .string(code)) }
    /// Sets `booking`, the booking code.
    public func booking(_ code: String) -> Facets { set("booking", .string(code)) }
    /// Sets `loc`, a geohash or coordinates.
    public func location(_ loc: String) -> Facets { set("loc", .string(loc)) }
    /// Sets `session`, the session id.
    public func session(_ id: String) -> Facets { set("session", .string(id)) }
    /// Sets `req`, the request id.
    public func request(_ id: String) -> Facets { set("req", .string(id)) }
    /// Sets `device`, the device id.
    public func device(_ id: String) -> Facets { set("device", .string(id)) }
    /// Sets `tag`, a user-defined tag.
    public func tag(_ tag: String) -> Facets { set("tag", .string(tag)) }

    /// The value of `name`, if set.
    public subscript(name: String) -> FacetValue? { values[name] }

    /// The facets in the generated bindings' form.
    var native: [String: TurnoutFFI.FacetValue] { values.mapValues { $0.native } }
}
