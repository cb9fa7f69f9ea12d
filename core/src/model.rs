//! The compiled, immutable form of a config. Built by `config`, read by `eval`.
//!
//! Also what both of them read the same way: the lenient semver reading of
//! the `semver*` ops ([`parse_semver`]) and the bounds of a time-slice
//! variable ([`MAX_TIMESLICE_CHOICES`], [`MAX_TIMESLICE_PERIOD`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) use crate::facets::FacetKey;

use rustc_hash::{FxBuildHasher, FxHashSet};

use crate::value::Num;

/// A constraint operand, canonicalised at load time.
#[derive(Debug, Clone)]
pub(crate) struct Operand {
    pub canon: Box<str>,
    pub num: Option<Num>,
}

/// Semver comparison kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SemverOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Lenient semver parse: optional leading `v`, missing minor/patch read as 0.
/// The `semver*` operands are read with it at load, and facet values with it
/// when a `semver*` constraint is evaluated.
pub(crate) fn parse_semver(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let cut = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(cut);
    let parts = core.split('.').count();
    if core.is_empty() || parts >= 3 {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok()
}

/// A compiled operator with its pre-parsed value.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Eq(Operand),
    Ne(Operand),
    In(Arc<InList>),
    Nin(Arc<InList>),
    /// `None`: the value is not numeric, so the constraint is always false.
    Gt(Option<Num>),
    Ge(Option<Num>),
    Lt(Option<Num>),
    Le(Option<Num>),
    Fraction {
        p: f64,
        /// `utf8(salt) ++ 0x00` ([`crate::hash::salt_prefix`]).
        prefix: Box<[u8]>,
        /// The salt was written in the constraint. Otherwise the salt is the
        /// default of the document evaluating it (a segment's constraint is
        /// shared by documents with different defaults), and `prefix` is unused.
        explicit_salt: bool,
    },
    Semver(SemverOp, semver::Version),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    /// Shared by every expansion of a segment that holds it.
    Regex(Arc<regex_lite::Regex>),
}

/// The operands of `in` / `nin`. Lists longer than [`InList::INDEX_FROM`]
/// are also indexed, so a lookup costs the same for any length.
#[derive(Debug)]
pub(crate) struct InList {
    items: Vec<Operand>,
    index: Option<InIndex>,
}

/// Hash sets of an [`InList`]'s operands by kind: a facet value matches an
/// operand exactly when the linear scan `eq(v, o)` would (spec rule 3:
/// numeric equality when both sides are numeric, canonical strings otherwise).
#[derive(Debug, Default)]
struct InIndex {
    /// Canonical strings of the non-numeric operands.
    strings: FxHashSet<Box<str>>,
    ints: FxHashSet<i64>,
    /// Bits of the non-integral (or out of `i64` range) numeric operands.
    floats: FxHashSet<u64>,
}

impl InList {
    /// Lists of more operands than this are indexed.
    pub(crate) const INDEX_FROM: usize = 16;

    pub(crate) fn new(items: Vec<Operand>) -> InList {
        let index = (items.len() > Self::INDEX_FROM).then(|| {
            let mut ix = InIndex::default();
            for o in &items {
                match o.num {
                    None => {
                        ix.strings.insert(o.canon.clone());
                    }
                    Some(Num::Int(i)) => {
                        ix.ints.insert(i);
                    }
                    Some(Num::Float(f)) => {
                        ix.floats.insert(f.to_bits());
                    }
                }
            }
            ix
        });
        InList { items, index }
    }

    /// Whether `canon` / `num` (a facet's canonical string and number) equals an operand.
    #[inline]
    pub(crate) fn contains(&self, canon: &str, num: Option<Num>, eq: impl Fn(&Operand) -> bool) -> bool {
        let Some(ix) = &self.index else {
            return self.items.iter().any(eq);
        };
        match num {
            // A non-numeric value can only equal a non-numeric operand's text
            // (equal texts parse to the same number or to none).
            None => ix.strings.contains(canon),
            Some(Num::Int(i)) => {
                ix.ints.contains(&i) || (!ix.floats.is_empty() && ix.floats.contains(&(i as f64).to_bits()))
            }
            // `Num` holds integral values as `Int` below 2^63 in magnitude: a
            // `Float` equals an `Int` operand only at the edges of the range,
            // which the scan settles.
            Some(Num::Float(f)) => ix.floats.contains(&f.to_bits()) || (f.abs() >= 9.2e18 && self.items.iter().any(eq)),
        }
    }
}

/// A compiled constraint; `text` is a human-readable form for `--explain`.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub target: FacetKey,
    pub op: Op,
    /// Shared between equal constraints of one config.
    pub text: Arc<str>,
}

/// The constraints of a rule or an experiment: its segments' constraints (in
/// reference order), then its own. A segment is compiled once and every
/// reference shares it, so that references cost a pointer, not a copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Constraints {
    pub shared: Vec<Arc<[Constraint]>>,
    pub own: Vec<Constraint>,
}

impl Constraints {
    /// The groups in evaluation order: each shared segment, then the own constraints.
    #[inline]
    pub(crate) fn groups(&self) -> impl Iterator<Item = &[Constraint]> {
        self.shared.iter().map(|g| &**g).chain(std::iter::once(&*self.own))
    }
    /// How many constraints are evaluated (references expanded).
    pub(crate) fn len(&self) -> usize {
        self.shared.iter().map(|g| g.len()).sum::<usize>() + self.own.len()
    }
}

/// A variable value with its typed views computed once.
#[derive(Debug, Clone)]
pub(crate) struct CValue {
    pub json: serde_json::Value,
    /// The value's compact JSON text, shared by every event that records it:
    /// exactly `json.to_string()` (object keys sorted), so that event bytes
    /// are the same on every platform.
    pub text: Arc<str>,
    pub int: Option<i64>,
    pub float: Option<f64>,
    pub boolean: Option<bool>,
    pub string: Option<Arc<str>>,
}

impl CValue {
    /// A value; `intern` may share its text and string with equal ones
    /// (loading passes an interner, so that repeated values are stored once).
    pub(crate) fn new(json: serde_json::Value, mut intern: impl FnMut(&str) -> Arc<str>) -> CValue {
        thread_local! {
            /// Reused for every value's text, so that a load allocates each text once.
            static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let int = json_int(&json);
        let float = json.as_f64();
        let boolean = json.as_bool();
        let string = json.as_str().map(&mut intern);
        // `serde_json::to_writer` is what `Value`'s `Display` (and so
        // `to_string`) writes: compact, object keys sorted.
        let text = TEXT.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                match serde_json::to_writer(&mut *buf, &json) {
                    Ok(()) => std::str::from_utf8(&buf).ok().map(&mut intern),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        });
        let text = text.unwrap_or_else(|| intern(&json.to_string()));
        CValue { json, text, int, float, boolean, string }
    }
}

/// A JSON value as `i64`: integers, and integral floats with |x| < 2^63.
pub(crate) fn json_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| match n.as_f64().and_then(Num::from_f64) {
            Some(Num::Int(i)) => Some(i),
            _ => None,
        }),
        _ => None,
    }
}

/// One rule of a rollout document.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub value: CValue,
    pub label: Option<Box<str>>,
    pub constraints: Constraints,
}

/// A compiled rollout document.
#[derive(Debug)]
pub(crate) struct Rollout {
    /// Shared with the variable's [`VarPlan`] and the name index.
    pub variable: Arc<str>,
    pub rules: Vec<Rule>,
    pub default: Option<CValue>,
    pub enabled: bool,
    pub fingerprint: u64,
    /// `utf8(variable) ++ 0x00`: the default salt of its `/` constraints.
    pub salt: Box<[u8]>,
}

/// The largest number of choices a time-slice variable may have.
pub const MAX_TIMESLICE_CHOICES: usize = 256;
/// The largest total period of a time-slice variable, in seconds (about 31,700 years).
pub const MAX_TIMESLICE_PERIOD: u64 = 1_000_000_000_000;

/// Assignment strategy of an experiment variable.
#[derive(Debug, Clone)]
pub(crate) enum Strategy {
    /// Cumulative thresholds `(w0+..+wi)/W`.
    Weighted { thresholds: Vec<f64> },
    /// Spans in seconds and their sum `P`.
    TimeSlice { spans: Vec<u64>, period: u64 },
}

/// One variable of an experiment.
#[derive(Debug, Clone)]
pub(crate) struct ExpVariable {
    /// Shared with the variable's [`VarPlan`] and the name index.
    pub name: Arc<str>,
    /// `utf8(salt) ++ 0x00`, built once.
    pub prefix: Box<[u8]>,
    pub facets: Vec<FacetKey>,
    pub strategy: Strategy,
    pub choices: Vec<CValue>,
}

/// Which unit decides the slot.
#[derive(Debug, Clone)]
pub(crate) enum SlotUnit {
    Facet(FacetKey),
    /// Time-only experiment: the window index of the first variable.
    Window,
}

/// Compiled slotting: the unit is in when `lo <= bucket(salt, unit) < hi`.
#[derive(Debug, Clone)]
pub(crate) struct Slotting {
    pub lo: f64,
    pub hi: f64,
    pub unit: SlotUnit,
    pub salt: Box<str>,
    /// `utf8(salt) ++ 0x00`, built once.
    pub prefix: Box<[u8]>,
}

/// A compiled experiment document.
#[derive(Debug)]
pub(crate) struct Experiment {
    pub name: Arc<str>,
    pub domain: Option<Box<str>>,
    pub state: Box<str>,
    pub variables: Vec<ExpVariable>,
    pub constraints: Constraints,
    /// `utf8(name) ++ 0x00`: the default salt of its `/` constraints.
    pub salt: Box<[u8]>,
    pub slotting: Option<Slotting>,
    pub fingerprint: u64,
}

impl Experiment {
    pub(crate) fn running(&self) -> bool {
        &*self.state == "RUNNING"
    }
}

/// Everything that can decide one variable, in resolution order.
#[derive(Debug, Clone)]
pub(crate) struct VarPlan {
    pub name: Arc<str>,
    /// (experiment index, variable index inside it), in bundle order.
    pub experiments: Vec<(u32, u32)>,
    pub rollout: Option<u32>,
    /// The variable's document was rejected and had no last good version.
    pub broken: bool,
}

/// An immutable compiled config.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub version: Option<i64>,
    pub rollouts: Vec<Arc<Rollout>>,
    pub experiments: Vec<Arc<Experiment>>,
    pub vars: Vec<VarPlan>,
    pub index: HashMap<Arc<str>, u32, FxBuildHasher>,
}

impl Compiled {
    pub(crate) fn var_index(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// A per-variable signature used to report what changed between configs.
    pub(crate) fn signature(&self, plan: &VarPlan) -> Vec<u64> {
        let mut sig = Vec::with_capacity(plan.experiments.len() + 2);
        sig.push(u64::from(plan.broken));
        if let Some(r) = plan.rollout {
            sig.push(self.rollouts[r as usize].fingerprint);
        }
        for (e, _) in &plan.experiments {
            sig.push(self.experiments[*e as usize].fingerprint);
        }
        sig
    }
}
