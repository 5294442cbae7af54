"""Ledger time (docs/design.md §4) and how the SQL read models store it.

The ledger time of position p is max(event timestamp, ledger time of p-1): monotonic in
commit order, so intervals built from it never invert, whatever two writers' clocks say.
Every reader of the log — the live index, the SQL projections, the audit verifier —
advances it with ``ledger_time_after``, so they all agree on the instant of each position.
Stored as microseconds since the epoch: exact, ordered and indexable on every store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["from_micros", "ledger_time_after", "to_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ledger_time_after(previous: datetime | None, timestamp: datetime) -> datetime:
    """The ledger time of an event stamped ``timestamp`` that follows ``previous``."""
    return timestamp if previous is None or timestamp > previous else previous


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def format_instant(moment: datetime) -> str:
    """An instant as RFC 3339 in UTC (``2026-11-28T02:41:07Z``, microseconds when present)."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
