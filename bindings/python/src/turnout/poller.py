"""Keeping a client up to date and its events delivered, on a daemon thread
with the standard library's ``urllib``.

- **Config**: ``GET config_url`` every ``interval`` seconds with
  ``If-None-Match`` (the last ``ETag``); ``304 Not Modified`` costs nothing.
  A ``200`` body is handed to :meth:`Client.update_config`: a config the
  engine rejects never replaces the good one in force (the error goes to
  ``on_error``, and its ETag is remembered so the same bad bytes are not
  fetched again); an accepted one that changed something calls
  ``on_change(report)``.
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

import logging
import random
import threading
import time
import typing
import urllib.error
import urllib.request

from ._client import Client, UpdateReport, __version__
from ._errors import ClosedError, ConfigError, TurnoutError

__all__ = ["Poller", "HttpError"]

log = logging.getLogger("turnout")


class HttpError(TurnoutError):
    """A request of the poller failed: ``status`` is the HTTP status, or
    ``None`` when no response came (refused, timeout, DNS)."""

    def __init__(self, message: str, status: typing.Optional[int] = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class Poller:
    """Polls a config URL and uploads events for one :class:`Client`.

    Arguments (keyword-only after ``config_url``):

    - ``config_url``: where the config bundle is served (``None``: events only);
    - ``events_url``: where batches are POSTed (``None``: no upload);
    - ``interval``: seconds between config polls (default 30);
    - ``flush_interval``: seconds between event uploads (default ``interval``);
    - ``max_backoff``: cap of the delay after failures (default 300 s);
    - ``timeout``: per-request timeout in seconds (default 10);
    - ``headers``: extra request headers (e.g. authorisation);
    - ``on_change(report)``: called after an accepted config changed variables;
    - ``on_error(exception)``: called for every failure (default: logged);
    - ``max_events``: events per batch (default 1000);
    - ``jitter``: fraction of randomisation of every delay (default 0.1);
    - ``opener``: a ``urllib.request.OpenerDirector`` (proxies, TLS, tests).

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
    ) -> None:
        if config_url is None and events_url is None:
            raise ValueError("a poller needs a config_url, an events_url or both")
        if interval <= 0 or (flush_interval is not None and flush_interval <= 0) or max_backoff <= 0:
            raise ValueError("interval, flush_interval and max_backoff must be positive")
        if not 0 <= jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
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
        self._opener = opener or urllib.request.build_opener()
        self._etag: typing.Optional[str] = None
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
        """The ETag of the last config received (good or rejected)."""
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
        config, ``None`` for ``304``. Raises :class:`HttpError` or
        :class:`~turnout.ConfigError` (the good config stays in force)."""
        if self.config_url is None:
            raise ValueError("this poller has no config_url")
        with self._poll_lock:
            headers = dict(self.headers, Accept="application/json")
            if self._etag:
                headers["If-None-Match"] = self._etag
            status, body, etag = self._request("GET", self.config_url, None, headers)
            if status == 304:
                return None
            try:
                report = self.client.update_config(body)
            except ConfigError:
                self._etag = etag  # the same bad bytes are not fetched again
                raise
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
        self, method: str, url: str, data: typing.Optional[bytes], headers: typing.Dict[str, str]
    ) -> typing.Tuple[int, bytes, typing.Optional[str]]:
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read(), resp.headers.get("ETag")
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 304:
                return 304, b"", self._etag
            raise HttpError(f"{method} {url}: HTTP {e.code} {e.reason}", e.code, url) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise HttpError(f"{method} {url}: {reason}", None, url) from None

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
        """Stops the thread (waiting up to ``timeout`` seconds for a request
        in progress) and, with ``flush``, uploads what is queued one last time
        (failures go to ``on_error``)."""
        self._stop.set()
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
