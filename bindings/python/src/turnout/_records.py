"""The plain records of the API (:class:`UpdateReport`, :class:`Batch`,
:class:`TrackingStats`), in a module of their own so that both the client
and the poller use them without importing each other."""

from __future__ import annotations

import dataclasses
import typing

__all__ = ["UpdateReport", "Batch", "TrackingStats"]


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
    rejected: typing.List[str]
    """Documents rejected inside the accepted bundle, one line each."""
    warnings: typing.List[str]
    """Things that load but are almost certainly mistakes."""

    @property
    def has_changes(self) -> bool:
        """Whether any variable was added, removed or changed."""
        return bool(self.added or self.removed or self.changed)

    @classmethod
    def _of(cls, r: typing.Any) -> "UpdateReport":
        return cls(r.version, list(r.added), list(r.removed), list(r.changed), list(r.rejected), list(r.warnings))

    @classmethod
    def _from_json(cls, r: typing.Mapping[str, typing.Any]) -> "UpdateReport":
        """From the engine's JSON form (the ``report`` of a sync ``applied``
        notice): each rejected document's problems on one line, ``; ``-separated."""

        def text(p: typing.Mapping[str, str]) -> str:
            return ": ".join(x for x in (p["document"], p["field"], p["message"]) if x)

        rejected = ["; ".join(map(text, j["problems"])) for j in r["rejected"]]
        return cls(r["version"], r["added"], r["removed"], r["changed"], rejected, [text(w) for w in r["warnings"]])


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
