//! Loading a config bundle: JSON -> validated, compiled [`Compiled`].
//!
//! Every problem is collected with its document and field path. Problems in
//! one document do not stop the others from loading: see [`compile`] for the
//! isolation rule.
//!
//! Loading is on the update path of every host, so it is built to be cheap
//! for large bundles (`load/10k_variables` in `benches/engine.rs`):
//!
//! - The bytes are parsed once into a flat [`Tape`] of tokens whose strings
//!   borrow from the input, instead of a `serde_json::Value` tree (which
//!   allocates every key, string, array and object). The tape is filled by
//!   the same `serde_json` parser calls that build a `Value` (every value
//!   through `deserialize_any`, with its depth limit), so exactly the same
//!   inputs are accepted, with exactly the same error messages.
//! - Documents are compiled straight from the tape. A value is turned into a
//!   `serde_json::Value` only where the compiled model keeps one
//!   ([`CValue`](crate::model::CValue)) or where an error message prints it.
//! - Field paths and document labels are only formatted when a problem is
//!   reported.
//! - Value texts, constraint texts and names are shared ([`Strings`]): a big
//!   bundle repeats the same few many times.
//! - A document's fingerprint is hashed from its tokens ([`fingerprint()`]),
//!   not from a re-serialised `Value`.
//!
//! The modules, in the order a load uses them:
//!
//! - [`tape`]: the JSON reader (the token tape, with the input limits) and
//!   [`J`], the view of a value on it.
//! - [`problems`]: field paths, document labels and the [`Sink`] that
//!   collects a document's problems and warnings.
//! - [`strings`]: the load's shared strings and its expansion budget.
//! - [`fields`]: the fields every document reads the same way (schema,
//!   integers, names, values).
//! - [`constraints`]: one constraint, its operand parsed at load.
//! - [`segments`]: segments, compiled once and shared, and the constraint
//!   list of a rule or an experiment with its segment references.
//! - [`rollout`] and [`experiment`]: the two kinds of document.
//! - [`fingerprint`](mod@fingerprint): a document's content hash, which
//!   decides whether an update changed it.
//! - This module: the public surface ([`Isolation`], [`Rejected`],
//!   [`SCHEMA_VERSION`]), splitting the bundle, the bundle compile with
//!   per-document isolation, the bundle-level checks (duplicate documents,
//!   slot units and overlaps) and the variable index.

mod constraints;
mod experiment;
mod fields;
mod fingerprint;
mod problems;
mod rollout;
mod segments;
mod strings;
mod tape;

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::error::{ConfigError, Problem};
use crate::limits::{expanded_constraints_budget, Limit, LimitError, MAX_EXPERIMENTS_PER_DOMAIN};
use crate::model::{Compiled, Experiment, Rollout, SlotUnit, Slotting, Strategy, VarPlan};
use experiment::{compile_experiment, experiment_key};
pub use fields::SCHEMA_VERSION;
use fields::{check_schema, get_int};
use fingerprint::fingerprint;
use problems::{bundle_problem, Label, Sink};
use rollout::{compile_rollout, rollout_key};
use segments::compile_segments;
use strings::Strings;
pub(crate) use tape::Tape;
use tape::{Elems, FillError, J};

/// How a rejected document is handled when the rest of the bundle is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// A broken document keeps its last good version (or, with none, its
    /// variable resolves to fallback with `PARSE_ERROR`); the others update.
    #[default]
    PerDocument,
    /// Any problem rejects the whole update.
    Strict,
}

/// A rejected document and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The problems found in it.
    pub problems: Vec<Problem>,
    /// `true` when its last good version stays in force.
    pub kept_last_good: bool,
    /// `true` when the document said `"enabled": false`: the kill switch took
    /// effect although the rest of the document was rejected.
    pub kill_switch: bool,
}

/// The result of compiling a bundle against the previous config.
pub(crate) struct Outcome {
    pub compiled: Compiled,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<Problem>,
}

/// Parses bundle bytes, with a clear error for non-UTF-8 or bad JSON (the
/// same error, word for word, as `serde_json::from_slice::<Value>` gives).
/// The result borrows its strings from `bytes`.
pub(crate) fn parse_json(bytes: &[u8], max_bytes: usize) -> Result<Tape<'_>, ConfigError> {
    if bytes.len() > max_bytes {
        return Err(ConfigError::Limit(LimitError::new(Limit::ConfigBytes, max_bytes, bytes.len())));
    }
    Tape::parse(bytes).map_err(|e| match e {
        FillError::Json(e) => ConfigError::Json(e.to_string()),
        FillError::Limit(l) => ConfigError::Limit(l),
    })
}

/// Compiles a bundle. With [`Isolation::PerDocument`], a rejected document
/// keeps its last good version from `prev` when there is one. Bundle-level
/// problems (not a bundle, duplicate names, overlapping slots), or every
/// document rejected, reject the whole update.
pub(crate) fn compile(
    root: &Tape<'_>,
    bytes: usize,
    prev: &Compiled,
    isolation: Isolation,
) -> Result<Outcome, ConfigError> {
    let raw = split_bundle(root.root()).map_err(ConfigError::Invalid)?;
    let mut all_problems = Vec::new();
    let mut strings = Strings::new(expanded_constraints_budget(bytes));
    let segments = compile_segments(raw.segments, &mut strings, &mut all_problems);
    let mut docs = Documents {
        strings,
        compiled: 0,
        warnings: Vec::new(),
        problems: all_problems,
        bundle_problems: Vec::new(),
        rejected: Vec::new(),
    };

    // Last good versions, by key (only looked up for rejected documents).
    let mut prev_rollouts: Option<HashMap<&str, &Arc<Rollout>>> = None;
    let mut prev_experiments: Option<HashMap<&str, &Arc<Experiment>>> = None;

    let total_docs = raw.rollouts.len() + raw.experiments.len();
    let mut rollouts: Vec<Arc<Rollout>> = Vec::with_capacity(raw.rollouts.len());
    let mut broken_vars: Vec<&str> = Vec::new();
    let mut seen_vars: FxHashSet<&str> = FxHashSet::default();
    seen_vars.reserve(raw.rollouts.len());
    for (i, doc) in raw.rollouts.enumerate() {
        let key = rollout_key(doc);
        let compile = |strings: &mut Strings, sink: &mut Sink<'_>| compile_rollout(doc, &segments, strings, sink);
        match docs.compile(&ROLLOUTS, i, key, &mut seen_vars, compile) {
            None => {}
            Some(Ok(r)) => rollouts.push(Arc::new(r)),
            Some(Err(sink)) => {
                let prev_rollouts =
                    prev_rollouts.get_or_insert_with(|| prev.rollouts.iter().map(|r| (&*r.variable, r)).collect());
                let last = key.and_then(|k| prev_rollouts.get(k));
                let killed = doc.get("enabled").and_then(J::as_bool) == Some(false);
                match (key, last) {
                    // A kill switch is honoured even when the rest of its document is broken.
                    (Some(k), _) if killed => {
                        docs.compiled += 1;
                        rollouts.push(Arc::new(Rollout {
                            salt: crate::hash::salt_prefix(k),
                            variable: k.into(),
                            rules: Vec::new(),
                            default: None,
                            enabled: false,
                            fingerprint: fingerprint(doc),
                        }))
                    }
                    (_, Some(last)) => rollouts.push(Arc::clone(last)),
                    (Some(k), None) => broken_vars.push(k),
                    (None, None) => {}
                }
                docs.reject(sink, last.is_some() && !(killed && key.is_some()), killed && key.is_some());
            }
        }
    }
    let mut experiments: Vec<Arc<Experiment>> = Vec::with_capacity(raw.experiments.len());
    let mut seen_exps: FxHashSet<&str> = FxHashSet::default();
    for (i, doc) in raw.experiments.enumerate() {
        let key = experiment_key(doc);
        let compile = |strings: &mut Strings, sink: &mut Sink<'_>| compile_experiment(doc, &segments, strings, sink);
        match docs.compile(&EXPERIMENTS, i, key, &mut seen_exps, compile) {
            None => {}
            Some(Ok(e)) => experiments.push(Arc::new(e)),
            Some(Err(sink)) => {
                let prev_experiments =
                    prev_experiments.get_or_insert_with(|| prev.experiments.iter().map(|e| (&*e.name, e)).collect());
                let last = key.and_then(|k| prev_experiments.get(k));
                match last {
                    Some(last) => experiments.push(Arc::clone(last)),
                    // Its variables resolve with PARSE_ERROR unless something else defines them.
                    None => broken_vars.extend(
                        doc.get("variables")
                            .and_then(J::elems)
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.get("name").and_then(J::as_str)),
                    ),
                }
                docs.reject(sink, last.is_some(), false);
            }
        }
    }
    let Documents {
        strings,
        compiled: compiled_docs,
        warnings,
        problems: all_problems,
        mut bundle_problems,
        mut rejected,
    } = docs;
    if strings.expanded > strings.budget {
        return Err(ConfigError::Limit(LimitError::new(Limit::ExpandedConstraints, strings.budget, strings.expanded)));
    }
    check_slot_overlaps(&experiments, &mut bundle_problems);

    if !bundle_problems.is_empty() {
        bundle_problems.extend(all_problems);
        return Err(ConfigError::Invalid(bundle_problems));
    }
    if !all_problems.is_empty()
        && (isolation == Isolation::Strict || (compiled_docs == 0 && total_docs > 0) || total_docs == 0)
    {
        return Err(ConfigError::Invalid(all_problems));
    }
    // Segment problems not attached to any document still count as rejections.
    let doc_problem_count: usize = rejected.iter().map(|r| r.problems.len()).sum();
    if all_problems.len() > doc_problem_count {
        let seg: Vec<Problem> = all_problems.iter().filter(|p| p.document.starts_with("segment ")).cloned().collect();
        if !seg.is_empty() {
            rejected.insert(0, Rejected { problems: seg, kept_last_good: false, kill_switch: false });
        }
    }

    let mut compiled = Compiled { version: raw.version, rollouts, experiments, ..Default::default() };
    index_variables(&mut compiled, &broken_vars);
    Ok(Outcome { compiled, rejected, warnings })
}

/// The raw documents of a bundle, before compilation.
struct RawBundle<'t, 'a> {
    version: Option<i64>,
    segments: Option<J<'t, 'a>>,
    /// Iterated in place (not collected): documents sit far apart on the tape.
    rollouts: Elems<'t, 'a>,
    experiments: Elems<'t, 'a>,
}

/// Splits the root into the bundle's documents; a single seed document loads
/// as a bundle of one. `Err`: the root is not a bundle (bundle problems).
fn split_bundle<'t, 'a>(root: J<'t, 'a>) -> Result<RawBundle<'t, 'a>, Vec<Problem>> {
    if !root.is_object() {
        return Err(vec![bundle_problem(format!(
            "expected a JSON object (a bundle, a rollout document or an experiment document), found {}",
            root.kind()
        ))]);
    }
    // A single seed document loads as a bundle of one.
    if root.contains_key("variable") {
        return Ok(RawBundle { version: None, segments: None, rollouts: root.alone(), experiments: Elems::none() });
    }
    if root.contains_key("variables") && root.contains_key("name") {
        return Ok(RawBundle { version: None, segments: None, rollouts: Elems::none(), experiments: root.alone() });
    }
    let mut sink = Sink::new(Label::Bundle);
    check_schema(root.get("schema"), "schema", &mut sink);
    let version = match root.get("version") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => match get_int(v) {
            Some(i) => Some(i),
            None => {
                sink.err("version", "must be an integer");
                None
            }
        },
    };
    let mut list = |key: &str| -> Elems<'t, 'a> {
        match root.get(key) {
            None => Elems::none(),
            Some(v) if v.is_null() => Elems::none(),
            Some(v) => match v.elems() {
                Some(elems) => elems,
                None => {
                    sink.err(key, format!("must be an array of documents, found {}", v.kind()));
                    Elems::none()
                }
            },
        }
    };
    let rollouts = list("rollouts");
    let experiments = list("experiments");
    let segments = match root.get("segments") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) if v.is_object() => Some(v),
        Some(other) => {
            sink.err("segments", format!("must be an object of name -> segment, found {}", other.kind()));
            None
        }
    };
    if !root.contains_key("rollouts") && !root.contains_key("experiments") {
        sink.err("", "no `rollouts` or `experiments`: this is not a turnout bundle or document");
    }
    if sink.problems.is_empty() {
        Ok(RawBundle { version, segments, rollouts, experiments })
    } else {
        Err(sink.problems)
    }
}

/// A kind of document, as [`Documents::compile`] names it in problems.
struct Kind {
    /// `rollout`, `experiment`: the label of a document with a key.
    name: &'static str,
    /// `rollouts`, `experiments`: the label of one without (with its index).
    list: &'static str,
    /// The field that holds the key.
    key_field: &'static str,
    /// What a second document with the same key is: "a second {duplicate} `key`".
    duplicate: &'static str,
}

/// Rollout documents (`rollouts` of a bundle).
const ROLLOUTS: Kind =
    Kind { name: "rollout", list: "rollouts", key_field: "variable", duplicate: "rollout document for" };
/// Experiment documents (`experiments` of a bundle).
const EXPERIMENTS: Kind =
    Kind { name: "experiment", list: "experiments", key_field: "name", duplicate: "experiment named" };

/// What the documents of a bundle add up to while they are compiled,
/// whatever their kind.
struct Documents {
    strings: Strings,
    /// Documents compiled (with a rejected one whose kill switch took effect).
    compiled: usize,
    warnings: Vec<Problem>,
    /// The problems of segments and of rejected documents, in bundle order.
    problems: Vec<Problem>,
    /// Problems that reject the whole bundle: a second document with a key.
    bundle_problems: Vec<Problem>,
    rejected: Vec<Rejected>,
}

impl Documents {
    /// Compiles document `i` of a list, whose key is `key`, in a sink of its
    /// own (its warnings are kept): `None` when an earlier document had the
    /// same key (a bundle problem; this one is skipped), `Err` with its
    /// problems when it is rejected.
    fn compile<'t, T>(
        &mut self,
        kind: &Kind,
        i: usize,
        key: Option<&'t str>,
        seen: &mut FxHashSet<&'t str>,
        compile: impl FnOnce(&mut Strings, &mut Sink<'t>) -> Option<T>,
    ) -> Option<Result<T, Sink<'t>>> {
        let label = match key {
            Some(k) => Label::Named(kind.name, k),
            None => Label::Indexed(kind.list, i),
        };
        if let Some(k) = key {
            if !seen.insert(k) {
                self.bundle_problems.push(Problem {
                    document: label.render(),
                    field: kind.key_field.into(),
                    message: format!("a second {} `{k}`", kind.duplicate),
                });
                return None;
            }
        }
        let mut sink = Sink::new(label);
        let result = compile(&mut self.strings, &mut sink);
        self.warnings.append(&mut sink.warnings);
        match result {
            Some(doc) => {
                self.compiled += 1;
                Some(Ok(doc))
            }
            None => Some(Err(sink)),
        }
    }

    /// Records a rejected document (its problems, and whether its last good
    /// version or its kill switch took its place).
    fn reject(&mut self, mut sink: Sink<'_>, kept_last_good: bool, kill_switch: bool) {
        self.rejected.push(Rejected { problems: sink.problems.clone(), kept_last_good, kill_switch });
        self.problems.append(&mut sink.problems);
    }
}

/// Checks the slots of each domain: at most [`MAX_EXPERIMENTS_PER_DOMAIN`]
/// slotted experiments, one slot unit (that of the domain's first experiment
/// in bundle order), and no two slots overlapping. O(n log n): the slots are
/// sorted by their start and swept once, each experiment that overlaps an
/// earlier-starting one reported once (naming the one it overlaps).
fn check_slot_overlaps(experiments: &[Arc<Experiment>], problems: &mut Vec<Problem>) {
    let mut by_domain: HashMap<&str, Vec<(&Experiment, &Slotting)>> = HashMap::new();
    for e in experiments {
        if let Some(s) = &e.slotting {
            if s.hi > s.lo {
                by_domain.entry(&s.salt).or_default().push((e, s));
            }
        }
    }
    let mut domains: Vec<_> = by_domain.into_iter().collect();
    domains.sort_by(|a, b| a.0.cmp(b.0));
    let unit = |e: &Experiment, u: &SlotUnit| match u {
        SlotUnit::Facet(f) => format!("facet `{f}`"),
        SlotUnit::Window => match e.variables.first().map(|v| &v.strategy) {
            Some(Strategy::TimeSlice { period, .. }) => format!("the {period} s time window"),
            _ => "the time window".to_string(),
        },
    };
    for (domain, mut list) in domains {
        if list.len() > MAX_EXPERIMENTS_PER_DOMAIN {
            problems.push(Problem {
                document: "bundle".into(),
                field: String::new(),
                message: format!(
                    "domain `{domain}`: {}",
                    LimitError::new(Limit::ExperimentsPerDomain, MAX_EXPERIMENTS_PER_DOMAIN, list.len())
                ),
            });
            continue;
        }
        let (first, first_slot) = list[0];
        let first_unit = unit(first, &first_slot.unit);
        for &(b, sb) in &list[1..] {
            let u = unit(b, &sb.unit);
            if u != first_unit {
                problems.push(Problem {
                    document: format!("experiment \"{}\"", b.name),
                    field: "slotting".into(),
                    message: format!(
                        "slots on {u} but experiment `{}` in domain `{domain}` slots on {first_unit}: the slots of one domain must share one unit to be exclusive",
                        first.name
                    ),
                });
            }
        }
        // Stable: equal starts keep bundle order.
        list.sort_by(|a, b| a.1.lo.total_cmp(&b.1.lo));
        let mut reach: Option<(&Experiment, &Slotting)> = None;
        for &(b, sb) in &list {
            if let Some((a, sa)) = reach {
                if sb.lo < sa.hi {
                    problems.push(Problem {
                        document: format!("experiment \"{}\"", b.name),
                        field: "slotting".into(),
                        message: format!(
                            "slot [{}, {}) overlaps experiment `{}` [{}, {}) in domain `{domain}`: a unit may be in at most one slotted experiment per domain",
                            sb.lo, sb.hi, a.name, sa.lo, sa.hi
                        ),
                    });
                }
            }
            match reach {
                Some((_, sa)) if sa.hi >= sb.hi => {}
                _ => reach = Some((b, sb)),
            }
        }
    }
}

/// Builds the variable index: one [`VarPlan`] per variable, with its
/// experiments in bundle order and its rollout; `broken` names the variables
/// of rejected documents without a last good version.
fn index_variables(c: &mut Compiled, broken: &[&str]) {
    let mut plans: Vec<VarPlan> = Vec::with_capacity(c.rollouts.len());
    let mut index: HashMap<Arc<str>, u32, _> = HashMap::with_capacity_and_hasher(c.rollouts.len(), Default::default());
    let mut plan_for = |name: &Arc<str>, plans: &mut Vec<VarPlan>| -> usize {
        if let Some(&p) = index.get(&**name) {
            return p as usize;
        }
        plans.push(VarPlan { name: Arc::clone(name), experiments: vec![], rollout: None, broken: false });
        index.insert(Arc::clone(name), (plans.len() - 1) as u32);
        plans.len() - 1
    };
    for (ei, e) in c.experiments.iter().enumerate() {
        for (vi, v) in e.variables.iter().enumerate() {
            let p = plan_for(&v.name, &mut plans);
            plans[p].experiments.push((ei as u32, vi as u32));
        }
    }
    for (ri, r) in c.rollouts.iter().enumerate() {
        let p = plan_for(&r.variable, &mut plans);
        plans[p].rollout = Some(ri as u32);
    }
    for b in broken {
        let p = plan_for(&Arc::from(*b), &mut plans);
        if plans[p].rollout.is_none() && plans[p].experiments.is_empty() {
            plans[p].broken = true;
        }
    }
    c.vars = plans;
    c.index = index;
}
