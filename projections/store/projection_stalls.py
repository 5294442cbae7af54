"""What stops a projection: an event it cannot apply (``Stall``), and where that is recorded.

A stall is deterministic, so it is never retried: the worker raises ``EventNotApplicable``
until the copy is replaced. The stall is also written to the copy's ``_state`` table (and
cleared by the next batch that commits), so a process that does not run the worker can name
it; the same table carries the ledger time of the last position applied. Kept apart from
the worker so the follower and the CLI can name a stall without the worker's machinery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import DataError

from mandate.projections.store.read_model_store import ReadModelStore

__all__ = [
    "ROWS_REFUSED",
    "STALL_KEY",
    "STATE_DDL",
    "EventNotApplicable",
    "Stall",
    "clear_state",
    "event_type_of",
    "put_state",
    "read_state",
    "record_stall",
    "recorded_stall",
]

STATE_DDL = "CREATE TABLE IF NOT EXISTS {p}_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
STALL_KEY = "stalled"
_PUT_STATE = (
    "INSERT INTO {p}_state (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_GET_STATE = "SELECT value FROM {p}_state WHERE key = ?"
_CLEAR_STATE = "DELETE FROM {p}_state WHERE key = ?"

# Errors by which a store refuses a batch's *rows* (a value it cannot hold), as opposed to
# an outage: the batch is narrowed to one event at a time to find the event, which stalls.
ROWS_REFUSED = (DataError, ValueError, TypeError, ArithmeticError)


def event_type_of(topic: str) -> str:
    """``mandate:RoleSessionsRevoked.v1`` → ``RoleSessionsRevoked`` (known before decoding)."""
    name = topic.rpartition(":")[2]
    head, dot, version = name.rpartition(".v")
    return head if dot and version.isdigit() else name


@dataclass(frozen=True, slots=True)
class Stall:
    """Where a projection (or the decision index) stopped: the event it cannot apply, why."""

    position: int
    event_type: str
    error: str

    def __str__(self) -> str:
        return f"position {self.position} ({self.event_type}): {self.error}"

    def as_dict(self) -> dict[str, object]:
        return {"position": self.position, "event_type": self.event_type, "error": self.error}


class EventNotApplicable(Exception):
    """An event the projection cannot apply: the worker stalls at its position.

    For the audit trail this means the log no longer explains itself — an event it cannot
    name — and recording something vague into a signed chain would be worse than stopping.
    """

    def __init__(self, position: int, reason: str, *, event_type: str | None = None) -> None:
        where = f"position {position}" + (f" ({event_type})" if event_type else "")
        super().__init__(f"{where}: {reason}")
        self.position = position
        self.event_type = event_type
        self.reason = reason


def put_state(store: ReadModelStore, cursor: Any, key: str, value: str) -> None:
    """Set ``key`` of the copy's ``_state`` inside the caller's transaction."""
    store.execute(cursor, _PUT_STATE, (key, value))


def clear_state(store: ReadModelStore, cursor: Any, key: str) -> None:
    store.execute(cursor, _CLEAR_STATE, (key,))


def read_state(store: ReadModelStore, key: str, cursor: Any = None) -> str | None:
    """The value of ``key`` in the copy's ``_state`` (in ``cursor``'s transaction if given)."""
    if cursor is not None:
        row = store.execute(cursor, _GET_STATE, (key,)).fetchone()
        return str(row["value"]) if row else None
    rows = store.query(_GET_STATE, (key,))
    return str(rows[0]["value"]) if rows else None


def recorded_stall(store: ReadModelStore) -> Stall | None:
    """The stall a worker (of any process) recorded in the copy, if any."""
    value = read_state(store, STALL_KEY)
    if value is None:
        return None
    fields = json.loads(value)
    return Stall(int(fields["position"]), str(fields["event_type"]), str(fields["error"]))


def record_stall(store: ReadModelStore, cursor: Any, stall: Stall) -> None:
    put_state(store, cursor, STALL_KEY, json.dumps(stall.as_dict()))
