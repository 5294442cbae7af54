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
SQL is written once with ``?`` placeholders (``Dialect.sql`` turns them into psycopg's),
``{p}`` where a table name starts (schema-qualified on PostgreSQL) and ``{i}`` where an index
name starts (never qualified: an index lives in its table's schema).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import (
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import SQLiteDatastore, SQLiteFactory, SQLiteTrackingRecorder
from eventsourcing.utils import Environment

from projections.store.outages import bound_store

__all__ = [
    "REGISTRY_TABLE",
    "Dialect",
    "ProjectionRegistry",
    "ReadModelStore",
]

REGISTRY_TABLE = "mandate_projection_versions"
UPSTREAM = "mandate"  # the ledger application's name: what every copy's tracking follows


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few differences between SQLite and PostgreSQL that the read models meet."""

    name: Literal["sqlite", "postgres"]

    def sql(self, statement: str) -> str:
        return statement if self.name == "sqlite" else statement.replace("?", "%s")

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"


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
        self, datastore: PostgresDatastore, *, tracking_table_name: str, ddl: list[str]
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name)
        from psycopg.sql import SQL, Composed

        self.sql_create_statements.extend(Composed([SQL(statement)]) for statement in ddl)


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
        self._ledger_env = dict(ledger_env)
        if _is_sqlite(ledger_env):
            self.dialect = Dialect("sqlite")
            self.path: str | None = _sqlite_copy_path(ledger_env["SQLITE_DBNAME"], self.prefix)
            env = {**ledger_env, "SQLITE_DBNAME": self.path}
            factory = SQLiteFactory(Environment(self.prefix, env))
            self.qualified_prefix = self.prefix
            self.tables = [self.render(statement) for statement in ddl]
            self.recorder: SQLiteTrackingRecorder | PostgresTrackingRecorder = _SQLiteCopyRecorder(
                factory.datastore, ddl=self.tables
            )
        else:
            self.dialect = Dialect("postgres")
            self.path = None
            # A copy has one writer (its worker) and short reads: a small pool, which may
            # overflow under load, instead of the ledger's.
            env = {**ledger_env, "POSTGRES_POOL_SIZE": "2"}
            postgres_factory = PostgresFactory(Environment(self.prefix, env))
            schema = postgres_factory.datastore.schema or "public"
            self.qualified_prefix = f'"{schema}".{self.prefix}'
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

    def render(self, statement: str) -> str:
        """Name this copy's tables and indexes in ``statement``; psycopg's placeholders."""
        named = statement.replace("{p}", self.qualified_prefix).replace("{i}", self.prefix)
        return self.dialect.sql(named)

    def execute(self, cursor: Any, statement: str, params: Any = ()) -> Any:
        cursor.execute(self.render(statement), params)
        return cursor

    def executemany(self, cursor: Any, statement: str, rows: list[Any]) -> None:
        if rows:
            cursor.executemany(self.render(statement), rows)

    def insert_rows(
        self, cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert many rows into ``{p}<table>``: COPY on PostgreSQL (one round trip for the
        batch, instead of one per row), ``executemany`` on SQLite (in-process anyway)."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.dialect.is_postgres:
            with cursor.copy(self.render(f"COPY {{p}}{table} ({names}) FROM STDIN")) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" for _ in columns)
        cursor.executemany(
            self.render(f"INSERT INTO {{p}}{table} ({names}) VALUES ({marks})"),  # noqa: S608
            rows,
        )

    def query(self, statement: str, params: Any = ()) -> list[Any]:
        with self.transaction(commit=False) as cursor:
            return list(self.execute(cursor, statement, params).fetchall())

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
        with self.transaction(commit=True) as cursor:
            for table in tables:
                cursor.execute(f'DROP TABLE IF EXISTS "{self._schema()}"."{table}"')
        self.close()

    def table_names(self) -> list[str]:
        names = []
        for statement in self.tables:
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.append(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
        return [name.split("(")[0].split(".")[-1].strip('"') for name in names]

    def _schema(self) -> str:
        datastore = self.recorder.datastore
        assert isinstance(datastore, PostgresDatastore)
        return datastore.schema or "public"


class ProjectionRegistry:
    """Which version of each projection readers use, kept in the ledger's own store."""

    def __init__(self, ledger_datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = ledger_datastore
        is_sqlite = isinstance(ledger_datastore, SQLiteDatastore)
        self.dialect = Dialect("sqlite" if is_sqlite else "postgres")

    def _table(self) -> str:
        if isinstance(self.datastore, PostgresDatastore):
            return f'"{self.datastore.schema or "public"}".{REGISTRY_TABLE}'
        return REGISTRY_TABLE

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table()} "
                "(name TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )

    def active(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT name, version FROM {self._table()}")  # noqa: S608 (our name)
            return {row["name"]: int(row["version"]) for row in cursor.fetchall()}

    def activate_if_absent(self, name: str, version: int) -> None:
        statement = self.dialect.sql(
            f"INSERT INTO {self._table()} (name, version) VALUES (?, ?) "  # noqa: S608
            "ON CONFLICT (name) DO NOTHING"
        )
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(statement, (name, version))

    def activate(self, name: str, version: int) -> None:
        statement = self.dialect.sql(
            f"INSERT INTO {self._table()} (name, version) VALUES (?, ?) "  # noqa: S608
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version"
        )
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(statement, (name, version))
