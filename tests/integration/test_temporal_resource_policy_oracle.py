"""As-of decisions under resource policies equal the live decisions recorded when they held.

Issue 16 items 2 and 6: a temporal oracle for the ``resource`` layer. A history of resource
policies put, replaced and deleted on an account's bucket, one of its objects and another
bucket — statements naming ``*``, an account, a user, a role (covering its sessions) or one
session, of the owner's account or another, Allow or Deny, with or without a condition — mixed
with identity policies attached and detached (on users and roles) and users deleted and
re-created, is written through the ledger on each store. After every command the live decision
index (``DecisionIndex.decide``, the path ``/v1/authorize`` takes) is asked about a fixed set of
probes (users, roots and role sessions of both accounts, actions and resources) and its answers
are recorded with the command's position and ledger time. At the end the temporal index
(``AsOfReader``) must give, at each recorded ledger time and until one microsecond before the
next command's first event, the recorded answer — the same decision, matched statements
(layer, policy, version), chain, billed account and reason, or the same "no such principal" /
dead session (the fact intervals meet without gap or overlap).

Pages (the rules the live decisions follow, checked against RAM in
``tests/unit/test_resource_policies.py``):
- policy evaluation, identity with resource policies (OR inside the owner's account, AND
  across accounts, explicit Deny wins):
  https://www.alibabacloud.com/help/en/ram/policy-evaluation-process
- ``Principal`` of a resource policy (account, RAM user, role, role session, ``*``):
  https://www.alibabacloud.com/help/en/ram/policy-elements
- OSS bucket policies (``Principal`` by UID, ``*``; a policy on a bucket covers its objects):
  https://www.alibabacloud.com/help/en/object-storage-service/latest/examples
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import assumed_role_arn, role_arn, root_arn, user_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.ledger.application import IssuedSession
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Layer
from mandate.domain.sts.session_lineage import SessionInvalid
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running, started_runtime
from tests.integration.test_temporal_oracle import _log, _summary

WAIT = 10.0
ACTOR = AuditContext(actor="mandate:admin", request_id="req-resource-policy-oracle")
ASSUME = "AliyunSTSAssumeRoleAccess"
MICRO = timedelta(microseconds=1)
Probe = tuple[str, str, str, str]  # (principal label, action, resource label, context label)
Outcome = tuple[object, ...]


def _document(*statements: tuple[str, str | list[str], str]) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": effect, "Action": action, "Resource": resource}
            for effect, action, resource in statements
        ],
    }


@dataclass
class World:
    """The accounts, the model of what is alive (so every drawn step is a valid command),
    and the live answers recorded after each command."""

    runtime: Runtime
    a: str = ""
    b: str = ""
    sessions: dict[str, str] = field(default_factory=dict)  # label → AccessKey id
    policies: set[str] = field(default_factory=set)  # targets holding a resource policy
    attached: set[tuple[str, str, str, str]] = field(default_factory=set)
    users: set[str] = field(default_factory=lambda: {"carol", "eve"})
    position: int = 0
    time: datetime | None = None
    records: list[tuple[int, datetime, dict[Probe, Outcome]]] = field(default_factory=list)

    # -- names ---------------------------------------------------------------------------------
    def account(self, side: str) -> str:
        return self.a if side == "A" else self.b

    def target(self, name: str) -> str:
        """Where a resource policy is attached: a bucket, one object in it, another bucket."""
        return {
            "photos": f"acs:oss:*:{self.a}:photos",
            "cat": f"acs:oss:*:{self.a}:photos/cat.jpg",
            "logs": f"acs:oss:*:{self.a}:logs",
        }[name]

    def resource(self, label: str) -> str:
        return {
            "cat": f"acs:oss:cn-hangzhou:{self.a}:photos/cat.jpg",
            "dog": f"acs:oss:*:{self.a}:photos/dog.jpg",
            "bucket": f"acs:oss:*:{self.a}:photos",
            "log": f"acs:oss:*:{self.a}:logs/x.log",
        }[label]

    def principal(self, label: str) -> str:
        """Users (alice and carol of A, bob and eve of B) and roots, by label."""
        if label.startswith("root:"):
            return root_arn(self.account(label[5:]))
        side = "A" if label in ("alice", "carol") else "B"
        return user_arn(self.account(side), label)

    # -- writing -------------------------------------------------------------------------------
    def do(self, command: Callable[[], Any]) -> Any:
        """Run a ledger command as the admin, once the live index has applied it; follow the
        ledger time of the head (docs/design.md §4) as the log says."""
        result = self.runtime.write(ACTOR, command)
        recorder, mapper = self.runtime.ledger.recorder, self.runtime.ledger.mapper
        for notification in recorder.select_notifications(
            self.position, 1_000_000, inclusive_of_start=False
        ):
            event: Any = mapper.to_domain_event(notification)
            self.time = ledger_time_after(self.time, event.timestamp)
            self.position = int(notification.id)
        return result


def _set_up(runtime: Runtime) -> World:
    """A owns the buckets; B is another account. Alice (A) and bob (B) each hold a session of
    a role of their own account (ra, rb); identity policies exist, attached by the steps."""
    world = World(runtime)
    ledger = runtime.ledger
    world.a = a = world.do(lambda: ledger.open_account("Acme")).account_id
    world.b = b = world.do(lambda: ledger.open_account("OpsCo")).account_id
    photos, acme = f"acs:oss:*:{a}:photos/*", f"acs:oss:*:{a}:*"
    world.do(
        lambda: ledger.create_policy(a, "ReadPhotos", _document(("Allow", "oss:Get*", photos)))
    )
    world.do(lambda: ledger.create_policy(a, "NoPut", _document(("Deny", "oss:PutObject", "*"))))
    world.do(lambda: ledger.create_policy(b, "UseAcme", _document(("Allow", "oss:*", acme))))
    for account, user, role in ((a, "alice", "ra"), (b, "bob", "rb")):
        arn = user_arn(account, user)
        trust = {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [arn]}}
            ],
        }
        world.do(lambda account=account, user=user: ledger.create_user(account, user, None))
        world.do(
            lambda account=account, user=user: ledger.attach_policy(
                account, "user", user, "System", ASSUME
            )
        )
        key = world.do(lambda account=account, user=user: ledger.create_access_key(account, user))
        credential = runtime.index.authenticate(key.access_key_id, key.access_key_secret)
        world.do(
            lambda account=account, role=role, trust=trust: ledger.create_role(account, role, trust)
        )
        caller = runtime.index.assuming_caller(credential)
        session_arn = role_arn(account, role)
        issued: IssuedSession = world.do(
            lambda caller=caller, session_arn=session_arn: ledger.assume_role(
                caller, role_arn=session_arn, role_session_name="s1"
            )
        )
        world.sessions[f"session:{role}"] = issued.access_key_id
    world.do(lambda: ledger.create_user(a, "carol", None))
    world.do(lambda: ledger.create_user(b, "eve", None))
    _record(world)
    return world


# -- probes: what the live index answers after each command -------------------------------------

PRINCIPALS = ("alice", "carol", "bob", "eve", "root:A", "root:B", "session:ra", "session:rb")
REQUESTS = (
    ("oss:GetObject", "cat", ""),
    ("oss:GetObject", "cat", "ip"),
    ("oss:PutObject", "cat", ""),
    ("oss:GetObject", "dog", ""),
    ("oss:GetObject", "bucket", ""),
    ("oss:PutObject", "log", ""),
)
SOURCE_IP = "10.1.2.3"


def _request(world: World, action: str, resource: str, context: str, at: datetime) -> Any:
    values: dict[str, Any] = {"acs:currenttime": at}
    if context == "ip":
        values["acs:sourceip"] = SOURCE_IP
    return AccessRequest.make(action, world.resource(resource), values)


def _live(world: World, label: str, request: AccessRequest, at: datetime) -> Outcome:
    index = world.runtime.index
    if label.startswith("session:"):
        key = world.sessions[label]
        try:
            subject, generation = index.session_subject(key, at)
        except SessionInvalid as dead:
            return ("dead", str(dead))
        return _summary(index.decide(subject, request, memo_key=key, generation=generation))
    found = index.principal_for_arn(world.principal(label))
    if found is None:
        return ("absent",)
    return _summary(index.decide(found[1], request, memo_key=found[0]))


def _as_of(world: World, label: str, request: AccessRequest, at: datetime) -> Outcome:
    as_of = world.runtime.as_of
    if label.startswith("session:"):
        found, why = as_of.session_at(world.sessions[label], at)
        if found is None:
            return ("dead", why)
    else:
        found, _reason = as_of.principal_for_arn(world.principal(label), at)
        if found is None:
            return ("absent",)
    return _summary(as_of.decide(found, request))


def _record(world: World) -> None:
    assert world.time is not None
    at = world.time
    answers = {
        (label, action, resource, context): _live(
            world, label, _request(world, action, resource, context, at), at
        )
        for label in PRINCIPALS
        for action, resource, context in REQUESTS
    }
    world.records.append((world.position, at, answers))


# -- steps -------------------------------------------------------------------------------------

ATTACHABLE = (
    ("A", "user", "alice", "ReadPhotos"),
    ("A", "user", "carol", "ReadPhotos"),
    ("A", "user", "carol", "NoPut"),
    ("B", "user", "bob", "UseAcme"),
    ("B", "user", "eve", "UseAcme"),
    ("A", "role", "ra", "ReadPhotos"),
    ("B", "role", "rb", "UseAcme"),
)
ACTIONS = ("oss:GetObject", "oss:*", ["oss:GetObject", "oss:PutObject"], "oss:Put*")


@st.composite
def _principal(draw: st.DrawFn, world: World) -> object:
    a, b = world.a, world.b
    names = draw(
        st.lists(
            st.sampled_from(
                [
                    "*",
                    a,
                    b,
                    root_arn(b),
                    user_arn(a, "alice"),
                    user_arn(a, "carol"),
                    user_arn(b, "bob"),
                    user_arn(b, "eve"),
                    role_arn(a, "ra"),
                    role_arn(b, "rb"),
                    assumed_role_arn(b, "rb", "s1"),
                    assumed_role_arn(a, "ra", "other"),
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    shape = draw(st.sampled_from(["string", "list", "RAM"]))
    if shape == "string":
        return names[0]
    return names if shape == "list" else {"RAM": names}


def _patterns(world: World, target: str) -> list[str]:
    """``Resource`` values within the ARN the policy is attached to."""
    arn = world.target(target)
    regional = arn.replace(":*:", ":cn-hangzhou:", 1)
    if target == "cat":
        return [arn, regional]
    return [arn, f"{arn}/*", f"{regional}/*", f"{arn}/cat.jpg"]


@st.composite
def _statement(draw: st.DrawFn, world: World, target: str) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Action": draw(st.sampled_from(ACTIONS)),
        "Resource": draw(st.sampled_from(_patterns(world, target))),
        "Principal": draw(_principal(world)),
    }
    condition = draw(st.sampled_from([None, None, "10.0.0.0/8", "192.168.0.0/16"]))
    if condition is not None:
        statement["Condition"] = {"IpAddress": {"acs:SourceIp": condition}}
    return statement


@st.composite
def _step(draw: st.DrawFn, world: World) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["put", "put", "delete", "attachment", "user"]))
    if kind == "delete" and world.policies:
        return ("delete", draw(st.sampled_from(sorted(world.policies))))
    if kind == "attachment":
        choices = [c for c in ATTACHABLE if c[2] not in ("carol", "eve") or c[2] in world.users]
        return ("toggle", draw(st.sampled_from(choices)))
    if kind == "user":
        return ("user", draw(st.sampled_from(["carol", "eve"])))
    target = draw(st.sampled_from(["photos", "photos", "cat", "logs"]))
    statements = draw(st.lists(_statement(world, target), min_size=1, max_size=3))
    return ("put", target, {"Version": "1", "Statement": statements})


def _apply(world: World, step: tuple[Any, ...]) -> None:
    ledger, a = world.runtime.ledger, world.a
    if step[0] == "put":
        world.do(lambda: ledger.put_resource_policy(a, world.target(step[1]), step[2]))
        world.policies.add(step[1])
    elif step[0] == "delete":
        world.do(lambda: ledger.delete_resource_policy(a, world.target(step[1])))
        world.policies.discard(step[1])
    elif step[0] == "toggle":
        side, kind, name, policy = attachment = step[1]
        account = world.account(side)
        if attachment in world.attached:
            world.do(lambda: ledger.detach_policy(account, kind, name, "Custom", policy))
            world.attached.discard(attachment)
        else:
            world.do(lambda: ledger.attach_policy(account, kind, name, "Custom", policy))
            world.attached.add(attachment)
    else:
        name = step[1]
        account = a if name == "carol" else world.b
        if name in world.users:
            world.do(lambda: ledger.delete_user(account, name, detach=True))
            world.users.discard(name)
            world.attached = {x for x in world.attached if x[2] != name}
        else:
            world.do(lambda: ledger.create_user(account, name, None))
            world.users.add(name)
    _record(world)


# -- the check ---------------------------------------------------------------------------------


def _assert_as_of_equals_the_recorded_live_answers(world: World) -> tuple[int, set[Outcome]]:
    """At each recorded position's ledger time, and one microsecond before the first event
    of the command after it, the temporal index answers as the live index did after that
    position. A position whose ledger time a later event shares (a clock that did not move)
    is not observable as of a time, and is skipped."""
    runtime = world.runtime
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    times = {position: at for position, at, _ in log}
    after = {earlier: later for (earlier, _, _), (later, _, _) in pairwise(log)}
    compared, kinds = 0, set()
    for position, at, answers in world.records:
        assert times[position] == at, f"ledger time of {position}"
        instants = []
        following = after.get(position)
        if following is None:
            instants.append(at)
        elif times[following] > at:  # the next command's first event came later
            instants += [at, times[following] - MICRO]
        for instant in sorted(set(instants)):
            for (label, action, resource, context), want in answers.items():
                request = _request(world, action, resource, context, instant)
                got = _as_of(world, label, request, instant)
                where = f"{label} {action} {resource} {context} after {position} at {instant}"
                assert got == want, where
                compared += 1
                if isinstance(want[0], DecisionKind):
                    layers = {dict(m)["layer"] for m in want[1]}  # type: ignore[attr-defined]
                    kinds.add((label, want[0], Layer.RESOURCE.value in layers))
    return compared, kinds


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def _cross(world: World) -> dict[str, Any]:
    a, b = world.a, world.b
    photos = f"acs:oss:*:{a}:photos/*"
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "oss:*", "Resource": photos, "Principal": b},
            {
                "Effect": "Deny",
                "Action": "oss:PutObject",
                "Resource": photos,
                "Principal": {"RAM": [user_arn(b, "eve")]},
            },
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": photos,
                "Principal": [role_arn(a, "ra"), user_arn(a, "carol")],
                "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
            },
        ],
    }


def test_a_scripted_history_answers_as_of_as_it_was_answered_live(runtime: Runtime) -> None:
    """Put, replaced, deleted; identity policies on both sides; a user deleted and re-created."""
    world = _set_up(runtime)
    a, b = world.a, world.b
    only_bob = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": f"acs:oss:*:{a}:photos/cat.jpg",
                "Principal": [user_arn(b, "bob"), assumed_role_arn(b, "rb", "s1")],
            }
        ],
    }
    for step in (
        ("put", "photos", _cross(world)),
        ("toggle", ("B", "user", "bob", "UseAcme")),
        ("toggle", ("B", "user", "eve", "UseAcme")),
        ("toggle", ("B", "role", "rb", "UseAcme")),
        ("put", "cat", only_bob),
        ("toggle", ("A", "user", "carol", "NoPut")),
        ("user", "eve"),
        ("user", "eve"),
        ("toggle", ("B", "user", "eve", "UseAcme")),
        ("delete", "photos"),
        ("toggle", ("A", "user", "alice", "ReadPhotos")),
        ("put", "photos", _cross(world)),
        ("delete", "cat"),
    ):
        _apply(world, step)
    compared, kinds = _assert_as_of_equals_the_recorded_live_answers(world)
    assert compared > 1000
    # the history shows the resource layer allowing and denying, across accounts and within,
    # for users and for a session its role is named for
    for expected in (
        ("bob", DecisionKind.ALLOW, True),
        ("eve", DecisionKind.EXPLICIT_DENY, True),
        ("eve", DecisionKind.IMPLICIT_DENY, True),
        ("carol", DecisionKind.ALLOW, True),
        ("session:ra", DecisionKind.ALLOW, True),
        ("session:rb", DecisionKind.ALLOW, True),
        ("alice", DecisionKind.ALLOW, False),
    ):
        assert expected in kinds, expected


def _generated(data: st.DataObject, length: int, url: str) -> None:
    runtime = started_runtime(url)
    try:
        world = _set_up(runtime)
        for number in range(length):
            _apply(world, data.draw(_step(world), label=f"step {number}"))
        compared, _ = _assert_as_of_equals_the_recorded_live_answers(world)
        assert compared >= len(PRINCIPALS) * len(REQUESTS)
    finally:
        runtime.stop()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=3, max_value=10))
def test_generated_resource_policy_histories_answer_as_live_on_sqlite(
    data: st.DataObject, length: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-resource-oracle-") as directory:
        _generated(data, length, f"sqlite:///{Path(directory) / 'mandate.db'}")


@pytest.mark.postgres
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=3, max_value=10))
def test_generated_resource_policy_histories_answer_as_live_on_postgres(
    postgres_dsn: str, data: st.DataObject, length: int
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated(data, length, url)
