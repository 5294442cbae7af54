"""AssumeRole never records a session after the revocation of a link of its lineage (issue 14).

AssumeRole decides on its process's decision index. A process whose index has not yet
applied ``EntrustmentRevoked`` (or ``DelegationRevoked``, or ``SessionRevoked`` of the
caller's own session) used to accept AssumeRole and write ``SessionIssued`` *after* the
revocation in the log: a session never honoured, but issued under a dead contract. The
command now reads those links again from the log and fences its save on them
(``domain.ledger.fences``). Here a second runtime on the same store (another process) revokes,
and the first runtime decides with the view it had before (its index not caught up), on
SQLite and PostgreSQL: the revocation landing before the command reads the log, and exactly
between that read and the save. Neither may leave a ``SessionIssued`` after the revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.arns import group_arn, role_arn, user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import NotPermitted
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.fences import Fence, FenceBroken
from mandate.domain.ledger.sts import StsCommands
from mandate.domain.sts.assume_role import AssumingCaller, RoleFacts

ADMIN = AuditContext(actor="mandate:admin")
ISSUED = "mandate:SessionIssued.v1"


@pytest.fixture
def two(store_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    settings = Settings(
        database_url=store_url, hash_key="k" * 40, admin_token="t" * 40, state_dir=tmp_path
    )
    first = Runtime(settings, create_tables=True)
    second = Runtime(settings, create_tables=False)
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


@dataclass
class Contract:
    a: str
    b: str
    entrustment_id: UUID
    delegation_id: UUID
    role_name: str
    ravi: AssumingCaller


def _allow(action: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def _contract(runtime: Runtime, *, via_group: bool = False) -> Contract:
    """A → B over everything of A's, delegated to B's ravi (or to B's group ops, ravi in it),
    who may assume its role."""
    ledger = runtime.ledger
    with acting_as(ADMIN):
        a = ledger.open_account("Acme").account_id
        b = ledger.open_account("OpsCo").account_id
        ledger.create_user(b, "ravi", None)
        if via_group:
            ledger.create_group(b, "ops")
            ledger.add_user_to_group(b, "ops", "ravi")
        key = ledger.create_access_key(b, "ravi")
        ledger.create_policy(b, "Assume", _allow("sts:AssumeRole", "*"))
        ledger.attach_policy(b, "user", "ravi", "Custom", "Assume")  # type: ignore[arg-type]
        granted = ledger.grant_entrustment(
            a, trustee_account_id=b, scope=_allow("*", "*"), contract_ref="MSA-1"
        )
        delegation = ledger.grant_delegation(
            b,
            delegation_id=uuid4(),
            entrustment_id=granted.entrustment_id,
            grantee=group_arn(b, "ops") if via_group else user_arn(b, "ravi"),
            scope=_allow("*", "*"),
        )
    assert runtime.follower.wait_for(delegation.position, 10)
    credential = runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    ravi = runtime.index.assuming_caller(credential)
    return Contract(a, b, granted.entrustment_id, delegation.delegation_id, granted.role_name, ravi)


class _StaleView:
    """The read port of a process whose index has not applied the revocation yet."""

    def __init__(self, real: Any, facts: dict[tuple[str, str], RoleFacts | None]) -> None:
        self.real = real
        self.facts = facts

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        return self.facts[(account_id, role_name)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _stale(runtime: Runtime, *roles: tuple[str, str]) -> _StaleView:
    """The view ``runtime``'s index has now, kept for the roles AssumeRole will ask about."""
    index = runtime.index
    return _StaleView(index, {r: index.role_facts(*r) for r in roles})


def _assume(ledger: Ledger, caller: AssumingCaller, arn: str, name: str = "oncall") -> Any:
    with acting_as(ADMIN):
        return ledger.assume_role(caller, role_arn=arn, role_session_name=name)


def _topics_after(runtime: Runtime, position: int) -> list[str]:
    return [n.topic for n in runtime.ledger.recorder.select_notifications(position + 1, 100)]


REVOCATIONS: dict[str, Callable[[Ledger, Contract], Any]] = {
    "entrustment": lambda ledger, c: ledger.revoke_entrustment(c.a, c.entrustment_id),
    "delegation": lambda ledger, c: ledger.revoke_delegation(c.b, c.delegation_id),
}


@pytest.mark.parametrize("revoked", sorted(REVOCATIONS))
def test_a_process_behind_the_revocation_issues_no_session(
    two: tuple[Runtime, Runtime], revoked: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    contract = _contract(first)
    arn = role_arn(contract.a, contract.role_name)
    monkeypatch.setattr(first.ledger, "read_port", _stale(first, (contract.a, contract.role_name)))
    with acting_as(ADMIN):
        revocation = REVOCATIONS[revoked](second.ledger, contract).position
    with pytest.raises(NotPermitted) as refused:
        _assume(first.ledger, contract.ravi, arn)
    detail = str(refused.value)
    assert ("was revoked" if revoked == "entrustment" else "no live delegation") in detail
    assert first.head() == revocation
    assert ISSUED not in _topics_after(first, revocation)


@pytest.mark.parametrize("revoked", sorted(REVOCATIONS))
def test_a_revocation_between_the_read_and_the_save_breaks_the_fence(
    two: tuple[Runtime, Runtime], revoked: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    contract = _contract(first)
    arn = role_arn(contract.a, contract.role_name)
    monkeypatch.setattr(first.ledger, "read_port", _stale(first, (contract.a, contract.role_name)))
    commit = type(first.ledger)._commit
    revocations: list[int] = []
    broken: list[FenceBroken] = []

    def revoke_before_saving(
        self: Ledger, *aggregates: Aggregate, fences: tuple[Fence, ...] = ()
    ) -> int:
        if self is first.ledger and fences and not revocations:  # the lineage read, unsaved
            with acting_as(ADMIN):
                revocations.append(REVOCATIONS[revoked](second.ledger, contract).position)
        try:
            return commit(self, *aggregates, fences=fences)
        except FenceBroken as error:
            broken.append(error)
            raise

    monkeypatch.setattr(type(first.ledger), "_commit", revoke_before_saving)
    with pytest.raises(NotPermitted):
        _assume(first.ledger, contract.ravi, arn)
    assert revocations
    assert len(broken) == 1  # the save was refused; the re-run, reading the log, refused it
    assert first.head() == revocations[0]
    assert ISSUED not in _topics_after(first, revocations[0] - 1)


def test_sessions_under_one_contract_do_not_break_each_others_fences(
    two: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fence writes nothing: another session issued meanwhile under the same contract (by
    another process) is no reason to decide again, unlike an event on the contract."""
    first, second = two
    contract = _contract(first)
    arn = role_arn(contract.a, contract.role_name)
    assert second.follower.wait_for(first.head(), 10)
    commit = type(first.ledger)._commit
    others: list[int] = []
    broken: list[FenceBroken] = []

    def another_session_first(
        self: Ledger, *aggregates: Aggregate, fences: tuple[Fence, ...] = ()
    ) -> int:
        if self is first.ledger and fences and not others:
            others.append(_assume(second.ledger, contract.ravi, arn, "other").position)
        try:
            return commit(self, *aggregates, fences=fences)
        except FenceBroken as error:
            broken.append(error)
            raise

    monkeypatch.setattr(type(first.ledger), "_commit", another_session_first)
    issued = _assume(first.ledger, contract.ravi, arn)
    assert others
    assert issued.position > others[0]
    assert not broken


def test_a_chained_session_is_refused_once_its_parents_contract_is_revoked(
    two: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session of the managed role assumes an ordinary role of A: the child's lineage goes
    through its parent's contract, which the command reads from the log too."""
    first, second = two
    contract = _contract(first)
    a = contract.a
    managed = role_arn(a, contract.role_name)
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [managed]}}
        ],
    }
    with acting_as(ADMIN):
        created = first.ledger.create_role(a, "reader", trust)
    parent = _assume(first.ledger, contract.ravi, managed)
    assert first.follower.wait_for(max(created.position, parent.position), 10)
    credential = first.index.authenticate_session(
        parent.access_key_id, parent.access_key_secret, parent.security_token
    )
    session_caller = first.index.assuming_caller(credential)
    monkeypatch.setattr(first.ledger, "read_port", _stale(first, (a, "reader")))
    with acting_as(ADMIN):
        revocation = second.ledger.revoke_entrustment(a, contract.entrustment_id).position
    with pytest.raises(NotPermitted) as refused:
        _assume(first.ledger, session_caller, role_arn(a, "reader"), "chained")
    assert "was revoked" in str(refused.value)
    assert first.head() == revocation


def test_an_index_up_to_date_fences_without_reading_the_links(
    two: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common case costs no read: the save is fenced on the versions the index saw, and
    the links are read from the log only once a fence broke."""
    first, _ = two
    contract = _contract(first)
    arn = role_arn(contract.a, contract.role_name)
    reads: list[object] = []
    read = StsCommands._fences_read

    def counted(self: StsCommands, plan: Any) -> Any:
        reads.append(plan)
        return read(self, plan)

    monkeypatch.setattr(StsCommands, "_fences_read", counted)
    issued = _assume(first.ledger, contract.ravi, arn)
    assert not reads
    assert first.follower.wait_for(issued.position, 10)
    with acting_as(ADMIN):
        first.ledger.amend_entrustment(contract.a, contract.entrustment_id, _allow("oss:*", "*"))
    monkeypatch.setattr(first.ledger, "read_port", _stale(first, (contract.a, contract.role_name)))
    _assume(first.ledger, contract.ravi, arn, "after-amendment")  # the fence broke: read, saved
    assert len(reads) == 1


def test_a_process_behind_a_removal_from_the_delegated_group_issues_no_session(
    two: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delegation to a group reaches a user only while it is in the group: its membership
    lives on the user, so the links are read from the log and the user is fenced too."""
    first, second = two
    contract = _contract(first, via_group=True)
    arn = role_arn(contract.a, contract.role_name)
    monkeypatch.setattr(first.ledger, "read_port", _stale(first, (contract.a, contract.role_name)))
    issued = _assume(first.ledger, contract.ravi, arn, "while-in-ops")  # the log agrees: saved
    with acting_as(ADMIN):
        removed = second.ledger.remove_user_from_group(contract.b, "ops", "ravi").position
    assert removed > issued.position
    with pytest.raises(NotPermitted) as refused:
        _assume(first.ledger, contract.ravi, arn)
    assert "no live delegation" in str(refused.value)
    assert first.head() == removed
