"""An index loaded from a snapshot and fed the tail answers exactly as one replayed from 0.

The history has what the index must carry over: accounts, users with AccessKeys (one later
disabled, one deleted), groups and memberships, Custom policy versions, a role and an STS
session, a contract and delegations. A snapshot is written in the middle, more changes
follow, and then two fresh indexes are compared: one loaded from the snapshot and fed the
tail, one replayed from position 0 — their position, every principal's decision on a grid
of requests, and every credential (right secret, wrong secret, session credentials).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from mandate.domain.ledger.application import IssuedKey, IssuedSession
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.credentials import AuthenticationFailed
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.snapshots import (
    SNAPSHOT_TABLE,
    IndexSnapshots,
    SnapshotRefused,
    dump_index,
    restore_index,
    snapshot_lock,
)
from mandate.projections.store.follower import LogFollower
from tests.integration.test_review_snapshots import _history
from tests.integration.test_roles_sessions import ASSUME, World, allow, document, trust, world

__all__ = ["world"]

ACTIONS = ("oss:GetObject", "oss:PutObject", "ecs:StartInstance", "ram:CreateUser")


def _grow(world: World, account: str, keys: list[IssuedKey], sessions: list[IssuedSession]) -> None:
    """Users with keys and policies, a role assumed: what a snapshot must carry."""
    app = world.user(account, f"app{len(keys)}", ASSUME)
    keys.append(world.do("create_access_key", account, app.arn.rsplit("/", 1)[-1]))
    world.do(
        "create_policy",
        account,
        f"Buckets{len(keys)}",
        document(allow(["oss:GetObject", "oss:PutObject"], f"acs:oss:*:{account}:bucket/*")),
    )
    world.do(
        "attach_policy",
        account,
        "user",
        app.arn.rsplit("/", 1)[-1],
        "Custom",
        f"Buckets{len(keys)}",
    )
    arn = world.role(
        account, f"reader{len(keys)}", trust(app.arn), system=("AliyunOSSReadOnlyAccess",)
    )
    sessions.append(world.assume(app, arn, f"s-{len(keys)}"))


def _requests(accounts: list[str]) -> list[AccessRequest]:
    return [
        AccessRequest.make(action, f"acs:oss:*:{account}:bucket/x")
        for account in accounts
        for action in ACTIONS
    ]


def _answers(index: DecisionIndex, accounts: list[str]) -> dict[object, list[str]]:
    """Every user's and root's answer to every request (effect and matched statements)."""
    grid = _requests(accounts)
    found: dict[object, list[str]] = {}
    for user_id in sorted(index.users, key=str):
        subject = index.user_subject(user_id)
        found[user_id] = [_of(index.decide(subject, r, memo_key=user_id)) for r in grid]
    for account in accounts:
        subject = index.root_subject(account)
        found[account] = [_of(index.decide(subject, r, memo_key=account)) for r in grid]
    return found


def _of(answer: Any) -> str:
    return repr(answer)  # the decision, every matched statement, the reason


def _authenticate(call: Callable[[], Any]) -> object:
    try:
        credential = call()
    except AuthenticationFailed as refused:
        return ("refused", str(refused))
    return ("ok", credential.arn, credential.account_id, credential.access_key_id)


def _credentials(
    index: DecisionIndex, keys: list[IssuedKey], sessions: list[IssuedSession]
) -> list[object]:
    found: list[object] = []
    for key in keys:
        found.append(
            _authenticate(partial(index.authenticate, key.access_key_id, key.access_key_secret))
        )
        found.append(_authenticate(partial(index.authenticate, key.access_key_id, "wrong")))
    for s in sessions:
        found.append(
            _authenticate(
                partial(
                    index.authenticate_session,
                    s.access_key_id,
                    s.access_key_secret,
                    s.security_token,
                )
            )
        )
    return found


def _fresh(world: World) -> DecisionIndex:
    return DecisionIndex(world.runtime.hasher, world.runtime.token_signer)


def _snapshots(world: World) -> IndexSnapshots:
    """The snapshot table in the runtime's store."""
    datastore = world.runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
    snapshots = IndexSnapshots(datastore, world.runtime.hasher)
    snapshots.create_table()
    return snapshots


def test_snapshot_plus_tail_answers_as_a_replay_from_zero(world: World) -> None:
    owner, _ = _history(world)
    other = world.account("Other")
    keys: list[IssuedKey] = []
    sessions: list[IssuedSession] = []
    _grow(world, owner, keys, sessions)
    _grow(world, other, keys, sessions)
    written = _snapshots(world).write(world.index, snapshot_lock(world.runtime.follower))
    assert written.position == world.head()
    # The tail: a key disabled, one deleted, a user gone, a session revoked, more users.
    world.do("set_access_key_status", owner, "app0", keys[0].access_key_id, "Inactive")
    _grow(world, owner, keys, sessions)
    world.do("delete_access_key", other, "app1", keys[1].access_key_id)
    world.do("detach_policy", owner, "user", "app2", "Custom", "Buckets3")
    world.do("remove_user_from_group", owner, "readers", "u1")
    world.do("delete_user", owner, "u2", detach=True)
    assert world.head() > written.position

    from_snapshot = _fresh(world)
    assert _snapshots(world).load_into(from_snapshot) == written.position
    LogFollower(world.runtime.ledger, from_snapshot).catch_up()
    replayed = _fresh(world)
    LogFollower(world.runtime.ledger, replayed).catch_up()
    starting = _fresh(world)  # replayed as a starting process does: generations left alone
    starting.replaying = True
    LogFollower(world.runtime.ledger, starting).catch_up()
    starting.replaying = False

    accounts = sorted(replayed.accounts)
    assert from_snapshot.position == replayed.position == world.head()
    answers = _answers(replayed, accounts)
    assert _answers(from_snapshot, accounts) == answers
    assert _answers(starting, accounts) == answers
    assert _credentials(starting, keys, sessions) == _credentials(replayed, keys, sessions)
    assert any("ALLOW" in a for row in answers.values() for a in row)
    assert _credentials(from_snapshot, keys, sessions) == _credentials(replayed, keys, sessions)
    oks = [
        c for c in _credentials(replayed, keys, sessions) if isinstance(c, tuple) and c[0] == "ok"
    ]
    assert len(oks) >= 4
    # The recorded state itself is equal, object for object.
    assert pickle.loads(dump_index(from_snapshot)) == pickle.loads(dump_index(replayed))  # noqa: S301


def test_a_row_without_the_key_is_refused_and_never_unpickled(world: World) -> None:
    _history(world)
    snapshots = _snapshots(world)
    written = snapshots.write(world.index)
    forged = pickle.dumps({"position": written.position})
    with snapshots.datastore.transaction(commit=True) as cursor:
        mark = "%s" if "Postgres" in type(snapshots.datastore).__name__ else "?"
        cursor.execute(f"UPDATE {snapshots.table} SET bytes = {mark}", (forged,))  # noqa: S608
    index = _fresh(world)
    assert snapshots.load_into(index) == 0  # refused: replay from 0 instead
    assert index.position == 0
    assert not index.users


def test_a_snapshot_holds_no_key_and_no_secret(world: World) -> None:
    owner, _ = _history(world)
    keys: list[IssuedKey] = []
    sessions: list[IssuedSession] = []
    _grow(world, owner, keys, sessions)
    data = dump_index(world.index)
    secrets = [k.access_key_secret for k in keys] + [s.access_key_secret for s in sessions]
    secrets += ["k" * 40, "t" * 40]  # the hashing key and the admin token of the runtime
    secrets += [key.decode() for key in world.runtime.token_signer.keys.values()]
    for secret in secrets:
        assert secret.encode() not in data
    hashes = [world.index.keys[k.access_key_id].secret_hash for k in keys]
    assert all(h.encode() in data for h in hashes)  # keyed hashes, as in the log
    sealed = [world.index.keys[k.access_key_id].secret_sealed for k in keys]
    sealed += [world.index.sessions[s.access_key_id].secret_sealed for s in sessions]
    assert all(form is not None and form.encode() in data for form in sealed)  # ciphertext


def test_a_snapshot_carries_sealed_secrets_for_the_loading_processs_keyring(
    world: World,
) -> None:
    """Sealed secrets survive a snapshot; only the loading process's keyring opens them."""
    owner, _ = _history(world)
    keys: list[IssuedKey] = []
    sessions: list[IssuedSession] = []
    _grow(world, owner, keys, sessions)
    data = dump_index(world.index)
    loaded = DecisionIndex(
        world.runtime.hasher, world.runtime.token_signer, keyring=world.runtime.keyring
    )
    restore_index(loaded, data)
    assert loaded.keyring is world.runtime.keyring
    for issued in [*keys, *sessions]:
        assert loaded.secret_for(issued.access_key_id) == issued.access_key_secret


def test_the_keyring_is_refused_by_the_snapshot_pickler(world: World) -> None:
    _history(world)
    index = _fresh(world)
    vars(index)["_dead_keys"] = {"LTAIx": ("why", world.runtime.keyring)}  # smuggled in
    with pytest.raises(pickle.PicklingError, match="Keyring must never be written"):
        dump_index(index)


def test_restoring_checks_before_changing_anything(world: World) -> None:
    _history(world)
    data = dump_index(world.index)
    with pytest.raises(SnapshotRefused):
        restore_index(world.index, data)  # not a fresh index
    index = _fresh(world)
    with pytest.raises(SnapshotRefused):
        restore_index(index, pickle.dumps({"position": 3}))
    with pytest.raises(SnapshotRefused):
        restore_index(index, data, position=world.index.position + 1)
    assert index.position == 0
    assert not index.users
    assert SNAPSHOT_TABLE in _snapshots(world).table
