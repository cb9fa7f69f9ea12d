"""Facets: the attributes of the unit or request a decision is taken for.

A :class:`Facets` builder in the style of Grab's SDK
(``Facets().passenger(123).city(6)``), or any ``dict`` of name -> value,
is accepted wherever facets are. Values are ``str``, ``int`` (exact signed
64-bit: ids above 2**53 bucket exactly as in every other language),
``float`` (finite; an integral float buckets like the integer), ``bool``,
or ``None`` (absent). ``{"$int64": "9007199254740993"}``, the conformance
vectors' exact-integer form, is accepted as an integer too.
"""

from __future__ import annotations

import json
import json.encoder
import math
import typing

from ._errors import FacetsError, TurnoutTypeError

__all__ = ["Facets", "FacetValue", "FacetsLike"]

FacetValue = typing.Union[str, int, float, bool, None]
"""A facet value (``None``: the facet is absent)."""

FacetsLike = typing.Union["Facets", typing.Mapping[str, typing.Any], None]
"""What the API accepts as facets."""

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_quote = json.encoder.encode_basestring  # the C-accelerated string quoting json.dumps uses


def _plain_json(facets: typing.Mapping[str, typing.Any]) -> typing.Optional[str]:
    """The JSON text of the common facets shape (non-empty str names; int in
    64 bits, str or bool values) without the encoder's set-up cost; ``None``
    for anything else (the checked general path handles it)."""
    parts = []
    for k, v in facets.items():
        if type(k) is not str or not k:
            return None
        t = type(v)
        if t is int:
            if not I64_MIN <= v <= I64_MAX:
                return None
            parts.append(f"{_quote(k)}:{v}")
        elif t is str:
            parts.append(f"{_quote(k)}:{_quote(v)}")
        elif t is bool:
            parts.append(f"{_quote(k)}:{'true' if v else 'false'}")
        else:
            return None
    return "{" + ",".join(parts) + "}"


def _check_value(name: str, value: typing.Any) -> None:
    t = type(value)
    if t is int:
        if not I64_MIN <= value <= I64_MAX:
            raise FacetsError(f"facet {name!r}: {value} is outside the signed 64-bit range")
    elif t is float:
        if not math.isfinite(value):
            raise FacetsError(f"facet {name!r}: {value} is not a finite number")
    elif isinstance(value, dict):
        v = value.get("$int64")
        if len(value) != 1 or not isinstance(v, str):
            raise FacetsError(f"facet {name!r}: an object is not a facet value (only {{\"$int64\": \"...\"}})")
    elif t not in (str, bool, type(None)) and not isinstance(value, (str, int, float)):
        raise FacetsError(f"facet {name!r}: a {t.__name__} is not a facet value (str, int, float, bool or None)")


class Facets:
    """A set of facets, built fluently: ``Facets().passenger(7).city(10)``.

    Setting a name again replaces its value; ``None`` removes it. The typed
    setters for the well-known names check their types (an id is an ``int``,
    a booking code a ``str``). The JSON text sent to the engine is computed
    once and kept until the next change.
    """

    __slots__ = ("_items", "_json")

    def __init__(self, items: typing.Optional[typing.Mapping[str, FacetValue]] = None, **named: FacetValue) -> None:
        self._items: typing.Dict[str, FacetValue] = {}
        self._json: typing.Optional[str] = None
        for source in (items or {}, named):
            for k, v in source.items():
                self.set(k, v)

    # -- generic ---------------------------------------------------------
    def set(self, name: str, value: typing.Union[FacetValue, typing.Mapping[str, str]]) -> "Facets":
        """Sets ``name`` (``None`` removes it; ``{"$int64": "..."}`` is an int); returns ``self``."""
        if type(name) is not str or not name:
            raise TurnoutTypeError(f"a facet name is a non-empty str, not {name!r}")
        if value is None:
            self._items.pop(name, None)
        else:
            if isinstance(value, typing.Mapping):
                _check_value(name, dict(value))
                value = int(value["$int64"])
            _check_value(name, value)
            self._items[name] = value
        self._json = None
        return self

    def remove(self, name: str) -> bool:
        """Removes ``name``; returns whether it was set."""
        self._json = None
        return self._items.pop(name, None) is not None

    def _int(self, name: str, value: int) -> "Facets":
        if type(value) is not int:
            raise TurnoutTypeError(f"facet {name!r} is an int id, not {type(value).__name__}")
        return self.set(name, value)

    def _str(self, name: str, value: str) -> "Facets":
        if type(value) is not str:
            raise TurnoutTypeError(f"facet {name!r} is a str, not {type(value).__name__}")
        return self.set(name, value)

    # -- the well-known facets (docs/spec.md section 2.2) ------------------
    def passenger(self, id: int) -> "Facets":
        """Sets ``pax``, the passenger id."""
        return self._int("pax", id)

    def driver(self, id: int) -> "Facets":
        """Sets ``drv``, the driver id."""
        return self._int("drv", id)

    def service(self, id: int) -> "Facets":
        """Sets ``svc``, the service (vehicle type) id."""
        return self._int("svc", id)

    def city(self, id: int) -> "Facets":
        """Sets ``city``, the city id."""
        return self._int("city", id)

    def ts(self, unix_seconds: int) -> "Facets":
        """Sets ``ts``, unix time in seconds (otherwise the client's clock is used)."""
        return self._int("ts", unix_seconds)

    def country(self, code: str) -> "Facets":
        """Sets ``country``."""
        return self._str("country", code)

    def booking(self, code: str) -> "Facets":
        """Sets ``booking``, the booking code."""
        return self._str("booking", code)

    def location(self, loc: str) -> "Facets":
        """Sets ``loc``, a geohash or coordinates."""
        return self._str("loc", loc)

    def session(self, id: str) -> "Facets":
        """Sets ``session``, the session id."""
        return self._str("session", id)

    def request(self, id: str) -> "Facets":
        """Sets ``req``, the request id."""
        return self._str("req", id)

    def device(self, id: str) -> "Facets":
        """Sets ``device``, the device id."""
        return self._str("device", id)

    def tag(self, tag: str) -> "Facets":
        """Sets ``tag``, a user-defined tag."""
        return self._str("tag", tag)

    # -- reading ---------------------------------------------------------
    def get(self, name: str) -> FacetValue:
        """The value of ``name``, or ``None``."""
        return self._items.get(name)

    def to_dict(self) -> typing.Dict[str, FacetValue]:
        """A copy as a plain dict."""
        return dict(self._items)

    def json(self) -> str:
        """The facets as compact JSON text (what the engine receives)."""
        j = self._json
        if j is None:
            j = self._json = _dumps(self._items)
        return j

    def copy(self) -> "Facets":
        """An independent copy."""
        f = Facets()
        f._items = dict(self._items)
        f._json = self._json
        return f

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> typing.Iterator[str]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Facets):
            other = other._items
        if not isinstance(other, dict):
            return NotImplemented
        return self._items.keys() == other.keys() and all(
            type(v) is type(other[k]) and v == other[k] for k, v in self._items.items()
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Facets({self._items!r})"


def facets_json(facets: FacetsLike) -> bytes:
    """The UTF-8 JSON text of any accepted facets form, checked: names are
    non-empty strings, integers fit 64 bits, floats are finite. Other value
    types reach the engine, which rejects them with their name."""
    if facets is None:
        return b"{}"
    if isinstance(facets, Facets):
        return facets.json().encode()
    if not isinstance(facets, typing.Mapping):
        raise FacetsError(f"facets are a Facets or a mapping of name -> value, not {type(facets).__name__}")
    plain = _plain_json(facets)
    if plain is not None:
        return plain.encode()
    for k, v in facets.items():
        if type(k) is not str or not k:
            raise FacetsError(f"a facet name is a non-empty str, not {k!r}")
        _check_value(k, v)
    try:
        return _dumps(dict(facets)).encode()
    except (TypeError, ValueError) as e:  # pragma: no cover - _check_value catches these first
        raise FacetsError(str(e)) from None


def native_map(facets: FacetsLike) -> typing.Dict[str, typing.Any]:
    """Facets as the generated bindings' ``dict[str, FacetValue]`` (the cold
    calls that take a map: ``explain``, ``get_variables``)."""
    from ._native import ffi

    items = json.loads(facets_json(facets))
    out: typing.Dict[str, typing.Any] = {}
    for k, v in items.items():
        t = type(v)
        if v is None:
            continue
        if t is bool:
            out[k] = ffi.FacetValue.BOOL(v)
        elif t is int:
            out[k] = ffi.FacetValue.INT(v)
        elif t is float:
            out[k] = ffi.FacetValue.FLOAT(v)
        elif t is str:
            out[k] = ffi.FacetValue.STR(v)
        elif t is dict and isinstance(v.get("$int64"), str):
            try:
                n = int(v["$int64"])
            except ValueError:
                raise FacetsError(f"facet {k!r}: {v['$int64']!r} is not an integer") from None
            _check_value(k, n)
            out[k] = ffi.FacetValue.INT(n)
        else:
            raise FacetsError(f"facet {k!r}: a {t.__name__} is not a facet value")
    return out
