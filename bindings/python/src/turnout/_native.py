"""The native library: the UniFFI-generated bindings plus direct ctypes calls
for the paths where the generated call machinery costs more than the work.

Three kinds of call go through here:

- **The fast paths** take the C ABI's handles (``TurnoutClient *``,
  ``TurnoutContext *``, ``TurnoutVariable *``: the one handle type every fast
  path shares, ``ffi/src/fast.rs``), each owned by one :class:`Handle`: a
  generated object's ``fast_handle()`` gives one, ``turnout_client_context``
  makes one. The typed getters are the C ABI's ``turnout_context_int64`` /
  ``_float64`` / ``_bool``, called through ``ctypes.PyDLL``: the GIL stays
  held for the ~0.1 us the decision takes, which is cheaper than releasing
  and re-taking it and keeps a handle from being freed by another Python
  thread in the middle of the call.
- **Decisions as records**: ``turnout_fast_decision`` and
  ``turnout_fast_get_variable_json`` write UniFFI's serialised ``Decision``
  record, read with the generated reader.
- **Everything else** (config updates, batches, stats, the sync machine):
  the generated Python API as it is (``ffi``).

No call here reads a generated object's private handle, so nothing depends on
how UniFFI lays its handles out; the generated module checks the contract
version and every checksum on import.
"""

from __future__ import annotations

import ctypes
import threading
import typing

from . import _errors as errors

try:
    from ._generated import turnout_ffi as _generated
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError(
        "turnout: the generated bindings or the native library are missing "
        "(turnout/_generated/). Build the package with `cargo xtask python`."
    ) from e

ffi: typing.Any = _generated
"""The generated module (typed ``Any``: it is not annotated for checkers)."""

__all__ = ["ffi", "raise_mapped", "Handle", "context_int64", "context_float64", "context_bool", "decision_bytes"]

_ptr = ctypes.c_void_p


class _Bytes(ctypes.Structure):
    """The C ABI's ``TurnoutBytes`` (owned bytes, freed with ``turnout_bytes_free``)."""

    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_lib = ctypes.PyDLL(ffi._UniffiLib._name)


def _fn(name: str, argtypes: typing.Sequence[typing.Any], restype: typing.Any) -> typing.Any:
    f = getattr(_lib, name)
    f.argtypes = tuple(argtypes)
    f.restype = restype
    return f


client_free = _fn("turnout_client_free", (_ptr,), None)
context_free = _fn("turnout_context_free", (_ptr,), None)
variable_free = _fn("turnout_variable_free", (_ptr,), None)


class Handle:
    """One fast-path handle (``p``, a C ABI pointer as an int) and its owner:
    freed, once, when the last reference to this object goes. A caller holds
    the object (not just ``p``) for the duration of a call."""

    __slots__ = ("p", "_free", "__weakref__")

    def __init__(self, p: int, free: typing.Callable[[int], None]) -> None:
        self.p = p
        self._free = free

    def __del__(self) -> None:
        p, self.p = self.p, 0
        if p:
            self._free(p)


context_int64: typing.Callable[[typing.Optional[int], typing.Optional[int], int], int] = _fn(
    "turnout_context_int64", (_ptr, _ptr, ctypes.c_int64), ctypes.c_int64
)
context_float64: typing.Callable[[typing.Optional[int], typing.Optional[int], float], float] = _fn(
    "turnout_context_float64", (_ptr, _ptr, ctypes.c_double), ctypes.c_double
)
context_bool: typing.Callable[[typing.Optional[int], typing.Optional[int], bool], bool] = _fn(
    "turnout_context_bool", (_ptr, _ptr, ctypes.c_bool), ctypes.c_bool
)
_client_context = _fn(
    "turnout_client_context",
    (_ptr, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_ptr), ctypes.c_void_p),
    ctypes.c_int32,
)
_context_track = _fn(
    "turnout_context_track", (_ptr, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_double, ctypes.c_void_p), ctypes.c_int32
)
_context_facets_json = _fn(
    "turnout_context_facets_json", (_ptr, ctypes.POINTER(_Bytes), ctypes.c_void_p), ctypes.c_int32
)
_bytes_free = _fn("turnout_bytes_free", (_Bytes,), None)
_fast_decision = _fn(
    "turnout_fast_decision", (_ptr, _ptr, ctypes.c_char_p, ctypes.c_size_t), ctypes.c_int64
)
_fast_get_variable_json = _fn(
    "turnout_fast_get_variable_json",
    (_ptr, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t),
    ctypes.c_int64,
)
_OUT_CAP = 512
_out = threading.local()


def _record(fn: typing.Any, *args: typing.Any) -> typing.Optional[bytes]:
    """The bytes of a serialised ``Decision`` record that ``fn(*args, buf,
    cap)`` writes (once more with room when the first buffer is too small),
    or ``None`` when ``fn`` answers -1."""
    buf = getattr(_out, "buf", None)
    if buf is None:
        buf = _out.buf = ctypes.create_string_buffer(_OUT_CAP)
    n: int = fn(*args, buf, len(buf))
    if n < 0:
        return None
    if n > len(buf):  # a long value or label: once more with room for it
        buf = _out.buf = ctypes.create_string_buffer(n)
        n = fn(*args, buf, len(buf))
        if n < 0 or n > len(buf):
            return None
    return buf.raw[:n]


def decision_bytes(ctx: typing.Optional[int], var: typing.Optional[int]) -> bytes:
    """The full decision of ``var`` for ``ctx`` (fast handles; one evaluation,
    recorded like any other), as UniFFI's serialised ``Decision`` record."""
    raw = _record(_fast_decision, ctx, var)
    if raw is None:
        raise errors.ClosedError("the context or the variable is closed")
    return raw


def one_shot_decision_bytes(client: typing.Optional[int], name: bytes, facets_json: bytes) -> typing.Optional[bytes]:
    """A one-shot decision in one crossing (``turnout_fast_get_variable_json``
    on the client's fast handle): the bytes of :func:`decision_bytes`, or
    ``None`` when the name or facets are invalid (the caller's general path
    then raises the typed error)."""
    return _record(_fast_get_variable_json, client, name, len(name), facets_json, len(facets_json))


def read_decision(raw: bytes) -> typing.Any:
    """Reads the bytes of :func:`decision_bytes` with the generated reader."""
    return ffi._UniffiFfiConverterTypeDecision.read(ffi._UniffiRustBufferStream(raw, len(raw)))


def context_from_json(client: typing.Optional[int], facets_json: bytes) -> typing.Optional[Handle]:
    """A context fast handle from facets as JSON text (``turnout_client_context``),
    or ``None`` when the facets are rejected (the caller's general path then
    raises the typed error, or marks facets over a limit)."""
    out = _ptr()
    if _client_context(client, facets_json, len(facets_json), ctypes.byref(out), None) != 0 or not out.value:
        return None
    return Handle(out.value, context_free)


def context_track(ctx: typing.Optional[int], name: bytes, value: float) -> None:
    """Records a metric with a context's facets (``turnout_context_track``)."""
    if _context_track(ctx, name, len(name), value, None) != 0:
        raise errors.ClosedError("the context is closed")


def context_facets_json(ctx: typing.Optional[int]) -> str:
    """A context's facets as JSON text (``turnout_context_facets_json``)."""
    out = _Bytes()
    if _context_facets_json(ctx, ctypes.byref(out), None) != 0:
        raise errors.ClosedError("the context is closed")
    try:
        return ctypes.string_at(out.ptr, out.len).decode()
    finally:
        _bytes_free(out)


NativeError = ffi.TurnoutError
"""The generated bindings' error base class (what :func:`raise_mapped` maps)."""


def problem(p: typing.Any) -> errors.Problem:
    """A generated ``Problem`` record as the public :class:`~turnout.Problem`."""
    return errors.Problem(p.document, p.field, p.message)


def raise_mapped(e: BaseException) -> typing.NoReturn:
    """Raises the public exception for a native error: the one mapping from
    the generated ``TurnoutError`` variants (and UniFFI's ``InternalError``,
    which only a bug in the library can cause) onto :mod:`turnout`'s. The
    kind and the structured detail come as fields, never from the text."""
    message = str(getattr(e, "message", e))
    code: str = getattr(e, "kind", "INTERNAL")
    public: errors.TurnoutError
    if isinstance(e, ffi.TurnoutError.Config):
        public = errors.ConfigError(message, [problem(p) for p in e.problems])
    elif isinstance(e, ffi.TurnoutError.Limit):
        public = errors.LimitError(message, e.limit, e.found, e.maximum)
    elif isinstance(e, ffi.TurnoutError.Batch):
        public = errors.BatchError(message, code)
    elif isinstance(e, ffi.TurnoutError.Facets):
        public = errors.FacetsError(message)
    elif isinstance(e, ffi.TurnoutError.Options):
        public = errors.OptionsError(message, code)
    elif isinstance(e, ffi.TurnoutError.State):
        public = errors.StateError(message, code)
    else:
        raise errors.TurnoutError(f"internal error in the native library: {message}") from e
    raise public from None
