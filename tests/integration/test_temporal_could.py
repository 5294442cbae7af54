""" "Could P do it?" as of any instant equals the live rule replayed to it — through roles too.

The principal form of ``authorize`` answers directly or through any role P could assume
(``domain.sts.role_reach``): trust at T ∧ P's ``sts:AssumeRole`` at T ∧ a live
delegation at T where one is needed. Here generated histories between two accounts — roles
created, re-trusted, attached to and deleted; contracts granted, amended, revoked and ended
at their term; delegations to users and to a group granted and revoked; ``sts:AssumeRole``
given and taken; a group joined and left; a user re-created under its name — are written
through the ledger on each store. At every ledger time and one microsecond before it (and at
each contract's term, where no event happens), ``AsOfReader.could`` must give, for every
principal and request, what a brand-new ``DecisionIndex`` replayed up to that instant gives
with ``decide`` then ``answer_through_roles``: the same decision, matched statements, chain,
billed account and reason. A scripted story pins the turning points by name, and the
effective permissions' ``assumable_roles`` are checked at them.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import (
    delegation_arn,
    entrustment_arn,
    group_arn,
    role_arn,
    root_arn,
    user_arn,
)
from mandate.domain.common.errors import DomainError
from mandate.domain.ledger.results import Written
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind
from mandate.projections.decisions.index import DecisionIndex
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary
from tests.integration.test_temporal_sessions import ASSUME, MICRO, Story, _document, _trust

WAIT = 10.0
ROLES = ("r0", "r1")
TRUSTS = ("u0", "b-root", "a0", "none")
SCOPES = ("ecs", "oss", "both")
GRANTEES = ("u0", "u1", "ops")


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


@dataclass
class World:
    """Two accounts: A's roles and contracts, B's users u0, u1 (in group ops) and A's a0."""

    story: Story
    entrustments: list[UUID] = field(default_factory=list)
    delegations: list[UUID] = field(default_factory=list)
    terms: list[datetime] = field(default_factory=list)

    @property
    def a(self) -> str:
        return self.story.a

    @property
    def b(self) -> str:
        return self.story.b

    def trust(self, which: str) -> dict[str, Any]:
        a, b = self.a, self.b
        names = {
            "u0": [user_arn(b, "u0")],
            "b-root": [root_arn(b)],
            "a0": [user_arn(a, "a0")],
            "none": [user_arn(a, "nobody")],
        }[which]
        return _trust(*names)

    def scope(self, which: str) -> dict[str, Any]:
        a = self.a
        ecs = ("Allow", ["ecs:RebootInstance", "ecs:DescribeInstances"], f"acs:ecs:*:{a}:*")
        oss = ("Allow", ["oss:GetObject"], f"acs:oss:*:{a}:bucket/*")
        return _document(*{"ecs": (ecs,), "oss": (oss,), "both": (ecs, oss)}[which])

    def grantee(self, which: str) -> str:
        return group_arn(self.b, "ops") if which == "ops" else user_arn(self.b, which)


def _set_up(story: Story) -> World:
    ledger = story.runtime.ledger
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = b = story.do(lambda: ledger.open_account("Partner")).account_id
    world = World(story)
    for account, name in ((b, "u0"), (b, "u1"), (a, "a0")):
        story.user(account, name)
    story.do(lambda: ledger.create_group(b, "ops", None))
    story.do(lambda: ledger.add_user_to_group(b, "ops", "u1"))
    reader = _document(("Allow", ["oss:GetObject", "ecs:Describe*"], f"acs:*:*:{a}:*"))
    story.do(lambda: ledger.create_policy(a, "reader", reader))
    # a start from which every path is open: the steps then close, reopen and move them
    for step in (
        ("create_role", "r0", "u0"),
        ("attach", "r0", _POLICIES[0]),
        ("create_role", "r1", "b-root"),
        ("attach", "r1", _POLICIES[1]),
        ("entrust", "both", False),
        ("delegate", 0, "ops", "ecs"),
        ("delegate", 0, "u0", "both"),
    ):
        _step(world, step)
    return world


def _step(world: World, step: tuple[Any, ...]) -> None:
    story, ledger, a, b = world.story, world.story.runtime.ledger, world.a, world.b
    match step:
        case ("create_role", role, trust):
            story.do(lambda: ledger.create_role(a, role, world.trust(trust)))
        case ("retrust", role, trust):
            story.do(
                lambda: ledger.update_role(a, role, assume_role_policy_document=world.trust(trust))
            )
        case ("attach" | "detach" as verb, role, (policy_type, policy_name)):
            command = ledger.attach_policy if verb == "attach" else ledger.detach_policy
            story.do(lambda: command(a, "role", role, policy_type, policy_name))
        case ("delete_role", role):
            story.do(lambda: ledger.delete_role(a, role, detach=True))
        case ("entrust", scope, term):
            ends_at = datetime.now(UTC) + timedelta(seconds=0.3) if term else None
            granted = story.do(
                lambda: ledger.grant_entrustment(
                    a,
                    trustee_account_id=b,
                    scope=world.scope(scope),
                    contract_ref=f"C-{len(world.entrustments)}",
                    ends_at=ends_at,
                )
            )
            world.entrustments.append(granted.entrustment_id)
            if ends_at is not None:
                world.terms.append(ends_at)
        case ("amend", which, scope) if world.entrustments:
            entrustment = world.entrustments[which % len(world.entrustments)]
            story.do(lambda: ledger.amend_entrustment(a, entrustment, world.scope(scope)))
        case ("revoke_entrustment", which) if world.entrustments:
            entrustment = world.entrustments[which % len(world.entrustments)]
            story.do(lambda: ledger.revoke_entrustment(a, entrustment))
        case ("end_entrustments",) if world.terms:
            time.sleep(max(0.0, (max(world.terms) - datetime.now(UTC)).total_seconds()) + 0.01)
            for entrustment in world.entrustments:  # those whose term passed: EntrustmentEnded
                with contextlib.suppress(DomainError):
                    # nothing recorded (not yet due, or revoked): nothing to wait for
                    story.do(lambda e=entrustment: ledger.end_entrustment(e) or Written(0))
        case ("delegate", which, grantee, scope) if world.entrustments:
            entrustment = world.entrustments[which % len(world.entrustments)]
            delegation = uuid4()
            story.do(
                lambda: ledger.grant_delegation(
                    b,
                    delegation_id=delegation,
                    entrustment_id=entrustment,
                    grantee=world.grantee(grantee),
                    scope=world.scope(scope),
                )
            )
            world.delegations.append(delegation)
        case ("revoke_delegation", which) if world.delegations:
            delegation = world.delegations[which % len(world.delegations)]
            story.do(lambda: ledger.revoke_delegation(b, delegation))
        case ("sts", user, give):
            account = a if user == "a0" else b
            command = ledger.attach_policy if give else ledger.detach_policy
            story.do(lambda: command(account, "user", user, "System", ASSUME))
        case ("group", join):
            command = ledger.add_user_to_group if join else ledger.remove_user_from_group
            story.do(lambda: command(b, "ops", "u1"))
        case ("recreate_u0",):
            story.do(lambda: ledger.delete_user(b, "u0", detach=True))
            story.user(b, "u0")
        case _:
            pass  # nothing to amend, revoke or end yet


_POLICIES = (("Custom", "reader"), ("System", "AliyunOSSReadOnlyAccess"))
_steps = st.one_of(
    st.tuples(st.just("create_role"), st.sampled_from(ROLES), st.sampled_from(TRUSTS)),
    st.tuples(st.just("retrust"), st.sampled_from(ROLES), st.sampled_from(TRUSTS)),
    st.tuples(
        st.sampled_from(("attach", "detach")), st.sampled_from(ROLES), st.sampled_from(_POLICIES)
    ),
    st.tuples(st.just("delete_role"), st.sampled_from(ROLES)),
    st.tuples(st.just("entrust"), st.sampled_from(SCOPES), st.booleans()),
    st.tuples(st.just("amend"), st.integers(0, 3), st.sampled_from(SCOPES)),
    st.tuples(st.just("revoke_entrustment"), st.integers(0, 3)),
    st.tuples(st.just("end_entrustments")),
    st.tuples(
        st.just("delegate"),
        st.integers(0, 3),
        st.sampled_from(GRANTEES),
        st.sampled_from(SCOPES),
    ),
    st.tuples(st.just("revoke_delegation"), st.integers(0, 5)),
    st.tuples(st.just("sts"), st.sampled_from(("u0", "u1", "a0")), st.booleans()),
    st.tuples(st.just("group"), st.booleans()),
    st.tuples(st.just("recreate_u0")),
)


def _requests(a: str, b: str) -> list[AccessRequest]:
    return [
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{a}:bucket/x"),
        AccessRequest.make("ecs:RebootInstance", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("ecs:DescribeInstances", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("oss:PutObject", f"acs:oss:*:{a}:bucket/x"),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{b}:bucket/x"),
    ]


def _live_could(oracle: DecisionIndex, arn: str, request: AccessRequest) -> Any:
    """The live principal form (``api.routers.decisions``): directly, else through roles."""
    found = oracle.principal_for_arn(arn)
    if found is None:
        return None
    memo_key, subject = found
    answer = oracle.decide(subject, request, memo_key=memo_key)
    if answer.allowed:
        return answer
    return oracle.answer_through_roles(subject, request) or answer


def _assert_could_as_of_equals_the_replayed_rule(world: World) -> tuple[int, int]:
    """(comparisons, of which allowed through a role) at every instant of the history."""
    runtime = world.story.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    bounds = set(world.terms)
    instants = sorted({*_instants(log), *bounds, *(t - MICRO for t in bounds)})
    a, b = world.a, world.b
    principals = [user_arn(b, "u0"), user_arn(b, "u1"), user_arn(a, "a0"), root_arn(b)]
    compared = through = 0
    for at in instants:
        oracle = _oracle(runtime, log, at)
        for arn in principals:
            found, _ = runtime.as_of.principal_for_arn(arn, at)
            for request in _requests(a, b):
                timed = AccessRequest.make(
                    request.action, request.resource, {"acs:currenttime": at}
                )
                want = _live_could(oracle, arn, timed)
                where = f"{arn} {request.action} {request.resource} at {at.isoformat()}"
                assert (found is None) == (want is None), where
                if found is None:
                    continue
                got = runtime.as_of.could(found, timed)
                assert _summary(got) == _summary(want), where
                compared += 1
                through += got.allowed and len(got.chain) > 1
    return compared, through


def _generated(url: str, steps: list[tuple[Any, ...]]) -> None:
    with running(url) as runtime:
        world = _set_up(Story(runtime))
        for step in steps:
            with contextlib.suppress(DomainError):  # refused: nothing written
                _step(world, step)
            time.sleep(0.002)
        compared, through = _assert_could_as_of_equals_the_replayed_rule(world)
        assert compared > 0
        event(
            f"allowed through a role: {'0' if not through else '1-49' if through < 50 else '50+'}"
        )
        event(f"contracts: {min(len(world.entrustments), 2)}+")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_steps, min_size=4, max_size=16))
def test_generated_histories_could_p_as_of_equals_the_live_rule_on_sqlite(
    steps: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-temporal-could-") as directory:
        _generated(f"sqlite:///{Path(directory) / 'mandate.db'}", steps)


@pytest.mark.postgres
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_steps, min_size=4, max_size=16))
def test_generated_histories_could_p_as_of_equals_the_live_rule_on_postgres(
    postgres_dsn: str, steps: list[tuple[Any, ...]]
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated(url, steps)


def test_as_of_could_p_answers_through_each_kind_of_role_and_lists_the_roles_p_could_assume(
    runtime: Runtime,
) -> None:
    """The turning points by name: an ordinary role trusting u0, one trusting B's root, and
    a contract's managed role reached by u0's delegation — until the contract is revoked."""
    world = _set_up(Story(runtime))
    story, ledger, a, b = world.story, runtime.ledger, world.a, world.b
    entrustment = world.entrustments[0]
    story.do(lambda: ledger.revoke_entrustment(a, entrustment), "revoked")
    story.settle()
    revoked = story.at["revoked"]
    u0, managed = user_arn(b, "u0"), entrustment_arn(a, entrustment)
    reboot = AccessRequest.make(
        "ecs:RebootInstance", f"acs:ecs:*:{a}:instance/i-1", {"acs:currenttime": revoked - MICRO}
    )
    found, why = runtime.as_of.principal_for_arn(u0, revoked - MICRO)
    assert found is not None, why
    answer = runtime.as_of.could(found, reboot)
    assert answer.decision.kind is DecisionKind.ALLOW
    role = role_arn(a, "C-0")
    assert answer.chain == (u0, delegation_arn(b, world.delegations[1]), managed, role)
    assert answer.billed_account == a
    reached = {r.role_arn: r for r in runtime.as_of.assumable_roles(found, revoked - MICRO)}
    assert set(reached) == {role_arn(a, "r0"), role_arn(a, "r1"), role}
    assert reached[role].managed_by == managed
    assert reached[role].chains == ((u0, delegation_arn(b, world.delegations[1]), managed, role),)
    assert reached[role_arn(a, "r0")].chains == ((u0, role_arn(a, "r0")),)
    assert not any(r.conditional for r in reached.values())
    # the contract revoked: its role reaches no one, the ordinary ones still do
    found, why = runtime.as_of.principal_for_arn(u0, revoked)
    assert found is not None, why
    later = AccessRequest.make(reboot.action, reboot.resource, {"acs:currenttime": revoked})
    assert runtime.as_of.could(found, later).decision.kind is DecisionKind.IMPLICIT_DENY
    reached = {r.role_arn: r for r in runtime.as_of.assumable_roles(found, revoked)}
    assert set(reached) == {role_arn(a, "r0"), role_arn(a, "r1")}
    # a0, of A itself, is named by no trust; B's root never assumes a role
    for arn in (user_arn(a, "a0"), root_arn(b)):
        found, why = runtime.as_of.principal_for_arn(arn, revoked - MICRO)
        assert found is not None, why
        assert runtime.as_of.assumable_roles(found, revoked - MICRO) == []
    assert _assert_could_as_of_equals_the_replayed_rule(world)[1] > 0
