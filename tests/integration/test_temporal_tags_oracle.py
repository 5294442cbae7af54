"""As-of decisions on tags equal the live rule replayed up to T, at every instant (issue 16).

The oracle (as in ``test_temporal_oracle``) builds a brand-new ``DecisionIndex`` from the
events whose ledger time is at most T and decides there; the temporal index must give the same
answer for requests whose outcome depends on ``acs:ResourceTag/<key>`` of RAM users and roles
(tagged, re-valued, untagged, renamed, deleted and re-created over the history) and on tags an
enforcement point vouches for (another service's resource, and a RAM user's, which the facts
override), at every ledger time of the history and one microsecond before each.

Pages: conditional operators and ``acs:ResourceTag`` (RAM's ``team:dev`` example),
https://www.alibabacloud.com/help/en/ram/conditional-operator; tags on RAM users and roles,
https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import role_arn, user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.policy.evaluation import AccessRequest
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running, started_runtime
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary

WAIT = 10.0
ACTOR = AuditContext(actor="mandate:admin", request_id="req-tags-oracle")
TRUST = '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": ["acs:ram::%s:user/actor"]}}]}'  # noqa: E501
ROLE_READS = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "ecs:DescribeInstances", "Resource": "*"}],
}
NAMES = ("u0", "u1", "u1-renamed")


def _policy(account: str) -> dict[str, Any]:
    """Tag-conditioned Allows and Denies, after RAM's conditional-operator examples."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ram:GetUser", "ram:GetRole", "oss:GetObject"],
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            },
            {
                "Effect": "Deny",
                "Action": "ram:GetUser",
                "Resource": f"acs:ram::{account}:user/*",
                "Condition": {"StringLike": {"acs:ResourceTag/env": "prod*"}},
            },
            {
                "Effect": "Allow",
                "Action": "ram:UpdateUser",
                "Resource": "*",
                "Condition": {"StringEqualsIgnoreCase": {"acs:ResourceTag/Team": "DEV"}},
            },
            {  # through a role only while the role is tagged team:dev (the role's own tag)
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            },
        ],
    }


@dataclass
class Model:
    """What is alive, so that every drawn step is a valid command."""

    users: set[str] = field(default_factory=lambda: {"u0", "u1"})
    role: bool = True


def _set_up(runtime: Runtime) -> str:
    ledger = runtime.ledger
    with acting_as(ACTOR):
        account = ledger.open_account("Acme").account_id
        for name in ("actor", "u0", "u1"):
            ledger.create_user(account, name, None)
        ledger.create_role(account, "r0", TRUST % account)
        ledger.create_policy(account, "ByTags", _policy(account))
        ledger.create_policy(account, "RoleReads", ROLE_READS)
        ledger.attach_policy(account, "role", "r0", "Custom", "RoleReads")
        last = ledger.attach_policy(account, "user", "actor", "Custom", "ByTags")
    assert runtime.follower.wait_for(last.position, WAIT)
    return account


TAGS = st.dictionaries(
    st.sampled_from(["team", "Team", "env", "owner"]),
    st.sampled_from(["dev", "DEV", "ops", "prod-1", "test", ""]),
    min_size=1,
    max_size=3,
)


@st.composite
def _step(draw: st.DrawFn, model: Model) -> tuple[Any, ...]:
    kinds = ["tag_user", "untag_user", "untag_all", "rename", "recreate", "role"]
    kind = draw(st.sampled_from(kinds))
    users = sorted(model.users)
    if kind in ("tag_user", "untag_user", "untag_all") and users:
        name = draw(st.sampled_from(users))
        if kind == "tag_user":
            return ("tag", "user", name, draw(TAGS))
        if kind == "untag_user":
            keys = draw(
                st.lists(st.sampled_from(["team", "Team", "env", "owner"]), min_size=1, max_size=4)
            )
            return ("untag", "user", name, keys)
        return ("untag", "user", name, None)
    if kind == "rename" and ("u1" in model.users) != ("u1-renamed" in model.users):
        old = "u1" if "u1" in model.users else "u1-renamed"
        return ("rename", old, "u1-renamed" if old == "u1" else "u1")
    if kind == "recreate":
        return ("recreate", draw(st.sampled_from(["u0", "u1"])))
    if model.role:
        choice = draw(st.sampled_from(["tag", "untag", "delete"]))
        if choice == "tag":
            return ("tag", "role", "r0", draw(TAGS))
        if choice == "untag":
            return ("untag", "role", "r0", None)
        return ("delete_role",)
    return ("create_role",)


def _apply(runtime: Runtime, account: str, model: Model, step: tuple[Any, ...]) -> None:
    ledger = runtime.ledger
    with acting_as(ACTOR):
        if step[0] == "tag":
            ledger.tag_resource(account, step[1], step[2], step[3])
        elif step[0] == "untag":
            ledger.untag_resource(account, step[1], step[2], step[3])
        elif step[0] == "rename":
            ledger.update_user(account, step[1], new_user_name=step[2], new_display_name=None)
            model.users = (model.users - {step[1]}) | {step[2]}
        elif step[0] == "recreate":
            if step[1] in model.users:
                ledger.delete_user(account, step[1], detach=True)
                model.users.discard(step[1])
            else:
                ledger.create_user(account, step[1], None)
                model.users.add(step[1])
        elif step[0] == "delete_role":
            ledger.delete_role(account, "r0", detach=True)
            model.role = False
        else:
            ledger.create_role(account, "r0", TRUST % account)
            ledger.attach_policy(account, "role", "r0", "Custom", "RoleReads")
            model.role = True


def _requests(account: str, at: datetime) -> list[AccessRequest]:
    now = {"acs:currenttime": at}
    requests = [
        AccessRequest.make(action, user_arn(account, name), now)
        for name in NAMES
        for action in ("ram:GetUser", "ram:UpdateUser")
    ]
    requests.append(AccessRequest.make("ram:GetRole", role_arn(account, "r0"), now))
    # an enforcement point's word: stands for an OSS object, is overridden for a RAM user
    vouched = {**now, "acs:resourcetag/team": "dev"}
    requests.append(AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/o", vouched))
    requests.append(AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:b/o", now))
    requests.append(AccessRequest.make("ram:GetUser", user_arn(account, "u0"), vouched))
    # allowed only through r0, while r0 is tagged team:dev
    ecs = f"acs:ecs:*:{account}:instance/i-1"
    requests.append(AccessRequest.make("ecs:DescribeInstances", ecs, now))
    return requests


def _assert_as_of_equals_oracle(runtime: Runtime, account: str) -> tuple[int, set[str]]:
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    actor = user_arn(account, "actor")
    compared, outcomes = 0, set()
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        expected = oracle.principal_for_arn(actor)
        found, _reason = runtime.as_of.principal_for_arn(actor, at)
        assert (found is None) == (expected is None), at.isoformat()
        if found is None or expected is None:
            continue
        for request in _requests(account, at):
            where = f"{request.action} {request.resource} {dict(request.context)} at {at}"
            want = _summary(oracle.decide(expected[1], request, memo_key=expected[0]))
            got = _summary(runtime.as_of.decide(found, request))
            assert got == want, where
            outcomes.add(f"{request.action}:{want[0].value}")
            # "could it through a role": P's sts:AssumeRole sees the role's own tags then
            through = oracle.answer_through_roles(expected[1], request)
            through_then = runtime.as_of.through_roles(found, request)
            assert (through_then and _summary(through_then)) == (through and _summary(through))
            if through is not None:
                outcomes.add(f"{request.action}:through-role")
            compared += 1
    return compared, outcomes


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def test_a_scripted_history_of_tags_answers_as_the_oracle(runtime: Runtime) -> None:
    """Tagged, re-valued, untagged, renamed (tags kept), deleted and re-created (tags gone)."""
    account = _set_up(runtime)
    model = Model()
    for step in (
        ("tag", "user", "u0", {"team": "dev"}),
        ("tag", "user", "u1", {"team": "dev", "env": "prod-1"}),
        ("tag", "role", "r0", {"team": "dev"}),
        ("rename", "u1", "u1-renamed"),
        ("tag", "user", "u0", {"team": "ops", "Team": "DEV"}),
        ("untag", "user", "u1-renamed", ["env"]),
        ("recreate", "u0"),
        ("recreate", "u0"),
        ("untag", "role", "r0", None),
        ("delete_role",),
        ("create_role",),
    ):
        _apply(runtime, account, model, step)
    compared, outcomes = _assert_as_of_equals_oracle(runtime, account)
    assert compared > 200
    # the history exercises both sides of each rule, not only denials
    assert {
        "ram:GetUser:Allow",
        "ram:GetUser:ExplicitDeny",
        "ram:GetUser:ImplicitDeny",
        "ram:UpdateUser:Allow",
        "ram:GetRole:Allow",
        "ram:GetRole:ImplicitDeny",
        "oss:GetObject:Allow",
        "oss:GetObject:ImplicitDeny",
        "ecs:DescribeInstances:through-role",
    } <= outcomes


def _generated(data: st.DataObject, length: int, url: str) -> None:
    runtime = started_runtime(url)
    try:
        account = _set_up(runtime)
        model = Model()
        for number in range(length):
            _apply(runtime, account, model, data.draw(_step(model), label=f"step {number}"))
        compared, _ = _assert_as_of_equals_oracle(runtime, account)
        assert compared > 50
    finally:
        runtime.stop()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=3, max_value=12))
def test_generated_tag_histories_answer_as_the_oracle_on_sqlite(
    data: st.DataObject, length: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-tags-oracle-") as directory:
        _generated(data, length, f"sqlite:///{Path(directory) / 'mandate.db'}")


@pytest.mark.postgres
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=3, max_value=12))
def test_generated_tag_histories_answer_as_the_oracle_on_postgres(
    postgres_dsn: str, data: st.DataObject, length: int
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated(data, length, url)
