"""Two API processes on one store: each follows the log into its own decision index."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from mandate.api.app import create_app
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.arns import user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.policy.evaluation import AccessRequest

HASH_KEY = "k" * 40
ADMIN = AuditContext(actor="mandate:admin")


@pytest.fixture
def two_runtimes(store_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    settings = Settings(database_url=store_url, hash_key=HASH_KEY, admin_token="t" * 40)
    writer = Runtime(settings, create_tables=True)
    reader = Runtime(settings, create_tables=False)
    writer.start()
    reader.start()
    try:
        yield writer, reader
    finally:
        reader.stop()
        writer.stop()


def test_a_write_in_one_process_reaches_the_other_by_waiting_for_its_position(
    two_runtimes: tuple[Runtime, Runtime],
) -> None:
    """A decision in the second process sees a detach made in the first once it has applied it."""
    writer, reader = two_runtimes
    with acting_as(ADMIN):
        opened = writer.ledger.open_account("Acme")
        account = opened.account_id
        writer.ledger.create_user(account, "alice", None)
        position = writer.ledger.attach_policy(
            account, "user", "alice", "System", "AliyunOSSFullAccess"
        ).position
    assert reader.follower.wait_for(position, timeout=10)
    alice = reader.index.user_by_name(account, "alice")
    assert alice is not None
    request = AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:photos/a.jpg")
    answer = reader.index.decide(reader.index.user_subject(alice.id), request, memo_key=alice.id)
    assert answer.allowed
    assert answer.chain == (user_arn(account, "alice"),)

    with acting_as(ADMIN):
        position = writer.ledger.detach_policy(
            account, "user", "alice", "System", "AliyunOSSFullAccess"
        ).position
    assert reader.follower.wait_for(position, timeout=10)
    answer = reader.index.decide(reader.index.user_subject(alice.id), request, memo_key=alice.id)
    assert not answer.allowed


def test_both_processes_hold_the_same_index_after_following_the_same_log(
    two_runtimes: tuple[Runtime, Runtime],
) -> None:
    """Two indexes fed by one log agree on users, keys, groups and positions."""
    writer, reader = two_runtimes
    with acting_as(ADMIN):
        account = writer.ledger.open_account("Acme").account_id
        for name in ("alice", "bob", "carol"):
            writer.ledger.create_user(account, name, None)
            writer.ledger.create_access_key(account, name)
        writer.ledger.create_group(account, "ops")
        writer.ledger.add_user_to_group(account, "ops", "bob")
        position = writer.ledger.delete_user(account, "carol").position
    assert writer.follower.wait_for(position, timeout=10)
    assert reader.follower.wait_for(position, timeout=10)
    assert sorted(writer.index.keys) == sorted(reader.index.keys)
    assert [u.user_name for u in writer.index.users_of(account)] == [
        u.user_name for u in reader.index.users_of(account)
    ]
    bob = reader.index.user_by_name(account, "bob")
    assert bob is not None
    assert list(bob.groups.values()) == ["ops"]


def test_authorize_waits_for_its_min_position_before_authenticating(store_url: str) -> None:
    """docs/design.md §4: a key created through one process works at once on another that is asked
    to reach the key's position first — in the body's ``min_position`` as in the header."""
    settings = Settings(database_url=store_url, hash_key=HASH_KEY, admin_token="t" * 40)
    writer = Runtime(settings, create_tables=True)
    # the reader neither polls nor listens in this test: only a Min-Position wait catches it up
    reader = Runtime(
        settings.model_copy(update={"poll_interval": 3600.0, "listen": False}), create_tables=False
    )
    writer.start()
    reader.start()
    try:
        with acting_as(ADMIN):
            account = writer.ledger.open_account("Acme").account_id
            writer.ledger.create_user(account, "alice", None)
            writer.ledger.attach_policy(account, "user", "alice", "System", "ReadOnlyAccess")
            key = writer.ledger.create_access_key(account, "alice")
        question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account}:b/k"}
        auth = (key.access_key_id, key.access_key_secret)

        async def ask() -> tuple[httpx.Response, httpx.Response]:
            transport = httpx.ASGITransport(app=create_app(runtime=reader))
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                before = await client.post("/v1/authorize", json=question, auth=auth)
                waited = await client.post(
                    "/v1/authorize", json={**question, "min_position": key.position}, auth=auth
                )
                return before, waited

        before, waited = anyio.run(ask)
        assert before.status_code == 401  # not applied here yet, and not asked to wait
        assert waited.status_code == 200, waited.text
        assert waited.json()["allowed"] is True
        assert waited.json()["position"] >= key.position
    finally:
        reader.stop()
        writer.stop()
