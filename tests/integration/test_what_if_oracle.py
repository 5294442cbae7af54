"""What-if equals the change made for real, over generated worlds (the oracle).

Worlds are generated as ``test_temporal_could`` generates them — two accounts, A's roles
with trusts and policies, contracts A → B, B's delegations to users and to a group, users
given and denied ``sts:AssumeRole`` — plus A's a0 holding ``reader`` directly and through a
group, and a second version of ``reader``. Then one change is drawn (revoke a contract or a
delegation, detach a policy from a user or a role, delete a user, switch ``reader``'s
default version) and:

* the what-if answer (the rehearsed command's events on a copy of the live index) is taken,
  and the log's head and the live index's reach must not have moved;
* the change is made for real through the ledger, and the diff of the account's reach before
  and after must be the what-if answer, entry for entry (lose, gain, rerouted);
* a change the ledger refuses must be refused by the rehearsal alike (same error class and
  code), writing nothing.

Directory changes are drawn alike: a management account whose directory holds A and B, with
random attachments of a Deny, an Allow and ``FullAliyunAccess`` to folders and members, then
one attach, detach or move, checked the same way on the management account's reach.

Contracts get no term here: a term passing between the two answers would be a difference
the oracle could not attribute.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.errors import DomainError
from mandate.domain.ledger.rehearsal import rehearse
from mandate.projections.decisions import what_if as what_if_module
from mandate.projections.decisions.what_if import copy_index, diff, reach_of, what_if
from tests.integration.runtimes import running
from tests.integration.test_temporal_could import _POLICIES, World, _set_up, _step, _steps
from tests.integration.test_temporal_sessions import ASSUME, Story, _document


def _termless(step: tuple[Any, ...]) -> tuple[Any, ...]:
    if step[0] == "entrust":
        return ("entrust", step[1], False)
    return ("group", True) if step[0] == "end_entrustments" else step


_worlds = _steps.map(_termless)
_changes = st.one_of(
    st.tuples(st.just("revoke_entrustment"), st.integers(0, 3)),
    st.tuples(st.just("revoke_delegation"), st.integers(0, 5)),
    st.tuples(st.just("detach_role"), st.sampled_from(("r0", "r1")), st.sampled_from(_POLICIES)),
    st.tuples(
        st.just("detach_user"),
        st.sampled_from(("a0", "u0", "u1")),
        st.sampled_from((("Custom", "reader"), ("System", ASSUME))),
    ),
    st.tuples(st.just("delete_user"), st.sampled_from(("a0", "u0", "u1"))),
    st.tuples(st.just("set_default"), st.sampled_from(("v1", "v2", "v3"))),
)


def _enrich(world: World) -> None:
    story, ledger, a = world.story, world.story.runtime.ledger, world.a
    story.do(lambda: ledger.attach_policy(a, "user", "a0", "Custom", "reader"))
    story.do(lambda: ledger.create_group(a, "staff", None))
    story.do(lambda: ledger.add_user_to_group(a, "staff", "a0"))
    story.do(lambda: ledger.attach_policy(a, "group", "staff", "Custom", "reader"))
    other = _document(("Allow", ["oss:PutObject", "oss:GetObject"], f"acs:oss:*:{a}:bucket/*"))
    story.do(lambda: ledger.create_policy_version(a, "reader", other))


def _command(world: World, change: tuple[Any, ...]) -> tuple[str, Any]:
    """The account the change is made in, and the ledger command that makes it."""
    ledger, a, b = world.story.runtime.ledger, world.a, world.b
    match change:
        case ("revoke_entrustment", i):
            e = world.entrustments[i % len(world.entrustments)] if world.entrustments else None
            return a, lambda: ledger.revoke_entrustment(a, e)  # type: ignore[arg-type]
        case ("revoke_delegation", i):
            d = world.delegations[i % len(world.delegations)] if world.delegations else None
            return b, lambda: ledger.revoke_delegation(b, d)  # type: ignore[arg-type]
        case ("detach_role", role, (policy_type, name)):
            return a, lambda: ledger.detach_policy(a, "role", role, policy_type, name)
        case ("detach_user", user, (policy_type, name)):
            account = a if user == "a0" else b
            return account, lambda: ledger.detach_policy(account, "user", user, policy_type, name)
        case ("delete_user", user):
            account = a if user == "a0" else b
            return account, lambda: ledger.delete_user(account, user, detach=True)
        case ("set_default", version):
            return a, lambda: ledger.set_default_policy_version(a, "reader", version)
    raise AssertionError(change)


def _refusal(error: BaseException) -> tuple[type, str | None]:
    return type(error), getattr(error, "code", None)


def _check(
    runtime: Runtime, world: World, change: tuple[Any, ...], command_of: Any = _command
) -> str:
    account, command = command_of(world, change)
    if change[0] == "revoke_entrustment" and not world.entrustments:
        return "nothing to revoke"
    if change[0] == "revoke_delegation" and not world.delegations:
        return "nothing to revoke"
    head = runtime.head()
    now = datetime.now(UTC)
    before = reach_of(copy_index(runtime.index), account, now)
    with mock.patch.object(what_if_module, "_may_admit", return_value=True):
        # the cheap pre-test on trusts skips only users a role could never admit
        assert reach_of(copy_index(runtime.index), account, now) == before
    refused: tuple[type, str | None] | None = None
    try:
        events = rehearse(command)
    except DomainError as error:
        refused = _refusal(error)
    assert runtime.head() == head
    if refused is not None:
        with pytest.raises(DomainError) as real_refusal:
            world.story.do(command)
        assert _refusal(real_refusal.value) == refused
        assert runtime.head() == head
        return "refused alike"
    answer = what_if(runtime.index, account, events, datetime.now(UTC))
    assert answer.position == runtime.index.position == head
    assert reach_of(copy_index(runtime.index), account, datetime.now(UTC)) == before
    world.story.do(command)
    real = diff(before, reach_of(copy_index(runtime.index), account, datetime.now(UTC)))
    assert answer.lose == real.lose
    assert answer.gain == real.gain
    assert answer.rerouted == real.rerouted
    return "lose" if answer.lose else "gain" if answer.gain else "no access change"


def _generated(url: str, steps: list[tuple[Any, ...]], change: tuple[Any, ...]) -> None:
    with running(url) as runtime:
        world = _set_up(Story(runtime))
        _enrich(world)
        for step in steps:
            with contextlib.suppress(DomainError):
                _step(world, step)
        event(f"{change[0]}: {_check(runtime, world, change)}")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_worlds, max_size=8), change=_changes)
def test_what_if_equals_the_change_made_for_real(
    steps: list[tuple[Any, ...]], change: tuple[Any, ...]
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-what-if-") as directory:
        _generated(f"sqlite:///{Path(directory) / 'mandate.db'}", steps, change)


_NODES = ("root", "prod", "team", "a", "b")
_CONTROL = ("NoEcs", "OnlyOss", "FullAliyunAccess")
_directory_steps = st.one_of(
    st.tuples(
        st.sampled_from(("attach", "detach")), st.sampled_from(_NODES), st.sampled_from(_CONTROL)
    ),
    st.tuples(
        st.just("move"), st.sampled_from(("a", "b")), st.sampled_from(("root", "prod", "team"))
    ),
)


def _managed(world: World) -> tuple[str, dict[str, str]]:
    """A management account whose directory has folders prod and team (in prod), members A (in
    the root folder) and B (in prod), and the control policies NoEcs (a Deny) and OnlyOss (an
    Allow) attached nowhere; its nodes by the names ``_NODES`` uses."""
    story, ledger = world.story, world.story.runtime.ledger
    m = story.do(lambda: ledger.open_account("Management")).account_id
    root = story.do(lambda: ledger.enable_resource_directory(m)).node_id
    prod = story.do(lambda: ledger.create_folder(m, root, "prod")).node_id
    team = story.do(lambda: ledger.create_folder(m, prod, "team")).node_id
    a, b = world.a, world.b
    invited = story.do(lambda: ledger.invite_account(m, a)).node_id
    story.do(lambda: ledger.accept_handshake(a, invited))
    invited_b = story.do(lambda: ledger.invite_account(m, b)).node_id
    story.do(lambda: ledger.accept_handshake(b, invited_b))
    story.do(lambda: ledger.move_account(m, b, prod))
    deny = _document(("Deny", ["ecs:*"], "*"))
    allow = _document(("Allow", ["oss:*", "sts:AssumeRole"], "*"))
    story.do(lambda: ledger.create_control_policy(m, "NoEcs", deny))
    story.do(lambda: ledger.create_control_policy(m, "OnlyOss", allow))
    return m, {"root": root, "prod": prod, "team": team, "a": world.a, "b": world.b}


def _directory_command(m: str, nodes: dict[str, str], world: World, change: tuple[Any, ...]) -> Any:
    ledger = world.story.runtime.ledger
    match change:
        case ("attach", node, name):
            return lambda: ledger.attach_control_policy(m, name, nodes[node])
        case ("detach", node, name):
            return lambda: ledger.detach_control_policy(m, name, nodes[node])
        case ("move", member, folder):
            return lambda: ledger.move_account(m, nodes[member], nodes[folder])
    raise AssertionError(change)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(_worlds, max_size=4),
    arranged=st.lists(_directory_steps, max_size=6),
    change=_directory_steps,
)
def test_what_if_of_a_directory_change_equals_the_change_made_for_real(
    steps: list[tuple[Any, ...]], arranged: list[tuple[Any, ...]], change: tuple[Any, ...]
) -> None:
    """The management account's reach lists the control bound over each member account;
    attaching, detaching or moving is answered as the change made for real, or refused alike
    (a policy attached twice or detached where it is not)."""
    with tempfile.TemporaryDirectory(prefix="mandate-what-if-") as directory:
        url = f"sqlite:///{Path(directory) / 'mandate.db'}"
        with running(url) as runtime:
            world = _set_up(Story(runtime))
            for step in steps:
                with contextlib.suppress(DomainError):
                    _step(world, step)
            m, nodes = _managed(world)
            for step in arranged:
                with contextlib.suppress(DomainError):
                    world.story.do(_directory_command(m, nodes, world, step))

            def command_of(world: World, change: tuple[Any, ...]) -> tuple[str, Any]:
                return m, _directory_command(m, nodes, world, change)

            event(f"{change[0]}: {_check(runtime, world, change, command_of)}")
