"""The facade's behaviour: facets forms, handles, decisions, tracking."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

import turnout

EXAMPLE = ROOT / "examples/configs/example.json"


@pytest.fixture
def client() -> turnout.Client:
    return turnout.Client.from_file(EXAMPLE, service="booking", fixed_time_ms=1763800000000)


def test_builder_dict_and_prepared_agree(client: turnout.Client) -> None:
    var = client.variable("automatedMessageDelay")
    assert client.variable("automatedMessageDelay") is var
    for pax in range(200):
        f = turnout.Facets().passenger(pax).city(10)
        d = {"pax": pax, "city": 10}
        one = client.get_variable("automatedMessageDelay", f)
        assert client.get_variable("automatedMessageDelay", d) is one  # equal answers share one object
        with client.context(f) as ctx:
            assert ctx.int64(var, 0) == one.int64(0) in (30, 90)
            assert ctx.decision(var) == one


def test_ids_above_2_pow_53_are_exact(client: turnout.Client) -> None:
    # 2**53 + 1 is not a double: a binding that went through floats would
    # see 2**53 instead (the vectors' $int64 cases check the bucketing).
    a = turnout.Facets().passenger(2**53 + 1).city(10)
    assert a.json() == '{"pax":9007199254740993,"city":10}'
    with client.context(a) as ctx:
        assert ctx.facets == {"pax": 2**53 + 1, "city": 10}
    with client.context({"pax": -(2**63), "drv": 2**63 - 1}) as ctx:
        assert ctx.facets == {"pax": -(2**63), "drv": 2**63 - 1}
    ids = range(2**62, 2**62 + 64)
    ours = [client.get_variable("automatedMessageDelay", {"pax": i, "city": 10}).int64(0) for i in ids]
    assert set(ours) == {30, 90}  # both branches of the 25% split are reached


def test_decision_fields_and_typed_getters(client: turnout.Client) -> None:
    d = client.get_variable("automatedMessageDelay", {"city": 6, "svc": 302})
    assert (d.value, d.source, d.rule, d.reason, d.label) == (60, "rollout", 0, "TARGETING_MATCH", "60s delay")
    assert d.int64(0) == 60 and d.float64(0.0) == 60.0 and d.bool(True) is True and d.string("x") == "x"
    assert d.to_dict() == {"variable": "automatedMessageDelay", "value": 60, "source": "rollout",
                           "experiment": None, "rule": 0, "choice": None, "reason": "TARGETING_MATCH",
                           "errorCode": None}
    with pytest.raises(AttributeError):
        d.value = 3  # type: ignore[misc]
    missing = client.get_variable("noSuchVariable", {})
    assert missing.is_fallback and missing.error_code == "FLAG_NOT_FOUND" and missing.int64(7) == 7
    off = client.get_variable("newPaymentsSdk", {"pax": 1})
    assert off.reason == "DISABLED" and off.is_fallback and off.bool(True) is True  # the caller's default


def test_experiments_get_variables_and_explain(client: turnout.Client) -> None:
    names = client.variable_names()
    assert "checkoutButtonColor" in names and names == sorted(names)
    d = client.get_variable("checkoutButtonColor", {"pax": 1003, "country": "SG"})
    assert d.source in ("experiment", "default")
    exp = next((x for x in (client.get_variable("checkoutButtonColor", {"pax": p, "country": "SG"})
                            for p in range(1000, 1100)) if x.source == "experiment"), None)
    assert exp is not None and exp.experiment and exp.choice is not None
    group = client.get_variables(exp.experiment, {"pax": 1003, "country": "SG"})
    assert any(g.variable == "checkoutButtonColor" for g in group)
    e = client.explain("automatedMessageDelay", turnout.Facets().city(10).passenger(7))
    assert e.decision.variable == "automatedMessageDelay" and e.steps and str(e)


def test_tracking_batches_ack_and_nack(client: turnout.Client) -> None:
    client.get_variable("automatedMessageDelay", {"city": 6, "svc": 302})
    client.get_variable("automatedMessageDelay", {"city": 6, "svc": 302})  # folded
    client.track("pickupSeconds", 42.5, turnout.Facets().passenger(7).booking("ADR-1"))
    with client.context({"pax": 8}) as ctx:
        ctx.track("rating", 5)
    stats = client.tracking_stats()
    assert stats.recorded == 4 and stats.folded == 1 and stats.queued == 3
    b = client.take_batch(10)
    assert b is not None and b.events == 3
    assert client.nack(b.seq) is True
    again = client.take_batch(10)
    assert again is not None and (again.seq, again.bytes) == (b.seq, b.bytes)
    assert client.ack(again.seq) is True and client.ack(again.seq) is False
    decoded = turnout.decode_batch(again.bytes)
    assert decoded["header"]["sdk"] == "turnout-python" and decoded["header"]["platform"] == "python"
    kinds = {(e["kind"], e["name"], e["count"]) for e in decoded["events"]}
    assert kinds == {("decision", "automatedMessageDelay", 2), ("track", "booking.pickupSeconds", 1),
                     ("track", "booking.rating", 1)}
    assert client.take_batch() is None


def test_excluded_facets_and_options() -> None:
    c = turnout.Client(EXAMPLE, exclude_facets=["pax"], decision_events="experiments", client_id="c-1")
    c.get_variable("automatedMessageDelay", {"pax": 1, "city": 6})  # a rollout: not recorded
    c.track("m", 1, {"pax": 1, "city": 6})
    b = c.take_batch()
    assert b is not None
    decoded = turnout.decode_batch(b.bytes)
    assert decoded["header"]["clientId"] == "c-1"
    assert [e["facets"] for e in decoded["events"]] == [{"city": 6}]


def test_config_sources_and_updates(tmp_path: object) -> None:
    doc = json.loads(EXAMPLE.read_text())
    for source in (EXAMPLE.read_bytes(), EXAMPLE.read_text(), doc, EXAMPLE, bytearray(EXAMPLE.read_bytes())):
        assert turnout.Client(source).config_version == doc["version"]
    c = turnout.Client()
    assert c.get_variable("automatedMessageDelay").is_fallback
    r = c.update_config(doc)
    assert r.has_changes and "automatedMessageDelay" in r.added and r.version == doc["version"]
    assert not c.update_config(doc).has_changes


def test_fixed_clock_moves(client: turnout.Client) -> None:
    client.set_time_ms(1700000000000)
    client.get_variable("automatedMessageDelay", {"city": 1})
    b = client.take_batch()
    assert b is not None and turnout.decode_batch(b.bytes)["events"][0]["time"] == 1700000000000


def test_first_sighting_one_shot_agrees_and_records() -> None:
    # The one-call path for new facets gives the prepared path's decision and records it.
    c = turnout.Client(EXAMPLE, decision_events="all")
    for pax in range(200):
        f = {"city": 10, "pax": pax, "svc": 302}
        first = c.get_variable("automatedMessageDelay", f)
        with c.context(f) as ctx:
            assert first == ctx.decision("automatedMessageDelay")
        assert c.get_variable("automatedMessageDelay", f) == first  # second sighting: cached context
    assert c.tracking_stats().recorded == 600
    with pytest.raises(turnout.FacetsError):
        c.get_variable("automatedMessageDelay", {"pax": [1]})


def test_context_cache_is_bounded() -> None:
    c = turnout.Client(EXAMPLE, context_cache_size=3)
    for pax in range(10):
        c.get_variable("automatedMessageDelay", {"pax": pax})
    # Facets seen once are decided without a context (one native call).
    assert (len(c._contexts), len(c._seen)) == (0, 3)
    for _ in range(2):
        for pax in range(7, 10):
            c.get_variable("automatedMessageDelay", {"pax": pax})
    # Seen again: cached contexts, still bounded.
    assert (len(c._contexts), len(c._seen)) == (3, 3)
    # 1, 1.0 and True are different facet values, even though Python hashes them equal.
    assert len({id(c._context_for({"x": v})) for v in (1, 1.0, True)}) == 3
    nocache = turnout.Client(EXAMPLE, context_cache_size=0)
    nocache.get_variable("automatedMessageDelay", {"pax": 1})
    assert nocache._contexts == {}


def test_facets_builder() -> None:
    f = (turnout.Facets().passenger(1).driver(2).service(3).city(4).ts(5).country("SG").booking("B")
         .location("w21z").session("s").request("r").device("d").tag("t"))
    assert f.to_dict() == {"pax": 1, "drv": 2, "svc": 3, "city": 4, "ts": 5, "country": "SG", "booking": "B",
                           "loc": "w21z", "session": "s", "req": "r", "device": "d", "tag": "t"}
    assert f == f.copy() and len(f) == 12 and "pax" in f and f.get("city") == 4
    f.set("city", None)
    assert "city" not in f and f.remove("pax") and not f.remove("pax")
    assert turnout.Facets({"pax": {"$int64": "9007199254740993"}}).get("pax") == 2**53 + 1
    assert turnout.Facets(pax=1) != turnout.Facets(pax=True)


def test_versions() -> None:
    assert turnout.spec_version() == 1
    assert turnout.library_version() == turnout.__version__


def test_facets_json_fast_form_is_the_json_encoders() -> None:
    # The hand-built JSON of the common shape must be byte-identical to the encoder's.
    from turnout._facets import _dumps, facets_json

    cases = [
        {"pax": 1, "city": -7, "svc": 2**63 - 1, "drv": -(2**63)},
        {"name": 'quote " backslash \\ newline \n tab \t', "uni": "Zürich 中文 😀", "ctl": "\x00\x1f"},
        {"on": True, "off": False, "ünï": "x"},
        {},
    ]
    for f in cases:
        assert facets_json(f) == _dumps(f).encode()
    # Outside the fast shape: still checked and encoded by the general path.
    assert json.loads(facets_json({"f": 1.5, "n": None})) == {"f": 1.5, "n": None}
    with pytest.raises(turnout.FacetsError):
        facets_json({"big": 2**63})
