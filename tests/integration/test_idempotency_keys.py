"""Idempotency keys commit with the events they guard, on SQLite and PostgreSQL.

The key's row is written by the ledger's recorder inside the transaction that inserts the
command's events (``projections.store.idempotency``): a failure between the two inserts
leaves neither, a key already held refuses the whole save (``IdempotencyKeyTaken``) even
from another process or another thread of the same group commit, and an expired key is
replaced in the same way. The HTTP side (retries, 422, 409, secrets) is
``tests/e2e/test_idempotency_api.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import mandate.projections.store.idempotency as key_store
from mandate.api.idempotency import IdempotentRequest, KeyInFlight, Replayed, _request
from mandate.api.runtime import Runtime
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.ledger.idempotency import GuardedWrite, IdempotencyKeyTaken, guarded_by
from tests.integration.runtimes import running

ADMIN = AuditContext(actor="mandate:admin")
SCOPE = "acs:ram::1:root"
NOW = 1_900_000_000.0
TTL = 3600.0


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url, idempotency_ttl_seconds=TTL) as started:
        started.idempotency.keys.clock = lambda: NOW
        yield started


def guard(key: str, digest: str = "d1", at: float = NOW) -> GuardedWrite:
    return GuardedWrite(SCOPE, key, digest, created_at=at, expires_at=at + TTL)


def account(runtime: Runtime) -> str:
    with acting_as(ADMIN):
        return runtime.ledger.open_account("Acme").account_id


def test_the_key_row_commits_with_the_events_at_their_position(runtime: Runtime) -> None:
    acct = account(runtime)
    key = guard("create-alice")
    with acting_as(ADMIN), guarded_by(key):
        created = runtime.ledger.create_user(acct, "alice", None)
    assert key.position == created.position == runtime.head()
    stored = runtime.idempotency.keys.get(SCOPE, "create-alice")
    assert stored is not None
    assert stored.position == created.position
    assert stored.digest == "d1"
    assert not stored.answered  # the answer is recorded once the route has made it


def test_a_failure_after_the_events_insert_leaves_neither_events_nor_key(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_row`` runs inside the transaction, after the events' insert and before the key's:
    raising there must roll the events back too (on PostgreSQL eventsourcing re-raises only
    after leaving its transaction block, so the recorder fails the transaction first)."""
    acct = account(runtime)
    head = runtime.head()

    def crash(*_: object) -> tuple[str, str, str, int, float, float]:
        raise RuntimeError("injected between the events' insert and the commit")

    monkeypatch.setattr(key_store, "_row", crash)
    with acting_as(ADMIN), guarded_by(guard("k")), pytest.raises(RuntimeError, match="injected"):
        runtime.ledger.create_user(acct, "alice", None)
    assert runtime.head() == head
    assert runtime.ledger.recorder.select_notifications(head + 1, 10) == []
    assert runtime.idempotency.keys.get(SCOPE, "k") is None
    assert runtime.index.user_by_name(acct, "alice") is None
    monkeypatch.undo()
    with acting_as(ADMIN), guarded_by(guard("k")):  # the key was never taken: it works now
        created = runtime.ledger.create_user(acct, "alice", None)
    stored = runtime.idempotency.keys.get(SCOPE, "k")
    assert stored is not None
    assert stored.position == created.position


def test_a_held_key_refuses_another_process_save_whole(store_url: str) -> None:
    with running(store_url) as first, running(store_url) as second:
        acct = account(first)
        with acting_as(ADMIN), guarded_by(guard("once")):
            first.ledger.create_user(acct, "alice", None)
        head = first.head()
        with (
            acting_as(ADMIN),
            guarded_by(guard("once")),
            pytest.raises(IdempotencyKeyTaken, match="once"),
        ):
            second.ledger.create_user(acct, "bob", None)
        assert second.head() == head
        assert second.ledger.recorder.select_notifications(head + 1, 10) == []


def test_concurrent_saves_with_one_key_write_once_and_spare_the_others(
    runtime: Runtime,
) -> None:
    """Eight commands with one key and eight without, saved concurrently (group commit
    merges them): one guarded command commits, the seven others are refused whole, and
    every unguarded one commits."""
    acct = account(runtime)
    head = runtime.head()
    outcomes: dict[str, str] = {}
    start = threading.Barrier(16)

    def create(name: str, key: GuardedWrite | None) -> None:
        start.wait()
        with acting_as(ADMIN):
            try:
                if key is None:
                    runtime.ledger.create_user(acct, name, None)
                else:
                    with guarded_by(key):
                        runtime.ledger.create_user(acct, name, None)
                outcomes[name] = "written"
            except IdempotencyKeyTaken:
                outcomes[name] = "taken"

    threads = [threading.Thread(target=create, args=(f"g{i}", guard("same"))) for i in range(8)]
    threads += [threading.Thread(target=create, args=(f"p{i}", None)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    guarded = sorted(v for k, v in outcomes.items() if k.startswith("g"))
    assert guarded == ["taken"] * 7 + ["written"]
    assert all(outcomes[f"p{i}"] == "written" for i in range(8))
    written = runtime.ledger.recorder.select_notifications(head + 1, 100)
    assert len(written) == 9 * 2  # a name claim and a user per created user
    stored = runtime.idempotency.keys.get(SCOPE, "same")
    assert stored is not None
    winner = next(k for k, v in outcomes.items() if k.startswith("g") and v == "written")
    assert runtime.follower.wait_for(runtime.head(), 30)
    assert runtime.index.user_by_name(acct, winner) is not None


def test_an_expired_key_is_ignored_replaced_and_purged(runtime: Runtime) -> None:
    acct = account(runtime)
    keys = runtime.idempotency.keys
    first = guard("k")
    with acting_as(ADMIN), guarded_by(first):
        runtime.ledger.create_user(acct, "alice", None)
    assert keys.answer(first, 201, '{"user_name": "alice"}')
    keys.clock = lambda: NOW + TTL  # expires_at is exclusive
    assert keys.get(SCOPE, "k") is None
    later = guard("k", digest="d2", at=NOW + TTL)
    with acting_as(ADMIN), guarded_by(later):  # the expired row is replaced in the save
        created = runtime.ledger.create_user(acct, "bob", None)
    stored = keys.get(SCOPE, "k")
    assert stored is not None
    assert (stored.digest, stored.position, stored.answered) == ("d2", created.position, False)
    old = guard("old")
    assert keys.answer(old, 200, "{}")  # no events: the row is written with its answer
    keys.clock = lambda: NOW + 2 * TTL + 1
    assert keys.purge(limit=1) == 1
    assert keys.purge() == 1
    assert keys.purge() == 0


def test_an_answer_lost_to_a_stopped_process_is_its_position_never_a_second_write(
    runtime: Runtime,
) -> None:
    """A row without an answer is in flight while younger than the write's own wait, and
    after that is answered with its position and a note: the write is not made again."""
    acct = account(runtime)
    key = guard("lost")
    with acting_as(ADMIN), guarded_by(key):
        created = runtime.ledger.create_user(acct, "alice", None)
    idempotency = runtime.idempotency
    token = _request.set(IdempotentRequest("lost", "d1"))
    try:
        with pytest.raises(KeyInFlight):
            idempotency.begin(SCOPE)
        idempotency.keys.clock = lambda: NOW + idempotency.pending_window + 1
        with pytest.raises(Replayed) as replayed:
            idempotency.begin(SCOPE)
    finally:
        _request.reset(token)
    assert replayed.value.status == 200
    assert f'"position": {created.position}' in replayed.value.body.decode()
    assert "not recorded" in replayed.value.body.decode()
