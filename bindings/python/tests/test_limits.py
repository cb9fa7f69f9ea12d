"""The limits on hostile input (docs/spec.md, section 17): each is a
:class:`turnout.LimitError` naming the limit (or, for facets, a decision with
error code ``INVALID_CONTEXT``); the previous config stays in force and
nothing costs more than its input's size."""

from __future__ import annotations

import json
import typing

import pytest
from conftest import ROOT

import turnout

SEED = (ROOT / "examples/configs/seed-rollout.json").read_bytes()
EXAMPLE = (ROOT / "examples/configs/example.json").read_bytes()
DELAY = "automatedMessageDelay"


def still_seed(client: turnout.Client) -> None:
    assert client.get_variable(DELAY, {"city": 6, "svc": 302}).int64(0) == 60


def check_limit(e: pytest.ExceptionInfo[turnout.LimitError], limit: str) -> None:
    assert isinstance(e.value, turnout.TurnoutError) and isinstance(e.value, ValueError)
    assert f"limit `{limit}` exceeded" in e.value.message
    assert e.value.limit == limit and e.value.code == "LIMIT_EXCEEDED"
    assert e.value.found is not None and e.value.maximum is not None and e.value.found > e.value.maximum


def blow_up_bundle() -> bytes:
    """One segment of 1,000 constraints referenced 10,000 times by one rule:
    10,000,000 constraints once expanded, from ~80 KB."""
    return json.dumps({
        "schema": 1,
        "version": 2,
        "segments": {"s": {"constraints": [{"target": "city", "op": "=", "value": i} for i in range(1000)]}},
        "rollouts": [{"variable": "blowUp", "rollouts": [{"value": 1, "segments": ["s"] * 10000}], "default": 0}],
    }).encode()


def big_facets(n: int, **extra: typing.Any) -> typing.Dict[str, typing.Any]:
    f: typing.Dict[str, typing.Any] = dict(extra)
    f.update((f"f{i}", i) for i in range(n))
    return f


def test_a_config_over_max_config_bytes() -> None:
    with pytest.raises(turnout.LimitError) as e:
        turnout.Client(EXAMPLE, max_config_bytes=1000)
    check_limit(e, "config_bytes")
    client = turnout.Client(SEED, max_config_bytes=1000)
    with pytest.raises(turnout.LimitError) as e:
        client.update_config(EXAMPLE)
    check_limit(e, "config_bytes")
    assert (e.value.found, e.value.maximum) == (len(EXAMPLE), 1000)
    assert f"found {len(EXAMPLE)}, the maximum is 1000" in str(e.value)
    with pytest.raises(turnout.LimitError) as e:
        client.validate(EXAMPLE)
    check_limit(e, "config_bytes")
    still_seed(client)
    with pytest.raises(turnout.OptionsError):
        turnout.Client(SEED, max_config_bytes=0)


def test_a_segment_referenced_10000_times() -> None:
    client = turnout.Client(SEED)
    bundle = blow_up_bundle()
    for call in (client.update_config, client.validate, turnout.Client):
        with pytest.raises(turnout.LimitError) as e:
            call(bundle)
        check_limit(e, "expanded_constraints")
    still_seed(client)
    assert client.get_variable("blowUp").is_fallback


def test_a_config_of_100_nested_arrays() -> None:
    client = turnout.Client(SEED)
    with pytest.raises(turnout.LimitError) as e:
        client.update_config(b"[" * 100 + b"]" * 100)
    check_limit(e, "json_depth")
    still_seed(client)


@pytest.mark.parametrize(
    "facets",
    [
        big_facets(2000, city=6, svc=302),
        {"city": 6, "svc": 302, "note": "x" * 10000},
        turnout.Facets(big_facets(2000, city=6, svc=302)),
    ],
    ids=["2000 facets", "a 10,000-byte value", "2000 facets (Facets)"],
)
def test_facets_over_a_limit_give_invalid_context(facets: turnout.FacetsLike) -> None:
    client = turnout.Client(SEED)
    var = client.variable(DELAY)
    for _ in range(2):  # the first call and the cached path
        d = client.get_variable(DELAY, facets)
        assert (d.reason, d.error_code, d.value) == ("ERROR", "INVALID_CONTEXT", None)
        assert d.int64(-7) == -7
    with client.context(facets) as ctx:
        assert ctx.int64(var, -7) == -7
        assert ctx.string(var, "d") == "d"
        assert ctx.decision(var).error_code == "INVALID_CONTEXT"
    assert client.explain(DELAY, facets).decision.error_code == "INVALID_CONTEXT"
    client.track("m", 1.0, facets)  # recorded or not, never an error
    still_seed(client)
    # At the limits: accepted.
    at_limit = big_facets(1024 - 3, city=6, svc=302, note="x" * (8 << 10))
    assert client.get_variable(DELAY, at_limit).int64(0) == 60


def test_a_batch_that_decodes_beyond_its_limit() -> None:
    """One 1,000-facet set shared by 200 events: ~10 KB on the wire, ~3 MB
    once every event's copy of the set is counted (the budget: ~1.4 MB)."""
    facets = big_facets(1000)
    header = {"clientId": "limits", "seq": 1, "createdAtMs": 1700000000000, "sdk": "python-test",
              "sdkVersion": "1", "platform": "python", "dropped": 0, "foldOverflow": 0}
    events = [{"kind": "track", "name": "m", "service": "s", "time": 1700000000000 + i, "count": 1, "value": 1,
               "facets": facets} for i in range(200)]
    data = turnout.encode_batch({"header": header, "events": events})
    assert len(data) < 100 << 10
    with pytest.raises(turnout.LimitError) as e:
        turnout.decode_batch(data)
    check_limit(e, "decode_expansion")
