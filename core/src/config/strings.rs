//! The strings of one load, shared ([`Strings`]): a big bundle repeats the
//! same few value texts, constraint texts and names many times, so each
//! distinct one is stored once. It also counts the constraints compiled or
//! expanded from segments against the load's budget.

use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde_json::Value;

use crate::model::CValue;

/// The strings of one load that the compiled config keeps and that
/// evaluation does not read on its hot path (value texts and strings,
/// constraint texts), each distinct one stored once.
pub(super) struct Strings {
    set: FxHashSet<Arc<str>>,
    /// Where texts are put together before they are looked up.
    pub(super) scratch: String,
    /// Constraints compiled or expanded from segments so far, and the budget
    /// ([`expanded_constraints_budget`](crate::limits::expanded_constraints_budget)); once over it, compiling stops adding any.
    pub(super) expanded: usize,
    pub(super) budget: usize,
}

impl Strings {
    pub(super) fn new(budget: usize) -> Strings {
        Strings { set: FxHashSet::default(), scratch: String::new(), expanded: 0, budget }
    }
    /// Counts `n` more constraints; false once the budget is exceeded.
    pub(super) fn expand(&mut self, n: usize) -> bool {
        self.expanded = self.expanded.saturating_add(n);
        self.expanded <= self.budget
    }
    pub(super) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(Arc::clone(&a));
        a
    }
    pub(super) fn value(&mut self, json: Value) -> CValue {
        CValue::new(json, |s| self.get(s))
    }
}
