"""The poller (a driver of the engine's sync state machine, docs/sync.md)
against local HTTP servers on 127.0.0.1: a config change picked up, 304
honoured, a bad config never installed, the server down then up, events
delivered (exactly once per ack), a clean stop; one deadline per request (a
slow body), the body limit, the ETag rules (a failed body never changes an
ETag; a rejected config's ETag is sent until the server serves something
else); fault injection with each fault logged once; readiness; a real fork."""

from __future__ import annotations

import json
import logging
import os
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
        # Not JSON (it could be a body cut short): its ETag is never remembered
        # (docs/sync.md section 4), so each poll gets the broken bytes again
        # (recognised without compiling them). A valid JSON config the engine
        # rejects has its ETag sent instead: test_a_rejected_config_then_a_valid_one.
        assert p.etag == '"good"' and p.state()["rejectedEtag"] is None
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
    """The options in seconds reach the machine in ms (the rule itself is
    the engine's, checked by the sync vectors)."""
    p = turnout.Poller(turnout.Client(), f"http://127.0.0.1:{_free_port()}", interval=1.0, max_backoff=5.0, jitter=0)
    delays = []
    for _ in range(4):
        with pytest.raises(turnout.HttpError):
            p.poll()
        s = p.state()
        delays.append(s["nextFetchMs"] - int(time.monotonic() * 1000))
    assert [round(d, -3) for d in delays] == [2000, 4000, 5000, 5000], delays
    assert p.failures == 4


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


# -- one deadline, the body limit, the ETag rule (docs/sync.md 1, 4) ------------------


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
    assert e.value.kind == "incomplete" and e.value.code == "INCOMPLETE" and e.value.status is None, e.value
    assert poller.etag == '"v1"' and client.config_version == 1
    server.serve(bundle(2, 45), '"E"')
    report = poller.poll()
    assert report is not None and report.version == 2
    assert server.if_none_match == [None, '"v1"', '"v1"']
    assert poller.etag == '"E"' and client.get_variable("delay").int64(0) == 45


def test_a_close_delimited_body_cut_short_keeps_no_etag(server: Server) -> None:
    """No Content-Length: the body ends when the server closes, half-way.
    The client cannot tell it is cut short; the engine rejects the half (not
    JSON), and its ETag is not kept (docs/sync.md section 4), so the full
    body with the same ETag is fetched."""
    client = turnout.Client()
    full = _bytes(bundle(2, 45))
    server.script(raw_answer(full, '"E"', content_length=None, send=len(full) // 2))
    poller = turnout.Poller(client, server.url, timeout=2.0)
    with pytest.raises(turnout.ConfigError):
        poller.poll()
    assert poller.etag is None and poller.state()["rejectedEtag"] is None
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
    # By default the limit is the client's (max_config_bytes of the Client, 16 MiB unless set).
    assert turnout.Poller(client, server.url).max_config_bytes is None


def test_a_rejected_config_then_a_valid_one(server: Server) -> None:
    """A rejected config's ETag is sent until the server serves another
    (docs/sync.md section 4): the valid config comes with a new ETag."""
    client = turnout.Client(bundle(1, 30))
    rec = Recorder()
    server.serve(b'{"schema": 1, "rollouts": [{"variable": 5}]}', '"E"')
    with client.poller(server.url, interval=0.02, jitter=0, on_error=rec.on_error, on_change=rec.on_change) as p:
        wait_for(lambda: len(rec.errors) >= 1 and server.not_modified >= 2)
        assert p.etag is None and p.state()["rejectedEtag"] == '"E"'
        server.serve(bundle(2, 45), '"F"')
        wait_for(lambda: client.config_version == 2)
        assert p.etag == '"F"' and p.state()["rejectedEtag"] is None
    assert len(rec.errors) == 1 and isinstance(rec.errors[0], turnout.ConfigError)
    # The notice's structured problems reach the exception (docs/sync.md section 7).
    [problem] = rec.errors[0].problems
    assert problem.document.startswith("rollouts[0]") and problem.field == "variable", problem
    assert client.get_variable("delay").int64(0) == 45
    assert len(rec.changes) == 1


# -- fault injection (docs/sync.md 7): each fault logged once, recovered, no event lost --


class Notices:
    """Every notice the poller gave (``on_notice``), for waiting on them."""

    def __init__(self) -> None:
        self.seen: typing.List[typing.Dict[str, typing.Any]] = []
        self.lock = threading.Lock()

    def __call__(self, n: typing.Dict[str, typing.Any]) -> None:
        with self.lock:
            self.seen.append(n)

    def count(self, notice: str, channel: typing.Optional[str] = None, kind: typing.Optional[str] = None) -> int:
        with self.lock:
            return sum(1 for n in self.seen if n["notice"] == notice and channel in (None, n.get("channel"))
                       and kind in (None, n.get("kind")))


def _logged_errors(caplog: pytest.LogCaptureFixture) -> typing.List[typing.Tuple[str, str]]:
    """(channel, kind) of every error notice logged on the "turnout" logger."""
    return [(r.turnout_notice["channel"], r.turnout_notice["kind"]) for r in caplog.records
            if r.name == "turnout" and getattr(r, "turnout_notice", {}).get("notice") == "error"]


def _delivered(bodies: typing.Iterable[bytes]) -> typing.Tuple[typing.List[int], int]:
    """The seqs of the accepted batches and how many tracked occurrences they carry."""
    seqs, tracked = [], 0
    for body in bodies:
        batch = turnout.decode_batch(body)
        seqs.append(batch["header"]["seq"])
        tracked += sum(e["count"] for e in batch["events"] if e["kind"] == "track")
    return seqs, tracked


def test_faults_are_logged_once_recovered_and_lose_no_event(caplog: pytest.LogCaptureFixture) -> None:
    """One poller through 500s, a truncated body, a body over the limit, a
    config that fails validation, a slow body past the deadline, 304s from a
    stale cache, and the server going away and coming back (uploads fail
    with 500s and while it is away). After each fault the client answers
    from its last good config and recovers; each fault is logged once (a
    warning per channel and kind); every tracked event is delivered in a
    batch acknowledged once."""
    caplog.set_level(logging.DEBUG, logger="turnout")
    server = Server()
    port = server.port
    accepted: typing.List[bytes] = []
    notices = Notices()
    client = turnout.Client(service="svc")
    tracked = 0

    def track(n: int) -> None:
        nonlocal tracked
        for _ in range(n):
            client.track("t", float(tracked), {"i": tracked})
            tracked += 1

    def recovered() -> None:
        wait_for(lambda: poller.state()["configFailures"] == 0 and not server.scripted)

    def delay() -> int:
        return client.get_variable("delay").int64(-1)

    server.serve(bundle(1, 10), '"v1"')
    poller = client.poller(server.url + "/config", events_url=server.url + "/events", interval=0.03,
                           flush_interval=0.03, max_backoff=0.1, timeout=1.0, jitter=0, max_events=7,
                           max_config_bytes=4096, on_notice=notices)
    try:
        poller.start()
        assert poller.wait_ready(5) and delay() == 10
        track(20)
        # 500s (config) and 500s (events).
        server.fail_status, server.fail_gets, server.fail_posts = 500, 4, 2
        track(20)
        wait_for(lambda: server.fail_gets == 0 and server.fail_posts == 0)
        assert delay() == 10
        recovered()
        # A body cut short of its Content-Length.
        full = _bytes(bundle(2, 20))
        server.script(raw_answer(full, '"v2"', content_length=len(full), send=len(full) // 2))
        wait_for(lambda: notices.count("error", "config", "INCOMPLETE") == 1)
        assert delay() == 10
        recovered()
        # A body over max_config_bytes.
        big = _bytes({"schema": 1, "version": 3, "rollouts": [{"variable": "pad", "rollouts": [], "default": "x" * 5000}]})
        server.script(raw_answer(big, '"big"'), raw_answer(big, '"big"', content_length=None))
        wait_for(lambda: notices.count("error", "config", "TOO_LARGE") == 2)
        assert delay() == 10
        recovered()
        track(10)
        # A config that fails validation: rejected once, then 304 to its ETag.
        server.serve(b'{"schema": 1, "rollouts": [{"variable": 5}]}', '"bad"')
        gets = server.not_modified
        wait_for(lambda: server.not_modified >= gets + 3)
        assert notices.count("error", "config", "INVALID_CONFIG") == 1 and delay() == 10
        server.serve(bundle(2, 20), '"v2"')
        wait_for(lambda: delay() == 20)
        # A slow body past the deadline.
        server.script(raw_answer(_bytes(bundle(3, 30)), '"v3"', byte_every=0.1))
        wait_for(lambda: notices.count("error", "config", "TIMEOUT") == 1)
        assert delay() == 20
        recovered()
        # 304 from a stale cache, whatever the client sends: it keeps its config.
        server.stale_304 = 3
        server.serve(bundle(3, 30), '"v3"')
        wait_for(lambda: delay() == 30)
        track(10)
        # The server goes away and comes back.
        server.close()
        wait_for(lambda: notices.count("error", "config", "NETWORK") >= 2)
        track(5)
        wait_for(lambda: notices.count("error", "events", "NETWORK") >= 2)
        assert delay() == 30 and poller.failures >= 4
        accepted += server.accepted
        server = Server(port)
        server.serve(bundle(3, 30), '"v3"')
        wait_for(lambda: poller.failures == 0)
        track(5)
    finally:
        poller.stop(timeout=5)
        accepted += server.accepted
        server.close()
    stats = client.tracking_stats()
    assert (stats.queued, stats.in_flight, stats.retrying, stats.dropped) == (0, 0, 0, 0)
    assert delay() == 30 and not poller.running
    # Each fault was logged once (one warning per channel and kind), though most repeated.
    errors = _logged_errors(caplog)
    assert sorted(errors) == sorted({*errors}), errors
    assert set(errors) - {("events", "TIMEOUT")} == {
        ("config", "HTTP"), ("config", "INCOMPLETE"), ("config", "TOO_LARGE"), ("config", "INVALID_CONFIG"),
        ("config", "TIMEOUT"), ("config", "NETWORK"), ("events", "HTTP"), ("events", "NETWORK")}, errors
    assert all(r.levelno == logging.WARNING for r in caplog.records if getattr(r, "turnout_notice", {}).get("notice") == "error")
    assert notices.count("error", "config", "HTTP") == 4 and notices.count("recovered", "config") >= 5
    # No event lost, none delivered twice (unless an upload's answer was lost:
    # at least once, the same bytes again): every batch acknowledged once.
    twice = [b for b in accepted if accepted.count(b) > 1]
    assert not twice or notices.count("error", "events", "TIMEOUT"), "a batch was delivered twice"
    seqs, delivered = _delivered(dict.fromkeys(accepted))
    assert len(seqs) == len(set(seqs)), seqs
    assert delivered == tracked == 70
    assert poller.state()["batchesAcked"] == len(seqs)


def test_the_default_logging_and_the_levels(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    """Without callbacks every notice is logged on "turnout": ready and
    applied at info, errors at warning (once however often they repeat),
    recovered at info, a dropped batch at error."""
    caplog.set_level(logging.DEBUG, logger="turnout")
    server.serve(bundle(1, 30), '"v1"')
    server.fail_gets = 3
    client = turnout.Client()
    with client.poller(server.url, events_url=server.url + "/events", interval=0.02, max_backoff=0.04,
                       jitter=0) as poller:
        assert poller.wait_ready(5)
        wait_for(lambda: poller.failures == 0)
    by = {(r.levelname, r.turnout_notice["notice"]) for r in caplog.records if hasattr(r, "turnout_notice")}
    assert {("WARNING", "error"), ("INFO", "recovered"), ("INFO", "applied"), ("INFO", "ready")} <= by, by
    assert len([r for r in caplog.records if getattr(r, "turnout_notice", {}).get("notice") == "error"]) == 1
    assert "HTTP 503" in caplog.text


def test_a_collector_refusing_a_batch_for_good_drops_it_with_an_error_log(caplog: pytest.LogCaptureFixture) -> None:
    import http.server

    class Refuse(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(413)
            self.end_headers()

    caplog.set_level(logging.DEBUG, logger="turnout")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = turnout.Client()
        client.track("t", 1.0)
        poller = turnout.Poller(client, events_url=f"http://127.0.0.1:{httpd.server_address[1]}/events")
        assert poller.flush() == 0
        assert poller.state()["batchesDropped"] == 1 and client.tracking_stats().in_flight == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [r.levelno for r in caplog.records if getattr(r, "turnout_notice", {}).get("notice") == "dropped"] == [
        logging.ERROR]


def test_wait_ready() -> None:
    assert turnout.Poller(turnout.Client(bundle(1, 30)), "http://127.0.0.1:1").wait_ready(0)
    client = turnout.Client()
    with client.poller(f"http://127.0.0.1:{_free_port()}", interval=0.02, jitter=0) as poller:
        t0 = time.monotonic()
        assert not poller.wait_ready(0.2)
        assert time.monotonic() - t0 >= 0.19
    server = Server()
    try:
        server.serve(bundle(1, 30), '"v1"')
        with client.poller(server.url, interval=0.02) as poller:
            assert poller.wait_ready(5) and client.config_version == 1
    finally:
        server.close()


def test_a_callback_that_raises_is_logged_and_the_poller_goes_on(server: Server,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    server.serve(bundle(1, 30), '"v1"')
    client = turnout.Client()

    def boom(report: turnout.UpdateReport) -> None:
        raise RuntimeError("boom")

    with client.poller(server.url, interval=0.02, on_change=boom) as poller:
        wait_for(lambda: client.config_version == 1)
        # A callback may call the poller (on its thread, inside a step).
        polled: typing.List[typing.Optional[turnout.UpdateReport]] = []
        poller.on_notice = lambda n: polled.append(poller.poll()) if n["notice"] == "applied" else None
        server.serve(bundle(2, 45), '"v2"')
        wait_for(lambda: client.config_version == 2 and len(polled) == 1)
        assert poller.running and polled == [None]  # a 304 to "v2"
    assert caplog.text.count("a poller callback raised") == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_poller_keeps_working_in_a_forked_child(server: Server) -> None:
    """Forked while its thread is inside a request (holding its locks): the
    child gets a new thread with fresh locks and a new jitter seed, installs
    the next config and delivers its own events."""
    server.serve(bundle(1, 30), '"v1"')
    client = turnout.Client(service="svc")
    poller = client.poller(server.url + "/config", events_url=server.url + "/events", interval=0.02,
                           flush_interval=0.02, jitter=0.5, timeout=5.0).start()
    try:
        assert poller.wait_ready(5)
        # The next GET trickles its body: the poller's thread is in a request when we fork.
        server.script(raw_answer(_bytes(bundle(1, 30)), '"v1"', byte_every=0.02))
        wait_for(lambda: not server.scripted)
        parent_sync, parent_drive, parent_id = poller._sync, poller._drive, client.client_id
        client.track("parent", 1.0)  # queued when we fork: the parent's to deliver, once
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return into pytest
            code = 1
            try:
                # (The parent's step lock is held by a thread that does not exist here.)
                held = not parent_drive.acquire(blocking=False)
                ok = held and poller._sync is not parent_sync and poller._drive is not parent_drive
                ok = ok and client.client_id != parent_id and client.tracking_stats().queued == 0
                client.track("child", 1.0)
                deadline = time.monotonic() + 10
                while ok and time.monotonic() < deadline:
                    stats = client.tracking_stats()
                    if client.config_version == 2 and stats.queued == 0 and stats.in_flight == 0 and poller.running:
                        code = 0
                        break
                    time.sleep(0.01)
                poller.stop(timeout=2)
            finally:
                os._exit(code)
        server.serve(bundle(2, 45), '"v2"')
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        # The parent's poller goes on too.
        wait_for(lambda: client.config_version == 2)
        assert poller.running
    finally:
        poller.stop(timeout=5)
    batches = [turnout.decode_batch(body) for body in server.accepted]
    names = [e.get("name") for b in batches for e in b["events"]]
    assert "svc.child" in names and names.count("svc.parent") == 1, names
    # The child's batches carry its own id: the collector keeps both processes' batches.
    ids = {e.get("name"): b["header"]["clientId"] for b in batches for e in b["events"]}
    assert ids["svc.parent"] == parent_id != ids["svc.child"], ids
