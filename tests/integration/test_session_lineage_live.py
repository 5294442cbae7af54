"""A live session's lineage, on each store (docs/design.md §3.3, §5): revocation, role chaining,
"could P do it?" through roles, the live sessions of a role, and a second process.

A session is authenticated afresh before every decision, as every API request does, so what
a test observes is what the next request would get: the lineage is re-checked and the memo
is asked under the session's current generation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mandate.api.runtime import Runtime, StoreUnavailable
from mandate.api.settings import Settings
from mandate.domain.common.arns import assumed_role_arn, role_arn, root_arn, user_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import Conflict, InvalidInput, NotFound, NotPermitted
from mandate.domain.policy.decisions import Subject
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Effect, Layer
from mandate.domain.sts.sessions import Session, session_aggregate_id
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential
from tests.integration.runtimes import started_runtime
from tests.integration.test_roles_sessions import (
    ASSUME,
    World,
    allow,
    document,
    layers_of,
    trust,
    world,
)

__all__ = ["world"]  # the fixture, shared with test_roles_sessions

TOKEN_KEY = "token-signing-key-" + "s" * 32


def _pause() -> None:
    """Let the clock move, so that instants taken on either side are strictly ordered."""
    time.sleep(0.02)


def user_subject(world: World, credential: Credential) -> Subject:
    assert credential.user_id is not None
    return world.index.user_subject(credential.user_id)


# --- revoking ----------------------------------------------------------------------------------


def test_a_revoked_session_is_refused_and_its_siblings_are_not(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    revoked, sibling = world.assume(app, arn, "one"), world.assume(app, arn, "two")
    resource = f"acs:oss:*:{account}:b/1"
    assert world.decide_session(revoked, "oss:GetObject", resource).allowed

    start = world.head()
    position = world.do("revoke_session", revoked.access_key_id).position
    assert world.names_since(start) == ["SessionRevoked"]
    assert position == world.head()
    with pytest.raises(AuthenticationFailed, match=f"{revoked.access_key_id} was revoked"):
        world.session(revoked)
    assert world.decide_session(sibling, "oss:GetObject", resource).allowed

    # revoking again records nothing; an unknown session is 404 and records nothing
    assert world.do("revoke_session", revoked.access_key_id).position == start + 1
    assert world.head() == start + 1
    error = world.refused(NotFound, lambda: world.runtime.ledger.revoke_session("STS.nope"))
    assert error.code == "EntityNotExist.Session"


def test_revoking_a_roles_sessions_issued_before_an_instant(world: World) -> None:
    """Older sessions die, newer ones live; the horizon never moves back; never the future."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    resource = f"acs:oss:*:{account}:b/1"
    older = world.assume(app, arn, "older")
    _pause()
    horizon = datetime.now(UTC)
    _pause()
    newer = world.assume(app, arn, "newer")

    start = world.head()
    world.do("revoke_role_sessions", account, "r", issued_before=horizon)
    (event,) = world.events_since(start)
    assert (type(event).__name__, event.issued_before) == ("RoleSessionsRevoked", horizon)
    with pytest.raises(AuthenticationFailed, match=f"sessions of role {arn} issued before"):
        world.session(older)
    assert world.decide_session(newer, "oss:GetObject", resource).allowed

    # an earlier horizon does not bring the older session back
    world.do("revoke_role_sessions", account, "r", issued_before=horizon - timedelta(hours=1))
    with pytest.raises(AuthenticationFailed, match="issued before"):
        world.session(older)
    assert world.decide_session(newer, "oss:GetObject", resource).allowed

    ledger = world.runtime.ledger
    future = datetime.now(UTC) + timedelta(minutes=5)
    error = world.refused(
        InvalidInput, lambda: ledger.revoke_role_sessions(account, "r", issued_before=future)
    )
    assert error.code == "InvalidParameter.IssuedBefore"
    naive = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    world.refused(InvalidInput, lambda: ledger.revoke_role_sessions(account, "r", naive))
    # not representable in UTC, or before 1970: refused, so no reader of the log meets it
    for bad in (
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
    ):
        world.refused(InvalidInput, lambda bad=bad: ledger.revoke_role_sessions(account, "r", bad))
    world.refused(NotFound, lambda: ledger.revoke_role_sessions(account, "nope"))
    assert world.decide_session(newer, "oss:GetObject", resource).allowed

    # without an instant: every session issued so far
    world.do("revoke_role_sessions", account, "r")
    with pytest.raises(AuthenticationFailed, match="issued before"):
        world.session(newer)
    _pause()
    fresh = world.assume(app, arn, "fresh")
    assert world.decide_session(fresh, "oss:GetObject", resource).allowed


def test_a_deleted_role_refuses_its_sessions_naming_the_role(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "doomed", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    world.session(issued)
    world.do("delete_role", account, "doomed", detach=True)
    with pytest.raises(AuthenticationFailed, match=f"role {arn} was deleted"):
        world.session(issued)


def test_detaching_the_roles_policy_denies_the_next_decision_despite_the_memo(
    world: World,
) -> None:
    """An Allow memoised before the detach is not served after it; re-attaching allows again."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    resource = f"acs:oss:*:{account}:b/1"
    first = world.decide_session(issued, "oss:GetObject", resource)
    assert first.allowed
    assert world.decide_session(issued, "oss:GetObject", resource) is first  # memoised

    world.do("detach_policy", account, "role", "r", "System", "AliyunOSSFullAccess")
    after = world.decide_session(issued, "oss:GetObject", resource)
    assert after.decision.kind is DecisionKind.IMPLICIT_DENY
    assert after.billed_account is None

    world.do("attach_policy", account, "role", "r", "System", "AliyunOSSFullAccess")
    assert world.decide_session(issued, "oss:GetObject", resource).allowed


def test_a_new_default_version_changes_a_sessions_decision_at_once(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    bucket = f"acs:oss:*:{account}:b/*"
    arn = world.role(account, "r", trust(app.arn), custom=document(allow("oss:GetObject", bucket)))
    issued = world.assume(app, arn)
    resource = f"acs:oss:*:{account}:b/1"
    read = world.decide_session(issued, "oss:GetObject", resource)
    assert read.allowed
    assert [m.version for m in read.decision.matched] == ["v1"]
    assert not world.decide_session(issued, "oss:PutObject", resource).allowed

    version = world.do(
        "create_policy_version", account, "rPolicy", document(allow("oss:PutObject", bucket))
    ).version_id
    assert version == "v2"
    # a version that is not the default changes nothing
    assert world.decide_session(issued, "oss:GetObject", resource).allowed
    assert not world.decide_session(issued, "oss:PutObject", resource).allowed

    world.do("set_default_policy_version", account, "rPolicy", "v2")
    write = world.decide_session(issued, "oss:PutObject", resource)
    assert write.allowed
    assert [(m.layer, m.version) for m in write.decision.matched] == [(Layer.ROLE, "v2")]
    assert not world.decide_session(issued, "oss:GetObject", resource).allowed


def test_a_session_dies_with_its_source_user(world: World) -> None:
    """Deleting the user refuses its sessions; a new user of the same name revives nothing."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(root_arn(account)), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    world.session(issued)
    world.do("delete_user", account, "app", detach=True)
    with pytest.raises(AuthenticationFailed, match=f"source user {app.arn} was deleted"):
        world.session(issued)
    world.user(account, "app", ASSUME)
    with pytest.raises(AuthenticationFailed, match="was deleted"):
        world.session(issued)


def test_a_cross_account_session_dies_with_its_source_account(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    arn = world.role(a, "partner", trust(root_arn(b)), system=("AliyunOSSFullAccess",))
    bob = world.user(b, "bob", ASSUME)
    issued = world.assume(bob, arn)
    assert world.decide_session(issued, "oss:GetObject", f"acs:oss:*:{a}:b/1").allowed
    world.do("close_account", b)
    with pytest.raises(AuthenticationFailed, match=f"source account {b} is closed"):
        world.session(issued)


def test_a_replaced_trust_stops_new_sessions_only(world: World) -> None:
    """The trust decides who may assume; it is no link of an issued session's lineage."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    other = world.user(account, "other", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    read = AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/1")
    issued = world.assume(app, arn)
    assert world.index.answer_through_roles(user_subject(world, app), read) is not None

    world.do("update_role", account, "r", assume_role_policy_document=trust(other.arn))
    world.refused(NotPermitted, lambda: world.assume(app, arn), match="does not name")
    assert world.index.answer_through_roles(user_subject(world, app), read) is None
    assert world.decide_session(issued, read.action, read.resource).allowed
    assert world.assume(other, arn, "other").arn == assumed_role_arn(account, "r", "other")


def test_a_closed_account_refuses_its_roles_sessions(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    world.do("close_account", account)
    with pytest.raises(AuthenticationFailed, match=f"account {account} is closed"):
        world.session(issued)


def test_deleting_a_custom_policy_a_role_holds_needs_detach_and_then_denies(
    world: World,
) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), custom=document(allow("oss:*", "*")))
    issued = world.assume(app, arn)
    resource = f"acs:oss:*:{account}:b/1"
    assert world.decide_session(issued, "oss:GetObject", resource).allowed
    world.refused(Conflict, lambda: world.runtime.ledger.delete_policy(account, "rPolicy"))
    start = world.head()
    world.do("delete_policy", account, "rPolicy", detach=True)
    detached = world.events_since(start)[0]
    assert type(detached).__qualname__ == "Role.PolicyDetached"
    assert not world.decide_session(issued, "oss:GetObject", resource).allowed
    view = world.index.role_by_name(account, "r")
    assert view is not None
    assert view.attachments == {}


# --- role chaining -----------------------------------------------------------------------------


class Chain:
    """user app → role first (session parent) → role second (session child), in one account."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.account = account = world.account("Alpha")
        self.app = world.user(account, "app", ASSUME)
        self.bucket = f"acs:oss:*:{account}:b/1"
        self.vm = f"acs:ecs:*:{account}:instance/i-1"
        self.db = f"acs:rds:*:{account}:instance/db-1"
        self.first = world.role(
            account,
            "first",
            trust(self.app.arn),
            custom=document(
                allow("sts:AssumeRole", role_arn(account, "second")),
                allow("oss:GetObject", f"acs:oss:*:{account}:b/*"),
                allow("ecs:*", "*"),
            ),
        )
        self.second = world.role(
            account,
            "second",
            trust(self.first),
            custom=document(
                allow("oss:GetObject", f"acs:oss:*:{account}:b/*"),
                allow("rds:*", "*"),
            ),
        )
        self.parent = world.assume(self.app, self.first, "parent", duration_seconds=900)
        self.child = world.assume(world.session(self.parent), self.second, "child")


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def test_a_chained_session_keeps_its_parents_layers_and_lineage(chain: Chain) -> None:
    world = chain.world
    parent, child = world.session(chain.parent), world.session(chain.child)
    child_arn = assumed_role_arn(chain.account, "second", "child")
    parent_arn = assumed_role_arn(chain.account, "first", "parent")
    assert child.arn == child_arn
    assert child.subject is not None
    assert child.subject.chain == (chain.app.arn, chain.first, parent_arn, chain.second, child_arn)
    assert [layer.layer for layer in child.subject.layers] == [Layer.ROLE, Layer.ROLE]

    both = world.decide(child, "oss:GetObject", chain.bucket)
    assert both.allowed
    assert layers_of(both) == [(Layer.ROLE, Effect.ALLOW), (Layer.ROLE, Effect.ALLOW)]
    assert {m.policy_name for m in both.decision.matched} == {"firstPolicy", "secondPolicy"}
    assert both.chain == child.subject.chain

    # only the parent's role allows ECS: the child may not
    assert world.decide(parent, "ecs:StartInstance", chain.vm).allowed
    only_parent = world.decide(child, "ecs:StartInstance", chain.vm)
    assert only_parent.decision.kind is DecisionKind.IMPLICIT_DENY
    # only the child's role allows RDS: neither may
    assert not world.decide(parent, "rds:CreateDBInstance", chain.db).allowed
    only_child = world.decide(child, "rds:CreateDBInstance", chain.db)
    assert only_child.decision.kind is DecisionKind.IMPLICIT_DENY


def test_a_chained_session_records_its_parent_and_never_outlives_it(chain: Chain) -> None:
    world = chain.world
    stored: object = world.runtime.ledger.repository.get(
        session_aggregate_id(chain.child.access_key_id)
    )
    assert isinstance(stored, Session)
    assert stored.parent_access_key_id == chain.parent.access_key_id
    assert stored.source_arn == assumed_role_arn(chain.account, "first", "parent")
    assert stored.source_user_id == chain.app.user_id
    # asked for 3,600 s under a parent of 900 s: capped at the parent's expiration
    assert chain.child.expiration <= chain.parent.expiration
    assert chain.child.expiration == chain.parent.expiration
    with pytest.raises(AuthenticationFailed, match="expired"):
        world.session(chain.child, now=chain.parent.expiration)


def test_a_revoked_parent_refuses_the_child_naming_the_parent(chain: Chain) -> None:
    world = chain.world
    assert world.decide_session(chain.child, "oss:GetObject", chain.bucket).allowed
    world.do("revoke_session", chain.parent.access_key_id)
    key = chain.parent.access_key_id
    with pytest.raises(AuthenticationFailed, match=f"parent session {key} is no longer valid"):
        world.session(chain.child)
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        world.session(chain.child)


def test_the_child_dies_when_its_parents_role_revokes_its_sessions(chain: Chain) -> None:
    world = chain.world
    world.do("revoke_role_sessions", chain.account, "first")
    with pytest.raises(AuthenticationFailed, match=r"parent session .* issued before"):
        world.session(chain.child)


def test_the_child_dies_with_the_source_user(chain: Chain) -> None:
    world = chain.world
    world.do("delete_user", chain.account, "app", detach=True)
    with pytest.raises(AuthenticationFailed, match=f"source user {chain.app.arn} was deleted"):
        world.session(chain.child)


def test_detaching_the_parents_role_policy_denies_the_child(chain: Chain) -> None:
    """The child's memo generation includes its parent's role: no stale Allow."""
    world = chain.world
    first = world.decide_session(chain.child, "oss:GetObject", chain.bucket)
    assert first.allowed
    assert world.decide_session(chain.child, "oss:GetObject", chain.bucket) is first
    world.do("detach_policy", chain.account, "role", "first", "Custom", "firstPolicy")
    assert not world.decide_session(chain.child, "oss:GetObject", chain.bucket).allowed


def test_a_session_assumes_only_what_its_layers_and_the_trust_allow(world: World) -> None:
    """The session's own layers decide sts:AssumeRole; the trust must name its role."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    first = world.role(account, "first", trust(app.arn), system=(ASSUME, "AliyunOSSFullAccess"))
    by_user = world.role(account, "by-user", trust(app.arn), system=("AliyunOSSFullAccess",))
    by_role = world.role(account, "by-role", trust(first), system=("AliyunOSSFullAccess",))

    # the trust names the user, not the role the session is: refused
    parent = world.session(world.assume(app, first, "pp"))
    world.refused(NotPermitted, lambda: world.assume(parent, by_user), match="trust")
    # a session policy without sts:AssumeRole takes the right away
    narrowed = world.session(
        world.assume(app, first, "narrow", policy=document(allow("oss:*", "*")))
    )
    world.refused(NotPermitted, lambda: world.assume(narrowed, by_role), match="own policies")
    child = world.assume(parent, by_role, "cc")
    assert world.decide_session(child, "oss:GetObject", f"acs:oss:*:{account}:b/1").allowed


def test_a_session_cannot_assume_another_accounts_role(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    app = world.user(a, "app", ASSUME)
    first = world.role(a, "first", trust(app.arn), system=(ASSUME,))
    foreign = world.role(b, "open", trust(root_arn(a), first), system=("AliyunOSSFullAccess",))
    parent = world.session(world.assume(app, first))
    world.refused(NotPermitted, lambda: world.assume(parent, foreign), match="its own account")
    # the user itself, allowed by its policies and trusted via its root, may
    issued = world.assume(app, foreign)
    assert world.decide_session(issued, "oss:GetObject", f"acs:oss:*:{b}:x").allowed


# --- "could P do it?" --------------------------------------------------------------------------


def test_could_p_do_it_through_a_role_it_may_assume(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    reader = world.role(account, "reader", trust(app.arn), system=("AliyunOSSReadOnlyAccess",))
    subject = user_subject(world, app)
    read = AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/1")
    assert not world.decide(app, read.action, read.resource).allowed  # not directly

    answer = world.index.answer_through_roles(subject, read)
    assert answer is not None
    assert answer.allowed
    assert answer.chain == (app.arn, reader)
    assert answer.billed_account == account
    assert layers_of(answer) == [(Layer.ROLE, Effect.ALLOW)]
    write = AccessRequest.make("oss:PutObject", f"acs:oss:*:{account}:b/1")
    assert world.index.answer_through_roles(subject, write) is None

    world.do("delete_role", account, "reader", detach=True)
    assert world.index.answer_through_roles(subject, read) is None


def test_no_role_answers_without_sts_assume_role_or_trust(world: World) -> None:
    account = world.account()
    trusted = world.user(account, "trusted")  # trusted, but no sts:AssumeRole of its own
    stranger = world.user(account, "stranger", ASSUME)  # may assume, but not trusted
    world.role(account, "reader", trust(trusted.arn), system=("AliyunOSSReadOnlyAccess",))
    read = AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/1")
    for credential in (trusted, stranger):
        assert world.index.answer_through_roles(user_subject(world, credential), read) is None


def test_could_a_user_of_b_do_it_in_a_through_a_role_of_a(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    partner = world.role(a, "partner", trust(root_arn(b)), system=("AliyunOSSFullAccess",))
    bob = world.user(b, "bob", ASSUME)
    carol = world.user(b, "carol")
    read = AccessRequest.make("oss:GetObject", f"acs:oss:*:{a}:b/1")
    answer = world.index.answer_through_roles(user_subject(world, bob), read)
    assert answer is not None
    assert (answer.allowed, answer.chain, answer.billed_account) == (True, (bob.arn, partner), a)
    assert world.index.answer_through_roles(user_subject(world, carol), read) is None


def test_role_chains_are_searched_with_every_layer_kept(world: World) -> None:
    """P → R1 → R2 where only R1 trusts P and R2 trusts R1.

    A chained path keeps R1's layer (as a chained session does), so it allows only what
    both roles allow; the shortest path that allows is shown. What R2 alone allows is not
    reachable, and a real chained session agrees.
    """
    account = world.account()
    app = world.user(account, "app", ASSUME)
    r1 = world.role(
        account,
        "r1",
        trust(app.arn),
        custom=document(
            allow("sts:AssumeRole", role_arn(account, "r2")),
            allow("oss:GetObject", f"acs:oss:*:{account}:b/*"),
        ),
    )
    r2 = world.role(account, "r2", trust(r1), system=("AliyunOSSFullAccess",))
    subject = user_subject(world, app)
    resource = f"acs:oss:*:{account}:b/1"

    read = world.index.answer_through_roles(subject, AccessRequest.make("oss:GetObject", resource))
    assert read is not None
    assert read.allowed
    assert read.chain == (app.arn, r1)
    write = world.index.answer_through_roles(subject, AccessRequest.make("oss:PutObject", resource))
    assert write is None

    parent = world.assume(app, r1, "pp")
    child = world.assume(world.session(parent), r2, "cc")
    assert world.decide_session(child, "oss:GetObject", resource).allowed
    assert not world.decide_session(child, "oss:PutObject", resource).allowed


# --- the live sessions of a role ----------------------------------------------------------------


def test_live_sessions_of_a_role_lists_only_live_ones(world: World) -> None:
    account = world.account()
    app = world.user(account, "app", ASSUME)
    other_user = world.user(account, "other", ASSUME)
    arn = world.role(account, "r", trust(root_arn(account)), system=(ASSUME,))
    elsewhere = world.role(account, "elsewhere", trust(root_arn(account), arn))
    role_id = world.role_id(account, "r")
    short = world.assume(app, arn, "short", duration_seconds=900)
    long = world.assume(app, arn, "long", duration_seconds=3600)
    revoked = world.assume(app, arn, "revoked")
    orphan = world.assume(other_user, arn, "orphan")
    other_role = world.assume(app, elsewhere, "xx")
    child = world.assume(world.session(long), elsewhere, "child")
    world.do("revoke_session", revoked.access_key_id)
    world.do("delete_user", account, "other", detach=True)

    def live(role: str, now: datetime | None = None) -> list[str]:
        records = world.index.live_sessions_of(world.role_id(account, role), now)
        return [r.access_key_id for r in records]

    assert live("r") == sorted([short.access_key_id, long.access_key_id])
    assert live("elsewhere") == sorted([other_role.access_key_id, child.access_key_id])
    later = short.expiration + timedelta(seconds=1)
    assert live("r", later) == [long.access_key_id]
    records = world.index.live_sessions_of(role_id)
    assert {r.role_session_name for r in records} == {"short", "long"}
    assert orphan.access_key_id not in live("r")

    world.do("revoke_session", long.access_key_id)
    assert live("elsewhere") == [other_role.access_key_id]  # the child died with its parent
    world.do("revoke_role_sessions", account, "r")
    assert live("r") == []


# --- a second process ---------------------------------------------------------------------------


@pytest.fixture
def two_runtimes(store_url: str) -> Iterator[tuple[Runtime, Runtime]]:
    writer = started_runtime(store_url, token_signing_key=TOKEN_KEY)
    reader = Runtime(
        Settings(
            database_url=store_url,
            hash_key="k" * 40,
            admin_token="t" * 40,
            token_signing_key=TOKEN_KEY,
            run_projections=False,
        ),
        create_tables=False,
    )
    reader.start()
    try:
        yield writer, reader
    finally:
        reader.stop()
        writer.stop()


def test_a_session_revoked_in_one_process_is_refused_by_another(
    two_runtimes: tuple[Runtime, Runtime],
) -> None:
    """The reader follows the log: it accepts the session, then refuses it once revoked."""
    writer, reader = two_runtimes
    w, r = World(writer), World(reader)
    account = w.account()
    app = w.user(account, "app", ASSUME)
    arn = w.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = w.assume(app, arn)
    other = w.assume(app, arn, "other")
    assert reader.follower.wait_for(issued.position, timeout=10)
    resource = f"acs:oss:*:{account}:b/1"
    assert r.decide_session(issued, "oss:GetObject", resource).allowed

    position = w.do("revoke_session", issued.access_key_id).position
    assert reader.follower.wait_for(position, timeout=10)
    assert reader.index.position >= position
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        r.session(issued)
    assert r.decide_session(other, "oss:GetObject", resource).allowed

    position = w.do("detach_policy", account, "role", "r", "System", "AliyunOSSFullAccess").position
    assert reader.follower.wait_for(position, timeout=10)
    assert not r.decide_session(other, "oss:GetObject", resource).allowed

    position = w.do("revoke_role_sessions", account, "r").position
    assert reader.follower.wait_for(position, timeout=10)
    with pytest.raises(AuthenticationFailed, match="issued before"):
        r.session(other)


def test_a_process_with_another_token_key_refuses_to_start(store_url: str) -> None:
    """The token's signature binds it to the deployment's signing key: a process given
    another key would refuse every token, so it refuses to start instead, naming the key."""
    writer = started_runtime(store_url, token_signing_key=TOKEN_KEY)
    try:
        w = World(writer)
        account = w.account()
        app = w.user(account, "app", ASSUME)
        w.assume(app, w.role(account, "r", trust(app.arn)))
        with pytest.raises(StoreUnavailable, match="MANDATE_TOKEN_SIGNING_KEY"):
            Runtime(
                Settings(
                    database_url=store_url,
                    hash_key="k" * 40,
                    admin_token="t" * 40,
                    token_signing_key="another-signing-key-" + "x" * 32,
                    run_projections=False,
                ),
                create_tables=False,
            )
    finally:
        writer.stop()


def test_audit_of_an_assume_role_names_the_caller(world: World) -> None:
    """SessionIssued carries the audit context of the AssumeRole request."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn))
    start = world.head()
    world.assume(app, arn)
    (event,) = world.events_since(start)
    assert (
        event.audit
        == AuditContext(
            actor=user_arn(account, "app"), credential=app.access_key_id, request_id="r"
        ).as_dict()
    )


def test_a_restarted_process_rebuilds_the_same_lineage_verdicts(store_url: str) -> None:
    """Replaying the log from position 0 refuses and accepts the same sessions, alike."""
    writer = started_runtime(store_url, token_signing_key=TOKEN_KEY)
    try:
        w = World(writer)
        account = w.account()
        app = w.user(account, "app", ASSUME)
        gone = w.user(account, "gone", ASSUME)
        first = w.role(account, "first", trust(root_arn(account)), system=(ASSUME,))
        second = w.role(account, "second", trust(first), system=("AliyunOSSFullAccess",))
        live = w.assume(app, first, "live")
        child = w.assume(w.session(live), second, "child")
        revoked = w.assume(app, first, "revoked")
        orphan = w.assume(gone, first, "orphan")
        dead_parent = w.assume(app, first, "dead-parent")
        dead_child = w.assume(w.session(dead_parent), second, "dead-child")
        w.do("revoke_session", revoked.access_key_id)
        w.do("revoke_session", dead_parent.access_key_id)
        w.do("delete_user", account, "gone", detach=True)
        sessions = [live, child, revoked, orphan, dead_parent, dead_child]

        def verdicts(world: World) -> list[str]:
            answers = []
            for issued in sessions:
                try:
                    credential = world.session(issued)
                except AuthenticationFailed as refused:
                    answers.append(f"refused: {refused}")
                else:
                    answer = world.decide(credential, "oss:GetObject", f"acs:oss:*:{account}:b")
                    answers.append(f"{answer.decision.kind}: {answer.chain}")
            return answers

        before = verdicts(w)
        assert [v.startswith("refused") for v in before] == [False, False, True, True, True, True]
        replayed = started_runtime(store_url, token_signing_key=TOKEN_KEY)
        try:
            r = World(replayed)
            assert replayed.index.position == writer.index.position
            assert verdicts(r) == before
            for role in ("first", "second"):
                ids = [
                    [
                        s.access_key_id
                        for s in world.index.live_sessions_of(world.role_id(account, role))
                    ]
                    for world in (w, r)
                ]
                assert ids[0] == ids[1]
        finally:
            replayed.stop()
    finally:
        writer.stop()


# --- a decision made while the follower applies an event -------------------------------------


def test_a_decision_racing_a_detach_leaves_no_stale_allow_behind(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader deciding in the middle of applying a detach must not cache the old Allow.

    Readers never lock: a decision on an API thread may run at any instant of the follower
    applying an event. Here it runs at the worst one for a cache — right after the event's
    generation moved — for the user and for the role session alike; once the detach has
    been applied, both must be denied, from their memo too.
    """
    account = world.account()
    app = world.user(account, "app", ASSUME, "AliyunOSSFullAccess")
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    resource = f"acs:oss:*:{account}:b/1"
    index = world.index
    assert world.decide(app, "oss:GetObject", resource).allowed
    assert world.decide_session(issued, "oss:GetObject", resource).allowed

    touch = index._touch
    racing: list[bool] = []

    def touch_then_a_reader_decides(user_ids: Any) -> None:
        touch(user_ids)
        racing.append(world.decide(app, "oss:GetObject", resource).allowed)
        try:
            racing.append(world.decide_session(issued, "oss:GetObject", resource).allowed)
        except AuthenticationFailed:
            racing.append(False)

    monkeypatch.setattr(index, "_touch", touch_then_a_reader_decides)
    world.do("detach_policy", account, "user", "app", "System", "AliyunOSSFullAccess")
    world.do("detach_policy", account, "role", "r", "System", "AliyunOSSFullAccess")
    monkeypatch.undo()
    assert racing, "no reader ran while the detaches were applied"

    assert not world.decide(app, "oss:GetObject", resource).allowed
    assert not world.decide_session(issued, "oss:GetObject", resource).allowed


# --- the verified-credential cache --------------------------------------------------------------


def test_a_remembered_session_credential_still_checks_secret_expiry_and_every_change(
    world: World,
) -> None:
    """Repeat requests skip the token's MAC and the lineage walk, never what could refuse them."""
    account = world.account()
    app = world.user(account, "app", ASSUME)
    arn = world.role(account, "r", trust(app.arn), system=("AliyunOSSFullAccess",))
    issued = world.assume(app, arn)
    resource = f"acs:oss:*:{account}:b/1"
    first = world.session(issued)
    assert world.session(issued) is first  # remembered

    with pytest.raises(AuthenticationFailed, match="secret does not match"):
        world.index.authenticate_session(
            issued.access_key_id, "wrong-secret", issued.security_token
        )
    after_expiry = issued.expiration + timedelta(microseconds=1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        world.session(issued, now=after_expiry)
    with pytest.raises(AuthenticationFailed, match="another AccessKey"):
        world.index.authenticate_session(
            app.access_key_id, issued.access_key_secret, issued.security_token
        )

    # events that cannot touch a session keep it remembered; a role change forgets it
    world.user(account, "bystander")
    assert world.session(issued) is first
    assert world.decide_session(issued, "oss:GetObject", resource).allowed
    world.do("detach_policy", account, "role", "r", "System", "AliyunOSSFullAccess")
    assert world.session(issued) is not first
    assert not world.decide_session(issued, "oss:GetObject", resource).allowed
