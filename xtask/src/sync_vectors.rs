//! The `sync` conformance scripts (docs/sync.md, section 10).
//!
//! Each script is written here with its inputs; the expected value of a
//! `null` step is filled from the engine, and every value written by hand is
//! an anchor that the engine must reproduce (computed from docs/sync.md
//! alone: the delays, ETags, counts and actions below; the jittered delays
//! from the splitmix64 outputs for seed 42, computed in Python:
//! 2000 ms -> 2483, 1000 ms -> 659, then 778).

use serde_json::{json, Value};
use turnout_core::sync::script::run_script;

const CONFIG_URL: &str = "https://config.example/turnout.json";
const EVENTS_URL: &str = "https://collector.example/events";
const NOW: i64 = 1_700_000_000_000;
const MAX_BYTES: u64 = 16 << 20;

fn config_a() -> Value {
    json!({"version": 1, "rollouts": [{"variable": "v", "default": 1}]})
}

fn config_b() -> Value {
    json!({"version": 2, "rollouts": [{"variable": "v", "default": 2}, {"variable": "w", "default": true}]})
}

/// Complete JSON that the engine rejects whatever the isolation (a bundle problem).
fn bad_config() -> Value {
    json!({"schema": 2, "rollouts": []})
}

fn client_options() -> Value {
    json!({"fixedTimeMs": NOW, "clientId": "sync-vectors", "service": "svc"})
}

fn options(config: bool, events: bool) -> Value {
    let mut o =
        json!({"pollIntervalMs": 1000, "flushIntervalMs": 5000, "maxBackoffMs": 8000, "timeoutMs": 500, "jitter": 0});
    if config {
        o["configUrl"] = json!(CONFIG_URL);
    }
    if events {
        o["eventsUrl"] = json!(EVENTS_URL);
    }
    o
}

fn fetch(etag: Option<&str>) -> Value {
    json!({"action": "fetch", "url": CONFIG_URL, "etag": etag, "timeoutMs": 500, "maxBytes": MAX_BYTES})
}

fn wait(ms: u64) -> Value {
    json!({"action": "wait", "ms": ms})
}

fn step(at: u64, op: &str, v: Value) -> Value {
    json!({"at": at, op: v})
}

fn script(name: &str, what: &str, client: Value, options: Value, bootstrap: Value, steps: Vec<Value>) -> Value {
    json!({"name": name, "description": what, "clientOptions": client, "options": options, "bootstrap": bootstrap, "steps": steps})
}

fn scripts() -> Vec<Value> {
    let n = Value::Null;
    vec![
        script(
            "first-fetch-then-304",
            "The first fetch installs the config (ready), the next sends its ETag and a 304 confirms it.",
            client_options(),
            options(true, false),
            n.clone(),
            vec![
                step(0, "next", fetch(None)),
                step(0, "notices", json!([])),
                step(10, "fetched", json!({"status": 200, "etag": "\"v1\"", "body": config_a()})),
                step(10, "notices", n.clone()),
                step(10, "state", json!({"ready": true, "etag": "\"v1\"", "configFailures": 0, "nextFetchMs": 1010})),
                step(10, "next", wait(1000)),
                step(1010, "next", fetch(Some("\"v1\""))),
                step(1020, "fetched", json!({"status": 304})),
                step(1020, "notices", json!([])),
                step(1020, "next", wait(1000)),
                step(1020, "state", json!({"etag": "\"v1\"", "stale": false, "nextFetchMs": 2020})),
            ],
        ),
        script(
            "backoff-retry-after-stale-recover",
            "Failures double the delay up to the cap, Retry-After lengthens it, a repeated kind is marked, the client turns stale and recovers.",
            client_options(),
            options(true, true),
            n.clone(),
            vec![
                step(0, "next", fetch(None)),
                step(5, "fetched", json!({"failure": "NETWORK", "message": "connection refused"})),
                step(5, "notices", json!([{"notice": "error", "channel": "config", "kind": "NETWORK", "status": null, "message": "connection refused", "repeat": false}])),
                step(5, "state", json!({"configFailures": 1, "nextFetchMs": 2005})),
                step(5, "next", wait(2000)),
                step(2005, "next", fetch(None)),
                step(2010, "fetched", json!({"status": 503, "retryAfter": "7"})),
                step(2010, "notices", json!([{"notice": "error", "channel": "config", "kind": "HTTP", "status": 503, "message": "HTTP 503", "repeat": false}])),
                step(2010, "state", json!({"configFailures": 2, "nextFetchMs": 9010})),
                step(2010, "next", wait(2990)),
                step(5000, "next", wait(4010)),
                step(5000, "notices", json!([{"notice": "stale", "sinceMs": 0}])),
                step(5000, "state", json!({"stale": true, "nextFlushMs": 10000})),
                step(9010, "next", fetch(None)),
                step(9020, "fetched", json!({"status": 503})),
                step(9020, "notices", json!([{"notice": "error", "channel": "config", "kind": "HTTP", "status": 503, "message": "HTTP 503", "repeat": true}])),
                step(9020, "state", json!({"configFailures": 3, "nextFetchMs": 17020})),
                step(9020, "next", wait(980)),
                step(10000, "next", wait(5000)),
                step(17020, "next", fetch(None)),
                step(17030, "fetched", json!({"status": 200, "etag": "\"v1\"", "body": config_a()})),
                step(17030, "notices", n.clone()),
                step(17030, "state", json!({"ready": true, "stale": false, "configFailures": 0, "nextFetchMs": 18030})),
            ],
        ),
        script(
            "rejected-config-keeps-the-good-one",
            "A rejected body is remembered by ETag (sent until the server has another) and by content (not compiled again), never backs off and never confirms; an identical accepted body is not compiled again either.",
            client_options(),
            options(true, false),
            config_a(),
            vec![
                step(0, "notices", json!([{"notice": "ready"}])),
                step(0, "next", fetch(None)),
                step(10, "fetched", json!({"status": 200, "etag": "\"bad\"", "body": bad_config()})),
                step(10, "notices", n.clone()),
                step(10, "state", json!({"ready": true, "etag": null, "rejectedEtag": "\"bad\"", "configFailures": 0, "nextFetchMs": 1010})),
                step(1010, "next", fetch(Some("\"bad\""))),
                step(1020, "fetched", json!({"status": 304})),
                step(1020, "notices", json!([])),
                step(2020, "next", fetch(Some("\"bad\""))),
                step(2030, "fetched", json!({"status": 200, "etag": "\"bad2\"", "body": bad_config()})),
                step(2030, "notices", json!([{"notice": "error", "channel": "config", "kind": "INVALID_CONFIG", "status": 200, "message": "the same rejected config again", "repeat": true}])),
                step(2030, "state", json!({"rejectedEtag": "\"bad2\""})),
                step(3030, "next", fetch(Some("\"bad2\""))),
                step(3040, "fetched", json!({"failure": "TOO_LARGE", "message": "the body is larger than 16777216 bytes"})),
                step(3040, "notices", n.clone()),
                step(3040, "state", json!({"rejectedEtag": "\"bad2\"", "etag": null, "configFailures": 1, "nextFetchMs": 5040})),
                step(5040, "next", fetch(Some("\"bad2\""))),
                step(5050, "notices", json!([{"notice": "stale", "sinceMs": 0}])),
                step(5050, "fetched", json!({"status": 200, "etag": "\"v2\"", "body": config_b()})),
                step(5050, "notices", n.clone()),
                step(5050, "state", json!({"etag": "\"v2\"", "rejectedEtag": null, "stale": false, "configFailures": 0})),
                step(6050, "next", fetch(Some("\"v2\""))),
                step(6060, "fetched", json!({"status": 200, "etag": "\"v2b\"", "body": config_b()})),
                step(6060, "notices", json!([])),
                step(6060, "state", json!({"etag": "\"v2b\""})),
            ],
        ),
        script(
            "cut-body-and-stop-abort",
            "A body that is not JSON may be cut short: its ETag is not remembered and the next poll fetches again; an abort while stopping is no fault.",
            client_options(),
            options(true, false),
            config_a(),
            vec![
                step(0, "next", fetch(None)),
                step(10, "fetched", json!({"status": 200, "etag": "\"v2\"", "bodyText": "{\"version\": 2, \"rollo"})),
                step(10, "notices", n.clone()),
                step(10, "state", json!({"etag": null, "rejectedEtag": null, "configFailures": 0, "nextFetchMs": 1010})),
                step(1010, "next", fetch(None)),
                step(1020, "fetched", json!({"status": 200, "etag": "\"v2\"", "bodyText": "{\"version\": 2, \"rollo"})),
                step(1020, "notices", n.clone()),
                step(2020, "next", fetch(None)),
                step(2030, "fetched", json!({"status": 200, "etag": "\"v2\"", "body": config_b()})),
                step(2030, "notices", n.clone()),
                step(2030, "state", json!({"etag": "\"v2\"", "rejectedEtag": null})),
                step(3030, "next", fetch(Some("\"v2\""))),
                step(3040, "stop", json!({"flush": false})),
                step(3040, "fetched", json!({"failure": "ABORTED", "message": "stopping"})),
                step(3040, "notices", json!([])),
                step(3040, "next", json!({"action": "stop"})),
                step(3040, "state", json!({"stopped": true, "configFailures": 0})),
            ],
        ),
        script(
            "uploads-ack-nack-drop-drain",
            "Upload rounds: a nacked batch comes back first with the same seq, a refused batch is dropped and counted, a timeout ends the round with backoff, stop drains the queue.",
            client_options(),
            options(false, true),
            n.clone(),
            vec![
                step(0, "next", wait(5000)),
                step(100, "track", json!({"name": "a", "value": 1})),
                step(200, "track", json!({"name": "b", "value": 2})),
                step(5000, "next", n.clone()),
                step(5010, "uploaded", json!({"seq": 1, "status": 503})),
                step(5010, "notices", json!([{"notice": "error", "channel": "events", "kind": "HTTP", "status": 503, "message": "HTTP 503", "repeat": false}])),
                step(5010, "state", json!({"uploadFailures": 1, "nextFlushMs": 13010, "batchesAcked": 0})),
                step(5010, "next", wait(8000)),
                step(13010, "next", n.clone()),
                step(13020, "uploaded", json!({"seq": 1, "status": 204})),
                step(13020, "notices", json!([{"notice": "recovered", "channel": "events", "failures": 1}])),
                step(13020, "next", wait(5000)),
                step(13020, "state", json!({"batchesAcked": 1, "uploadFailures": 0, "nextFlushMs": 18020})),
                step(14000, "track", json!({"name": "c", "value": 3})),
                step(14000, "flushNow", json!({})),
                step(14000, "next", n.clone()),
                step(14010, "uploaded", json!({"seq": 2, "status": 413})),
                step(14010, "notices", json!([{"notice": "dropped", "seq": 2, "events": 1, "status": 413}])),
                step(14010, "track", json!({"name": "d", "value": 4})),
                step(14010, "next", n.clone()),
                step(14020, "uploaded", json!({"seq": 3, "failure": "TIMEOUT", "message": "deadline passed"})),
                step(14020, "notices", n.clone()),
                step(14020, "state", json!({"batchesDropped": 1, "uploadFailures": 1, "nextFlushMs": 22020})),
                step(15000, "stop", json!({"flush": true})),
                step(15000, "next", n.clone()),
                step(15010, "uploaded", json!({"seq": 3, "status": 200})),
                step(15010, "next", json!({"action": "stop"})),
                step(15010, "state", json!({"stopped": true, "batchesAcked": 2, "batchesDropped": 1})),
            ],
        ),
        script(
            "deadline-expiry-and-late-report",
            "A request never reported expires at its deadline as a timeout; a late report is ignored; pollNow fetches at once.",
            client_options(),
            options(true, false),
            n.clone(),
            vec![
                step(0, "next", fetch(None)),
                step(100, "next", wait(400)),
                step(500, "next", wait(2000)),
                step(500, "notices", json!([{"notice": "error", "channel": "config", "kind": "TIMEOUT", "status": null, "message": "no report within 500 ms", "repeat": false}])),
                step(600, "fetched", json!({"status": 200, "etag": "\"late\"", "body": config_a()})),
                step(600, "notices", json!([])),
                step(600, "state", json!({"ready": false, "etag": null, "configFailures": 1, "nextFetchMs": 2500})),
                step(700, "pollNow", json!({})),
                step(700, "next", fetch(None)),
                step(710, "fetched", json!({"status": 200, "etag": "\"v1\"", "body": config_a()})),
                step(710, "notices", n.clone()),
                step(710, "state", json!({"ready": true, "etag": "\"v1\"", "configFailures": 0})),
                step(800, "stop", json!({"flush": true})),
                step(800, "next", json!({"action": "stop"})),
            ],
        ),
        script(
            "jitter-and-retry-after-date",
            "Delays are spread by the seeded generator; an HTTP-date Retry-After is read against the client's clock.",
            json!({"fixedTimeMs": 784_111_770_000_i64, "clientId": "sync-vectors"}),
            json!({"configUrl": CONFIG_URL, "pollIntervalMs": 1000, "maxBackoffMs": 8000, "timeoutMs": 500, "jitter": 0.5, "seed": 42, "staleAfterPolls": 100}),
            n.clone(),
            vec![
                step(0, "next", fetch(None)),
                step(0, "fetched", json!({"status": 429, "retryAfter": "Sun, 06 Nov 1994 08:49:37 GMT"})),
                step(0, "state", json!({"nextFetchMs": 7000})),
                step(7000, "next", fetch(None)),
                step(7010, "fetched", json!({"status": 200, "etag": "\"v1\"", "body": config_a()})),
                step(7010, "state", json!({"nextFetchMs": 7669})),
                step(7669, "next", fetch(Some("\"v1\""))),
                step(7670, "fetched", json!({"status": 304})),
                step(7670, "state", json!({"nextFetchMs": 8448})),
            ],
        ),
    ]
}

/// The `sync.json` vector file: every script with its expected values
/// filled in (and its hand-written ones checked).
pub fn build() -> Result<Value, String> {
    let mut out = Vec::new();
    for s in scripts() {
        out.push(run_script(&s, true)?);
    }
    Ok(json!({
        "name": "sync",
        "description": "The host protocol (docs/sync.md): scripted host times and responses, and the actions, notices and state the sync state machine must give.",
        "scripts": out,
    }))
}
