"""The public exceptions of the Python package. The native library's errors
are mapped onto them in one place: ``_native.raise_mapped``."""

from __future__ import annotations

import dataclasses
import typing

__all__ = [
    "Problem",
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


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem found in a config: which document, which field, why."""

    document: str
    """The document, e.g. ``rollout "automatedMessageDelay"``, or ``bundle``."""
    field: str
    """A JSON path inside the document (empty for the document as a whole)."""
    message: str
    """What is wrong."""

    def __str__(self) -> str:
        return ": ".join(x for x in (self.document, self.field, self.message) if x)


class TurnoutError(Exception):
    """Base class of every error turnout raises. ``message`` is the text
    without the kind prefix; ``code`` the engine's stable error kind
    (``INVALID_CONFIG``, ``BATCH_CHECKSUM``, ``LIMIT_EXCEEDED``, ...: the same
    code on every platform, docs/sync.md section 8). Branch on the class or
    on ``code``, never on the message."""

    code: str = "INTERNAL"

    def __init__(self, message: str, code: typing.Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(TurnoutError, ValueError):
    """A config was rejected; the previous config stays in force. The message
    lists every problem (``document: field: message``, ``; ``-separated);
    ``problems`` holds them as :class:`Problem` records."""

    code = "INVALID_CONFIG"

    def __init__(self, message: str, problems: typing.Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems: typing.List[Problem] = list(problems)


class FacetsError(TurnoutError, ValueError):
    """Facets could not be used (not a mapping, a value of an unsupported type,
    an integer outside the signed 64-bit range, a non-finite float)."""

    code = "INVALID_FACETS"


class OptionsError(TurnoutError, ValueError):
    """Client options were invalid (an unknown option, a limit of 0, ...)."""

    code = "INVALID_OPTIONS"


class BatchError(TurnoutError, ValueError):
    """A batch could not be encoded or decoded. Corrupted bytes are rejected
    whole. ``code`` is ``BATCH_CHECKSUM``, ``NOT_A_BATCH``, ``BATCH_VERSION``,
    ``BATCH_MALFORMED`` (decoding) or ``INVALID_BATCH`` (encoding from JSON);
    ``kind`` the same in this package's older spelling (``checksum``,
    ``not-a-batch``, ``version``, ``malformed``, ``json``)."""

    code = "INVALID_BATCH"

    def __init__(self, message: str, code: str = "INVALID_BATCH") -> None:
        super().__init__(message, code)
        self.kind = _BATCH_KINDS.get(code, "json")


class LimitError(TurnoutError, ValueError):
    """A limit on hostile input was exceeded (docs/spec.md, section 17): a
    config over ``max_config_bytes``, nested deeper than 64 or expanding to
    too many constraints (the previous config stays in force), or a batch
    that would decode to more than its expansion limit. (Facets over a limit
    raise nothing: decisions on them are the default with ``INVALID_CONTEXT``.)
    The message names the limit (``limit `config_bytes` exceeded: found 3870,
    the maximum is 1000``); ``limit`` is that name (``config_bytes``,
    ``json_depth``, ``expanded_constraints``, ``decode_expansion``, ...),
    ``found`` and ``maximum`` the numbers, as the engine reported them."""

    code = "LIMIT_EXCEEDED"

    def __init__(
        self,
        message: str,
        limit: typing.Optional[str] = None,
        found: typing.Optional[int] = None,
        maximum: typing.Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.limit, self.found, self.maximum = limit, found, maximum


class StateError(TurnoutError, RuntimeError):
    """The call is not possible in this state (``code`` ``NO_FIXED_CLOCK``:
    moving the clock of a client without a fixed clock; ``CLOSED``)."""

    code = "INVALID_ARGUMENT"


class ClosedError(StateError):
    """The client, context or poller was closed."""

    code = "CLOSED"


class TurnoutTypeError(TurnoutError, TypeError):
    """An argument of the wrong type (or an integer out of the 64-bit range)."""

    code = "INVALID_ARGUMENT"


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


def error_of_kind(code: str, message: str, status: typing.Optional[int] = None, url: str = "",
                  notice: typing.Optional[typing.Mapping[str, typing.Any]] = None) -> TurnoutError:
    """The exception of an engine error kind as the sync machine reports it
    (docs/sync.md sections 7-8): a rejected config is a :class:`ConfigError`
    (``INVALID_CONFIG``, with the notice's ``problems``) or a :class:`LimitError`
    (``LIMIT_EXCEEDED``, with its ``limit``), a failed request an
    :class:`HttpError` with the kind as ``code``."""
    n = notice or {}
    if code == "INVALID_CONFIG":
        return ConfigError(message, [Problem(p["document"], p["field"], p["message"]) for p in n.get("problems", ())])
    if code == "LIMIT_EXCEEDED":
        limit = n.get("limit") or {}
        return LimitError(message, limit.get("limit"), limit.get("found"), limit.get("max"))
    return HttpError(message, status, url, code)


_BATCH_KINDS = {
    "BATCH_CHECKSUM": "checksum",
    "NOT_A_BATCH": "not-a-batch",
    "BATCH_VERSION": "version",
    "BATCH_MALFORMED": "malformed",
    "INVALID_BATCH": "json",
}
