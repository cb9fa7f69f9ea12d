//! The interpreter of the `sync` conformance scripts (docs/sync.md, section
//! 10), for the Rust runner and for `cargo xtask vectors`, which fills the
//! expected values of a script's `null` steps from the engine. Other
//! platforms have their own interpreter over their binding.

use serde_json::{json, Value};

use super::{Action, Outcome, SyncMachine, SyncOptions};
use crate::client::Client;
use crate::facets::Facets;
use crate::host::HostOptions;

/// Runs `script`. Each `next`, `notices` and `state` step is compared with
/// what the machine gives; with `fill`, a `null` one is replaced by it
/// instead. Returns the script with every expected value filled in, or the
/// first mismatch.
pub fn run_script(script: &Value, fill: bool) -> Result<Value, String> {
    let name = script["name"].as_str().unwrap_or("?");
    let fail = |i: usize, m: String| format!("{name}: step {i}: {m}");
    let built = HostOptions::from_json(&script["clientOptions"].to_string())
        .and_then(|o| o.build(None))
        .map_err(|e| format!("{name}: clientOptions: {e}"))?;
    let clock = built.fixed_clock.clone();
    let client = Client::new(built.options);
    if !script["bootstrap"].is_null() {
        client
            .update_config(script["bootstrap"].to_string().as_bytes())
            .map_err(|e| format!("{name}: bootstrap: {e}"))?;
    }
    let options = SyncOptions::from_json(&script["options"].to_string()).map_err(|e| format!("{name}: {e}"))?;
    let mut sync = SyncMachine::new(&client, options).map_err(|e| format!("{name}: {e}"))?;
    let mut out = script.clone();
    let steps = out["steps"].as_array_mut().ok_or_else(|| format!("{name}: no steps"))?;
    for (i, step) in steps.iter_mut().enumerate() {
        let at = step["at"].as_u64().ok_or_else(|| fail(i, "no `at`".into()))?;
        // The client's (unix) clock moves with the host time.
        if let Some(c) = &clock {
            c.set(script["clientOptions"]["fixedTimeMs"].as_i64().unwrap_or(0).saturating_add(at as i64));
        }
        let obj = step.as_object_mut().ok_or_else(|| fail(i, "not an object".into()))?;
        let (key, want) = obj.iter_mut().find(|(k, _)| *k != "at").ok_or_else(|| fail(i, "no operation".into()))?;
        let got = match key.as_str() {
            "next" => Some(action_json(&sync.next(at))),
            "notices" => Some(serde_json::to_value(sync.take_notices()).map_err(|e| e.to_string())?),
            "state" => {
                let full = serde_json::to_value(sync.state()).map_err(|e| e.to_string())?;
                if want.is_null() {
                    Some(full)
                } else {
                    // Only the fields the step gives are compared.
                    let picked: serde_json::Map<String, Value> = want
                        .as_object()
                        .ok_or_else(|| fail(i, "`state` must be an object".into()))?
                        .keys()
                        .map(|k| (k.clone(), full.get(k).cloned().unwrap_or(Value::Null)))
                        .collect();
                    Some(Value::Object(picked))
                }
            }
            "fetched" => {
                let body = match (&want["body"], &want["bodyText"]) {
                    (Value::Null, Value::String(t)) => t.clone().into_bytes(),
                    (Value::Null, _) => Vec::new(),
                    (b, _) => b.to_string().into_bytes(),
                };
                sync.on_fetch(at, outcome(want, &body));
                None
            }
            "uploaded" => {
                let seq = want["seq"].as_u64().ok_or_else(|| fail(i, "`uploaded` needs a seq".into()))?;
                sync.on_upload(at, seq, outcome(want, &[]));
                None
            }
            "track" => {
                let n = want["name"].as_str().unwrap_or("event");
                client.track(n, want["value"].as_f64().unwrap_or(1.0), &Facets::new());
                None
            }
            "pollNow" => {
                sync.poll_now();
                None
            }
            "flushNow" => {
                sync.flush_now();
                None
            }
            "stop" => {
                sync.stop(want["flush"].as_bool().unwrap_or(true));
                None
            }
            other => return Err(fail(i, format!("unknown operation `{other}`"))),
        };
        if let Some(got) = got {
            if want.is_null() && fill {
                *want = got;
            } else if *want != got {
                return Err(fail(i, format!("`{key}`: expected {want}, got {got}")));
            }
        }
    }
    Ok(out)
}

/// An action in the vectors' JSON form (upload bytes left out).
pub fn action_json(a: &Action) -> Value {
    serde_json::to_value(a).unwrap_or_else(|e| json!({"error": e.to_string()}))
}

fn outcome<'a>(v: &'a Value, body: &'a [u8]) -> Outcome<'a> {
    Outcome::from_parts(
        v["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0),
        v["etag"].as_str(),
        v["retryAfter"].as_str(),
        body,
        v["failure"].as_str(),
        v["message"].as_str().unwrap_or(""),
    )
}
