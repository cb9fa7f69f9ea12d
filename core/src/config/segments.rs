//! Segments and the constraint lists that reference them. A segment (a named
//! constraint list of the bundle) is compiled once per load and shared by
//! every reference; [`constraints`] compiles the list of a rule or an
//! experiment: its segment references, each counted against the expansion
//! budget and the document's regex weight, then its own constraints.

use std::collections::HashMap;
use std::sync::Arc;

use super::constraints::constraint;
use super::problems::{Label, Path, Sink};
use super::strings::Strings;
use super::tape::{Tok, J};
use crate::error::Problem;
use crate::model::{Constraint, Constraints};

/// A valid segment, compiled once (with the placeholder salt `""`).
pub(super) struct Segment {
    constraints: Arc<[Constraint]>,
    /// (field, message) of the warnings its constraints give, repeated in
    /// every document that references it.
    warnings: Vec<(String, String)>,
    /// The summed weight of its regexes, added to each referencing document's.
    regex_weight: u64,
}

/// Segment name -> the segment, or `Err` when it is invalid.
pub(super) type Segments<'t> = HashMap<&'t str, Result<Segment, ()>>;

/// Compiles the bundle's `segments` (in name order); their problems go to `problems`.
pub(super) fn compile_segments<'t>(
    raw: Option<J<'t, '_>>,
    strings: &mut Strings,
    problems: &mut Vec<Problem>,
) -> Segments<'t> {
    let mut out = HashMap::new();
    let Some(raw) = raw else { return out };
    let root = Path::Root;
    let segs = root.key("segments");
    for (name, seg) in raw.sorted_entries() {
        let mut sink = Sink::new(Label::Named("segment", name));
        let spath = segs.key(name);
        let cpath = spath.key("constraints");
        let list = match seg.tok() {
            Tok::Obj(_) => match seg.get("constraints") {
                Some(a) if a.elems().is_some() => Some(a),
                _ => {
                    sink.err(cpath, "must be an array of constraints");
                    None
                }
            },
            Tok::Arr { .. } => Some(seg),
            _ => {
                sink.err(spath, format!("must be an object {{constraints: [...]}}, found {}", seg.kind()));
                None
            }
        };
        let mut constraints = Vec::new();
        if let Some(list) = list {
            // Compiled once with a placeholder salt: a reference sets its document's default salt.
            for (i, c) in list.elems().into_iter().flatten().enumerate() {
                if let Some(c) = constraint(c, &cpath.index(i), "", strings, &mut sink) {
                    constraints.push(c);
                }
            }
        }
        let ok = sink.problems.is_empty() && list.is_some();
        problems.append(&mut sink.problems);
        let warnings = sink.warnings.into_iter().map(|w| (w.field, w.message)).collect();
        let regex_weight = sink.regex_weight;
        out.insert(
            name,
            if ok { Ok(Segment { constraints: constraints.into(), warnings, regex_weight }) } else { Err(()) },
        );
    }
    out
}

/// Compiles a constraint list plus its segment references.
pub(super) fn constraints(
    refs: Option<J<'_, '_>>,
    list: Option<J<'_, '_>>,
    path: &Path<'_>,
    default_salt: &str,
    segments: &Segments<'_>,
    strings: &mut Strings,
    sink: &mut Sink<'_>,
) -> Constraints {
    let mut out = Constraints::default();
    match refs {
        None => {}
        Some(names) if names.is_null() => {}
        Some(names) => match names.elems() {
            Some(names) => {
                let spath = path.key("segments");
                for (i, n) in names.enumerate() {
                    let field = spath.index(i);
                    let Some(name) = n.as_str() else {
                        sink.err(field, "segment references must be strings");
                        continue;
                    };
                    match segments.get(name) {
                        Some(Ok(seg)) => {
                            // Compiled once and shared; every reference still
                            // counts its constraints against the budget (they
                            // are evaluated at each reference).
                            if !strings.expand(seg.constraints.len()) {
                                return out;
                            }
                            out.shared.push(Arc::clone(&seg.constraints));
                            sink.regex_weight = sink.regex_weight.saturating_add(seg.regex_weight);
                            for (f, m) in &seg.warnings {
                                sink.warn(f.as_str(), m.clone());
                            }
                        }
                        Some(Err(())) => sink.err(field, format!("segment `{name}` is invalid (see its own problems)")),
                        None => sink.err(field, format!("unknown segment `{name}`")),
                    }
                }
            }
            None => {
                sink.err(path.key("segments"), format!("must be an array of segment names, found {}", names.kind()))
            }
        },
    }
    match list {
        None => {}
        Some(list) if list.is_null() => {}
        Some(list) => match list.elems() {
            Some(elems) => {
                let cpath = path.key("constraints");
                if !strings.expand(elems.len()) {
                    return out;
                }
                out.own.reserve_exact(elems.len());
                for (i, c) in elems.enumerate() {
                    if let Some(c) = constraint(c, &cpath.index(i), default_salt, strings, sink) {
                        out.own.push(c);
                    }
                }
            }
            None => sink.err(path.key("constraints"), format!("must be an array, found {}", list.kind())),
        },
    }
    out
}
