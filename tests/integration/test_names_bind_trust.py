"""Names are claims: a trust policy or a delegation is bound to the entity, not its name.

A trust statement naming ``user/alice`` (or ``role/r``) exactly admits only the entity that
already held that name when the trust policy was written (``domain.sts.assume_role.name_binds``: its
name's position is older than the trust's). An ``alice`` re-created after the first was
deleted — or a ``bob`` renamed into ``alice`` — is another principal and is not admitted until
the trust is written again; a wildcard still names whoever holds a matching name. A delegation
records its grantee's id, so it never reaches a re-created namesake. The rule is checked live
(AssumeRole, "could P" through roles) and as of instants from the temporal index, whose
``user`` and ``role`` facts carry the same positions, on each store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mandate.domain.common.arns import user_arn
from mandate.domain.common.errors import NotPermitted
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.policy.document import DocumentKind, parse_policy_document
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.sts.assume_role import AssumingCaller, trust_admits
from mandate.projections.history.as_of_facts import trust_position_of
from tests.integration.test_entrustments import delegate, grant, photos
from tests.integration.test_roles_sessions import (
    ASSUME,
    World,
    allow,
    document,
    trust,
    world,
)

__all__ = ["world"]

WAIT = 10.0
READ = "oss:GetObject"


def _could(world: World, account: str, user_name: str, resource: str) -> bool:
    """ "Could the user do it through a role?" as ``POST /v1/authorize`` with principal asks."""
    found = world.index.principal_for_arn(user_arn(account, user_name))
    assert found is not None
    answer = world.index.answer_through_roles(found[1], AccessRequest.make(READ, resource, {}))
    return answer is not None and answer.allowed


def _admitted_as_of(world: World, account: str, user_name: str, role: str, at: datetime) -> bool:
    """Whether the role's trust admitted the user at ``at``, from the temporal index's facts
    then (the user's and the role's positions), judged by the one rule (``trust_admits``)."""
    runtime = world.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    principal, why = runtime.as_of.principal_for_arn(user_arn(account, user_name), at)
    assert principal is not None, why
    role_account, role_name = role.split(":")[3], role.rpartition("/")[2]
    reader = runtime.as_of
    with reader.store.transaction(commit=False) as cursor:
        row = reader.facts.named(cursor, "role", role_account, role_name, to_micros(at))
    assert row is not None
    written = parse_policy_document(
        json.loads(row["payload"])["trust_policy"], kind=DocumentKind.TRUST
    )
    caller = AssumingCaller(principal.subject, principal.user_id)
    return trust_admits(written, caller, {}, written_at=trust_position_of(row))[0]


def _now() -> datetime:
    return datetime.now(UTC)


def test_a_trust_naming_a_deleted_user_does_not_admit_a_recreated_one(world: World) -> None:
    a = world.account("Alpha")
    b = world.account("Beta")
    shared = photos(a)
    alice = world.user(b, "alice", ASSUME)
    role = world.role(a, "partner", trust(alice.arn), custom=document(allow(READ, shared)))
    world.assume(alice, role, "first")
    assert _could(world, b, "alice", f"acs:oss:*:{a}:photos/x")
    before = _now()
    assert _admitted_as_of(world, b, "alice", role, before)

    world.do("delete_user", b, "alice", detach=True)
    again = world.user(b, "alice", ASSUME)
    assert again.user_id != alice.user_id
    error = world.refused(NotPermitted, lambda: world.assume(again, role, "second"))
    # another account's role: the same words as a missing role or an untrusting one
    assert "does not exist or its trust policy does not admit" in error.detail
    assert not _could(world, b, "alice", f"acs:oss:*:{a}:photos/x")
    after = _now()
    assert not _admitted_as_of(world, b, "alice", role, after)
    # history keeps its answer: the first alice was admitted then
    assert _admitted_as_of(world, b, "alice", role, before)

    # writing the trust again binds the name to the entity holding it now
    world.do("update_role", a, "partner", assume_role_policy_document=trust(again.arn))
    world.assume(again, role, "third")
    assert _could(world, b, "alice", f"acs:oss:*:{a}:photos/x")
    assert _admitted_as_of(world, b, "alice", role, _now())
    assert not _admitted_as_of(world, b, "alice", role, after)


def test_a_user_renamed_into_a_trusted_name_is_not_admitted(world: World) -> None:
    a = world.account("Alpha")
    alice = world.user(a, "alice", ASSUME)
    bob = world.user(a, "bob", ASSUME)
    role = world.role(a, "ops", trust(alice.arn), custom=document(allow(READ, photos(a))))
    world.do("delete_user", a, "alice", detach=True)
    world.do("update_user", a, "bob", new_user_name="alice", new_display_name=None)
    assert bob.user_id is not None
    bob_now = world.index.user_subject(bob.user_id)
    assert bob_now.arn == user_arn(a, "alice")
    assert not _could(world, a, "alice", f"acs:oss:*:{a}:photos/x")
    assert not _admitted_as_of(world, a, "alice", role, _now())
    # a display-name change keeps the name, and the binding
    world.do("update_role", a, "ops", assume_role_policy_document=trust(user_arn(a, "alice")))
    world.do("update_user", a, "alice", new_user_name=None, new_display_name="Alice B.")
    assert _could(world, a, "alice", f"acs:oss:*:{a}:photos/x")
    assert _admitted_as_of(world, a, "alice", role, _now())


def test_a_wildcard_or_an_account_names_whoever_holds_the_name(world: World) -> None:
    a = world.account("Alpha")
    b = world.account("Beta")
    world.user(b, "alice", ASSUME)
    by_pattern = world.role(
        a, "pattern", trust(f"acs:ram::{b}:user/ali*"), custom=document(allow(READ, photos(a)))
    )
    by_account = world.role(a, "account", trust(b), custom=document(allow(READ, photos(a))))
    world.do("delete_user", b, "alice", detach=True)
    again = world.user(b, "alice", ASSUME)
    world.assume(again, by_pattern, "p-1")
    world.assume(again, by_account, "a-1")
    assert _admitted_as_of(world, b, "alice", by_pattern, _now())


def test_a_deny_naming_a_user_refuses_a_recreated_one_too(world: World) -> None:
    a = world.account("Alpha")
    alice = world.user(a, "alice", ASSUME)
    refusing = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": a}},
            {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"RAM": alice.arn}},
        ],
    }
    role = world.role(a, "guarded", refusing, custom=document(allow(READ, photos(a))))
    world.do("delete_user", a, "alice", detach=True)
    again = world.user(a, "alice", ASSUME)
    world.refused(NotPermitted, lambda: world.assume(again, role), match="denies")


def test_a_session_of_a_recreated_role_is_not_the_trusted_role(world: World) -> None:
    a = world.account("Alpha")
    ops = world.user(a, "ops", ASSUME)
    first = world.role(a, "hop", trust(ops.arn), system=(ASSUME,))
    target = world.role(a, "target", trust(first), custom=document(allow(READ, photos(a))))
    world.assume(world.session(world.assume(ops, first, "h-1")), target, "t-1")
    world.do("delete_role", a, "hop", detach=True)
    world.role(a, "hop", trust(ops.arn), system=(ASSUME,))
    chained = world.session(world.assume(ops, first, "h-2"))
    error = world.refused(NotPermitted, lambda: world.assume(chained, target, "t-2"))
    assert "took the name later" in error.detail
    world.do("update_role", a, "target", assume_role_policy_document=trust(first))
    world.assume(chained, target, "t-3")


def test_a_delegation_to_a_deleted_user_never_reaches_a_recreated_one(world: World) -> None:
    a = world.account("Alpha")
    b = world.account("Beta")
    contract = grant(world, a, b, document(allow(READ, photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    delegation_id, _ = delegate(world, contract, ravi.arn, document(allow(READ, photos(a))))
    world.assume(ravi, contract.role_arn, "r-1")
    before = _now()
    world.do("delete_user", b, "ravi", detach=True)
    again = world.user(b, "ravi", ASSUME)
    view = world.index.delegations[delegation_id]
    assert view.grantee_id == ravi.user_id != again.user_id
    world.refused(
        NotPermitted,
        lambda: world.assume(again, contract.role_arn, "r-2"),
        match="no live delegation",
    )
    assert not _could(world, b, "ravi", contract.photo())
    # the temporal index tells the two apart by entity and by when each took the name
    runtime = world.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    old, _ = runtime.as_of.principal_for_arn(again.arn, before)
    new, _ = runtime.as_of.principal_for_arn(again.arn, _now())
    assert old is not None
    assert new is not None
    assert (old.user_id, new.user_id) == (ravi.user_id, again.user_id)
    assert old.subject.named_at is not None
    assert new.subject.named_at is not None
    assert old.subject.named_at < new.subject.named_at
