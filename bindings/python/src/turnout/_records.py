"""The plain records of the API (:class:`UpdateReport`, :class:`Batch`,
:class:`TrackingStats`), in a module of their own so that both the client
and the poller use them without importing each other."""

from __future__ import annotations

import dataclasses
import typing

from ._errors import Problem

__all__ = ["UpdateReport", "Rejected", "Batch", "TrackingStats"]


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A document rejected inside an accepted bundle, and what happened to it."""

    problems: typing.List[Problem]
    """The problems found in it."""
    kept_last_good: bool
    """Its last good version stays in force."""
    kill_switch: bool
    """It said ``"enabled": false``: the kill switch took effect anyway."""

    def __str__(self) -> str:
        kept = " (kill switch honoured)" if self.kill_switch else " (last good version kept)" if self.kept_last_good else ""
        return "; ".join(map(str, self.problems)) + kept


@dataclasses.dataclass(frozen=True)
class UpdateReport:
    """What a config update (or a validation) changed."""

    version: typing.Optional[int]
    """The bundle's ``version``, if it has one."""
    added: typing.List[str]
    """Variables that did not exist before (sorted)."""
    removed: typing.List[str]
    """Variables that no longer exist (sorted)."""
    changed: typing.List[str]
    """Variables whose documents changed (sorted)."""
    rejected: typing.List[Rejected]
    """Documents rejected inside the accepted bundle (``str()`` of one gives a line)."""
    warnings: typing.List[Problem]
    """Things that load but are almost certainly mistakes."""

    @property
    def has_changes(self) -> bool:
        """Whether any variable was added, removed or changed."""
        return bool(self.added or self.removed or self.changed)

    @classmethod
    def _of(cls, r: typing.Any) -> "UpdateReport":
        """From the generated record (the same shape as the JSON form)."""
        return cls._from_json({k: getattr(r, k) for k in ("version", "added", "removed", "changed", "rejected", "warnings")})

    @classmethod
    def _from_json(cls, r: typing.Mapping[str, typing.Any]) -> "UpdateReport":
        """From the engine's form: its JSON (the ``report`` of a sync ``applied``
        notice) or the attributes of the generated record."""

        def field(x: typing.Any, name: str) -> typing.Any:
            return x[name] if isinstance(x, typing.Mapping) else getattr(x, name)

        def problem(p: typing.Any) -> Problem:
            return Problem(field(p, "document"), field(p, "field"), field(p, "message"))

        rejected = [
            Rejected([problem(p) for p in field(j, "problems")], field(j, "kept_last_good"), field(j, "kill_switch"))
            for j in r["rejected"]
        ]
        warnings = [problem(w) for w in r["warnings"]]
        return cls(r["version"], list(r["added"]), list(r["removed"]), list(r["changed"]), rejected, warnings)


@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch of events to upload (``application/octet-stream``), then
    :meth:`Client.ack` or :meth:`Client.nack` its ``seq``."""

    seq: int
    """Sequence number; with the client id, the collector's de-duplication key."""
    bytes: bytes
    """The encoded batch (docs/wire-format.md)."""
    events: int
    """How many events (folded records) it holds."""


@dataclasses.dataclass(frozen=True)
class TrackingStats:
    """Event queue counters; every loss is counted."""

    recorded: int
    folded: int
    dropped: int
    fold_overflow: int
    queued: int
    in_flight: int
    retrying: int
