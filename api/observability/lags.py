"""How far the SQL projections and the read replica are behind the log's head, in events and
in seconds — what ``/readyz``, ``/metrics`` and ``mandate projections status`` report.

The lag in seconds is how long the oldest event not yet applied has been in the log (0 when
caught up), so a stalled worker shows up even when writes are rare.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from mandate.domain.ledger.application import Ledger
from mandate.projections.store.read_replica import ReplicaReads
from mandate.projections.store.sql_projection import ProjectionWorker

__all__ = ["projection_lags", "replica_lags", "waiting_since"]


def projection_lags(
    ledger: Ledger, workers: list[ProjectionWorker], head: int
) -> dict[str, dict[str, object]]:
    """Each SQL projection's copy, position, and lag behind ``head`` in events and seconds.

    ``stalled`` names the event a projection cannot apply (position, type, error).
    """
    lags: dict[str, dict[str, object]] = {}
    for worker in workers:
        position = worker.position
        stall = worker.known_stall()
        lags[worker.projection.name] = {
            "copy": worker.store.prefix,
            "position": position,
            "lag_events": max(0, head - position),
            "lag_seconds": waiting_since(ledger, position, head),
            "error": str(worker.last_error) if worker.last_error else None,
            "stalled": stall.as_dict() if stall is not None else None,
            # Who applies it: every process follows, one (the lease's holder) applies.
            "runs_here": worker.leading and worker.running,
        }
    return lags


def replica_lags(ledger: Ledger, replica: ReplicaReads, head: int) -> dict[str, Any]:
    """The read replica behind the primary's ``head``: its log and each copy it holds,
    by position and in seconds (how long the oldest event it lacks has been committed)."""
    replica_head = replica.head()
    copies: dict[str, dict[str, object]] = {}
    for name, store in replica.stores.items():
        position = store.position()
        copies[name] = {
            "copy": store.prefix,
            "position": position,
            "lag_events": max(0, head - position),
            "lag_seconds": waiting_since(ledger, position, head),
        }
    return {
        "head": replica_head,
        "lag_events": max(0, head - replica_head),
        "lag_seconds": waiting_since(ledger, replica_head, head),
        "projections": copies,
    }


def waiting_since(ledger: Ledger, position: int, head: int) -> float:
    """Seconds the first event after ``position`` has been in the log (0 at the head)."""
    if position >= head:
        return 0.0
    pending = ledger.recorder.select_notifications(position, 1, inclusive_of_start=False)
    with contextlib.suppress(Exception):  # an event that does not decode has no age to tell
        event: Any = ledger.mapper.to_domain_event(pending[0])
        return round(max(0.0, time.time() - float(event.timestamp.timestamp())), 3)
    return 0.0
