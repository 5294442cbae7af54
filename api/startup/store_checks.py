"""Start-up checks against PostgreSQL: which part of the connection failed, and the DDL lock.

The connection pool only says "couldn't get a connection after 5.00 sec" whatever went
wrong, so an operator who mistyped the port, the database or the role saw the same words and a
hint about migrations. ``probe`` opens one plain connection before the pool does and turns
libpq's answer into one line naming the part at fault (host, port, database, role or
password) and what to check. libpq gives no SQLSTATE for a refused start-up, so its message
is read; the SQLSTATE is used when there is one.

``migration_lock`` serialises ``mandate migrate``: PostgreSQL's ``CREATE … IF NOT EXISTS`` is
not safe against itself (two at once can fail on a unique index of the catalog), so every
migrate of one schema takes the same advisory lock around its DDL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

import psycopg
from psycopg import sql

from mandate.api.settings import StoreConfig

__all__ = ["ConnectionDiagnosis", "StoreUnreachable", "diagnose", "migration_lock", "probe"]

Part = Literal["host", "port", "database", "role", "password", "server", "schema"]

EVENTS_TABLE: Final = "mandate_events"  # eventsourcing names it after the application

# pg_advisory_lock(int, int): a constant for Mandate's migrations, and the schema's hash.
_MIGRATION_LOCK_CLASS: Final = 0x4D414E44  # "MAND"
_START_TIMEOUT: Final = 5


class StoreUnreachable(Exception):
    """PostgreSQL refused or never answered the connection; the message says which part."""

    def __init__(self, diagnosis: ConnectionDiagnosis) -> None:
        super().__init__(diagnosis.line)
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class ConnectionDiagnosis:
    part: Part
    line: str


def _connect_kwargs(config: StoreConfig) -> dict[str, str]:
    env = config.env
    return {
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "dbname": env["POSTGRES_DBNAME"],
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        # start-up only: a slow network gets longer than a request's bounded wait
        "connect_timeout": str(_START_TIMEOUT),
    }


def diagnose(error: psycopg.Error, config: StoreConfig) -> ConnectionDiagnosis:
    """The part of ``config`` that ``error`` (from connecting) points at, and a hint.

    Never includes the password, only whether one was given.
    """
    env = config.env
    host, port = env["POSTGRES_HOST"], env["POSTGRES_PORT"]
    database, role = env["POSTGRES_DBNAME"], env["POSTGRES_USER"]
    where = f"PostgreSQL at {host}:{port}"
    text = str(error)
    state = error.sqlstate or ""
    url = "in MANDATE_DATABASE_URL"
    if state == "3D000" or re.search(r'database "[^"]*" does not exist', text):
        return ConnectionDiagnosis(
            "database",
            f"{where} answers, but has no database {database!r}: check the database name "
            f"{url}, or create it (createdb {database})",
        )
    if state == "28P01" or "password authentication failed" in text:
        return ConnectionDiagnosis(
            "password",
            f"{where} refused the password for role {role!r}: check the password {url}",
        )
    if "no password supplied" in text or "password is required" in text:
        return ConnectionDiagnosis(
            "password",
            f"{where} asks role {role!r} for a password and none was given: add it {url}",
        )
    if re.search(r'role "[^"]*" does not exist', text) or state == "28000":
        return ConnectionDiagnosis(
            "role",
            f"{where} answers, but refuses role {role!r} (no such role, or pg_hba.conf does "
            f"not admit it): check the user name {url}",
        )
    if "failed to resolve host" in text or "could not translate host name" in text:
        return ConnectionDiagnosis(
            "host",
            f"the host {host!r} cannot be resolved: check the host name {url} and DNS",
        )
    if "Connection refused" in text:
        return ConnectionDiagnosis(
            "port",
            f"nothing accepts connections on {host}:{port}: check the port {url} and that "
            "PostgreSQL is running and listening there",
        )
    if "timeout expired" in text or "timed out" in text or "No route to host" in text:
        return ConnectionDiagnosis(
            "host",
            f"{host}:{port} did not answer within {_START_TIMEOUT} s: "
            f"check the host {url} and that no firewall drops the connection",
        )
    if "SSL negotiation" in text or "server closed the connection unexpectedly" in text:
        return ConnectionDiagnosis(
            "port",
            f"something other than PostgreSQL answers on {host}:{port}: check the port {url}",
        )
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return ConnectionDiagnosis("server", f"{where} refused the connection: {first}")


def probe(config: StoreConfig, *, need_schema: bool) -> None:
    """Connect once, plainly; raise ``StoreUnreachable`` naming the part that failed.

    With ``need_schema``, a database without the log's table is named too (the schema comes
    from ``mandate migrate``), instead of surfacing later as an SQL error.
    """
    if not config.is_postgres:
        return
    try:
        connection = psycopg.connect(**_connect_kwargs(config))  # type: ignore[arg-type]
    except psycopg.Error as error:
        raise StoreUnreachable(diagnose(error, config)) from None
    with connection:
        if not need_schema:
            return
        schema = config.env.get("POSTGRES_SCHEMA", "public")
        row = connection.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, EVENTS_TABLE)
        ).fetchone()
    if row is None or row[0] is None:
        env = config.env
        raise StoreUnreachable(
            ConnectionDiagnosis(
                "schema",
                f"PostgreSQL at {env['POSTGRES_HOST']}:{env['POSTGRES_PORT']} database "
                f"{env['POSTGRES_DBNAME']!r} has no Mandate schema in {schema!r} (no "
                f"{EVENTS_TABLE} table): run `mandate migrate` first",
            )
        )


@contextmanager
def migration_lock(config: StoreConfig) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock for this schema's migrations, creating the schema.

    Nothing on SQLite, where one file has one writer at a time anyway.
    """
    if not config.is_postgres:
        yield
        return
    schema = config.env.get("POSTGRES_SCHEMA", "public")
    try:
        connection = psycopg.connect(**_connect_kwargs(config), autocommit=True)  # type: ignore[arg-type]
    except psycopg.Error as error:
        raise StoreUnreachable(diagnose(error, config)) from None
    with connection:
        connection.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", (_MIGRATION_LOCK_CLASS, schema)
        )
        # the schema too, under the lock: eventsourcing creates tables, not their schema
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        try:
            yield
        finally:
            connection.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(%s))", (_MIGRATION_LOCK_CLASS, schema)
            )
