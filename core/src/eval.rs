//! Evaluation: compiled config + facets -> decision (spec rules 3 to 7).
//! Every decision of the client is resolved here: [`resolve`] for one
//! variable, [`resolve_experiments`] for `Client::get_variables`.
//!
//! The hot path allocates nothing: facets are already canonical, hash keys are
//! assembled in a stack buffer, and results borrow from the compiled config.
//! A [`Tracer`] type parameter lets `--explain` reuse this exact code; the
//! no-op tracer compiles away.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::sync::Arc;

use crate::clock::Clock;
use crate::decimal::DecBuf;
use crate::decision::{Decision, ErrorCode, Reason, Source};
use crate::facets::{names, FacetKey, Facets};
use crate::hash::{hash_to_unit_interval, prefixed_hash, KeyBuf, SplitMix64, UNIT_SEP};
use crate::model::*;
use crate::value::Num;

/// A facet as evaluation sees it.
#[derive(Clone, Copy)]
pub(crate) struct FacetView<'a> {
    pub canon: &'a str,
    pub num: Option<Num>,
}

struct Ts {
    secs: i64,
    text: DecBuf,
}

/// The facets of one evaluation plus the clock for a missing `ts`.
pub(crate) struct Env<'a> {
    facets: &'a Facets,
    clock: &'a dyn Clock,
    ts: OnceCell<Ts>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(facets: &'a Facets, clock: &'a dyn Clock) -> Self {
        Env { facets, clock, ts: OnceCell::new() }
    }

    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<FacetView<'_>> {
        match self.facets.get(key) {
            Some(f) => Some(FacetView { canon: f.canonical(), num: f.num() }),
            None => self.clock_ts(key),
        }
    }

    /// [`Env::get`] for a name prepared at load time (the hot path).
    #[inline(always)]
    pub(crate) fn get_key(&self, key: &FacetKey) -> Option<FacetView<'_>> {
        match self.facets.get_key(key) {
            Some(f) => Some(FacetView { canon: f.canonical(), num: f.num() }),
            None => self.clock_ts(key),
        }
    }

    /// `ts` from the clock when the caller gave none (spec rule 7).
    fn clock_ts(&self, key: &str) -> Option<FacetView<'_>> {
        if key == names::TS {
            let ts = self.ts.get_or_init(|| {
                let secs = self.clock.now_ms().div_euclid(1000);
                Ts { secs, text: DecBuf::new(secs) }
            });
            return Some(FacetView { canon: ts.text.as_str(), num: Some(Num::Int(ts.secs)) });
        }
        None
    }

    /// The `ts` facet floored to whole seconds, if present and numeric.
    fn ts_secs(&self) -> Option<i64> {
        match self.get(names::TS)?.num? {
            Num::Int(i) => Some(i),
            Num::Float(f) => {
                let fl = f.floor();
                if fl.abs() < 9.2e18 {
                    Some(fl as i64)
                } else {
                    None
                }
            }
        }
    }
}

/// Receives explanations of evaluation steps. Messages are built lazily.
pub(crate) trait Tracer {
    /// Records one step; `msg` is only called by tracers that keep messages.
    fn on(&mut self, _msg: impl FnOnce() -> String) {}
}

/// The tracer of the hot path: keeps nothing.
pub(crate) struct NoTrace;
impl Tracer for NoTrace {}

/// A tracer that keeps every message (for `--explain`).
#[derive(Default)]
pub(crate) struct Steps(pub Vec<String>);
impl Tracer for Steps {
    fn on(&mut self, msg: impl FnOnce() -> String) {
        self.0.push(msg());
    }
}

/// A decision that borrows from the compiled config.
#[derive(Clone, Copy)]
pub(crate) struct Resolved<'c> {
    /// The variable's shared name, when the config defines it.
    pub var: Option<&'c Arc<str>>,
    pub value: Option<&'c CValue>,
    pub label: Option<&'c str>,
    pub source: Source,
    pub experiment: Option<&'c Arc<str>>,
    pub rule: Option<u32>,
    pub choice: Option<u32>,
    pub reason: Reason,
    pub error: Option<ErrorCode>,
}

impl<'c> Resolved<'c> {
    fn fallback(reason: Reason, error: Option<ErrorCode>) -> Self {
        Resolved {
            var: None,
            value: None,
            label: None,
            source: Source::Fallback,
            experiment: None,
            rule: None,
            choice: None,
            reason,
            error,
        }
    }

    pub(crate) fn to_decision(self, variable: &str) -> Decision {
        Decision {
            variable: variable.to_string(),
            value: self.value.map(|v| v.json.clone()),
            label: self.label.map(str::to_string),
            source: self.source,
            experiment: self.experiment.map(|e| e.to_string()),
            rule: self.rule,
            choice: self.choice,
            reason: self.reason,
            error: self.error,
        }
    }
}

fn eq(v: FacetView<'_>, o: &Operand) -> bool {
    match (v.num, o.num) {
        (Some(a), Some(b)) => a.num_eq(b),
        _ => v.canon == &*o.canon,
    }
}

fn cmp(v: FacetView<'_>, n: Option<Num>) -> Option<Ordering> {
    v.num.zip(n).and_then(|(x, n)| x.num_cmp(n))
}

/// Whether a constraint holds (spec rule 3). An absent facet makes it false.
#[inline]
pub(crate) fn holds(c: &Constraint, salt: &[u8], env: &Env<'_>) -> bool {
    let Some(v) = env.get_key(&c.target) else {
        return false;
    };
    match &c.op {
        Op::Eq(o) => eq(v, o),
        Op::Ne(o) => !eq(v, o),
        Op::In(list) => list.contains(v.canon, v.num, |o| eq(v, o)),
        Op::Nin(list) => !list.contains(v.canon, v.num, |o| eq(v, o)),
        Op::Gt(n) => cmp(v, *n) == Some(Ordering::Greater),
        Op::Ge(n) => matches!(cmp(v, *n), Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt(n) => cmp(v, *n) == Some(Ordering::Less),
        Op::Le(n) => matches!(cmp(v, *n), Some(Ordering::Less | Ordering::Equal)),
        Op::Fraction { p, prefix, explicit_salt } => {
            let prefix = if *explicit_salt { prefix } else { salt };
            hash_to_unit_interval(prefixed_hash(prefix, v.canon.as_bytes())) < *p
        }
        Op::Semver(op, want) => match parse_semver(v.canon) {
            None => false,
            Some(have) => {
                // Precedence ignores build metadata (SemVer 2.0.0 section 10).
                let o = have.cmp_precedence(want);
                match op {
                    SemverOp::Eq => o == Ordering::Equal,
                    SemverOp::Ne => o != Ordering::Equal,
                    SemverOp::Gt => o == Ordering::Greater,
                    SemverOp::Ge => o != Ordering::Less,
                    SemverOp::Lt => o == Ordering::Less,
                    SemverOp::Le => o != Ordering::Greater,
                }
            }
        },
        Op::Prefix(s) => v.canon.starts_with(&**s),
        Op::Suffix(s) => v.canon.ends_with(&**s),
        Op::Contains(s) => v.canon.contains(&**s),
        // Matching costs (program size x input length): longer values do not match.
        Op::Regex(r) => v.canon.len() <= crate::limits::MAX_REGEX_INPUT_BYTES && r.is_match(v.canon),
    }
}

/// Whether every constraint holds; `salt` is the document's default salt prefix.
fn all_hold<T: Tracer>(cs: &Constraints, salt: &[u8], env: &Env<'_>, t: &mut T, what: &dyn Fn() -> String) -> bool {
    let mut i = 0usize;
    for group in cs.groups() {
        for c in group {
            if !holds(c, salt, env) {
                t.on(|| {
                    let have = match env.get(&c.target) {
                        Some(v) => format!("{} is {:?}", c.target, v.canon),
                        None => format!("{} is absent", c.target),
                    };
                    format!("{}: constraint {i} `{}` does not hold ({have})", what(), c.text)
                });
                return false;
            }
            i += 1;
        }
    }
    true
}

/// Window index `k` and offset `r` of `ts` in periods of `period` seconds.
fn window(env: &Env<'_>, period: u64) -> Option<(i64, u64)> {
    let ts = env.ts_secs()?;
    let p = i64::try_from(period).ok().filter(|p| *p > 0)?;
    Some((ts.div_euclid(p), ts.rem_euclid(p) as u64))
}

/// Pushes the canonical strings of `facets` (skipping `skip`), joined by 0x1F.
/// Returns how many were pushed, or `None` when one is absent.
fn push_unit(kb: &mut KeyBuf, facets: &[FacetKey], skip: Option<&str>, env: &Env<'_>) -> Option<usize> {
    let mut n = 0;
    for f in facets {
        if Some(&**f) == skip {
            continue;
        }
        let v = env.get_key(f)?;
        if n > 0 {
            kb.push_byte(UNIT_SEP);
        }
        kb.push(v.canon.as_bytes());
        n += 1;
    }
    Some(n)
}

/// Assigns a choice for one experiment variable, or `None` when its unit is absent.
fn assign(v: &ExpVariable, env: &Env<'_>) -> Option<u32> {
    let keybuf = || {
        let mut kb = KeyBuf::new();
        kb.push(&v.prefix);
        kb
    };
    match &v.strategy {
        Strategy::Weighted { thresholds } => {
            let h = match &*v.facets {
                // The common single-facet unit: no key buffer to assemble.
                [f] => prefixed_hash(&v.prefix, env.get_key(f)?.canon.as_bytes()),
                _ => {
                    let mut kb = keybuf();
                    push_unit(&mut kb, &v.facets, None, env)?;
                    kb.hash()
                }
            };
            let b = hash_to_unit_interval(h);
            let i = thresholds.iter().position(|t| b < *t).unwrap_or(thresholds.len().saturating_sub(1));
            Some(i as u32)
        }
        Strategy::TimeSlice { spans, period } => {
            let (k, r) = window(env, *period)?;
            let mut kb = keybuf();
            let others = push_unit(&mut kb, &v.facets, Some(names::TS), env)?;
            if others > 0 {
                kb.push_byte(UNIT_SEP);
            }
            kb.push(DecBuf::new(k).as_str().as_bytes());
            let mut rng = SplitMix64::new(kb.hash());
            let n = spans.len().min(MAX_TIMESLICE_CHOICES);
            let mut idx = [0u16; MAX_TIMESLICE_CHOICES];
            for (i, slot) in idx.iter_mut().enumerate().take(n) {
                *slot = i as u16;
            }
            for i in (1..n).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                idx.swap(i, j);
            }
            let mut acc = 0u64;
            for &c in &idx[..n] {
                acc += spans[c as usize];
                if r < acc {
                    return Some(u32::from(c));
                }
            }
            None
        }
    }
}

fn in_slot<T: Tracer>(e: &Experiment, env: &Env<'_>, t: &mut T) -> bool {
    let Some(s) = &e.slotting else { return true };
    let h = match &s.unit {
        SlotUnit::Facet(f) => match env.get_key(f) {
            Some(v) => prefixed_hash(&s.prefix, v.canon.as_bytes()),
            None => {
                t.on(|| format!("experiment `{}`: slot facet `{f}` is absent", e.name));
                return false;
            }
        },
        SlotUnit::Window => {
            let period = match e.variables.first().map(|v| &v.strategy) {
                Some(Strategy::TimeSlice { period, .. }) => *period,
                _ => 0,
            };
            match window(env, period) {
                Some((k, _)) => prefixed_hash(&s.prefix, DecBuf::new(k).as_str().as_bytes()),
                None => {
                    t.on(|| format!("experiment `{}`: no usable `ts` for the slot unit", e.name));
                    return false;
                }
            }
        }
    };
    let b = hash_to_unit_interval(h);
    let inside = s.lo <= b && b < s.hi;
    if !inside {
        t.on(|| format!("experiment `{}`: slot bucket {b:.6} is outside [{}, {})", e.name, s.lo, s.hi));
    }
    inside
}

/// Whether an experiment applies to these facets (state, constraints, slot).
fn experiment_applies<T: Tracer>(e: &Experiment, env: &Env<'_>, t: &mut T) -> bool {
    if !e.running() {
        t.on(|| format!("experiment `{}`: state is {:?}, not \"RUNNING\"", e.name, e.state));
        return false;
    }
    all_hold(&e.constraints, &e.salt, env, t, &|| format!("experiment `{}`", e.name)) && in_slot(e, env, t)
}

fn experiment_decides<'c, T: Tracer>(e: &'c Experiment, vi: u32, env: &Env<'_>, t: &mut T) -> Option<Resolved<'c>> {
    let var = e.variables.get(vi as usize)?;
    if !experiment_applies(e, env, t) {
        return None;
    }
    split(e, var, env, t)
}

/// The choice experiment `e` assigns to its variable `var`, as an experiment
/// decision, or `None` when the unit is absent (the experiment does not apply).
#[inline]
fn split<'c, T: Tracer>(e: &'c Experiment, var: &'c ExpVariable, env: &Env<'_>, t: &mut T) -> Option<Resolved<'c>> {
    match assign(var, env) {
        Some(choice) => {
            t.on(|| format!("experiment `{}`: assigned choice {choice}", e.name));
            Some(Resolved {
                var: None,
                value: var.choices.get(choice as usize),
                label: None,
                source: Source::Experiment,
                experiment: Some(&e.name),
                rule: None,
                choice: Some(choice),
                reason: Reason::Split,
                error: None,
            })
        }
        None => {
            t.on(|| {
                format!(
                    "experiment `{}`: the unit ({}) is absent, so it does not apply",
                    e.name,
                    var.facets.iter().map(|f| &**f).collect::<Vec<_>>().join(", ")
                )
            });
            None
        }
    }
}

fn rollout_decides<'c, T: Tracer>(r: &'c Rollout, env: &Env<'_>, t: &mut T) -> Resolved<'c> {
    for (i, rule) in r.rules.iter().enumerate() {
        if all_hold(&rule.constraints, &r.salt, env, t, &|| format!("rule {i}")) {
            t.on(|| format!("rule {i}: all {} constraints hold", rule.constraints.len()));
            return Resolved {
                var: None,
                value: Some(&rule.value),
                label: rule.label.as_deref(),
                source: Source::Rollout,
                experiment: None,
                rule: Some(i as u32),
                choice: None,
                reason: Reason::TargetingMatch,
                error: None,
            };
        }
    }
    match &r.default {
        Some(d) => {
            t.on(|| "no rule matched: the document's default applies".to_string());
            Resolved {
                var: None,
                value: Some(d),
                label: None,
                source: Source::Default,
                experiment: None,
                rule: None,
                choice: None,
                reason: Reason::Default,
                error: None,
            }
        }
        None => {
            t.on(|| "no rule matched and the document has no default: fallback".to_string());
            Resolved::fallback(Reason::Default, None)
        }
    }
}

/// Resolves a variable (spec rule 6).
pub(crate) fn resolve<'c, T: Tracer>(c: &'c Compiled, var: Option<u32>, env: &Env<'_>, t: &mut T) -> Resolved<'c> {
    let Some(plan) = var.and_then(|i| c.vars.get(i as usize)) else {
        t.on(|| "no document defines this variable".to_string());
        return Resolved::fallback(Reason::Error, Some(ErrorCode::FlagNotFound));
    };
    if let Some(l) = env.facets.limit_error() {
        t.on(|| format!("the context is invalid ({l}): the caller's default applies"));
        return Resolved {
            var: Some(&plan.name),
            ..Resolved::fallback(Reason::Error, Some(ErrorCode::InvalidContext))
        };
    }
    Resolved { var: Some(&plan.name), ..resolve_plan(c, plan, env, t) }
}

/// The decisions of `Client::get_variables` (spec section 9): for every
/// experiment named `name`, or in domain `name`, that applies, every variable
/// it assigns whose unit is present, as experiment decisions, each with its
/// variable's name; the first experiment wins per variable. Rollout documents
/// are not consulted except for their kill switch: a variable switched off
/// is assigned nowhere, so it is left out. Facets over a limit get none.
pub(crate) fn resolve_experiments<'c, T: Tracer>(
    c: &'c Compiled,
    name: &str,
    env: &Env<'_>,
    t: &mut T,
) -> Vec<(&'c str, Resolved<'c>)> {
    let mut out: Vec<(&'c str, Resolved<'c>)> = Vec::new();
    if let Some(l) = env.facets.limit_error() {
        t.on(|| format!("the context is invalid ({l}): no experiment is consulted"));
        return out;
    }
    for e in &c.experiments {
        if &*e.name != name && e.domain.as_deref() != Some(name) {
            continue;
        }
        if !experiment_applies(e, env, t) {
            continue;
        }
        for v in &e.variables {
            if out.iter().any(|(n, _)| *n == &*v.name) {
                continue;
            }
            let plan = c.var_index(&v.name).and_then(|i| c.vars.get(i as usize));
            if plan.and_then(|p| p.rollout).and_then(|r| c.rollouts.get(r as usize)).is_some_and(|r| !r.enabled) {
                t.on(|| format!("`{}`: the rollout document has \"enabled\": false (kill switch)", v.name));
                continue; // killed: not assigned anywhere
            }
            if let Some(r) = split(e, v, env, t) {
                out.push((&v.name, Resolved { var: plan.map(|p| &p.name), ..r }));
            }
        }
    }
    out
}

fn resolve_plan<'c, T: Tracer>(c: &'c Compiled, plan: &'c VarPlan, env: &Env<'_>, t: &mut T) -> Resolved<'c> {
    let rollout = plan.rollout.and_then(|r| c.rollouts.get(r as usize));
    if let Some(r) = rollout {
        if !r.enabled {
            t.on(|| "the rollout document has \"enabled\": false (kill switch)".to_string());
            return Resolved::fallback(Reason::Disabled, None);
        }
    }
    for &(ei, vi) in &plan.experiments {
        if let Some(e) = c.experiments.get(ei as usize) {
            if let Some(r) = experiment_decides(e, vi, env, t) {
                return r;
            }
        }
    }
    match rollout {
        Some(r) => rollout_decides(r, env, t),
        None if plan.broken => {
            t.on(|| "the variable's document was rejected and has no last good version".to_string());
            Resolved::fallback(Reason::Error, Some(ErrorCode::ParseError))
        }
        None => {
            t.on(|| "no experiment applied and there is no rollout document: fallback".to_string());
            Resolved::fallback(Reason::Default, None)
        }
    }
}
