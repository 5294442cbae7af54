"""Who runs a projection copy: a PostgreSQL advisory lock held on a connection of its own.

Every API process (and ``mandate projections run``) may follow the log into the same copy.
Only the holder of the copy's lease applies batches; the others stand by, touching neither
the copy nor their in-memory state, and try the lease again about once a second. The lease
is ``pg_try_advisory_lock`` on a key derived from the schema and the copy's name, held by a
dedicated autocommit session: when the leader dies its session ends, PostgreSQL releases the
lock, and a stand-by takes it within a second or so — no heartbeat table, no expiry to tune.

SQLite has no lease here: one machine, embedded; several workers on one copy keep the
tracking table's refusal of a position that does not advance (the loser reloads).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg

from mandate.projections.store.read_model_store import ReadModelStore

__all__ = ["AdvisoryLease", "Lease", "copy_lease", "lease_key", "postgres_connect_kwargs"]

log = logging.getLogger("mandate.projections")


class Lease(Protocol):
    """The right to run one projection copy (never waits: ``acquire`` answers at once)."""

    @property
    def held(self) -> bool: ...

    def acquire(self) -> bool: ...

    def check(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


def lease_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (stable across processes and runs)."""
    digest = hashlib.sha256(f"mandate-projection-lease:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def postgres_connect_kwargs(env: Mapping[str, str]) -> dict[str, Any]:
    """psycopg arguments for a long-lived session, from the ledger's eventsourcing environment.

    TCP keepalives on both ends: a leader whose host vanished (no FIN ever sent) has its
    session, and so its lock, dropped by the server within ~15 s, and a client whose server
    vanished notices as soon, instead of waiting on a dead socket for the kernel's two hours.
    """
    kwargs: dict[str, Any] = {
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": int(env.get("POSTGRES_PORT", "5432")),
        "dbname": env.get("POSTGRES_DBNAME", "postgres"),
        "user": env.get("POSTGRES_USER", "postgres"),
        "connect_timeout": max(1, int(float(env.get("POSTGRES_CONNECT_TIMEOUT", "5") or 5))),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "options": "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2"
        " -c tcp_keepalives_count=3",
    }
    if env.get("POSTGRES_PASSWORD"):
        kwargs["password"] = env["POSTGRES_PASSWORD"]
    return kwargs


class AdvisoryLease:
    """A session-level advisory lock on a dedicated connection (see the module's docstring)."""

    def __init__(self, env: Mapping[str, str], name: str) -> None:
        self.name = name
        self.key = lease_key(name)
        self._connect = {**postgres_connect_kwargs(env), "autocommit": True}
        self._connect["application_name"] = f"mandate-lease:{name}"[:63]
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this lease holds it. Raises on an outage."""
        with self._lock:
            if self._held:
                return True
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(**self._connect)
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            except psycopg.Error:
                self._drop()
                raise
            self._held = bool(row and row[0])
            return self._held

    def check(self) -> bool:
        """Whether the lock is still ours: its session answers (a lost session lost it)."""
        with self._lock:
            if not self._held or self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error as error:
                log.warning("projection lease %s lost with its connection: %s", self.name, error)
                self._drop()
                return False
            return True

    def release(self) -> None:
        with self._lock:
            if not self._held or self._conn is None:
                self._held = False
                return
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self._held = False
            except psycopg.Error:
                self._drop()  # closing the session releases the lock anyway

    def close(self) -> None:
        self.release()
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to release
                conn.close()


def copy_lease(env: Mapping[str, str], store: ReadModelStore) -> AdvisoryLease:
    """The lease of one copy on the ledger's PostgreSQL schema: the name every process uses."""
    schema = env.get("POSTGRES_SCHEMA") or "public"
    return AdvisoryLease(env, f"{schema}.{store.prefix}")
