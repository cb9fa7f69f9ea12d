//! Facet values, their canonical unit strings (spec rule 1) and numbers.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::decimal::DecBuf;

/// A number as the engine compares it: exact integers stay integers.
///
/// Two `Int`s compare exactly (ids above 2^53 stay distinct); any other pair
/// compares as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer that fits `i64` (including integral floats with |x| < 2^63).
    Int(i64),
    /// Any other finite float.
    Float(f64),
}

const TWO_63: f64 = 9_223_372_036_854_775_808.0;

impl Num {
    /// Normalises a finite float: integral values with |x| < 2^63 become `Int`.
    /// Returns `None` for NaN and infinities.
    pub fn from_f64(x: f64) -> Option<Num> {
        if !x.is_finite() {
            return None;
        }
        if x.fract() == 0.0 && x.abs() < TWO_63 {
            Some(Num::Int(x as i64))
        } else {
            Some(Num::Float(x))
        }
    }

    /// Parses a string as a number: `i64::from_str` first (exact), then
    /// `f64::from_str` (finite results only), then normalised by [`Num::from_f64`].
    pub fn parse(s: &str) -> Option<Num> {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Num::Int(i));
        }
        match s.parse::<f64>() {
            Ok(x) => Num::from_f64(x),
            Err(_) => None,
        }
    }

    /// The value as `f64` (may round for integers above 2^53).
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Numeric equality: exact for two integers, `f64` otherwise.
    pub fn num_eq(self, other: Num) -> bool {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            _ => self.as_f64() == other.as_f64(),
        }
    }

    /// Numeric ordering: exact for two integers, `f64` otherwise.
    pub fn num_cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

/// A facet value as a caller provides it.
#[derive(Debug, Clone, PartialEq)]
pub enum FacetValue {
    /// A string, used as is.
    Str(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl FacetValue {
    /// The canonical unit string of spec rule 1.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        self.write_canonical(&mut s);
        s
    }

    fn write_canonical(&self, out: &mut String) {
        match self {
            FacetValue::Str(s) => out.push_str(s),
            FacetValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            FacetValue::Int(i) => out.push_str(DecBuf::new(*i).as_str()),
            FacetValue::Float(f) => write_float(*f, out),
        }
    }

    /// The value as a number, if it is one (strings are parsed; booleans are not numbers).
    pub fn num(&self) -> Option<Num> {
        match self {
            FacetValue::Str(s) => Num::parse(s),
            FacetValue::Int(i) => Some(Num::Int(*i)),
            FacetValue::Float(f) => Num::from_f64(*f),
            FacetValue::Bool(_) => None,
        }
    }

    /// Converts a JSON value; `null`, arrays and objects are not facet values.
    /// Integers above `i64::MAX` become their decimal string (same unit, same number).
    pub fn from_json(v: &serde_json::Value) -> Option<FacetValue> {
        match v {
            serde_json::Value::String(s) => Some(FacetValue::Str(s.clone())),
            serde_json::Value::Bool(b) => Some(FacetValue::Bool(*b)),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(FacetValue::Int(i))
                } else if let Some(u) = n.as_u64() {
                    Some(FacetValue::Str(u.to_string()))
                } else {
                    n.as_f64().map(FacetValue::Float)
                }
            }
            _ => None,
        }
    }
}

/// Writes the canonical string of a float: integral finite values with
/// |x| < 2^63 as the integer, everything else as Rust's shortest round-trip
/// `Display` (which never uses exponent notation; NaN -> `NaN`, infinities -> `inf`/`-inf`).
pub(crate) fn write_float(f: f64, out: &mut String) {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < TWO_63 {
        out.push_str(DecBuf::new(f as i64).as_str());
    } else {
        let _ = write!(out, "{f}");
    }
}

impl From<&str> for FacetValue {
    fn from(s: &str) -> Self {
        FacetValue::Str(s.to_owned())
    }
}
impl From<String> for FacetValue {
    fn from(s: String) -> Self {
        FacetValue::Str(s)
    }
}
impl From<i64> for FacetValue {
    fn from(i: i64) -> Self {
        FacetValue::Int(i)
    }
}
impl From<i32> for FacetValue {
    fn from(i: i32) -> Self {
        FacetValue::Int(i64::from(i))
    }
}
impl From<u32> for FacetValue {
    fn from(i: u32) -> Self {
        FacetValue::Int(i64::from(i))
    }
}
impl From<f64> for FacetValue {
    fn from(f: f64) -> Self {
        FacetValue::Float(f)
    }
}
impl From<bool> for FacetValue {
    fn from(b: bool) -> Self {
        FacetValue::Bool(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strings() {
        assert_eq!(FacetValue::Str("Jakarta".into()).canonical(), "Jakarta");
        assert_eq!(FacetValue::Bool(true).canonical(), "true");
        assert_eq!(FacetValue::Int(-42).canonical(), "-42");
        assert_eq!(FacetValue::Float(6.0).canonical(), "6");
        assert_eq!(FacetValue::Float(-0.0).canonical(), "0");
        assert_eq!(FacetValue::Float(0.25).canonical(), "0.25");
        assert_eq!(FacetValue::Float(0.1 + 0.2).canonical(), "0.30000000000000004");
        assert_eq!(FacetValue::Float(1e21).canonical(), "1000000000000000000000");
        assert_eq!(FacetValue::Float(9.2e18).canonical(), "9200000000000000000");
        assert_eq!(FacetValue::Float(f64::NAN).canonical(), "NaN");
        assert_eq!(FacetValue::Float(f64::NEG_INFINITY).canonical(), "-inf");
    }

    #[test]
    fn numbers() {
        assert_eq!(Num::parse("6"), Some(Num::Int(6)));
        assert_eq!(Num::parse("6.0"), Some(Num::Int(6)));
        assert_eq!(Num::parse("0.25"), Some(Num::Float(0.25)));
        assert_eq!(Num::parse("inf"), None);
        assert_eq!(Num::parse("abc"), None);
        assert_eq!(Num::parse("9007199254740993"), Some(Num::Int(9007199254740993)));
        assert!(!Num::Int(9007199254740993).num_eq(Num::Int(9007199254740992)));
        assert!(Num::Int(6).num_eq(Num::Float(6.0)));
        assert_eq!(FacetValue::Bool(true).num(), None);
    }

    #[test]
    fn json_big_unsigned_keeps_digits() {
        let v: serde_json::Value = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(FacetValue::from_json(&v).unwrap().canonical(), "18446744073709551615");
    }
}
