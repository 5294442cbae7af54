"""Fences: aggregates a command read and decided on, saved only if none of them moved.

Optimistic concurrency protects what a command *writes*: two saves extending one aggregate
at one version cannot both commit. It does not protect what a command only *read*. AssumeRole
through an entrustment writes a new ``Session`` and reads the entrustment (and the
delegations reaching its caller); a revocation committed between that read and the save
would leave ``SessionIssued`` after ``EntrustmentRevoked`` in the log. So the command hands
the save, beside its events, a ``Fence`` per aggregate it depends on: the version it read.
The store's recorder checks, in the very transaction that inserts the events and after
their insert (the events table's lock held on PostgreSQL, the write lock on SQLite, so no
other save can commit in between), that no fenced aggregate has an event beyond its
version; if one has, the transaction rolls back whole with ``FenceBroken``, an
``IntegrityError``, so group commit saves the rest of its batch without this command and
``@command`` runs the command again — against the moved aggregate, which refuses it. The
revocation is never delayed or refused: it either commits first (and the re-run refuses the
session) or after the session (and the log shows the session before it, as it happened).

Why not an event on the entrustment in the same save (a "lease" touch)? Every AssumeRole
under one contract would then extend one aggregate: concurrent ones would conflict with
each other and re-run (409 after four), and every session would add an event to the
contract's history, the projections and the audit trail. A fence writes nothing: concurrent
sessions under one contract commit side by side, and only a change of a fenced aggregate
makes a save re-run. The check is one indexed read per save that carries fences.

The domain knows no SQL: how a recorder checks a fence is the store's business
(``projections.store.idempotency``). A recorder that does not check them (the in-memory one
of unit tests) saves as before, leaving only the command's own checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import IntegrityError

__all__ = ["FENCES_KWARG", "Fence", "FenceBroken"]

FENCES_KWARG = "fences"
"""The ``insert_events`` keyword under which a save carries its ``Fence``s."""


@dataclass(frozen=True, slots=True)
class Fence:
    """The save commits only if aggregate ``originator_id`` has no event beyond ``version``."""

    originator_id: UUID
    version: int


class FenceBroken(IntegrityError):
    """An aggregate the command decided on changed before its save committed: decide again."""
