"""Keeping a client up to date and its events delivered, on a daemon thread
with the standard library's ``urllib``.

- **Config**: ``GET config_url`` every ``interval`` seconds with
  ``If-None-Match`` (the ETag of the config in force); ``304 Not Modified``
  costs nothing. A ``200`` body is handed to :meth:`Client.update_config`: a
  config the engine rejects never replaces the good one in force (the error
  goes to ``on_error``); an accepted one that changed something calls
  ``on_change(report)``.
- **One deadline per request**: ``timeout`` bounds the whole request -
  connect, headers and the whole body together, not each read. When it
  passes the request is abandoned (its socket shut down) and the poll fails
  with an :class:`HttpError` of ``kind == "timeout"``, counted like any
  failure (backoff). :meth:`Poller.stop` aborts a config request in progress,
  so it returns at once.
- **Body limit**: a config body larger than ``max_config_bytes`` (default
  16 MiB, the engine's limit) fails with ``kind == "too-large"``, checked
  against ``Content-Length`` before reading and while reading (at most the
  limit is ever buffered). A body shorter than its ``Content-Length`` (or a
  chunked body cut short) fails with ``kind == "incomplete"``.
- **ETag rule**: the ``ETag`` is remembered only when the body was read
  completely *and* the engine accepted it. A timed-out, truncated,
  over-limit or rejected body never updates it, so the next poll fetches
  the config again (with the ETag of the config in force, if any) instead of
  getting ``304`` for bytes that were never installed.
- **Events**: every ``flush_interval`` seconds the queue is drained:
  :meth:`Client.take_batch` -> ``POST events_url`` (``application/octet-stream``)
  -> :meth:`Client.ack` on 2xx, :meth:`Client.nack` otherwise (the same bytes
  go again next time, so a collector de-duplicating on client id + seq sees
  each batch exactly once).
- **Failures** (network errors, non-2xx/304 statuses): reported to
  ``on_error``; the next attempt waits ``interval * 2**failures`` seconds,
  capped at ``max_backoff``, with +-``jitter`` randomisation.
- :meth:`Poller.stop` ends the thread cleanly and makes a last flush.

Usage::

    with client.poller("https://cdn.example/turnout.json",
                       events_url="https://collector.example/events") as poller:
        ...  # the app runs; decisions use the newest good config
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
import typing
import urllib.error
import urllib.request

from ._client import Client, UpdateReport, __version__
from ._errors import ClosedError, ConfigError, TurnoutError

__all__ = ["Poller", "HttpError"]

log = logging.getLogger("turnout")

DEFAULT_MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""The default ``max_config_bytes``: 16 MiB, the largest config the engine accepts."""


class HttpError(TurnoutError):
    """A request of the poller failed: ``status`` is the HTTP status, or
    ``None`` when no complete response came (refused, timeout, DNS).

    ``kind`` says what went wrong: ``"status"`` (an HTTP status other than
    2xx/304), ``"network"`` (no answer: refused, reset, DNS, ...),
    ``"timeout"`` (the request - connect, headers and body - did not finish
    within ``timeout``), ``"too-large"`` (the body exceeds
    ``max_config_bytes``), ``"incomplete"`` (the body ended before its
    ``Content-Length``, or a chunked body was cut short), ``"aborted"`` (the
    poller was stopped during the request)."""

    def __init__(self, message: str, status: typing.Optional[int] = None, url: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.kind = kind or ("network" if status is None else "status")


class _Exchange:
    """One request run on a worker thread, waited for with a deadline. The
    first of ``finish`` (the worker) and ``abort`` (the deadline or
    ``stop()``) decides the outcome; an aborted worker's result is dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.result: typing.Optional[typing.Tuple[int, bytes, typing.Optional[str]]] = None
        self.error: typing.Optional[BaseException] = None
        self._sock: typing.Optional[socket.socket] = None

    def attach(self, sock: typing.Optional[socket.socket]) -> bool:
        """Records the response's socket; False when already aborted."""
        with self._lock:
            if self.done.is_set():
                return False
            self._sock = sock
            return True

    def finish(self, result: typing.Any = None, error: typing.Optional[BaseException] = None) -> None:
        with self._lock:
            if self.done.is_set():
                return
            self.result, self.error, self._sock = result, error, None
            self.done.set()

    def abort(self, error: BaseException) -> bool:
        """Ends the exchange with ``error`` (unless it finished) and shuts
        the socket down so that a blocked read returns at once."""
        with self._lock:
            if self.done.is_set():
                return False
            self.error, sock, self._sock = error, self._sock, None
            self.done.set()
        if sock is not None:
            try:
                # The plain socket's shutdown also for TLS: it wakes a reader
                # blocked in SSL_read without touching the SSL object.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        return True


def _socket_of(resp: typing.Any) -> typing.Optional[socket.socket]:
    """The socket under an ``http.client.HTTPResponse`` (``None`` if another
    opener returned something else)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class Poller:
    """Polls a config URL and uploads events for one :class:`Client`.

    Arguments (keyword-only after ``config_url``):

    - ``config_url``: where the config bundle is served (``None``: events only);
    - ``events_url``: where batches are POSTed (``None``: no upload);
    - ``interval``: seconds between config polls (default 30);
    - ``flush_interval``: seconds between event uploads (default ``interval``);
    - ``max_backoff``: cap of the delay after failures (default 300 s);
    - ``timeout``: seconds for each request as a whole - connect, headers
      and the whole body under one deadline (default 10);
    - ``headers``: extra request headers (e.g. authorisation);
    - ``on_change(report)``: called after an accepted config changed variables;
    - ``on_error(exception)``: called for every failure (default: logged);
    - ``max_events``: events per batch (default 1000);
    - ``jitter``: fraction of randomisation of every delay (default 0.1);
    - ``opener``: a ``urllib.request.OpenerDirector`` (proxies, TLS, tests);
    - ``max_config_bytes``: the largest config body read (default 16 MiB).

    Each request runs on a short-lived worker thread and is waited for until
    its deadline (``timeout``); a request that passes it is abandoned and its
    socket shut down. The ETag is remembered only for a complete body that
    the engine accepted (see the module's documentation).

    Callbacks run on the poller's thread; exceptions they raise are logged.
    """

    def __init__(
        self,
        client: Client,
        config_url: typing.Optional[str] = None,
        *,
        events_url: typing.Optional[str] = None,
        interval: float = 30.0,
        flush_interval: typing.Optional[float] = None,
        max_backoff: float = 300.0,
        timeout: float = 10.0,
        headers: typing.Optional[typing.Mapping[str, str]] = None,
        on_change: typing.Optional[typing.Callable[[UpdateReport], None]] = None,
        on_error: typing.Optional[typing.Callable[[BaseException], None]] = None,
        max_events: int = 1000,
        jitter: float = 0.1,
        opener: typing.Optional[urllib.request.OpenerDirector] = None,
        max_config_bytes: int = DEFAULT_MAX_CONFIG_BYTES,
    ) -> None:
        if config_url is None and events_url is None:
            raise ValueError("a poller needs a config_url, an events_url or both")
        if interval <= 0 or (flush_interval is not None and flush_interval <= 0) or max_backoff <= 0:
            raise ValueError("interval, flush_interval and max_backoff must be positive")
        if not 0 <= jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        if max_config_bytes <= 0:
            raise ValueError("max_config_bytes must be positive")
        self.client = client
        self.config_url = config_url
        self.events_url = events_url
        self.interval = float(interval)
        self.flush_interval = float(flush_interval if flush_interval is not None else interval)
        self.max_backoff = float(max_backoff)
        self.timeout = float(timeout)
        self.headers = {"User-Agent": f"turnout-python/{__version__}", **(headers or {})}
        self.on_change = on_change
        self.on_error = on_error
        self.max_events = max_events
        self.jitter = float(jitter)
        self.max_config_bytes = int(max_config_bytes)
        self._opener = opener or urllib.request.build_opener()
        self._etag: typing.Optional[str] = None
        self._exchanges: typing.Set[_Exchange] = set()  # config requests in progress (stop() aborts them)
        self._exchanges_lock = threading.Lock()
        self._local = threading.local()  # .loop: this thread is the poller's loop
        self._config_failures = 0
        self._flush_failures = 0
        self._poll_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: typing.Optional[threading.Thread] = None
        self.last_error: typing.Optional[BaseException] = None
        """The last failure, if any."""

    # -- state -------------------------------------------------------------
    @property
    def etag(self) -> typing.Optional[str]:
        """The ETag of the config in force: of the last body read completely
        and accepted by the engine (``None`` before that, or without ETag)."""
        return self._etag

    @property
    def failures(self) -> int:
        """Consecutive failed attempts (config and events together)."""
        return self._config_failures + self._flush_failures

    @property
    def running(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- one step, callable from any thread --------------------------------
    def poll(self) -> typing.Optional[UpdateReport]:
        """Fetches the config once, now. Returns the report of an installed
        config, ``None`` for ``304``. Raises :class:`HttpError` (``kind``:
        ``timeout``, ``too-large``, ``incomplete``, ...) or
        :class:`~turnout.ConfigError` (the good config stays in force). Takes
        at most ``timeout`` seconds. The ETag is kept only for a complete
        body the engine accepted."""
        if self.config_url is None:
            raise ValueError("this poller has no config_url")
        with self._poll_lock:
            headers = dict(self.headers, Accept="application/json")
            if self._etag:
                headers["If-None-Match"] = self._etag
            status, body, etag = self._request("GET", self.config_url, None, headers, self.max_config_bytes)
            if status == 304:
                return None
            # A rejected config raises here and leaves the ETag alone: the
            # next poll fetches the config again instead of getting 304 for
            # bytes that were never installed.
            report = self.client.update_config(body)
            self._etag = etag
        if report.has_changes and self.on_change is not None:
            try:
                self.on_change(report)
            except Exception:  # a callback's bug must not stop the poller
                log.exception("turnout: on_change raised")
        return report

    def flush(self) -> int:
        """Uploads every queued batch now; returns how many were delivered.
        A failed upload is nacked (sent again later) and raised as
        :class:`HttpError`."""
        if self.events_url is None:
            raise ValueError("this poller has no events_url")
        delivered = 0
        with self._flush_lock:
            while True:
                batch = self.client.take_batch(self.max_events)
                if batch is None:
                    return delivered
                headers = dict(self.headers, **{"Content-Type": "application/octet-stream"})
                try:
                    self._request("POST", self.events_url, batch.bytes, headers)
                except BaseException:
                    self.client.nack(batch.seq)
                    raise
                self.client.ack(batch.seq)
                delivered += 1

    def _request(
        self,
        method: str,
        url: str,
        data: typing.Optional[bytes],
        headers: typing.Dict[str, str],
        limit: typing.Optional[int] = None,
    ) -> typing.Tuple[int, bytes, typing.Optional[str]]:
        """One request under one deadline (``timeout``: connect, headers and
        body together). ``limit``: read the body (at most that many bytes;
        more is an error); ``None``: the body is not read (uploads). Config
        requests (with a ``limit``) are aborted by :meth:`stop`."""
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        deadline = time.monotonic() + self.timeout
        ex = _Exchange()
        abortable = limit is not None
        if abortable:
            with self._exchanges_lock:
                self._exchanges.add(ex)
                if self._stop.is_set() and getattr(self._local, "loop", False):
                    # stop() came between the loop's wake-up and this request.
                    ex.abort(HttpError("the poller was stopped", None, url, "aborted"))
        try:
            worker = threading.Thread(
                target=self._exchange, args=(ex, req, method, url, limit), name="turnout-http", daemon=True
            )
            if not ex.done.is_set():
                worker.start()
            if not ex.done.wait(max(0.0, deadline - time.monotonic())):
                ex.abort(
                    HttpError(
                        f"{method} {url}: timed out: no complete response within {self.timeout:g} s"
                        " (connect, headers and body together)",
                        None,
                        url,
                        kind="timeout",
                    )
                )
        finally:
            if abortable:
                with self._exchanges_lock:
                    self._exchanges.discard(ex)
        if ex.error is not None:
            raise ex.error
        assert ex.result is not None
        return ex.result

    def _exchange(
        self, ex: _Exchange, req: urllib.request.Request, method: str, url: str, limit: typing.Optional[int]
    ) -> None:
        """The worker thread's part of :meth:`_request`."""
        try:
            ex.finish(self._transfer(ex, req, method, url, limit))
        except HttpError as e:
            ex.finish(error=e)
        except BaseException as e:  # noqa: BLE001 - everything is handed to the waiting thread
            ex.finish(error=HttpError(f"{method} {url}: {e}", None, url))

    def _transfer(
        self, ex: _Exchange, req: urllib.request.Request, method: str, url: str, limit: typing.Optional[int]
    ) -> typing.Tuple[int, bytes, typing.Optional[str]]:
        try:
            # ``timeout`` here bounds each socket operation; the whole request
            # is bounded by the deadline the waiting thread enforces.
            resp = self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 304:
                return 304, b"", None
            raise HttpError(f"{method} {url}: HTTP {e.code} {e.reason}", e.code, url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise HttpError(f"{method} {url}: {reason}", None, url) from None
        with resp:
            if not ex.attach(_socket_of(resp)):
                return 0, b"", None  # aborted meanwhile: the result is dropped
            status = int(resp.status)
            etag = resp.headers.get("ETag")
            if limit is None or status == 304:
                return status, b"", etag
            return status, self._read_body(resp, method, url, status, limit), etag

    def _read_body(self, resp: typing.Any, method: str, url: str, status: int, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes, checked against
        ``Content-Length`` (declared too large: refused before reading)."""
        declared: typing.Optional[int] = None
        raw = resp.headers.get("Content-Length")
        if raw is not None and raw.strip().isdigit() and not resp.headers.get("Transfer-Encoding"):
            declared = int(raw.strip())
        if declared is not None and declared > limit:
            raise HttpError(
                f"{method} {url}: the body is larger than {limit} bytes (Content-Length {declared})",
                status,
                url,
                kind="too-large",
            )
        chunks: typing.List[bytes] = []
        size = 0
        try:
            while True:
                chunk = resp.read(min(64 * 1024, limit + 1 - size))
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise HttpError(
                        f"{method} {url}: the body is larger than {limit} bytes", status, url, kind="too-large"
                    )
                chunks.append(chunk)
        except http.client.IncompleteRead as e:
            raise HttpError(
                f"{method} {url}: incomplete body ({size + len(e.partial)} bytes, then the connection ended)",
                status,
                url,
                kind="incomplete",
            ) from None
        except (OSError, http.client.HTTPException) as e:
            raise HttpError(f"{method} {url}: reading the body: {e}", None, url) from None
        if declared is not None and size != declared:
            raise HttpError(
                f"{method} {url}: incomplete body: {size} of {declared} bytes (Content-Length)",
                status,
                url,
                kind="incomplete",
            )
        return b"".join(chunks)

    # -- the thread ----------------------------------------------------------
    def start(self) -> "Poller":
        """Starts the daemon thread (the first poll happens at once)."""
        if self.running:
            return self
        if self.client.closed:
            raise ClosedError("the client is closed")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="turnout-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: typing.Optional[float] = None, flush: bool = True) -> None:
        """Stops the thread and, with ``flush``, uploads what is queued one
        last time (failures go to ``on_error``). A config request in progress
        is aborted at once (its poll raises ``HttpError`` of kind
        ``"aborted"``, not reported); an upload in progress is waited for, up
        to ``timeout`` seconds (each request ends by its own deadline
        anyway)."""
        self._stop.set()
        with self._exchanges_lock:
            exchanges = list(self._exchanges)
        for ex in exchanges:
            ex.abort(HttpError("the poller was stopped during the request", None, self.config_url or "", "aborted"))
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        if flush and self.events_url is not None and not self.client.closed:
            self._attempt(self.flush)

    close = stop

    def __enter__(self) -> "Poller":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _delay(self, base: float, failures: int) -> float:
        d = base if failures == 0 else min(base * 2.0**failures, max(self.max_backoff, base))
        if self.jitter:
            d *= 1.0 + self.jitter * (2.0 * random.random() - 1.0)
        return d

    def _attempt(self, step: typing.Callable[[], object]) -> bool:
        try:
            step()
            return True
        except ConfigError as e:  # the server answered; the config was bad
            self._report(e)
            return True
        except ClosedError:
            self._stop.set()
            return False
        except Exception as e:
            if not (isinstance(e, HttpError) and e.kind == "aborted" and self._stop.is_set()):
                self._report(e)
            return False

    def _report(self, e: BaseException) -> None:
        self.last_error = e
        if self.on_error is None:
            log.warning("turnout poller: %s", e)
            return
        try:
            self.on_error(e)
        except Exception:
            log.exception("turnout: on_error raised")

    def _run(self) -> None:
        self._local.loop = True
        now = time.monotonic()
        next_config = now if self.config_url is not None else float("inf")
        next_flush = now + self.flush_interval if self.events_url is not None else float("inf")
        while not self._stop.wait(max(0.0, min(next_config, next_flush) - time.monotonic())):
            now = time.monotonic()
            if now >= next_config:
                self._config_failures = 0 if self._attempt(self.poll) else self._config_failures + 1
                next_config = time.monotonic() + self._delay(self.interval, self._config_failures)
            if self._stop.is_set():
                break
            if now >= next_flush:
                self._flush_failures = 0 if self._attempt(self.flush) else self._flush_failures + 1
                next_flush = time.monotonic() + self._delay(self.flush_interval, self._flush_failures)
