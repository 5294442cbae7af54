"""Ledger commands end to end, with the decision index following the log (docs/design.md §3.1, §4).

The ledger, decision index and follower are wired by ``api.runtime.Runtime`` exactly as an
API process wires them, on each store; commands run through ``Runtime.write`` as the API
runs them, so every write returns only once this process's index has applied it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.arns import group_arn, user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
)
from mandate.domain.identity.principals import User
from mandate.domain.ledger.application import IssuedKey
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Layer
from mandate.projections.decisions.credentials import AuthenticationFailed

HASH_KEY = "test-hash-key-" + "h" * 32
ADMIN_TOKEN = "test-admin-token-" + "a" * 32
ADMIN = AuditContext(actor="mandate:admin", request_id="req-admin", source_ip="127.0.0.1")
OTHER_ACCOUNT = "5550001112223334"


def _document(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def _allow(actions: str | list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


class Client:
    """Runs ledger commands as the API does: as an actor, answering once applied here."""

    def __init__(self, runtime: Runtime, audit: AuditContext = ADMIN) -> None:
        self.runtime = runtime
        self.audit = audit
        self.positions: list[int] = []

    def __getattr__(self, command: str) -> Callable[..., Any]:
        method = getattr(self.runtime.ledger, command)

        def run(*args: Any, **kwargs: Any) -> Any:
            result = self.runtime.write(self.audit, lambda: method(*args, **kwargs))
            position = result.position
            # Runtime.write answers only once this process's index has applied the write.
            assert self.runtime.index.position >= position
            self.positions.append(position)
            return result

        return run


def _runtime(url: str, *, create_tables: bool) -> Runtime:
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, hash_key=HASH_KEY)
    return Runtime(settings, create_tables=create_tables)


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    started = _runtime(store_url, create_tables=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(runtime: Runtime) -> Client:
    return Client(runtime)


def head(runtime: Runtime) -> int:
    return int(runtime.ledger.recorder.max_notification_id() or 0)


def stored_events(runtime: Runtime, after: int = 0, upto: int | None = None) -> list[Any]:
    """The domain events at positions ``after`` < p ≤ ``upto``, as the follower reads them."""
    notifications = runtime.ledger.recorder.select_notifications(
        after, 10_000, stop=upto, inclusive_of_start=False
    )
    return [runtime.ledger.mapper.to_domain_event(n) for n in notifications]


def event_names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def decide_for_key(runtime: Runtime, key: IssuedKey, action: str, resource: str) -> Answer:
    """Authenticate ``key`` and decide as the API's own-credentials path does."""
    credential = runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    return runtime.index.decide(
        lambda: runtime.index.subject_of(credential),
        AccessRequest.make(action, resource),
        memo_key=credential.user_id or credential.access_key_id,
    )


def decide_for_user(
    runtime: Runtime, account: str, user_name: str, action: str, resource: str
) -> Answer:
    user = runtime.index.user_by_name(account, user_name)
    assert user is not None, f"{user_name} is not in the index"
    return runtime.index.decide(
        runtime.index.user_subject(user.id), AccessRequest.make(action, resource), memo_key=user.id
    )


def live_user(runtime: Runtime, account: str, user_name: str) -> User:
    """The live user aggregate of ``user_name``, loaded from the store."""
    view = runtime.index.user_by_name(account, user_name)
    assert view is not None
    user = runtime.ledger.repository.get(view.id)
    assert isinstance(user, User)
    return user


# --- scenario 1 ------------------------------------------------------------------------------


def test_an_enterprise_user_acts_within_the_policy_its_group_holds(
    runtime: Runtime, client: Client
) -> None:
    """A member is allowed inside the group's policy, explained via the group, denied outside."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "ravi.k", "Ravi K")
    key = client.create_access_key(account, "ravi.k")
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "ravi.k")
    manifests = f"acs:oss:*:{account}:manifests/*"
    client.create_policy(
        account, "ManifestWriter", _document(_allow("oss:GetObject", manifests)), "manifests"
    )
    version = client.create_policy_version(
        account,
        "ManifestWriter",
        _document(_allow(["oss:GetObject", "oss:PutObject"], manifests)),
        set_as_default=False,
    ).version_id
    assert version == "v2"
    client.attach_policy(account, "group", "ops", "Custom", "ManifestWriter")

    read = decide_for_key(runtime, key, "oss:GetObject", f"acs:oss:*:{account}:manifests/a.json")
    assert read.allowed
    assert read.billed_account == account
    assert read.chain == (user_arn(account, "ravi.k"),)
    (matched,) = read.decision.matched
    assert (matched.layer, matched.policy_type, matched.policy_name, matched.version) == (
        Layer.IDENTITY,
        "Custom",
        "ManifestWriter",
        "v1",
    )
    assert (matched.statement, matched.via) == (0, group_arn(account, "ops"))

    write = f"acs:oss:*:{account}:manifests/b.json"
    assert decide_for_key(runtime, key, "oss:PutObject", write).decision.kind is (
        DecisionKind.IMPLICIT_DENY
    )
    outside = decide_for_key(runtime, key, "oss:GetObject", f"acs:oss:*:{account}:photos/1.jpg")
    assert outside.decision.kind is DecisionKind.IMPLICIT_DENY
    assert outside.billed_account is None
    elsewhere = f"acs:oss:*:{OTHER_ACCOUNT}:manifests/a.json"
    assert not decide_for_key(runtime, key, "oss:GetObject", elsewhere).allowed

    client.set_default_policy_version(account, "ManifestWriter", "v2")
    switched = decide_for_key(runtime, key, "oss:PutObject", write)
    assert switched.allowed
    assert [m.version for m in switched.decision.matched] == ["v2"]

    client.detach_policy(account, "group", "ops", "Custom", "ManifestWriter")
    after = decide_for_key(runtime, key, "oss:GetObject", f"acs:oss:*:{account}:manifests/a.json")
    assert after.decision.kind is DecisionKind.IMPLICIT_DENY


def test_removals_take_effect_at_the_next_decision(runtime: Runtime, client: Client) -> None:
    """Leaving the group, disabling the key and deleting the user each apply at once."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    key = client.create_access_key(account, "alice")
    client.create_group(account, "readers")
    client.add_user_to_group(account, "readers", "alice")
    client.attach_policy(account, "group", "readers", "System", "AliyunOSSReadOnlyAccess")
    client.attach_policy(account, "user", "alice", "System", "AliyunECSFullAccess")
    bucket = f"acs:oss:*:{account}:bucket/x"
    vm = f"acs:ecs:*:{account}:instance/i-1"

    assert decide_for_key(runtime, key, "oss:GetObject", bucket).allowed
    direct = decide_for_key(runtime, key, "ecs:StartInstance", vm)
    assert direct.allowed
    assert [(m.policy_type, m.policy_name, m.via) for m in direct.decision.matched] == [
        ("System", "AliyunECSFullAccess", None)
    ]

    client.remove_user_from_group(account, "readers", "alice")
    assert not decide_for_key(runtime, key, "oss:GetObject", bucket).allowed
    assert decide_for_key(runtime, key, "ecs:StartInstance", vm).allowed

    client.set_access_key_status(account, "alice", key.access_key_id, "Inactive")
    with pytest.raises(AuthenticationFailed, match="Inactive"):
        runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    client.set_access_key_status(account, "alice", key.access_key_id, "Active")
    assert decide_for_key(runtime, key, "ecs:StartInstance", vm).allowed

    client.delete_user(account, "alice", detach=True)
    with pytest.raises(AuthenticationFailed):
        runtime.index.authenticate(key.access_key_id, key.access_key_secret)


def test_the_root_key_decides_everything_in_its_own_account_until_rotated(
    runtime: Runtime, client: Client
) -> None:
    """The root is allowed inside its account only; after rotation only the new key works."""
    opened = client.open_account("Acme")
    account = opened.account_id
    inside = decide_for_key(
        runtime, opened.root_key, "ecs:DeleteInstance", f"acs:ecs:*:{account}:i"
    )
    assert inside.allowed
    assert inside.decision.matched == ()
    outside = f"acs:ecs:*:{OTHER_ACCOUNT}:i"
    assert not decide_for_key(runtime, opened.root_key, "ecs:DeleteInstance", outside).allowed

    rotated = client.rotate_root_access_key(account)
    with pytest.raises(AuthenticationFailed, match="rotated"):
        runtime.index.authenticate(opened.root_key.access_key_id, opened.root_key.access_key_secret)
    assert decide_for_key(runtime, rotated, "ecs:DeleteInstance", f"acs:ecs:*:{account}:i").allowed


def test_stored_events_carry_the_audit_context_of_their_request(
    runtime: Runtime, client: Client
) -> None:
    """Every event of a write, read back from the store, names the actor that made it."""
    account = client.open_account("Acme").account_id
    start = head(runtime)
    root = AuditContext(
        actor=f"acs:ram::{account}:root",
        credential="LTAIrootkey",
        request_id="req-7",
        source_ip="198.51.100.4",
        reason="onboarding",
    )
    as_root = Client(runtime, root)
    as_root.create_user(account, "alice", None)
    as_root.attach_policy(account, "user", "alice", "System", "ReadOnlyAccess")
    events = stored_events(runtime, start)
    assert event_names(events) == ["NameClaimed", "UserCreated", "PolicyAttached"]
    assert all(e.audit == root.as_dict() for e in events)
    assert all(e.audit["actor"] == "mandate:admin" for e in stored_events(runtime, 0, start))


# --- refused commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    command: Callable[[Client, str], object]
    error: type[DomainError]


BAD_DOCUMENT = _document({"Effect": "Maybe", "Action": "oss:*", "Resource": "*"})
GOOD_DOCUMENT = _document(_allow("oss:GetObject", "*"))
REFUSALS = {
    "third_access_key": Refusal(lambda c, a: c.create_access_key(a, "alice"), LimitExceeded),
    "policy_still_attached": Refusal(lambda c, a: c.delete_policy(a, "Reader"), PreconditionFailed),
    "user_still_attached": Refusal(lambda c, a: c.delete_user(a, "alice"), PreconditionFailed),
    "group_still_has_members": Refusal(lambda c, a: c.delete_group(a, "ops"), PreconditionFailed),
    "invalid_policy_document": Refusal(
        lambda c, a: c.create_policy(a, "Broken", BAD_DOCUMENT), InvalidInput
    ),
    "invalid_version_document": Refusal(
        lambda c, a: c.create_policy_version(a, "Reader", "{not json"), InvalidInput
    ),
    "oversized_document": Refusal(
        lambda c, a: c.create_policy(
            a, "Huge", _document(_allow("oss:GetObject", "acs:oss:*:*:" + "x" * 7000))
        ),
        InvalidInput,
    ),
    "user_name_with_a_space": Refusal(
        lambda c, a: c.create_user(a, "bad name", None), InvalidInput
    ),
    "user_name_with_a_trailing_newline": Refusal(
        lambda c, a: c.create_user(a, "alice\n", None), InvalidInput
    ),
    "user_name_too_long": Refusal(lambda c, a: c.create_user(a, "u" * 65, None), InvalidInput),
    "empty_group_name": Refusal(lambda c, a: c.create_group(a, ""), InvalidInput),
    "group_name_with_a_slash": Refusal(lambda c, a: c.create_group(a, "ops/admins"), InvalidInput),
    "policy_name_with_a_colon": Refusal(
        lambda c, a: c.create_policy(a, "oss:Reader", GOOD_DOCUMENT), InvalidInput
    ),
    "duplicate_user_name": Refusal(lambda c, a: c.create_user(a, "alice", None), Conflict),
    "duplicate_attachment": Refusal(
        lambda c, a: c.attach_policy(a, "user", "alice", "Custom", "Reader"), Conflict
    ),
    "unknown_system_policy": Refusal(
        lambda c, a: c.attach_policy(a, "user", "alice", "System", "NoSuchAccess"), NotFound
    ),
    "unknown_policy_type": Refusal(
        lambda c, a: c.attach_policy(a, "user", "alice", "Inline", "Reader"), InvalidInput
    ),
    "default_version_delete": Refusal(
        lambda c, a: c.delete_policy_version(a, "Reader", "v1"), Conflict
    ),
    "sixth_policy_version": Refusal(
        lambda c, a: c.create_policy_version(a, "Full", GOOD_DOCUMENT), LimitExceeded
    ),
    "unknown_user": Refusal(lambda c, a: c.create_access_key(a, "nobody"), NotFound),
    "unknown_account": Refusal(lambda c, a: c.create_user(OTHER_ACCOUNT, "bob", None), NotFound),
    "bad_key_status": Refusal(
        lambda c, a: c.set_access_key_status(a, "alice", "LTAIx", "Paused"), InvalidInput
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_refused_command_writes_no_event(runtime: Runtime, client: Client, case: str) -> None:
    """The command raises its domain error and the log's head does not move."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    client.create_access_key(account, "alice")
    client.create_access_key(account, "alice")
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "alice")
    client.create_policy(account, "Reader", GOOD_DOCUMENT)
    client.attach_policy(account, "user", "alice", "Custom", "Reader")
    client.create_policy(account, "Full", GOOD_DOCUMENT)
    for _ in range(4):
        client.create_policy_version(account, "Full", GOOD_DOCUMENT)
    before = head(runtime)
    assert runtime.index.position == before

    refusal = REFUSALS[case]
    with pytest.raises(refusal.error):
        refusal.command(client, account)

    assert head(runtime) == before
    assert runtime.follower.catch_up() == before


def test_an_invalid_document_is_refused_naming_the_path_of_the_fault(client: Client) -> None:
    """The InvalidInput names policy_document.Statement[0].Effect, zero-based."""
    account = client.open_account("Acme").account_id
    with pytest.raises(InvalidInput) as refused:
        client.create_policy(account, "Broken", BAD_DOCUMENT)
    assert [e.field for e in refused.value.errors] == ["policy_document.Statement[0].Effect"]


def test_a_closed_account_refuses_every_command_and_cannot_close_twice(
    runtime: Runtime, client: Client
) -> None:
    """After AccountClosed, commands in the account are Conflicts that write nothing."""
    opened = client.open_account("Acme")
    account = opened.account_id
    client.create_user(account, "alice", None)
    client.close_account(account)
    before = head(runtime)
    for command in (
        lambda: client.create_user(account, "bob", None),
        lambda: client.create_access_key(account, "alice"),
        lambda: client.rotate_root_access_key(account),
        lambda: client.close_account(account),
    ):
        with pytest.raises(Conflict):
            command()
    assert head(runtime) == before
    with pytest.raises(AuthenticationFailed, match="closed"):
        runtime.index.authenticate(opened.root_key.access_key_id, opened.root_key.access_key_secret)


# --- names are claims ------------------------------------------------------------------------


def test_a_recreated_user_is_a_new_user_and_nothing_of_the_old_one_revives(
    runtime: Runtime, client: Client
) -> None:
    """A deleted name claimed again names a new id with no keys, policies or groups."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    old_key = client.create_access_key(account, "alice")
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "alice")
    client.attach_policy(account, "group", "ops", "System", "AliyunOSSFullAccess")
    client.attach_policy(account, "user", "alice", "System", "AliyunECSFullAccess")
    old = live_user(runtime, account, "alice")
    bucket = f"acs:oss:*:{account}:b/1"
    assert decide_for_key(runtime, old_key, "oss:GetObject", bucket).allowed

    start = head(runtime)
    deleted_at = client.delete_user(account, "alice", detach=True).position
    in_one_save = stored_events(runtime, start, deleted_at)
    assert event_names(in_one_save) == [
        "PolicyDetached",
        "UserRemovedFromGroup",
        "UserDeleted",
        "NameReleased",
    ]
    assert head(runtime) == deleted_at

    client.create_user(account, "alice", None)
    new = live_user(runtime, account, "alice")
    assert new.id != old.id
    assert (new.access_keys, new.attachments, new.groups) == ({}, {}, {})
    view = runtime.index.user_by_name(account, "alice")
    assert view is not None
    assert (view.id, view.access_key_ids, view.attachments, view.groups) == (new.id, (), {}, {})
    assert old.id not in runtime.index.users
    ops = runtime.index.group_by_name(account, "ops")
    assert ops is not None
    assert ops.member_ids == frozenset()

    with pytest.raises(AuthenticationFailed, match="deleted"):
        runtime.index.authenticate(old_key.access_key_id, old_key.access_key_secret)
    for action, resource in (
        ("oss:GetObject", bucket),
        ("ecs:StartInstance", f"acs:ecs:*:{account}:instance/i-1"),
    ):
        assert not decide_for_user(runtime, account, "alice", action, resource).allowed

    # A key of the new alice works, and still brings none of the old alice's permissions.
    new_key = client.create_access_key(account, "alice")
    assert new_key.access_key_id != old_key.access_key_id
    assert not decide_for_key(runtime, new_key, "oss:GetObject", bucket).allowed


def test_a_recreated_policy_is_not_attached_where_the_old_one_was(
    runtime: Runtime, client: Client
) -> None:
    """A policy deleted with detach and re-created under its name holds no attachments."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "alice")
    everything = _document(_allow("*", "*"))
    client.create_policy(account, "Reader", everything)
    client.attach_policy(account, "user", "alice", "Custom", "Reader")
    client.attach_policy(account, "group", "ops", "Custom", "Reader")
    resource = f"acs:oss:*:{account}:b/1"
    assert decide_for_user(runtime, account, "alice", "oss:GetObject", resource).allowed

    with pytest.raises(PreconditionFailed):
        client.delete_policy(account, "Reader")
    start = head(runtime)
    deleted_at = client.delete_policy(account, "Reader", detach=True).position
    in_one_save = stored_events(runtime, start, deleted_at)
    assert sorted(event_names(in_one_save)[:2]) == ["PolicyDetached", "PolicyDetached"]
    assert {type(e).__qualname__ for e in in_one_save[:2]} == {
        "User.PolicyDetached",
        "Group.PolicyDetached",
    }
    assert event_names(in_one_save)[2:] == ["PolicyDeleted", "NameReleased"]
    assert not decide_for_user(runtime, account, "alice", "oss:GetObject", resource).allowed

    client.create_policy(account, "Reader", everything)
    assert live_user(runtime, account, "alice").attachments == {}
    ops = runtime.index.group_by_name(account, "ops")
    assert ops is not None
    assert ops.attachments == {}
    assert not decide_for_user(runtime, account, "alice", "oss:GetObject", resource).allowed
    client.delete_policy(account, "Reader")  # nothing holds the new one: no detach needed


def test_deleting_a_group_with_detach_removes_its_memberships_in_the_same_save(
    runtime: Runtime, client: Client
) -> None:
    """Each member gets UserRemovedFromGroup and the group its detaches, in one save."""
    account = client.open_account("Acme").account_id
    for name in ("alice", "bob", "carol"):
        client.create_user(account, name, None)
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "alice")
    client.add_user_to_group(account, "ops", "bob")
    client.attach_policy(account, "group", "ops", "System", "AliyunOSSFullAccess")
    resource = f"acs:oss:*:{account}:b/1"
    assert decide_for_user(runtime, account, "bob", "oss:PutObject", resource).allowed

    with pytest.raises(PreconditionFailed):
        client.delete_group(account, "ops")
    start = head(runtime)
    deleted_at = client.delete_group(account, "ops", detach=True).position
    in_one_save = stored_events(runtime, start, deleted_at)
    assert event_names(in_one_save) == [
        "UserRemovedFromGroup",
        "UserRemovedFromGroup",
        "PolicyDetached",
        "GroupDeleted",
        "NameReleased",
    ]
    members = {live_user(runtime, account, n).id for n in ("alice", "bob")}
    assert {e.originator_id for e in in_one_save[:2]} == members
    assert head(runtime) == deleted_at

    for name in ("alice", "bob", "carol"):
        assert live_user(runtime, account, name).groups == {}
        view = runtime.index.user_by_name(account, name)
        assert view is not None
        assert view.groups == {}
        assert not decide_for_user(runtime, account, name, "oss:PutObject", resource).allowed
    assert runtime.index.group_by_name(account, "ops") is None

    client.create_group(account, "ops")
    recreated = runtime.index.group_by_name(account, "ops")
    assert recreated is not None
    assert (recreated.member_ids, recreated.attachments) == (frozenset(), {})
    client.delete_group(account, "ops")


# --- positions, rebuilds and time ------------------------------------------------------------


def test_positions_increase_and_are_applied_when_the_write_returns(
    runtime: Runtime, client: Client
) -> None:
    """Each write answers a larger position that the index has already applied."""
    account = client.open_account("Acme").account_id
    client.create_user(account, "alice", None)
    client.create_access_key(account, "alice")
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "alice")
    client.create_policy(account, "Reader", GOOD_DOCUMENT)
    client.attach_policy(account, "user", "alice", "Custom", "Reader")
    client.delete_user(account, "alice", detach=True)
    positions = client.positions
    assert positions == sorted(set(positions))
    assert positions[-1] == head(runtime) == runtime.index.position

    # Straight through the ledger (no Runtime.write), the follower catches up on demand.
    with acting_as(ADMIN):
        position = runtime.ledger.create_user(account, "bob", None).position
    assert position > positions[-1]
    assert runtime.follower.wait_for(position, timeout=10)
    assert runtime.index.position >= position
    assert runtime.index.user_by_name(account, "bob") is not None


def test_a_fresh_runtime_rebuilds_the_same_index_from_position_zero(
    store_url: str, runtime: Runtime, client: Client
) -> None:
    """A second process replaying the log holds equal users, groups, policies, keys, answers."""
    account = client.open_account("Acme").account_id
    keys = {}
    for name in ("alice", "bob", "carol"):
        client.create_user(account, name, None)
        keys[name] = client.create_access_key(account, name)
    client.set_access_key_status(account, "carol", keys["carol"].access_key_id, "Inactive")
    client.create_group(account, "ops")
    client.add_user_to_group(account, "ops", "bob")
    client.create_policy(account, "Reader", _document(_allow("oss:Get*", "*")))
    client.create_policy_version(account, "Reader", _document(_allow("oss:*", "*")))
    client.set_default_policy_version(account, "Reader", "v2")
    client.attach_policy(account, "group", "ops", "Custom", "Reader")
    client.attach_policy(account, "user", "alice", "System", "AliyunECSFullAccess")
    client.create_user(account, "dave", None)
    client.delete_user(account, "dave")
    client.rotate_root_access_key(account)

    replayed = _runtime(store_url, create_tables=False)
    try:
        assert replayed.index.position == 0
        replayed.start()
        assert replayed.index.position == runtime.index.position == head(runtime)
        for attribute in ("accounts", "users", "user_ids", "groups", "group_ids", "policies"):
            assert getattr(replayed.index, attribute) == getattr(runtime.index, attribute)
        assert replayed.index.policy_ids == runtime.index.policy_ids
        assert replayed.index.keys == runtime.index.keys
        assert replayed.index.ledger_time == runtime.index.ledger_time

        requests = [
            (user, action, f"acs:{action.split(':')[0]}:*:{account}:thing/1")
            for user in ("alice", "bob", "carol")
            for action in ("oss:GetObject", "oss:PutObject", "ecs:StartInstance", "ram:CreateUser")
        ]
        for user, action, resource in requests:
            first = decide_for_user(runtime, account, user, action, resource)
            second = decide_for_user(replayed, account, user, action, resource)
            assert first == second, (user, action)
        bucket = f"acs:oss:*:{account}:thing/1"
        assert decide_for_user(replayed, account, "bob", "oss:PutObject", bucket).allowed
        with pytest.raises(AuthenticationFailed, match="Inactive"):
            replayed.index.authenticate(
                keys["carol"].access_key_id, keys["carol"].access_key_secret
            )
    finally:
        replayed.stop()


def test_ledger_time_never_goes_back(runtime: Runtime, client: Client) -> None:
    """The index's ledger time is non-decreasing and is the latest event timestamp applied."""
    account = client.open_account("Acme").account_id
    times = [runtime.index.ledger_time]
    for name in ("alice", "bob", "carol", "dave"):
        client.create_user(account, name, None)
        times.append(runtime.index.ledger_time)
        client.delete_user(account, name)
        times.append(runtime.index.ledger_time)
    known = [t for t in times if t is not None]
    assert len(known) == len(times)
    assert all(t.utcoffset() is not None for t in known)
    assert all(earlier <= later for earlier, later in itertools.pairwise(known))

    events = stored_events(runtime)
    running = None
    for e in events:
        running = e.timestamp if running is None else max(running, e.timestamp)
    assert runtime.index.ledger_time == running
