//! Events: what a decision or a `track()` call records.

use std::sync::Arc;

use crate::decision::Source;
use crate::facets::Facets;
use crate::value::FacetValue;

/// What an event records besides its name, time and facets.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// A decision taken by `get_variable` (or a prepared getter).
    Decision {
        /// The value as compact JSON text (`60`, `"blue"`, `true`).
        value: Arc<str>,
        /// Where the value came from.
        source: Source,
        /// The experiment that assigned it.
        experiment: Option<Arc<str>>,
        /// The matched rule's index.
        rule: Option<u32>,
        /// The assigned choice's index.
        choice: Option<u32>,
    },
    /// A metric recorded by `track()`.
    Track {
        /// The metric's value.
        value: f64,
    },
}

/// One recorded event; `count` folds identical repeats within a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unix milliseconds of the first occurrence.
    pub time_ms: i64,
    /// How many identical occurrences this event stands for (>= 1).
    pub count: u64,
    /// The service that recorded it.
    pub service: Arc<str>,
    /// The variable (decisions) or `service.name` (tracks).
    pub name: Arc<str>,
    /// Decision or metric details.
    pub data: EventData,
    /// The facets given with the call.
    pub facets: Facets,
}

impl Event {
    /// `"decision"` or `"track"`.
    pub fn kind(&self) -> &'static str {
        match self.data {
            EventData::Decision { .. } => "decision",
            EventData::Track { .. } => "track",
        }
    }

    /// The event as a JSON object (the `turnout decode` line, without header fields).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), self.kind().into());
        m.insert("time".into(), self.time_ms.into());
        m.insert("count".into(), self.count.into());
        m.insert("service".into(), (*self.service).into());
        m.insert("name".into(), (*self.name).into());
        match &self.data {
            EventData::Decision { value, source, experiment, rule, choice } => {
                // (The byte reader: one serde_json reader in the WebAssembly build.)
                let v: serde_json::Value =
                    serde_json::from_slice(value.as_bytes()).unwrap_or_else(|_| (**value).into());
                m.insert("value".into(), v);
                m.insert("source".into(), source.as_str().into());
                m.insert("experiment".into(), experiment.as_deref().into());
                m.insert("rule".into(), (*rule).into());
                m.insert("choice".into(), (*choice).into());
            }
            EventData::Track { value } => {
                m.insert(
                    "value".into(),
                    serde_json::Number::from_f64(*value)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                );
            }
        }
        m.insert("facets".into(), self.facets.to_json());
        serde_json::Value::Object(m)
    }

    /// Builds an event from its JSON form (the inverse of [`Event::to_json`];
    /// used by the batch vectors). Facets may use the `$int64` form.
    pub fn from_json(v: &serde_json::Value) -> Result<Event, String> {
        let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).ok_or(format!("event.{k} must be a string"));
        let facets = Facets::from_json(v.get("facets").unwrap_or(&serde_json::json!({}))).map_err(|e| e.to_string())?;
        let idx = |k: &str| -> Result<Option<u32>, String> {
            match v.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or(format!("event.{k} must be an index")),
            }
        };
        let data = match s("kind")? {
            "decision" => EventData::Decision {
                // `valueText` (the exact wire text) wins over `value` for writers
                // whose JSON numbers lose their formatting (1.0 vs 1).
                value: match v.get("valueText").and_then(serde_json::Value::as_str) {
                    Some(t) => Arc::from(t),
                    None => Arc::from(v.get("value").ok_or("event.value is required")?.to_string()),
                },
                source: match s("source")? {
                    "experiment" => Source::Experiment,
                    "rollout" => Source::Rollout,
                    "default" => Source::Default,
                    "fallback" => Source::Fallback,
                    other => return Err(format!("unknown source {other}")),
                },
                experiment: v.get("experiment").and_then(serde_json::Value::as_str).map(Arc::from),
                rule: idx("rule")?,
                choice: idx("choice")?,
            },
            "track" => EventData::Track {
                value: v.get("value").and_then(serde_json::Value::as_f64).ok_or("track value must be a number")?,
            },
            other => return Err(format!("unknown kind {other}")),
        };
        Ok(Event {
            time_ms: v.get("time").and_then(serde_json::Value::as_i64).ok_or("event.time must be an integer")?,
            count: v.get("count").and_then(serde_json::Value::as_u64).unwrap_or(1).max(1),
            service: Arc::from(s("service")?),
            name: Arc::from(s("name")?),
            data,
            facets,
        })
    }
}

/// The facets with the named ones removed (shares `f` when none is present).
pub(crate) fn without(f: &Facets, exclude: &[String]) -> Facets {
    let mut c = f.clone();
    if exclude.iter().any(|x| f.get(x).is_some()) {
        for x in exclude {
            c.remove(x);
        }
    }
    c
}

/// Facet values as the wire format tags them.
pub(crate) fn facet_tag(v: &FacetValue) -> u8 {
    match v {
        FacetValue::Str(_) => 0,
        FacetValue::Int(_) => 1,
        FacetValue::Float(_) => 2,
        FacetValue::Bool(false) => 3,
        FacetValue::Bool(true) => 4,
    }
}
