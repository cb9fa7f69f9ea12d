"""Bad input from the host gives a typed exception, never a crash."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

import turnout

SEED = (ROOT / "examples/configs/seed-rollout.json").read_bytes()


@pytest.fixture
def client() -> turnout.Client:
    return turnout.Client(SEED)


@pytest.mark.parametrize("config", [b"{", b"[]", b'{"schema": 1, "rollouts": [{"variable": 3}]}', "\u00ff", b""])
def test_malformed_configs_are_config_errors(config: object) -> None:
    with pytest.raises(turnout.ConfigError) as e:
        turnout.Client(config)  # type: ignore[arg-type]
    assert e.value.message


def test_a_rejected_update_keeps_the_config_in_force(client: turnout.Client) -> None:
    before = client.get_variable("automatedMessageDelay", {"city": 6, "svc": 302}).int64(0)
    with pytest.raises(turnout.ConfigError) as e:
        client.update_config(b'{"schema": 1, "rollouts": [{"variable": "automatedMessageDelay", "default": }]}')
    assert e.value.code == "INVALID_CONFIG" and [p.document for p in e.value.problems] == ["bundle"]
    assert client.get_variable("automatedMessageDelay", {"city": 6, "svc": 302}).int64(0) == before == 60


def test_isolation_per_document_and_strict() -> None:
    good = {"schema": 1, "version": 1, "rollouts": [
        {"variable": "a", "rollouts": [], "default": 1},
        {"variable": "b", "rollouts": [], "default": 2},
    ]}
    bad = {"schema": 1, "version": 2, "rollouts": [
        {"variable": "a", "rollouts": [], "default": 10},
        {"variable": "b", "rollouts": [{"value": 1, "constraints": [{"target": "x", "op": "~~", "value": 1}]}],
         "default": 20},
    ]}
    per_document = turnout.Client(good)
    report = per_document.update_config(bad)
    [rejected] = report.rejected
    assert rejected.kept_last_good and not rejected.kill_switch
    [problem] = rejected.problems
    assert isinstance(problem, turnout.Problem) and problem.document == 'rollout "b"' and "~~" in problem.message
    assert problem.field == "rollouts[0].constraints[0].op"
    assert str(rejected) == f"{problem} (last good version kept)"
    assert per_document.get_variable("a").int64(0) == 10
    assert per_document.get_variable("b").int64(0) == 2  # its last good version
    strict = turnout.Client(good, isolation="strict")
    with pytest.raises(turnout.ConfigError) as e:
        strict.update_config(bad)
    assert "~~" in e.value.message
    assert strict.get_variable("a").int64(0) == 1 and strict.config_version == 1


@pytest.mark.parametrize("options", [{"max_queue": 0}, {"isolation": "sometimes"}, {"decision_events": "some"},
                                     {"fixed_time_ms": "soon"}])
def test_invalid_options_are_options_errors(options: dict) -> None:
    with pytest.raises(turnout.OptionsError):
        turnout.Client(SEED, **options)


@pytest.mark.parametrize("config", [42, 1.5, object(), ["a"]])
def test_a_config_of_the_wrong_type_is_a_type_error(config: object) -> None:
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.Client(config)  # type: ignore[arg-type]


@pytest.mark.parametrize("facets", [
    {"pax": [1, 2]}, {"pax": {"id": 1}}, {"pax": 2**63}, {"pax": -(2**63) - 1}, {"x": float("nan")},
    {"x": float("inf")}, {5: 1}, {"": 1}, {"pax": {"$int64": "12x"}}, "pax=1", [("pax", 1)], {"o": object()},
])
def test_bad_facets_are_facets_errors(client: turnout.Client, facets: object) -> None:
    with pytest.raises((turnout.FacetsError, turnout.TurnoutTypeError)):
        client.get_variable("automatedMessageDelay", facets)  # type: ignore[arg-type]
    with pytest.raises((turnout.FacetsError, turnout.TurnoutTypeError)):
        client.context(facets)  # type: ignore[arg-type]


def test_the_facets_builder_checks_types() -> None:
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.Facets().passenger("7")  # type: ignore[arg-type]
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.Facets().city(True)
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.Facets().booking(123)  # type: ignore[arg-type]
    with pytest.raises(turnout.FacetsError):
        turnout.Facets().passenger(2**64)
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.Facets().set(3, 1)  # type: ignore[arg-type]


def test_getters_with_arguments_of_the_wrong_type(client: turnout.Client) -> None:
    var = client.variable("automatedMessageDelay")
    ctx = client.context({"city": 6, "svc": 302})
    for call in (
        lambda: ctx.int64(var, "30"),
        lambda: ctx.int64(var, 1.5),
        lambda: ctx.int64(var, 2**63),
        lambda: ctx.float64(var, "x"),
        lambda: ctx.bool(var, 1),
        lambda: ctx.string(var, 5),
        lambda: ctx.int64(42, 0),
        lambda: ctx.decision(None),
        lambda: client.variable(7),
        lambda: client.get_variable(["x"], {}),
        lambda: client.track("m", "1", {}),
        lambda: client.track(None, 1.0, {}),
        lambda: client.take_batch(0),
        lambda: client.ack(-1),
        lambda: client.set_time_ms(1.5),
    ):
        with pytest.raises(turnout.TurnoutTypeError):
            call()
    assert isinstance(turnout.TurnoutTypeError("x"), TypeError)
    # A name instead of a handle is accepted by the getters.
    assert ctx.int64("automatedMessageDelay", 0) == 60


def test_closed_handles(client: turnout.Client) -> None:
    var = client.variable("automatedMessageDelay")
    ctx = client.context({"city": 6, "svc": 302})
    assert ctx.int64(var, 0) == 60
    ctx.close()
    ctx.close()  # freed exactly once; a second close does nothing
    assert ctx.closed
    for call in (lambda: ctx.int64(var, 0), lambda: ctx.float64(var, 0.0), lambda: ctx.bool(var, False),
                 lambda: ctx.decision(var), lambda: ctx.string(var, ""), lambda: ctx.track("m", 1.0),
                 lambda: ctx.facets):
        with pytest.raises(turnout.ClosedError):
            call()
    kept = client.context({"city": 6, "svc": 11})
    client.close()
    client.close()
    assert client.closed and repr(client) == "Client(closed)"
    for call in (lambda: client.get_variable("automatedMessageDelay", {}), lambda: client.variable("x"),
                 lambda: client.context({}), lambda: client.take_batch(), lambda: client.update_config(SEED),
                 lambda: client.tracking_stats(), lambda: client.config_version, lambda: client.track("m", 1)):
        with pytest.raises(turnout.ClosedError):
            call()
    # A context keeps the engine alive until it is closed.
    assert kept.int64(var, 0) == 60
    kept.close()


def test_state_errors(client: turnout.Client) -> None:
    with pytest.raises(turnout.StateError) as e:
        client.set_time_ms(1)
    assert e.value.code == "NO_FIXED_CLOCK"


def test_batch_errors() -> None:
    with pytest.raises(turnout.BatchError) as e:
        turnout.decode_batch(b"nope")
    assert (e.value.kind, e.value.code) == ("not-a-batch", "NOT_A_BATCH")
    with pytest.raises(turnout.BatchError) as e:
        turnout.encode_batch({"header": {}, "events": "x"})
    assert (e.value.kind, e.value.code) == ("json", "INVALID_BATCH")
    with pytest.raises(turnout.BatchError):
        turnout.encode_batch("not json")
    with pytest.raises(turnout.TurnoutTypeError):
        turnout.decode_batch("text")  # type: ignore[arg-type]


def test_every_error_is_a_turnout_error() -> None:
    for cls in (turnout.ConfigError, turnout.FacetsError, turnout.OptionsError, turnout.BatchError,
                turnout.StateError, turnout.ClosedError, turnout.TurnoutTypeError, turnout.HttpError):
        assert issubclass(cls, turnout.TurnoutError)
    assert json.loads(json.dumps({"ok": True}))  # the process is alive after all of the above


def test_close_frees_the_native_context_once_and_is_safe_under_concurrent_use(client: turnout.Client) -> None:
    import threading
    import weakref

    var = client.variable("automatedMessageDelay")
    ctx = client.context({"city": 6, "svc": 302})
    native = weakref.ref(ctx._gen)
    ctx.close()
    assert native() is None, "the native context was not released at close()"

    # Closing while other threads evaluate: each either gets the answer or ClosedError.
    for _ in range(20):
        shared = client.context({"city": 6, "svc": 302})
        outcomes: list = []
        start = threading.Barrier(5)

        def use(c: turnout.Context = shared) -> None:
            start.wait()
            for _ in range(2000):
                try:
                    outcomes.append(c.int64(var, 0))
                except turnout.ClosedError:
                    outcomes.append("closed")
                    return

        threads = [threading.Thread(target=use) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait()
        shared.close()
        for t in threads:
            t.join(10)
        assert set(outcomes) <= {60, "closed"}
