"""The temporal index's open facts: kept in memory, opened, closed and written a batch at a time.

``FactBook`` is the bookkeeping under the event handlers (``temporal_index``): it opens a fact,
closes one (or every fact of a subject), replaces one by its successor at the same instant,
and writes a batch's new facts, closes and policy documents in the worker's transaction.

The open facts are kept in memory (loaded from the table when the projection starts), a
batch's inserts and closes are buffered, and they are written with ``executemany`` in the
worker's transaction, together with the batch's tracking position. Sessions are many and
short-lived, so an open session fact is forgotten from memory once the ledger time passes its
expiration by ``SESSION_RETENTION`` (as the live index forgets it); a ``SessionRevoked``
arriving later is then not recorded. That changes no decision — the session was dead by its
expiry at every later instant, and that is the reason given — and the rule depends only on
ledger time, so a projection resumed from its table writes exactly what one that never
stopped writes.

A fresh copy caught up in the large transactions of a catch-up (``CATCH_UP_BATCH`` events)
drops ``DEFERRED_INDEXES`` in its first one and builds them in the first smaller one (the
backlog drained), both in the worker's transaction; ``_state`` says they are pending (and the
first batch's size), so a copy reloaded in between builds them all the same. A catch-up whose
log ends on a full batch has no smaller one: its end (``caught_up``, called by the worker and
the rebuild once the backlog is drained) builds them.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from mandate.domain.common.identifiers import account_aggregate_id
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.sts.assume_role import SESSION_DURATION_RANGE
from mandate.domain.sts.sessions import session_aggregate_id
from mandate.projections.history.temporal_schema import (
    CLOSE,
    CLOSE_MANY,
    DEFERRED_INDEXES,
    FACT_COLUMNS,
    PAYLOAD,
)
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.sql_projection import CATCH_UP_BATCH

__all__ = ["SESSION_RETENTION", "Fact", "FactBook"]

_DEFERRED_KEY = "deferred_indexes"

SESSION_RETENTION = timedelta(hours=1)
"""How long past its expiration an unrevoked session is kept in memory (as the live index)."""
RETENTION_MICROS = SESSION_RETENTION // timedelta(microseconds=1)
# A session expires at most the longest session duration after it was issued, and it was
# issued before its event's ledger time (valid_from); a day of margin covers clock steps.
# Older open session facts are not even read when the projection loads.
_LOAD_HORIZON_MICROS = (
    timedelta(seconds=SESSION_DURATION_RANGE[1]) + SESSION_RETENTION + timedelta(days=1)
) // timedelta(microseconds=1)


@dataclass(slots=True)
class Fact:
    """One interval: ``valid_to`` and ``closed_position`` are None while it is alive."""

    kind: str
    subject: str
    object: str
    account_id: str
    payload: dict[str, Any]
    valid_from: int
    opened_position: int
    valid_to: int | None = None
    closed_position: int | None = None
    persisted: bool = field(default=False, repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.object)


class FactBook:
    """The open facts, what they are looked up by, and one batch's writes."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str], Fact] = {}
        self._new: list[Fact] = []
        self._closes: list[tuple[int, int, str, str, int, int]] = []
        self._documents: list[tuple[str, str, str]] = []
        self._accounts: dict[UUID, str] = {}  # account aggregate id → account id
        self._owners: dict[str, str] = {}  # user, group or policy id → its account id
        self._user_keys: dict[str, set[str]] = {}
        self._objects: dict[tuple[str, str], set[str]] = {}  # (kind, subject) → open objects
        self._sessions: dict[UUID, str] = {}  # session aggregate id → its AccessKey id
        self._session_expiries: list[tuple[int, str]] = []  # (expiration µs, AccessKey id)
        self._applied = 0  # events of the batch under way
        self._indexes: str = "built"  # or "fresh" (nothing written yet), "deferred"
        self._deferred_batch = 0  # the size of the catch-up's batches while deferred

    # -- loading and writing -------------------------------------------------------------------
    def load(self, store: ReadModelStore, cursor: Any) -> None:
        self.discard()
        self._open = {}
        self._accounts = {}
        self._owners = {}
        self._user_keys = {}
        self._objects = {}
        self._sessions = {}
        self._session_expiries = []
        state = store.execute(
            cursor, "SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",)
        ).fetchone()
        statement = (
            "SELECT kind, subject, object, account_id, payload, valid_from, opened_position"
            " FROM {p}_facts WHERE valid_to IS NULL"
        )
        params: tuple[int, ...] = ()
        if state is not None:  # sessions issued long before now have expired long ago
            statement += " AND (kind <> 'session' OR valid_from >= ?)"
            params = (to_micros(datetime.fromisoformat(state["value"])) - _LOAD_HORIZON_MICROS,)
        rows = store.execute(cursor, statement, params).fetchall()
        self._indexes = self._index_state(store, cursor, rows)
        for row in rows:
            fact = Fact(
                row["kind"],
                row["subject"],
                row["object"],
                row["account_id"],
                json.loads(row["payload"]),
                int(row["valid_from"]),
                int(row["opened_position"]),
                persisted=True,
            )
            self._remember(fact)

    def flush(self, store: ReadModelStore, cursor: Any) -> None:
        if self._indexes == "fresh":
            self._indexes = "built"
            if self._applied >= CATCH_UP_BATCH:  # a catch-up's first batch
                self._defer_indexes(store, cursor)
        self._write_closes(store, cursor)
        store.insert_rows(
            cursor, "_documents", ("policy_id", "version_id", "document"), self._documents
        )
        store.insert_rows(
            cursor,
            "_facts",
            FACT_COLUMNS,
            [
                (
                    f.kind,
                    f.subject,
                    f.object,
                    f.account_id,
                    PAYLOAD.encode(f.payload),
                    f.valid_from,
                    f.valid_to,
                    f.opened_position,
                    f.closed_position,
                )
                for f in self._new
            ],
        )
        for fact in self._new:
            fact.persisted = True
        self._new = []
        self._closes = []
        self._documents = []
        if self._indexes == "deferred" and self._applied < self._deferred_batch:  # drained
            self.build_deferred_indexes(store, cursor)
        self._applied = 0

    def caught_up(self, store: ReadModelStore, cursor: Any) -> None:
        """``SqlProjection.caught_up``: the deferred indexes, whatever the last batch's size."""
        self.build_deferred_indexes(store, cursor)

    def build_deferred_indexes(self, store: ReadModelStore, cursor: Any) -> None:
        """Build the indexes a catch-up deferred (nothing when none is pending)."""
        if self._indexes != "deferred":
            return
        for ddl in DEFERRED_INDEXES.values():
            store.execute(cursor, ddl)
        store.execute(cursor, "DELETE FROM {p}_state WHERE key = ?", (_DEFERRED_KEY,))
        self._indexes = "built"

    def _defer_indexes(self, store: ReadModelStore, cursor: Any) -> None:
        dialect = store.dialect
        for suffix in DEFERRED_INDEXES:
            name = store.prefix + suffix
            index = dialect.identifier(*((store.schema, name) if store.schema else (name,)))
            store.execute(cursor, dialect.composed([dialect.text("DROP INDEX IF EXISTS "), index]))
        store.execute(
            cursor,
            "INSERT INTO {p}_state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_DEFERRED_KEY, str(self._applied)),
        )
        self._indexes = "deferred"
        self._deferred_batch = self._applied

    def _index_state(self, store: ReadModelStore, cursor: Any, open_rows: list[Any]) -> str:
        pending = store.execute(
            cursor, "SELECT value FROM {p}_state WHERE key = ?", (_DEFERRED_KEY,)
        ).fetchone()
        if pending is not None:
            self._deferred_batch = int(pending["value"])
            return "deferred"
        if open_rows or store.execute(cursor, "SELECT 1 FROM {p}_facts LIMIT 1").fetchone():
            return "built"
        return "fresh"

    def _write_closes(self, store: ReadModelStore, cursor: Any) -> None:
        """Close the earlier facts this batch ended: on PostgreSQL one UPDATE over arrays (a
        statement per row would be a round trip per row), on SQLite ``executemany``."""
        if not store.dialect.is_postgres:
            store.executemany(cursor, CLOSE, self._closes)
            return
        if self._closes:
            columns = [list(column) for column in zip(*self._closes, strict=True)]
            store.execute(cursor, CLOSE_MANY, columns)

    def discard(self) -> None:
        self._applied = 0
        self._new = []
        self._closes = []
        self._documents = []

    # -- opening and closing -------------------------------------------------------------------
    def _remember(self, fact: Fact) -> None:
        self._open[fact.key] = fact
        self._objects.setdefault((fact.kind, fact.subject), set()).add(fact.object)
        if fact.kind == "account":
            self._accounts[account_aggregate_id(fact.subject)] = fact.subject
        elif fact.kind in ("user", "group", "policy", "role"):
            self._owners[fact.subject] = fact.account_id
        elif fact.kind == "access_key" and fact.object:
            self._user_keys.setdefault(fact.object, set()).add(fact.subject)
        elif fact.kind == "session":
            self._sessions[session_aggregate_id(fact.subject)] = fact.subject
            heapq.heappush(self._session_expiries, (int(fact.payload["expiration"]), fact.subject))

    def _open_fact(
        self,
        kind: str,
        subject: str,
        obj: str,
        account_id: str,
        payload: dict[str, Any],
        position: int,
        at: int,
    ) -> None:
        fact = Fact(kind, subject, obj, account_id, payload, at, position)
        self._remember(fact)
        self._new.append(fact)

    def _close(self, kind: str, subject: str, obj: str, position: int, at: int) -> Fact | None:
        fact = self._open.pop((kind, subject, obj), None)
        if fact is None:
            return None
        self._objects.get((kind, subject), set()).discard(obj)
        if fact.persisted:
            self._closes.append(
                (at, position, kind, subject, fact.valid_from, fact.opened_position)
            )
        else:
            fact.valid_to = at
            fact.closed_position = position
        if kind == "access_key" and fact.object:
            self._user_keys.get(fact.object, set()).discard(subject)
        elif kind == "session":
            self._sessions.pop(session_aggregate_id(subject), None)
        return fact

    def _replace(
        self, kind: str, subject: str, obj: str, position: int, at: int, **changes: Any
    ) -> None:
        old = self._close(kind, subject, obj, position, at)
        if old is not None:
            self._open_fact(
                kind, subject, obj, old.account_id, {**old.payload, **changes}, position, at
            )

    def _close_all(self, kind: str, subject: str, position: int, at: int) -> None:
        for obj in sorted(self._objects.get((kind, subject), ())):
            self._close(kind, subject, obj, position, at)

    def _replace_named(
        self, kind: str, subject: str, position: int, at: int, **changes: Any
    ) -> None:
        """``_replace`` for a subject whose one open fact is found by kind and subject."""
        for obj in sorted(self._objects.get((kind, subject), ())):
            self._replace(kind, subject, obj, position, at, **changes)

    def _set_fact(
        self,
        kind: str,
        subject: str,
        position: int,
        at: int,
        change: Callable[[list[Any]], None],
        **extra: Any,
    ) -> None:
        """Replace the set-valued fact of ``subject`` by its ``change``d successor."""
        old = self._close(kind, subject, "", position, at)
        items: list[Any] = list(old.payload["items"]) if old is not None else []
        change(items)
        payload = {"items": items, **extra}
        self._open_fact(kind, subject, "", self._owners[subject], payload, position, at)

    # -- sessions ------------------------------------------------------------------------------
    def _forget_expired_sessions(self, before: int) -> None:
        """Drop from memory the open facts of sessions that expired before ``before``."""
        expiries = self._session_expiries
        while expiries and expiries[0][0] < before:
            _, access_key_id = heapq.heappop(expiries)
            for obj in self._objects.pop(("session", access_key_id), set()):
                self._open.pop(("session", access_key_id, obj), None)
            self._sessions.pop(session_aggregate_id(access_key_id), None)
