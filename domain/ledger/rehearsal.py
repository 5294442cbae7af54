"""Rehearsing a command: run it to the point of saving, and keep its events instead.

A what-if (``POST /v1/accounts/{a}/what-if``) must answer what a change *would* do, so it
runs the very command that would make it — the same lookups, guards and refusals, the same
events — with saving replaced by collecting. ``LedgerCore._commit`` hands the events of a
save made inside ``rehearse`` to the collector and records nothing: no log append, no
snapshot, no notification. Aggregates are deep copies for each command (``core.py``), so
the cache never sees the rehearsed change either.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["rehearse", "rehearsing"]

_collector: ContextVar[list[Any] | None] = ContextVar("mandate_rehearsal", default=None)


def rehearsing() -> list[Any] | None:
    """The events of the command being rehearsed, or None outside ``rehearse``."""
    return _collector.get()


def rehearse(run: Callable[[], object]) -> list[Any]:
    """Run ``run`` (one ledger command) saving nothing; answer the events it would save, in
    order. Whatever the command refuses with is raised as it would be for real."""
    events: list[Any] = []
    token = _collector.set(events)
    try:
        run()
    finally:
        _collector.reset(token)
    return events
