"""Shared fixtures: the repository root, vector helpers, the conformance
result file (target/conformance/python.json), and a local HTTP server."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import threading
import time
import typing

import pytest

ROOT = pathlib.Path(os.environ.get("TURNOUT_ROOT") or pathlib.Path(__file__).resolve().parents[3])
CONFORMANCE = ROOT / "tests" / "conformance"
RESULTS: typing.Dict[str, typing.Dict[str, int]] = {}


def vector_facets(raw: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """Vector facets as a Python dict: ``{"$int64": "..."}`` -> int."""
    return {k: int(v["$int64"]) if isinstance(v, dict) else v for k, v in raw.items()}


def exact_ints(v: typing.Any) -> typing.Any:
    """``{"$int64": "..."}`` anywhere in a JSON value -> int (the decoder
    writes exact JSON numbers; Python reads them exactly)."""
    if isinstance(v, dict):
        if len(v) == 1 and isinstance(v.get("$int64"), str):
            return int(v["$int64"])
        return {k: exact_ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [exact_ints(x) for x in v]
    return v


def json_equal(a: typing.Any, b: typing.Any) -> bool:
    """JSON equality with numbers compared by value (``1.0 == 1``) but
    booleans never equal to numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def index_files(kind: str) -> typing.List[str]:
    """The vector files of ``kind`` listed in tests/conformance/index.json."""
    index = json.loads((CONFORMANCE / "index.json").read_text())
    return [f["path"] for f in index["files"] if f["kind"] == kind]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not RESULTS:
        return
    out = ROOT / "target" / "conformance" / "python.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"platform": "python", "files": dict(sorted(RESULTS.items()))}, indent=2) + "\n")


class Server:
    """A scriptable config server and event collector on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.config: bytes = b""
        self.etag: str = ""
        self.config_gets = 0
        self.not_modified = 0
        self.fail_gets = 0  # answer this many GETs with ``fail_status``
        self.fail_status = 503
        self.stale_304 = 0  # answer this many GETs with 304 whatever they send (a stale cache)
        self.fail_posts = 0  # answer this many POSTs with 500
        self.failed_bodies: typing.List[bytes] = []
        self.accepted: typing.List[bytes] = []
        self.if_none_match: typing.List[typing.Optional[str]] = []  # of every config GET
        # Raw answers for the next config GETs, in order (see ``script``).
        self.scripted: typing.List[typing.Callable[[typing.BinaryIO], None]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.config_gets += 1
                    owner.if_none_match.append(self.headers.get("If-None-Match"))
                    raw = owner.scripted.pop(0) if owner.scripted else None
                if raw is not None:
                    self.close_connection = True
                    try:
                        raw(self.wfile)
                    except OSError:
                        pass  # the client gave up (as the test wants)
                    return
                with owner.lock:
                    if owner.fail_gets > 0:
                        owner.fail_gets -= 1
                        self.send_response(owner.fail_status)
                        self.end_headers()
                        return
                    stale = owner.stale_304 > 0
                    owner.stale_304 -= stale
                    if stale or (owner.etag and self.headers.get("If-None-Match") == owner.etag):
                        owner.not_modified += 1
                        self.send_response(304)
                        self.end_headers()
                        return
                    body, etag = owner.config, owner.etag
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    fail = owner.fail_posts > 0
                    if fail:
                        owner.fail_posts -= 1
                        owner.failed_bodies.append(body)
                    else:
                        owner.accepted.append(body)
                self.send_response(500 if fail else 204)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, config: typing.Union[bytes, typing.Mapping[str, typing.Any]], etag: str) -> None:
        with self.lock:
            self.config = config if isinstance(config, bytes) else json.dumps(config).encode()
            self.etag = etag

    def script(self, *answers: typing.Callable[[typing.BinaryIO], None]) -> None:
        """Answers the next config GETs with raw bytes (``raw_answer``), in
        order; the connection is closed after each."""
        with self.lock:
            self.scripted.extend(answers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def raw_answer(
    body: bytes,
    etag: str = "",
    content_length: typing.Optional[int] = -1,
    send: typing.Optional[int] = None,
    byte_every: float = 0.0,
) -> typing.Callable[[typing.BinaryIO], None]:
    """A raw ``200`` answer for :meth:`Server.script`: ``content_length`` -1
    declares ``len(body)``, ``None`` declares nothing (the body ends when the
    connection closes); only the first ``send`` bytes are sent (truncation);
    ``byte_every`` > 0 sends one byte at a time with that pause (a slow body)."""

    def write(out: typing.BinaryIO) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        if etag:
            head += f"ETag: {etag}\r\n"
        if content_length is not None:
            head += f"Content-Length: {len(body) if content_length == -1 else content_length}\r\n"
        out.write((head + "\r\n").encode())
        out.flush()
        data = body if send is None else body[:send]
        if byte_every <= 0:
            out.write(data)
            out.flush()
            return
        for i in range(len(data)):
            time.sleep(byte_every)
            out.write(data[i : i + 1])
            out.flush()

    return write


@pytest.fixture
def server() -> typing.Iterator[Server]:
    s = Server()
    yield s
    s.close()


def wait_for(predicate: typing.Callable[[], bool], timeout: float = 10.0) -> None:
    """Waits until ``predicate()`` holds (fails the test after ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
