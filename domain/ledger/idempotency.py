"""Idempotency keys recorded in the very transaction that saves a command's events.

A client's retry must never write twice, and a crash must never leave events without the
key that guards them (the retry would write again) or a key without its events (the retry
would be answered a write that never happened). So the caller (the API) hands the ledger a
``GuardedWrite`` for the command it is about to run (``guarded_by``); the command's save
carries it, beside its events, to the store (``ProcessingEvent.saved_kwargs``, which
eventsourcing passes to the recorder's ``insert_events``), whose recorder writes the key's
row in the same transaction, with the position of the command's last event. A key that is
already held (another request with it committed first) refuses that transaction as
``IdempotencyKeyTaken``: nothing of the command is saved, and ``@command`` does not re-run
it. The domain knows no SQL: what a row looks like is the store's business
(``projections.store.idempotency``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

__all__ = [
    "SAVED_KWARG",
    "GuardedWrite",
    "IdempotencyKeyTaken",
    "current_guard",
    "guarded_by",
]

SAVED_KWARG = "idempotency"
"""The ``insert_events`` keyword under which a save carries its ``GuardedWrite``s."""


class IdempotencyKeyTaken(IntegrityError):
    """Another request holding the same key committed first: this save is refused whole.

    An ``IntegrityError`` so that group commit saves the rest of its batch again without it;
    ``@command`` re-raises it instead of deciding again (a re-run would meet the same key).
    """


class GuardedWrite:
    """One request's key: who (``scope``), which key, the request's digest and its lifetime.

    ``last_event`` is set by the save that carries it (the command's last event, whose
    notification id is the command's position); ``position`` once that save committed.
    """

    __slots__ = ("created_at", "digest", "expires_at", "key", "last_event", "position", "scope")

    def __init__(
        self, scope: str, key: str, digest: str, *, created_at: float, expires_at: float
    ) -> None:
        self.scope = scope
        self.key = key
        self.digest = digest
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_event: tuple[UUID, int] | None = None
        self.position: int | None = None


_guard: ContextVar[GuardedWrite | None] = ContextVar("mandate_idempotency_guard", default=None)


def current_guard() -> GuardedWrite | None:
    """The key the command running in this context must be saved with, if any."""
    return _guard.get()


@contextmanager
def guarded_by(guard: GuardedWrite) -> Iterator[GuardedWrite]:
    """Run a command whose save records ``guard`` in the same transaction as its events."""
    token = _guard.set(guard)
    try:
        yield guard
    finally:
        _guard.reset(token)
