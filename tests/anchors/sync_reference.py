#!/usr/bin/env python3
"""Clean-room Python reference of the host protocol (docs/sync.md): the sync state machine.

Written from docs/sync.md, docs/spec.md (config loading, isolation, update
reports, limits) and docs/wire-format.md section 11 (the event queue, batches,
ack / nack) only, without reading the engine's source. It is the runner of the
conformance vectors of `kind: "sync"` (docs/sync.md section 10), called by
tests/anchors/reference.py, whose config loading (`load_config`, per-document
isolation), `SplitMix64`, `xxh3` and `encode_batch` it uses.

Pieces:

- `RefClient`: the part of a client the protocol touches: the JSON client
  options (`clientId`, `service`, `fixedTimeMs`, `maxConfigBytes`,
  `isolation`, `maxQueue`, `maxFoldKeys`, `maxUnackedBatches`), an adjustable
  fixed clock, `update_config` from bytes (spec 13 and 17: `config_bytes`,
  the parse-time JSON limits, `expanded_constraints`, then `load_config`)
  returning the `UpdateReport` JSON (spec 13.4), `track`, and the queue of
  wire-format section 11 (`take_batch`, `ack`, `nack`).
- `SyncMachine`: docs/sync.md sections 1 to 9 (`next`, `on_fetch`,
  `on_upload`, `poll_now`, `flush_now`, `stop`, `take_notices`, `state`).
- `run_sync`: section 10, one case per script.

Error messages. docs/sync.md gives the texts the machine writes itself
(`HTTP <status>`, `the same rejected config again`, `no report within <t> ms`)
and says a failure's message is the host's; those are compared. The engine's
config error texts are not specified (a JSON syntax error is serde_json's
text; problem reasons are the engine's): such messages are produced here in
this module's own wording and flagged "unspecified", the runner compares every
other field of those notices and lists the messages it did not compare. A
`config_bytes` limit message (the format spec 17 states) is compared.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import reference as ref  # noqa: E402

MIB = 1 << 20

# docs/sync.md section 8.
ERROR_KINDS = (
    "INVALID_CONFIG", "INVALID_FACETS", "INVALID_OPTIONS", "INVALID_ARGUMENT", "INVALID_BATCH",
    "NOT_A_BATCH", "BATCH_VERSION", "BATCH_CHECKSUM", "BATCH_MALFORMED", "LIMIT_EXCEEDED", "CLOSED",
    "NO_FIXED_CLOCK", "NETWORK", "HTTP", "TIMEOUT", "TOO_LARGE", "INCOMPLETE", "ABORTED", "INTERNAL",
)
FAILURE_KINDS = ("NETWORK", "TIMEOUT", "TOO_LARGE", "INCOMPLETE", "ABORTED")  # section 1
REJECTION_KINDS = ("INVALID_CONFIG", "LIMIT_EXCEEDED")  # section 7: ended only by a confirmation
REFUSED_STATUSES = (400, 413, 422)  # section 5: dropped for good

# spec 17.
DEFAULT_MAX_CONFIG_BYTES = 16 * MIB
JSON_DEPTH_MAX = 64
STRING_BYTES_MAX = 1 * MIB
ARRAY_LEN_MAX = 1_000_000
EXPANDED_CONSTRAINTS_BASE = 16_384

# wire-format 11.2 to 11.4 defaults.
DEFAULT_MAX_QUEUE = 10_000
DEFAULT_MAX_FOLD_KEYS = 10_000
DEFAULT_MAX_UNACKED = 64

UNSPECIFIED = "unspecified"  # marks a message whose text the docs do not give


class SyncError(Exception):
    """An error of one of the kinds of docs/sync.md section 8."""

    def __init__(self, kind, message, specified=False, not_json=False, limit=None):
        super().__init__(message)
        self.kind, self.message, self.specified = kind, message, specified
        self.not_json = not_json  # the body was not (UTF-8) JSON: docs/sync.md section 4
        # docs/sync.md section 7: a limit's notice names it {limit, max, found}
        self.limit = limit


def _limit_message(name, found, maximum):
    # spec 17: "limit `config_bytes` exceeded: found 17000000, the maximum is 16777216"
    return f"limit `{name}` exceeded: found {found}, the maximum is {maximum}"


def _limit(name, found, maximum):
    """The `limit` of a notice (docs/sync.md section 7)."""
    return {"limit": name, "max": maximum, "found": found}


# ===========================================================================
# The client: config updates from bytes (spec 13, 17) and the event queue
# (wire-format 11).


def _positive_int(opts, key, default):
    v = opts.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise SyncError("INVALID_OPTIONS", f"`{key}` must be a positive integer", True)
    return v


def _check_json_limits(value):
    """spec 17: json_depth, string_bytes and array_len of a parsed config (iteratively)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > JSON_DEPTH_MAX:
                raise SyncError("LIMIT_EXCEEDED", _limit_message("json_depth", depth, JSON_DEPTH_MAX))
            if isinstance(v, list):
                if len(v) > ARRAY_LEN_MAX:
                    raise SyncError("LIMIT_EXCEEDED", _limit_message("array_len", len(v), ARRAY_LEN_MAX))
                stack.extend((x, depth + 1) for x in v)
            else:
                for k, x in v.items():
                    n = len(k.encode("utf-8", "surrogatepass"))
                    if n > STRING_BYTES_MAX:
                        raise SyncError("LIMIT_EXCEEDED", _limit_message("string_bytes", n, STRING_BYTES_MAX))
                    stack.append((x, depth + 1))
        elif isinstance(v, str):
            n = len(v.encode("utf-8", "surrogatepass"))
            if n > STRING_BYTES_MAX:
                raise SyncError("LIMIT_EXCEEDED", _limit_message("string_bytes", n, STRING_BYTES_MAX))


def _parse_config_text(data: bytes):
    """spec 13.1: UTF-8 JSON (serde_json's reading: no NaN / Infinity, no number out of f64 range)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SyncError("INVALID_CONFIG", f"config is not UTF-8: {e}", not_json=True)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    def finite_float(s):
        x = float(s)
        if math.isinf(x):
            raise ValueError(f"number out of range: {s}")
        return x

    # The nesting limit is checked on the text first, so that Python's own
    # recursion limit never decides (serde_json stops while parsing too).
    depth = top = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            top = max(top, depth)
            if depth > JSON_DEPTH_MAX:
                raise SyncError("LIMIT_EXCEEDED", _limit_message("json_depth", depth, JSON_DEPTH_MAX))
        elif ch in "]}":
            depth -= 1
    try:
        value = json.loads(text, parse_constant=no_constant, parse_float=finite_float)
    except (ValueError, RecursionError) as e:
        raise SyncError("INVALID_CONFIG", f"config is not JSON: {e}", not_json=True)
    _check_json_limits(value)
    return value


def _expanded_constraints(cfg) -> int:
    """spec 17 `expanded_constraints`: the constraints of every rule and experiment, each
    segment reference counted as its segment's constraints."""
    segments = {}
    if isinstance(cfg, dict) and "variable" not in cfg and not ("variables" in cfg and "name" in cfg):
        raw = cfg.get("segments")
        if isinstance(raw, dict):
            for name, seg in raw.items():
                lst = ref.segment_constraints(seg)
                segments[name] = len(lst) if isinstance(lst, list) else 0
        rdocs = cfg.get("rollouts") if isinstance(cfg.get("rollouts"), list) else []
        edocs = cfg.get("experiments") if isinstance(cfg.get("experiments"), list) else []
    elif isinstance(cfg, dict) and "variable" in cfg:
        rdocs, edocs = [cfg], []
    elif isinstance(cfg, dict):
        rdocs, edocs = [], [cfg]
    else:
        return 0

    def targeting(obj):
        if not isinstance(obj, dict):
            return 0
        n = len(obj["constraints"]) if isinstance(obj.get("constraints"), list) else 0
        refs = obj.get("segments")
        for s in refs if isinstance(refs, list) else []:
            if isinstance(s, str):
                n += segments.get(s, 0)
        return n

    total = 0
    for d in rdocs:
        rules = d.get("rollouts") if isinstance(d, dict) else None
        for r in rules if isinstance(rules, list) else []:
            total += targeting(r)
    for e in edocs:
        total += targeting(e)
    return total


def _defined_variables(cfg: ref.Config | None):
    """variable -> sorted fingerprints of the documents deciding it; a variable named only by a
    rejected document with no last good version (PARSE_ERROR, spec 9) gets a marker."""
    out = {}
    if cfg is None:
        return out
    for var, r in cfg.rollouts.items():
        out.setdefault(var, []).append(getattr(r, "fingerprint", None))
    for e in cfg.experiments:
        for v in e.variables:
            out.setdefault(v.name, []).append(getattr(e, "fingerprint", None))
    for var in cfg.parse_error:
        out.setdefault(var, []).append("<rejected, no last good version>")
    for var in cfg.rejected_names:
        out.setdefault(var, [])
    return {k: sorted(v, key=str) for k, v in out.items()}


def update_report_json(previous: ref.Config | None, new: ref.Config, report: ref.Report):
    """spec 13.4: `UpdateReport {version, added, removed, changed, rejected, warnings}`."""
    before, after = _defined_variables(previous), _defined_variables(new)
    version = new.version
    if isinstance(version, float):
        version = int(version)
    return {
        "version": version,
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(v for v in set(after) & set(before) if after[v] != before[v]),
        "rejected": [
            {
                "document": r["document"],
                "problems": [f"{d}: {p}: {why}" if p else f"{d}: {why}" for d, p, why in (r["problems"] or [])],
                "kept_last_good": r["kept_last_good"],
                "kill_switch": r["kill_switch"],
            }
            for r in report.rejected
        ],
        "warnings": list(report.warnings),
    }


class Batch:
    def __init__(self, seq, events, header):
        self.seq, self.events, self.header = seq, events, header
        self.bytes = ref.encode_batch(header, events)
        self.nacked = False

    def occurrences(self):
        return sum(e["count"] for e in self.events)


class RefClient:
    """The client as the protocol sees it (JSON client options of the bindings)."""

    def __init__(self, options: dict | None):
        o = dict(options or {})
        self.client_id = o.get("clientId") or "0000000000000000"
        self.service = o.get("service") or ""
        self.fixed_time_ms = o.get("fixedTimeMs")
        self.now_ms = self.fixed_time_ms if self.fixed_time_ms is not None else 0
        self.max_config_bytes = _positive_int(o, "maxConfigBytes", DEFAULT_MAX_CONFIG_BYTES)
        self.strict = o.get("isolation") in ("strict", "Strict")
        self.max_queue = _positive_int(o, "maxQueue", DEFAULT_MAX_QUEUE)
        self.max_fold_keys = _positive_int(o, "maxFoldKeys", DEFAULT_MAX_FOLD_KEYS)
        self.max_unacked = _positive_int(o, "maxUnackedBatches", DEFAULT_MAX_UNACKED)
        self.config: ref.Config | None = None
        # wire-format 11
        self.pending = []       # events not yet in a batch, oldest first
        self.fold = {}          # fold key -> pending event
        self.held = {}          # seq -> Batch (in flight or waiting for its retry)
        self.next_seq = 1
        self.dropped = 0        # since the previous new batch
        self.fold_overflow = 0  # since the previous new batch

    def set_time(self, ms):
        self.now_ms = ms

    # --- config -----------------------------------------------------------

    def update_config(self, data: bytes):
        """`Client::update_config` on raw bytes: the UpdateReport JSON, or SyncError
        (INVALID_CONFIG / LIMIT_EXCEEDED); the config in force is untouched on error."""
        if len(data) > self.max_config_bytes:
            raise SyncError("LIMIT_EXCEEDED", _limit_message("config_bytes", len(data), self.max_config_bytes),
                            specified=True, limit=_limit("config_bytes", len(data), self.max_config_bytes))
        value = _parse_config_text(data)
        n = _expanded_constraints(value)
        cap = EXPANDED_CONSTRAINTS_BASE + len(data) // 4
        if n > cap:
            raise SyncError("LIMIT_EXCEEDED", _limit_message("expanded_constraints", n, cap))
        try:
            cfg, report = ref.load_config(value, self.config, strict=self.strict)
        except ref.BundleRejected as e:
            raise SyncError("INVALID_CONFIG", str(e))
        out = update_report_json(self.config, cfg, report)
        self.config = cfg
        return out

    # --- events -----------------------------------------------------------

    def track(self, name, value, facets=None):
        facets = dict(facets or {})
        full = f"{self.service}.{name}" if self.service else name
        v = float(value)
        key = (self.service, full, ref._f64_bits(v),
               tuple(sorted((k, json.dumps(x, sort_keys=True)) for k, x in facets.items())))
        ev = self.fold.get(key)
        if ev is not None:
            ev["count"] += 1
            return
        ev = {"kind": "track", "time": self.now_ms, "count": 1, "service": self.service,
              "name": full, "value": v, "facets": facets}
        if len(self.pending) >= self.max_queue:
            old = self.pending.pop(0)
            self.dropped += old["count"]
            self.fold.pop(old.get("_key"), None)
        if len(self.fold) < self.max_fold_keys:
            ev["_key"] = key
            self.fold[key] = ev
        else:
            self.fold_overflow += 1
        self.pending.append(ev)

    def take_batch(self, max_events):
        nacked = sorted(s for s, b in self.held.items() if b.nacked)
        if nacked:
            b = self.held[nacked[0]]
            b.nacked = False
            return b
        if not self.pending and not self.dropped and not self.fold_overflow:
            return None
        if len(self.held) >= self.max_unacked:
            oldest = min(self.held)
            self.dropped += self.held.pop(oldest).occurrences()
        take, self.pending = self.pending[:max(1, max_events)], self.pending[max(1, max_events):]
        for ev in take:
            self.fold.pop(ev.pop("_key", None), None)
        header = {"clientId": self.client_id, "sdk": "turnout-python-reference", "sdkVersion": "1",
                  "platform": "any", "seq": self.next_seq, "createdAtMs": self.now_ms,
                  "dropped": self.dropped, "foldOverflow": self.fold_overflow}
        self.dropped = self.fold_overflow = 0
        b = Batch(self.next_seq, take, header)
        self.next_seq += 1
        self.held[b.seq] = b
        return b

    def ack(self, seq):
        return self.held.pop(seq, None) is not None

    def nack(self, seq):
        b = self.held.get(seq)
        if b is None:
            return False
        b.nacked = True
        return True


# ===========================================================================
# The sync machine (docs/sync.md sections 2 to 9).


class SyncOptions:
    def __init__(self, o: dict | None):
        o = dict(o or {})
        for k in ("configUrl", "eventsUrl"):
            if o.get(k) is not None and not isinstance(o[k], str):
                raise SyncError("INVALID_OPTIONS", f"`{k}` must be a string", True)
        self.config_url = o.get("configUrl")
        self.events_url = o.get("eventsUrl")
        if self.config_url is None and self.events_url is None:
            raise SyncError("INVALID_OPTIONS", "one of `configUrl` and `eventsUrl` is required", True)
        self.poll = _positive_int(o, "pollIntervalMs", 30_000)
        self.flush = _positive_int(o, "flushIntervalMs", self.poll)
        self.max_backoff = _positive_int(o, "maxBackoffMs", 300_000)
        self.timeout = _positive_int(o, "timeoutMs", 10_000)
        self.max_batch_events = _positive_int(o, "maxBatchEvents", 1_000)
        self.stale_after_polls = _positive_int(o, "staleAfterPolls", 5)
        j = o.get("jitter", 0.1)
        if j is None:
            j = 0.1
        if isinstance(j, bool) or not isinstance(j, (int, float)) or not (0 <= j < 1):
            raise SyncError("INVALID_OPTIONS", "`jitter` must be in [0, 1)", True)
        self.jitter = float(j)
        seed = o.get("seed", 0)
        if seed is None:
            seed = 0
        if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed <= ref.MASK64):
            raise SyncError("INVALID_OPTIONS", "`seed` must be an unsigned 64-bit integer", True)
        self.seed = seed


_IMF = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
                  r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
                  r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def retry_after_ms(value, clock_ms):
    """section 3.1: delta-seconds or an IMF-fixdate, in ms; None when absent or anything else."""
    if not isinstance(value, str):
        return None
    if re.fullmatch(r"[0-9]+", value):
        return int(value) * 1000
    m = _IMF.fullmatch(value)
    if not m:
        return None
    _, dd, mon, yyyy, hh, mi, ss = m.groups()
    day, month, year = int(dd), _MONTHS.index(mon) + 1, int(yyyy)
    if not (1 <= day <= calendar.monthrange(year, month)[1]) or int(hh) > 23 or int(mi) > 59 or int(ss) > 59:
        return None
    at_ms = calendar.timegm((year, month, day, int(hh), int(mi), int(ss), 0, 0, 0)) * 1000
    return max(0, at_ms - clock_ms)


def _is_2xx(status):
    return 200 <= status <= 299


class SyncMachine:
    def __init__(self, client: RefClient, options: dict | None):
        self.client = client
        self.o = SyncOptions(options)
        self.rng = ref.SplitMix64(self.o.seed)
        self.started = False
        self.outstanding = None  # {"kind", "deadline", "seq", "sent_rejected", "etag_sent"}
        self.stopped = False
        self.stop_flush = False
        self.drain_over = False
        self.finished = False    # `Stop` was returned
        self.next_fetch = None
        self.next_flush = None
        self.round = False       # an upload round is running
        self.config_failures = 0
        self.upload_failures = 0
        self.etag = None         # ETag of the config in force
        self.rejected_etag = None
        self.in_force_hash = None
        self.rejected_hash = None
        self.confirmed_at = None
        self.stale = False
        self.ready = client.config is not None
        self.last_kind = {"config": None, "events": None}
        self.batches_acked = 0
        self.batches_dropped = 0
        self.notices = []
        if self.ready:
            self.notices.append({"notice": "ready"})  # section 6: a bootstrap

    # --- section 3.1 ------------------------------------------------------

    def delay(self, base, failures, retry_after=None):
        cap = max(self.o.max_backoff, base)
        d = float(base) if failures == 0 else float(min(base * 2 ** min(failures, 30), cap))
        if self.o.jitter > 0:
            u = (self.rng.next() >> 11) / 2.0**53
            d = d * (1 + self.o.jitter * (2 * u - 1))
        ms = math.floor(d)
        if retry_after is not None:
            ms = max(ms, min(retry_after, cap))
        return max(1, ms)

    # --- notices ----------------------------------------------------------

    def _error(self, channel, kind, status, message, specified, limit=None):
        assert kind in ERROR_KINDS, kind
        repeat = self.last_kind[channel] == kind
        self.last_kind[channel] = kind
        n = {"notice": "error", "channel": channel, "kind": kind, "status": status, "message": message,
             "repeat": repeat}
        if limit is not None:
            n["limit"] = limit
        if not specified:
            n["_message"] = UNSPECIFIED
        self.notices.append(n)

    def take_notices(self):
        out, self.notices = self.notices, []
        return out

    # --- section 3 --------------------------------------------------------

    def next(self, now):
        if not self.started:
            self.started = True
            if self.o.config_url is not None:
                self.next_fetch = now
            if self.o.events_url is not None:
                self.next_flush = 0 if self.next_flush == 0 else now + self.o.flush  # flushNow() came first
            self.confirmed_at = now
        # 1. a request outstanding
        if self.outstanding is not None:
            req = self.outstanding
            if now < req["deadline"]:
                return {"action": "wait", "ms": req["deadline"] - now}
            self.outstanding = None
            failure = {"failure": "TIMEOUT", "message": f"no report within {self.o.timeout} ms"}
            if req["kind"] == "fetch":
                self._fetch_outcome(now, req, failure, specified=True)
            else:
                self._upload_outcome(now, req, failure, specified=True)
        # 2. stopped
        if self.stopped:
            if self.stop_flush and self.o.events_url is not None and not self.drain_over and not self.finished:
                batch = self.client.take_batch(self.o.max_batch_events)
                if batch is not None:
                    return self._send_upload(now, batch, drain=True)
            self.finished = True
            return {"action": "stop"}
        # 3. staleness (section 6)
        if self.o.config_url is not None and not self.stale and \
                now >= self.confirmed_at + self.o.stale_after_polls * self.o.poll:
            self.stale = True
            self.notices.append({"notice": "stale", "sinceMs": self.confirmed_at})
        # 4. a config fetch
        if self.o.config_url is not None and now >= self.next_fetch:
            sent_rejected = self.rejected_etag is not None
            etag = self.rejected_etag if sent_rejected else self.etag
            self.outstanding = {"kind": "fetch", "deadline": now + self.o.timeout, "sent_rejected": sent_rejected,
                                "etag_sent": etag}
            return {"action": "fetch", "url": self.o.config_url, "etag": etag, "timeoutMs": self.o.timeout,
                    "maxBytes": self.client.max_config_bytes}
        # 5. an upload round
        if self.o.events_url is not None and (self.round or now >= self.next_flush):
            batch = self.client.take_batch(self.o.max_batch_events)
            if batch is not None:
                self.round = True
                return self._send_upload(now, batch, drain=False)
            self.round = False
            self.next_flush = now + self.delay(self.o.flush, 0)
        # 6. wait
        due = []
        if self.o.config_url is not None:
            due.append(self.next_fetch)
            if not self.stale:
                due.append(self.confirmed_at + self.o.stale_after_polls * self.o.poll)
        if self.o.events_url is not None:
            due.append(self.next_flush)
        return {"action": "wait", "ms": max(1, min(due) - now)}

    def _send_upload(self, now, batch, drain):
        self.outstanding = {"kind": "upload", "deadline": now + self.o.timeout, "seq": batch.seq,
                            "events": len(batch.events), "drain": drain}
        return {"action": "upload", "url": self.o.events_url, "seq": batch.seq, "bytes": batch.bytes,
                "events": len(batch.events), "timeoutMs": self.o.timeout}

    def poll_now(self):
        self.next_fetch = 0  # section 3: a fetch outstanding counts as the asked-for one

    def flush_now(self):
        self.next_flush = 0

    def stop(self, flush=False):
        if not self.stopped and not self.finished:
            self.stopped = True
            self.stop_flush = bool(flush)
            self.round = False

    # --- section 4 --------------------------------------------------------

    def on_fetch(self, now, outcome):
        req = self.outstanding
        if req is None or req["kind"] != "fetch":
            return  # a late report (section 3, step 1)
        self.outstanding = None
        self._fetch_outcome(now, req, outcome, specified=True)

    def _config_ok_response(self):
        """Any 2xx or valid 304: resets the failure count, ends a run of transport failures."""
        if self.config_failures > 0:
            self.notices.append({"notice": "recovered", "channel": "config", "failures": self.config_failures})
        self.config_failures = 0
        if self.last_kind["config"] not in REJECTION_KINDS:
            self.last_kind["config"] = None

    def _confirm(self, now):
        self.confirmed_at = now
        self.last_kind["config"] = None  # a confirmation ends every fault, rejections included
        if self.stale:
            self.stale = False
            self.notices.append({"notice": "fresh"})

    def _fetch_outcome(self, now, req, outcome, specified):
        if outcome.get("failure") == "ABORTED" and self.stopped:
            return  # section 9: abandoned because the host stops: no fault
        if "failure" in outcome:
            self.config_failures += 1
            self._error("config", outcome["failure"], None, outcome.get("message"), specified)
            self.next_fetch = now + self.delay(self.o.poll, self.config_failures)
            return
        status = outcome["status"]
        etag = outcome.get("etag")
        if _is_2xx(status):
            body = _body_bytes(outcome)
            h = ref.xxh3(body)
            self._config_ok_response()
            if self.in_force_hash is not None and h == self.in_force_hash:
                self.etag = etag
                self.rejected_etag = None
                self._confirm(now)
            elif self.rejected_hash is not None and h == self.rejected_hash[0]:
                self.rejected_etag = etag if self.rejected_hash[2] else None
                self._error("config", self.rejected_hash[1], status, "the same rejected config again", True)
            else:
                try:
                    report = self.client.update_config(body)
                except SyncError as e:
                    # section 4: a body that is not JSON (maybe cut short) keeps no ETag
                    is_json = not e.not_json
                    self.rejected_etag = etag if is_json else None
                    self.rejected_hash = (h, e.kind, is_json)
                    self._error("config", e.kind, status, e.message, e.specified, e.limit)
                else:
                    self.in_force_hash = h
                    self.rejected_hash = None
                    self.etag = etag
                    self.rejected_etag = None
                    self.notices.append({"notice": "applied", "report": report, "etag": etag})
                    if not self.ready:
                        self.ready = True
                        self.notices.append({"notice": "ready"})
                    self._confirm(now)
            self.next_fetch = now + self.delay(self.o.poll, 0)
        elif status == 304 and req["etag_sent"] is not None:
            self._config_ok_response()
            if not req["sent_rejected"]:
                self._confirm(now)
            self.next_fetch = now + self.delay(self.o.poll, 0)
        else:
            r = retry_after_ms(outcome.get("retryAfter"), self.client.now_ms)
            self.config_failures += 1
            message = (f"HTTP {status}" if status != 304
                       else "304 Not Modified to a request without If-None-Match")
            self._error("config", "HTTP", status, message, True)
            self.next_fetch = now + self.delay(self.o.poll, self.config_failures, r)

    # --- section 5 --------------------------------------------------------

    def on_upload(self, now, seq, outcome):
        req = self.outstanding
        if req is None or req["kind"] != "upload" or req["seq"] != seq:
            return  # a late or unknown report
        self.outstanding = None
        self._upload_outcome(now, req, outcome, specified=True)

    def _upload_outcome(self, now, req, outcome, specified):
        seq = req["seq"]
        if outcome.get("failure") == "ABORTED" and self.stopped:
            self.client.nack(seq)  # section 9: no fault, but the drain ends
            self.drain_over = True
            self.round = False
            return
        status = outcome.get("status")
        if "failure" not in outcome and _is_2xx(status):
            self.client.ack(seq)
            self.batches_acked += 1
            if self.upload_failures > 0:
                self.notices.append({"notice": "recovered", "channel": "events", "failures": self.upload_failures})
            self.upload_failures = 0
            self.last_kind["events"] = None
            return  # the round goes on
        if "failure" not in outcome and status in REFUSED_STATUSES:
            self.client.ack(seq)
            self.batches_dropped += 1
            if self.upload_failures > 0:  # section 5: a drop ends a failure run too
                self.notices.append({"notice": "recovered", "channel": "events", "failures": self.upload_failures})
            self.upload_failures = 0
            self.last_kind["events"] = None
            self.notices.append({"notice": "dropped", "seq": seq, "events": req["events"], "status": status})
            return  # the round goes on
        self.client.nack(seq)
        self.upload_failures += 1
        self.round = False
        if req.get("drain"):
            self.drain_over = True  # one attempt per batch: the first failure ends the drain
        if "failure" in outcome:
            self._error("events", outcome["failure"], None, outcome.get("message"), specified)
            self.next_flush = now + self.delay(self.o.flush, self.upload_failures)
        else:
            r = retry_after_ms(outcome.get("retryAfter"), self.client.now_ms)
            self._error("events", "HTTP", status, f"HTTP {status}", True)
            self.next_flush = now + self.delay(self.o.flush, self.upload_failures, r)

    # --- state ------------------------------------------------------------

    def state(self):
        return {
            "ready": self.ready,
            "stale": self.stale,
            "stopped": self.finished,
            "etag": self.etag,
            "rejectedEtag": self.rejected_etag,
            "nextFetchMs": self.next_fetch,
            "nextFlushMs": self.next_flush,
            "configFailures": self.config_failures,
            "uploadFailures": self.upload_failures,
            "batchesAcked": self.batches_acked,
            "batchesDropped": self.batches_dropped,
        }


def _body_bytes(outcome) -> bytes:
    if "bodyText" in outcome:
        return outcome["bodyText"].encode("utf-8")
    if "body" in outcome:
        return json.dumps(outcome["body"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b""


# ===========================================================================
# docs/sync.md section 10: the runner.


def _strip(notices):
    return [{k: v for k, v in n.items() if not k.startswith("_")} for n in notices]


def _problems_shape(problems):
    """A config rejection's `problems`: a non-empty list of {document, field, message} strings."""
    keys = {"document", "field", "message"}
    return (isinstance(problems, list) and problems
            and all(isinstance(p, dict) and set(p) == keys and all(isinstance(p[k], str) for k in keys)
                    for p in problems))


def _notices_match(got, want, unverified, where):
    """Compare as JSON; the `message` of a notice flagged unspecified is left out (and listed),
    and so are its `problems` (the engine's texts) and a `limit` this module did not compute,
    whose shapes are checked (docs/sync.md section 7)."""
    if not isinstance(want, list) or len(got) != len(want):
        return False
    pending = []
    for g, w in zip(got, want):
        if not isinstance(w, dict):
            return False
        if g.get("_message") == UNSPECIFIED:
            if "message" not in w or not isinstance(w["message"], str):
                return False
            if g["kind"] == "INVALID_CONFIG" and not _problems_shape(w.get("problems")):
                return False
            skip = {"message", "problems"} | ({"limit"} if "limit" not in g else set())
            gs = {k: v for k, v in g.items() if not k.startswith("_") and k not in skip}
            ws = {k: v for k, v in w.items() if k not in skip}
            if not ref.json_equal(gs, ws):
                return False
            pending.append(f"{where}: {g['kind']} {w['message']!r} (reference: {g['message']!r})")
        elif not ref.json_equal(_strip([g])[0], w):
            return False
    unverified.extend(pending)
    return True


def run_script(script):
    """One case: (problems, unverified messages)."""
    name = script.get("name")
    unverified = []
    client = RefClient(script.get("clientOptions"))
    fixed = client.fixed_time_ms
    if script.get("bootstrap") is not None:
        boot = json.dumps(script["bootstrap"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        client.update_config(boot)
    sync = SyncMachine(client, script.get("options"))
    for i, step in enumerate(script["steps"]):
        at = step["at"]
        if fixed is not None:
            client.set_time(fixed + at)
        where = f"step {i} (at {at})"
        kinds = [k for k in step if k != "at"]
        if len(kinds) != 1:
            return [f"{where}: a step needs exactly one of its kinds, got {kinds}"], unverified
        kind = kinds[0]
        arg = step[kind]
        if kind == "next":
            got = sync.next(at)
            shown = {k: v for k, v in got.items() if k != "bytes"}
            if not ref.json_equal(shown, arg):
                return [f"{where}: next: expected {json.dumps(arg, sort_keys=True)}, "
                        f"got {json.dumps(shown, sort_keys=True)}"], unverified
        elif kind in ("fetched", "uploaded") and "failure" in arg and arg["failure"] not in FAILURE_KINDS:
            return [f"{where}: {kind}: unknown failure kind {arg['failure']!r} (section 1)"], unverified
        elif kind == "fetched":
            sync.on_fetch(at, arg)
        elif kind == "uploaded":
            sync.on_upload(at, arg.get("seq"), arg)
        elif kind == "track":
            client.track(arg["name"], arg["value"], arg.get("facets"))
        elif kind == "pollNow":
            sync.poll_now()
        elif kind == "flushNow":
            sync.flush_now()
        elif kind == "stop":
            sync.stop(bool((arg or {}).get("flush", False)))
        elif kind == "notices":
            got = sync.take_notices()
            if not _notices_match(got, arg, unverified, f"{name}: {where}"):
                return [f"{where}: notices: expected {json.dumps(arg, sort_keys=True)}, "
                        f"got {json.dumps(_strip(got), sort_keys=True)}"], unverified
        elif kind == "state":
            st = sync.state()
            diff = {k: (v, st.get(k, "<absent>")) for k, v in arg.items()
                    if k not in st or not ref.json_equal(st[k], v)}
            if diff:
                return [f"{where}: state: " + ", ".join(f"{k} expected {json.dumps(w)} got {json.dumps(g)}"
                                                        for k, (w, g) in diff.items())], unverified
        else:
            return [f"{where}: unknown step kind {kind!r}"], unverified
    return [], unverified


def run_sync(path: Path, data, runner):
    """Returns (passed, failed, notes); one case per script."""
    passed = failed = 0
    notes = []
    for script in data.get("scripts", []):
        try:
            problems, unverified = run_script(script)
        except SyncError as e:
            problems, unverified = [f"{e.kind}: {e.message}"], []
        except (KeyError, TypeError, ValueError, AssertionError) as e:
            problems, unverified = [f"{type(e).__name__}: {e}"], []
        if problems:
            failed += 1
            runner.fail(f"{path.name}: script {script.get('name')!r}: " + "; ".join(problems))
        else:
            passed += 1
            notes += unverified
    if notes:
        notes.insert(0, f"{len(notes)} error `message` text(s) and their `problems` texts not compared (the "
                        "docs do not give them; the problems' shape and every other field of those notices was):")
    return passed, failed, notes
