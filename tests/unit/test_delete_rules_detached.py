"""RAM's DeleteGroup, DeleteRole and DeletePolicy rules as the ledger's: ``require_detached``.

RAM refuses each delete while something still hangs on the entity, naming the first blocker in
its order (the RAM API pages and error codes): DeleteGroup while it has members
(``DeleteConflict.Group.User``), then policies (``.Group.Policy``); DeleteRole while it has
policies (``DeleteConflict.Role.Policy``); DeletePolicy while a user holds it
(``DeleteConflict.Policy.User``), then a group (``.Group``), then a role (``.Role``, Mandate's:
RAM documents none), then while it has a version besides its default (``.Policy.Version``).
The aggregates decide as the command loads them (members and holders through the read port,
the decision index here), so a refusal writes no event and ``detach`` does not lift the rule;
/v1's commands, without the option, keep their own rule (``detach`` takes what hangs on it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import PreconditionFailed
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.results import Written
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.store.follower import LogFollower

ACTOR = AuditContext(actor="mandate:admin", credential="test", request_id="t-1")
TRUST = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
        }
    ],
}
DOCUMENT = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}],
}


@dataclass
class World:
    ledger: Ledger
    index: DecisionIndex
    follower: LogFollower
    account: str

    def do(self, write: Callable[[Ledger], object]) -> None:
        """Write, then bring the index (the ledger's read port) up to the write."""
        write(self.ledger)
        self.follower.catch_up()

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def refused(self, delete: Callable[[Ledger], Written]) -> str:
        """Run a delete that must be refused; check it wrote nothing; answer its code."""
        head = self.head()
        with pytest.raises(PreconditionFailed) as caught:
            delete(self.ledger)
        assert self.head() == head, "a refused delete wrote an event"
        return str(caught.value.code)

    def deleted(self, delete: Callable[[Ledger], Written]) -> None:
        head = self.head()
        assert delete(self.ledger).position > head


@pytest.fixture
def world() -> Iterator[World]:
    hasher = SecretHasher("k", {"k": b"k" * 32})
    index = DecisionIndex(hasher)
    ledger = Ledger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=hasher, read_port=index)
    follower = LogFollower(ledger, index)
    with acting_as(ACTOR):
        account = ledger.open_account("Acme").account_id
        follower.catch_up()
        yield World(ledger, index, follower, account)


# -- DeleteGroup ---------------------------------------------------------------------------
def _group_with_member_and_policy(w: World) -> None:
    a = w.account
    w.do(lambda ledger: ledger.create_user(a, "alice", None))
    w.do(lambda ledger: ledger.create_group(a, "devs"))
    w.do(lambda ledger: ledger.add_user_to_group(a, "devs", "alice"))
    w.do(lambda ledger: ledger.attach_policy(a, "group", "devs", "System", "ReadOnlyAccess"))


def test_delete_group_names_members_then_policies_and_writes_nothing(world: World) -> None:
    w, a = world, world.account
    _group_with_member_and_policy(w)

    def ram(ledger: Ledger) -> Written:
        return ledger.delete_group(a, "devs", require_detached=True)

    assert w.refused(ram) == "DeleteConflict.Group.User"
    # detach does not lift RAM's rule: it is decided first
    assert w.refused(
        lambda ledger: ledger.delete_group(a, "devs", detach=True, require_detached=True)
    ) == ("DeleteConflict.Group.User")
    w.do(lambda ledger: ledger.remove_user_from_group(a, "devs", "alice"))
    assert w.refused(ram) == "DeleteConflict.Group.Policy"
    w.do(lambda ledger: ledger.detach_policy(a, "group", "devs", "System", "ReadOnlyAccess"))
    w.deleted(ram)


def test_delete_group_without_the_option_keeps_v1s_rule(world: World) -> None:
    """/v1: ``DeleteConflict.Group`` for either; ``detach`` takes members and policies."""
    w, a = world, world.account
    _group_with_member_and_policy(w)
    assert w.refused(lambda ledger: ledger.delete_group(a, "devs")) == "DeleteConflict.Group"
    w.deleted(lambda ledger: ledger.delete_group(a, "devs", detach=True))
    w.follower.catch_up()
    alice = w.index.user_by_name(a, "alice")
    assert alice is not None
    assert not alice.groups


# -- DeleteRole ----------------------------------------------------------------------------
def test_delete_role_refused_while_it_has_policies_whatever_detach_says(world: World) -> None:
    w, a = world, world.account
    w.do(lambda ledger: ledger.create_role(a, "auditor", TRUST))
    w.do(lambda ledger: ledger.attach_policy(a, "role", "auditor", "System", "ReadOnlyAccess"))
    for detach in (False, True):
        assert w.refused(
            lambda ledger, d=detach: ledger.delete_role(
                a, "auditor", detach=d, require_detached=True
            )
        ) == ("DeleteConflict.Role.Policy")
    # /v1: refused with the same code, and detach takes the policies with the role
    assert w.refused(lambda ledger: ledger.delete_role(a, "auditor")) == (
        "DeleteConflict.Role.Policy"
    )
    w.deleted(lambda ledger: ledger.delete_role(a, "auditor", detach=True))


# -- DeletePolicy --------------------------------------------------------------------------
def _policy_everywhere_with_two_versions(w: World) -> None:
    """``Reader`` (v1 and v2, v1 the default) held by a role, a group and a user, in that
    order: the refusal names the kind by RAM's order, not by who attached first."""
    a = w.account
    w.do(lambda ledger: ledger.create_policy(a, "Reader", DOCUMENT))
    w.do(lambda ledger: ledger.create_policy_version(a, "Reader", DOCUMENT))
    w.do(lambda ledger: ledger.create_role(a, "auditor", TRUST))
    w.do(lambda ledger: ledger.create_group(a, "devs"))
    w.do(lambda ledger: ledger.create_user(a, "alice", None))
    for kind, name in (("role", "auditor"), ("group", "devs"), ("user", "alice")):
        w.do(
            lambda ledger, k=kind, n=name: ledger.attach_policy(
                a, PrincipalKind(k), n, "Custom", "Reader"
            )
        )


def test_delete_policy_names_users_then_groups_then_roles_then_versions(world: World) -> None:
    w, a = world, world.account
    _policy_everywhere_with_two_versions(w)

    def ram(ledger: Ledger) -> Written:
        return ledger.delete_policy(a, "Reader", require_detached=True)

    def detach(kind: str, name: str) -> None:
        w.do(lambda ledger: ledger.detach_policy(a, PrincipalKind(kind), name, "Custom", "Reader"))

    assert w.refused(ram) == "DeleteConflict.Policy.User"
    # detach (CascadingDelete's) does not lift RAM's rule when it is asked for
    assert w.refused(
        lambda ledger: ledger.delete_policy(a, "Reader", detach=True, require_detached=True)
    ) == ("DeleteConflict.Policy.User")
    detach("user", "alice")
    assert w.refused(ram) == "DeleteConflict.Policy.Group"
    detach("group", "devs")
    assert w.refused(ram) == "DeleteConflict.Policy.Role"
    detach("role", "auditor")
    assert w.refused(ram) == "DeleteConflict.Policy.Version"
    w.do(lambda ledger: ledger.delete_policy_version(a, "Reader", "v2"))
    w.deleted(ram)


def test_delete_policy_without_the_option_keeps_v1s_rule(world: World) -> None:
    """/v1: any holder is ``DeleteConflict.Policy.User``, versions do not block, ``detach``
    (and RPC's CascadingDelete, the same call) takes every holder and version with it."""
    w, a = world, world.account
    _policy_everywhere_with_two_versions(w)
    for name in ("alice", "devs"):
        kind = PrincipalKind.USER if name == "alice" else PrincipalKind.GROUP
        w.do(lambda ledger, k=kind, n=name: ledger.detach_policy(a, k, n, "Custom", "Reader"))
    # only the role holds it now: /v1 still says .User (its code for any holder)
    assert w.refused(lambda ledger: ledger.delete_policy(a, "Reader")) == (
        "DeleteConflict.Policy.User"
    )
    w.deleted(lambda ledger: ledger.delete_policy(a, "Reader", detach=True))
    w.follower.catch_up()
    role = w.index.role_by_name(a, "auditor")
    assert role is not None
    assert not role.attachments
    assert w.index.policy_by_name(a, "Reader") is None
