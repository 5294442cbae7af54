"""The decision index's cached policy sets and memoised answers never outlive a change.

Random command sequences run against one account through a started ``Runtime`` on SQLite.
Before every command the running index is warmed (every live user decides every request,
so each answer is cached and memoised); after it, each answer the running index gives,
first and then again from its memo, must equal the answer of a brand-new ``DecisionIndex``
rebuilt from position 0, which has no cache to be stale. A handler that forgets to move a
user's generation (``_touch``) shows up here as a stale answer.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import DomainError
from mandate.domain.ledger.application import Positioned
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.store.follower import LogFollower

ACTOR = AuditContext(actor="mandate:admin", request_id="req-cache-coherence")
OTHER_ACCOUNT = "5550001112223334"
WAIT = 5.0

USERS = ("u0", "u1", "u2")
GROUPS = ("g0", "g1")
POLICIES = ("p0", "p1")
SYSTEM_POLICIES = ("AliyunOSSReadOnlyAccess", "AliyunECSFullAccess", "AdministratorAccess")
VERSIONS = ("v1", "v2", "v3", "v4")
PRINCIPALS = tuple(("user", u) for u in USERS) + tuple(("group", g) for g in GROUPS)
POLICY_REFS = tuple(("System", p) for p in SYSTEM_POLICIES) + tuple(("Custom", p) for p in POLICIES)


def _statement(effect: str, actions: list[str], resource: str) -> dict[str, Any]:
    return {"Effect": effect, "Action": actions, "Resource": resource}


def _documents(account: str) -> list[dict[str, Any]]:
    """The pool of Custom policy documents: [0] is p0's first version, [1] p1's (with Deny)."""
    oss, ecs = f"acs:oss:*:{account}", f"acs:ecs:*:{account}"
    pool = [
        [
            _statement("Allow", ["oss:GetObject", "oss:PutObject"], f"{oss}:bucket/*"),
            _statement("Allow", ["ecs:StartInstance"], f"{ecs}:instance/*"),
        ],
        [
            _statement("Allow", ["oss:*"], f"{oss}:*"),
            _statement("Deny", ["oss:PutObject"], f"{oss}:bucket/secret/*"),
            _statement("Deny", ["ecs:StartInstance"], f"{ecs}:instance/prod-*"),
        ],
        [
            _statement("Allow", ["oss:GetObject"], f"{oss}:archive/*"),
            _statement("Allow", ["ecs:*"], f"{ecs}:*"),
        ],
        [
            _statement("Deny", ["oss:*"], f"{oss}:*"),
            _statement("Allow", ["ecs:StartInstance"], f"{ecs}:instance/i-*"),
        ],
        [_statement("Allow", ["oss:Get*", "oss:PutObject"], f"{oss}:bucket/secret/*")],
    ]
    return [{"Version": "1", "Statement": statements} for statements in pool]


DOCUMENT_COUNT = 5


def _requests(account: str) -> tuple[AccessRequest, ...]:
    oss, ecs = f"acs:oss:*:{account}", f"acs:ecs:*:{account}"
    return (
        AccessRequest.make("oss:GetObject", f"{oss}:bucket/report.csv"),
        AccessRequest.make("oss:PutObject", f"{oss}:bucket/report.csv"),
        AccessRequest.make("oss:PutObject", f"{oss}:bucket/secret/key.pem"),
        AccessRequest.make("oss:GetObject", f"{oss}:archive/2024.tar"),
        AccessRequest.make("ecs:StartInstance", f"{ecs}:instance/i-1"),
        AccessRequest.make("ecs:StartInstance", f"{ecs}:instance/prod-1"),
        AccessRequest.make("ram:CreateUser", f"acs:ram::{account}:user/*"),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{OTHER_ACCOUNT}:bucket/report.csv"),
    )


_documents_index = st.integers(0, DOCUMENT_COUNT - 1)
_attachments = st.tuples(
    st.sampled_from(("attach", "detach")),
    st.sampled_from(PRINCIPALS),
    st.sampled_from(POLICY_REFS),
)
_memberships = st.tuples(
    st.sampled_from(("add", "remove")), st.sampled_from(GROUPS), st.sampled_from(USERS)
)
_random_steps = (
    _attachments,
    _memberships,
    st.tuples(st.just("new_version"), st.sampled_from(POLICIES), _documents_index, st.booleans()),
    st.tuples(
        st.sampled_from(("set_default", "delete_version")),
        st.sampled_from(POLICIES),
        st.sampled_from(VERSIONS),
    ),
    st.tuples(st.just("recreate_policy"), st.sampled_from(POLICIES), _documents_index),
    st.tuples(st.just("recreate_group"), st.sampled_from(GROUPS)),
    st.tuples(st.just("recreate_user"), st.sampled_from(USERS)),
    st.tuples(st.just("rename"), st.sampled_from(USERS)),
)


def _steps(index: DecisionIndex, account: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Any step, or one that undoes or switches something that exists now (so it succeeds)."""
    attached = [
        ("detach", (kind, holder.user_name if kind == "user" else holder.group_name), key)
        for kind, holders in (
            ("user", index.users_of(account)),
            ("group", index.groups_of(account)),
        )
        for holder in holders
        for key in holder.attachments
    ]
    members = [
        ("remove", group_name, user.user_name)
        for user in index.users_of(account)
        for group_name in user.groups.values()
    ]
    versions = [
        (verb, policy.policy_name, version)
        for policy in index.policies_of(account)
        for version in policy.versions
        for verb in ("set_default", "delete_version")
    ]
    existing = [st.sampled_from(choices) for choices in (attached, members, versions) if choices]
    return st.one_of(*_random_steps, *existing)


def _run(runtime: Runtime, command: Callable[[], Positioned]) -> None:
    """Run one command as the admin and wait until the running index has applied it."""
    try:
        with acting_as(ACTOR):
            result = command()
    except DomainError:
        return  # refused: nothing was written
    assert runtime.follower.wait_for(result.position, WAIT)


def _summary(answer: Answer) -> tuple[object, ...]:
    return (
        answer.decision.kind,
        [m.as_dict() for m in answer.decision.matched],
        answer.chain,
        answer.billed_account,
    )


def _warm(runtime: Runtime, account: str, requests: tuple[AccessRequest, ...]) -> None:
    index = runtime.index
    for user in index.users_of(account):
        subject = functools.partial(index.user_subject, user.id)
        for request in requests:
            index.decide(subject, request, memo_key=user.id)


def _assert_coherent(runtime: Runtime, account: str, requests: tuple[AccessRequest, ...]) -> None:
    """Every live user's answers equal those of an index rebuilt from position 0."""
    fresh = DecisionIndex(runtime.hasher)
    LogFollower(runtime.ledger, fresh).catch_up()
    index = runtime.index
    assert fresh.position == index.position
    live = {u.user_name: u.id for u in index.users_of(account)}
    assert live == {u.user_name: u.id for u in fresh.users_of(account)}
    for name, user_id in live.items():
        subject = functools.partial(index.user_subject, user_id)
        for request in requests:
            expected = _summary(
                fresh.decide(fresh.user_subject(user_id), request, memo_key=user_id)
            )
            first = index.decide(subject, request, memo_key=user_id)
            second = index.decide(subject, request, memo_key=user_id)
            where = f"{name}: {request.action} on {request.resource}"
            assert _summary(first) == expected, where
            assert second is first, f"{where}: the second decision is not the memoised one"


def _apply(
    runtime: Runtime,
    account: str,
    documents: list[dict[str, Any]],
    step: tuple[Any, ...],
    check: Callable[[], None],
) -> None:
    ledger = runtime.ledger
    match step:
        case ("attach" | "detach" as verb, (kind, name), (policy_type, policy_name)):
            command = ledger.attach_policy if verb == "attach" else ledger.detach_policy
            _run(runtime, lambda: command(account, kind, name, policy_type, policy_name))
        case ("add", group, user):
            _run(runtime, lambda: ledger.add_user_to_group(account, group, user))
        case ("remove", group, user):
            _run(runtime, lambda: ledger.remove_user_from_group(account, group, user))
        case ("new_version", policy, document, set_as_default):
            _run(
                runtime,
                lambda: ledger.create_policy_version(
                    account, policy, documents[document], set_as_default=set_as_default
                ),
            )
        case ("set_default", policy, version):
            _run(runtime, lambda: ledger.set_default_policy_version(account, policy, version))
        case ("delete_version", policy, version):
            _run(runtime, lambda: ledger.delete_policy_version(account, policy, version))
        case ("recreate_policy", policy, document):
            _run(runtime, lambda: ledger.delete_policy(account, policy, detach=True))
            _run(runtime, lambda: ledger.create_policy(account, policy, documents[document]))
        case ("recreate_group", group):
            _run(runtime, lambda: ledger.delete_group(account, group, detach=True))
            _run(runtime, lambda: ledger.create_group(account, group))
        case ("recreate_user", user):
            _run(runtime, lambda: ledger.delete_user(account, user, detach=True))
            _run(runtime, lambda: ledger.create_user(account, user, None))
            _run(runtime, lambda: ledger.create_access_key(account, user))
        case ("rename", user):
            renamed = f"{user}-renamed"
            rename = ledger.update_user
            _run(
                runtime,
                lambda: rename(account, user, new_user_name=renamed, new_display_name=None),
            )
            check()
            _run(
                runtime,
                lambda: rename(account, renamed, new_user_name=user, new_display_name=None),
            )
        case _:
            raise AssertionError(f"unknown step {step!r}")


def _set_up(runtime: Runtime) -> tuple[str, list[dict[str, Any]]]:
    """Open the account, its users, groups and two-version policies, and a few attachments."""
    ledger = runtime.ledger
    with acting_as(ACTOR):
        account = ledger.open_account("Acme").account_id
        documents = _documents(account)
        for user in USERS:
            ledger.create_user(account, user, None)
            ledger.create_access_key(account, user)
        for group in GROUPS:
            ledger.create_group(account, group)
        for policy, first, second in zip(POLICIES, documents, documents[2:], strict=False):
            ledger.create_policy(account, policy, first)
            ledger.create_policy_version(account, policy, second, set_as_default=False)
        ledger.add_user_to_group(account, "g0", "u0")
        ledger.add_user_to_group(account, "g1", "u1")
        ledger.attach_policy(account, "group", "g0", "Custom", "p0")
        ledger.attach_policy(account, "group", "g1", "Custom", "p1")
        ledger.attach_policy(account, "user", "u2", "Custom", "p1")
        last = ledger.attach_policy(account, "user", "u2", "System", "AliyunOSSReadOnlyAccess")
    assert runtime.follower.wait_for(last.position, WAIT)
    return account, documents


@settings(max_examples=30, deadline=None)
@given(data=st.data(), length=st.integers(min_value=8, max_value=25))
def test_the_running_index_answers_as_a_rebuilt_one_after_every_command(
    data: st.DataObject, length: int
) -> None:
    """After every command the warmed index answers exactly as an index rebuilt from the log."""
    with tempfile.TemporaryDirectory(prefix="mandate-coherence-") as directory:
        url = f"sqlite:///{Path(directory) / 'mandate.db'}"
        runtime = Runtime(
            Settings(database_url=url, hash_key="k" * 40, admin_token="t" * 40),
            create_tables=True,
        )
        runtime.start()
        try:
            account, documents = _set_up(runtime)
            requests = _requests(account)

            def check() -> None:
                _assert_coherent(runtime, account, requests)
                _warm(runtime, account, requests)

            check()
            for number in range(length):
                step = data.draw(_steps(runtime.index, account), label=f"step {number}")
                _warm(runtime, account, requests)
                _apply(runtime, account, documents, step, check)
                check()
        finally:
            runtime.stop()
