"""The security log: refused management calls and failed authentications, kept apart from the
ledger.

A refusal changes nothing, so it writes no event: the log of facts stays the log of what
happened. What an operator or an account's owner still needs to see — someone hammering a key
id, a user trying calls its policies do not allow — is kept here, in one table of the ledger's
own store (``mandate_security_events``, created with the other tables by ``mandate migrate``),
written in batches by a background writer off the request's path and purged after a bounded
retention. Rows hold who (the authenticated caller, or only the key id it claimed), what
(action, resource), why (the refusal's reason and code), from where (source IP, request id),
when, and the account it concerns. Never a secret: a wrong secret is never handed to this
module, only the key id that came with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from mandate.projections.store.ledger_tables import ledger_table

__all__ = ["SECURITY_TABLE", "SecurityEvent", "SecurityLog"]

SECURITY_TABLE: Final = "mandate_security_events"
_COLUMNS: Final = (
    "at",
    "account_id",
    "kind",
    "caller",
    "access_key_id",
    "action",
    "resource",
    "reason",
    "code",
    "source_ip",
    "request_id",
)
_EXPORT_PAGE: Final = 500


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One refusal. ``kind``: ``authentication_failed`` or ``access_denied``; ``at``: UTC."""

    at: datetime
    account_id: str | None
    kind: str
    caller: str | None
    access_key_id: str | None
    action: str | None
    resource: str | None
    reason: str
    code: str | None
    source_ip: str | None
    request_id: str | None

    def row(self) -> tuple[Any, ...]:
        values = asdict(self)
        values["at"] = self.at.isoformat(timespec="microseconds")
        return tuple(values[column] for column in _COLUMNS)


class SecurityLog:
    """The ``mandate_security_events`` table in the ledger's store (SQLite or PostgreSQL)."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self._postgres = isinstance(datastore, PostgresDatastore)
        self._mark = "%s" if self._postgres else "?"
        self.table = ledger_table(datastore, SECURITY_TABLE)

    def create_table(self) -> None:
        ident = (
            "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
            if self._postgres
            else "INTEGER PRIMARY KEY AUTOINCREMENT"
        )
        text = ", ".join(f"{c} TEXT" for c in _COLUMNS if c not in ("at", "kind", "reason"))
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (id {ident}, at TEXT NOT NULL, "
                f"kind TEXT NOT NULL, reason TEXT NOT NULL, {text})"
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {SECURITY_TABLE}_account "
                f"ON {self.table} (account_id, id)"
            )
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {SECURITY_TABLE}_at ON {self.table} (at)")

    def append(self, events: Sequence[SecurityEvent]) -> None:
        """Insert ``events`` in one transaction (the background writer's batch)."""
        if not events:
            return
        marks = ", ".join([self._mark] * len(_COLUMNS))
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                f"INSERT INTO {self.table} ({', '.join(_COLUMNS)}) VALUES ({marks})",  # noqa: S608
                [event.row() for event in events],
            )

    def page(self, account_id: str, *, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The account's events with an id above ``after_id``, oldest first, at most ``limit``."""
        mark = self._mark
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT id, {', '.join(_COLUMNS)} FROM {self.table} "  # noqa: S608
                f"WHERE account_id = {mark} AND id > {mark} ORDER BY id LIMIT {int(limit)}",
                (account_id, after_id),
            )
            rows = cursor.fetchall()
        return [_record(row) for row in rows]

    def iterate(self, account_id: str) -> Iterator[dict[str, Any]]:
        """Every event of the account, oldest first, read page by page (flat memory)."""
        after = 0
        while True:
            rows = self.page(account_id, after_id=after, limit=_EXPORT_PAGE)
            yield from rows
            if len(rows) < _EXPORT_PAGE:
                return
            after = int(rows[-1]["id"])

    def purge(self, before: datetime) -> int:
        """Delete every event older than ``before`` (the retention); how many went."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"DELETE FROM {self.table} WHERE at < {self._mark}",  # noqa: S608
                (before.isoformat(timespec="microseconds"),),
            )
            raw: Any = getattr(cursor, "sqlite_cursor", cursor)  # eventsourcing's wrapper
            return int(raw.rowcount or 0)


def _record(row: Any) -> dict[str, Any]:
    record = {column: row[column] for column in ("id", *_COLUMNS)}
    record["id"] = int(record["id"])
    return record
