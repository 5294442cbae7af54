"""The wrapped data keys, in the ledger's own store: ``mandate_data_keys``.

A small mutable table beside the log (never in it): a row per data key, holding the key only
wrapped under a key-encryption key, and that KEK's id, so the KEK can rotate by re-wrapping
these rows while the sealed secrets in the immutable events stay as they are
(``domain.identity.keyring``). Created by ``mandate migrate`` (by ``serve`` on SQLite).

``rewrap`` runs in one transaction that first takes the table's write lock — PostgreSQL's
``EXCLUSIVE`` lock, which still lets readers read, or SQLite's write lock — so concurrent
rotations queue and the later one reads what the earlier one committed.

``erase`` destroys a personal-data key (crypto-shredding): the row stays as a tombstone whose
``wrapped`` is empty and ``kek_id`` is ``erased``, so the key's id is never reused and every
process reading the row knows it is gone. (The old wrapped bytes may linger in database pages
until PostgreSQL vacuums or SQLite reuses them, and in backups: expire backups of this table
within your erasure deadline.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from mandate.domain.identity.keyring import ERASED_KEK, WrappedDataKey
from mandate.projections.store.ledger_tables import ledger_table

__all__ = ["DATA_KEY_TABLE", "DataKeyStore", "DataKeysMissing"]

DATA_KEY_TABLE: Final = "mandate_data_keys"
_COLUMNS: Final = "id, kek_id, wrapped, created_at, rewrapped_at"


class DataKeysMissing(Exception):
    """The store has no data key table: ``mandate migrate`` has not run on it."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row(row: Mapping[str, Any]) -> WrappedDataKey:
    return WrappedDataKey(
        id=row["id"],
        kek_id=row["kek_id"],
        wrapped=row["wrapped"],
        created_at=row["created_at"],
        rewrapped_at=row["rewrapped_at"],
    )


class DataKeyStore:
    """``mandate_data_keys`` on the ledger's datastore (SQLite or PostgreSQL)."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self._postgres = isinstance(datastore, PostgresDatastore)
        self._table = ledger_table(datastore, DATA_KEY_TABLE)
        self._mark = "%s" if self._postgres else "?"

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} (id TEXT PRIMARY KEY, "
                "kek_id TEXT NOT NULL, wrapped TEXT NOT NULL, created_at TEXT NOT NULL, "
                "rewrapped_at TEXT)"
            )

    def _select(self, where: str = "", params: tuple[str, ...] = ()) -> list[WrappedDataKey]:
        try:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT {_COLUMNS} FROM {self._table} {where}", params)  # noqa: S608
                return [_row(row) for row in cursor.fetchall()]
        except Exception as error:
            if self._exists():
                raise
            raise DataKeysMissing(
                f"the store has no {DATA_KEY_TABLE} table: run `mandate migrate` first"
            ) from error

    def _exists(self) -> bool:
        if self._postgres:
            query = "SELECT to_regclass(%s) IS NOT NULL AS found"
        else:
            query = "SELECT count(*) > 0 AS found FROM sqlite_master WHERE name = ?"
        name = self._table if self._postgres else DATA_KEY_TABLE
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(query, (name,))
            return bool(cursor.fetchall()[0]["found"])

    def all(self) -> list[WrappedDataKey]:
        return self._select("ORDER BY created_at, id")

    def get(self, key_id: str) -> WrappedDataKey | None:
        rows = self._select(f"WHERE id = {self._mark}", (key_id,))
        return rows[0] if rows else None

    def add(self, key_id: str, kek_id: str, wrapped: str) -> bool:
        """Insert the row unless ``key_id`` is taken; whether this call inserted it."""
        self.all()  # a missing table is named, not left to the driver's words
        mark = self._mark
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"INSERT INTO {self._table} (id, kek_id, wrapped, created_at) "  # noqa: S608
                f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (id) DO NOTHING",
                (key_id, kek_id, wrapped, _now()),
            )
            # ours iff the stored wrapping is ours (a random nonce makes each one unique)
            cursor.execute(f"SELECT wrapped FROM {self._table} WHERE id = {mark}", (key_id,))  # noqa: S608
            return bool(cursor.fetchall()[0]["wrapped"] == wrapped)

    def rewrap(self, change: Callable[[WrappedDataKey], tuple[str, str] | None]) -> int:
        """Apply ``change`` to every row in one transaction holding the table's write lock;
        the rows it answers ``(kek_id, wrapped)`` for are updated. How many were."""
        self.all()
        mark = self._mark
        changed = 0
        with self.datastore.transaction(commit=True) as cursor:
            if self._postgres:
                cursor.execute(f"LOCK TABLE {self._table} IN EXCLUSIVE MODE")
            else:  # a write first: SQLite's write lock before the read, not an upgrade after
                cursor.execute(f"UPDATE {self._table} SET kek_id = kek_id WHERE 0 = 1")  # noqa: S608
            cursor.execute(f"SELECT {_COLUMNS} FROM {self._table} ORDER BY id")  # noqa: S608
            for row in [_row(found) for found in cursor.fetchall()]:
                update = change(row)
                if update is None:
                    continue
                cursor.execute(
                    f"UPDATE {self._table} SET kek_id = {mark}, wrapped = {mark}, "  # noqa: S608
                    f"rewrapped_at = {mark} WHERE id = {mark} AND kek_id = {mark}",
                    (update[0], update[1], _now(), row.id, row.kek_id),
                )
                changed += 1
        return changed

    def erase(self, key_id: str) -> bool:
        """Overwrite ``key_id``'s wrapped key with nothing (a tombstone); whether this call
        did (False when it was already erased or never existed)."""
        self.all()
        mark = self._mark
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"UPDATE {self._table} SET kek_id = {mark}, wrapped = '', "  # noqa: S608
                f"rewrapped_at = {mark} WHERE id = {mark} AND wrapped <> '' RETURNING id",
                (ERASED_KEK, _now(), key_id),
            )
            return len(cursor.fetchall()) == 1
