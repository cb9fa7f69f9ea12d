"""The native library: the UniFFI-generated bindings plus direct ctypes calls
for the paths where the generated call machinery costs more than the work.

Three kinds of call go through here:

- **Hot typed getters** (``turnout_fast_int64/float64/bool``): plain C
  functions of ``ffi/src/fast.rs`` that *borrow* the handles of a generated
  ``Context`` and ``Variable`` (a UniFFI object handle is the address of the
  Rust ``Arc``). They are called through ``ctypes.PyDLL``: the GIL stays held
  for the ~0.1 us the decision takes, which is cheaper than releasing and
  re-taking it and keeps a handle from being freed by another Python thread
  in the middle of the call.
- **Decisions and contexts from JSON**: the generated scaffolding symbols
  (``uniffi_turnout_ffi_fn_method_context_decision``, ``..._context_json``)
  called directly, skipping the generated Python wrapper's per-call
  converter objects; the results are read with the generated readers.
- **Everything else** (config updates, batches, stats): the generated
  Python API as it is (``ffi``).

The ABI used here is UniFFI 0.32's (pinned in ``ffi/Cargo.toml``); the
generated module checks the contract version and every checksum on import.
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

__all__ = ["ffi", "raise_mapped", "fast_int64", "fast_float64", "fast_bool", "one_shot_decision_bytes"]

_u64 = ctypes.c_uint64
_Status = ffi._UniffiRustCallStatus
_StatusPtr = ctypes.POINTER(_Status)
_RustBuffer = ffi._UniffiRustBuffer


class _ForeignBytes(ctypes.Structure):
    """UniFFI's ``ForeignBytes`` with a ``c_char_p`` data field, so that a
    ``bytes`` object is passed without a cast (same layout)."""

    _fields_ = [("len", ctypes.c_int32), ("data", ctypes.c_char_p)]


_lib = ctypes.PyDLL(ffi._UniffiLib._name)


def _fn(name: str, argtypes: typing.Sequence[typing.Any], restype: typing.Any) -> typing.Any:
    f = getattr(_lib, name)
    f.argtypes = tuple(argtypes)
    f.restype = restype
    return f


fast_int64: typing.Callable[[typing.Optional[int], typing.Optional[int], int], int] = _fn(
    "turnout_fast_int64", (_u64, _u64, ctypes.c_int64), ctypes.c_int64
)
fast_float64: typing.Callable[[typing.Optional[int], typing.Optional[int], float], float] = _fn(
    "turnout_fast_float64", (_u64, _u64, ctypes.c_double), ctypes.c_double
)
fast_bool: typing.Callable[[typing.Optional[int], typing.Optional[int], int], int] = _fn(
    "turnout_fast_bool", (_u64, _u64, ctypes.c_int8), ctypes.c_int8
)

_fast_get_variable_json = _fn(
    "turnout_fast_get_variable_json",
    (_u64, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t),
    ctypes.c_int64,
)
_OUT_CAP = 512
_out = threading.local()


def one_shot_decision_bytes(client: typing.Optional[int], name: bytes, facets_json: bytes) -> typing.Optional[bytes]:
    """A one-shot decision in one crossing (``turnout_fast_get_variable_json``):
    the bytes of :func:`decision_bytes`, or ``None`` when the name or facets
    are invalid (the caller's general path then raises the typed error)."""
    buf = getattr(_out, "buf", None)
    if buf is None:
        buf = _out.buf = ctypes.create_string_buffer(_OUT_CAP)
    n: int = _fast_get_variable_json(client, name, len(name), facets_json, len(facets_json), buf, len(buf))
    if n < 0:
        return None
    if n > len(buf):  # a long value or label: once more with room for it
        buf = _out.buf = ctypes.create_string_buffer(n)
        n = _fast_get_variable_json(client, name, len(name), facets_json, len(facets_json), buf, len(buf))
        if n < 0 or n > len(buf):
            return None
    return buf.raw[:n]


_clone_client = _fn("uniffi_turnout_ffi_fn_clone_client", (_u64, _StatusPtr), _u64)
_clone_context = _fn("uniffi_turnout_ffi_fn_clone_context", (_u64, _StatusPtr), _u64)
_clone_variable = _fn("uniffi_turnout_ffi_fn_clone_variable", (_u64, _StatusPtr), _u64)
_context_decision = _fn("uniffi_turnout_ffi_fn_method_context_decision", (_u64, _u64, _StatusPtr), _RustBuffer)
_client_context_json = _fn("uniffi_turnout_ffi_fn_method_client_context_json", (_u64, _RustBuffer, _StatusPtr), _u64)
_buffer_from_bytes = _fn("ffi_turnout_ffi_rustbuffer_from_bytes", (_ForeignBytes, _StatusPtr), _RustBuffer)
_buffer_free = _fn("ffi_turnout_ffi_rustbuffer_free", (_RustBuffer, _StatusPtr), None)
_string_at = ctypes.string_at

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


def _check(status: typing.Any) -> None:
    try:
        ffi._uniffi_check_call_status(ffi._UniffiFfiConverterTypeTurnoutError, status)
    except (ffi.TurnoutError, ffi.InternalError) as e:
        raise_mapped(e)


def decision_bytes(ctx: typing.Optional[int], var: typing.Optional[int]) -> bytes:
    """The full decision of ``var`` for ``ctx`` (one evaluation, recorded like
    any other), as UniFFI's serialised ``Decision`` record. The handles are
    cloned for the call (a UniFFI method consumes one reference of each)."""
    st = _Status()
    buf = _context_decision(_clone_context(ctx, st), _clone_variable(var, st), st)
    if st.code:
        _check(st)
    raw: bytes = _string_at(buf.data, buf.len)
    _buffer_free(buf, st)
    return raw


def read_decision(raw: bytes) -> typing.Any:
    """Reads the bytes of :func:`decision_bytes` with the generated reader."""
    return ffi._UniffiFfiConverterTypeDecision.read(ffi._UniffiRustBufferStream(raw, len(raw)))


def context_from_json(client: typing.Optional[int], facets_json: bytes) -> typing.Any:
    """A generated ``Context`` from facets as JSON text (``Client.context_json``
    without the generated wrapper's string machinery)."""
    st = _Status()
    h = _client_context_json(
        _clone_client(client, st), _buffer_from_bytes(_ForeignBytes(len(facets_json), facets_json), st), st
    )
    if st.code:
        _check(st)
    return ffi.Context._uniffi_make_instance(h)
