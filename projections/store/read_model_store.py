"""Where a SQL read model lives: one versioned copy, its tables and its own tracking.

A projection copy is named ``<name>_v<version>`` (``temporal_v1``, ``audit_v3``): its tables
carry that prefix, and its tracking — the last ledger position it applied — is kept by
eventsourcing's tracking recorder *in the same transaction* as its rows, so each event is
applied exactly once and a crash resumes where it stopped.

* PostgreSQL: the copy's tables and its tracking table ``<name>_v<version>_tracking`` sit in
  the ledger's schema.
* SQLite: each copy is a sibling file of the ledger (``mandate.db`` →
  ``mandate.temporal_v1.db``) with its own ``tracking`` table, because eventsourcing's SQLite
  tracking table is keyed only by the upstream application's name: two projections sharing
  one file would overwrite each other's position (LIBRARIES.md).

Which copy readers use is recorded in the ``mandate_projection_versions`` table of the
ledger's own store, so a blue/green rebuild switches every process by one committed row.
SQL is written once as a template (``?`` placeholders, ``{p}`` where a table name starts,
``{i}`` where an index name starts) and composed per store by ``projections.store.statements``:
``psycopg.sql`` on PostgreSQL, its SQLite sibling there; each composition is kept per copy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import (
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import SQLiteDatastore, SQLiteFactory, SQLiteTrackingRecorder
from eventsourcing.utils import Environment
from psycopg.sql import Composed

from mandate.projections.store.outages import bound_store
from mandate.projections.store.statements import Dialect, Fragment, Query, created_table

__all__ = [
    "REGISTRY_TABLE",
    "Dialect",
    "ProjectionRegistry",
    "ReadModelStore",
]

REGISTRY_TABLE = "mandate_projection_versions"
UPSTREAM = "mandate"  # the ledger application's name: what every copy's tracking follows


class _SQLiteCopyRecorder(SQLiteTrackingRecorder):
    """SQLite tracking plus the copy's own tables, created in one go."""

    def __init__(self, datastore: SQLiteDatastore, *, ddl: list[str]) -> None:
        self._ddl = ddl
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self._ddl]


class _PostgresCopyRecorder(PostgresTrackingRecorder):
    """PostgreSQL tracking (in its own table) plus the copy's tables."""

    def __init__(
        self, datastore: PostgresDatastore, *, tracking_table_name: str, ddl: list[Query]
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name)
        self.sql_create_statements.extend(
            statement if isinstance(statement, Composed) else Composed([statement])
            for statement in ddl
            if not isinstance(statement, str)
        )


def _sqlite_copy_path(ledger_path: str, prefix: str) -> str:
    path = Path(ledger_path)
    return str(path.with_name(f"{path.stem}.{prefix}{path.suffix or '.db'}"))


def _is_sqlite(env: Mapping[str, str]) -> bool:
    return env.get("PERSISTENCE_MODULE", "") == "eventsourcing.sqlite"


class ReadModelStore:
    """One copy of a read model on the ledger's store: its tables, tracking and transactions."""

    def __init__(
        self,
        ledger_env: Mapping[str, str],
        name: str,
        version: int,
        ddl: list[str],
        *,
        create: bool = True,
    ) -> None:
        self.name = name
        self.version = version
        self.prefix = f"{name}_v{version}"
        self.ddl = list(ddl)
        self._ledger_env = dict(ledger_env)
        self._queries: dict[str, Query] = {}
        self._inserts: dict[tuple[str, tuple[str, ...]], Query] = {}
        if _is_sqlite(ledger_env):
            self.dialect = Dialect("sqlite")
            self.schema: str | None = None
            self.path: str | None = _sqlite_copy_path(ledger_env["SQLITE_DBNAME"], self.prefix)
            env = {**ledger_env, "SQLITE_DBNAME": self.path}
            factory = SQLiteFactory(Environment(self.prefix, env))
            self.tables = [self.render(statement) for statement in ddl]
            self.recorder: SQLiteTrackingRecorder | PostgresTrackingRecorder = _SQLiteCopyRecorder(
                factory.datastore, ddl=[str(statement) for statement in self.tables]
            )
        else:
            self.dialect = Dialect("postgres")
            self.path = None
            # A copy has one writer (its worker) and short reads: a small pool, which may
            # overflow under load, instead of the ledger's.
            env = {**ledger_env, "POSTGRES_POOL_SIZE": "2"}
            postgres_factory = PostgresFactory(Environment(self.prefix, env))
            self.schema = postgres_factory.datastore.schema or "public"
            self.tables = [self.render(statement) for statement in ddl]
            self.recorder = _PostgresCopyRecorder(
                postgres_factory.datastore,
                tracking_table_name=f"{self.prefix}_tracking",
                ddl=self.tables,
            )
            bound_store(self.recorder, env)  # an outage answers within seconds
        if create:
            self.recorder.create_table()

    # -- transactions ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        """A cursor in one transaction (rows are addressed by column name on both stores)."""
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def compose(self, statement: str, **slots: Fragment) -> Fragment:
        """The statement a template names for this copy, ``{name}`` pieces given."""
        return self.dialect.compose(statement, schema=self.schema, prefix=self.prefix, slots=slots)

    def render(self, statement: str | Fragment, **slots: Fragment) -> Query:
        """What a cursor executes for ``statement``, a template or a composed statement
        (kept per template, unless it has pieces of its own)."""
        if not isinstance(statement, str):
            return self.dialect.query(statement)
        if slots:
            return self.dialect.query(self.compose(statement, **slots))
        query = self._queries.get(statement)
        if query is None:
            composed = self.dialect.frozen(self.compose(statement))
            query = self._queries[statement] = self.dialect.query(composed)
        return query

    def execute(
        self, cursor: Any, statement: str | Fragment, params: Any = (), **slots: Fragment
    ) -> Any:
        cursor.execute(self.render(statement, **slots), params)
        return cursor

    def executemany(self, cursor: Any, statement: str | Fragment, rows: list[Any]) -> None:
        if rows:
            cursor.executemany(self.render(statement), rows)

    def insert_rows(
        self, cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert many rows into ``{p}<table>``: COPY on PostgreSQL (one round trip for the
        batch, instead of one per row), ``executemany`` on SQLite (in-process anyway)."""
        if not rows:
            return
        query = self._inserts.get((table, columns))
        if query is None:
            query = self._inserts[(table, columns)] = self._insert_query(table, columns)
        if self.dialect.is_postgres:
            with cursor.copy(query) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        cursor.executemany(query, rows)

    def table(self, suffix: str) -> Fragment:
        """The name of this copy's table ``{p}<suffix>`` (schema-qualified on PostgreSQL)."""
        name = self.prefix + suffix
        return self.dialect.identifier(*((self.schema, name) if self.schema else (name,)))

    def _insert_query(self, table: str, columns: tuple[str, ...]) -> Query:
        d = self.dialect
        names = d.join(", ", [d.identifier(column) for column in columns])
        if d.is_postgres:
            head, tail = d.text("COPY "), d.text(") FROM STDIN")
            copy = d.composed([head, self.table(table), d.text(" ("), names, tail])
            return d.query(d.frozen(copy))
        values = d.composed([d.text(") VALUES ("), d.placeholders(len(columns)), d.text(")")])
        head = d.text("INSERT INTO ")
        return d.query(d.composed([head, self.table(table), d.text(" ("), names, values]))

    def query(self, statement: str | Fragment, params: Any = (), **slots: Fragment) -> list[Any]:
        with self.transaction(commit=False) as cursor:
            return list(self.execute(cursor, statement, params, **slots).fetchall())

    # -- tracking ------------------------------------------------------------------------------
    def position(self) -> int:
        """The last ledger position this copy applied (0 when it has applied nothing)."""
        return int(self.recorder.max_tracking_id(UPSTREAM) or 0)

    def record_position(self, cursor: Any, position: int) -> None:
        """Track ``position`` inside the caller's transaction (fails if it does not advance)."""
        self.recorder._insert_tracking(cursor, Tracking(UPSTREAM, position))

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self.recorder.datastore.close()

    def drop(self) -> None:
        """Remove this copy: its file on SQLite, its tables on PostgreSQL."""
        if self.path is not None:
            self.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path + suffix)
            return
        tables = [*self.table_names(), f"{self.prefix}_tracking"]
        dialect = self.dialect
        with self.transaction(commit=True) as cursor:
            for table in tables:
                name = dialect.identifier(self.schema or "public", table)
                drop = dialect.composed([dialect.text("DROP TABLE IF EXISTS "), name])
                cursor.execute(dialect.query(drop))
        self.close()

    def table_names(self) -> list[str]:
        """This copy's tables (without the tracking table), as its DDL creates them."""
        return [
            self.prefix + suffix for suffix in map(created_table, self.ddl) if suffix is not None
        ]


class ProjectionRegistry:
    """Which version of each projection readers use, kept in the ledger's own store."""

    _CREATE = "CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    _ACTIVE = "SELECT name, version FROM {table}"
    _ACTIVATE_IF_ABSENT = (
        "INSERT INTO {table} (name, version) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
    )
    _ACTIVATE = (
        "INSERT INTO {table} (name, version) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET version = excluded.version"
    )

    def __init__(self, ledger_datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = ledger_datastore
        if isinstance(ledger_datastore, PostgresDatastore):
            self.dialect = Dialect("postgres")
            table = self.dialect.identifier(ledger_datastore.schema or "public", REGISTRY_TABLE)
        else:
            self.dialect = Dialect("sqlite")
            table = self.dialect.identifier(REGISTRY_TABLE)
        self._table = table

    def _query(self, template: str) -> Query:
        statement = self.dialect.compose(
            template, schema=None, prefix="", slots={"table": self._table}
        )
        return self.dialect.query(statement)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._query(self._CREATE))

    def active(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._query(self._ACTIVE))
            return {row["name"]: int(row["version"]) for row in cursor.fetchall()}

    def activate_if_absent(self, name: str, version: int) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._query(self._ACTIVATE_IF_ABSENT), (name, version))

    def activate(self, name: str, version: int) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._query(self._ACTIVATE), (name, version))
