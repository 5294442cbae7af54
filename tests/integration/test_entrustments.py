"""Entrustments (A → B) and delegations (B → its users and groups), live, on each store
(docs/design.md §2 "layers intersect", §3.2, §5).

A grants a contract over its resources; it is realised as a managed role of A whose layer is
the contract's scope and whose trust is computed from the live delegations under it. Only a
delegated user of B, allowed ``sts:AssumeRole`` on the role by B's own policies, may assume it;
its session may do at most scope ∩ (the union of its live delegations) ∩ its session policy,
and it dies — without any event of its own — the instant the contract is revoked or ends, or
the last delegation reaching its user does.

Commands run through ``Runtime.write`` as the API runs them; sessions are authenticated afresh
before every decision (as every request is), so what a test sees is what the next request
would get. Every refused command is checked to write no event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from mandate.domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    entrustment_arn,
    group_arn,
    role_arn,
)
from mandate.domain.common.audit import AuditContext
from mandate.domain.common.errors import Conflict, DomainError, InvalidInput, NotFound, NotPermitted
from mandate.domain.contracts.entrustments import (
    EntrustmentStatus,
    ScopeWarning,
    entrustment_status,
)
from mandate.domain.ledger.application import IssuedSession
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Effect, Layer
from mandate.projections.decisions.credentials import AuthenticationFailed, Credential
from tests.integration.test_roles_sessions import (
    ADMIN,
    ASSUME,
    World,
    allow,
    deny,
    document,
    layers_of,
    trust,
    world,
)
from tests.integration.test_session_lineage_live import user_subject

__all__ = ["world"]  # the fixture, shared with test_roles_sessions

CONTRACT = "MSA-2026-117"
_UNREPRESENTABLE = [  # (field, instant): valid Python datetimes, unacceptable instants
    ("starts_at", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))),
    ("ends_at", datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14)))),
    ("ends_at", datetime(9999, 6, 1, tzinfo=UTC)),
    ("starts_at", datetime(1969, 12, 31, tzinfo=UTC)),
]
READ, WRITE = "oss:GetObject", "oss:PutObject"


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contract:
    """An entrustment as the tests hold it."""

    a: str
    b: str
    id: UUID
    role_name: str
    contract_ref: str

    @property
    def arn(self) -> str:
        return entrustment_arn(self.a, self.id)

    @property
    def role_arn(self) -> str:
        return role_arn(self.a, self.role_name)

    def photo(self, name: str = "1.jpg") -> str:
        return f"acs:oss:*:{self.a}:photos/{name}"


def photos(account: str) -> str:
    return f"acs:oss:*:{account}:photos/*"


def grant(
    world: World,
    a: str,
    b: str,
    scope: object,
    contract_ref: str = CONTRACT,
    **kwargs: Any,
) -> Contract:
    """``grant_entrustment`` as A's admin; answers once the index has applied it."""
    granted = world.runtime.write(
        ADMIN,
        lambda: world.runtime.ledger.grant_entrustment(
            a, trustee_account_id=b, scope=scope, contract_ref=contract_ref, **kwargs
        ),
    )
    assert world.index.position >= granted.position
    return Contract(a, b, granted.entrustment_id, granted.role_name, contract_ref)


def delegate(
    world: World, contract: Contract, grantee: str, scope: object, **kwargs: Any
) -> tuple[UUID, list[ScopeWarning]]:
    """``grant_delegation`` as B's admin: the delegation's id and its warnings."""
    delegation_id = uuid4()
    granted = world.do(
        "grant_delegation",
        contract.b,
        delegation_id=delegation_id,
        entrustment_id=contract.id,
        grantee=grantee,
        scope=scope,
        **kwargs,
    )
    return granted.delegation_id, list(granted.warnings)


def revoke(world: World, contract: Contract, reason: str | None = None) -> int:
    """``revoke_entrustment`` as A's admin, with a reason in the audit context."""
    audit = AuditContext(actor="mandate:admin", request_id="req-revoke", reason=reason)
    revoked = world.runtime.write(
        audit, lambda: world.runtime.ledger.revoke_entrustment(contract.a, contract.id)
    )
    return revoked.position


def status(world: World, contract: Contract, at: datetime | None = None) -> EntrustmentStatus:
    state = world.index.entrustments[contract.id].state()
    return entrustment_status(
        revoked=state.revoked is not None,
        ended=state.ended,
        starts_at=state.starts_at,
        ends_at=state.ends_at,
        at=at or datetime.now(UTC),
    )


def dead(world: World, issued: IssuedSession, *fragments: str) -> str:
    """The session is refused (401); its reason holds every fragment."""
    with pytest.raises(AuthenticationFailed) as refused:
        world.session(issued)
    reason = str(refused.value)
    for fragment in fragments:
        assert fragment in reason, f"{fragment!r} not in {reason!r}"
    return reason


def fields(error: DomainError) -> list[str]:
    assert isinstance(error, InvalidInput)
    return [e.field for e in error.errors]


@dataclass(frozen=True)
class Partners:
    """A entrusts B with reading and writing A's photos; B lets ravi read them."""

    contract: Contract
    ravi: Credential
    delegation: UUID

    @property
    def a(self) -> str:
        return self.contract.a

    @property
    def b(self) -> str:
        return self.contract.b


def partners(world: World, **grant_kwargs: Any) -> Partners:
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow([READ, WRITE], photos(a))), **grant_kwargs)
    ravi = world.user(b, "ravi", ASSUME)
    delegation, warnings = delegate(world, contract, ravi.arn, document(allow(READ, photos(a))))
    assert warnings == []
    return Partners(contract, ravi, delegation)


# --- granting ----------------------------------------------------------------------------------


def test_a_granted_entrustment_is_a_managed_role_of_a(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    start = world.head()
    contract = grant(world, a, b, document(allow(READ, photos(a))), "MSA 2026/117 ")
    assert world.names_since(start) == ["NameClaimed", "EntrustmentGranted"]
    granted = world.events_since(start)[1]
    assert (granted.account_id, granted.trustee_account_id) == (a, b)
    assert granted.contract_ref == "MSA 2026/117"
    assert granted.scope_policies is None
    # the managed role's name comes from the contract reference
    assert contract.role_name == "MSA-2026-117"
    view = world.index.role_by_name(a, contract.role_name)
    assert view is not None
    assert (view.id, view.entrustment_id) == (contract.id, contract.id)
    assert role_arn(view.account_id, view.role_name) == f"acs:ram::{a}:role/MSA-2026-117"
    assert [r.role_name for r in world.index.roles_of(a)] == ["MSA-2026-117"]
    assert world.index.roles_of(b) == []
    assert status(world, contract) is EntrustmentStatus.ACTIVE
    assert world.index.entrustments_of(a, "granted")[0].id == contract.id
    assert world.index.entrustments_of(b, "received")[0].id == contract.id
    assert world.index.entrustments_of(a, "received") == []

    # a role name may be given; the name is A's role name (taken names are refused)
    named = grant(world, a, b, document(allow(READ, photos(a))), "MSA-2", role_name="partner")
    assert named.role_name == "partner"
    assert world.index.role_by_name(a, "partner") is not None
    ledger = world.runtime.ledger
    error = world.refused(
        Conflict,
        lambda: ledger.grant_entrustment(
            a, trustee_account_id=b, scope=document(allow(READ, "*")), contract_ref="partner"
        ),
    )
    assert error.code == "EntityAlreadyExists.Role"
    world.do("create_role", a, "ordinary", trust(f"acs:ram::{a}:root"))
    world.refused(
        Conflict,
        lambda: ledger.grant_entrustment(
            a,
            trustee_account_id=b,
            scope=document(allow(READ, "*")),
            contract_ref="x",
            role_name="ordinary",
        ),
    )
    # and an ordinary role cannot take a managed role's name
    world.refused(Conflict, lambda: ledger.create_role(a, "partner", trust(f"acs:ram::{a}:root")))


def test_grant_refusals_write_nothing(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    closed = world.account("Gone")
    world.do("close_account", closed)
    ledger = world.runtime.ledger
    scope = document(allow(READ, photos(a)))
    now = datetime.now(UTC)

    def attempt(**kwargs: Any) -> Any:
        arguments: dict[str, Any] = {"trustee_account_id": b, "scope": scope, "contract_ref": "c"}
        arguments.update(kwargs)
        return lambda: ledger.grant_entrustment(a, **arguments)

    # contract_ref is required
    for ref in ("", "   ", None, "x" * 129):
        error = world.refused(InvalidInput, attempt(contract_ref=ref))
        assert fields(error) == ["contract_ref"]
    # the trustee is another open account
    error = world.refused(InvalidInput, attempt(trustee_account_id=a))
    assert fields(error) == ["trustee_account_id"]
    error = world.refused(InvalidInput, attempt(trustee_account_id="1234567890123456"))
    assert error.code == "EntityNotExist.Account"
    error = world.refused(InvalidInput, attempt(trustee_account_id=closed))
    assert fields(error) == ["trustee_account_id"]
    # the term: a zone, an end in the future and after the start
    for ends_at in (now - timedelta(seconds=1), now):
        error = world.refused(InvalidInput, attempt(ends_at=ends_at))
        assert fields(error) == ["ends_at"]
    later = now + timedelta(hours=2)
    for starts_at in (later, later + timedelta(hours=1)):
        world.refused(InvalidInput, attempt(starts_at=starts_at, ends_at=later))
    world.refused(InvalidInput, attempt(ends_at=later.replace(tzinfo=None)))
    world.refused(InvalidInput, attempt(starts_at=now.replace(tzinfo=None)))
    # an instant outside UTC's range or 1970..9999 would poison every reader of the event
    for field, instant in _UNREPRESENTABLE:
        error = world.refused(InvalidInput, attempt(**{field: instant}))
        assert fields(error) == [field]
    # the scope: a valid document, or a non-empty list of A's own custom policies
    world.refused(InvalidInput, attempt(scope={"Version": "1", "Statement": [{"Effect": "Allow"}]}))
    world.refused(InvalidInput, attempt(scope={"policies": []}))
    world.refused(InvalidInput, attempt(scope={"policies": "P"}))
    world.refused(InvalidInput, attempt(scope=42))
    error = world.refused(InvalidInput, attempt(scope={"policies": ["Nope"]}))
    assert error.code == "EntityNotExist.Policy"
    world.do("create_policy", b, "BetaOwn", document(allow(READ, "*")))
    world.refused(InvalidInput, attempt(scope={"policies": ["BetaOwn"]}))
    world.refused(InvalidInput, attempt(scope={"policies": ["AliyunOSSFullAccess"]}))
    # the granting account must be open
    world.refused(
        DomainError,
        lambda: ledger.grant_entrustment(
            closed, trustee_account_id=b, scope=scope, contract_ref="c"
        ),
    )
    assert world.index.entrustments == {}


def test_a_scope_of_policies_is_snapshotted_and_widened_only_by_an_amendment(
    world: World,
) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    world.do("create_policy", a, "PhotoRead", document(allow(READ, photos(a))))
    world.do("create_policy", a, "NoSecrets", document(deny("oss:*", f"acs:oss:*:{a}:photos/s/*")))
    contract = grant(world, a, b, {"policies": ["PhotoRead", "NoSecrets"]})
    view = world.index.entrustments[contract.id]
    assert view.scope_policies == ["PhotoRead", "NoSecrets"]
    ravi = world.user(b, "ravi", ASSUME)
    delegate(world, contract, ravi.arn, document(allow("oss:*", photos(a))))
    issued = world.assume(ravi, contract.role_arn)
    assert world.decide_session(issued, READ, contract.photo()).allowed
    assert not world.decide_session(issued, WRITE, contract.photo()).allowed
    secret = world.decide_session(issued, READ, contract.photo("s/key"))
    assert secret.decision.kind is DecisionKind.EXPLICIT_DENY
    assert (Layer.ENTRUSTMENT, Effect.DENY) in layers_of(secret)

    # a new default version of the policy does not widen the signed contract
    start = world.head()
    world.do(
        "create_policy_version",
        a,
        "PhotoRead",
        document(allow("oss:*", photos(a))),
        set_as_default=True,
    )
    assert not world.decide_session(issued, WRITE, contract.photo()).allowed
    assert world.index.entrustments[contract.id].scope == view.scope
    assert "EntrustmentAmended" not in world.names_since(start)

    # amending does, as an event; the same scope again records nothing
    start = world.head()
    world.do("amend_entrustment", a, contract.id, {"policies": ["PhotoRead"]})
    assert world.names_since(start) == ["EntrustmentAmended"]
    (amended,) = world.events_since(start)
    assert amended.scope_policies == ["PhotoRead"]
    assert world.decide_session(issued, WRITE, contract.photo()).allowed
    assert world.decide_session(issued, WRITE, contract.photo("s/key")).allowed  # Deny gone
    position = world.do("amend_entrustment", a, contract.id, {"policies": ["PhotoRead"]}).position
    assert world.head() == start + 1 == position
    # narrowing takes effect at the next decision too
    world.do("amend_entrustment", a, contract.id, document(allow(READ, photos(a))))
    assert world.index.entrustments[contract.id].scope_policies is None
    assert not world.decide_session(issued, WRITE, contract.photo()).allowed
    assert world.decide_session(issued, READ, contract.photo()).allowed

    # only A amends its own entrustments; a bad scope is refused
    ledger = world.runtime.ledger
    error = world.refused(
        NotFound, lambda: ledger.amend_entrustment(b, contract.id, document(allow("*", "*")))
    )
    assert error.code == "EntityNotExist.Entrustment"
    world.refused(NotFound, lambda: ledger.amend_entrustment(a, uuid4(), document(allow("*", "*"))))
    world.refused(InvalidInput, lambda: ledger.amend_entrustment(a, contract.id, {"policies": []}))


def test_status_scheduled_active_ended_revoked(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    scope = document(allow(READ, photos(a)))
    now = datetime.now(UTC)
    start, end = now + timedelta(hours=1), now + timedelta(hours=2)
    scheduled = grant(world, a, b, scope, "S-1", starts_at=start, ends_at=end)
    assert status(world, scheduled) is EntrustmentStatus.SCHEDULED
    assert status(world, scheduled, start) is EntrustmentStatus.ACTIVE
    assert status(world, scheduled, end) is EntrustmentStatus.ENDED
    view = world.index.entrustments[scheduled.id]
    assert (view.starts_at, view.ends_at) == (start, end)

    active = grant(world, a, b, scope, "A-1")
    assert status(world, active) is EntrustmentStatus.ACTIVE
    start_head = world.head()
    revoke(world, active, "superseded")
    assert world.names_since(start_head) == ["EntrustmentRevoked"]
    assert status(world, active) is EntrustmentStatus.REVOKED
    # revoking again, amending or delegating a revoked contract: Conflict, nothing written
    ledger = world.runtime.ledger
    error = world.refused(Conflict, lambda: ledger.revoke_entrustment(a, active.id))
    assert error.code == "Entrustment.Revoked"
    world.refused(
        Conflict, lambda: ledger.amend_entrustment(a, active.id, document(allow("*", "*")))
    )
    ravi = world.user(b, "ravi", ASSUME)
    world.refused(
        Conflict,
        lambda: ledger.grant_delegation(
            b, delegation_id=uuid4(), entrustment_id=active.id, grantee=ravi.arn, scope=scope
        ),
    )
    # only A revokes; an unknown id is 404
    error = world.refused(NotFound, lambda: ledger.revoke_entrustment(b, scheduled.id))
    assert error.code == "EntityNotExist.Entrustment"
    world.refused(NotFound, lambda: ledger.revoke_entrustment(a, uuid4()))
    assert status(world, scheduled) is EntrustmentStatus.SCHEDULED
    # a scheduled contract may be revoked before it starts
    revoke(world, scheduled)
    assert status(world, scheduled) is EntrustmentStatus.REVOKED
    assert status(world, scheduled, start) is EntrustmentStatus.REVOKED


def test_ordinary_role_commands_refuse_the_managed_role(world: World) -> None:
    p = partners(world)
    a, name = p.a, p.contract.role_name
    ledger = world.runtime.ledger
    issued = world.assume(p.ravi, p.contract.role_arn)
    commands = {
        "update": lambda: ledger.update_role(a, name, description="mine now"),
        "update-duration": lambda: ledger.update_role(a, name, max_session_duration=7200),
        "trust": lambda: ledger.update_role(
            a, name, assume_role_policy_document=trust(f"acs:ram::{a}:root")
        ),
        "attach": lambda: ledger.attach_policy(a, "role", name, "System", "AdministratorAccess"),
        "detach": lambda: ledger.detach_policy(a, "role", name, "System", "AdministratorAccess"),
        "delete": lambda: ledger.delete_role(a, name),
        "delete-detach": lambda: ledger.delete_role(a, name, detach=True),
        "revoke-sessions": lambda: ledger.revoke_role_sessions(a, name),
    }
    for label, command in commands.items():
        error = world.refused(Conflict, command)
        assert error.code == "EntityManaged.Role", label
        assert str(p.contract.id) in error.detail, label
    # the role and its session are untouched
    view = world.index.role_by_name(a, name)
    assert view is not None
    assert view.attachments == {}
    assert world.decide_session(issued, READ, p.contract.photo()).allowed
    # B cannot touch it either (it is not B's role at all)
    error = world.refused(NotFound, lambda: ledger.delete_role(p.b, name))
    assert error.code == "EntityNotExist.Role"


# --- delegating --------------------------------------------------------------------------------


def test_only_the_trustee_delegates_and_only_to_its_live_users_and_groups(world: World) -> None:
    p = partners(world)
    a, b, contract = p.a, p.b, p.contract
    c = world.account("Gamma")
    ledger = world.runtime.ledger
    scope = document(allow(READ, photos(a)))
    alice = world.user(a, "alice", ASSUME)
    carl = world.user(c, "carl", ASSUME)
    world.do("create_group", b, "ops")

    def attempt(account: str, grantee: str, entrustment_id: UUID = contract.id, **kw: Any) -> Any:
        return lambda: ledger.grant_delegation(
            account,
            delegation_id=uuid4(),
            entrustment_id=entrustment_id,
            grantee=grantee,
            scope=kw.pop("scope", scope),
            **kw,
        )

    # another account than the trustee: as if the entrustment did not exist
    for account, grantee in ((a, alice.arn), (c, carl.arn)):
        error = world.refused(NotFound, attempt(account, grantee))
        assert error.code == "EntityNotExist.Entrustment"
    error = world.refused(NotFound, attempt(b, p.ravi.arn, uuid4()))
    assert error.code == "EntityNotExist.Entrustment"
    # the grantee: a user or group of B, alive
    for grantee in (alice.arn, carl.arn, f"acs:ram::{a}:group/ops"):
        error = world.refused(InvalidInput, attempt(b, grantee))
        assert fields(error) == ["grantee"]
    for grantee in (contract.role_arn, f"acs:ram::{b}:role/x", f"acs:ram::{b}:root", "ravi", ""):
        world.refused(InvalidInput, attempt(b, grantee))
    error = world.refused(NotFound, attempt(b, f"acs:ram::{b}:user/nobody"))
    assert error.code == "EntityNotExist.User"
    error = world.refused(NotFound, attempt(b, group_arn(b, "nogroup")))
    assert error.code == "EntityNotExist.Group"
    # ends_at: a zone, in the future; the scope: a valid document
    world.refused(InvalidInput, attempt(b, p.ravi.arn, ends_at=datetime.now(UTC)))
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    world.refused(InvalidInput, attempt(b, p.ravi.arn, ends_at=naive))
    for _, instant in _UNREPRESENTABLE:
        world.refused(InvalidInput, attempt(b, p.ravi.arn, ends_at=instant))
    world.refused(InvalidInput, attempt(b, p.ravi.arn, scope={"Statement": "nope"}))
    world.refused(InvalidInput, attempt(b, p.ravi.arn, scope={"policies": ["X"]}))

    start = world.head()
    delegation_id, warnings = delegate(world, contract, group_arn(b, "ops"), scope)
    assert warnings == []
    assert world.names_since(start) == ["DelegationGranted"]
    (granted,) = world.events_since(start)
    assert (granted.grantee_kind, granted.entrustment_account_id) == ("group", a)
    view = world.index.delegations[delegation_id]
    assert view.grantee_arn == group_arn(b, "ops")
    assert delegation_id in world.index.entrustments[contract.id].delegation_ids
    assert [d.id for d in world.index.delegations_of(b)] == [p.delegation, delegation_id]
    assert world.index.delegations_of(a) == []

    # a deleted user is no longer a grantee; a new user of that name is another user
    world.do("create_user", b, "temp", None)
    world.do("delete_user", b, "temp")
    world.refused(NotFound, attempt(b, f"acs:ram::{b}:user/temp"))


def test_warnings_name_statements_the_entrustment_does_not_contain(world: World) -> None:
    p = partners(world)
    a, contract = p.a, p.contract
    scope = document(
        allow(READ, f"acs:oss:*:{a}:photos/u-42/*"),  # 0: inside
        allow(["oss:*", READ], photos(a)),  # 1: wider actions
        allow(READ, f"acs:oss:*:{a}:*"),  # 2: wider resources
        deny("*", "*"),  # 3: a Deny never widens
        {"Effect": "Allow", "NotAction": "ram:*", "Resource": photos(a)},  # 4
    )
    _, warnings = delegate(world, contract, p.ravi.arn, scope)
    assert [w.statement for w in warnings] == [1, 2, 4]
    reasons = {w.statement: w.reason for w in warnings}
    assert "actions not entrusted: oss:*" in reasons[1]
    assert READ not in reasons[1]
    assert f"resources not entrusted: acs:oss:*:{a}:*" in reasons[2]
    assert "NotAction" in reasons[4]


def test_a_wider_delegation_never_exceeds_the_entrustment(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow(READ, photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    _, warnings = delegate(world, contract, ravi.arn, document(allow("*", "*")))
    assert [w.statement for w in warnings] == [0]
    issued = world.assume(ravi, contract.role_arn, policy=document(allow("*", "*")))
    assert world.decide_session(issued, READ, contract.photo()).allowed
    for action, resource in (
        (WRITE, contract.photo()),
        (READ, f"acs:oss:*:{a}:docs/1"),
        ("ecs:StartInstance", f"acs:ecs:*:{a}:instance/i-1"),
        ("ram:CreateUser", f"acs:ram::{a}:user/x"),
    ):
        answer = world.decide_session(issued, action, resource)
        assert answer.decision.kind is DecisionKind.IMPLICIT_DENY, (action, resource)
        assert "entrustment layer" in answer.reason
    # B's own resources are not reached through A's role at all
    assert not world.decide_session(issued, READ, f"acs:oss:*:{b}:photos/1").allowed
    # ravi itself still cannot touch A's resources directly
    assert not world.decide(ravi, READ, contract.photo()).allowed


def test_a_narrower_delegation_and_session_policy_narrow_further(world: World) -> None:
    p = partners(world)  # scope: read and write photos; ravi's delegation: read
    issued = world.assume(
        p.ravi,
        p.contract.role_arn,
        policy=document(allow(READ, f"acs:oss:*:{p.a}:photos/u-42/*")),
    )
    assert world.decide_session(issued, READ, p.contract.photo("u-42/a.jpg")).allowed
    outside = world.decide_session(issued, READ, p.contract.photo("u-7/a.jpg"))
    assert not outside.allowed
    assert "session layer" in outside.reason
    write = world.decide_session(issued, WRITE, p.contract.photo("u-42/a.jpg"))
    assert not write.allowed
    assert "delegation" in write.reason


def test_revoking_a_delegation(world: World) -> None:
    p = partners(world)
    ledger = world.runtime.ledger
    issued = world.assume(p.ravi, p.contract.role_arn)
    world.session(issued)  # remembered as verified
    assert world.decide_session(issued, READ, p.contract.photo()).allowed

    # only B revokes its own delegations
    error = world.refused(NotFound, lambda: ledger.revoke_delegation(p.a, p.delegation))
    assert error.code == "EntityNotExist.Delegation"
    world.refused(NotFound, lambda: ledger.revoke_delegation(p.b, uuid4()))
    world.refused(NotFound, lambda: ledger.revoke_delegation(p.b, p.contract.id))

    start = world.head()
    world.do("revoke_delegation", p.b, p.delegation)
    assert world.names_since(start) == ["DelegationRevoked"]
    arn = delegation_arn(p.b, p.delegation)
    dead(world, issued, f"no live delegation of {p.contract.arn}", f"delegation {arn} was revoked")
    error = world.refused(Conflict, lambda: ledger.revoke_delegation(p.b, p.delegation))
    assert error.code == "Delegation.Revoked"
    # no one reaches the role any more: ravi may not assume it again
    world.refused(
        NotPermitted, lambda: world.assume(p.ravi, p.contract.role_arn, "again"), match="delegation"
    )
    assert status(world, p.contract) is EntrustmentStatus.ACTIVE  # the contract lives on


def test_a_delegation_ends_at_its_own_term(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow(READ, photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    ends_at = datetime.now(UTC) + timedelta(seconds=2)
    delegation_id, _ = delegate(
        world, contract, ravi.arn, document(allow(READ, photos(a))), ends_at=ends_at
    )
    issued = world.assume(ravi, contract.role_arn)
    assert world.decide_session(issued, READ, contract.photo()).allowed
    head = world.head()
    time.sleep(max(0.0, (ends_at - datetime.now(UTC)).total_seconds()) + 0.05)
    dead(world, issued, f"delegation {delegation_arn(b, delegation_id)} ended at")
    assert world.head() == head
    error = world.refused(
        Conflict, lambda: world.runtime.ledger.revoke_delegation(b, delegation_id)
    )
    assert error.code == "Delegation.Ended"


def test_a_delegation_to_a_group_follows_membership(world: World) -> None:
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow(READ, photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    mia = world.user(b, "mia", ASSUME)
    world.do("create_group", b, "ops")
    world.do("add_user_to_group", b, "ops", "ravi")
    delegation_id, _ = delegate(world, contract, group_arn(b, "ops"), document(allow(READ, "*")))

    issued = world.assume(ravi, contract.role_arn)
    answer = world.decide_session(issued, READ, contract.photo())
    assert answer.allowed
    assert answer.chain[:3] == (ravi.arn, delegation_arn(b, delegation_id), contract.arn)
    # mia is not in the group: not delegated
    world.refused(NotPermitted, lambda: world.assume(mia, contract.role_arn), match="delegation")

    # ravi leaves the group: its session is refused at once (even though it was remembered)
    world.session(issued)
    world.do("remove_user_from_group", b, "ops", "ravi")
    dead(world, issued, f"no live delegation of {contract.arn} reaches {ravi.arn}")
    world.refused(NotPermitted, lambda: world.assume(ravi, contract.role_arn, "s-2"))

    # mia joins: now she may
    world.do("add_user_to_group", b, "ops", "mia")
    mine = world.assume(mia, contract.role_arn, "mia-1")
    assert world.decide_session(mine, READ, contract.photo()).allowed
    # the group is deleted: its delegation reaches no one
    world.do("delete_group", b, "ops", detach=True)
    dead(world, mine, "no live delegation")


def test_a_second_delegation_keeps_access_alive_when_one_is_revoked(world: World) -> None:
    """Path semantics: the session is allowed what any live delegation reaching its user
    allows (within the scope); revoking one delegation removes exactly what only it gave."""
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow([READ, WRITE, "oss:ListObjects"], photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    world.do("create_group", b, "ops")
    world.do("add_user_to_group", b, "ops", "ravi")
    personal, _ = delegate(world, contract, ravi.arn, document(allow(READ, photos(a))))
    team, _ = delegate(
        world, contract, group_arn(b, "ops"), document(allow([READ, WRITE], photos(a)))
    )
    issued = world.assume(ravi, contract.role_arn)
    photo = contract.photo()
    assert world.decide_session(issued, READ, photo).allowed
    both = world.decide_session(issued, WRITE, photo)
    assert both.allowed
    vias = {m.via for m in both.decision.matched if m.layer is Layer.DELEGATION}
    assert vias == {delegation_arn(b, team)}
    assert not world.decide_session(issued, "oss:ListObjects", photo).allowed

    world.do("revoke_delegation", b, team)
    read = world.decide_session(issued, READ, photo)
    assert read.allowed
    assert read.chain[1] == delegation_arn(b, personal)
    assert not world.decide_session(issued, WRITE, photo).allowed

    # and the other way round: a fresh team delegation, then the personal one revoked
    team2, _ = delegate(world, contract, group_arn(b, "ops"), document(allow(WRITE, photos(a))))
    assert world.decide_session(issued, WRITE, photo).allowed
    world.do("revoke_delegation", b, personal)
    assert world.decide_session(issued, WRITE, photo).allowed
    assert not world.decide_session(issued, READ, photo).allowed
    assert world.decide_session(issued, WRITE, photo).chain[1] == delegation_arn(b, team2)
    world.do("revoke_delegation", b, team2)
    dead(world, issued, "no live delegation", "was revoked")


def test_a_deny_in_one_delegation_does_not_cut_another_delegations_path(world: World) -> None:
    """docs/design.md §3.2: the union of the live delegations reaching the user. One delegation that
    allows a request is a path; another delegation's Deny belongs to that other path."""
    a, b = world.account("Alpha"), world.account("Beta")
    contract = grant(world, a, b, document(allow([READ, WRITE], photos(a))))
    ravi = world.user(b, "ravi", ASSUME)
    world.do("create_group", b, "interns")
    world.do("add_user_to_group", b, "interns", "ravi")
    delegate(world, contract, ravi.arn, document(allow([READ, WRITE], photos(a))))
    interns_delegation, _ = delegate(
        world,
        contract,
        group_arn(b, "interns"),
        document(allow(READ, photos(a)), deny(WRITE, photos(a))),
    )
    issued = world.assume(ravi, contract.role_arn)
    assert world.decide_session(issued, READ, contract.photo()).allowed
    write = world.decide_session(issued, WRITE, contract.photo())
    assert write.allowed
    assert write.chain[0] == ravi.arn
    assert write.chain[1] != delegation_arn(b, interns_delegation)  # the path that allowed


def test_a_deleted_and_recreated_user_is_not_delegated(world: World) -> None:
    p = partners(world)
    issued = world.assume(p.ravi, p.contract.role_arn)
    world.do("delete_user", p.b, "ravi", detach=True)
    dead(world, issued, "the user no longer exists")
    again = world.user(p.b, "ravi", ASSUME)
    world.refused(
        NotPermitted, lambda: world.assume(again, p.contract.role_arn), match="no live delegation"
    )
    assert (
        world.index.answer_through_roles(
            user_subject(world, again), AccessRequest.make(READ, p.contract.photo())
        )
        is None
    )


# --- AssumeRole of the managed role ------------------------------------------------------------


def test_only_delegated_users_of_b_allowed_sts_assume_role_may_assume(world: World) -> None:
    p = partners(world)
    a, b, contract = p.a, p.b, p.contract
    c = world.account("Gamma")
    arn = contract.role_arn
    # B's other user, with sts:AssumeRole on everything but no delegation
    other = world.user(b, "other", ASSUME)
    world.refused(NotPermitted, lambda: world.assume(other, arn), match="no live delegation")
    # a delegated user without sts:AssumeRole of its own
    quiet = world.user(b, "quiet")
    delegate(world, contract, quiet.arn, document(allow(READ, photos(a))))
    world.refused(NotPermitted, lambda: world.assume(quiet, arn), match="by its own policies")
    # …and with sts:AssumeRole on another role only
    world.do("create_policy", b, "OtherRole", document(allow("sts:AssumeRole", role_arn(a, "x"))))
    world.do("attach_policy", b, "user", "quiet", "Custom", "OtherRole")
    world.refused(NotPermitted, lambda: world.assume(quiet, arn), match="by its own policies")
    # …and once allowed exactly this role, it may
    world.do("create_policy", b, "ThisRole", document(allow("sts:AssumeRole", arn)))
    world.do("attach_policy", b, "user", "quiet", "Custom", "ThisRole")
    world.assume(quiet, arn, "quiet-1")
    # B's own policies may deny it even to a delegated user
    world.do("create_policy", b, "NoPartners", document(deny("sts:AssumeRole", arn)))
    world.do("attach_policy", b, "user", "ravi", "Custom", "NoPartners")
    world.refused(NotPermitted, lambda: world.assume(p.ravi, arn), match="by its own policies")
    world.do("detach_policy", b, "user", "ravi", "Custom", "NoPartners")
    # a user of a third account: as if the role did not exist
    carl = world.user(c, "carl", ASSUME)
    error = world.refused(NotPermitted, lambda: world.assume(carl, arn))
    assert "does not exist or its trust policy does not admit" in error.detail
    # a user of A itself (the granter) is not the trustee
    alice = world.user(a, "alice", ASSUME)
    world.refused(NotPermitted, lambda: world.assume(alice, arn), match="trustee")
    # a session (role chaining) may not assume a managed role, even one of B's own roles
    own = world.role(b, "own", trust(p.ravi.arn), system=(ASSUME,))
    parent = world.session(world.assume(p.ravi, own, "own-1"))
    world.refused(NotPermitted, lambda: world.assume(parent, arn))
    managed_session = world.session(world.assume(p.ravi, arn, "m-1"))
    world.refused(NotPermitted, lambda: world.assume(managed_session, arn, "m-2"))

    issued = world.assume(p.ravi, arn, "ravi-ok")
    assert issued.arn == assumed_role_arn(a, contract.role_name, "ravi-ok")
    assert issued.assumed_role_id.startswith(f"{contract.id}:")


def test_a_managed_roles_sessions_are_bounded_by_its_duration_and_the_contracts_end(
    world: World,
) -> None:
    ends_at = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    p = partners(world, ends_at=ends_at)
    arn = p.contract.role_arn
    issued = world.assume(p.ravi, arn, duration_seconds=3600)
    assert issued.expiration == ends_at
    short = world.assume(p.ravi, arn, "short", duration_seconds=900)
    assert short.expiration <= ends_at
    assert short.expiration < ends_at
    error = world.refused(
        InvalidInput, lambda: world.assume(p.ravi, arn, "long", duration_seconds=7200)
    )
    assert error.code == "InvalidParameter.DurationSeconds"


def test_a_scheduled_entrustment_is_refused_until_it_starts(world: World) -> None:
    starts_at = datetime.now(UTC) + timedelta(seconds=1.5)
    p = partners(world, starts_at=starts_at)
    assert status(world, p.contract) is EntrustmentStatus.SCHEDULED
    world.refused(
        NotPermitted, lambda: world.assume(p.ravi, p.contract.role_arn), match="had not started"
    )
    read = AccessRequest.make(READ, p.contract.photo())
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is None
    head = world.head()
    time.sleep(max(0.0, (starts_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert status(world, p.contract) is EntrustmentStatus.ACTIVE
    assert world.head() == head  # starting records nothing
    issued = world.assume(p.ravi, p.contract.role_arn)
    assert world.decide_session(issued, READ, p.contract.photo()).allowed


# --- the cascade -------------------------------------------------------------------------------


def test_revoking_the_entrustment_kills_every_session_and_delegation_under_it(
    world: World,
) -> None:
    p = partners(world)
    a, b, contract = p.a, p.b, p.contract
    world.do("create_group", b, "ops")
    mia = world.user(b, "mia", ASSUME)
    world.do("add_user_to_group", b, "ops", "mia")
    team, _ = delegate(world, contract, group_arn(b, "ops"), document(allow(READ, photos(a))))
    # another contract between the same accounts is not touched
    other = grant(world, a, b, document(allow(READ, photos(a))), "MSA-OTHER")
    delegate(world, other, p.ravi.arn, document(allow(READ, photos(a))))
    survivor = world.assume(p.ravi, other.role_arn, "other")

    sessions = [
        world.assume(p.ravi, contract.role_arn, "r-1"),
        world.assume(p.ravi, contract.role_arn, "r-2", policy=document(allow(READ, "*"))),
        world.assume(mia, contract.role_arn, "m-1"),
    ]
    for issued in sessions:
        assert world.decide_session(issued, READ, contract.photo()).allowed
    read = AccessRequest.make(READ, contract.photo())
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is not None

    start = world.head()
    revoke(world, contract, "breach of clause 7")
    assert world.names_since(start) == ["EntrustmentRevoked"]
    (revoked,) = world.events_since(start)
    assert revoked.audit["reason"] == "breach of clause 7"
    expected = (
        f"the entrustment {contract.arn} (contract {CONTRACT}) was revoked: breach of clause 7"
    )
    for issued in sessions:
        assert dead(world, issued) == expected
    # no one of B may assume it any more
    for user in (p.ravi, mia):
        world.refused(
            NotPermitted, lambda u=user: world.assume(u, contract.role_arn, "late"), match="revoked"
        )
    # every delegation under it is dead: no path through this contract is left
    index = world.index
    assert set(index.entrustments[contract.id].delegation_ids) == {p.delegation, team}
    through_other = index.answer_through_roles(user_subject(world, p.ravi), read)
    assert through_other is not None
    assert through_other.chain[2] == other.arn
    assert index.answer_through_roles(user_subject(world, mia), read) is None
    facts = world.index.role_facts(a, contract.role_name)
    assert facts is not None
    assert facts.entrustment is not None
    assert facts.entrustment.inactive_reason == expected
    # the managed role is still A's (its name stays claimed by the contract); its commands 409
    world.refused(Conflict, lambda: world.runtime.ledger.delete_role(a, contract.role_name))
    # the other contract lives on
    assert world.decide_session(survivor, READ, contract.photo()).allowed
    # and revoking without a reason names the contract alone
    revoke(world, other)
    assert dead(world, survivor) == (
        f"the entrustment {other.arn} (contract MSA-OTHER) was revoked"
    )


def test_reaching_the_end_refuses_without_an_event_and_the_trail_records_it_once(
    world: World,
) -> None:
    ends_at = datetime.now(UTC) + timedelta(seconds=2)
    p = partners(world, ends_at=ends_at)
    issued = world.assume(p.ravi, p.contract.role_arn)
    assert issued.expiration <= ends_at
    assert world.decide_session(issued, READ, p.contract.photo()).allowed
    world.session(issued)  # remembered as verified: the end must still be noticed
    read = AccessRequest.make(READ, p.contract.photo())
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is not None
    # nothing to record before the end
    assert world.runtime.record_reached_terms() == []
    assert world.runtime.ledger.end_entrustment(p.contract.id) is None

    head = world.head()
    time.sleep(max(0.0, (ends_at - datetime.now(UTC)).total_seconds()) + 0.05)
    assert status(world, p.contract) is EntrustmentStatus.ENDED
    reason = dead(world, issued, f"the entrustment {p.contract.arn} (contract {CONTRACT}) ended")
    assert world.head() == head, "reaching the end must not wait for (or write) an event"
    world.refused(NotPermitted, lambda: world.assume(p.ravi, p.contract.role_arn, "late"))
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is None
    ledger = world.runtime.ledger
    world.refused(Conflict, lambda: ledger.revoke_entrustment(p.a, p.contract.id))
    world.refused(
        Conflict,
        lambda: ledger.grant_delegation(
            p.b,
            delegation_id=uuid4(),
            entrustment_id=p.contract.id,
            grantee=p.ravi.arn,
            scope=document(allow(READ, "*")),
        ),
    )

    # the trail: EntrustmentEnded once, whoever notices first
    positions = world.runtime.record_reached_terms()
    assert len(positions) == 1
    assert world.names_since(head) == ["EntrustmentEnded"]
    (ended,) = world.events_since(head)
    assert ended.audit["actor"] == "mandate:system"
    assert world.runtime.follower.wait_for(positions[0], 5)
    assert world.index.entrustments[p.contract.id].ended
    assert world.runtime.record_reached_terms() == []
    assert ledger.end_entrustment(p.contract.id) is None
    assert world.head() == head + 1
    assert dead(world, issued) == reason
    assert status(world, p.contract) is EntrustmentStatus.ENDED


# --- explanations and "could P do it?" ---------------------------------------------------------


def test_a_decision_names_the_statements_of_every_layer_and_the_chain_of_five(
    world: World,
) -> None:
    p = partners(world)
    a, b, contract = p.a, p.b, p.contract
    issued = world.assume(
        p.ravi, contract.role_arn, "ravi-oncall", policy=document(allow(READ, photos(a)))
    )
    session_arn = assumed_role_arn(a, contract.role_name, "ravi-oncall")
    answer = world.decide_session(issued, READ, contract.photo())
    assert answer.allowed
    assert answer.chain == (
        p.ravi.arn,
        delegation_arn(b, p.delegation),
        contract.arn,
        contract.role_arn,
        session_arn,
    )
    assert answer.billed_account == a
    matched = {(m.layer, m.effect, m.via, m.statement) for m in answer.decision.matched}
    assert matched == {
        (Layer.ENTRUSTMENT, Effect.ALLOW, contract.arn, 0),
        (Layer.DELEGATION, Effect.ALLOW, delegation_arn(b, p.delegation), 0),
        (Layer.SESSION, Effect.ALLOW, session_arn, 0),
    }
    as_json = [m.as_dict() for m in answer.decision.matched]
    assert {m["layer"] for m in as_json} == {"entrustment", "delegation", "session"}
    names = {(m.layer, m.policy_type, m.policy_name) for m in answer.decision.matched}
    assert (Layer.ENTRUSTMENT, "Inline", "EntrustmentScope") in names
    assert (Layer.DELEGATION, "Inline", "DelegationScope") in names

    # a denial explains which layer was missing, and shows the layers that agreed
    write = world.decide_session(issued, WRITE, contract.photo())
    assert write.decision.kind is DecisionKind.IMPLICIT_DENY
    assert write.billed_account is None
    assert "delegation" in write.reason
    assert (Layer.ENTRUSTMENT, Effect.ALLOW) in layers_of(write)
    assert write.chain == answer.chain


def test_could_p_do_it_through_the_managed_role(world: World) -> None:
    p = partners(world)
    a, b, contract = p.a, p.b, p.contract
    subject = user_subject(world, p.ravi)
    read = AccessRequest.make(READ, contract.photo())
    write = AccessRequest.make(WRITE, contract.photo())
    assert not world.decide(p.ravi, READ, contract.photo()).allowed  # not directly

    answer = world.index.answer_through_roles(subject, read)
    assert answer is not None
    assert answer.allowed
    assert answer.chain == (
        p.ravi.arn,
        delegation_arn(b, p.delegation),
        contract.arn,
        contract.role_arn,
    )
    assert answer.billed_account == a
    assert layers_of(answer) == [
        (Layer.DELEGATION, Effect.ALLOW),
        (Layer.ENTRUSTMENT, Effect.ALLOW),
    ]
    assert world.index.answer_through_roles(subject, write) is None  # the delegation bounds it

    # B's other users: no delegation reaches them
    other = world.user(b, "other", ASSUME)
    assert world.index.answer_through_roles(user_subject(world, other), read) is None
    # a delegated user without sts:AssumeRole
    quiet = world.user(b, "quiet")
    delegate(world, contract, quiet.arn, document(allow(READ, photos(a))))
    assert world.index.answer_through_roles(user_subject(world, quiet), read) is None

    # revoking the delegation: None at once
    world.do("revoke_delegation", b, p.delegation)
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is None
    # a new delegation brings it back, named in the chain
    fresh, _ = delegate(world, contract, p.ravi.arn, document(allow([READ, WRITE], photos(a))))
    again = world.index.answer_through_roles(user_subject(world, p.ravi), write)
    assert again is not None
    assert again.chain[1] == delegation_arn(b, fresh)
    # revoking the entrustment: None
    revoke(world, contract)
    assert world.index.answer_through_roles(user_subject(world, p.ravi), read) is None
    assert world.index.answer_through_roles(user_subject(world, p.ravi), write) is None


def test_entrustment_events_concern_both_accounts_and_carry_no_secret(world: World) -> None:
    """What the ledger records for a contract's life, in order, with its audit context."""
    start = world.head()
    p = partners(world)
    world.assume(p.ravi, p.contract.role_arn)
    world.do("revoke_delegation", p.b, p.delegation)
    revoke(world, p.contract, "done")
    names = [n for n in world.names_since(start) if n.startswith(("Entrustment", "Delegation"))]
    assert names == [
        "EntrustmentGranted",
        "DelegationGranted",
        "DelegationRevoked",
        "EntrustmentRevoked",
    ]
    for event in world.events_since(start):
        assert event.audit["actor"], type(event).__name__
