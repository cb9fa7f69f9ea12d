#!/usr/bin/env python3
"""Independent reference for the worked examples of docs/spec.md (spec version 1).

The examples are computed from their inputs (config, variable, facets, now_ms)
by the clean-room Python implementation of the contract in
tests/anchors/reference.py (written from docs/spec.md, WITHOUT looking at the
engine's code or output): canonical unit strings, numbers, bucket(),
multi-facet units, the constraint ops, segments, config loading with
per-document isolation, experiments (slotting, weighted, timeSliceShuffle with
splitmix64 + Fisher-Yates) and the resolution order. Only xxh3_64 comes from a
library (PyPI `xxhash`, seed 0). The same module runs the conformance vectors
(`python3 tests/anchors/reference.py`).

Every case's full result -- the decision and every intermediate value (bytes
hashed, xxh3_64, bucket, comparisons, shuffle), as traced by
`reference.evaluate` -- is written to / compared with
tests/anchors/spec_examples.json. The Rust test core/tests/spec_examples.rs
then checks that the engine gives the same decisions and buckets.

Usage:
    pip install xxhash
    python3 tests/anchors/spec_examples.py --check     # exit 1 on any difference
    python3 tests/anchors/spec_examples.py --write     # regenerate the JSON and the
                                                       # generated part of docs/spec.md
    python3 tests/anchors/spec_examples.py --markdown  # print the worked examples
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reference import Env, bucket, evaluate, load_config  # noqa: E402  (needs xxhash)

JSON_PATH = HERE / "spec_examples.json"


def resolve(cfg, variable, facets, now_ms):
    """Loads `cfg` (per-document isolation, no previous config) and evaluates one
    call: (decision, trace of every intermediate value)."""
    config, _report = load_config(cfg)
    trace = []
    d = evaluate(config, variable, Env(facets, now_ms), trace)
    return d, trace


# ---------------------------------------------------------------------------
# The worked examples (inputs only; everything else is computed).

SEED_ROLLOUT = {
    "variable": "automatedMessageDelay",
    "rolloutBy": "city",
    "rollouts": [
        {"value": 60, "string": "60s delay", "constraints": [
            {"target": "city", "op": "=", "value": "6"},
            {"target": "svc", "op": "in", "value": "[302, 11]"}]},
        {"value": 90, "string": "90s delay", "constraints": [
            {"target": "city", "op": "=", "value": "10"},
            {"target": "pax", "op": "/", "value": "0.25"}]},
    ],
    "default": 30,
    "version": 1515051871,
    "schema": 1,
}

SEED_EXPERIMENT_RUNNING = {
    "domain": "primary",
    "name": "primary.testTimeSlicedShuffleStrategy",
    "variables": [{
        "name": "timeSlicedShuffleTest1",
        "salt": "primary.testTimeSlicedShuffleStrategy",
        "facets": ["ts"],
        "strategy": "timeSliceShuffle",
        "choices": [{"value": 0, "span": 30}, {"value": 1, "span": 30}],
    }],
    "constraints": [
        {"target": "ts", "op": ">", "value": "1528714601"},
        {"target": "ts", "op": "<", "value": "1528801001"},
        {"target": "city", "op": "=", "value": "5"}],
    "schemaVersion": 1,
    "state": "RUNNING",
    "slotting": {"byPercentage": 0.5},
}


def ramp(p):
    return {"schema": 1, "rollouts": [{
        "variable": "newCheckout",
        "rollouts": [{"value": True, "constraints": [
            {"target": "pax", "op": "/", "value": p, "salt": "newCheckout-ramp"}]}],
        "default": False}]}


WEIGHTED = {"schema": 1, "experiments": [{
    "name": "pricing.feeTest",
    "state": "RUNNING",
    "variables": [{
        "name": "bookingFee",
        "facets": ["pax", "city"],
        "choices": [{"value": 0, "weight": 50}, {"value": 1, "weight": 30}, {"value": 2, "weight": 20}]}]}]}

UNICODE = {"schema": 1, "experiments": [{
    "name": "copy.greetingTest",
    "state": "RUNNING",
    "variables": [{
        "name": "greeting",
        "salt": "greeting-v1",
        "facets": ["tag"],
        "choices": [{"value": "Hello"}, {"value": "Hi"}]}]}]}

FLOAT_FACET = {"schema": 1, "rollouts": [{
    "variable": "cityPilot",
    "rollouts": [{"value": "pilot", "constraints": [
        {"target": "city", "op": "=", "value": 6},
        {"target": "city", "op": "/", "value": 0.75}]}],
    "default": "off"}]}

BIG_ID = {"schema": 1, "rollouts": [{
    "variable": "vipBanner",
    "rollouts": [
        {"value": "exact", "constraints": [{"target": "pax", "op": "=", "value": "9007199254740992"}]},
        {"value": "hashed", "constraints": [{"target": "pax", "op": "/", "value": 0.5}]}],
    "default": "none"}]}

SLOTTED = {"schema": 1,
           "rollouts": [{"variable": "searchRanker", "default": "v1"}],
           "experiments": [
               {"domain": "search", "name": "search.rankerA", "state": "RUNNING",
                "slotting": {"byPercentage": 0.3},
                "variables": [{"name": "searchRanker", "facets": ["pax"],
                               "choices": [{"value": "v1"}, {"value": "v2"}]}]},
               {"domain": "search", "name": "search.rankerB", "state": "RUNNING",
                "slotting": {"byPercentage": 0.3, "offset": 0.3},
                "variables": [{"name": "searchRanker", "facets": ["pax"],
                               "choices": [{"value": "v1"}, {"value": "v3"}]}]}]}

ADJACENT = {"schema": 1,
            "rollouts": [{"variable": "etaModel", "default": "baseline"}],
            "experiments": [
                {"domain": "eta", "name": "eta.modelA", "state": "RUNNING",
                 "slotting": {"byPercentage": 0.2, "offset": 0.1},
                 "variables": [{"name": "etaModel", "facets": ["booking"],
                                "choices": [{"value": "a"}]}]},
                {"domain": "eta", "name": "eta.modelB", "state": "RUNNING",
                 "slotting": {"byPercentage": 0.2, "offset": 0.3},
                 "variables": [{"name": "etaModel", "facets": ["booking"],
                                "choices": [{"value": "b"}]}]}]}

SWITCHBACK = {"schema": 1, "experiments": [{
    "domain": "pricing", "name": "pricing.surgeSwitchback", "state": "RUNNING",
    "constraints": [{"target": "city", "op": "in", "value": [6, 10]}],
    "variables": [{
        "name": "surgeMultiplier", "facets": ["city", "ts"], "strategy": "timeSliceShuffle",
        "choices": [{"value": 100, "span": 1800}, {"value": 120, "span": 1200}, {"value": 150, "span": 600}]}]}]}

KILL = {"schema": 1,
        "rollouts": [{"variable": "newPaymentsSdk", "enabled": False,
                      "rollouts": [{"value": True, "constraints": []}], "default": False}],
        "experiments": [{"name": "payments.sdkTest", "state": "RUNNING",
                         "variables": [{"name": "newPaymentsSdk", "facets": ["pax"],
                                        "choices": [{"value": False}, {"value": True}]}]}]}

SEGMENTS = {"schema": 1,
            "segments": {"jakarta-quarter": {"constraints": [
                {"target": "city", "op": "=", "value": 10},
                {"target": "pax", "op": "/", "value": 0.25}]}},
            "rollouts": [{"variable": "checkoutButtonColor",
                          "rollouts": [{"value": "green", "segments": ["jakarta-quarter"]}],
                          "default": "blue"}]}

PARTLY_BROKEN = {"schema": 1, "rollouts": [
    {"variable": "goodFlag", "default": 1},
    {"variable": "brokenFlag", "rollouts": [
        {"value": 1, "constraints": [{"target": "city", "op": "~=", "value": "6"}]}], "default": 0}]}

STRING_OPS = {"schema": 1, "rollouts": [{
    "variable": "bookingBanner",
    "rollouts": [
        {"value": "not-sg", "constraints": [{"target": "country", "op": "nin", "value": ["SG"]}]},
        {"value": "adr", "constraints": [{"target": "booking", "op": "prefix", "value": "ADR-"}]}],
    "default": "none"}]}

NO_DEFAULT = {"schema": 1, "rollouts": [{
    "variable": "sgOnly",
    "rollouts": [{"value": "sg", "constraints": [{"target": "country", "op": "=", "value": "SG"}]}]}]}


def pick(pred, start, limit=100000):
    """The first id >= start whose property holds (used once to choose example ids)."""
    for i in range(start, start + limit):
        if pred(i):
            return i
    raise RuntimeError("no id found")


def choose_inputs():
    """Picks the ids and times the examples use, by the reference's own bucket()."""
    amd = "automatedMessageDelay"
    pax_in = pick(lambda i: bucket(amd, str(i)) < 0.25, 1000)
    pax_out = pick(lambda i: bucket(amd, str(i)) >= 0.25, 1000)
    # A ramp unit that is out at 10% and in at 25% (so the ramp visibly adds it).
    pax_ramp = pick(lambda i: 0.10 <= bucket("newCheckout-ramp", str(i)) < 0.25, 1000)
    # Seed time-slice: a ts inside the constraints window whose window k is in the 50% slot.
    ts_in = pick(lambda t: bucket("primary", str(t // 60)) < 0.5, 1528714700)
    ts_in = ts_in - ts_in % 60 + 37  # a point 37 s into that window
    ts_out = pick(lambda t: bucket("primary", str(t // 60)) >= 0.5, 1528714700)
    pax_a = pick(lambda i: bucket("search", str(i)) < 0.3, 1000)
    pax_b = pick(lambda i: 0.3 <= bucket("search", str(i)) < 0.6, 1000)
    pax_none = pick(lambda i: bucket("search", str(i)) >= 0.6, 1000)
    booking_b = "ADR-%d" % pick(lambda i: 0.3 <= bucket("eta", "ADR-%d" % i) < 0.5, 1000)
    pax_seg = pick(lambda i: bucket("checkoutButtonColor", str(i)) < 0.25, 1000)
    return locals()


def cases():
    ids = choose_inputs()
    c = []

    def add(name, about, config, variable, facets, now_ms=None):
        c.append({"name": name, "about": about, "config": config, "variable": variable,
                  "facets": facets, "now_ms": now_ms})

    add("seed_singapore_svc302", "Seed rollout, Singapore (city 6) service 302: rule 0 -> 60.",
        SEED_ROLLOUT, "automatedMessageDelay", {"city": 6, "svc": 302, "pax": ids["pax_in"]})
    add("seed_jakarta_pax_in_25pct", "Seed rollout, Jakarta (city 10), a passenger inside the 25%: rule 1 -> 90.",
        SEED_ROLLOUT, "automatedMessageDelay", {"city": 10, "pax": ids["pax_in"]})
    add("seed_jakarta_pax_outside", "Seed rollout, Jakarta, a passenger outside the 25%: default 30.",
        SEED_ROLLOUT, "automatedMessageDelay", {"city": 10, "pax": ids["pax_out"]})
    add("seed_other_city", "Seed rollout, another city (Bangkok, 7) with service 302: default 30.",
        SEED_ROLLOUT, "automatedMessageDelay", {"city": 7, "svc": 302, "pax": ids["pax_in"]})
    add("seed_missing_pax", "Seed rollout, Jakarta with no pax facet: the `/` constraint is false, default 30.",
        SEED_ROLLOUT, "automatedMessageDelay", {"city": "10"})
    add("ramp_10pct", "A `/` ramp at 10% with an explicit salt: this unit is out.",
        ramp(0.10), "newCheckout", {"pax": ids["pax_ramp"]})
    add("ramp_25pct", "The same ramp raised to 25%: the same unit is now in (raising p only adds units).",
        ramp(0.25), "newCheckout", {"pax": ids["pax_ramp"]})
    add("weighted_multi_facet", "Weighted experiment with a two-facet unit (pax, city) joined by 0x1F.",
        WEIGHTED, "bookingFee", {"city": 10, "pax": 123456})
    add("integral_float_facet", "City given as the float 6.0: canonical \"6\", numeric = 6, hashed as \"6\".",
        FLOAT_FACET, "cityPilot", {"city": 6.0})
    add("id_above_2_53", "pax 9007199254740993 (2^53 + 1): exact integer compare, hashed by its own digits.",
        BIG_ID, "vipBanner", {"pax": 9007199254740993})
    add("id_above_2_53_int64_form", "The same id written {\"$int64\": \"...\"} (for JSON writers whose numbers are doubles).",
        BIG_ID, "vipBanner", {"pax": {"$int64": "9007199254740993"}})
    add("unicode_unit", "A unicode string unit: hashed as its UTF-8 bytes.",
        UNICODE, "greeting", {"tag": "Zürich-東京-🚀"})
    add("timeslice_seed_running", "The seed time-slice experiment made RUNNING, ts from a fixed clock.",
        SEED_EXPERIMENT_RUNNING, "timeSlicedShuffleTest1", {"city": 5}, now_ms=ids["ts_in"] * 1000 + 250)
    add("timeslice_three_choices_city_key", "A switchback with three unequal spans and a (city, ts) unit: key = \"6\" 0x1F k.",
        SWITCHBACK, "surgeMultiplier", {"city": 6, "ts": 1700000000})
    add("timeslice_seed_out_of_slot", "Same experiment at a time whose window is outside the 50% slot: fallback.",
        SEED_EXPERIMENT_RUNNING, "timeSlicedShuffleTest1", {"city": 5, "ts": ids["ts_out"]})
    add("slot_in_b", "Two slotted experiments of domain `search` ([0, 0.3) and [0.3, 0.6)): unit in B.",
        SLOTTED, "searchRanker", {"pax": ids["pax_b"]})
    add("slot_in_a", "Same layout: unit in A.", SLOTTED, "searchRanker", {"pax": ids["pax_a"]})
    add("slot_in_none", "Same layout: unit in neither slot, so the rollout document's default applies.",
        SLOTTED, "searchRanker", {"pax": ids["pax_none"]})
    add("slot_rounded_boundaries", "Slots [0.1, 0.1+0.2) and [0.3, 0.5): 0.1+0.2 = 0.30000000000000004 is rounded to 0.3, so they meet and load.",
        ADJACENT, "etaModel", {"booking": ids["booking_b"]})
    add("weighted_missing_facet", "Weighted experiment whose unit facet `city` is missing: the experiment does not apply.",
        WEIGHTED, "bookingFee", {"pax": 123456})
    add("absent_facet_any_op", "An absent facet makes even `nin` false; `prefix` works on the canonical string.",
        STRING_OPS, "bookingBanner", {"booking": "ADR-123-2-001"})
    add("kill_switch", "\"enabled\": false beats a RUNNING experiment on the same variable.",
        KILL, "newPaymentsSdk", {"pax": 42})
    add("segment_inline", "A segment compiled inline; its `/` uses the referencing variable's name as salt.",
        SEGMENTS, "checkoutButtonColor", {"city": 10, "pax": ids["pax_seg"]})
    add("flag_not_found", "A variable no document defines.", SEED_ROLLOUT, "noSuchFlag", {"city": 6})
    add("parse_error_isolated", "A document with an unknown op is rejected; with no last good version -> PARSE_ERROR.",
        PARTLY_BROKEN, "brokenFlag", {"city": 6})
    add("parse_error_neighbour_ok", "The other document of the same bundle still loads.",
        PARTLY_BROKEN, "goodFlag", {"city": 6})
    add("no_default_fallback", "No rule matches and the document has no default: fallback (caller's default).",
        NO_DEFAULT, "sgOnly", {"country": "ID"})
    return c


def compute(case):
    d, trace = resolve(copy.deepcopy(case["config"]), case["variable"], case["facets"], case["now_ms"])
    out = dict(case)
    out["expected"] = d
    out["steps"] = trace
    # The buckets the Rust test re-checks with turnout_core::bucket(salt, unit).
    out["buckets"] = [
        {"salt": s["hash"]["salt"], "unit": s["hash"]["unit"], "bucket": s["hash"]["bucket"]}
        for s in trace if "hash" in s
    ]
    return out


def _num(n):
    return "not a number" if n is None else f'{n["kind"]} {n["value"]}'


def _hash_lines(h, indent="   "):
    return [
        f"{indent}    bytes   = {h['bytes_hex']}",
        f"{indent}              (utf8({json.dumps(h['salt'], ensure_ascii=False)}) ++ 00 ++ "
        f"utf8({json.dumps(h['unit'], ensure_ascii=False)}))",
        f"{indent}    xxh3_64 = {h['xxh3_64']}",
        f"{indent}    >> 11   = {h['top53']}",
        f"{indent}    bucket  = {h['top53']} * 2^-53 = {h['bucket']!r}",
    ]


def _step_lines(st):
    out = []
    kind = st["step"]
    if kind == "constraint":
        head = f'{st["where"]}: `{st["constraint"]}`'
        if st["facet"] is None:
            out.append(f"- {head}: facet `{st['constraint'].split()[0]}` is absent -> **false**")
        elif "hash" in st:
            out.append(f"- {head}: unit {json.dumps(st['facet'], ensure_ascii=False)}")
            out.append("")
            out += _hash_lines(st["hash"])
            out.append(f"       {st['compare']} -> {str(st['result']).lower()}")
            out.append("")
            out.append(f"  -> **{str(st['result']).lower()}**")
        elif "element_matches" in st:
            out.append(f"- {head}: facet {json.dumps(st['facet'], ensure_ascii=False)} ({_num(st['facet_num'])}); "
                       f"`=` per element: [{', '.join(str(x).lower() for x in st['element_matches'])}] -> **{str(st['result']).lower()}**")
        elif "value_num" in st:
            how = st.get("compare", "numeric order")
            out.append(f"- {head}: facet {json.dumps(st['facet'], ensure_ascii=False)} ({_num(st['facet_num'])}) vs value "
                       f"({_num(st['value_num'])}), {how} -> **{str(st['result']).lower()}**")
        else:
            out.append(f"- {head}: canonical facet {json.dumps(st['facet'], ensure_ascii=False)} -> **{str(st['result']).lower()}**")
    elif kind == "slot":
        lo, hi = st["range"]
        if "hash" not in st:
            out.append(f"- slot of `{st['experiment']}` [{lo!r}, {hi!r}): {st['why']} -> **not in slot**")
        else:
            out.append(f"- slot of `{st['experiment']}` [{lo!r}, {hi!r}), unit from {st['unit_from']}:")
            out.append("")
            out += _hash_lines(st["hash"])
            out.append(f"       {st['compare']} -> {str(st['result']).lower()}")
            out.append("")
            out.append(f"  -> **{'in slot' if st['result'] else 'not in slot'}**")
    elif kind == "assign" and "hash" not in st:
        out.append(f"- `{st['experiment']}` assigns `{st['variable']}` ({st['strategy']}): {st['why']} "
                   f"-> the experiment does not apply")
    elif kind == "assign" and st["strategy"] == "weighted":
        out.append(f"- `{st['experiment']}` assigns `{st['variable']}` (weighted), unit "
                   f"{json.dumps(st['hash']['unit'], ensure_ascii=False)}:")
        out.append("")
        out += _hash_lines(st["hash"])
        out.append(f"       thresholds = {[t for t in st['thresholds']]}")
        out.append(f"       first i with bucket < threshold[i]: i = {st['choice']}")
        out.append("")
        out.append(f"  -> **choice {st['choice']}**")
    elif kind == "assign":
        out.append(f"- `{st['experiment']}` assigns `{st['variable']}` (timeSliceShuffle):")
        out.append("")
        out.append(f"       ts = {st['ts']}, P = {st['period']}, k = floor(ts / P) = {st['k']}, r = ts - k*P = {st['r']}")
        out.append(f"       key = {json.dumps(st['key'], ensure_ascii=False)}")
        out += _hash_lines(st["hash"])
        out.append(f"       splitmix64 seed = xxh3_64 = {st['splitmix64_seed']}")
        for d in st["draws"]:
            out.append(f"       i = {d['i']}: next() = {d['next']}, j = next mod {d['i'] + 1} = {d['j']}, swap(order[{d['i']}], order[{d['j']}])")
        out.append(f"       shuffled order = {st['order']}")
        lay = ", ".join(f"choice {c} [{a}, {b})" for c, a, b in st["layout"])
        out.append(f"       layout over [0, {st['period']}): {lay}")
        out.append(f"       r = {st['r']} falls in choice {st['choice']}")
        out.append("")
        out.append(f"  -> **choice {st['choice']}**")
    elif kind == "state":
        out.append(f"- `{st['experiment']}`: state {st['state']} is not RUNNING -> does not apply")
    else:
        out.append(f"- {kind}: {st['result']}")
    return out


def compact_json(v, indent=0, width=96):
    """JSON with small values kept on one line (for the configs in the doc)."""
    flat = json.dumps(v, ensure_ascii=False)
    if indent + len(flat) <= width or not isinstance(v, (dict, list)) or not v:
        return flat
    pad = " " * (indent + 2)
    if isinstance(v, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {compact_json(x, indent + 2, width)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + compact_json(x, indent + 2, width) for x in v]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def markdown(results):
    """The 'Worked examples' body of docs/spec.md (between the GENERATED markers)."""
    configs, labels = [], {}
    for r in results:
        key = json.dumps(r["config"], sort_keys=True)
        if key not in labels:
            labels[key] = f"C{len(configs) + 1}"
            configs.append((labels[key], r["config"], []))
        next(c for c in configs if c[0] == labels[key])[2].append(r["name"])
    lines = ["#### Configs used by the examples", ""]
    for label, cfg, users in configs:
        lines.append(f"**{label}** (used by {', '.join('`' + u + '`' for u in users)}):")
        lines.append("")
        lines.append("```json")
        lines.append(compact_json(cfg))
        lines.append("```")
        lines.append("")
    for n, r in enumerate(results, 1):
        label = labels[json.dumps(r["config"], sort_keys=True)]
        lines.append(f"#### E{n}. `{r['name']}`")
        lines.append("")
        lines.append(r["about"])
        lines.append("")
        clock = f", clock fixed at {r['now_ms']} ms" if r["now_ms"] is not None else ""
        lines.append(f"Config **{label}**, variable `{r['variable']}`, facets "
                     f"`{json.dumps(r['facets'], ensure_ascii=False)}`{clock}.")
        lines.append("")
        if r["now_ms"] is not None and "ts" not in r["facets"]:
            lines.append(f"- no `ts` facet: ts = floor({r['now_ms']} / 1000) = {r['now_ms'] // 1000} (from the clock)")
        for st in r["steps"]:
            lines += _step_lines(st)
        e = r["expected"]
        lines.append("")
        lines.append(f"Decision: `{json.dumps(e, ensure_ascii=False)}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOC_PATH = HERE.parent.parent / "docs" / "spec.md"
BEGIN = "<!-- BEGIN GENERATED: python3 tests/anchors/spec_examples.py --write -->"
END = "<!-- END GENERATED -->"


def doc_section(text):
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def write_doc(results):
    if not DOC_PATH.exists():
        return False
    text = DOC_PATH.read_text(encoding="utf-8")
    if doc_section(text) is None:
        return False
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC_PATH.write_text(head + BEGIN + "\n\n" + markdown(results) + "\n" + END + tail, encoding="utf-8")
    return True


def dump(results) -> str:
    return json.dumps(results, indent=1, ensure_ascii=False) + "\n"


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--check"
    results = [compute(c) for c in cases()]
    if mode == "--write":
        JSON_PATH.write_text(dump(results), encoding="utf-8")
        print(f"wrote {len(results)} cases to {JSON_PATH}")
        if write_doc(results):
            print(f"refreshed the worked examples in {DOC_PATH}")
        return 0
    if mode == "--markdown":
        print(markdown(results))
        return 0
    if mode != "--check":
        print(__doc__)
        return 2
    if not JSON_PATH.exists():
        print(f"{JSON_PATH} is missing; run with --write")
        return 1
    stored = json.loads(JSON_PATH.read_text(encoding="utf-8"))
    bad = 0
    names = [r["name"] for r in results]
    if [s.get("name") for s in stored] != names:
        print(f"case list differs: stored {[s.get('name') for s in stored]} vs computed {names}")
        bad += 1
    # Recompute every stored case from its own stored inputs, and compare everything.
    for s in stored:
        fresh = compute({k: s.get(k) for k in ("name", "about", "config", "variable", "facets", "now_ms")})
        for key in ("expected", "steps", "buckets"):
            if fresh[key] != s.get(key):
                print(f"{s.get('name')}: {key} differs\n  stored:   {json.dumps(s.get(key))}\n  computed: {json.dumps(fresh[key])}")
                bad += 1
    # And the stored inputs must be the ones defined here.
    for s, r in zip(stored, results):
        for key in ("config", "variable", "facets", "now_ms"):
            if s.get(key) != r[key]:
                print(f"{r['name']}: input `{key}` differs from the script's definition")
                bad += 1
    # docs/spec.md must quote exactly these values.
    if DOC_PATH.exists():
        section = doc_section(DOC_PATH.read_text(encoding="utf-8"))
        if section is None:
            print(f"{DOC_PATH}: the generated worked-examples markers are missing")
            bad += 1
        elif section != markdown(results):
            print(f"{DOC_PATH}: the worked examples differ from the reference's values")
            bad += 1
    if bad:
        print(f"{bad} difference(s); if the reference is right, regenerate with --write")
        return 1
    print(f"{len(stored)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
