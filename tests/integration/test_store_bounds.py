"""The store's bounded waits and the committed write whose answer was lost (PostgreSQL)."""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg_pool
import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from mandate.api.settings import store_config
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.projections.store.outages import (
    _unretried,
    _verified_insert,
    local_check,
    no_connection,
)
from tests.conftest import _free_port

pytestmark = pytest.mark.postgres

HASHER = SecretHasher("k1", {"k1": b"h" * 32})


def test_an_unreachable_store_is_asked_once_within_the_pools_short_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ten-fold retry of five-second waits: one checkout, bounded by the store's timeout.

    Observed through the mechanism, not a stopwatch: every checkout's wait is recorded, and
    an unreachable store is asked for a connection once, waiting the whole second the store
    configuration derives from ``store_timeout`` (0.75 s by default), and the error says that
    nothing reached the database (so nothing is retried).
    """
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres"  # nothing listens there
    waits: list[float] = []
    getconn = psycopg_pool.ConnectionPool.getconn

    def recorded(pool: Any, timeout: float | None = None) -> Any:
        waits.append(pool.timeout if timeout is None else timeout)
        return getconn(pool, timeout)

    monkeypatch.setattr(psycopg_pool.ConnectionPool, "getconn", recorded)
    with pytest.raises(OperationalError) as refused:
        Ledger(store_config(url).env, hasher=HASHER).recorder.max_notification_id()
    assert no_connection(refused.value)
    assert waits == [1.0]


def test_a_store_call_that_gets_no_connection_waits_the_store_timeout_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorder's call (bounded by ``bound_store``) asks the pool once, waiting
    ``MANDATE_STORE_TIMEOUT``: no connection means nothing reached the database, so the
    recorder's retry does not run (eventsourcing's would wait ten times)."""
    config = store_config(postgres_url, create_table=True, pool_size=1, store_timeout=0.1)
    ledger = Ledger({**config.env, "POSTGRES_MAX_OVERFLOW": "0"}, hasher=HASHER)
    try:
        pool = ledger.recorder.datastore.pool  # type: ignore[attr-defined]
        waits: list[float] = []
        getconn = psycopg_pool.ConnectionPool.getconn

        def recorded(pool: Any, timeout: float | None = None) -> Any:
            waits.append(pool.timeout if timeout is None else timeout)
            return getconn(pool, timeout)

        with pool.connection():  # the pool's only connection is lent: none left for the call
            monkeypatch.setattr(psycopg_pool.ConnectionPool, "getconn", recorded)
            with pytest.raises(OperationalError) as refused:
                ledger.recorder.max_notification_id()
            monkeypatch.undo()
        assert no_connection(refused.value)
        assert waits == [0.1]
    finally:
        ledger.close()


def test_a_write_that_committed_before_its_connection_broke_is_answered_as_written(
    postgres_url: str,
) -> None:
    ledger = Ledger(store_config(postgres_url, create_table=True).env, hasher=HASHER)
    try:
        recorder: Any = ledger.recorder
        insert = _unretried(type(recorder).insert_events)
        attempts: list[int] = []

        def commits_then_breaks(rec: Any, events: Sequence[StoredEvent], **kw: Any) -> Any:
            attempts.append(len(events))
            insert(rec, events, **kw)  # the commit happens...
            raise OperationalError("server closed the connection unexpectedly")  # ...unheard

        recorder.insert_events = _verified_insert(recorder, commits_then_breaks)
        opened = ledger.open_account("Acme")  # answered, not re-run into a conflict
        assert attempts == [1]
        assert opened.root_key.position == ledger.recorder.max_notification_id()
        assert len(ledger.recorder.select_notifications(0, 10)) == 1  # written once
    finally:
        ledger.close()


def test_the_pools_check_keeps_a_live_connection_and_discards_one_the_server_closed(
    postgres_url: str,
) -> None:
    ledger = Ledger(store_config(postgres_url, create_table=True).env, hasher=HASHER)
    try:
        recorder: Any = ledger.recorder
        pool = recorder.datastore.pool
        assert pool._check is local_check  # no round trip per checkout
        with pool.connection() as conn:
            local_check(conn)  # live: nothing said
            with pool.connection() as other:
                other.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            select.select([conn.pgconn.socket], [], [], 5)  # the server's FATAL, then EOF
            with pytest.raises(psycopg.OperationalError):
                local_check(conn)
        # The pool discards it and lends a live connection instead.
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() is not None
    finally:
        ledger.close()
