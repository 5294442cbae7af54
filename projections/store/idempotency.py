"""Idempotency keys beside the log: ``mandate_idempotency_keys``, written with the events.

A row per (scope, key): the request's digest, the position of the events it guards, its
expiry, and — once the answer is known — the answer's status and body. The row is inserted by
the ledger's recorder in the very transaction that inserts the command's events (the
recorders below override the hook eventsourcing calls inside that transaction with the same
cursor, as it does for a process application's tracking record), so no crash can leave the
events without their key or the key without its events. A key still held (not expired)
refuses the whole transaction as ``IdempotencyKeyTaken``; an expired row is replaced.

The answer is filled in afterwards (``IdempotencyKeys.answer``): it is the route's answer,
built from the index once the write is applied, so it cannot exist before the commit. A row
without an answer is a request still in flight, or one whose process stopped between the
commit and the answer (``Stored.answered`` is False).

The same hook checks a save's fences (``domain.ledger.fences``): after the events' insert,
under the same lock, one read of the events table's primary key finds any event of a fenced
aggregate beyond the version the command decided on, and refuses the transaction whole as
``FenceBroken`` (the command is then decided again).

Rows expire ``MANDATE_IDEMPOTENCY_TTL_SECONDS`` after they were written; expired rows are
ignored by every read and deleted lazily, a bounded number at a time (``purge``). The table
is created by ``mandate migrate`` (by ``serve`` on SQLite), like the data keys.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from mandate.domain.ledger.fences import FENCES_KWARG, Fence, FenceBroken
from mandate.domain.ledger.idempotency import SAVED_KWARG, GuardedWrite, IdempotencyKeyTaken
from mandate.projections.store.ledger_tables import ledger_table

__all__ = [
    "IDEMPOTENCY_TABLE",
    "IdempotencyKeys",
    "IdempotentPostgresRecorder",
    "IdempotentSQLiteRecorder",
    "Stored",
    "recorder_topic",
]

IDEMPOTENCY_TABLE: Final = "mandate_idempotency_keys"
PURGE_BATCH: Final = 500  # expired rows deleted at most per purge
_COLUMNS: Final = "scope, idem_key, digest, position, created_at, expires_at, status, body"


def _position(guard: GuardedWrite, events: Sequence[StoredEvent], ids: Sequence[int]) -> int:
    """The notification id of the guarded command's last event among ``events``."""
    assert guard.last_event is not None
    originator, version = guard.last_event
    for event, notification_id in zip(events, ids, strict=True):
        if str(event.originator_id) == str(originator) and event.originator_version == version:
            return int(notification_id)
    raise AssertionError("the guarded command's events are not in this transaction")


def _claim(table: str, mark: str) -> str:
    """One statement claiming a key: inserted, or an expired row replaced; ``RETURNING``
    answers no row when a live row holds the key."""
    m = mark
    return (
        f"INSERT INTO {table} AS held ({_COLUMNS}) "  # noqa: S608
        f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}) "
        "ON CONFLICT (scope, idem_key) DO UPDATE SET digest = excluded.digest, "
        "position = excluded.position, created_at = excluded.created_at, "
        "expires_at = excluded.expires_at, status = excluded.status, body = excluded.body "
        "WHERE held.expires_at <= excluded.created_at RETURNING idem_key"
    )


def _moved(table: str, fences: Sequence[Fence], mark: str) -> str:
    """One indexed read of the events table (its primary key): any event of a fenced
    aggregate beyond the version the command read (``domain.ledger.fences``)."""
    beyond = " OR ".join(
        f"(originator_id = {mark} AND originator_version > {mark})" for _ in fences
    )
    return f"SELECT 1 FROM {table} WHERE {beyond} LIMIT 1"  # noqa: S608


def _broken(fences: Sequence[Fence]) -> FenceBroken:
    ids = ", ".join(str(f.originator_id) for f in fences)
    return FenceBroken(f"an aggregate the command decided on changed before its save ({ids})")


def _taken(guard: GuardedWrite) -> IdempotencyKeyTaken:
    return IdempotencyKeyTaken(f"idempotency key {guard.key!r} is held by another request")


class IdempotentSQLiteRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder that also writes the save's idempotency keys, with
    the same cursor in the same transaction as its events."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        fences: list[Fence] = kwargs.get(FENCES_KWARG) or []
        if fences:  # after the insert: this transaction holds the write lock
            params = [v for f in fences for v in (f.originator_id.hex, f.version)]
            c.execute(_moved(self.events_table_name, fences, "?"), params)
            if c.fetchall():
                raise _broken(fences)  # the transaction rolls back whole
        guards: list[GuardedWrite] = kwargs.get(SAVED_KWARG) or []
        if guards and ids is not None:
            claim = _claim(IDEMPOTENCY_TABLE, "?")
            for guard in guards:
                c.execute(claim, _row(guard, _position(guard, stored_events, ids)))
                if not c.fetchall():
                    raise _taken(guard)  # the transaction rolls back whole
        return ids


class IdempotentPostgresRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder that also writes the save's idempotency keys,
    with the same cursor in the same transaction as its events (after their insert, whose
    notification ids it needs; the events table's lock is held, so keys are claimed in
    commit order)."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        if datastore.enable_db_functions:  # its insert function would skip the hook below
            raise ValueError("idempotency keys need POSTGRES_ENABLE_DB_FUNCTIONS off")

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        guards: list[GuardedWrite] = kwargs.get(SAVED_KWARG) or []
        fences: list[Fence] = kwargs.get(FENCES_KWARG) or []
        if not (guards or fences) or ids is None:
            return ids
        try:
            if fences:  # the events table's lock is held: no other save commits meanwhile
                curs.execute(self._moved_statement(fences), self._fence_params(fences))
                if curs.fetchall():
                    raise _broken(fences)
            claim = _claim(ledger_table(self.datastore, IDEMPOTENCY_TABLE), "%s")
            for guard in guards:
                curs.execute(claim, _row(guard, _position(guard, stored_events, ids)))
                if not curs.fetchall():  # (in pipeline mode, this waits for the answer)
                    raise _taken(guard)
        except BaseException:
            # eventsourcing catches what is raised here and re-raises it only after leaving
            # its transaction block, which then commits: fail the transaction on the server
            # first, so that COMMIT rolls back the events too.
            with contextlib.suppress(Exception):
                curs.execute("SELECT 1 / 0")
                curs.fetchall()
            raise
        return ids

    def _moved_statement(self, fences: Sequence[Fence]) -> Composed:
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        return SQL(_moved("{0}", fences, "%s")).format(table)

    def _fence_params(self, fences: Sequence[Fence]) -> list[object]:
        text = self.datastore.originator_id_type == "text"
        return [
            v
            for f in fences
            for v in (str(f.originator_id) if text else f.originator_id, f.version)
        ]


def _row(
    guard: GuardedWrite, position: int | None, status: int | None = None, body: str | None = None
) -> tuple[str, str, str, int | None, float, float, int | None, str | None]:
    return (
        guard.scope,
        guard.key,
        guard.digest,
        position,
        guard.created_at,
        guard.expires_at,
        status,
        body,
    )


def recorder_topic(postgres: bool) -> str:
    """What a store's ``APPLICATION_RECORDER_TOPIC`` names for the ledger's recorder."""
    cls = IdempotentPostgresRecorder if postgres else IdempotentSQLiteRecorder
    return f"{__name__}:{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class Stored:
    """A live key's row: the request it was first used for, and its answer once known."""

    digest: str
    position: int | None
    created_at: float
    expires_at: float
    status: int | None
    body: str | None

    @property
    def answered(self) -> bool:
        return self.status is not None and self.body is not None


def _stored(row: Mapping[str, Any]) -> Stored:
    return Stored(
        digest=row["digest"],
        position=None if row["position"] is None else int(row["position"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        status=None if row["status"] is None else int(row["status"]),
        body=row["body"],
    )


class IdempotencyKeys:
    """``mandate_idempotency_keys`` on the ledger's datastore: reading a key, recording an
    answer, purging expired rows. ``clock`` is the wall clock (seconds), replaceable in tests."""

    def __init__(
        self,
        datastore: SQLiteDatastore | PostgresDatastore,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.datastore = datastore
        self.clock: Callable[[], float] = clock or time.time
        self._table = ledger_table(datastore, IDEMPOTENCY_TABLE)
        self._postgres = isinstance(datastore, PostgresDatastore)
        self._mark = "%s" if self._postgres else "?"

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} (scope TEXT NOT NULL, "
                "idem_key TEXT NOT NULL, digest TEXT NOT NULL, position BIGINT, "
                "created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, "
                "status INTEGER, body TEXT, PRIMARY KEY (scope, idem_key))"
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {IDEMPOTENCY_TABLE}_expiry "
                f"ON {self._table} (expires_at)"
            )

    def get(self, scope: str, key: str) -> Stored | None:
        """The key's live row (None when absent or expired)."""
        m = self._mark
        query = (
            f"SELECT {_COLUMNS} FROM {self._table} "  # noqa: S608
            f"WHERE scope = {m} AND idem_key = {m} AND expires_at > {m}"
        )
        params = (scope, key, self.clock())
        if isinstance(self.datastore, PostgresDatastore):  # autocommit: one round trip
            with self.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(query, params)
                rows = cursor.fetchall()
        else:
            with self.datastore.transaction(commit=False) as lite:
                lite.execute(query, params)
                rows = lite.fetchall()
        return _stored(rows[0]) if rows else None

    def answer(self, guard: GuardedWrite, status: int, body: str) -> bool:
        """Record the answer of ``guard``'s request: on its row written with the events, or,
        when the command recorded no event (nothing to guard), on a row inserted now.
        Whether the row is this request's (False: another request took the key first)."""
        m = self._mark
        if guard.position is None:  # no events were saved: the key is claimed here
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(_claim(self._table, m), _row(guard, None, status, body))
                return bool(cursor.fetchall())
        update = (
            f"UPDATE {self._table} SET status = {m}, body = {m} "  # noqa: S608
            f"WHERE scope = {m} AND idem_key = {m} AND digest = {m} AND position = {m} "
            "RETURNING idem_key"
        )
        params = (status, body, guard.scope, guard.key, guard.digest, guard.position)
        if isinstance(self.datastore, PostgresDatastore):
            # Pipelined, and without waiting for its WAL flush: an answer lost in a database
            # crash is the lost-answer case (the write stands, its position is answered).
            with (
                self.datastore.get_connection() as conn,
                conn.pipeline(),
                conn.transaction(),
                conn.cursor() as cursor,
            ):
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(update, params)
                return bool(cursor.fetchall())
        with self.datastore.transaction(commit=True) as lite:
            lite.execute(update, params)
            return bool(lite.fetchall())

    def purge(self, limit: int = PURGE_BATCH) -> int:
        """Delete at most ``limit`` expired rows; how many were."""
        m = self._mark
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"DELETE FROM {self._table} WHERE (scope, idem_key) IN ("  # noqa: S608
                f"SELECT scope, idem_key FROM {self._table} WHERE expires_at <= {m} "
                f"LIMIT {int(limit)})",
                (self.clock(),),
            )
            return _changed(cursor)


def _changed(cursor: SQLiteCursor | Cursor[DictRow]) -> int:
    """Rows the last statement changed (eventsourcing's SQLite cursor has no ``rowcount``)."""
    if isinstance(cursor, SQLiteCursor):
        cursor.execute("SELECT changes() AS n")
        return int(cursor.fetchall()[0]["n"])
    return max(0, cursor.rowcount)
