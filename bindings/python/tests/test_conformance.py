"""Every conformance vector, discovered through tests/conformance/index.json:
decisions through the one-shot path, the prepared path and the typed
getters; batches encoded and decoded; sync scripts through the native
``SyncMachine`` (docs/sync.md section 10)."""

from __future__ import annotations

import json
import re
import typing

import pytest
from conftest import CONFORMANCE, RESULTS, exact_ints, index_files, json_equal, vector_facets

import turnout
from turnout._native import ffi

KEYS = ("value", "source", "experiment", "rule", "choice", "reason", "errorCode")


def test_the_index_lists_every_vector_file() -> None:
    # Every kind: a file of a kind this runner does not know is listed, just not run.
    listed = {f["path"] for f in json.loads((CONFORMANCE / "index.json").read_text())["files"]}
    on_disk = {p.name for p in CONFORMANCE.glob("*.json")} - {"index.json", "schema.json"}
    assert listed == on_disk
    assert len(index_files("decisions")) >= 6


def _mismatch(path: str, kind: str, case: typing.Mapping[str, typing.Any], got: typing.Any) -> str:
    return f"{path} [{kind}] {case['variable']} {case['facets']}: expected {case['expected']}, got {got}"


@pytest.mark.parametrize("path", index_files("decisions"))
def test_decision_vectors(path: str) -> None:
    doc = json.loads((CONFORMANCE / path).read_text())
    now = doc["nowMs"]
    failures: typing.List[str] = []
    passed = 0
    with turnout.Client(json.dumps(doc["config"]), fixed_time_ms=now, decision_events="off") as client:
        for case in doc["cases"]:
            client.set_time_ms(case.get("nowMs", now))
            facets = vector_facets(case["facets"])
            expected = case["expected"]
            ok = True
            one_shot = client.get_variable(case["variable"], facets).to_dict()
            var = client.variable(case["variable"])
            with client.context(facets) as ctx:
                prepared = ctx.decision(var).to_dict()
                typed = _typed(ctx, var, expected["value"])
            for kind, got in (("one-shot", one_shot), ("prepared", prepared)):
                if got["variable"] != case["variable"] or not all(json_equal(got[k], expected[k]) for k in KEYS):
                    failures.append(_mismatch(path, kind, case, got))
                    ok = False
            if typed is not None:
                failures.append(_mismatch(path, "typed getter", case, typed))
                ok = False
            passed += ok
    RESULTS[path] = {"passed": passed, "failed": len(doc["cases"]) - passed}
    assert not failures, f"{len(failures)} mismatches, first: " + "\n".join(failures[:5])
    assert passed == len(doc["cases"]) > 0


_SENTINEL_INT = -987654321
_SENTINEL_STR = "\u0000sentinel"


def _typed(ctx: turnout.Context, var: turnout.Variable, value: typing.Any) -> typing.Optional[str]:
    """The hot typed getters agree with the expected value (None when they do)."""
    if isinstance(value, bool):
        got: typing.Any = (ctx.bool(var, not value), ctx.bool(var, value))
        return None if got == (value, value) else f"bool -> {got}"
    if isinstance(value, (int, float)):
        integral = float(value).is_integer() and abs(value) < 2**63
        got = ctx.int64(var, _SENTINEL_INT)
        if got != (int(value) if integral else _SENTINEL_INT):
            return f"int64 -> {got}"
        got = ctx.float64(var, -0.5)
        return None if got == float(value) else f"float64 -> {got}"
    if isinstance(value, str):
        got = ctx.string(var, _SENTINEL_STR)
        return None if got == value else f"string -> {got!r}"
    if value is None:  # fallback: every getter returns the default
        got = (ctx.int64(var, 7), ctx.float64(var, 0.5), ctx.bool(var, True), ctx.string(var, "d"))
        return None if got == (7, 0.5, True, "d") else f"defaults -> {got}"
    return None  # objects and arrays: compared through the decision above


@pytest.mark.parametrize("path", index_files("batches"))
def test_batch_vectors(path: str) -> None:
    doc = json.loads((CONFORMANCE / path).read_text())
    passed = 0
    for case in doc["cases"]:
        data = turnout.encode_batch({"header": case["header"], "events": case["events"]})
        assert data.hex() == case["hex"], f"{case['name']}: encoded bytes differ"
        decoded = turnout.decode_batch(bytes.fromhex(case["hex"]))
        # The decoder's JSON has no valueText: the value it decodes must be
        # exactly the JSON of the wire text (type included: 1.0 stays a float).
        events = []
        for e, got in zip(case["events"], decoded["events"]):
            e = dict(e)
            text = e.pop("valueText", None)
            if text is not None:
                wire = json.loads(text)
                assert type(got.get("value")) is type(wire) and got.get("value") == wire, (case["name"], got, text)
            events.append(e)
        expected = exact_ints({"header": case["header"], "events": events})
        assert json_equal(decoded, expected), f"{case['name']}: {decoded} != {expected}"
        passed += 1
    for case in doc["invalid"]:
        with pytest.raises(turnout.BatchError) as e:
            turnout.decode_batch(bytes.fromhex(case["hex"]))
        assert e.value.kind == case["error"], f"{case['name']}: {e.value}"
        passed += 1
    RESULTS[path] = {"passed": passed, "failed": 0}
    assert passed == len(doc["cases"]) + len(doc["invalid"]) >= 10


@pytest.mark.parametrize("path", index_files("sync"))
def test_sync_vectors(path: str) -> None:
    doc = json.loads((CONFORMANCE / path).read_text())
    failures = [f for f in map(_run_sync_script, doc["scripts"]) if f is not None]
    RESULTS[path] = {"passed": len(doc["scripts"]) - len(failures), "failed": len(failures)}
    assert not failures, "\n".join(failures)
    assert len(doc["scripts"]) > 0


def _sync_action(a: typing.Any) -> typing.Dict[str, typing.Any]:
    """A ``SyncAction`` record in the vectors' JSON form (upload bytes left out)."""
    k = ffi.SyncActionKind
    if a.kind == k.FETCH:
        return {"action": "fetch", "url": a.url, "etag": a.etag, "timeoutMs": a.timeout_ms, "maxBytes": a.max_bytes}
    if a.kind == k.UPLOAD:
        return {"action": "upload", "url": a.url, "seq": a.seq, "events": a.events, "timeoutMs": a.timeout_ms}
    if a.kind == k.WAIT:
        return {"action": "wait", "ms": a.wait_ms}
    return {"action": "stop"}


def _run_sync_script(script: typing.Mapping[str, typing.Any]) -> typing.Optional[str]:
    """Runs one script as docs/sync.md section 10 says; the first mismatch, or None."""
    name = script["name"]
    options = {re.sub("([A-Z])", r"_\1", k).lower(): v for k, v in script["clientOptions"].items()}
    client = turnout.Client(**options)
    if script["bootstrap"] is not None:
        client.update_config(json.dumps(script["bootstrap"], separators=(",", ":")))
    sync = ffi.SyncMachine(client._live(), json.dumps(script["options"]))
    fixed = script["clientOptions"].get("fixedTimeMs")
    for i, step in enumerate(script["steps"]):
        at = step["at"]
        if fixed is not None:
            client.set_time_ms(fixed + at)
        ((op, want),) = [(k, v) for k, v in step.items() if k != "at"]
        w = want or {}
        got: typing.Any = None
        if op == "next":
            got = _sync_action(sync.next(at))
        elif op == "notices":
            got = json.loads(sync.take_notices_json())
        elif op == "state":
            state = json.loads(sync.state_json())
            got = {k: state.get(k) for k in want}
        elif op == "fetched":
            body = w.get("bodyText", "") if w.get("body") is None else json.dumps(w["body"], separators=(",", ":"))
            sync.on_fetch(at, w.get("status", 0), w.get("etag"), w.get("retryAfter"), body.encode(),
                          w.get("failure"), w.get("message", ""))
        elif op == "uploaded":
            sync.on_upload(at, w["seq"], w.get("status", 0), w.get("retryAfter"), w.get("failure"),
                           w.get("message", ""))
        elif op == "track":
            client.track(w.get("name", "event"), w.get("value", 1.0))
        elif op in ("pollNow", "flushNow"):
            getattr(sync, {"pollNow": "poll_now", "flushNow": "flush_now"}[op])()
        elif op == "stop":
            sync.stop(w.get("flush", True))
        else:
            return f"{name}: step {i}: unknown operation {op!r}"
        if op in ("next", "notices", "state") and not json_equal(got, want):
            return f"{name}: step {i}: {op}: expected {want}, got {got}"
    return None
