//! Glue every language binding shares, so that none of them re-implements it.
//!
//! These are the *cold* entry points: called once per client, per config or
//! per batch vector, never per decision. They speak JSON so that a binding
//! can hand them whatever its host language has (a JS object stringified, a
//! Kotlin data class, a Go struct) without a type per language:
//!
//! - [`HostOptions`]: client options as JSON (`{"service": "booking",
//!   "decisionEvents": "experiments", "fixedTimeMs": 1700000000000, ...}`),
//!   turned into [`ClientOptions`] plus the fixed clock, if one was asked for.
//! - [`encode_batch_json`] / [`decode_batch_json`]: the event batch codec over
//!   the JSON form of the conformance batch vectors and `turnout decode`.
//! - [`facets_from_pairs`]: facets from (name, value) pairs in one pass, for
//!   bindings that receive them one value at a time (WASM).
//! - [`HostClient`]: the client as every boundary holds it (the client plus the
//!   fixed clock its options may ask for), so that the C ABI, UniFFI and
//!   WebAssembly wrappers are one line per method over it.
//!
//! The hot path (prepared [`Context`](crate::Context) x
//! [`Variable`](crate::Variable) -> number) never goes through here.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::client::{Client, ClientOptions, UpdateReport};
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::Isolation;
use crate::error::{ErrorDetail, ErrorKind, HostError};
use crate::facets::Facets;
use crate::tracking::{decode_batch, encode_batch, BatchHeader, DecisionEvents, DecodedBatch, Event, TrackingOptions};
use crate::value::FacetValue;

/// Client options in the JSON form every binding accepts. Every field is
/// optional; absent fields keep [`ClientOptions::default`]'s values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostOptions {
    /// The service this client runs in (prefixes tracked event names).
    pub service: Option<String>,
    /// `"perDocument"` (default: a broken document keeps its last good version) or
    /// `"strict"` (any problem rejects the whole update).
    pub isolation: Option<IsolationName>,
    /// `"all"` (default), `"experiments"` or `"off"`.
    pub decision_events: Option<DecisionEventsName>,
    /// Facet names never recorded in events (PII).
    pub exclude_facets: Option<Vec<String>>,
    /// Queue limit in events (default 10,000).
    pub max_queue: Option<u64>,
    /// Fold table limit in keys (default 10,000).
    pub max_fold_keys: Option<u64>,
    /// Batches taken and not yet acked that are kept for retry (default 64).
    pub max_unacked_batches: Option<u64>,
    /// Client instance id written in batch headers (de-duplication key with `seq`).
    pub client_id: Option<String>,
    /// SDK name written in batch headers (the binding sets its own).
    pub sdk: Option<String>,
    /// SDK version written in batch headers.
    pub sdk_version: Option<String>,
    /// Platform written in batch headers (e.g. `wasm`, `android`, `jvm`, `go`).
    pub platform: Option<String>,
    /// The largest config accepted, in bytes (default 16 MiB).
    pub max_config_bytes: Option<u64>,
    /// Pin the clock at this unix time in ms (tests, conformance runs); it can
    /// then be moved with [`FixedClock::set`]. Absent: the system clock.
    pub fixed_time_ms: Option<i64>,
}

/// Names of [`Isolation`] values in [`HostOptions`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum IsolationName {
    /// [`Isolation::PerDocument`].
    PerDocument,
    /// [`Isolation::Strict`].
    Strict,
}

/// Names of [`DecisionEvents`] values in [`HostOptions`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum DecisionEventsName {
    /// [`DecisionEvents::All`].
    All,
    /// [`DecisionEvents::ExperimentsOnly`].
    Experiments,
    /// [`DecisionEvents::Off`].
    Off,
}

/// Client options built from [`HostOptions`].
#[derive(Debug, Clone)]
pub struct BuiltOptions {
    /// The options to create the client with.
    pub options: ClientOptions,
    /// The fixed clock, when `fixedTimeMs` was given (the binding keeps it to
    /// move time in tests).
    pub fixed_clock: Option<Arc<FixedClock>>,
}

impl HostOptions {
    /// Parses options from JSON text; an empty text or `null` gives the defaults.
    pub fn from_json(text: &str) -> Result<HostOptions, HostError> {
        if text.trim().is_empty() {
            return Ok(HostOptions::default());
        }
        // The byte reader, as everywhere on this cold path: the WebAssembly
        // build then carries one serde_json reader (see `config::fill_str`).
        let v: Option<HostOptions> =
            serde_json::from_slice(text.as_bytes()).map_err(|e| HostError::Options(e.to_string()))?;
        Ok(v.unwrap_or_default())
    }

    /// The client options; `clock` replaces the system clock when no
    /// `fixedTimeMs` is given (WASM has no system clock and passes its own).
    pub fn build(self, clock: Option<Arc<dyn Clock>>) -> Result<BuiltOptions, HostError> {
        let d = TrackingOptions::default();
        let limit = |name: &str, v: Option<u64>, default: usize| -> Result<usize, HostError> {
            match v {
                None => Ok(default),
                Some(0) => Err(HostError::Options(format!("{name} must be at least 1"))),
                Some(n) => usize::try_from(n).map_err(|_| HostError::Options(format!("{name} is too large"))),
            }
        };
        let tracking = TrackingOptions {
            decisions: match self.decision_events {
                None | Some(DecisionEventsName::All) => DecisionEvents::All,
                Some(DecisionEventsName::Experiments) => DecisionEvents::ExperimentsOnly,
                Some(DecisionEventsName::Off) => DecisionEvents::Off,
            },
            exclude_facets: self.exclude_facets.unwrap_or_default(),
            max_queue: limit("maxQueue", self.max_queue, d.max_queue)?,
            max_fold_keys: limit("maxFoldKeys", self.max_fold_keys, d.max_fold_keys)?,
            max_unacked_batches: limit("maxUnackedBatches", self.max_unacked_batches, d.max_unacked_batches)?,
            client_id: self.client_id.unwrap_or(d.client_id),
            sdk: self.sdk.unwrap_or(d.sdk),
            sdk_version: self.sdk_version.unwrap_or(d.sdk_version),
            platform: self.platform.unwrap_or(d.platform),
        };
        let fixed_clock = self.fixed_time_ms.map(|ms| Arc::new(FixedClock::new(ms)));
        let clock: Arc<dyn Clock> = match (&fixed_clock, clock) {
            (Some(f), _) => f.clone(),
            (None, Some(c)) => c,
            (None, None) => Arc::new(SystemClock),
        };
        let options = ClientOptions {
            service: self.service.unwrap_or_default(),
            isolation: match self.isolation {
                None | Some(IsolationName::PerDocument) => Isolation::PerDocument,
                Some(IsolationName::Strict) => Isolation::Strict,
            },
            clock,
            tracking,
            max_config_bytes: limit("maxConfigBytes", self.max_config_bytes, crate::limits::DEFAULT_MAX_CONFIG_BYTES)?,
        };
        Ok(BuiltOptions { options, fixed_clock })
    }
}

/// A client as every boundary holds it: the [`Client`] and, when its options
/// asked for `fixedTimeMs`, the fixed clock a host moves with
/// [`HostClient::set_time_ms`]. It dereferences to the [`Client`], so a
/// boundary's method is one line over it. Clones share the engine and the clock.
#[derive(Clone)]
pub struct HostClient {
    client: Client,
    fixed_clock: Option<Arc<FixedClock>>,
}

impl HostClient {
    /// A client with an empty config from options JSON ([`HostOptions`]);
    /// `clock` replaces the system clock when the options give no `fixedTimeMs`.
    pub fn new(options_json: &str, clock: Option<Arc<dyn Clock>>) -> Result<HostClient, HostError> {
        let built = HostOptions::from_json(options_json)?.build(clock)?;
        Ok(HostClient { client: Client::new(built.options), fixed_clock: built.fixed_clock })
    }

    /// A client from options JSON with `config` installed, and the report of
    /// that first update (a config that is rejected, empty bytes included, is an error).
    pub fn with_config(
        config: &[u8],
        options_json: &str,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<(HostClient, UpdateReport), ErrorDetail> {
        let host = HostClient::new(options_json, clock)?;
        let report = host.client.update_config(config)?;
        Ok((host, report))
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Moves the fixed clock to `ms` (unix milliseconds); an
    /// [`ErrorKind::NoFixedClock`] error when the options gave no `fixedTimeMs`.
    pub fn set_time_ms(&self, ms: i64) -> Result<(), ErrorDetail> {
        match &self.fixed_clock {
            Some(c) => {
                c.set(ms);
                Ok(())
            }
            None => Err(ErrorDetail::new(
                ErrorKind::NoFixedClock,
                "moving the clock needs a client created with the fixedTimeMs option",
            )),
        }
    }
}

impl std::fmt::Debug for HostClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostClient").field("fixed_clock", &self.fixed_clock.is_some()).finish_non_exhaustive()
    }
}

impl std::ops::Deref for HostClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Encodes `{"header": {...}, "events": [...]}` (the JSON form of a batch
/// vector case and of `turnout decode`) into wire bytes.
pub fn encode_batch_json(text: &str) -> Result<Vec<u8>, HostError> {
    let v: Value =
        serde_json::from_slice(text.as_bytes()).map_err(|e| HostError::Batch(format!("not valid JSON: {e}")))?;
    let header: BatchHeader = serde_json::from_value(v.get("header").cloned().unwrap_or(Value::Null))
        .map_err(|e| HostError::Batch(format!("header: {e}")))?;
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| HostError::Batch("`events` must be an array".into()))?
        .iter()
        .enumerate()
        .map(|(i, e)| Event::from_json(e).map_err(|m| HostError::Batch(format!("events[{i}]: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(encode_batch(&header, &events))
}

/// The JSON form of a decoded batch: `{"header": {...}, "events": [...]}`.
pub fn batch_to_json(batch: &DecodedBatch) -> Value {
    serde_json::json!({
        "header": serde_json::to_value(&batch.header).unwrap_or(Value::Null),
        "events": batch.events.iter().map(Event::to_json).collect::<Vec<_>>(),
    })
}

/// The JSON Lines form of a decoded batch (`turnout decode`, the collector):
/// one object per event with the header's fields merged in, or, for a batch
/// without events, one `{"kind": "batch", ...header}` line, so that a batch
/// that only carries loss counters is never hidden.
pub fn batch_event_lines(batch: &DecodedBatch) -> Vec<Value> {
    let mut out = Vec::with_capacity(batch.events.len().max(1));
    for_each_event_line(batch, |line| out.push(line));
    out
}

/// [`batch_event_lines`] one line at a time, so that a consumer writing them
/// out holds one line, not the whole batch's, in memory.
pub fn for_each_event_line(batch: &DecodedBatch, mut f: impl FnMut(Value)) {
    let header = serde_json::to_value(&batch.header).unwrap_or(Value::Null);
    if batch.events.is_empty() {
        let mut line = header;
        line["kind"] = "batch".into();
        f(line);
        return;
    }
    for e in &batch.events {
        let mut line = header.clone();
        if let (Some(l), Value::Object(ev)) = (line.as_object_mut(), e.to_json()) {
            l.extend(ev);
        }
        f(line);
    }
}

/// Decodes wire bytes into the JSON text of [`batch_to_json`]. A corrupted
/// batch is rejected whole ([`crate::DecodeError`]), never mis-decoded.
pub fn decode_batch_json(bytes: &[u8]) -> Result<String, HostError> {
    let batch = decode_batch(bytes)?;
    Ok(batch_to_json(&batch).to_string())
}

/// Builds facets from `(name, value)` pairs in one pass: the same set as
/// calling [`Facets::set`] for each pair in order (a repeated name keeps its
/// first position and takes the last value), but well-known names are not
/// copied and the fingerprint is computed once instead of once per facet.
///
/// The limits of [`crate::limits`] on facets (count, name and value size) are
/// checked: every binding builds its facets here or through [`Facets::from_json`].
pub fn facets_from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, FacetValue)>,
) -> Result<Facets, crate::FacetError> {
    Facets::from_pairs(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DecodeError;

    #[test]
    fn options_defaults_and_fields() {
        let b = HostOptions::from_json("").unwrap().build(None).unwrap();
        assert!(b.fixed_clock.is_none());
        assert_eq!(b.options.tracking.max_queue, 10_000);
        let b = HostOptions::from_json(
            r#"{"service":"booking","decisionEvents":"experiments","maxQueue":5,"fixedTimeMs":42,
                "isolation":"strict","excludeFacets":["pax"],"platform":"go"}"#,
        )
        .unwrap()
        .build(None)
        .unwrap();
        assert_eq!(b.options.service, "booking");
        assert_eq!(b.options.tracking.decisions, DecisionEvents::ExperimentsOnly);
        assert_eq!(b.options.tracking.max_queue, 5);
        assert_eq!(b.options.tracking.exclude_facets, vec!["pax".to_string()]);
        assert_eq!(b.options.tracking.platform, "go");
        assert_eq!(b.options.isolation, Isolation::Strict);
        assert_eq!(b.options.clock.now_ms(), 42);
        b.fixed_clock.as_ref().unwrap().set(7);
        assert_eq!(b.options.clock.now_ms(), 7);
    }

    #[test]
    fn host_client_installs_config_and_moves_its_clock() {
        let doc = br#"{"variable": "d", "rollouts": [], "default": 3}"#;
        let (h, report) = HostClient::with_config(doc, r#"{"fixedTimeMs": 5}"#, None).unwrap();
        assert_eq!(report.added, ["d"]);
        let clock = h.fixed_clock.clone().unwrap();
        assert_eq!(clock.now_ms(), 5);
        h.set_time_ms(9).unwrap();
        assert_eq!(clock.now_ms(), 9);
        let free = HostClient::new("", None).unwrap();
        assert!(!free.has_config());
        assert_eq!(free.set_time_ms(1).unwrap_err().kind, ErrorKind::NoFixedClock);
        assert_eq!(HostClient::with_config(b"", "", None).err().unwrap().kind, ErrorKind::InvalidConfig);
        let e = HostClient::with_config(b"{", "", None).err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        let e = HostClient::with_config(b"", r#"{"nope": 1}"#, None).err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidOptions);
    }

    #[test]
    fn facets_from_pairs_is_set_in_order() {
        let pairs = [
            ("city", FacetValue::Int(10)),
            ("custom", FacetValue::Str("x".into())),
            ("pax", FacetValue::Int(9_007_199_254_740_993)),
            ("city", FacetValue::Float(6.5)),
        ];
        let mut expected = Facets::new();
        for (k, v) in pairs.clone() {
            expected.set(k, v);
        }
        let got = facets_from_pairs(pairs).unwrap();
        assert_eq!(got, expected);
        assert_eq!(got.fingerprint(), expected.fingerprint());
        let order: Vec<&str> = got.iter().map(|f| f.key()).collect();
        assert_eq!(order, ["city", "custom", "pax"]);
        assert_eq!(got.get("city").map(|f| f.canonical()), Some("6.5"));
        assert!(facets_from_pairs([]).unwrap().is_empty());
    }

    #[test]
    fn options_errors_are_clear() {
        let e = HostOptions::from_json(r#"{"servce":"x"}"#).unwrap_err().to_string();
        assert!(e.contains("servce"), "{e}");
        let e = HostOptions::from_json(r#"{"maxQueue":0}"#).unwrap().build(None).unwrap_err().to_string();
        assert!(e.contains("maxQueue"), "{e}");
        let e = HostOptions::from_json(r#"{"decisionEvents":"some"}"#).unwrap_err().to_string();
        assert!(e.contains("some"), "{e}");
    }

    #[test]
    fn batch_json_round_trip_and_errors() {
        let text = r#"{"header":{"clientId":"c1","seq":3,"createdAtMs":1700000000000,"sdk":"t","sdkVersion":"1",
            "platform":"p","dropped":2,"foldOverflow":0},
            "events":[{"kind":"track","time":1700000000001,"count":1,"service":"s","name":"s.fare",
            "value":12.5,"facets":{"pax":7}}]}"#;
        let bytes = encode_batch_json(text).unwrap();
        let back: Value = serde_json::from_str(&decode_batch_json(&bytes).unwrap()).unwrap();
        assert_eq!(back["header"]["seq"], 3);
        assert_eq!(back["header"]["dropped"], 2);
        assert_eq!(back["events"][0]["name"], "s.fare");
        assert_eq!(back["events"][0]["facets"]["pax"], 7);
        // Re-encoding the decoded JSON gives the same bytes.
        assert_eq!(encode_batch_json(&back.to_string()).unwrap(), bytes);
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode_batch_json(&bad).unwrap_err(), HostError::Decode(DecodeError::Checksum));
        let lines = batch_event_lines(&decode_batch(&bytes).unwrap());
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0]["clientId"].as_str(), lines[0]["name"].as_str()), (Some("c1"), Some("s.fare")));
        let empty =
            encode_batch_json(&serde_json::json!({"header": back["header"], "events": []}).to_string()).unwrap();
        let lines = batch_event_lines(&decode_batch(&empty).unwrap());
        assert_eq!((lines.len(), lines[0]["kind"].as_str(), lines[0]["dropped"].as_u64()), (1, Some("batch"), Some(2)));
        let no_events = serde_json::json!({"header": back["header"]}).to_string();
        assert!(encode_batch_json(&no_events).unwrap_err().to_string().contains("events"));
        assert!(encode_batch_json(r#"{"header":{}}"#).unwrap_err().to_string().contains("header"));
    }
}
