""" "Could P" through a role a resource policy names: as of any instant it equals the live rule
replayed to that instant, and the access review lists exactly those paths — on both stores.

Alibaba Cloud lets a bucket policy name RAM roles as its ``Principal``
(https://www.alibabacloud.com/help/en/object-storage-service/latest/examples) and evaluates a
role session's request with every applicable policy — control policies first, an explicit Deny
in any policy winning, resource-based with identity-based policies
(https://www.alibabacloud.com/help/en/resource-access-management/latest/policy-evaluation-process).
A user reaches such a role by assuming it (trust ∧ its ``sts:AssumeRole``), so
``domain.sts.role_reach.answer_through_roles`` tries, after the resource's account's roles, the
roles of other accounts an Allow of a covering policy names, and decides each session with the
covering policies (OR inside the owner's account, AND across accounts).

Generated histories write, through the ledger, A's bucket policy naming B's role ``ops`` and
A's own role ``reader`` (allowed, denied, replaced, deleted), ``ops`` created, re-trusted, given
and stripped of its own permission and deleted, and ``sts:AssumeRole`` given and taken. At
every ledger time and one microsecond before it, ``AsOfReader.could`` must answer for every
principal and request what a new ``DecisionIndex`` replayed up to that instant answers
(``decide``, then ``answer_through_roles``), and the access review of the bucket over the whole
history must hold an unconditional interval for exactly the principals allowed then, with their
chain plus ``resource-policy:<ARN>`` when the policy's Allow took part.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import role_arn, root_arn, user_arn
from mandate.domain.common.errors import DomainError
from mandate.domain.policy.document import Effect
from mandate.domain.policy.evaluation import AccessRequest, Layer
from mandate.domain.policy.resource_policies import RESOURCE_POLICY_TYPE
from mandate.projections.history.access_review import logged_events, review_access
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running
from tests.integration.test_temporal_could import _live_could
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary
from tests.integration.test_temporal_sessions import ASSUME, Story, _trust

WAIT = 10.0
GET = "oss:GetObject"
POLICIES = ("ops", "ops+deny", "reader", "both", "anyone-deny-ops")
TRUSTS = ("u0", "both", "b-root", "none")


@dataclass
class World:
    story: Story

    @property
    def a(self) -> str:
        return self.story.a

    @property
    def b(self) -> str:
        return self.story.b

    @property
    def bucket(self) -> str:
        return f"acs:oss:*:{self.a}:photos"

    def trust(self, which: str) -> dict[str, Any]:
        b = self.b
        return _trust(
            *{
                "u0": [user_arn(b, "u0")],
                "both": [user_arn(b, "u0"), user_arn(b, "u1")],
                "b-root": [root_arn(b)],
                "none": [user_arn(b, "nobody")],
            }[which]
        )

    def policy(self, which: str) -> dict[str, Any]:
        a, ops, reader = self.a, role_arn(self.b, "ops"), role_arn(self.a, "reader")

        def grant(effect: str, principal: Any, action: str = GET) -> dict[str, Any]:
            resource = f"acs:oss:*:{a}:photos/*"
            return {
                "Effect": effect,
                "Action": action,
                "Resource": resource,
                "Principal": principal,
            }

        statements = {
            "ops": [grant("Allow", ops)],
            "ops+deny": [grant("Allow", ops), grant("Deny", ops)],
            "reader": [grant("Allow", reader)],
            "both": [grant("Allow", [ops, reader]), grant("Allow", ops, "oss:PutObject")],
            "anyone-deny-ops": [grant("Allow", [reader, ops]), grant("Deny", "*", "oss:PutObject")],
        }[which]
        return {"Version": "1", "Statement": statements}


def _set_up(story: Story) -> World:
    ledger = story.runtime.ledger
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = b = story.do(lambda: ledger.open_account("OpsCo")).account_id
    world = World(story)
    for account, name in ((b, "u0"), (b, "u1"), (a, "a0")):
        story.user(account, name)  # each may assume roles
    reads = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*"}],
    }
    story.do(lambda: ledger.create_policy(b, "ReadAcme", reads))
    story.do(lambda: ledger.create_role(a, "reader", _trust(user_arn(a, "a0"))))
    for step in (("create_role", "u0"), ("own", True), ("policy", "ops")):
        _step(world, step)
    return world


def _step(world: World, step: tuple[Any, ...]) -> None:
    story, ledger, a, b = world.story, world.story.runtime.ledger, world.a, world.b
    match step:
        case ("create_role", trust):
            story.do(lambda: ledger.create_role(b, "ops", world.trust(trust)))
        case ("retrust", trust):
            document = world.trust(trust)
            story.do(lambda: ledger.update_role(b, "ops", assume_role_policy_document=document))
        case ("own", give):
            command = ledger.attach_policy if give else ledger.detach_policy
            story.do(lambda: command(b, "role", "ops", "Custom", "ReadAcme"))
        case ("reader_trust", with_u1):
            names = [user_arn(a, "a0"), *([user_arn(b, "u1")] if with_u1 else [])]
            document = _trust(*names)
            story.do(lambda: ledger.update_role(a, "reader", assume_role_policy_document=document))
        case ("version", action):
            # user-scoped for the review: only the role's generation says ops changed
            reads = {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": action, "Resource": f"acs:oss:*:{a}:*"}
                ],
            }
            story.do(
                lambda: ledger.create_policy_version(
                    b, "ReadAcme", reads, set_as_default=True, rotate=True
                )
            )
        case ("delete_role",):
            story.do(lambda: ledger.delete_role(b, "ops", detach=True))
        case ("policy", which):
            story.do(lambda: ledger.put_resource_policy(a, world.bucket, world.policy(which)))
        case ("delete_policy",):
            story.do(lambda: ledger.delete_resource_policy(a, world.bucket))
        case ("sts", user, give):
            account = a if user == "a0" else b
            command = ledger.attach_policy if give else ledger.detach_policy
            story.do(lambda: command(account, "user", user, "System", ASSUME))


_steps = st.one_of(
    st.tuples(st.just("create_role"), st.sampled_from(TRUSTS)),
    st.tuples(st.just("retrust"), st.sampled_from(TRUSTS)),
    st.tuples(st.just("own"), st.booleans()),
    st.tuples(st.just("delete_role")),
    st.tuples(st.just("reader_trust"), st.booleans()),
    st.tuples(st.just("version"), st.sampled_from((GET, "oss:PutObject"))),
    st.tuples(st.just("policy"), st.sampled_from(POLICIES)),
    st.tuples(st.just("delete_policy")),
    st.tuples(st.just("sts"), st.sampled_from(("u0", "u1", "a0")), st.booleans()),
)


def _requests(world: World) -> list[AccessRequest]:
    a = world.a
    return [
        AccessRequest.make(GET, f"acs:oss:*:{a}:photos/cat.jpg"),
        AccessRequest.make("oss:PutObject", f"acs:oss:*:{a}:photos/cat.jpg"),
        AccessRequest.make(GET, f"acs:oss:*:{a}:other/x"),
    ]


def _principals(world: World) -> list[str]:
    a, b = world.a, world.b
    return [user_arn(b, "u0"), user_arn(b, "u1"), user_arn(a, "a0")]


def _named_role_path(world: World, answer: Any) -> bool:
    """Whether an allowed answer went through B's ``ops`` with the resource policy's help."""
    return (
        answer.allowed
        and role_arn(world.b, "ops") in answer.chain
        and any(m.layer is Layer.RESOURCE for m in answer.decision.matched)
    )


def _could_as_of_equals_the_replayed_rule(world: World) -> tuple[int, int]:
    """(comparisons, of which allowed through ``ops`` by the resource policy)."""
    runtime = world.story.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    compared = through = 0
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        for arn in _principals(world):
            found, _ = runtime.as_of.principal_for_arn(arn, at)
            for request in _requests(world):
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
                through += _named_role_path(world, got)
    return compared, through


def _review_lists_exactly_the_allowed(world: World) -> int:
    """At every instant, the review's unconditional intervals are the oracle's allowed
    principals (root of A aside), with the chain the review gives: the answer's, then each
    resource policy whose Allow took part. Returns the instants compared."""
    runtime = world.story.runtime
    head = runtime.head()
    events = list(logged_events(runtime.ledger, head))
    log = _log(runtime)
    start, end = log[0][1], log[-1][1] + timedelta(seconds=1)
    request = _requests(world)[0]
    review = review_access(
        events,
        runtime.hasher,
        account_id=world.a,
        resource=request.resource,
        action=request.action,
        start=start,
        end=end,
        position=head,
    )
    checked = 0
    for at in (t for t in _instants(log) if start <= t < end):
        oracle = _oracle(runtime, log, at)
        timed = AccessRequest.make(request.action, request.resource, {"acs:currenttime": at})
        expected = {}
        for arn in _principals(world):
            answer = _live_could(oracle, arn, timed)
            if answer is not None and answer.allowed:
                policies = dict.fromkeys(
                    f"resource-policy:{m.policy_name}"
                    for m in answer.decision.matched
                    if m.policy_type == RESOURCE_POLICY_TYPE and m.effect is Effect.ALLOW
                )
                expected[arn] = answer.chain + tuple(policies)
        held = {
            item.principal: i.chain
            for item in review.items
            for i in item.intervals
            if i.start <= at < i.end and not i.conditional and item.user_id is not None
        }
        assert held == expected, at.isoformat()
        checked += 1
    return checked


def _generated(url: str, steps: list[tuple[Any, ...]]) -> None:
    with running(url) as runtime:
        world = _set_up(Story(runtime))
        for step in steps:
            with contextlib.suppress(DomainError):  # refused: nothing written
                _step(world, step)
            time.sleep(0.002)
        compared, through = _could_as_of_equals_the_replayed_rule(world)
        assert compared > 0
        assert through > 0
        assert _review_lists_exactly_the_allowed(world) > 0
        event(f"allowed through ops: {'1-19' if through < 20 else '20+'}")


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=20, **_SETTINGS)
@given(steps=st.lists(_steps, min_size=3, max_size=12))
def test_generated_histories_through_named_roles_on_sqlite(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-named-roles-") as directory:
        _generated(f"sqlite:///{Path(directory) / 'mandate.db'}", steps)


@pytest.mark.postgres
@settings(max_examples=5, **_SETTINGS)
@given(steps=st.lists(_steps, min_size=3, max_size=12))
def test_generated_histories_through_named_roles_on_postgres(
    postgres_dsn: str, steps: list[tuple[Any, ...]]
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated(url, steps)


@pytest.fixture
def runtime(store_url: str) -> Any:
    with running(store_url) as the_runtime:
        yield the_runtime


def test_the_turning_points_by_name(runtime: Runtime) -> None:
    """A scripted story through each turning point, checked by both oracles at every
    instant: ``ops``' own policy narrowed to another action and back (user-scoped for the
    review: only the role's generation tells), ``reader`` trusting u1 too, ``ops`` trusting
    u0, then u0 and u1, then no one, then both again; the policy naming ``ops`` and A's
    ``reader`` (a0 and u1 reach the photos through ``reader`` with no identity grant: OR
    inside A), then a Deny naming ``ops``, then no policy."""
    story = Story(runtime)
    world = _set_up(story)
    for step in (
        ("version", "oss:PutObject"),
        ("version", GET),
        ("reader_trust", True),
        ("retrust", "both"),
        ("retrust", "none"),
        ("retrust", "both"),
        ("policy", "both"),
        ("policy", "ops+deny"),
        ("delete_policy",),
    ):
        _step(world, step)
        time.sleep(0.002)
    compared, through = _could_as_of_equals_the_replayed_rule(world)
    assert compared > 0
    assert through > 0
    assert _review_lists_exactly_the_allowed(world) > 0
