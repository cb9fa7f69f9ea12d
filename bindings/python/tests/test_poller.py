"""The poller against local HTTP servers on 127.0.0.1: a config change
picked up, 304 honoured, a bad config never installed, the server down then
up, events delivered (exactly once per ack), a clean stop; one deadline per
request (a slow body), the body limit, and the ETag kept only for a complete
body the engine accepted (truncated, over-limit, rejected bodies)."""

from __future__ import annotations

import json
import socket
import threading
import time
import typing

import pytest
from conftest import Server, raw_answer, wait_for

import turnout


def bundle(version: int, value: int) -> typing.Dict[str, typing.Any]:
    return {"schema": 1, "version": version,
            "rollouts": [{"variable": "delay", "rollouts": [], "default": value}]}


class Recorder:
    def __init__(self) -> None:
        self.changes: typing.List[turnout.UpdateReport] = []
        self.errors: typing.List[BaseException] = []
        self.lock = threading.Lock()

    def on_change(self, r: turnout.UpdateReport) -> None:
        with self.lock:
            self.changes.append(r)

    def on_error(self, e: BaseException) -> None:
        with self.lock:
            self.errors.append(e)


def test_config_change_is_picked_up_and_304_is_honoured(server: Server) -> None:
    server.serve(bundle(1, 30), '"v1"')
    client = turnout.Client(service="svc")
    rec = Recorder()
    with client.poller(server.url + "/config", interval=0.02, jitter=0,
                       on_change=rec.on_change, on_error=rec.on_error) as poller:
        wait_for(lambda: client.config_version == 1)
        assert client.get_variable("delay").int64(0) == 30
        wait_for(lambda: server.not_modified >= 3)
        assert poller.etag == '"v1"'
        assert len(rec.changes) == 1 and rec.changes[0].added == ["delay"]
        server.serve(bundle(2, 45), '"v2"')
        wait_for(lambda: client.config_version == 2)
        assert client.get_variable("delay").int64(0) == 45
        wait_for(lambda: len(rec.changes) == 2)
        assert rec.changes[1].changed == ["delay"] and rec.changes[1].version == 2
    assert not poller.running
    assert rec.errors == []


def test_a_bad_config_never_replaces_the_good_one(server: Server) -> None:
    server.serve(bundle(1, 30), '"good"')
    client = turnout.Client()
    rec = Recorder()
    with client.poller(server.url, interval=0.02, jitter=0, on_change=rec.on_change, on_error=rec.on_error) as p:
        wait_for(lambda: client.config_version == 1)
        server.serve(b'{"schema": 1, "rollouts": [{"variable": 5}', '"broken"')
        wait_for(lambda: len(rec.errors) >= 3)
        # The rejected config's ETag is never remembered: each poll asks with
        # the ETag of the config in force and gets the broken bytes again.
        assert p.etag == '"good"'
    assert all(isinstance(e, turnout.ConfigError) for e in rec.errors)
    assert '"broken"' not in server.if_none_match
    assert client.config_version == 1 and client.get_variable("delay").int64(0) == 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_then_up_with_backoff() -> None:
    port = _free_port()
    client = turnout.Client()
    rec = Recorder()
    poller = client.poller(f"http://127.0.0.1:{port}/config", interval=0.02, max_backoff=0.1, jitter=0,
                           timeout=2, on_error=rec.on_error).start()
    try:
        wait_for(lambda: len(rec.errors) >= 3)
        assert all(isinstance(e, turnout.HttpError) and e.status is None for e in rec.errors)
        assert poller.failures >= 3
        assert client.get_variable("delay").is_fallback
        server = Server(port)
        try:
            server.serve(bundle(7, 12), '"up"')
            wait_for(lambda: client.config_version == 7)
            assert client.get_variable("delay").int64(0) == 12
            wait_for(lambda: poller.failures == 0)
        finally:
            poller.stop()
            server.close()
    finally:
        poller.stop()


def test_server_errors_are_failures_then_recover(server: Server) -> None:
    server.serve(bundle(3, 5), '"v3"')
    server.fail_gets = 2
    client = turnout.Client()
    rec = Recorder()
    with client.poller(server.url, interval=0.01, max_backoff=0.05, jitter=0, on_error=rec.on_error):
        wait_for(lambda: client.config_version == 3)
    assert [getattr(e, "status", None) for e in rec.errors] == [503, 503]
    with pytest.raises(turnout.HttpError) as e:
        turnout.Poller(client, "http://127.0.0.1:1/none", timeout=1).poll()
    assert e.value.status is None


def test_an_empty_body_is_a_config_error(server: Server) -> None:
    client = turnout.Client(bundle(1, 30))
    with pytest.raises(turnout.ConfigError):
        turnout.Poller(client, server.url).poll()
    assert client.config_version == 1


def test_backoff_doubles_and_is_capped() -> None:
    p = turnout.Poller(turnout.Client(), "http://127.0.0.1:1", interval=1.0, max_backoff=5.0, jitter=0)
    assert [p._delay(1.0, n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    j = turnout.Poller(turnout.Client(), "http://127.0.0.1:1", interval=1.0, jitter=0.5)
    assert all(0.5 <= j._delay(1.0, 0) <= 1.5 for _ in range(100))


def test_events_are_delivered_exactly_once_per_ack(server: Server) -> None:
    server.serve(bundle(1, 30), '"v1"')
    server.fail_posts = 2  # the first two uploads fail: nacked, then sent again
    client = turnout.Client(bundle(1, 30), service="booking")
    rec = Recorder()
    decisions = 0
    with client.poller(server.url + "/config", events_url=server.url + "/events", interval=0.02,
                       flush_interval=0.02, jitter=0, max_events=5, on_error=rec.on_error) as poller:
        for pax in range(40):
            for _ in range(pax % 3 + 1):
                client.get_variable("delay", turnout.Facets().passenger(pax))
                decisions += 1
            client.track("pickupSeconds", pax, {"pax": pax})
        wait_for(lambda: client.tracking_stats().queued == 0 and client.tracking_stats().in_flight == 0)
        wait_for(lambda: len(server.failed_bodies) == 2)
    assert [e.status for e in rec.errors if isinstance(e, turnout.HttpError)] == [500, 500]
    seqs, decided, tracked = [], 0, 0
    for body in server.accepted:
        batch = turnout.decode_batch(body)
        seqs.append(batch["header"]["seq"])
        for e in batch["events"]:
            if e["kind"] == "decision":
                decided += e["count"]
            else:
                tracked += e["count"]
                assert e["name"] == "booking.pickupSeconds"
    assert len(seqs) == len(set(seqs)), f"a batch was delivered twice: {seqs}"
    assert decided == decisions and tracked == 40
    # A nacked batch went again with the same bytes.
    for failed in server.failed_bodies:
        assert failed in server.accepted
    stats = client.tracking_stats()
    assert (stats.queued, stats.in_flight, stats.retrying, stats.dropped) == (0, 0, 0, 0)


def test_stop_flushes_what_is_queued(server: Server) -> None:
    client = turnout.Client(bundle(1, 30))
    poller = client.poller(None, events_url=server.url + "/events", interval=60, jitter=0).start()
    client.get_variable("delay", {"pax": 1})
    poller.stop(timeout=5)
    assert not poller.running
    assert len(server.accepted) == 1
    assert turnout.decode_batch(server.accepted[0])["events"][0]["name"] == "delay"
    assert client.take_batch() is None


def test_poller_arguments_are_checked() -> None:
    c = turnout.Client()
    with pytest.raises(ValueError):
        turnout.Poller(c)
    with pytest.raises(ValueError):
        turnout.Poller(c, "http://127.0.0.1:1", interval=0)
    with pytest.raises(ValueError):
        turnout.Poller(c, "http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError):
        turnout.Poller(c, "http://127.0.0.1:1", max_config_bytes=0)
    c.close()
    with pytest.raises(turnout.ClosedError):
        turnout.Poller(c, "http://127.0.0.1:1").start()


# -- one deadline, the body limit, the ETag rule (issue 13) ------------------


def _bytes(config: typing.Mapping[str, typing.Any]) -> bytes:
    return json.dumps(config).encode()


def test_a_slow_body_fails_at_the_deadline(server: Server) -> None:
    """One byte every 0.5 s against a 1 s timeout: the poll fails as a
    timeout after about 1 s (not after the whole body), nothing changes."""
    client = turnout.Client(bundle(1, 30))
    server.script(raw_answer(_bytes(bundle(2, 45)), '"slow"', byte_every=0.5))
    poller = turnout.Poller(client, server.url, timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(turnout.HttpError) as e:
        poller.poll()
    elapsed = time.monotonic() - t0
    assert e.value.kind == "timeout" and e.value.status is None, e.value
    assert "timed out" in str(e.value)
    assert 0.9 <= elapsed < 2.0, elapsed
    assert client.config_version == 1 and poller.etag is None


def test_after_a_timeout_the_next_poll_runs_as_usual(server: Server) -> None:
    server.serve(bundle(2, 45), '"v2"')
    server.script(raw_answer(_bytes(bundle(2, 45)), '"v2"', byte_every=0.5))
    client = turnout.Client(bundle(1, 30))
    rec = Recorder()
    t0 = time.monotonic()
    with client.poller(server.url, interval=0.02, max_backoff=0.1, jitter=0, timeout=1.0,
                       on_error=rec.on_error) as poller:
        wait_for(lambda: client.config_version == 2, timeout=5)
        assert time.monotonic() - t0 < 3.0
        assert poller.etag == '"v2"'
    assert [getattr(e, "kind", None) for e in rec.errors] == ["timeout"]
    # The slow answer carried "v2" but was never complete: the next GET did not send it.
    assert server.if_none_match[:2] == [None, None]


def test_stop_returns_promptly_during_a_slow_body(server: Server) -> None:
    client = turnout.Client(bundle(1, 30))
    server.script(raw_answer(_bytes(bundle(2, 45)), '"slow"', byte_every=0.5))
    rec = Recorder()
    poller = client.poller(server.url, interval=60, timeout=10.0, on_error=rec.on_error).start()
    wait_for(lambda: server.config_gets == 1 and not server.scripted)
    time.sleep(0.3)  # the body is trickling in
    t0 = time.monotonic()
    poller.stop()
    assert time.monotonic() - t0 < 0.5
    assert not poller.running
    assert client.config_version == 1 and poller.etag is None
    assert rec.errors == [], "stopping is not a failure"


def test_a_body_cut_short_of_its_content_length_keeps_no_etag(server: Server) -> None:
    """Content-Length larger than what is sent, ETag "E"; then the full body
    with the same "E": the second GET carries the ETag of the config in
    force ("v1"), not "E", and the new config is installed."""
    server.serve(bundle(1, 30), '"v1"')
    client = turnout.Client()
    poller = turnout.Poller(client, server.url, timeout=2.0)
    poller.poll()
    full = _bytes(bundle(2, 45))
    server.script(raw_answer(full, '"E"', content_length=len(full), send=len(full) // 2))
    with pytest.raises(turnout.HttpError) as e:
        poller.poll()
    assert e.value.kind == "incomplete" and e.value.status == 200, e.value
    assert poller.etag == '"v1"' and client.config_version == 1
    server.serve(bundle(2, 45), '"E"')
    report = poller.poll()
    assert report is not None and report.version == 2
    assert server.if_none_match == [None, '"v1"', '"v1"']
    assert poller.etag == '"E"' and client.get_variable("delay").int64(0) == 45


def test_a_close_delimited_body_cut_short_keeps_no_etag(server: Server) -> None:
    """No Content-Length: the body ends when the server closes, half-way.
    The client cannot tell it is cut short; the engine rejects the half, and
    its ETag is not kept, so the full body with the same ETag is fetched."""
    client = turnout.Client()
    full = _bytes(bundle(2, 45))
    server.script(raw_answer(full, '"E"', content_length=None, send=len(full) // 2))
    poller = turnout.Poller(client, server.url, timeout=2.0)
    with pytest.raises(turnout.ConfigError):
        poller.poll()
    assert poller.etag is None
    server.serve(bundle(2, 45), '"E"')
    assert poller.poll() is not None
    assert server.if_none_match == [None, None]
    assert client.config_version == 2 and poller.etag == '"E"'


def test_a_body_over_the_limit_is_refused_and_keeps_no_etag(server: Server) -> None:
    client = turnout.Client(bundle(1, 30))
    big = _bytes(bundle(2, 45))
    limit = len(big) - 1
    poller = turnout.Poller(client, server.url, timeout=2.0, max_config_bytes=limit)
    assert poller.max_config_bytes == limit
    # Declared too large: refused from the Content-Length.
    server.script(raw_answer(big, '"E"'),
                  # Not declared (close-delimited): refused while reading.
                  raw_answer(big, '"E"', content_length=None))
    for _ in range(2):
        with pytest.raises(turnout.HttpError) as e:
            poller.poll()
        assert e.value.kind == "too-large" and str(limit) in str(e.value), e.value
        assert poller.etag is None and client.config_version == 1
    assert server.if_none_match == [None, None]
    # At the limit it is fine.
    server.serve(big, '"E"')
    ok = turnout.Poller(client, server.url, timeout=2.0, max_config_bytes=len(big))
    assert ok.poll() is not None and client.config_version == 2
    assert turnout.Poller(client, server.url).max_config_bytes == 16 * 1024 * 1024


def test_a_rejected_config_then_a_valid_one_with_the_same_etag(server: Server) -> None:
    client = turnout.Client(bundle(1, 30))
    rec = Recorder()
    server.serve(b'{"schema": 1, "rollouts": [{"variable": 5}]}', '"E"')
    with client.poller(server.url, interval=0.02, jitter=0, on_error=rec.on_error, on_change=rec.on_change) as p:
        wait_for(lambda: len(rec.errors) >= 1)
        assert p.etag is None
        server.serve(bundle(2, 45), '"E"')
        wait_for(lambda: client.config_version == 2)
        assert p.etag == '"E"'
    assert isinstance(rec.errors[0], turnout.ConfigError)
    assert client.get_variable("delay").int64(0) == 45
    assert len(rec.changes) == 1
