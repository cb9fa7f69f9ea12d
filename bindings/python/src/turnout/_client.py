"""The Pythonic facade over the generated bindings: :class:`Client`,
:class:`Context`, :class:`Variable`, :class:`Decision` and the records.

Two paths, as in every turnout binding:

- **prepared** (the hot path): ``var = client.variable(name)`` once,
  ``ctx = client.context(facets)`` once per unit, then
  ``ctx.int64(var, default)``: one C call carrying two handles and a number.
- **one-shot**: ``client.get_variable(name, facets).int64(default)``. The
  facets are turned into a cache key on every call. Facets seen for the
  first time are decided in one native call from their JSON text (no
  context is built); facets seen again get a native context, kept in a
  bounded per-client cache (``context_cache_size``), and then cost two dict
  lookups and one C call. The decision record is read once per distinct
  answer (decisions are immutable and shared).

Nothing is decided here: every answer comes from the engine.
"""

from __future__ import annotations

import builtins
import ctypes
import dataclasses
import json
import os
import pathlib
import threading
import typing
import weakref

from . import _native as native
from ._errors import ClosedError, TurnoutTypeError
from ._facets import I64_MAX, I64_MIN, Facets, FacetsLike, facets_json, native_map
from ._native import ffi
from ._records import Batch, TrackingStats, UpdateReport
from .poller import Poller

__all__ = [
    "Client",
    "Context",
    "Variable",
    "Decision",
    "UpdateReport",
    "Batch",
    "TrackingStats",
    "Explanation",
    "ConfigSource",
]

__version__: str = str(ffi.library_version())
"""The package version: the native library's (one version for every turnout package, set in Cargo.toml)."""

ConfigSource = typing.Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", typing.Mapping[str, typing.Any]]
"""A config: JSON bytes or text, a path to a JSON file, or the parsed JSON (a mapping)."""

_fast_int64 = native.context_int64
_fast_float64 = native.context_float64
_fast_bool = native.context_bool
_decision_bytes = native.decision_bytes
_ArgumentError = ctypes.ArgumentError
_I64_MIN = I64_MIN
_I64_END = I64_MAX + 1


def _config_bytes(config: ConfigSource) -> bytes:
    if isinstance(config, bytes):
        return config
    if isinstance(config, (bytearray, memoryview)):
        return bytes(config)
    if isinstance(config, str):
        return config.encode()
    if isinstance(config, os.PathLike):
        with open(config, "rb") as f:
            return f.read()
    if isinstance(config, typing.Mapping):
        return json.dumps(config).encode()
    raise TurnoutTypeError(
        f"a config is JSON bytes or text, a path or a mapping, not {type(config).__name__}"
    )


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


class Decision:
    """One decision: the value and why. Immutable; equal answers share one
    object. Typed getters take the caller's default, returned when the
    source is ``fallback`` or the value has another type."""

    __slots__ = (
        "variable",
        "value",
        "value_json",
        "label",
        "source",
        "experiment",
        "rule",
        "choice",
        "reason",
        "error_code",
        "_int",
        "_float",
        "_bool",
        "_str",
    )

    variable: str
    """The variable's name."""
    value: typing.Any
    """The value as parsed JSON; ``None`` when the source is ``fallback``."""
    value_json: typing.Optional[str]
    """The value as compact JSON text, as the engine has it."""
    label: typing.Optional[str]
    """The matched rule's ``string`` label, if any."""
    source: str
    """``experiment``, ``rollout``, ``default`` or ``fallback``."""
    experiment: typing.Optional[str]
    """The experiment that assigned the value (source ``experiment``)."""
    rule: typing.Optional[int]
    """The matched rule's index (source ``rollout``)."""
    choice: typing.Optional[int]
    """The assigned choice's index (source ``experiment``)."""
    reason: str
    """``TARGETING_MATCH``, ``SPLIT``, ``DEFAULT``, ``DISABLED`` or ``ERROR``."""
    error_code: typing.Optional[str]
    """With reason ``ERROR``: ``FLAG_NOT_FOUND``, ``TYPE_MISMATCH``, ``PARSE_ERROR`` or
    ``INVALID_CONTEXT`` (the facets were over a limit: more than 1,024, a
    name over 1 KiB or a value over 8 KiB)."""
    _int: typing.Optional[int]
    _float: typing.Optional[float]
    _bool: typing.Optional[builtins.bool]
    _str: typing.Optional[str]

    def __init__(self, record: typing.Any) -> None:
        s = object.__setattr__
        s(self, "variable", record.variable)
        s(self, "value_json", record.value_json)
        v: typing.Any = None if record.value_json is None else json.loads(record.value_json)
        s(self, "value", v)
        for name in ("label", "source", "experiment", "rule", "choice", "reason", "error_code"):
            s(self, name, getattr(record, name))
        # The typed views, as the engine defines them (an integral float is an int64).
        t = type(v)
        as_int = None
        if t is int and _I64_MIN <= v < _I64_END:
            as_int = v
        elif t is float and v.is_integer() and -(2.0**63) <= v < 2.0**63:
            as_int = int(v)
        s(self, "_int", as_int)
        s(self, "_float", float(v) if t is int or t is float else None)
        s(self, "_bool", v if t is bool else None)
        s(self, "_str", v if t is str else None)

    def __setattr__(self, name: str, value: typing.Any) -> None:
        raise AttributeError("a Decision is immutable")

    def int64(self, default: int) -> int:
        """The value as an integer (integral numbers only), or ``default``."""
        v = self._int
        return default if v is None else v

    def float64(self, default: float) -> float:
        """The value as a float (any number), or ``default``."""
        v = self._float
        return default if v is None else v

    def bool(self, default: builtins.bool) -> builtins.bool:
        """The value as a boolean, or ``default``."""
        v = self._bool
        return default if v is None else v

    def string(self, default: str) -> str:
        """The value as a string, or ``default``."""
        v = self._str
        return default if v is None else v

    @property
    def is_fallback(self) -> builtins.bool:
        """True when there is no value (unknown variable, broken document):
        the caller's default applies."""
        return self.source == "fallback"

    def to_dict(self) -> typing.Dict[str, typing.Any]:
        """The contract's JSON form (the keys of ``turnout eval``):
        ``variable, value, source, experiment, rule, choice, reason, errorCode``."""
        return {
            "variable": self.variable,
            "value": self.value,
            "source": self.source,
            "experiment": self.experiment,
            "rule": self.rule,
            "choice": self.choice,
            "reason": self.reason,
            "errorCode": self.error_code,
        }

    def __eq__(self, other: object) -> builtins.bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__[:10])

    def __hash__(self) -> int:
        return hash((self.variable, self.value_json, self.source, self.rule, self.choice, self.reason))

    def __repr__(self) -> str:
        extra = "".join(
            f", {n}={getattr(self, n)!r}"
            for n in ("label", "experiment", "rule", "choice", "error_code")
            if getattr(self, n) is not None
        )
        return f"Decision({self.variable!r}, value={self.value!r}, source={self.source!r}, reason={self.reason!r}{extra})"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """A decision with the steps that led to it (``turnout eval --explain``)."""

    decision: Decision
    steps: typing.List[str]

    def __str__(self) -> str:
        return "\n".join(self.steps)


# Decisions by their serialised record: a distinct answer is read once.
_DECISIONS: typing.Dict[bytes, Decision] = {}
_DECISIONS_MAX = 8192


def _cache_key(facets: FacetsLike) -> typing.Any:
    """The one-shot cache key of facets (the same key the inline path of
    :meth:`Client.get_variable` builds), or ``None`` when they are not cacheable."""
    t = type(facets)
    if t is dict:
        key: typing.Any = (*facets.items(), *map(type, facets.values()))  # type: ignore[union-attr]
    elif t is Facets:
        key = facets.json()  # type: ignore[union-attr]
    elif facets is None:
        key = ()
    else:
        return None
    try:
        hash(key)
    except TypeError:  # an unhashable value: not cached; facets_json rejects it
        return None
    return key


def _decision_of(raw: bytes) -> Decision:
    d = _DECISIONS.get(raw)
    if d is None:
        d = Decision(native.read_decision(raw))
        if len(_DECISIONS) >= _DECISIONS_MAX:
            _DECISIONS.clear()
        _DECISIONS[raw] = d
    return d


# ---------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------


_C = typing.TypeVar("_C", bound="_Closeable")


class _Closeable:
    """``with`` support for the closable handles: ``__exit__`` calls ``close()``."""

    __slots__ = ()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Variable:
    """A variable handle: the name resolved once per config version (it
    survives updates). Get one with :meth:`Client.variable`; handles are
    cached per client and freed with their last reference."""

    __slots__ = ("_owner", "_h", "name")

    def __init__(self, gen: typing.Any, name: str) -> None:
        # The fast paths' handle of the generated variable: owned here, freed with this object.
        self._owner = native.Handle(gen.fast_handle(), native.variable_free)
        self._h: int = self._owner.p
        self.name = name
        """The variable's name."""

    def __repr__(self) -> str:
        return f"Variable({self.name!r})"


class Context(_Closeable):
    """The facets of one unit or request, prepared once. The typed getters
    are the hot path. Close it (or use ``with``) to release the native
    context; later calls raise :class:`~turnout.ClosedError`. Each call holds
    its own reference to the native object, so closing while another thread
    is in a call cannot free memory under it: the native context is freed,
    once, when the last reference goes (at ``close()`` when none is in use)."""

    __slots__ = ("_gen", "_client")

    def __init__(self, handle: native.Handle, client: "Client") -> None:
        # The fast paths' handle of this context (``_gen.p``), owned here.
        self._gen: typing.Optional[native.Handle] = handle
        self._client = client

    # -- hot typed getters -----------------------------------------------
    # `g` keeps the handle's owner (and so the native context) alive for
    # the duration of the C call, whatever another thread does meanwhile.
    def int64(self, variable: typing.Union[Variable, str], default: int = 0) -> int:
        """The value as an integer, or ``default`` (fallback or another type)."""
        g = self._gen
        try:
            if _I64_MIN <= default < _I64_END:
                return _fast_int64(g.p, variable._h, default)  # type: ignore[union-attr]
        except (AttributeError, TypeError, _ArgumentError):
            pass
        return typing.cast(int, self._slow("int64", variable, default))

    def float64(self, variable: typing.Union[Variable, str], default: float = 0.0) -> float:
        """The value as a float (any number), or ``default``."""
        g = self._gen
        try:
            return _fast_float64(g.p, variable._h, default)  # type: ignore[union-attr]
        except (AttributeError, TypeError, _ArgumentError):
            return typing.cast(float, self._slow("float64", variable, default))

    def bool(self, variable: typing.Union[Variable, str], default: builtins.bool = False) -> builtins.bool:
        """The value as a boolean, or ``default``."""
        g = self._gen
        try:
            if default is True or default is False:
                return _fast_bool(g.p, variable._h, default)  # type: ignore[union-attr]
        except (AttributeError, TypeError, _ArgumentError):
            pass
        return typing.cast(builtins.bool, self._slow("bool", variable, default))

    def _slow(self, kind: str, variable: typing.Any, default: typing.Any) -> typing.Any:
        """The typed getters' error path: resolves a name given instead of a
        :class:`Variable`, and turns every bad argument into a typed error."""
        g = self._live()
        var = self._client._variable_for(variable)
        expected, fast = _TYPED[kind]
        if not expected(default):
            raise TurnoutTypeError(f"{kind}: the default must be {_TYPED_NAMES[kind]}, not {default!r}")
        return fast(g.p, var._h, default)

    # -- richer answers --------------------------------------------------
    def decision(self, variable: typing.Union[Variable, str]) -> Decision:
        """The full decision (value, source, reason, experiment, ...)."""
        g = self._gen
        try:
            return _decision_of(_decision_bytes(g.p, variable._h))  # type: ignore[union-attr]
        except (AttributeError, _ArgumentError):
            g = self._live()
            return _decision_of(_decision_bytes(g.p, self._client._variable_for(variable)._h))

    def string(self, variable: typing.Union[Variable, str], default: str = "") -> str:
        """The value as a string, or ``default``."""
        if type(default) is not str:
            raise TurnoutTypeError(f"string: the default must be a str, not {default!r}")
        return self.decision(variable).string(default)

    def json(self, variable: typing.Union[Variable, str]) -> typing.Any:
        """The value as parsed JSON, or ``None`` (fallback)."""
        return self.decision(variable).value

    def track(self, name: str, value: float) -> None:
        """Records a metric ``service.name`` with this context's facets."""
        _check_track(name, value)
        g = self._live()
        native.context_track(g.p, name.encode(), float(value))

    @property
    def facets(self) -> typing.Dict[str, typing.Any]:
        """The facets, as the engine holds them."""
        g = self._live()
        return typing.cast(typing.Dict[str, typing.Any], json.loads(native.context_facets_json(g.p)))

    def _live(self) -> native.Handle:
        g = self._gen
        if g is None:
            raise ClosedError("this context is closed")
        return g

    # -- lifetime ----------------------------------------------------------
    def close(self) -> None:
        """Releases the native context; later calls raise :class:`~turnout.ClosedError`.
        A second call does nothing."""
        self._gen = None  # the handle's __del__ frees the native context, once

    @property
    def closed(self) -> builtins.bool:
        """Whether :meth:`close` was called."""
        return self._gen is None

    def __repr__(self) -> str:
        g = self._gen
        return "Context(closed)" if g is None else f"Context({native.context_facets_json(g.p)})"


_TYPED: typing.Dict[str, typing.Tuple[typing.Callable[[typing.Any], bool], typing.Any]] = {
    "int64": (lambda d: type(d) is int and _I64_MIN <= d < _I64_END, _fast_int64),
    "float64": (lambda d: type(d) in (int, float), _fast_float64),
    "bool": (lambda d: d is True or d is False, _fast_bool),
}
_TYPED_NAMES = {"int64": "a signed 64-bit int", "float64": "a float", "bool": "a bool"}


def _check_track(name: object, value: object) -> None:
    if type(name) is not str or not name:
        raise TurnoutTypeError(f"a metric name is a non-empty str, not {name!r}")
    if type(value) not in (int, float):
        raise TurnoutTypeError(f"a metric value is a number, not {value!r}")


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

_ISOLATION = {"per_document": "perDocument", "perDocument": "perDocument", "strict": "strict"}


class Client(_Closeable):
    """A turnout client: the compiled config (swapped atomically on update)
    and the event queue. Thread-safe; share one per process and service.

    ``config`` bootstraps the client so that the first decision never waits
    for the network (``None``: every variable resolves to ``fallback`` until
    :meth:`update_config`). Options, all keyword-only and optional:

    - ``service``: the service name (prefixes tracked metric names);
    - ``isolation``: ``"per_document"`` (default: a broken document keeps its
      last good version) or ``"strict"`` (any problem rejects the update);
    - ``decision_events``: ``"all"`` (default), ``"experiments"`` or ``"off"``;
    - ``exclude_facets``: facet names never recorded in events (PII);
    - ``max_queue``, ``max_fold_keys``, ``max_unacked_batches``: queue limits;
    - ``client_id``, ``sdk_version``, ``platform``: batch header fields;
    - ``fixed_time_ms``: pin the clock (tests; move it with :meth:`set_time_ms`);
    - ``max_config_bytes``: the largest config accepted (default 16 MiB; a
      larger one raises :class:`~turnout.LimitError`);
    - ``context_cache_size``: native contexts kept for one-shot calls (0: none).

    Raises :class:`~turnout.ConfigError` for a config that cannot be loaded,
    :class:`~turnout.LimitError` for one over a limit (size, depth, expanded
    constraints) and :class:`~turnout.OptionsError` for invalid options.
    """

    def __init__(
        self,
        config: typing.Optional[ConfigSource] = None,
        *,
        service: typing.Optional[str] = None,
        isolation: typing.Optional[str] = None,
        decision_events: typing.Optional[str] = None,
        exclude_facets: typing.Optional[typing.Iterable[str]] = None,
        max_queue: typing.Optional[int] = None,
        max_fold_keys: typing.Optional[int] = None,
        max_unacked_batches: typing.Optional[int] = None,
        client_id: typing.Optional[str] = None,
        sdk_version: typing.Optional[str] = None,
        platform: typing.Optional[str] = None,
        fixed_time_ms: typing.Optional[int] = None,
        max_config_bytes: typing.Optional[int] = None,
        context_cache_size: int = 4096,
    ) -> None:
        options: typing.Dict[str, typing.Any] = {"sdk": "turnout-python", "sdkVersion": __version__,
                                                 "platform": "python"}
        for key, value in (
            ("service", service),
            ("isolation", _ISOLATION.get(isolation, isolation) if isinstance(isolation, str) else isolation),
            ("decisionEvents", decision_events),
            ("excludeFacets", list(exclude_facets) if exclude_facets is not None else None),
            ("maxQueue", max_queue),
            ("maxFoldKeys", max_fold_keys),
            ("maxUnackedBatches", max_unacked_batches),
            ("clientId", client_id),
            ("sdkVersion", sdk_version),
            ("platform", platform),
            ("fixedTimeMs", fixed_time_ms),
            ("maxConfigBytes", max_config_bytes),
        ):
            if value is not None:
                options[key] = value
        if type(context_cache_size) is not int or context_cache_size < 0:
            raise TurnoutTypeError(f"context_cache_size is an int >= 0, not {context_cache_size!r}")
        try:
            opts = json.dumps(options)
        except (TypeError, ValueError) as e:
            raise TurnoutTypeError(f"client options: {e}") from None
        try:
            if config is None:
                gen = ffi.Client.empty(opts)
            else:
                gen = ffi.Client(_config_bytes(config), opts)
        except native.NativeError as e:
            native.raise_mapped(e)
        self._gen: typing.Any = gen
        # The fast paths' handle of this client (one-shot decisions, contexts), owned here.
        self._fast: typing.Optional[native.Handle] = native.Handle(gen.fast_handle(), native.client_free)
        self._vars: typing.Dict[str, Variable] = {}
        self._contexts: typing.Dict[typing.Any, Context] = {}
        # Cache keys of facets decided once without a context (bounded like the cache).
        self._seen: typing.Dict[typing.Any, None] = {}
        self._cache_max = context_cache_size
        self._lock = threading.Lock()
        self._pid = os.getpid()
        _CLIENTS.add(self)

    @classmethod
    def from_file(cls, path: typing.Union[str, "os.PathLike[str]"], **options: typing.Any) -> "Client":
        """A client bootstrapped from a JSON config file (options as for :class:`Client`)."""
        return cls(pathlib.Path(path), **options)

    def _live(self) -> typing.Any:
        gen = self._gen
        if gen is None:
            raise ClosedError("this client is closed")
        return gen

    def _forked(self) -> None:
        """In a forked child, once: the inherited events are the parent's to
        deliver; the child's batches carry a client id of their own (a copy of
        the parent's would make the collector drop one process's batches as
        duplicates of the other's)."""
        gen = self._gen
        if gen is not None and self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()  # the parent's may be held by a thread that is not here
            gen.forked_child(os.urandom(8).hex())

    @property
    def client_id(self) -> str:
        """The id written in this client's batch headers (new in a forked child)."""
        return str(self._live().client_id())

    def _live_fast(self) -> native.Handle:
        fast = self._fast
        if fast is None:
            raise ClosedError("this client is closed")
        return fast

    # -- handles ---------------------------------------------------------
    def variable(self, name: str) -> Variable:
        """The handle for ``name`` (cached: the same object every time)."""
        if type(name) is not str:
            raise TurnoutTypeError(f"a variable name is a str, not {name!r}")
        v = self._vars.get(name)
        if v is None:
            v = self._vars.setdefault(name, Variable(self._live().variable(name), name))
        return v

    def _variable_for(self, v: typing.Any) -> Variable:
        if isinstance(v, Variable):
            return v
        if isinstance(v, str):
            return self.variable(v)
        raise TurnoutTypeError(f"a variable is a Variable or a name, not {v!r}")

    def context(self, facets: FacetsLike = None) -> Context:
        """A prepared context for one unit or request (yours to keep and close).
        Facets over a limit (more than 1,024, a name over 1 KiB, a value over
        8 KiB) give a context whose every decision is the caller's default
        with reason ``ERROR`` and error code ``INVALID_CONTEXT``."""
        fast = self._live_fast()
        text = facets_json(facets)
        handle = native.context_from_json(fast.p, text)
        if handle is None:
            # The generated call raises the typed error; facets over a limit give a
            # context marked as such, as the generated map-based calls (and every
            # platform) treat them.
            g = self._live()
            try:
                gen = g.context_json(text.decode())
            except native.NativeError as e:
                if not isinstance(e, ffi.TurnoutError.Limit):
                    native.raise_mapped(e)
                gen = g.context(native_map(facets))
            handle = native.Handle(gen.fast_handle(), native.context_free)
        return Context(handle, self)

    def _context_for(self, facets: FacetsLike) -> Context:
        """The cached context for these facets (one-shot calls)."""
        key = _cache_key(facets)
        ctx = None if key is None else self._contexts.get(key)
        if ctx is None:
            ctx = self.context(facets)
            if key is not None and self._cache_max:
                with self._lock:
                    cache = self._contexts
                    if len(cache) >= self._cache_max:
                        del cache[next(iter(cache))]
                    cache[key] = ctx
        return ctx

    # -- one-shot --------------------------------------------------------
    def get_variable(self, name: str, facets: FacetsLike = None) -> Decision:
        """The decision for ``name`` and ``facets`` (records a decision event).
        ``client.get_variable("delay", {"city": 10, "pax": 7}).int64(30)``."""
        # The common case inline (a known name, a dict seen before): two dict
        # lookups, then the decision; everything else takes the general path.
        try:
            var = self._vars[name]
            ctx = self._contexts[(*facets.items(), *map(type, facets.values()))]  # type: ignore[union-attr]
        except (KeyError, TypeError, AttributeError):
            return self._get_variable_cold(name, facets)
        raw = _decision_bytes(ctx._gen.p, var._h)  # type: ignore[union-attr]  # cached contexts are never closed
        d = _DECISIONS.get(raw)
        return d if d is not None else _decision_of(raw)

    def _get_variable_cold(self, name: str, facets: FacetsLike) -> Decision:
        """A one-shot decision for facets that are not cached: decided from
        their JSON in one native call the first time they are seen, through a
        cached context from the second time on."""
        key = _cache_key(facets)
        first = key is not None and (not self._cache_max or key not in self._seen)
        if first and type(name) is str:
            raw = native.one_shot_decision_bytes(self._live_fast().p, name.encode(), facets_json(facets))
            if raw is not None:
                if self._cache_max:
                    with self._lock:
                        seen = self._seen
                        if len(seen) >= self._cache_max:
                            del seen[next(iter(seen))]
                        seen[key] = None
                return _decision_of(raw)
        # Seen before, not cacheable, or invalid input (the general path raises the typed error).
        var = self.variable(name)
        ctx = self._context_for(facets)
        raw = _decision_bytes(ctx._live().p, var._h)  # cached contexts are never closed
        d = _DECISIONS.get(raw)
        return d if d is not None else _decision_of(raw)

    def get_variables(self, name: str, facets: FacetsLike = None) -> typing.List[Decision]:
        """Every variable assigned by the experiment, or by the experiments of
        the domain, called ``name``."""
        return [Decision(d) for d in self._live().get_variables(name, native_map(facets))]

    def explain(self, name: str, facets: FacetsLike = None) -> Explanation:
        """The decision with the steps that led to it (records nothing)."""
        e = self._live().explain(name, native_map(facets))
        return Explanation(Decision(e.decision), list(e.steps))

    # -- tracking --------------------------------------------------------
    def track(self, name: str, value: float, facets: FacetsLike = None) -> None:
        """Records a metric ``service.name`` with ``value`` and the facets."""
        _check_track(name, value)
        native.context_track(self._context_for(facets)._live().p, name.encode(), float(value))

    def take_batch(self, max_events: int = 1000) -> typing.Optional[Batch]:
        """The next batch of at most ``max_events`` events, or ``None``."""
        if type(max_events) is not int or not 1 <= max_events < 2**32:
            raise TurnoutTypeError(f"max_events is an int in [1, 2**32), not {max_events!r}")
        b = self._live().take_batch(max_events)
        return None if b is None else Batch(b.seq, bytes(b.bytes), b.events)

    def ack(self, seq: int) -> bool:
        """Batch ``seq`` was delivered: forget it. ``False`` if unknown."""
        return bool(self._live().ack(_seq(seq)))

    def nack(self, seq: int) -> bool:
        """Batch ``seq`` failed: it is taken again, same bytes, by the next
        :meth:`take_batch`. ``False`` if unknown."""
        return bool(self._live().nack(_seq(seq)))

    def tracking_stats(self) -> TrackingStats:
        """The queue counters."""
        s = self._live().tracking_stats()
        return TrackingStats(s.recorded, s.folded, s.dropped, s.fold_overflow, s.queued, s.in_flight, s.retrying)

    # -- config ------------------------------------------------------------
    def update_config(self, config: ConfigSource) -> UpdateReport:
        """Validates, compiles and atomically installs a config. On error
        (:class:`~turnout.ConfigError`, or :class:`~turnout.LimitError` for a
        config over a limit) the previous config stays in force."""
        data = _config_bytes(config)
        try:
            return UpdateReport._of(self._live().update_config(data))
        except native.NativeError as e:
            native.raise_mapped(e)

    def validate(self, config: ConfigSource) -> UpdateReport:
        """Checks a config without installing it."""
        data = _config_bytes(config)
        try:
            return UpdateReport._of(self._live().validate(data))
        except native.NativeError as e:
            native.raise_mapped(e)

    @property
    def config_version(self) -> typing.Optional[int]:
        """The ``version`` of the bundle in force."""
        return typing.cast(typing.Optional[int], self._live().config_version())

    def variable_names(self) -> typing.List[str]:
        """Every variable the config defines, sorted."""
        return list(self._live().variable_names())

    def set_time_ms(self, ms: int) -> None:
        """Moves the fixed clock (clients built with ``fixed_time_ms`` only;
        otherwise :class:`~turnout.StateError`)."""
        if type(ms) is not int or not _I64_MIN <= ms < _I64_END:
            raise TurnoutTypeError(f"ms is a 64-bit int, not {ms!r}")
        try:
            self._live().set_time_ms(ms)
        except native.NativeError as e:
            native.raise_mapped(e)

    # -- networking --------------------------------------------------------
    def poller(self, config_url: typing.Optional[str], **options: typing.Any) -> Poller:
        """A :class:`~turnout.Poller` for this client (not started); see there."""
        return Poller(self, config_url, **options)

    # -- lifetime ----------------------------------------------------------
    def close(self) -> None:
        """Releases the client; every later call raises :class:`~turnout.ClosedError`
        (a second call does nothing). The native client is freed, once, when
        the last reference goes: at once unless a call is in progress on
        another thread, or contexts you made still hold the engine (they stay
        usable until you close them)."""
        with self._lock:
            self._gen = None
            self._fast = None
            # Cached contexts are dropped, not closed: another thread may be
            # using one; each is freed with its last reference.
            self._contexts.clear()
            self._vars.clear()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._gen is None

    def __repr__(self) -> str:
        if self._gen is None:
            return "Client(closed)"
        return f"Client(version={self._gen.config_version()}, variables={len(self._gen.variable_names())})"


def _seq(seq: object) -> int:
    if type(seq) is not int or not 0 <= seq < 2**64:
        raise TurnoutTypeError(f"a batch seq is an unsigned 64-bit int, not {seq!r}")
    return seq


# ---------------------------------------------------------------------------
# Batch codec and versions
# ---------------------------------------------------------------------------


def encode_batch(batch: typing.Union[str, typing.Mapping[str, typing.Any]]) -> bytes:
    """Encodes ``{"header": {...}, "events": [...]}`` (the JSON form of
    ``turnout decode`` and the batch vectors) into wire bytes."""
    text = batch if isinstance(batch, str) else json.dumps(batch)
    try:
        return bytes(ffi.encode_batch_json(text))
    except native.NativeError as e:
        native.raise_mapped(e)


def decode_batch(data: typing.Union[bytes, bytearray, memoryview]) -> typing.Dict[str, typing.Any]:
    """Decodes wire bytes into ``{"header": {...}, "events": [...]}``.
    Corrupted bytes raise :class:`~turnout.BatchError` (``.kind`` says why);
    a batch that would decode to more than its expansion limit (128 times its
    size plus 64 KiB, counting every event's copy of its facets) raises
    :class:`~turnout.LimitError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TurnoutTypeError(f"batch bytes are bytes, not {type(data).__name__}")
    try:
        return typing.cast(typing.Dict[str, typing.Any], json.loads(ffi.decode_batch_json(bytes(data))))
    except native.NativeError as e:
        native.raise_mapped(e)


def spec_version() -> int:
    """The evaluation contract version (docs/spec.md) the library implements."""
    return int(ffi.spec_version())


def library_version() -> str:
    """The native library's version."""
    return str(ffi.library_version())


# -- fork safety: a forked child's clients forget the parent's events (poller.py restarts pollers) --
_CLIENTS: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for c in list(_CLIENTS):
        c._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
