"""Mandate's own tables beside the ledger's events: where each one is named, once.

The idempotency keys, the security log, the wrapped data keys and the key fingerprints live
in the ledger's datastore. On PostgreSQL each is qualified by the ledger's schema (``public``
unless the URL names one), so every process and ``mandate migrate`` reach the same table;
SQLite has no schemas, and the bare name is the table.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

__all__ = ["ledger_table"]


def ledger_table(datastore: SQLiteDatastore | PostgresDatastore, name: str) -> str:
    """``name`` as the ledger's datastore spells it in a statement."""
    if isinstance(datastore, PostgresDatastore):
        return f'"{datastore.schema or "public"}".{name}'
    return name
