"""Keeping a client's config current and its events delivered: a daemon
thread with ``urllib`` that drives the engine's sync state machine
(docs/sync.md). The machine holds every rule (intervals, backoff with
jitter, ``Retry-After``, the ETag rules and what a rejected config does,
batches with ack/nack, staleness, readiness, logging each fault once); this
module performs what it asks: one request at a time under one deadline
(connect, headers and body together), sleeps that :meth:`Poller.stop` cuts
short, and each notice logged on the ``"turnout"`` logger and passed to the
callbacks. A poller running when the process forks runs in the child too.
The package README describes the failure kinds, the logging and fork safety.

Usage::

    with client.poller("https://cdn.example/turnout.json",
                       events_url="https://collector.example/events") as poller:
        poller.wait_ready(5)
        ...  # the app runs; decisions use the newest good config
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _native as native
from ._errors import ClosedError, HttpError, TurnoutError, error_of_kind
from ._records import UpdateReport

if TYPE_CHECKING:  # pragma: no cover - a type only: the client imports this module
    from ._client import Client

__all__ = ["Poller", "HttpError"]

log = logging.getLogger("turnout")
_K = native.ffi.SyncActionKind
_LEVELS = {"ready": logging.INFO, "applied": logging.INFO, "error": logging.WARNING, "recovered": logging.INFO,
           "stale": logging.WARNING, "fresh": logging.INFO, "dropped": logging.ERROR}
Notice = Dict[str, Any]
"""A notice of docs/sync.md section 7 as a dict (``{"notice": "error", "channel": "config", ...}``)."""
_Outcome = Tuple[int, Optional[str], Optional[str], bytes, Optional[str], str]


def _now() -> int:
    return int(time.monotonic() * 1000)


class Poller:
    """Polls a config URL and uploads events for one :class:`~turnout.Client`.
    The options map onto docs/sync.md section 2 (seconds here, ms there):
    ``interval`` (30 s), ``flush_interval`` (``interval``), ``max_backoff``
    (300 s), ``timeout`` (10 s, one deadline per request), ``jitter`` (0.1),
    ``seed`` (random, and a new one after a fork), ``max_events`` (1000 per
    batch), ``stale_after_polls`` (5). ``max_config_bytes`` lowers the
    client's limit on a config body; ``headers`` and ``opener`` (a
    ``urllib.request.OpenerDirector``) shape the requests. Callbacks run on
    the thread that performed the step (exceptions they raise are logged):
    ``on_change(report)`` for a config that changed variables,
    ``on_error(exception)`` for every failure, ``on_notice(dict)`` for every
    notice; ``logger`` replaces ``logging.getLogger("turnout")``. Invalid
    options raise :class:`~turnout.OptionsError` (a ``ValueError``)."""

    def __init__(self, client: "Client", config_url: Optional[str] = None, *, events_url: Optional[str] = None,
                 interval: float = 30.0, flush_interval: Optional[float] = None, max_backoff: float = 300.0,
                 timeout: float = 10.0, jitter: float = 0.1, seed: Optional[int] = None, max_events: int = 1000,
                 stale_after_polls: Optional[int] = None, max_config_bytes: Optional[int] = None,
                 headers: Optional[Mapping[str, str]] = None, opener: Optional[urllib.request.OpenerDirector] = None,
                 on_change: Optional[Callable[[UpdateReport], None]] = None,
                 on_error: Optional[Callable[[BaseException], None]] = None,
                 on_notice: Optional[Callable[[Notice], None]] = None, logger: Optional[logging.Logger] = None) -> None:
        seconds = {"pollIntervalMs": interval, "flushIntervalMs": flush_interval, "maxBackoffMs": max_backoff,
                   "timeoutMs": timeout}
        options: Dict[str, Any] = {k: None if v is None else round(v * 1000) for k, v in seconds.items()}
        options.update(configUrl=config_url, eventsUrl=events_url, jitter=jitter, seed=seed, maxBatchEvents=max_events,
                       staleAfterPolls=stale_after_polls)
        self._options = {k: v for k, v in options.items() if v is not None}
        if max_config_bytes is not None and max_config_bytes <= 0:
            raise ValueError("max_config_bytes must be positive")
        self.client, self.config_url, self.events_url = client, config_url, events_url
        self.max_config_bytes = max_config_bytes
        self.headers = {"User-Agent": f"turnout-python/{native.ffi.library_version()}", **(headers or {})}
        self.on_change, self.on_error, self.on_notice, self.log = on_change, on_error, on_notice, logger or log
        self.last_error: Optional[BaseException] = None
        """The exception of the last failure, if any."""
        self._opener = opener or urllib.request.build_opener()
        self._thread: Optional[threading.Thread] = None
        self._current, self._was_running = threading.Event(), False
        self._fresh(reseed=False)
        _LIVE.add(self)

    def _fresh(self, reseed: bool) -> None:
        """New locks, events and machine (construction, a restart after stop, a fork)."""
        # Machine calls; one step at a time (re-entrant: a callback may call poll() or flush()).
        self._mx, self._drive = threading.Lock(), threading.RLock()
        self._wake, self._ready, self._stopping = threading.Event(), threading.Event(), False
        options = dict(self._options)
        if reseed or "seed" not in options:
            options["seed"] = int.from_bytes(os.urandom(8), "little")
        try:
            self._sync = native.ffi.SyncMachine(self.client._live(), json.dumps(options))
        except native.NativeError as e:
            native.raise_mapped(e)

    # -- state -------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        """The machine's state (``ready``, ``stale``, ``etag``, ``rejectedEtag``, ``configFailures``,
        ``uploadFailures``, ``nextFetchMs``, ``nextFlushMs``, ``batchesAcked``, ``batchesDropped``, ``stopped``)."""
        with self._mx:
            state: Dict[str, Any] = json.loads(self._sync.state_json())
        return state

    @property
    def etag(self) -> Optional[str]:
        """The ETag of the config in force (of a complete body that was installed)."""
        return self.state()["etag"]  # type: ignore[no-any-return]

    @property
    def failures(self) -> int:
        """Consecutive failed attempts (config and events together)."""
        s = self.state()
        return int(s["configFailures"] + s["uploadFailures"])

    @property
    def running(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def wait_ready(self, timeout: Optional[float] = None) -> bool:
        """Waits up to ``timeout`` seconds (``None``: for ever) for a config in
        force (a bootstrap or a fetched one); returns whether there is one."""
        return bool(self.state()["ready"]) or self._ready.wait(timeout)

    # -- steps -------------------------------------------------------------------
    def _step(self) -> Tuple[Any, List[Notice]]:
        """One action of the machine, performed and reported; its notices dispatched and returned."""
        with self._mx:
            a = self._sync.next(_now())
        if a.kind in (_K.FETCH, _K.UPLOAD):
            status, etag, retry_after, body, failure, message = self._request(a)
            with self._mx:
                if a.kind == _K.FETCH:
                    self._sync.on_fetch(_now(), status, etag, retry_after, body, failure, message)
                else:
                    self._sync.on_upload(_now(), a.seq, status, retry_after, failure, message)
        with self._mx:
            notices: List[Notice] = json.loads(self._sync.take_notices_json())
        for n in notices:
            self._dispatch(n)
        return a, notices

    def _dispatch(self, n: Notice) -> None:
        """Logs a notice (unless it repeats) and passes it to the callbacks."""
        kind = n["notice"]
        calls: List[Tuple[Optional[Callable[[Any], None]], Any]] = [(self.on_notice, n)]
        report = UpdateReport._from_json(n["report"]) if kind == "applied" else None
        if kind == "ready":
            self._ready.set()
        elif report is not None and report.has_changes:
            calls.append((self.on_change, report))
        elif kind == "error":
            self.last_error = self._error(n)
            calls.append((self.on_error, self.last_error))
        if not n.get("repeat"):
            quiet = report is not None and not report.has_changes
            detail = json.dumps({k: v for k, v in n.items() if k not in ("notice", "repeat")})
            self.log.log(logging.DEBUG if quiet else _LEVELS[kind], "turnout sync %s: %s", kind, detail,
                         extra={"turnout_notice": n})
        for callback, arg in calls:
            try:
                if callback is not None:
                    callback(arg)
            except Exception:  # a callback's bug must not stop the poller
                self.log.exception("turnout: a poller callback raised")

    def _error(self, n: Notice) -> TurnoutError:
        url = self.config_url if n["channel"] == "config" else self.events_url
        return error_of_kind(n["kind"], n["message"], n.get("status"), url or "", n)

    def _here(self, channel: str) -> List[Notice]:
        """A fetch (``config``) or an upload round (``events``) now, on the
        calling thread: steps until the machine waits; raises the channel's first error."""
        if (self.config_url if channel == "config" else self.events_url) is None:
            raise ValueError(f"this poller has no {channel} URL")
        seen: List[Notice] = []
        with self._drive:
            if channel == "events" and self.state()["nextFlushMs"] is None:
                seen += self._step()[1]  # the first step starts the machine (and would override flush_now)
            with self._mx:
                (self._sync.poll_now if channel == "config" else self._sync.flush_now)()
            while True:
                a, notices = self._step()
                seen += notices
                for n in notices:
                    if n["notice"] == "error" and n["channel"] == channel:
                        raise self._error(n)
                if a.kind == _K.STOP:
                    raise ClosedError("the poller is stopped")
                if a.kind == _K.WAIT:
                    return seen

    def poll(self) -> Optional[UpdateReport]:
        """Fetches the config now, on the calling thread (and does what else is
        due). Returns the report of an installed config, ``None`` when nothing
        changed (``304``, the same bytes). Raises :class:`HttpError`, or
        :class:`~turnout.ConfigError` / :class:`~turnout.LimitError` for a
        rejected config (the good one stays in force). Its notices are logged
        and passed to the callbacks like the thread's."""
        reports = [n["report"] for n in self._here("config") if n["notice"] == "applied"]
        return UpdateReport._from_json(reports[-1]) if reports else None

    def flush(self) -> int:
        """Uploads every queued batch now, on the calling thread; returns how
        many were delivered. A failed upload is nacked (sent again later) and
        raised as :class:`HttpError`."""
        acked = self.state()["batchesAcked"]
        self._here("events")
        return int(self.state()["batchesAcked"] - acked)

    # -- HTTP --------------------------------------------------------------------
    def _request(self, a: Any) -> _Outcome:
        """The action's request under one deadline, on a worker thread so that
        the wait ends at the deadline, or at :meth:`stop` for a fetch,
        whatever the socket does."""
        fetch = a.kind == _K.FETCH
        kind = {"Accept": "application/json"} if fetch else {"Content-Type": "application/octet-stream"}
        headers = dict(self.headers, **kind, **({"If-None-Match": a.etag} if a.etag else {}))
        req = urllib.request.Request(a.url, None if fetch else a.bytes, headers, method="GET" if fetch else "POST")
        limit = min(a.max_bytes, self.max_config_bytes or a.max_bytes) if fetch else 0
        box: List[_Outcome] = []
        done = self._current = threading.Event()
        threading.Thread(target=self._transfer, args=(req, a.timeout_ms / 1000, limit, box, done),
                         name="turnout-http", daemon=True).start()
        deadline = time.monotonic() + a.timeout_ms / 1000
        while not box:
            if fetch and self._stopping:
                box.append((0, None, None, b"", "ABORTED", f"GET {a.url}: abandoned: the poller is stopping"))
            elif time.monotonic() >= deadline:
                box.append((0, None, None, b"", "TIMEOUT", f"{req.method} {a.url}: timed out: no complete "
                            f"response within {a.timeout_ms} ms (connect, headers and body together)"))
            else:
                done.wait(deadline - time.monotonic())
                done.clear()
        return box[0]

    def _transfer(self, req: urllib.request.Request, timeout: float, limit: int, box: List[_Outcome],
                  done: threading.Event) -> None:
        """The worker's exchange; its outcome is appended to ``box`` (ignored when the wait already ended)."""
        try:
            try:
                resp: Any = self._opener.open(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                resp = e  # a response too: 304, 4xx, 5xx
            with resp:
                status, h = int(resp.getcode()), resp.headers
                body, failure, why = _read(resp, limit, box) if limit and 200 <= status < 300 else (b"", None, "")
                out = (status, h.get("ETag"), h.get("Retry-After"), body, failure, f"{req.method} {req.full_url}: {why}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            out = (0, None, None, b"", "NETWORK", f"{req.method} {req.full_url}: {getattr(e, 'reason', e)}")
        box.append(out)
        done.set()

    # -- the thread --------------------------------------------------------------
    def start(self) -> "Poller":
        """Starts the daemon thread (the first poll happens at once)."""
        if self.client.closed:
            raise ClosedError("the client is closed")
        if not self.running:
            if self._stopping:  # a stopped machine stays stopped: a new one
                self._fresh(reseed=False)
            self._thread = threading.Thread(target=self._run, name="turnout-poller", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None, flush: bool = True) -> None:
        """Stops: a config request in progress is abandoned at once; with
        ``flush``, what is queued is uploaded (one attempt per batch; an
        upload in progress is waited for); then the thread ends. Waits for
        the thread up to ``timeout`` seconds."""
        with self._mx:
            self._sync.stop(flush)
        self._stopping = True
        self._wake.set()
        self._current.set()
        t = self._thread
        if t is not None and t.is_alive():
            if t is not threading.current_thread():
                t.join(timeout)
        elif not self.client.closed:  # no thread: the last flush here
            with self._drive:
                while self._step()[0].kind in (_K.FETCH, _K.UPLOAD):
                    pass

    close = stop

    def __enter__(self) -> "Poller":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self.client.closed:
                with self._drive:
                    a, _ = self._step()
                if a.kind == _K.STOP:
                    return
                if a.kind == _K.WAIT:
                    self._wake.wait(a.wait_ms / 1000)
                    self._wake.clear()
        except Exception:  # a bug: say so rather than die silently
            self.log.exception("turnout: the poller's thread failed")


def _read(resp: Any, limit: int, box: List[_Outcome]) -> Tuple[bytes, Optional[str], str]:
    """The whole body (at most ``limit`` bytes), or a failure code and why;
    stops early once the request was given up (``box`` filled)."""
    raw = resp.headers.get("Content-Length")
    declared = int(raw) if raw and raw.strip().isdigit() and not resp.headers.get("Transfer-Encoding") else None
    data, read = bytearray(), getattr(resp, "read1", resp.read)
    try:
        while not box and len(data) <= limit and (declared or 0) <= limit:
            chunk = read(min(64 * 1024, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
    except http.client.IncompleteRead:
        return b"", "INCOMPLETE", f"incomplete body ({len(data)} bytes, then the connection ended)"
    if max(len(data), declared or 0) > limit:
        said = f" (Content-Length {declared})" if declared else ""
        return b"", "TOO_LARGE", f"the body is larger than {limit} bytes{said}"
    if declared is not None and len(data) != declared:
        return b"", "INCOMPLETE", f"incomplete body: {len(data)} of {declared} bytes (Content-Length)"
    return bytes(data), None, ""


# -- fork safety: no machine call in progress across a fork; the child starts over --
_LIVE: "weakref.WeakSet[Poller]" = weakref.WeakSet()
_HELD: List[Poller] = []


def _before_fork() -> None:
    _HELD[:] = list(_LIVE)
    for p in _HELD:
        p._mx.acquire()
        p._was_running = p.running and not p._stopping


def _after_fork(child: bool) -> None:
    """In the child the parent's threads do not exist: fresh locks, a new
    machine and seed, and the thread again if it ran."""
    for p in _HELD:
        if not child:
            p._mx.release()
            continue
        try:
            p._thread = None
            p.client._forked()  # before the thread can upload what the parent delivers
            p._fresh(reseed=True)
            if p._was_running:
                p.start()
        except TurnoutError:  # the client was closed
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=lambda: _after_fork(False),
                        after_in_child=lambda: _after_fork(True))
