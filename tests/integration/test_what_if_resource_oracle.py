"""What-if equals the change made for real, with resource-based policies in the worlds.

The worlds of ``test_what_if_oracle`` (two accounts, A's roles and contracts A → B, B's
delegations, A's a0 holding ``reader`` directly and through a group), plus live sessions of
A's roles and of a contract's managed role, and resource policies on buckets of A and of B
naming every kind of principal — a user of either account (or one that does not exist), a
role, the managed role, a session, an account, ``*`` — in Allow and Deny statements, some
with a condition. RAM evaluates them together with identity policies
(https://www.alibabacloud.com/help/en/ram/policy-evaluation-process; an OSS bucket policy
names users, roles and accounts of its owner and of others,
https://www.alibabacloud.com/help/en/oss/configure-bucket-policies-to-authorize-other-users-to-access-oss-resources),
so the reach lists their statements for every principal they name. Then one change is drawn —
any of the oracle's own, or putting or deleting a resource policy — and, as there, the
what-if answer (the rehearsed command's events on a copy of the index) must equal the diff of
the reach before and after the change made for real, entry for entry, and a refusal must be
the real command's. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.domain.common.arns import role_arn, user_arn
from mandate.domain.common.errors import DomainError
from mandate.projections.decisions.what_if import copy_index, reach_of
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running
from tests.integration.test_temporal_could import World, _set_up, _step
from tests.integration.test_temporal_sessions import Story
from tests.integration.test_what_if_oracle import _changes, _check, _command, _enrich, _worlds

OSS_READ = "AliyunOSSReadOnlyAccess"
NAMES = ("a0", "u0", "u1", "ghost", "r0", "r1", "C-0", "rb", "session", "A", "B", "*")
_statements = st.lists(
    st.tuples(
        st.sampled_from(("Allow", "Deny")),
        st.sampled_from(("oss:GetObject", "oss:*", "oss:PutObject")),
        st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True),
        st.booleans(),  # whole bucket, or its objects
        st.booleans(),  # a condition
    ),
    min_size=1,
    max_size=3,
)
_owners = st.sampled_from(("A", "B"))
_buckets = st.sampled_from(("photos", "logs"))
_resource_steps = st.one_of(
    st.tuples(st.just("put_rp"), _owners, _buckets, _statements),
    st.tuples(st.just("delete_rp"), _owners, _buckets),
    st.tuples(st.just("assume"), st.sampled_from(("a0", "u0", "u1")), st.sampled_from(NAMES[4:7])),
    st.tuples(st.just("detach_rb")),
)
_resource_changes = st.one_of(
    _changes,
    st.tuples(st.just("put_rp"), _owners, _buckets, _statements),
    st.tuples(st.just("delete_rp"), _owners, _buckets),
)


def _account(world: World, which: str) -> str:
    return world.a if which == "A" else world.b


def _principal(world: World, name: str) -> str:
    a, b = world.a, world.b
    if name == "a0":
        return user_arn(a, name)
    if name in ("u0", "u1", "ghost"):
        return user_arn(b, name)
    if name in ("r0", "r1", "C-0"):
        return role_arn(a, name)
    if name == "rb":
        return role_arn(b, name)
    if name == "session":
        return f"acs:ram::{a}:assumed-role/r0/u0-r0"
    return {"A": a, "B": b}.get(name, name)


def _document(world: World, owner: str, bucket: str, statements: Any) -> dict[str, Any]:
    written = []
    for effect, action, names, whole, conditional in statements:
        statement: dict[str, Any] = {
            "Effect": effect,
            "Action": action,
            "Resource": f"acs:oss:*:{owner}:{bucket}" + ("" if whole else "/*"),
            "Principal": {"RAM": [_principal(world, n) for n in names]},
        }
        if conditional:
            statement["Condition"] = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
        written.append(statement)
    return {"Version": "1", "Statement": written}


def _resource_command(world: World, change: tuple[Any, ...]) -> tuple[str, Any]:
    ledger = world.story.runtime.ledger
    match change:
        case ("put_rp", which, bucket, statements):
            owner = _account(world, which)
            arn = f"acs:oss:*:{owner}:{bucket}"
            document = _document(world, owner, bucket, statements)
            return owner, lambda: ledger.put_resource_policy(owner, arn, document)
        case ("delete_rp", which, bucket):
            owner = _account(world, which)
            arn = f"acs:oss:*:{owner}:{bucket}"
            return owner, lambda: ledger.delete_resource_policy(owner, arn)
    return _command(world, change)


def _resource_step(world: World, step: tuple[Any, ...]) -> None:
    story, ledger = world.story, world.story.runtime.ledger
    match step:
        case ("put_rp" | "delete_rp", *_):
            _, command = _resource_command(world, step)
            story.do(command)
        case ("role_of_b",):
            trust = world.trust("a0")
            story.do(lambda: ledger.create_role(world.b, "rb", trust))
            story.do(lambda: ledger.attach_policy(world.b, "role", "rb", "System", OSS_READ))
        case ("detach_rb",):
            story.do(lambda: ledger.detach_policy(world.b, "role", "rb", "System", OSS_READ))
        case ("assume", user, role):
            account = world.a if user == "a0" else world.b
            key = story.do(lambda: ledger.create_access_key(account, user))
            caller = story.runtime.index.authenticate(key.access_key_id, key.access_key_secret)
            story.assume(caller, world.a, role, f"{user}-{role}")
        case _:
            _step(world, step)


_START: tuple[tuple[Any, ...], ...] = (
    ("role_of_b",),
    ("assume", "u0", "r0"),
    ("assume", "u1", "C-0"),
    ("put_rp", "A", "photos", [("Allow", "oss:GetObject", ["a0", "u0", "r0", "B"], False, False)]),
    (
        "put_rp",
        "A",
        "logs",
        [
            ("Deny", "oss:*", ["*"], True, True),
            ("Allow", "oss:GetObject", ["rb", "r1"], False, False),
        ],
    ),
    ("put_rp", "B", "photos", [("Allow", "oss:*", ["a0", "A", "session", "C-0"], False, False)]),
)
"""Where every world starts: B's role ``rb`` that A's a0 may assume, sessions of r0 and of
the contract's managed role, and a policy naming each kind of principal on buckets of both
accounts."""


def _generated(url: str, steps: list[tuple[Any, ...]], change: tuple[Any, ...]) -> None:
    with running(url) as runtime:
        world = _set_up(Story(runtime))
        _enrich(world)
        for step in _START:
            _resource_step(world, step)
        for step in steps:
            with contextlib.suppress(DomainError):
                _resource_step(world, step)
        outcome = _check(runtime, world, change, _resource_command)
        event(f"{change[0]}: {outcome}")
        now = datetime.now(UTC)
        named = {
            r.principal
            for account in (world.a, world.b)
            for r in reach_of(copy_index(runtime.index), account, now)
            if r.layer == "resource"
        }
        event(f"principals with resource-policy entries: {min(len(named), 5)}+")


_steps = st.lists(st.one_of(_worlds, _resource_steps), max_size=10)
_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=40, **_SETTINGS)  # type: ignore[arg-type]
@given(steps=_steps, change=_resource_changes)
def test_what_if_with_resource_policies_equals_the_change_made_for_real_on_sqlite(
    steps: list[tuple[Any, ...]], change: tuple[Any, ...]
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-what-if-rp-") as directory:
        _generated(f"sqlite:///{Path(directory) / 'mandate.db'}", steps, change)


@pytest.mark.postgres
@settings(max_examples=10, **_SETTINGS)  # type: ignore[arg-type]
@given(steps=_steps, change=_resource_changes)
def test_what_if_with_resource_policies_equals_the_change_made_for_real_on_postgres(
    postgres_dsn: str, steps: list[tuple[Any, ...]], change: tuple[Any, ...]
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated(url, steps, change)
