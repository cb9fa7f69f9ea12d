#!/usr/bin/env python3
"""Clean-room Python reference of the turnout evaluation contract (spec version 1).

Written from docs/spec.md (evaluation, config loading, isolation) and
docs/wire-format.md (event batches) only, without reading the engine's source,
so that the conformance vectors in tests/conformance/ are anchored to the
written contract and not merely to the Rust code that generated them.

Run as a script, it discovers every vector file through
tests/conformance/index.json and checks it:

- `kind: "decisions"`: loads `config` with per-document isolation (spec 13),
  pins the clock at the file's / case's `nowMs`, evaluates every case and
  compares the full decision `{value, source, experiment, rule, choice, reason,
  errorCode}` (JSON numbers by value). The file is also validated against
  tests/conformance/schema.json when the `jsonschema` package is importable.
- `kind: "batches"`: decodes each case's hex and compares header + events,
  encodes header + events (decision values from `valueText`) and compares the
  bytes, and checks that every `invalid` case is rejected with its error kind.
- `kind: "sync"`: runs each script of the host protocol (docs/sync.md section
  10) against the clean-room state machine of tests/anchors/sync_reference.py
  (one case per script; actions, notices and state compared as the section
  says). The `message` of an error notice whose text the docs do not give
  (an HTTP status, a body rejected again, an expired request, the engine's
  JSON / problem texts) is not compared; every such message is listed.

It prints `<file>: N passed, M failed` per file, then `N passed, M failed`
for the totals, and exits 1 on any failure (schema violations and a case
count that differs from index.json count as failures too).

Usage:
    python3 tests/anchors/reference.py                  # the vectors of tests/conformance
    python3 tests/anchors/reference.py --vectors DIR    # another copy of the vectors
    python3 tests/anchors/reference.py --self-test      # values stated in the spec's text

Imported as a module, it is the engine of tests/anchors/spec_examples.py
(`load_config`, `Env`, `evaluate` with an optional trace of every
intermediate value) and of tests/anchors/sync_reference.py (`load_config`,
whose compiled documents carry a `fingerprint` for `UpdateReport.changed`,
`SplitMix64`, `xxh3`, `encode_batch`).

Dependencies: the standard library and PyPI `xxhash` (xxh3_64 only).
CRC-32C, LEB128/zigzag varints, splitmix64, canonical float text, lenient
semver and the constraint ops are implemented here.

Known places where Python cannot mirror the Rust engine exactly (none of them
is exercised by the vectors; see also `translate_regex`):

- `regex` uses Python `re`, after a small translation of Rust syntax (`$`
  outside `(?m)` and `\\z` -> `\\Z`, `(?<name>` -> `(?P<name>`); look-around,
  backreferences, atomic groups, conditionals and comments, which Rust's
  `regex` does not have, are rejected. Not reproduced: Rust's nested and
  set-operation classes (`[a-z&&[^x]]`), `[[:alpha:]]`, the flags `U` and `R`,
  its Unicode tables for `\\w` / `\\d` / `\\s` / `\\b`, its errors on a
  stray `{` or a nested repetition (`a**`; Python reads `a*+` as possessive),
  and Python-only escapes such as `\\Z`. The limit on patterns is not a
  compiled size (Python's would differ) but the `regex_weight` of spec 17.1,
  read from the pattern's text alone: `regex_weight` here, checked per
  pattern (at most 64) and per document (at most 64 for all its `regex`
  constraints, each segment reference counted) before anything is compiled.
- A float `ts` facet at or above 2^63 is floored with Python's unbounded
  integers (the engine works in i64).
- Text in configs / facets must be valid UTF-8 for the engine; Python's JSON
  reader also accepts lone surrogates, which this reference does not reject.

Readings of the spec where it is silent (also not exercised by the vectors):
`null` for an optional member (`salt`, `enabled`, `schema`, `version`,
`domain`, `slotting`, `weight`, `strategy`, `offset`, `facet`, `segments`) is
treated as absent; `schema` / `schemaVersion` must be the integer 1 (`1.0` is
rejected, unlike `version`); a segment object without `constraints` is an
empty segment; duplicate rollout variables / experiment names are checked over
every document whose key is readable, rejected or not; the slot checks of
8.3 compare slot salts, so an experiment without a domain named `d` and one
of domain `d` must also agree.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from pathlib import Path

try:
    import xxhash
except ImportError:  # pragma: no cover
    sys.stderr.write("the turnout Python reference needs the PyPI package `xxhash` (pip install xxhash)\n")
    sys.exit(2)

HERE = Path(__file__).resolve().parent
CONFORMANCE = HERE.parent / "conformance"

MASK64 = (1 << 64) - 1
U64_MAX = MASK64
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U32_MAX = (1 << 32) - 1
TWO_63 = float(1 << 63)
SALT_SEP = b"\x00"
UNIT_SEP = b"\x1f"


# ===========================================================================
# Spec 2 and 3: facet values, canonical strings, numbers.
#
# A facet value (and a scalar constraint operand) is a pair (kind, value) with
# kind one of "str", "bool", "int" (an i64), "float" (an f64).

RUST_I64 = re.compile(r"[+-]?[0-9]+")
# Rust's f64::from_str: decimal with optional fraction and exponent, or
# inf / infinity / nan (case-insensitive); no whitespace, no `_`, no hex.
RUST_F64 = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)


class FacetError(ValueError):
    pass


def json_scalar(v):
    """Spec 2.2: a JSON scalar as a facet value; None for null/array/object."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        if I64_MIN <= v <= I64_MAX:
            return ("int", v)
        if 0 <= v <= U64_MAX:
            return ("str", str(v))  # (i64::MAX, u64::MAX]: a string with the same digits
        try:
            return ("float", float(v))  # beyond u64 / below i64: read as f64 (loses digits)
        except OverflowError:
            return ("float", math.copysign(math.inf, v))
    if isinstance(v, float):
        return ("float", v)
    if isinstance(v, str):
        return ("str", v)
    return None


def facet_from_json(name, v):
    """Spec 2.2 (`Facets::from_json`): a JSON member as a facet value, None when absent."""
    if v is None:
        return None
    if isinstance(v, dict) and list(v) == ["$int64"]:
        s = v["$int64"]
        if isinstance(s, str) and RUST_I64.fullmatch(s):
            i = int(s)
            if I64_MIN <= i <= I64_MAX:
                return ("int", i)
        raise FacetError(f"facet `{name}`: $int64 needs an i64 decimal string, got {s!r}")
    fv = json_scalar(v)
    if fv is None:
        raise FacetError(f"facet `{name}`: arrays and objects are not facet values")
    return fv


def float_text(x: float) -> str:
    """Spec 2.1: Rust's `Display` for f64, i.e. the shortest round-trip digits
    written positionally (never with an exponent); integral |x| < 2^63 as an integer."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < TWO_63:
        return str(int(x))  # also -0.0 -> "0"
    r = repr(x)  # shortest round-trip digits, maybe with an exponent: '1e-07', '1e+21'
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mant, _, exp = r.partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # decimal point position within `digits`
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    if point <= 0:
        text = "0." + "0" * (-point) + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return sign + text


def canonical(fv) -> str:
    kind, v = fv
    if kind == "str":
        return v
    if kind == "bool":
        return "true" if v else "false"
    if kind == "int":
        return str(v)
    return float_text(v)


def num_from_float(x: float):
    """Spec 3.3: finite floats that are integral with |x| < 2^63 become Int."""
    if not math.isfinite(x):
        return None
    if x.is_integer() and abs(x) < TWO_63:
        return ("int", int(x))
    return ("float", x)


def parse_num(s: str):
    """Spec 3.2: i64::from_str first, then f64::from_str; non-finite is not a number."""
    if RUST_I64.fullmatch(s):
        i = int(s)
        if I64_MIN <= i <= I64_MAX:
            return ("int", i)
    if RUST_F64.fullmatch(s):
        return num_from_float(float(s))
    return None


def num_of(fv):
    kind, v = fv
    if kind == "str":
        return parse_num(v)
    if kind == "int":
        return ("int", v)
    if kind == "float":
        return num_from_float(v)
    return None  # booleans are never numeric


def as_f64(n) -> float:
    return float(n[1])  # Python's int -> float rounds to nearest, ties to even, like `as f64`


def num_cmp(a, b):
    """Spec 3.4: -1/0/1; exact for two Ints, else as f64. None when unordered (never for finite)."""
    if a[0] == "int" and b[0] == "int":
        x, y = a[1], b[1]
    else:
        x, y = as_f64(a), as_f64(b)
    return (x > y) - (x < y)


def num_eq(a, b) -> bool:
    return num_cmp(a, b) == 0


def num_json(n):
    return None if n is None else {"kind": n[0], "value": n[1]}


class Facet:
    """A present facet: its canonical string and its number (or None)."""

    __slots__ = ("canon", "num")

    def __init__(self, fv):
        self.canon = canonical(fv)
        self.num = num_of(fv)


class Env:
    """The facets of one call plus the pinned clock (spec 12)."""

    def __init__(self, facets: dict, now_ms=None):
        self.facets = {}
        for name, v in facets.items():
            fv = facet_from_json(name, v)
            if fv is not None:  # null = absent
                self.facets[name] = Facet(fv)
        self.now_ms = now_ms

    def get(self, name):
        f = self.facets.get(name)
        if f is not None:
            return f
        if name == "ts" and self.now_ms is not None:
            secs = self.now_ms // 1000  # floor, also before 1970
            return Facet(("int", secs))
        return None

    def ts_secs(self):
        """Spec 8.5: ts floored to whole seconds; None when absent or not numeric."""
        f = self.get("ts")
        if f is None or f.num is None:
            return None
        kind, v = f.num
        return v if kind == "int" else math.floor(v)


# ===========================================================================
# Spec 4: hashing.


def xxh3(data: bytes) -> int:
    return xxhash.xxh3_64_intdigest(data, seed=0)


def hash_record(salt: str, unit_parts):
    """bucket(salt, unit) with every intermediate value (unit = parts joined by 0x1F)."""
    data = salt.encode("utf-8") + SALT_SEP + UNIT_SEP.join(p.encode("utf-8") for p in unit_parts)
    h = xxh3(data)
    top53 = h >> 11
    return {
        "salt": salt,
        "unit": "\x1f".join(unit_parts),
        "bytes_hex": data.hex(),
        "xxh3_64": f"0x{h:016x}",
        "top53": top53,
        "bucket": top53 * 2.0**-53,  # exact: top53 < 2^53
    }


def bucket(salt: str, unit: str) -> float:
    h = xxh3(salt.encode("utf-8") + SALT_SEP + unit.encode("utf-8"))
    return (h >> 11) * 2.0**-53


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


# ===========================================================================
# Spec 5.3: versions.

# Rust's char::is_whitespace (Unicode White_Space); Python's str.strip() would
# also strip U+001C..U+001F, which Rust does not.
RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?"
)


def semver_strict(s: str):
    """SemVer 2.0.0 as the `semver` crate parses it: (major, minor, patch, pre) or None.
    Build metadata is validated and dropped (it never affects precedence)."""
    m = SEMVER.fullmatch(s)
    if not m:
        return None
    core = [int(m.group(i)) for i in (1, 2, 3)]
    if any(x > U64_MAX for x in core):
        return None
    pre = []
    if m.group(4) is not None:
        for ident in m.group(4).split("."):
            if ident == "":
                return None
            if ident.isdigit():  # ASCII-only here (the regex admits nothing else)
                if len(ident) > 1 and ident[0] == "0":
                    return None  # numeric pre-release identifiers have no leading zeros
                if int(ident) > U64_MAX:
                    return None
                pre.append((0, int(ident), ""))
            else:
                pre.append((1, 0, ident))
    if m.group(5) is not None and "" in m.group(5).split("."):
        return None  # empty build identifier (leading zeros are allowed in build metadata)
    return (core[0], core[1], core[2], tuple(pre))


def parse_version(text: str):
    """Spec 5.3: trim, drop one leading v/V, SemVer 2.0; else pad a 1- or 2-part core with .0."""
    s = text.strip(RUST_WHITESPACE)
    if s[:1] in ("v", "V"):
        s = s[1:]
    v = semver_strict(s)
    if v is not None:
        return v
    cut = min([i for i in (s.find("-"), s.find("+")) if i >= 0], default=len(s))
    core, rest = s[:cut], s[cut:]
    parts = core.split(".")
    if len(parts) in (1, 2):
        return semver_strict(core + ".0" * (3 - len(parts)) + rest)
    return None


def version_cmp(a, b) -> int:
    """SemVer 2.0.0 precedence (sections 10-11); build metadata already dropped."""
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pa, pb = a[3], b[3]
    if not pa or not pb:
        if pa == pb:
            return 0
        return 1 if not pa else -1  # a release sorts after its pre-releases
    for x, y in zip(pa, pb):
        if x != y:
            # (0, n, "") numeric < (1, 0, text) alphanumeric; numerics by value, text by ASCII
            return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


# ===========================================================================
# Spec 5.1 `regex`: Rust regex syntax on Python `re`.


class PatternError(ValueError):
    pass


def translate_regex(pattern: str) -> str:
    """Rewrites the parts of Rust `regex` syntax whose meaning differs in Python `re`.

    - `$` (outside a class, without the multi-line flag) is end of text in Rust,
      but also matches before a final newline in Python: written `\\Z`.
    - `\\z` (Rust: end of text) does not exist in Python 3.11: written `\\Z`.
    - `(?<name>...)` (Rust >= 1.9) is `(?P<name>...)` in Python 3.11.
    - look-around, backreferences, atomic groups and conditionals are not Rust
      syntax: rejected (the engine reports an invalid pattern).
    """
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    out, i, in_class = [], 0, False
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1: i + 2]
            if not in_class and nxt.isdigit() and nxt != "0":
                raise PatternError("backreferences are not supported")
            if nxt == "z" and not in_class:
                out.append("\\Z")
            else:
                out.append(pattern[i: i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # a leading `]` (or `^]`) is a literal member of the class
            if pattern[i: i + 1] == "^":
                out.append("^")
                i += 1
            if pattern[i: i + 1] == "]":
                out.append("]")
                i += 1
            continue
        if ch == "(" and pattern[i + 1: i + 2] == "?":
            rest = pattern[i + 2:]
            for bad in ("=", "!", "<=", "<!", ">", "P=", "(", "#"):
                if rest.startswith(bad):
                    raise PatternError(f"unsupported group syntax `(?{bad}`")
            if rest.startswith("<"):
                out.append("(?P<")
                i += 3
                continue
        if ch == "$" and not multiline:
            out.append("\\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_regex(pattern: str):
    try:
        return re.compile(translate_regex(pattern))
    except re.error as e:
        raise PatternError(str(e)) from None


# ---------------------------------------------------------------------------
# Spec 17 / 17.1: the `regex_weight` limit, read from the pattern's text alone.

REGEX_WEIGHT_MAX = 64
# Unicode White_Space (PropList.txt), for verbose mode (17.1 rule 5) and the
# spaces allowed around the numbers of a counted repetition (rule 4).
WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
                        + "\u2028\u2029\u202f\u205f\u3000")
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
FLAG_CHARS = frozenset("imsRUx-")  # spec 17.1 rule 3


def _sat(n: int) -> int:
    """17.1 rule 6: sums and products saturate at 2^64 - 1."""
    return n if n < U64_MAX else U64_MAX


def _regex_escape_end(p: str, i: int) -> int:
    """The index just after the escape starting at p[i] == '\\\\' (one atom, 17.1 rule 1).

    `\\x` takes two hex digits, `\\u` four, `\\U` eight, or any of them a braced
    `{...}`; `\\p` / `\\P` one letter or a braced name; `\\b{start}`-style
    boundaries their braced name; anything else one character. (The spec lists
    `\\d \\. \\x41 \\x{1F600} \\u{...} \\p{...}`; the other extents are readings.)"""
    n = len(p)
    if i + 1 >= n:
        return n  # a trailing backslash (invalid syntax anyway)
    c, j = p[i + 1], i + 2
    if c in "xuU":
        if j < n and p[j] == "{":
            close = p.find("}", j)
            return n if close < 0 else close + 1
        k, most = j, {"x": 2, "u": 4, "U": 8}[c]
        while k < n and k - j < most and p[k] in HEX_DIGITS:
            k += 1
        return k
    if c in "pP":
        if j < n and p[j] == "{":
            close = p.find("}", j)
            return n if close < 0 else close + 1
        return min(j + 1, n)
    if c == "b" and j < n and p[j] == "{":
        k = j + 1
        while k < n and (p[k].isascii() and (p[k].isalpha() or p[k] == "-")):
            k += 1
        if k > j + 1 and k < n and p[k] == "}":
            return k + 1  # \b{start}, \b{end}, \b{start-half}, \b{end-half}
    return j


def _regex_class_end(p: str, i: int):
    """17.1 rule 2 from p[i] == '[': (index just after the closing `]`, characters
    between the outer brackets). Unclosed, the class runs to the end of the pattern."""
    n, k, depth = len(p), i, 0
    while k < n:
        c = p[k]
        if c == "[":  # the outer `[`, or a nested one opening an inner class
            depth += 1
            k += 1
            if k < n and p[k] == "^":
                k += 1
            if k < n and p[k] == "]":  # `]` right after `[` or `[^`: a literal
                k += 1
        elif c == "\\":
            k = _regex_escape_end(p, k)  # skipped whole
        elif c == "]":
            depth -= 1
            if depth == 0:
                return k + 1, k - (i + 1)
            k += 1
        else:
            k += 1
    return n, n - (i + 1)


def _regex_number(p: str, k: int):
    """ASCII decimal digits at p[k]: (value saturated at 2^64 - 1, index after), or None."""
    j = k
    while j < len(p) and "0" <= p[j] <= "9":
        j += 1
    if j == k:
        return None
    digits = p[k:j].lstrip("0") or "0"
    return (U64_MAX if len(digits) > 20 else _sat(int(digits))), j


def _regex_counted(p: str, i: int):
    """17.1 rule 4 from p[i] == '{': (copies, index after `}`) for `{n}`, `{n,m}`,
    `{n,}` (whitespace allowed around the numbers), or None when it is not such a form."""
    n = len(p)

    def space(k):
        while k < n and p[k] in WHITE_SPACE:
            k += 1
        return k

    got = _regex_number(p, space(i + 1))
    if got is None:
        return None
    lo, k = got
    k = space(k)
    if k < n and p[k] == "}":
        copies = lo
    elif k < n and p[k] == ",":
        k = space(k + 1)
        got = _regex_number(p, k)
        if got is None:
            copies = _sat(lo + 1)  # {n,}
        else:
            hi, k = got
            k = space(k)
            copies = max(lo, hi)  # {n,m}
        if not (k < n and p[k] == "}"):
            return None
    else:
        return None
    return max(copies, 1), k + 1


def _regex_flags_x(flags: str, verbose: bool) -> bool:
    """The verbose mode after a flag list such as `ix`, `-x`, `i-x` (the last `x` wins)."""
    on = True
    for f in flags:
        if f == "-":
            on = False
        elif f == "x":
            verbose = on
    return verbose


class _WeightFrame:
    """A group being read (or the whole pattern): sum of finished branches and
    `|`, the current branch without its last atom, the last atom (None: no atom
    yet), and whether verbose mode is on in it."""
    __slots__ = ("done", "branch", "last", "verbose")

    def __init__(self, verbose):
        self.done, self.branch, self.last, self.verbose = 0, 0, None, verbose

    def atom(self, w):
        if self.last is not None:
            self.branch = _sat(self.branch + self.last)
        self.last = w

    def total(self):
        """Sum of the branches, plus 1 per `|`, plus 1 (rule 3)."""
        return _sat(self.done + self.branch + (self.last or 0) + 1)


def regex_weight(pattern: str) -> int:
    """The weight of a `regex` pattern, exactly as spec 17.1 reads it (left to right).

    Invalid syntax is not an error here: the weight is checked first, and a
    pattern within the limit is then compiled (where syntax errors are reported).
    Readings where 17.1 is silent (all of them are invalid patterns in Rust
    `regex` syntax, so they only decide which problem is reported): a quantifier
    with no atom before it (at the start, after `(`, `|` or a flag group)
    repeats an empty atom of weight 0; a `)` with no open group is a literal; a
    group or class left open at the end closes there; `(?` not followed by
    flags and `)` / `:` or by a `P<name>` / `<name>` opens a group whose body
    starts right after `(?`; classes are read by rule 2 alone, also in verbose
    mode (their whitespace and `#` count as characters)."""
    p, n, i = pattern, len(pattern), 0
    stack = [_WeightFrame(False)]
    while i < n:
        f, c = stack[-1], p[i]
        if f.verbose and c in WHITE_SPACE:  # rule 5: weightless, not an atom
            i += 1
        elif f.verbose and c == "#":
            nl = p.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif c == "\\":
            i = _regex_escape_end(p, i)
            f.atom(1)
        elif c == "[":
            i, chars = _regex_class_end(p, i)
            f.atom(1 + chars // 16)
        elif c == "(":
            if p.startswith("(?", i):
                k = i + 2
                while k < n and p[k] in FLAG_CHARS:
                    k += 1
                flags = p[i + 2:k]
                if k < n and p[k] == ")":  # a flag group (?flags): weighs nothing
                    f.verbose = _regex_flags_x(flags, f.verbose)
                    f.atom(0)
                    f.last = None
                    i = k + 1
                    continue
                if k < n and p[k] == ":":  # (?:...), (?flags:...)
                    stack.append(_WeightFrame(_regex_flags_x(flags, f.verbose)))
                    i = k + 1
                    continue
                if p.startswith("P<", i + 2) or (p.startswith("<", i + 2) and p[i + 3: i + 4] not in ("=", "!")):
                    close = p.find(">", i + 2)  # (?P<name>...), (?<name>...)
                    stack.append(_WeightFrame(f.verbose))
                    i = n if close < 0 else close + 1
                    continue
                stack.append(_WeightFrame(f.verbose))  # not Rust syntax (look-around, ...)
                i += 2
                continue
            stack.append(_WeightFrame(f.verbose))
            i += 1
        elif c == ")":
            i += 1
            if len(stack) == 1:
                f.atom(1)  # no group to close: read as a literal
            else:
                stack.pop()
                stack[-1].atom(f.total())
        elif c == "|":
            f.done = _sat(f.done + f.branch + (f.last or 0) + 1)
            f.branch, f.last = 0, None
            i += 1
        elif c in "*+?":
            f.last = _sat((f.last or 0) + 1)
            i += 1
        elif c == "{" and (rep := _regex_counted(p, i)) is not None:
            copies, i = rep
            f.last = _sat((f.last or 0) * copies)
        else:  # a literal character (a `{` that starts no counted form included), `.`, `^`, `$`
            f.atom(1)
            i += 1
    while len(stack) > 1:  # groups left open
        w = stack.pop().total()
        stack[-1].atom(w)
    return stack[0].total()


def targeting_regex_weight(obj, segments) -> int:
    """Spec 17.1: the weight of the `regex` constraints of one rule or experiment,
    its own plus those of every segment reference (a segment referenced twice
    counts twice). `segments` maps names to raw constraint lists (None: invalid)."""
    total = 0
    refs = obj.get("segments")
    for name in refs if isinstance(refs, list) else []:
        if isinstance(name, str) and segments.get(name) is not None:
            total = _sat(total + constraints_regex_weight(segments[name]))
    return _sat(total + constraints_regex_weight(obj.get("constraints")))


def constraints_regex_weight(lst) -> int:
    total = 0
    for c in lst if isinstance(lst, list) else []:
        if isinstance(c, dict) and c.get("op") == "regex" and isinstance(c.get("value"), str):
            w = regex_weight(c["value"])
            if w <= REGEX_WEIGHT_MAX:  # a heavier pattern is its own problem (spec 17.1)
                total = _sat(total + w)
    return total


# ===========================================================================
# Spec 5 and 6: constraints and segments (compiled at load time).

OPS = {
    "=": "=", "==": "=", "!=": "!=",
    "in": "in", "nin": "nin", "!in": "nin",
    ">": ">", ">=": ">=", "<": "<", "<=": "<=",
    "/": "/",
    "semver=": "semver=", "semver==": "semver=", "semver!=": "semver!=",
    "semver>": "semver>", "semver>=": "semver>=", "semver<": "semver<", "semver<=": "semver<=",
    "prefix": "prefix", "suffix": "suffix", "contains": "contains",
    "regex": "regex",
}
ORDER_OPS = {">", ">=", "<", "<="}


class Problems:
    """Collects every problem (spec 13.2) and warning (spec 13.4) of one load."""

    def __init__(self):
        self.items = []  # (document label, path, reason)
        self.warnings = []

    def add(self, doc, path, reason):
        self.items.append((doc, path, reason))

    def warn(self, doc, path, reason):
        self.warnings.append(f"{doc}: {path}: {reason}")


class Operand:
    __slots__ = ("canon", "num")

    def __init__(self, fv):
        self.canon = canonical(fv)
        self.num = num_of(fv)


class Constraint:
    __slots__ = ("target", "op", "kind", "raw", "salt", "operand", "items", "number", "p", "version", "regex")

    def describe(self):
        raw = self.raw if isinstance(self.raw, str) else json.dumps(self.raw)
        return f"{self.target} {self.op} {raw}"


def _strict_json(text):
    def no_constant(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=no_constant)


def compile_constraint(c, path, default_salt, doc, probs: Problems):
    """One constraint object; None (with problems recorded) when invalid."""
    if not isinstance(c, dict):
        probs.add(doc, path, "a constraint must be an object")
        return None
    ok = True
    target, op_text = c.get("target"), c.get("op")
    if not isinstance(target, str):
        probs.add(doc, f"{path}.target", "`target` must be a string (a facet name)")
        ok = False
    if not isinstance(op_text, str) or op_text not in OPS:
        probs.add(doc, f"{path}.op", f"unknown op {op_text!r} (known: {', '.join(OPS)})")
        return None
    if c.get("value") is None:
        probs.add(doc, f"{path}.value", f"`{op_text}` needs a non-null `value`")
        return None
    salt = c.get("salt")
    if salt is not None and not isinstance(salt, str):
        probs.add(doc, f"{path}.salt", "`salt` must be a string")
        ok = False
    out = Constraint()
    out.target, out.op, out.kind, out.raw = target, op_text, OPS[op_text], c["value"]
    out.salt = salt if salt is not None else default_salt
    out.operand = out.items = out.number = out.p = out.version = out.regex = None
    kind, value, vpath = out.kind, c["value"], f"{path}.value"

    if kind in ("=", "!=", "prefix", "suffix", "contains"):
        fv = json_scalar(value)
        if fv is None:
            probs.add(doc, vpath, f"`{op_text}` needs a scalar value, not an array or object")
            return None
        out.operand = Operand(fv)
    elif kind in ("in", "nin"):
        arr = value
        if isinstance(value, str):
            try:
                arr = _strict_json(value)
            except ValueError:
                arr = None
        if not isinstance(arr, list):
            probs.add(doc, vpath, f"`{op_text}` needs an array (or a string holding a JSON array)")
            return None
        items = []
        for i, e in enumerate(arr):
            fv = json_scalar(e)
            if fv is None:
                probs.add(doc, f"{vpath}[{i}]", "array elements must be strings, numbers or booleans")
                ok = False
            else:
                items.append(Operand(fv))
        out.items = items
    elif kind in ORDER_OPS:
        # Any non-null operand loads; a non-numeric one makes the constraint always false.
        fv = json_scalar(value)
        out.number = num_of(fv) if fv is not None else None
        if out.number is None:
            probs.warn(doc, vpath, f"`{op_text}` against the non-numeric value {json.dumps(value)} is always false")
    elif kind == "/":
        fv = json_scalar(value)
        n = num_of(fv) if fv is not None else None
        if n is None or not (0.0 <= as_f64(n) <= 1.0):
            probs.add(doc, vpath, "`/` needs a fraction in [0, 1] (a number or a numeric string)")
            return None
        out.p = as_f64(n)
    elif kind.startswith("semver"):
        v = parse_version(value) if isinstance(value, str) else None
        if v is None:
            probs.add(doc, vpath, f"`{op_text}` needs a string holding a version")
            return None
        out.version = v
    elif kind == "regex":
        if not isinstance(value, str):
            probs.add(doc, vpath, "`regex` needs a string pattern")
            return None
        w = regex_weight(value)
        if w > REGEX_WEIGHT_MAX:  # spec 17.1: checked first; only a pattern within the weight is compiled
            probs.add(doc, vpath, f"limit `regex_weight` exceeded: found {w}, the maximum is {REGEX_WEIGHT_MAX}")
            return None
        try:
            out.regex = compile_regex(value)
        except PatternError as e:
            probs.add(doc, vpath, f"invalid pattern: {e}")
            return None
    return out if ok else None


def compile_constraint_list(lst, path, default_salt, doc, probs):
    if lst is None:
        return []
    if not isinstance(lst, list):
        probs.add(doc, path, "must be an array of constraints")
        return None
    out, ok = [], True
    for i, c in enumerate(lst):
        cc = compile_constraint(c, f"{path}[{i}]", default_salt, doc, probs)
        if cc is None:
            ok = False
        else:
            out.append(cc)
    return out if ok else None


def segment_constraints(seg):
    """A segment is {"constraints": [...]} or a bare array (spec 6)."""
    if isinstance(seg, list):
        return seg
    if isinstance(seg, dict):
        return seg.get("constraints")
    return False  # neither: invalid


def compile_targeting(obj, path, default_salt, doc, segments, probs):
    """Segments (inline, in the listed order) then the object's own constraints.
    `segments` maps every segment name to its raw constraint list, or None when invalid."""
    out, ok = [], True
    refs = obj.get("segments")
    if refs is not None:
        if not isinstance(refs, list):
            probs.add(doc, f"{path}segments", "must be an array of segment names")
            ok = False
            refs = []
        for i, name in enumerate(refs):
            where = f"{path}segments[{i}]"
            if not isinstance(name, str):
                probs.add(doc, where, "a segment reference must be a string")
                ok = False
            elif name not in segments:
                probs.add(doc, where, f"unknown segment `{name}`")
                ok = False
            elif segments[name] is None:
                probs.add(doc, where, f"segment `{name}` is invalid")
                ok = False
            else:
                # A `/` without its own salt takes the referencing document's salt.
                cs = compile_constraint_list(segments[name], where, default_salt, doc, Problems())
                out += cs
    own = compile_constraint_list(obj.get("constraints"), f"{path}constraints", default_salt, doc, probs)
    if own is None:
        return None
    return out + own if ok else None


# ===========================================================================
# Spec 7 and 8: documents.


class Rollout:
    def __init__(self, variable, rules, has_default, default, enabled):
        self.variable = variable
        self.rules = rules  # [(value, label, [Constraint])]
        self.has_default = has_default
        self.default = default
        self.enabled = enabled


class Variable:
    def __init__(self, name, salt, facets, strategy, values, weights, spans):
        self.name, self.salt, self.facets, self.strategy = name, salt, facets, strategy
        self.values, self.weights, self.spans = values, weights, spans
        self.period = sum(spans) if strategy == "timeSliceShuffle" else None


class Slot:
    def __init__(self, lo, hi, unit, salt):
        self.lo, self.hi = lo, hi
        self.unit = unit  # ("facet", name) or ("window", period)
        self.salt = salt


class Experiment:
    def __init__(self, name, state, domain, constraints, slot, variables):
        self.name, self.state, self.domain = name, state, domain
        self.constraints, self.slot, self.variables = constraints, slot, variables


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integral(v):
    """An integer, or an integral float (for `version`)."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v) and v.is_integer())


def round_half_away(y: float) -> float:
    """Rust's f64::round."""
    a = abs(y)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1
    return math.copysign(float(r), y)


def round12(x: float) -> float:
    """Spec 8.3 (Refinement): slot boundaries rounded to 12 decimal places."""
    return round_half_away(x * 1e12) / 1e12


def check_document_regex_weight(weight, doc, probs):
    """Spec 17.1: the `regex` constraints of one document (every rule, each segment
    reference counted) weigh at most 64 together; more is a problem of the document."""
    if weight > REGEX_WEIGHT_MAX:
        probs.add(doc, "", f"limit `regex_weight` exceeded: the `regex` constraints of the document weigh "
                           f"{weight} together (each segment reference counted), the maximum is {REGEX_WEIGHT_MAX}")


def compile_rollout(d, doc, segments, probs):
    n0 = len(probs.items)
    variable = d.get("variable")
    if not isinstance(variable, str) or variable == "":
        probs.add(doc, "variable", "`variable` must be a non-empty string")
    if d.get("schema") is not None and not (type(d["schema"]) is int and d["schema"] == 1):
        probs.add(doc, "schema", f"unsupported schema {json.dumps(d['schema'])} (spec version 1)")
    if d.get("version") is not None and not _integral(d["version"]):
        probs.add(doc, "version", "`version` must be an integer")
    enabled = d.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        probs.add(doc, "enabled", "`enabled` must be a boolean")
    salt = variable if isinstance(variable, str) else ""
    rules, weight = [], 0
    raw_rules = d.get("rollouts")
    if raw_rules is not None and not isinstance(raw_rules, list):
        probs.add(doc, "rollouts", "must be an array of rules")
        raw_rules = []
    for i, r in enumerate(raw_rules or []):
        path = f"rollouts[{i}]"
        if not isinstance(r, dict):
            probs.add(doc, path, "a rule must be an object")
            continue
        if r.get("value") is None:
            probs.add(doc, f"{path}.value", "a rule needs a non-null `value`")
        if r.get("string") is not None and not isinstance(r["string"], str):
            probs.add(doc, f"{path}.string", "`string` must be a string")
        cs = compile_targeting(r, f"{path}.", salt, doc, segments, probs)
        rules.append((r.get("value"), r.get("string"), cs))
        weight = _sat(weight + targeting_regex_weight(r, segments))
    check_document_regex_weight(weight, doc, probs)
    if len(probs.items) > n0:
        return None
    return Rollout(variable, rules, d.get("default") is not None, d.get("default"), enabled is not False)


def compile_experiment(e, doc, segments, probs):
    n0 = len(probs.items)
    name = e.get("name")
    if not isinstance(name, str) or name == "":
        probs.add(doc, "name", "`name` must be a non-empty string")
        name = ""
    state = e.get("state")
    if not isinstance(state, str) or state == "":
        probs.add(doc, "state", "`state` must be a non-empty string")
    if e.get("schemaVersion") is not None and not (type(e["schemaVersion"]) is int and e["schemaVersion"] == 1):
        probs.add(doc, "schemaVersion", f"unsupported schemaVersion {json.dumps(e['schemaVersion'])}")
    domain = e.get("domain")
    if domain is not None and (not isinstance(domain, str) or domain == ""):
        probs.add(doc, "domain", "`domain` must be a non-empty string")
        domain = None
    variables = []
    raw_vars = e.get("variables")
    if not isinstance(raw_vars, list) or not raw_vars:
        probs.add(doc, "variables", "`variables` must be a non-empty array")
        raw_vars = []
    seen = set()
    for i, v in enumerate(raw_vars):
        var = compile_variable(v, f"variables[{i}]", name, doc, probs, seen)
        if var is not None:
            variables.append(var)
    constraints = compile_targeting(e, "", name, doc, segments, probs)
    check_document_regex_weight(targeting_regex_weight(e, segments), doc, probs)
    slot = None
    s = e.get("slotting")
    if s is not None:
        # (the slot unit derives from the first variable: only when every variable compiled)
        slot = compile_slot(s, name, domain, variables if len(variables) == len(raw_vars) else None, doc, probs)
    if len(probs.items) > n0:
        return None
    return Experiment(name, state, domain, constraints, slot, variables)


def compile_variable(v, path, exp_name, doc, probs, seen):
    n0 = len(probs.items)
    if not isinstance(v, dict):
        probs.add(doc, path, "a variable must be an object")
        return None
    name = v.get("name")
    if not isinstance(name, str) or name == "":
        probs.add(doc, f"{path}.name", "`name` must be a non-empty string")
    elif name in seen:
        probs.add(doc, f"{path}.name", f"variable `{name}` appears twice in the experiment")
    else:
        seen.add(name)
    salt = v.get("salt")
    if salt is not None and not isinstance(salt, str):
        probs.add(doc, f"{path}.salt", "`salt` must be a string")
    facets = v.get("facets")
    if (not isinstance(facets, list) or not facets
            or not all(isinstance(f, str) and f for f in facets) or len(set(facets)) != len(facets)):
        probs.add(doc, f"{path}.facets", "`facets` must be a non-empty array of distinct facet names")
        facets = []
    strategy = v.get("strategy")
    if strategy is None:
        strategy = "weighted"
    if strategy not in ("weighted", "timeSliceShuffle"):
        probs.add(doc, f"{path}.strategy", f"unknown strategy {json.dumps(strategy)}")
    choices = v.get("choices")
    if not isinstance(choices, list) or not choices:
        probs.add(doc, f"{path}.choices", "`choices` must be a non-empty array")
        choices = []
    values, weights, spans = [], [], []
    for j, ch in enumerate(choices):
        cpath = f"{path}.choices[{j}]"
        if not isinstance(ch, dict):
            probs.add(doc, cpath, "a choice must be an object")
            continue
        if ch.get("value") is None:
            probs.add(doc, f"{cpath}.value", "a choice needs a non-null `value`")
        values.append(ch.get("value"))
        if strategy == "weighted":
            w = ch.get("weight")
            if w is None:
                w = 1
            if not _is_number(w) or not math.isfinite(float(w)) or float(w) < 0:
                probs.add(doc, f"{cpath}.weight", "`weight` must be a finite number >= 0")
                w = 0
            weights.append(float(w))
        elif strategy == "timeSliceShuffle":
            sp = ch.get("span")
            if type(sp) is not int or sp < 1:
                probs.add(doc, f"{cpath}.span", "`span` must be an integer >= 1 (seconds)")
                sp = 1
            spans.append(sp)
    if strategy == "weighted" and weights and not sum(weights) > 0:
        probs.add(doc, f"{path}.choices", "the weights must sum to more than 0")
    if strategy == "timeSliceShuffle":
        if len(choices) > 256:
            probs.add(doc, f"{path}.choices", "at most 256 choices for timeSliceShuffle")
        if sum(spans) > 10**12:
            probs.add(doc, f"{path}.choices", "the period (sum of spans) must be <= 10^12 s")
        if facets and "ts" not in facets:
            probs.add(doc, f"{path}.facets", "timeSliceShuffle needs `ts` among its facets")
    if len(probs.items) > n0:
        return None
    return Variable(name, salt if salt is not None else exp_name, facets, strategy, values, weights, spans)


def compile_slot(s, name, domain, variables, doc, probs):
    if not isinstance(s, dict):
        probs.add(doc, "slotting", "`slotting` must be an object")
        return None
    n0 = len(probs.items)
    w, o, facet = s.get("byPercentage"), s.get("offset"), s.get("facet")
    if o is None:
        o = 0
    if not _is_number(w) or not (0.0 <= float(w) <= 1.0):
        probs.add(doc, "slotting.byPercentage", "`byPercentage` must be a number in [0, 1]")
    if not _is_number(o) or not float(o) >= 0.0:
        probs.add(doc, "slotting.offset", "`offset` must be a number >= 0")
    if len(probs.items) == n0 and not float(o) + float(w) <= 1.0 + 1e-9:
        probs.add(doc, "slotting", "offset + byPercentage must be <= 1")
    if facet is not None and (not isinstance(facet, str) or facet == ""):
        probs.add(doc, "slotting.facet", "`facet` must be a non-empty string")
    unit = None
    if isinstance(facet, str) and facet:
        unit = ("facet", facet)
    elif variables:
        first = variables[0]
        non_ts = [f for f in first.facets if f != "ts"]
        if non_ts:
            unit = ("facet", non_ts[0])
        elif first.strategy == "timeSliceShuffle":
            unit = ("window", first.period)  # the decimal window index k of the first variable
        else:
            probs.add(doc, "slotting.facet", "a time-only weighted first variable needs `slotting.facet`")
    if len(probs.items) > n0 or unit is None:
        return None
    o, w = float(o), float(w)
    return Slot(round12(o), min(round12(o + w), 1.0), unit, domain or name)


# ===========================================================================
# Spec 13: loading, validation and per-document isolation.


class BundleRejected(Exception):
    """The whole update is rejected; the previous config stays in force."""


class Config:
    """An installed config snapshot."""

    def __init__(self):
        self.rollouts = {}          # variable -> Rollout (including kill switches of rejected docs)
        self.experiments = []       # bundle order
        self.rejected_names = set()  # variables named by a rejected document
        self.parse_error = set()    # ... whose rejected document has no last good version
        self.rollout_docs = {}      # variable -> Rollout   (last good versions for the next update)
        self.experiment_docs = {}   # name -> Experiment
        self.version = None


class Report:
    def __init__(self):
        self.rejected = []  # {"document", "problems", "kept_last_good", "kill_switch"}
        self.warnings = []
        self.problems = []  # every problem, as text


def classify(cfg):
    """Spec 13.1: (segments, rollout docs, experiment docs, is_bundle)."""
    if not isinstance(cfg, dict):
        raise BundleRejected("bundle: the top level must be a JSON object")
    if "variable" in cfg:
        return {}, [cfg], [], False
    if "variables" in cfg and "name" in cfg:
        return {}, [], [cfg], False
    errs = []
    if cfg.get("schema") is not None and not (type(cfg["schema"]) is int and cfg["schema"] == 1):
        errs.append(f"bundle: schema: unsupported schema {json.dumps(cfg['schema'])}")
    if cfg.get("version") is not None and not _integral(cfg["version"]):
        errs.append("bundle: version: must be an integer")
    segs = cfg.get("segments")
    if segs is not None and not isinstance(segs, dict):
        errs.append("bundle: segments: must be an object")
    for key in ("rollouts", "experiments"):
        if cfg.get(key) is not None and not isinstance(cfg[key], list):
            errs.append(f"bundle: {key}: must be an array")
    if cfg.get("rollouts") is None and cfg.get("experiments") is None:
        errs.append("bundle: neither `rollouts` nor `experiments` (and not a single document)")
    if errs:
        raise BundleRejected("; ".join(errs))
    return segs or {}, cfg.get("rollouts") or [], cfg.get("experiments") or [], True


def _canonical_json(v) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def document_fingerprint(doc, segments_raw) -> str:
    """Identity of a document for `UpdateReport.changed` (spec 13.4): its JSON value plus the
    definitions of the segments it references (they are compiled into it, spec 6)."""
    names = []
    if isinstance(doc, dict):
        refs = [doc.get("segments")]
        if isinstance(doc.get("rollouts"), list) and "variable" in doc:
            refs += [r.get("segments") for r in doc["rollouts"] if isinstance(r, dict)]
        for lst in refs:
            if isinstance(lst, list):
                names += [n for n in lst if isinstance(n, str)]
    segs = {n: segments_raw.get(n) for n in sorted(set(names))} if isinstance(segments_raw, dict) else {}
    return _canonical_json([doc, segs])


def load_config(cfg, previous: Config | None = None, strict=False):
    """update_config (spec 13.3): returns (Config, Report) or raises BundleRejected."""
    segments_raw, rdocs, edocs, is_bundle = classify(cfg)
    probs = Problems()
    report = Report()

    # Segments: validated once (their `/` salt is the referencing document's).
    segments = {}
    for name, seg in segments_raw.items():
        lst = segment_constraints(seg)
        label = f'segment "{name}"'
        if lst is False or (lst is not None and not isinstance(lst, list)):
            probs.add(label, "constraints", "a segment is {\"constraints\": [...]} or an array")
            segments[name] = None
            continue
        lst = lst or []
        sp = Problems()
        ok = compile_constraint_list(lst, "constraints", "", label, sp) is not None
        probs.items += sp.items
        probs.warnings += sp.warnings
        segments[name] = lst if ok else None

    any_applied = False

    # Rollout documents.
    r_entries = []
    for i, d in enumerate(rdocs):
        if not isinstance(d, dict):
            label = f"rollouts[{i}]"
            probs.add(label, "", "a rollout document must be an object")
            r_entries.append((d, label, None, None))
            continue
        var = d.get("variable")
        label = f'rollout "{var}"' if isinstance(var, str) and var else f"rollouts[{i}]"
        sub = Problems()
        compiled = compile_rollout(d, label, segments, sub)
        probs.items += sub.items
        probs.warnings += sub.warnings
        r_entries.append((d, label, compiled, sub.items))

    e_entries = []
    for i, e in enumerate(edocs):
        if not isinstance(e, dict):
            label = f"experiments[{i}]"
            probs.add(label, "", "an experiment document must be an object")
            e_entries.append((e, label, None, None))
            continue
        nm = e.get("name")
        label = f'experiment "{nm}"' if isinstance(nm, str) and nm else f"experiments[{i}]"
        sub = Problems()
        compiled = compile_experiment(e, label, segments, sub)
        probs.items += sub.items
        probs.warnings += sub.warnings
        e_entries.append((e, label, compiled, sub.items))

    report.problems = [f"{d}: {p}: {r}" if p else f"{d}: {r}" for d, p, r in probs.items]
    report.warnings = list(probs.warnings)
    if strict and probs.items:
        raise BundleRejected("strict: " + "; ".join(report.problems))

    # Bundle-level: duplicate keys.
    errs = []
    seen = {}
    for d, label, _, _ in r_entries:
        var = d.get("variable") if isinstance(d, dict) else None
        if isinstance(var, str):
            if var in seen:
                errs.append(f"bundle: two rollout documents for variable `{var}`")
            seen[var] = True
    seen = {}
    for e, label, _, _ in e_entries:
        nm = e.get("name") if isinstance(e, dict) else None
        if isinstance(nm, str):
            if nm in seen:
                errs.append(f"bundle: two experiments named `{nm}`")
            seen[nm] = True
    if errs:
        raise BundleRejected("; ".join(errs))

    prev = previous or Config()
    out = Config()
    out.version = cfg.get("version") if is_bundle else None
    n_docs = len(r_entries) + len(e_entries)

    for d, label, compiled, problems in r_entries:
        if compiled is not None:
            compiled.fingerprint = document_fingerprint(d, segments_raw)
            out.rollouts[compiled.variable] = compiled
            out.rollout_docs[compiled.variable] = compiled
            any_applied = True
            continue
        var = d.get("variable") if isinstance(d, dict) else None
        kill = isinstance(var, str) and d.get("enabled") is False
        kept = False
        if kill:
            # The kill switch of a rejected document takes effect anyway.
            out.rollouts[var] = Rollout(var, [], False, None, False)
            out.rollouts[var].fingerprint = document_fingerprint(d, segments_raw)
            any_applied = True
        elif isinstance(var, str) and var in prev.rollout_docs:
            out.rollouts[var] = out.rollout_docs[var] = prev.rollout_docs[var]
            kept = True
        if isinstance(var, str):
            out.rejected_names.add(var)
            if not kill and not kept:
                out.parse_error.add(var)
        report.rejected.append({"document": label, "problems": problems, "kept_last_good": kept,
                                "kill_switch": kill})

    for e, label, compiled, problems in e_entries:
        if compiled is not None:
            compiled.fingerprint = document_fingerprint(e, segments_raw)
            out.experiments.append(compiled)
            out.experiment_docs[compiled.name] = compiled
            any_applied = True
            continue
        nm = e.get("name") if isinstance(e, dict) else None
        kept = isinstance(nm, str) and nm in prev.experiment_docs
        if kept:
            out.experiments.append(prev.experiment_docs[nm])
            out.experiment_docs[nm] = prev.experiment_docs[nm]
        names = []
        raw_vars = e.get("variables") if isinstance(e, dict) else None
        for v in raw_vars if isinstance(raw_vars, list) else []:
            if isinstance(v, dict) and isinstance(v.get("name"), str):
                names.append(v["name"])
        out.rejected_names.update(names)
        if not kept:
            out.parse_error.update(names)
        report.rejected.append({"document": label, "problems": problems, "kept_last_good": kept,
                                "kill_switch": False})

    if n_docs and not any_applied:
        raise BundleRejected("bundle: every document was rejected: " + "; ".join(report.problems))
    if not n_docs and probs.items:
        raise BundleRejected("bundle: problems with no document: " + "; ".join(report.problems))

    # Spec 8.3: slotted experiments of one salt share one slot unit and do not overlap.
    slotted = [x for x in out.experiments if x.slot is not None and x.slot.hi > x.slot.lo]
    errs = []
    for i, a in enumerate(slotted):
        for b in slotted[i + 1:]:
            sa, sb = a.slot, b.slot
            if sa.salt != sb.salt:
                continue
            if sa.unit != sb.unit:
                errs.append(f"bundle: domain `{sa.salt}`: `{a.name}` and `{b.name}` slot on different "
                            f"units ({sa.unit} vs {sb.unit})")
            if sa.lo < sb.hi and sb.lo < sa.hi:
                errs.append(f"bundle: domain `{sa.salt}`: the slots of `{a.name}` [{sa.lo}, {sa.hi}) and "
                            f"`{b.name}` [{sb.lo}, {sb.hi}) overlap")
    if errs:
        raise BundleRejected("; ".join(errs))
    return out, report


# ===========================================================================
# Evaluation (spec 5, 8, 9). `trace`, when a list, receives every intermediate
# value (the worked examples of docs/spec.md are printed from it).


def _rec(trace, rec):
    if trace is not None:
        trace.append(rec)


def _eq(f: Facet, o: Operand):
    if f.num is not None and o.num is not None:
        return num_eq(f.num, o.num), "numeric"
    return f.canon == o.canon, "string"


def holds(c: Constraint, env: Env, trace=None, where=""):
    f = env.get(c.target)
    rec = None if trace is None else {"step": "constraint", "where": where, "constraint": c.describe()}
    if f is None:  # absent facet: false, whatever the op
        if rec is not None:
            rec.update({"facet": None, "result": False, "why": "facet absent"})
            trace.append(rec)
        return False
    if rec is not None:
        rec["facet"] = f.canon
    k = c.kind
    if k in ("=", "!="):
        r, how = _eq(f, c.operand)
        if k == "!=":
            r = not r
        if rec is not None:
            rec.update({"facet_num": num_json(f.num), "value_num": num_json(c.operand.num), "compare": how})
    elif k in ("in", "nin"):
        hits = [_eq(f, o)[0] for o in c.items]
        r = any(hits) if k == "in" else not any(hits)
        if rec is not None:
            rec.update({"facet_num": num_json(f.num), "element_matches": hits})
    elif k in ORDER_OPS:
        if f.num is None or c.number is None:
            r = False
        else:
            s = num_cmp(f.num, c.number)
            r = {">": s > 0, ">=": s >= 0, "<": s < 0, "<=": s <= 0}[k]
        if rec is not None:
            rec.update({"facet_num": num_json(f.num), "value_num": num_json(c.number)})
    elif k == "/":
        if rec is not None:
            h = hash_record(c.salt, [f.canon])
            b = h["bucket"]
            rec.update({"hash": h, "p": c.p, "compare": f"{b!r} < {c.p!r}"})
        else:
            b = bucket(c.salt, f.canon)
        r = b < c.p
    elif k.startswith("semver"):
        v = parse_version(f.canon)
        if v is None:
            r = False  # unparsable facet: false, also for semver!=
        else:
            s = version_cmp(v, c.version)
            r = {"semver=": s == 0, "semver!=": s != 0, "semver>": s > 0, "semver>=": s >= 0,
                 "semver<": s < 0, "semver<=": s <= 0}[k]
    elif k == "prefix":
        r = f.canon.startswith(c.operand.canon)
    elif k == "suffix":
        r = f.canon.endswith(c.operand.canon)
    elif k == "contains":
        r = c.operand.canon in f.canon
    elif k == "regex":
        r = c.regex.search(f.canon) is not None
    else:  # pragma: no cover - compile_constraint only admits known ops
        raise AssertionError(k)
    if rec is not None:
        rec["result"] = r
        trace.append(rec)
    return r


def all_hold(cs, env, trace=None, where=""):
    for c in cs:
        if not holds(c, env, trace, where):
            return False
    return True


def window(env: Env, period: int):
    ts = env.ts_secs()
    if ts is None or not period:
        return None
    k = ts // period  # floor division: 0 <= r < P also for negative ts
    return k, ts - k * period


def in_slot(e: Experiment, env: Env, trace=None):
    s = e.slot
    if s is None:
        return True
    rec = None if trace is None else {"step": "slot", "experiment": e.name, "range": [s.lo, s.hi]}
    if s.unit[0] == "facet":
        f = env.get(s.unit[1])
        if rec is not None:
            rec["unit_from"] = f"facet {s.unit[1]}"
        if f is None:
            _rec(trace, rec and {**rec, "result": False, "why": "slot facet absent"})
            return False
        unit = f.canon
    else:
        w = window(env, s.unit[1])
        if rec is not None:
            rec["unit_from"] = "time window k of the first variable"
        if w is None:
            _rec(trace, rec and {**rec, "result": False, "why": "no usable ts"})
            return False
        unit = str(w[0])
    if rec is not None:
        h = hash_record(s.salt, [unit])
        b = h["bucket"]
    else:
        b = bucket(s.salt, unit)
    r = s.lo <= b < s.hi
    if rec is not None:
        rec.update({"hash": h, "compare": f"{s.lo!r} <= {b!r} < {s.hi!r}", "result": r})
        trace.append(rec)
    return r


def assign(var: Variable, env: Env, exp_name: str, trace=None):
    """The choice index for this call, or None when the variable's unit is absent."""
    rec = None if trace is None else {"step": "assign", "experiment": exp_name, "variable": var.name,
                                      "strategy": var.strategy}
    if var.strategy == "weighted":
        parts = []
        for name in var.facets:
            f = env.get(name)
            if f is None:
                _rec(trace, rec and {**rec, "result": None, "why": f"unit facet {name} absent"})
                return None
            parts.append(f.canon)
        h = hash_record(var.salt, parts)
        total = 0.0
        for w in var.weights:
            total += w
        acc, thresholds = 0.0, []
        for w in var.weights:
            acc += w
            thresholds.append(acc / total)
        choice = next((i for i, t in enumerate(thresholds) if h["bucket"] < t), len(thresholds) - 1)
        _rec(trace, rec and {**rec, "hash": h, "thresholds": thresholds, "choice": choice})
        return choice
    # timeSliceShuffle
    spans, period = var.spans, var.period
    w = window(env, period)
    if w is None:
        _rec(trace, rec and {**rec, "result": None, "why": "no usable ts"})
        return None
    k, r = w
    parts = []
    for name in var.facets:
        if name == "ts":
            continue
        f = env.get(name)
        if f is None:
            _rec(trace, rec and {**rec, "result": None, "why": f"unit facet {name} absent"})
            return None
        parts.append(f.canon)
    parts.append(str(k))  # key: other facets, 0x1F, decimal k
    h = hash_record(var.salt, parts)
    seed = int(h["xxh3_64"], 16)
    rng = SplitMix64(seed)
    order = list(range(len(spans)))
    draws = []
    for i in range(len(spans) - 1, 0, -1):
        x = rng.next()
        j = x % (i + 1)
        draws.append({"i": i, "next": f"0x{x:016x}", "j": j})
        order[i], order[j] = order[j], order[i]
    layout, acc, choice = [], 0, None
    for c in order:
        layout.append([c, acc, acc + spans[c]])
        if choice is None and r < acc + spans[c]:
            choice = c
        acc += spans[c]
    _rec(trace, rec and {**rec, "ts": env.ts_secs(), "period": period, "k": k, "r": r,
                         "key": "\x1f".join(parts), "hash": h, "splitmix64_seed": f"0x{seed:016x}",
                         "draws": draws, "order": order, "layout": layout, "choice": choice})
    return choice


def decision(value, source, experiment=None, rule=None, choice=None, reason="DEFAULT", error=None):
    return {"value": value, "source": source, "experiment": experiment, "rule": rule,
            "choice": choice, "reason": reason, "errorCode": error}


def evaluate(cfg: Config, variable: str, env: Env, trace=None):
    """Spec 9: the decision for `variable` (the `to_json` members minus `variable`)."""
    rollout = cfg.rollouts.get(variable)
    exps = [(e, v) for e in cfg.experiments for v in e.variables if v.name == variable]
    if rollout is None and not exps and variable not in cfg.rejected_names:
        _rec(trace, {"step": "lookup", "result": "no document defines the variable"})
        return decision(None, "fallback", reason="ERROR", error="FLAG_NOT_FOUND")
    if rollout is not None and not rollout.enabled:
        _rec(trace, {"step": "kill switch", "result": '"enabled": false'})
        return decision(None, "fallback", reason="DISABLED")
    for e, v in exps:
        if e.state != "RUNNING":
            _rec(trace, {"step": "state", "experiment": e.name, "state": e.state, "result": False})
            continue
        if not all_hold(e.constraints, env, trace, f"experiment {e.name}"):
            continue
        if not in_slot(e, env, trace):
            continue
        ch = assign(v, env, e.name, trace)
        if ch is None:
            continue
        return decision(v.values[ch], "experiment", experiment=e.name, choice=ch, reason="SPLIT")
    if rollout is not None:
        for i, (value, _label, cs) in enumerate(rollout.rules):
            if all_hold(cs, env, trace, f"rule {i}"):
                return decision(value, "rollout", rule=i, reason="TARGETING_MATCH")
        if rollout.has_default:
            _rec(trace, {"step": "default", "result": "no rule matched"})
            return decision(rollout.default, "default", reason="DEFAULT")
        _rec(trace, {"step": "fallback", "result": "no rule matched, no default"})
        return decision(None, "fallback", reason="DEFAULT")
    if variable in cfg.parse_error and not exps:
        _rec(trace, {"step": "rejected", "result": "document rejected, no last good version"})
        return decision(None, "fallback", reason="ERROR", error="PARSE_ERROR")
    _rec(trace, {"step": "fallback", "result": "no experiment applied, no rollout document"})
    return decision(None, "fallback", reason="DEFAULT")


# ===========================================================================
# docs/wire-format.md: event batches.

MAGIC = b"TRNB"
WIRE_VERSION = 1
SOURCES = ["experiment", "rollout", "default", "fallback"]


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def put_varint(out: bytearray, v: int):
    assert 0 <= v <= U64_MAX, v
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def zigzag(n: int) -> int:
    assert I64_MIN <= n <= I64_MAX, n
    return ((n << 1) ^ (n >> 63)) & MASK64


def unzigzag(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


def wrap_i64(n: int) -> int:
    n &= MASK64
    return n - (1 << 64) if n > I64_MAX else n


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def batch_facet(name, v):
    """A facet of a batch event in the JSON form of `turnout decode`: (tag, value)."""
    if isinstance(v, dict) and list(v) == ["$int64"]:
        return (1, int(v["$int64"]))
    if isinstance(v, bool):
        return (4 if v else 3, v)
    if isinstance(v, int):
        return (1, v)
    if isinstance(v, float):
        return (2, v)
    if isinstance(v, str):
        return (0, v)
    raise FacetError(f"batch facet `{name}`: unsupported value {v!r}")


def _f64_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _literal(out: bytearray, text: str, shift: int, tag: int):
    """A string literal: `01` + 16 bytes for a canonical lowercase UUID, else
    varint(len << shift | tag) + UTF-8 (section 3: shift 1, tag 0 in the
    string table; shift 2, tag 3 for a facet string value)."""
    if len(text) == 36 and UUID_RE.fullmatch(text):
        out.append(1)
        out += bytes.fromhex(text.replace("-", ""))
    else:
        raw = text.encode("utf-8")
        put_varint(out, len(raw) << shift | tag)
        out += raw


def encode_batch(header: dict, events: list) -> bytes:
    """Spec wire-format 2-8 (the determinism rules of section 8)."""
    strings, index = [], {}

    def s(text):
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    shapes, shape_index = [], {}
    sets, set_index = [], {}
    values = {}  # facet string value -> its index among the batch's facet strings

    def facet_set(service, facets):
        items = sorted(((k, batch_facet(k, v)) for k, v in facets.items()),
                       key=lambda kv: kv[0].encode("utf-8"))
        key = (service, tuple((k, tag, _f64_bits(val) if tag == 2 else val) for k, (tag, val) in items))
        if key not in set_index:
            body = bytearray()
            put_varint(body, s(service))
            shape = bytearray()
            put_varint(shape, len(items))
            for k, (tag, _) in items:
                put_varint(shape, s(k) << 3 | tag)
            shape = bytes(shape)
            if shape not in shape_index:
                shape_index[shape] = len(shapes)
                shapes.append(shape)
            put_varint(body, shape_index[shape])
            for _, (tag, val) in items:
                if tag == 0:
                    if val in values:
                        put_varint(body, values[val] << 1)
                    else:
                        values[val] = len(values)
                        _literal(body, val, 2, 3)
                elif tag == 1:
                    put_varint(body, zigzag(val))
                elif tag == 2:
                    body += _f64_bits(val)
            set_index[key] = len(sets)
            sets.append(bytes(body))
        return set_index[key]

    hdr = bytearray()
    for k in ("clientId", "sdk", "sdkVersion", "platform"):
        put_varint(hdr, s(header[k]))
    put_varint(hdr, header["seq"])
    put_varint(hdr, zigzag(header["createdAtMs"]))
    put_varint(hdr, header["dropped"])
    put_varint(hdr, header["foldOverflow"])

    ev = bytearray()
    put_varint(ev, len(events))
    prev = header["createdAtMs"]
    for e in events:
        count = e.get("count", 1)
        body = bytearray()
        service = e["service"]
        put_varint(body, facet_set(service, e.get("facets") or {}))
        if e["kind"] == "decision":
            flags = 0 | SOURCES.index(e["source"]) << 2
            if e.get("experiment") is not None:
                flags |= 0x10
            if e.get("rule") is not None:
                flags |= 0x20
            if e.get("choice") is not None:
                flags |= 0x40
            put_varint(body, s(e["name"]))
            put_varint(body, s(e["valueText"]))
            if e.get("experiment") is not None:
                put_varint(body, s(e["experiment"]))
            if e.get("rule") is not None:
                put_varint(body, e["rule"])
            if e.get("choice") is not None:
                put_varint(body, e["choice"])
        elif e["kind"] == "track":
            flags = 1
            name = e["name"]
            if name.startswith(service + "."):
                flags |= 0x08
                name = name[len(service) + 1:]
            put_varint(body, s(name))
            v = float(e["value"])
            if math.isfinite(v) and v.is_integer() and abs(v) < 2.0**53 and not (v == 0 and math.copysign(1, v) < 0):
                flags |= 0x04
                put_varint(body, zigzag(int(v)))
            else:
                body += _f64_bits(v)
        else:
            raise ValueError(f"unknown event kind {e['kind']!r}")
        if count >= 2:
            flags |= 0x80
        ev.append(flags)
        put_varint(ev, zigzag(wrap_i64(e["time"] - prev)))
        if count >= 2:
            put_varint(ev, count)
        ev += body
        prev = e["time"]

    out = bytearray(MAGIC)
    out.append(WIRE_VERSION)
    put_varint(out, len(strings))
    for text in strings:
        _literal(out, text, 1, 0)
    put_varint(out, len(shapes))
    for shape in shapes:
        out += shape
    put_varint(out, len(sets))
    for body in sets:
        out += body
    out += hdr
    out += ev
    out += struct.pack("<I", crc32c(bytes(out)))
    return bytes(out)


class DecodeError(Exception):
    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind  # "not-a-batch", "version", "checksum", "malformed"


class _Reader:
    def __init__(self, data: bytes, start: int):
        self.d, self.i = data, start

    def remaining(self):
        return len(self.d) - self.i

    def fail(self, what):
        raise DecodeError("malformed", f"offset {self.i}: {what}")

    def u8(self):
        if self.i >= len(self.d):
            self.fail("unexpected end")
        b = self.d[self.i]
        self.i += 1
        return b

    def take(self, n, what):
        if n > self.remaining():
            self.fail(f"{what}: length {n} beyond the input")
        b = self.d[self.i: self.i + n]
        self.i += n
        return b

    def varint(self):
        v = 0
        for k in range(10):
            b = self.u8()
            if k == 9 and b > 1:
                self.fail("varint overflows 64 bits")
            v |= (b & 0x7F) << (7 * k)
            if not b & 0x80:
                return v
        self.fail("varint longer than 10 bytes")

    def count(self, what, per_item=1):
        n = self.varint()
        if n * per_item > self.remaining():
            self.fail(f"{what} count {n} beyond the input")
        return n


def decode_batch(data: bytes):
    """Spec wire-format 10: (header, events) in the JSON form of `turnout decode`
    (decision events also carry `valueText`), or DecodeError."""
    if len(data) < 9 or data[:4] != MAGIC:
        raise DecodeError("not-a-batch")
    if data[4] != WIRE_VERSION:
        raise DecodeError("version", str(data[4]))
    body, trailer = data[:-4], data[-4:]
    if crc32c(body) != struct.unpack("<I", trailer)[0]:
        raise DecodeError("checksum")
    r = _Reader(body, 5)

    def literal(h, text_len):
        """The literal after header `h`: a UUID when h == 1, else `text_len` bytes of UTF-8."""
        if h == 1:
            u = r.take(16, "uuid").hex()
            return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        if text_len is None:
            r.fail(f"invalid string header {h}")
        raw = r.take(text_len, "string")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            r.fail("invalid UTF-8")

    strings = []
    for _ in range(r.count("string")):
        h = r.varint()
        strings.append(literal(h, None if h & 1 else h >> 1))

    def string():
        k = r.varint()
        if k >= len(strings):
            r.fail(f"string index {k} out of range")
        return strings[k]

    shapes = []
    for _ in range(r.count("shape")):
        shape = []
        for _ in range(r.count("facet")):
            kt = r.varint()
            key, tag = kt >> 3, kt & 7
            if key >= len(strings):
                r.fail(f"string index {key} out of range")
            if tag > 4:
                r.fail(f"invalid facet tag {tag}")
            if any(strings[key] == name for name, _ in shape):
                r.fail(f"facet `{strings[key]}` repeated in a shape")
            shape.append((strings[key], tag))
        shapes.append(shape)

    sets, values = [], []
    for _ in range(r.count("set", per_item=2)):
        service = string()
        si = r.varint()
        if si >= len(shapes):
            r.fail(f"shape index {si} out of range")
        facets = {}
        for name, tag in shapes[si]:
            if tag == 0:
                h = r.varint()
                if h & 1 == 0:
                    if h >> 1 >= len(values):
                        r.fail(f"facet string reference {h >> 1} out of range")
                    val = (0, values[h >> 1])
                else:
                    values.append(literal(h, h >> 2 if h & 3 == 3 else None))
                    val = (0, values[-1])
            elif tag == 1:
                val = (1, unzigzag(r.varint()))
            elif tag == 2:
                val = (2, struct.unpack("<d", r.take(8, "f64"))[0])
            else:
                val = (tag, tag == 4)
            facets[name] = val
        sets.append((service, facets))

    header = {"clientId": string(), "sdk": string(), "sdkVersion": string(), "platform": string(),
              "seq": r.varint(), "createdAtMs": unzigzag(r.varint()), "dropped": r.varint(),
              "foldOverflow": r.varint()}
    header = {k: header[k] for k in ("clientId", "seq", "createdAtMs", "sdk", "sdkVersion", "platform",
                                     "dropped", "foldOverflow")}

    events = []
    prev = header["createdAtMs"]
    for _ in range(r.count("event", per_item=5)):
        flags = r.u8()
        kind = flags & 3
        if kind > 1:
            r.fail(f"invalid event kind {kind}")
        time = wrap_i64(prev + unzigzag(r.varint()))
        prev = time
        count = 1
        if flags & 0x80:
            count = r.varint()
            if count < 2:
                r.fail("a written count must be >= 2")
        si = r.varint()
        if si >= len(sets):
            r.fail(f"facet set index {si} out of range")
        service, facets = sets[si]
        name = string()
        if kind == 0:
            text = string()
            experiment = string() if flags & 0x10 else None
            rule = r.varint() if flags & 0x20 else None
            choice = r.varint() if flags & 0x40 else None
            if (rule is not None and rule > U32_MAX) or (choice is not None and choice > U32_MAX):
                r.fail("rule/choice beyond u32")
            try:
                value = _strict_json(text)
            except ValueError:
                value = text  # not JSON: kept as text (the engine only writes JSON)
            ev = {"kind": "decision", "time": time, "count": count, "service": service, "name": name,
                  "value": value, "valueText": text, "source": SOURCES[(flags >> 2) & 3],
                  "experiment": experiment, "rule": rule, "choice": choice}
        else:
            if flags & 0x70:
                r.fail("track event with decision flag bits")
            if flags & 0x08:
                name = f"{service}.{name}"
            if flags & 0x04:
                value = float(unzigzag(r.varint()))
            else:
                value = struct.unpack("<d", r.take(8, "f64"))[0]
            ev = {"kind": "track", "time": time, "count": count, "service": service, "name": name,
                  "value": value}
        ev["facets"] = dict(facets)
        events.append(ev)
    if r.remaining():
        r.fail("trailing bytes after the events")
    return header, [_facets_as_json(e) for e in events]


def _facets_as_json(ev):
    """Typed facets in the JSON form of `turnout decode` (integers beyond +-2^53 as $int64)."""
    out = {}
    for k, (tag, val) in ev["facets"].items():
        out[k] = {"$int64": str(val)} if tag == 1 and abs(val) > 2**53 else val
    return {**ev, "facets": out}


# ===========================================================================
# --self-test: the values the spec states in its own text.


def self_test():
    """Checks this reference against values stated in docs/spec.md and
    docs/wire-format.md (outside the generated worked examples), and against
    the isolation rules of spec 8.3 / 9 / 13.3. Returns the list of failures."""
    fails = []

    def check(what, got, want):
        if got != want:
            fails.append(f"{what}: got {got!r}, want {want!r}")

    r = SplitMix64(1234567)
    check("spec 4.3 splitmix64(1234567)", [r.next() for _ in range(3)],
          [6457827717110365317, 3203168211198807973, 9817491932198370423])
    check("wire 7 CRC-32C check value", crc32c(b"123456789"), 0xE3069283)
    for v, h in [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16384, "808001"),
                 (U64_MAX, "ffffffffffffffffff01")]:
        b = bytearray()
        put_varint(b, v)
        check(f"wire 1 varint {v}", b.hex(), h)
    for n, z in [(0, 0), (-1, 1), (1, 2), (-2, 3), (2, 4), (1000, 2000), (-1370, 2739),
                 (I64_MAX, U64_MAX - 1), (I64_MIN, U64_MAX)]:
        check(f"wire 1 zigzag {n}", (zigzag(n), unzigzag(zigzag(n))), (z, n))
    for fv, text in [(("str", "Jakarta"), "Jakarta"), (("str", "6.0"), "6.0"), (("int", -42), "-42"),
                     (("float", 6.0), "6"), (("float", -0.0), "0"), (("float", 9.2e18), "9200000000000000000"),
                     (("float", 0.25), "0.25"), (("float", 0.1 + 0.2), "0.30000000000000004"),
                     (("float", 1e-7), "0.0000001"), (("float", 1e21), "1000000000000000000000"),
                     (("float", -(2.0**63)), "-9223372036854776000"), (("bool", True), "true"),
                     (("float", math.nan), "NaN"), (("float", -math.inf), "-inf")]:
        check(f"spec 2.1 canonical {fv}", canonical(fv), text)
    for s_, n in [("6.0", ("int", 6)), ("1e3", ("int", 1000)), ("06", ("int", 6)), (" 6", None), ("1_000", None),
                  ("0x10", None), ("inf", None), ("NaN", None), ("+5", ("int", 5)), (".5", ("float", 0.5)),
                  ("9223372036854775808", ("float", 2.0**63))]:
        check(f"spec 3 parse {s_!r}", parse_num(s_), n)

    # Spec 17.1: the examples of its text, then hand-computed weights of each rule.
    for pattern, w in [
        ("", 1), ("abc", 4), ("a{100}c$", 103), ("(a{100}){300}$", 30302),
        # rule 1: escapes are one atom each
        (r"\d\.\x41\x{1F600}\u{41}\p{Greek}", 7), (r"\pL\PL\u0041\U00000041", 5), (r"\b{start}x", 3),
        # rule 2: 1 + characters // 16 (`^`, escapes and inner brackets are characters too)
        ("[abcdefghijklmno]", 2), ("[abcdefghijklmnop]", 3), ("[^abcdefghijklmno]", 3), ("[]a]", 2),
        ("[^]a]b", 3), (r"[\]abcdefghijklmn]", 3), ("[[:alpha:]abcdefgh]x", 4), ("[a-z]{2}", 3),
        # rule 3: groups, `|`, flag groups
        ("a|b", 4), ("(a|b)", 5), ("(|)", 3), ("(?:ab)", 4), ("(?P<n>a)(?<m>b)", 5), ("(?i:a)", 3),
        ("(?i)abc", 4), ("(?i)", 1), ("a||b", 5),
        # rule 4: quantifiers
        ("a*", 3), ("a+?", 4), ("a??", 4), ("a{3}", 4), ("a{0}", 2), ("a{2,5}", 6), ("a{5,2}", 6), ("a{2,}", 4),
        ("a{ 2 , 5 }", 6), ("a{0,}", 2), ("a{,5}", 6), ("a{x}", 5), ("a{3}?", 5), ("a{3}{4}", 13), ("(ab){3}*", 11),
        # rule 5: verbose mode and its scope
        ("(?x) a{61} # {1000}\n$", 63), ("(?x)a b", 3), ("(?x)a *", 3), ("(?x)a # c\n*", 3), ("a b", 4),
        ("(?x:a b)c d", 7), ("((?x)a b)c d", 7), ("(?x)a(?-x) b", 4), ("(?x)a(?i-x) b", 4), (r"(?x)\ ", 2),
        ("(?x)a\u3000b", 3), ("(?x)a{ 3 }", 4),
        # rule 6: saturation
        ("a{4294967296}{4294967296}", U64_MAX), ("a{" + "9" * 5000 + "}b", U64_MAX),
        ("(a{4294967296}){4294967296}{2}|b", U64_MAX),
    ]:
        check(f"spec 17.1 regex_weight({pattern!r})", regex_weight(pattern), w)

    def one(cfg, var, facets, now=0, previous=None):
        try:
            c, _ = load_config(cfg, previous)
        except BundleRejected:
            return "rejected"
        d = evaluate(c, var, Env(facets, now))
        return (d["source"], d["reason"], d["errorCode"], d["value"])

    def rule(op, value):
        return {"variable": "v", "default": "miss",
                "rollouts": [{"value": "hit", "constraints": [{"target": "x", "op": op, "value": value}]}]}

    hit = ("rollout", "TARGETING_MATCH", None, "hit")
    miss = ("default", "DEFAULT", None, "miss")
    big = {"$int64": "9007199254740993"}
    for facet, op, value, want in [
        (big, "=", "9007199254740992", miss), (big, "=", "9007199254740993.0", miss),
        ("06", "=", 6, hit), (6, "=", "6.0", hit), (True, "=", "true", hit), (" 6", "=", 6, miss),
        (6.0, "prefix", "6", hit), ("60", "prefix", "6", hit),
        ("1.2.3+build5", "semver=", "1.2.3", hit), ("1.2.3+build5", "semver>", "1.2.3", miss),
        ("1.2.3+a", "semver=", "1.2.3+b", hit), ("1.2.3-alpha", "semver<", "1.2.3-beta", hit),
        ("1.2.3-beta", "semver<", "1.2.3-beta.2", hit), ("1.2.3-beta.2", "semver<", "1.2.3", hit),
        ("1.2", "semver=", "1.2.0", hit), ("v2", "semver=", "2.0.0", hit), ("1.2-beta", "semver=", "1.2.0-beta", hit),
        ("01.2.3", "semver!=", "1.2.3", miss), ("1.2.3.4", "semver!=", "1.2.3", miss),
        (5, ">", "abc", miss), (5, "<", "abc", miss), (5, ">", "inf", miss), (5, ">", True, miss),
        (5, "<", [1], miss), ("abc", ">", 1, miss), (5, ">", "4", hit), ("ADR-1-x", "regex", "^ADR-[0-9]+-", hit),
        ("x\n", "regex", "x$", miss), (7, "nin", [], hit), (7, "in", [], miss),
    ]:
        check(f"spec 5 {json.dumps(facet)} {op} {json.dumps(value)}", one(rule(op, value), "v", {"x": facet}), want)
    check("spec 5 absent facet, nin", one(rule("nin", ["SG"]), "v", {}), miss)
    check("spec 17.1 a pattern of weight 64", one(rule("regex", "a{62}$"), "v", {"x": "a" * 62}), hit)
    check("spec 17.1 a pattern of weight 65", one(rule("regex", "a{63}$"), "v", {"x": "a" * 63}), "rejected")
    seg = {"w": [{"target": "x", "op": "regex", "value": "a{30}$"}]}
    for refs, own, want in [(["w", "w"], [], hit), (["w", "w", "w"], [], "parse_error"),
                            (["w"], [{"target": "x", "op": "regex", "value": "^a{30}"}], hit),
                            (["w"], [{"target": "x", "op": "regex", "value": "^a{31}"}], "parse_error")]:
        rollout = {"variable": "v", "default": "miss",
                   "rollouts": [{"value": "hit", "segments": refs[:1], "constraints": own},
                                {"value": "hit", "segments": refs[1:]}]}
        exp = {"name": "e", "state": "RUNNING", "segments": refs, "constraints": own,
               "variables": [{"name": "ev", "facets": ["x"], "choices": [{"value": "hit"}]}]}
        cfg = {"segments": seg, "rollouts": [{"variable": "other", "default": 0}, rollout], "experiments": [exp]}
        for var, ok in [("v", hit), ("ev", ("experiment", "SPLIT", None, "hit"))]:
            check(f"spec 17.1 document weight, {var}, segments {refs} + {len(own)} own",
                  one(cfg, var, {"x": "a" * 30}), ok if want == hit else ("fallback", "ERROR", "PARSE_ERROR", None))
    for op, value in [("~=", 1), ("=", [1]), ("in", "6"), ("/", 1.5), ("/", "x"), ("semver=", "01.2.3"),
                      ("semver=", 1), ("regex", "("), ("regex", "(?=a)"), ("=", None)]:
        check(f"spec 5 load error {op} {json.dumps(value)}", one(rule(op, value), "v", {"x": 1}), "rejected")

    bad = [{"value": 1, "constraints": [{"target": "x", "op": "~=", "value": 1}]}]
    parse_error = ("fallback", "ERROR", "PARSE_ERROR", None)
    check("spec 13.3 rejected kill switch alone takes effect",
          one({"variable": "k", "enabled": False, "rollouts": bad}, "k", {}), ("fallback", "DISABLED", None, None))
    check("spec 13.3 every document rejected", one({"variable": "k", "rollouts": bad}, "k", {}), "rejected")
    bad_exp = {"name": "e", "state": "RUNNING",
               "variables": [{"name": "v", "facets": ["pax"], "choices": [{"value": 1, "weight": "2"}]}]}
    good_exp = {"name": "g", "state": "RUNNING", "variables": [{"name": "v", "facets": ["pax"], "choices": [{"value": "g"}]}]}
    other = {"variable": "other", "default": 0}
    check("spec 9 rejected experiment alone -> PARSE_ERROR",
          one({"rollouts": [other], "experiments": [bad_exp]}, "v", {"pax": 1}), parse_error)
    check("spec 9 rejected experiment, rollout document decides",
          one({"rollouts": [{"variable": "v", "default": 3}], "experiments": [bad_exp]}, "v", {"pax": 1}),
          ("default", "DEFAULT", None, 3))
    check("spec 9 rejected experiment, another experiment assigns",
          one({"experiments": [good_exp, bad_exp]}, "v", {"pax": 1}), ("experiment", "SPLIT", None, "g"))
    check("spec 9 rejected experiment, the other experiment does not apply",
          one({"experiments": [good_exp, bad_exp]}, "v", {}), ("fallback", "DEFAULT", None, None))
    prev, _ = load_config({"rollouts": [other, {"variable": "v", "default": 1}]})
    check("spec 13.3 last good version stays",
          one({"rollouts": [other, {"variable": "v", "default": 2, "rollouts": bad}]}, "v", {}, previous=prev),
          ("default", "DEFAULT", None, 1))
    check("spec 13.3 kill switch replaces the last good version",
          one({"rollouts": [other, {"variable": "v", "enabled": False, "rollouts": bad}]}, "v", {}, previous=prev),
          ("fallback", "DISABLED", None, None))

    def slotted(name, offset, facet=None, span=None):
        var = {"name": name + "V", "facets": ["pax"], "choices": [{"value": 1}]}
        if span is not None:
            var = {"name": name + "V", "facets": ["ts"], "strategy": "timeSliceShuffle",
                   "choices": [{"value": 0, "span": span}, {"value": 1, "span": span}]}
        slot = {"byPercentage": 0.2, "offset": offset}
        if facet:
            slot["facet"] = facet
        return {"domain": "d", "name": name, "state": "PAUSED", "slotting": slot, "variables": [var]}

    ok = ("fallback", "DEFAULT", None, None)
    check("spec 8.3 disjoint slots, one unit", one({"experiments": [slotted("a", 0.1), slotted("b", 0.3)]}, "aV", {}), ok)
    check("spec 8.3 overlap", one({"experiments": [slotted("a", 0.1), slotted("b", 0.2)]}, "aV", {}), "rejected")
    check("spec 8.3 explicit facet = derived facet",
          one({"experiments": [slotted("a", 0.1), slotted("b", 0.3, facet="pax")]}, "aV", {}), ok)
    check("spec 8.3 different slot facets",
          one({"experiments": [slotted("a", 0.1), slotted("b", 0.3, facet="drv")]}, "aV", {}), "rejected")
    check("spec 8.3 windows of one period",
          one({"experiments": [slotted("a", 0.1, span=30), slotted("b", 0.3, span=30)]}, "aV", {}), ok)
    check("spec 8.3 windows of different periods",
          one({"experiments": [slotted("a", 0.1, span=30), slotted("b", 0.3, span=60)]}, "aV", {}), "rejected")
    check("spec 8.3 window vs facet",
          one({"experiments": [slotted("a", 0.1, span=30), slotted("b", 0.3)]}, "aV", {}), "rejected")

    # docs/wire-format.md section 12, byte by byte.
    session = "0f8fad5b-d9cb-469f-a165-70867728950e"
    facets = {"pax": 42, "city": 6, "session": session}
    header = {"clientId": "c1", "seq": 1, "createdAtMs": 1700000001370, "sdk": "turnout-rust",
              "sdkVersion": "0.1.0", "platform": "linux-x86_64", "dropped": 0, "foldOverflow": 0}
    events = [
        {"kind": "decision", "time": 1700000000000, "count": 3, "service": "app", "name": "delay", "value": 60,
         "valueText": "60", "source": "rollout", "experiment": None, "rule": 0, "choice": None, "facets": facets},
        {"kind": "decision", "time": 1700000000120, "count": 1, "service": "app", "name": "color", "value": "green",
         "valueText": '"green"', "source": "experiment", "experiment": "colorTest", "rule": None, "choice": 1,
         "facets": facets},
        {"kind": "track", "time": 1700000001120, "count": 1, "service": "app", "name": "app.paid", "value": 12.5,
         "facets": {"session": session}},
    ]
    want = bytes.fromhex(
        # magic, version, 14 strings: c1 turnout-rust 0.1.0 linux-x86_64 | app city pax session | delay 60 |
        # color "green" colorTest | paid
        "54524e4201 0e 046331 18747572 6e6f75742d72757374 0a302e312e30 186c696e75782d7838365f3634"
        "06617070 0863697479 06706178 0e73657373696f6e 0a64656c6179 043630"
        "0a636f6c6f72 0e22677265656e22 12636f6c6f7254657374 0870616964"
        # 2 shapes: [city int, pax int, session str], [session str]
        "02 03293138 0138"
        # 2 sets: app, shape 0, city 6, pax 42, a new UUID | app, shape 1, facet string 0
        "02 04000c5401 0f8fad5bd9cb469fa16570867728950e 040100"
        # header: strings 0-3, seq 1, created 1700000001370, dropped 0, overflow 0
        "00010203 01 b4b5abfef962 00 00"
        # 3 events: rollout delay x3 | experiment color | track paid (bare) 12.5
        "03 a4b31503000809 00 50f001000a0b0c01 09d00f010d0000000000002940"
        # CRC-32C
        "b2cca6c0")
    got = encode_batch(header, events)
    check("wire 12 encode", got.hex(), want.hex())
    try:
        h, evs = decode_batch(want)
        check("wire 12 decode header", h, header)
        check("wire 12 decode events", events_equal(evs, events), None)
    except DecodeError as e:
        fails.append(f"wire 12 decode: {e}")
    return fails


# ===========================================================================
# The conformance runner.


def json_equal(a, b) -> bool:
    """JSON equality with numbers compared by value (1.0 == 1), booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b  # Python compares int and float exactly
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


DECISION_KEYS = ("value", "source", "experiment", "rule", "choice", "reason", "errorCode")


def decision_equal(got, want) -> bool:
    if set(want) != set(DECISION_KEYS):
        return False
    return all(json_equal(got[k], want[k]) for k in DECISION_KEYS)


class Runner:
    def __init__(self, max_details=8):
        self.passed = self.failed = 0
        self.details = []
        self.max_details = max_details

    def fail(self, text):
        if len(self.details) < self.max_details:
            self.details.append(text)


def schema_validator(schema_path: Path):
    try:
        import jsonschema
    except ImportError:
        return None
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def run_decisions(path: Path, data, runner: Runner, validator):
    passed = failed = 0
    name = path.name
    if validator is not None:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        for err in errors:
            failed += 1
            runner.fail(f"{name}: schema: at {'/'.join(map(str, err.path)) or '(top)'}: {err.message}")
    try:
        cfg, _report = load_config(data["config"])
    except BundleRejected as e:
        n = len(data["cases"])
        runner.fail(f"{name}: the config was rejected as a whole: {e}")
        return passed, failed + n
    for i, case in enumerate(data["cases"]):
        now = case.get("nowMs", data["nowMs"])
        try:
            env = Env(case["facets"], now)
            got = evaluate(cfg, case["variable"], env)
        except FacetError as e:
            got = {"error": str(e)}
        if isinstance(got, dict) and "error" not in got and decision_equal(got, case["expected"]):
            passed += 1
        else:
            failed += 1
            runner.fail(f"{name}: case {i}: variable {case['variable']!r}, facets "
                        f"{json.dumps(case['facets'], ensure_ascii=False)}, nowMs {now}\n"
                        f"    expected {json.dumps(case['expected'], sort_keys=True, ensure_ascii=False)}\n"
                        f"    got      {json.dumps(got, sort_keys=True, ensure_ascii=False)}")
    return passed, failed


def _typed_facets(facets):
    out = {}
    for k, v in facets.items():
        tag, val = batch_facet(k, v)
        out[k] = (tag, _f64_bits(val) if tag == 2 else val)
    return out


def events_equal(got, want):
    """Field-by-field comparison of decoded events with the vector's; the first difference or None."""
    if len(got) != len(want):
        return f"{len(got)} events decoded, {len(want)} expected"
    for i, (g, w) in enumerate(zip(got, want)):
        keys = set(w)
        if g["kind"] == "decision":
            keys |= {"valueText"}
        if set(g) != keys:
            return f"event {i}: members {sorted(g)} vs {sorted(w)}"
        for k in w:
            if k == "facets":
                if _typed_facets(g[k]) != _typed_facets(w[k]):
                    return f"event {i}: facets {g[k]} vs {w[k]}"
            elif k == "value" and g["kind"] == "track":
                if _f64_bits(float(g[k])) != _f64_bits(float(w[k])):
                    return f"event {i}: track value {g[k]!r} vs {w[k]!r}"
            elif k == "value":
                if not json_equal(g[k], w[k]):
                    return f"event {i}: value {g[k]!r} vs {w[k]!r}"
            elif type(g[k]) is not type(w[k]) or g[k] != w[k]:
                return f"event {i}: {k} {g[k]!r} vs {w[k]!r}"
    return None


def run_batches(path: Path, data, runner: Runner):
    passed = failed = 0
    name = path.name
    for case in data.get("cases", []):
        problems = []
        want_bytes = bytes.fromhex(case["hex"])
        try:
            header, events = decode_batch(want_bytes)
            if header != case["header"]:
                problems.append(f"decode: header {header} vs {case['header']}")
            diff = events_equal(events, case["events"])
            if diff:
                problems.append(f"decode: {diff}")
        except DecodeError as e:
            problems.append(f"decode: rejected ({e})")
        try:
            got_bytes = encode_batch(case["header"], case["events"])
            if got_bytes != want_bytes:
                at = next((i for i, (a, b) in enumerate(zip(got_bytes, want_bytes)) if a != b),
                          min(len(got_bytes), len(want_bytes)))
                problems.append(f"encode: bytes differ from offset {at} (got {len(got_bytes)} bytes, "
                                f"want {len(want_bytes)}): got ...{got_bytes[at:at + 16].hex()} "
                                f"want ...{want_bytes[at:at + 16].hex()}")
        except (KeyError, ValueError, AssertionError) as e:
            problems.append(f"encode: {type(e).__name__}: {e}")
        if problems:
            failed += 1
            runner.fail(f"{name}: case {case.get('name')!r}: " + "; ".join(problems))
        else:
            passed += 1
    for case in data.get("invalid", []):
        try:
            decode_batch(bytes.fromhex(case["hex"]))
            got = "accepted"
        except DecodeError as e:
            got = e.kind
        if got == case["error"]:
            passed += 1
        else:
            failed += 1
            runner.fail(f"{name}: invalid case {case.get('name')!r}: expected rejection "
                        f"`{case['error']}`, got `{got}`")
    return passed, failed


def run_sync_file(path: Path, data, runner: Runner):
    """Kind "sync" (docs/sync.md section 10): the host protocol state machine of
    tests/anchors/sync_reference.py, one case per script; (passed, failed, notes)."""
    # sync_reference imports this file as `reference`: run as a script, it is `__main__`,
    # so register it under that name rather than loading a second copy.
    sys.modules.setdefault("reference", sys.modules[__name__])
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import sync_reference
    return sync_reference.run_sync(path, data, runner)


def main(argv):
    root = CONFORMANCE
    if len(argv) == 2 and argv[1] == "--self-test":
        fails = self_test()
        for f in fails:
            print("FAIL " + f)
        print(f"self-test: {len(fails)} failure(s)")
        return 1 if fails else 0
    if len(argv) == 3 and argv[1] == "--vectors":
        root = Path(argv[2])
    elif len(argv) != 1:
        print("usage: reference.py [--vectors DIR | --self-test]   (default: the vectors of tests/conformance)")
        return 2
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    runner = Runner()
    validator = schema_validator(root / index.get("schema", "schema.json"))
    if validator is None:
        print("notice: the `jsonschema` package is not importable; schema validation of the "
              "decision vectors is skipped")
    if index.get("specVersion") != 1:
        print(f"notice: index.json declares specVersion {index.get('specVersion')}; this reference is spec version 1")
    for entry in index["files"]:
        path = root / entry["path"]
        data = json.loads(path.read_text(encoding="utf-8"))
        kind = entry.get("kind")
        notes = []
        if kind == "decisions":
            p, f = run_decisions(path, data, runner, validator)
            total = len(data["cases"])
        elif kind == "batches":
            p, f = run_batches(path, data, runner)
            total = len(data.get("cases", [])) + len(data.get("invalid", []))
        elif kind == "sync":
            p, f, notes = run_sync_file(path, data, runner)
            total = len(data.get("scripts", []))
        else:
            p, f, total = 0, 1, None
            runner.fail(f"{entry['path']}: unknown kind {kind!r}")
        if entry.get("cases") is not None and total is not None and entry["cases"] != total:
            f += 1
            runner.fail(f"{entry['path']}: index.json announces {entry['cases']} cases, the file has {total}")
        print(f"{entry['path']}: {p} passed, {f} failed")
        for note in notes:
            print("  note: " + note)
        runner.passed += p
        runner.failed += f
    if runner.details:
        print("first mismatches:")
        for d in runner.details:
            print("  " + d)
    print(f"{runner.passed} passed, {runner.failed} failed")
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
