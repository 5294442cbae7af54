"""The signature nonces every API process shares on PostgreSQL (issue 14):
``projections.store.nonces.SharedNonces`` and ``ReplayGuard`` in front of it.

Two runtimes on one schema stand for two API processes: each has its own datastore (its own
pool) and, through ``ReplayGuard``, its own in-process cache; the table is what they share.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from eventsourcing.postgres import PostgresDatastore

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.api.signing import NonceCache, ReplayGuard, SignatureNonceUsed
from mandate.api.signing.replay import NonceStoreUnavailable
from mandate.projections.store.nonces import (
    NONCE_TABLE,
    PURGE_BATCH,
    SharedNonces,
    open_shared_nonces,
)

HASH_KEY = "k" * 40
NOW = 1_900_000_000.0


def _settings(url: str) -> Settings:
    return Settings(database_url=url, hash_key=HASH_KEY, admin_token="t" * 40)


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    first = Runtime(_settings(postgres_url), create_tables=True)
    second = Runtime(_settings(postgres_url), create_tables=False)
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


def _store(runtime: Runtime) -> SharedNonces:
    assert runtime.nonces is not None
    return runtime.nonces


class _Signed:
    """The part of a parsed request ``ReplayGuard.remember_nonce`` reads."""

    def __init__(self, nonce: str, at: float = NOW) -> None:
        self.access_key_id = "LTAI5tExampleKey0001"
        self.security_token = None
        self.nonce = nonce
        self.timestamp = datetime.fromtimestamp(at, UTC)
        self.expires = None

    def verify(self, secret: str) -> None:
        return None


def test_a_nonce_claimed_by_one_process_is_refused_by_the_other(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    first, second = (_store(r) for r in two_processes)
    key = b"\x01" * 16
    assert first.add(key, NOW + 900, NOW) is True
    assert second.add(key, NOW + 900, NOW + 1) is False
    assert first.add(key, NOW + 900, NOW + 2) is False  # the claimant too, from the table
    assert second.add(b"\x02" * 16, NOW + 900, NOW) is True
    assert first.count() == 2


def test_a_row_expires_only_after_its_grace_then_the_key_may_be_claimed_again(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    store = _store(two_processes[0])
    key = b"\x03" * 16
    assert store.add(key, NOW, NOW - 900)
    # expired by this host's clock, but another host's may lag: still refused within the grace
    assert store.add(key, NOW + 900, NOW + store.grace - 1) is False
    # beyond the grace the row no longer holds the key: claimed again, with the new expiry
    assert store.add(key, NOW + 2000, NOW + store.grace) is True
    assert store.add(key, NOW + 2000, NOW + store.grace + 1) is False


def test_purge_deletes_only_rows_expired_beyond_the_grace_a_bounded_batch_at_a_time(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    store = _store(two_processes[0])
    store.purge_every = 10**9  # only the explicit purges below
    expired = [(i.to_bytes(16, "big"), NOW - 1000.0) for i in range(PURGE_BATCH + 7)]
    live = [((10**6 + i).to_bytes(16, "big"), NOW + 900.0) for i in range(5)]
    with store.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.executemany(
            f'INSERT INTO "{store.datastore.schema}".{NONCE_TABLE} (digest, expires_at) '  # noqa: S608
            "VALUES (%s, %s)",
            expired + live,
        )
    assert store.count() == PURGE_BATCH + 12
    assert store.purge(NOW) == PURGE_BATCH  # bounded
    assert store._next_purge == 0.0  # a full batch: the next claim purges again
    assert store.purge(NOW) == 7
    assert store.count() == 5  # the live rows stay
    for key, _ in live:
        assert store.add(key, NOW + 900, NOW) is False


def test_a_claim_purges_at_most_every_purge_every_seconds(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    store = _store(two_processes[0])
    store.purge_every = 60.0
    assert store.add(b"\x10" * 16, NOW - 500, NOW - 2000)  # expires long before NOW
    assert store.add(b"\x11" * 16, NOW + 900, NOW)  # purges: the first row goes
    assert store.count() == 1
    assert store.add(b"\x12" * 16, NOW - 500, NOW - 1000)
    assert store.add(b"\x13" * 16, NOW + 900, NOW + 30)  # within purge_every: no purge
    assert store.count() == 3
    assert store.add(b"\x14" * 16, NOW + 900, NOW + 61)  # due again
    assert store.count() == 3


def test_the_table_is_logged_created_idempotently_and_sqlite_has_none(
    two_processes: tuple[Runtime, Runtime], sqlite_url: str
) -> None:
    store = _store(two_processes[0])
    store.create_table()  # a second migrate changes nothing
    with store.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT c.relpersistence AS p FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (store.datastore.schema, NONCE_TABLE),
        ).fetchone()
    assert row is not None
    assert row["p"] == "p"  # permanent: survives a crash, replicated to standbys
    assert open_shared_nonces(object(), True) is None
    sqlite = Runtime(_settings(sqlite_url), create_tables=True)
    try:
        assert sqlite.nonces is None
    finally:
        sqlite.stop()


def test_guards_of_two_processes_refuse_a_write_replayed_to_the_other(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    first, second = (ReplayGuard(shared=_store(r), clock=lambda: NOW) for r in two_processes)
    first.remember_nonce(_Signed("n-1"), writes=True)
    with pytest.raises(SignatureNonceUsed):
        second.remember_nonce(_Signed("n-1"), writes=True)
    # a read does not consult the table by default ('writes'): the other process accepts it
    first.remember_nonce(_Signed("n-2"), writes=False)
    second.remember_nonce(_Signed("n-2"), writes=False)
    with pytest.raises(SignatureNonceUsed):  # …but the same process still refuses it
        second.remember_nonce(_Signed("n-2"), writes=False)
    # 'all': every signed request is claimed in the table
    every = ReplayGuard(shared=_store(two_processes[1]), share_all=True, clock=lambda: NOW)
    first.remember_nonce(_Signed("n-3"), writes=True)
    with pytest.raises(SignatureNonceUsed):
        every.remember_nonce(_Signed("n-3"), writes=False)


def test_an_unreachable_store_refuses_the_request_and_forgets_the_nonce_locally(
    two_processes: tuple[Runtime, Runtime],
) -> None:
    """Fail closed: a store that cannot answer refuses (503), never waves the request
    through; the nonce is not kept in the process's cache, so the retry is not a replay."""
    live = _store(two_processes[0])
    down = PostgresDatastore(
        dbname="test",
        host="127.0.0.1",
        port="1",  # nothing listens
        user="postgres",
        password="",
        connect_timeout=1,
        pool_size=1,
        pool_open_timeout=None,
        schema=live.datastore.schema,
    )
    down.pool.timeout = 0.5
    cache = NonceCache()
    guard = ReplayGuard(cache, shared=SharedNonces(down), clock=lambda: NOW)
    try:
        with pytest.raises(NonceStoreUnavailable) as refused:
            guard.remember_nonce(_Signed("n-down"), writes=True)
        assert refused.value.http_status == 503
        assert len(cache) == 0
        # the store is back (here: the live one): the same request is accepted once
        guard.shared = live
        guard.remember_nonce(_Signed("n-down"), writes=True)
        with pytest.raises(SignatureNonceUsed):
            guard.remember_nonce(_Signed("n-down"), writes=True)
    finally:
        down.close()


def test_a_process_started_before_migrate_says_so_and_refuses_signed_writes(
    two_processes: tuple[Runtime, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(two_processes[0])
    assert store.table_exists()
    with store.datastore.get_connection() as conn:  # this test's own schema: as before migrate
        conn.execute(f'DROP TABLE "{store.datastore.schema}".{NONCE_TABLE}')
    assert not store.table_exists()
    with caplog.at_level("ERROR", logger="mandate.store"):
        opened = open_shared_nonces(store.datastore, False)
    assert opened is not None
    assert "run `mandate migrate`" in caplog.text
    guard = ReplayGuard(shared=opened, clock=lambda: NOW)
    with pytest.raises(NonceStoreUnavailable):
        guard.remember_nonce(_Signed("before-migrate"), writes=True)
    opened.create_table()  # migrate: the same request is then served
    guard.remember_nonce(_Signed("before-migrate"), writes=True)
