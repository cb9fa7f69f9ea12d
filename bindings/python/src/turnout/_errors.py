"""The public exceptions of the Python package. The native library's errors
are mapped onto them in one place: ``_native.raise_mapped``."""

from __future__ import annotations

import re
import typing

__all__ = [
    "TurnoutError",
    "HttpError",
    "ConfigError",
    "FacetsError",
    "OptionsError",
    "BatchError",
    "StateError",
    "ClosedError",
    "LimitError",
    "TurnoutTypeError",
]


class TurnoutError(Exception):
    """Base class of every error turnout raises. ``message`` is the text
    without the kind prefix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(TurnoutError, ValueError):
    """A config was rejected; the previous config stays in force. The message
    lists every problem, one per line (``document: field: message``)."""


class FacetsError(TurnoutError, ValueError):
    """Facets could not be used (not a mapping, a value of an unsupported type,
    an integer outside the signed 64-bit range, a non-finite float)."""


class OptionsError(TurnoutError, ValueError):
    """Client options were invalid (an unknown option, a limit of 0, ...)."""


class BatchError(TurnoutError, ValueError):
    """A batch could not be encoded or decoded. Corrupted bytes are rejected
    whole. ``kind`` is ``checksum``, ``not-a-batch``, ``version``,
    ``malformed`` (decoding) or ``json`` (encoding from JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.kind = _batch_kind(message)


class LimitError(TurnoutError, ValueError):
    """A limit on hostile input was exceeded (docs/spec.md, section 17): a
    config over ``max_config_bytes``, nested deeper than 64 or expanding to
    too many constraints (the previous config stays in force), or a batch
    that would decode to more than its expansion limit. (Facets over a limit
    raise nothing: decisions on them are the default with ``INVALID_CONTEXT``.)
    The message names the limit (``limit `config_bytes` exceeded: found 3870,
    the maximum is 1000``); ``limit`` is that name (``config_bytes``,
    ``json_depth``, ``expanded_constraints``, ``decode_expansion``, ...),
    ``found`` and ``maximum`` the numbers (``None`` if the message has none)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        m = _LIMIT.search(message)
        self.limit: typing.Optional[str] = m.group(1) if m else None
        self.found: typing.Optional[int] = int(m.group(2)) if m else None
        self.maximum: typing.Optional[int] = int(m.group(3)) if m else None


class StateError(TurnoutError, RuntimeError):
    """The call is not possible in this state (e.g. moving a clock that is
    not fixed)."""


class ClosedError(StateError):
    """The client, context or poller was closed."""


class TurnoutTypeError(TurnoutError, TypeError):
    """An argument of the wrong type (or an integer out of the 64-bit range)."""


class HttpError(TurnoutError):
    """A request of the poller failed. ``code`` is its stable error kind
    (docs/sync.md section 8: ``HTTP``, ``NETWORK``, ``TIMEOUT``,
    ``TOO_LARGE``, ``INCOMPLETE``, ``ABORTED``), ``kind`` the same in this
    package's older spelling (``"status"``, ``"network"``, ``"timeout"``,
    ``"too-large"``, ``"incomplete"``, ``"aborted"``), ``status`` the HTTP
    status (``None`` when no complete response came)."""

    def __init__(self, message: str, status: typing.Optional[int] = None, url: str = "", code: str = "NETWORK") -> None:
        super().__init__(message)
        self.status, self.url, self.code = status, url, code
        self.kind = "status" if code == "HTTP" else code.lower().replace("_", "-")


def error_of_kind(code: str, message: str, status: typing.Optional[int] = None, url: str = "") -> TurnoutError:
    """The exception of an engine error kind as the sync machine reports it
    (docs/sync.md sections 7-8): a rejected config is a :class:`ConfigError`
    (``INVALID_CONFIG``) or a :class:`LimitError` (``LIMIT_EXCEEDED``), a
    failed request an :class:`HttpError` with the kind as ``code``."""
    if code == "INVALID_CONFIG":
        return ConfigError(message)
    return LimitError(message) if code == "LIMIT_EXCEEDED" else HttpError(message, status, url, code)


_LIMIT = re.compile(r"limit `(\w+)` exceeded: found (\d+), the maximum is (\d+)")

_BATCH_KINDS = (
    ("checksum mismatch", "checksum"),
    ("not a turnout batch", "not-a-batch"),
    ("unsupported batch version", "version"),
    ("malformed batch", "malformed"),
)


def _batch_kind(message: str) -> str:
    for prefix, kind in _BATCH_KINDS:
        if message.startswith(prefix):
            return kind
    return "json"
