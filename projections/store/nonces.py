"""Signature nonces every API process shares: ``mandate_signature_nonces`` on PostgreSQL.

A signed request's nonce (ACS3's ``x-acs-signature-nonce``, RPC V1's ``SignatureNonce``) is
good once within the ±15-minute clock window. Each process remembers the nonces it saw
(``api.signing.replay.NonceCache``), but a request captured and replayed to *another* process
is not in that one's memory: for a write that hands out a secret (CreateAccessKey,
AssumeRole) that replay is the worst case. So the processes on one PostgreSQL also claim the
nonce here: a row per 16-byte digest of (AccessKeyId, nonce) with its ``expires_at`` (epoch
seconds: the request's own time plus the window), claimed in one statement on an autocommit
connection (one round trip)::

    INSERT … ON CONFLICT (digest) DO UPDATE … WHERE held.expires_at <= now - grace RETURNING

answers a row when the nonce is new (or its row had expired but was not yet purged), none
when another request holds it. ``grace`` (a minute) keeps a row beyond its expiry so that a
host whose clock lags another's cannot accept, after a purge, a replay its own clock still
finds in the window.

The table is *logged*, not ``UNLOGGED``. An unlogged table skips the WAL, so a claim is a
little cheaper, but PostgreSQL truncates it after a crash and a streaming standby never
holds its rows: a primary crash, or a failover, would forget every nonce of the last 15
minutes, and a request captured just before could be replayed to any process for the rest
of its window — exactly the replay this table exists to refuse, at the moment an operator is
busiest. The price of logging is one more WAL flush per claim; by default only writes claim
here (``MANDATE_SHARED_NONCES``), and a write already flushes its events.

Expired rows are deleted by the claims themselves, a bounded batch at a time: at most every
``purge_every`` seconds per process, one claim also runs a ``DELETE`` of at most
``PURGE_BATCH`` expired rows (``FOR UPDATE SKIP LOCKED``: processes purging at once do not
wait on each other); a full batch makes the next claim purge again, so a backlog drains.
The table is created by ``mandate migrate`` (and test runtimes), like the other tables here;
nothing here drops it. SQLite is one process: its in-memory cache suffices, no table.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composed, Identifier

__all__ = ["NONCE_TABLE", "PURGE_BATCH", "SharedNonces", "open_shared_nonces"]

NONCE_TABLE: Final = "mandate_signature_nonces"
PURGE_BATCH: Final = 5000  # expired rows deleted at most per purge
GRACE: Final = 60.0  # seconds a row outlives its expiry (hosts' clocks differ)

log = logging.getLogger("mandate.store")


class SharedNonces:
    """A ``NonceStore`` (``add``) in the ledger's PostgreSQL: one claim, one round trip."""

    def __init__(
        self, datastore: PostgresDatastore, *, purge_every: float = 60.0, grace: float = GRACE
    ) -> None:
        self.datastore = datastore
        self.purge_every = purge_every
        self.grace = grace
        self._table = Identifier(datastore.schema or "public", NONCE_TABLE)
        self._claim = SQL(
            "INSERT INTO {t} AS held (digest, expires_at) VALUES (%s, %s) "
            "ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE held.expires_at <= %s RETURNING 1"
        ).format(t=self._table)
        self._purge = SQL(
            "DELETE FROM {t} WHERE digest IN (SELECT digest FROM {t} WHERE expires_at <= %s "
            "LIMIT {n} FOR UPDATE SKIP LOCKED)"
        ).format(t=self._table, n=PURGE_BATCH)
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def create_table(self) -> None:
        """Create the table and its expiry index when absent (``mandate migrate``)."""
        index = Identifier(f"{NONCE_TABLE}_expires_at")
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {t} (digest BYTEA PRIMARY KEY, "
                    "expires_at DOUBLE PRECISION NOT NULL)"
                ).format(t=self._table)
            )
            cursor.execute(
                SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (expires_at)").format(
                    i=index, t=self._table
                )
            )

    def add(self, key: bytes, expires_at: float, now: float) -> bool:
        """Claim ``key`` until ``expires_at``: False when a live row holds it. Any failure
        to reach the store raises (the caller refuses the request: it never lets it pass).
        A connection that breaks after the server committed the claim but before its answer
        arrived leaves the row behind: the client's retry with the same nonce is then refused
        as a replay — closed, not open; SDKs sign a retry with a fresh nonce anyway."""
        with self.datastore.get_connection() as conn:  # autocommit: one statement, one trip
            claimed = conn.execute(self._claim, (key, expires_at, now - self.grace)).fetchone()
        if self._purge_due(now):
            self.purge(now)
        return claimed is not None

    def _purge_due(self, now: float) -> bool:
        with self._lock:
            if now < self._next_purge:
                return False
            self._next_purge = now + self.purge_every
            return True

    def purge(self, now: float) -> int:
        """Delete at most ``PURGE_BATCH`` rows expired (beyond the grace) at ``now``; how many
        went. A failure is logged, not raised: the claim it follows has already answered."""
        try:
            with self.datastore.get_connection() as conn:
                deleted = conn.execute(self._purge, (now - self.grace,)).rowcount
        except Exception as error:
            log.warning("purging expired signature nonces failed: %s", error)
            return 0
        if deleted >= PURGE_BATCH:
            with self._lock:  # a backlog: the next claim purges again
                self._next_purge = 0.0
        return int(deleted)

    def table_exists(self) -> bool:
        """Whether ``mandate migrate`` created the table (a process started before it ran
        refuses every claim, so it says so at start)."""
        with self.datastore.get_connection() as conn:
            found = conn.execute(
                "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) AS t",
                (self.datastore.schema or "public", NONCE_TABLE),
            ).fetchone()
        return found is not None and found["t"] is not None

    def count(self) -> int:
        """How many rows the table holds, expired or not (for tests and operators)."""
        with self.datastore.get_connection() as conn:
            row = conn.execute(Composed([SQL("SELECT count(*) AS n FROM "), self._table]))
            found = row.fetchone()
        return int(found["n"]) if found is not None else 0


def open_shared_nonces(datastore: object, create: bool) -> SharedNonces | None:
    """The shared nonce store on PostgreSQL (its table created when ``create``, as the other
    tables are: ``mandate migrate`` and test runtimes); None on SQLite (one process)."""
    if not isinstance(datastore, PostgresDatastore):
        return None
    nonces = SharedNonces(datastore)
    if create:
        nonces.create_table()
    elif not nonces.table_exists():  # every signed write would be refused (503) until then
        log.error("%s is missing: run `mandate migrate` (signed writes are refused)", NONCE_TABLE)
    return nonces
