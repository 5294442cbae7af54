"""Whether a session is alive at an instant, and the subject it acts as — one rule for all.

A session is alive at T when every link of its lineage is: the session itself (issued, not
revoked, T before its expiration), its account open, its role still the role it was issued
for (same id: a role re-created under the name is another role) with no ``RoleSessionsRevoked``
horizon past the session's issue instant, and, up the lineage, its parent session alive at T
or — for a first-generation session — its source user still existing. Nothing is rewritten
when a link dies; each reader asks its own store for the facts of each link at T through
``LineageFacts`` (the live index: now; the temporal index: as of T), and this module decides
the same way for both, with the same reasons and the same layers and chain:
``[source, role, session]``, then ``…, role₂, session₂`` for each chained generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from mandate.domain.common.arns import assumed_role_arn, delegation_arn, entrustment_arn, role_arn
from mandate.domain.common.ledger_time import format_instant
from mandate.domain.contracts.entrustments import EntrustmentStatus, entrustment_status
from mandate.domain.permissions.attachments import Attachment
from mandate.domain.policy.decisions import Path, Subject, SubjectKind
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import Layer, PolicySet, PolicySource, compile_policy

__all__ = [
    "DelegationState",
    "EntrustmentState",
    "LineageFacts",
    "RoleState",
    "SessionInvalid",
    "SessionRecord",
    "contract_revoked",
    "delegation_layer",
    "resolve_session",
    "scope_layer",
    "session_policy_layer",
]

_MAX_LINEAGE = 16


class SessionInvalid(Exception):
    """The session cannot act (→ 401), and the reason, naming the dead link."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What ``SessionIssued`` recorded, minus the secret's hash."""

    access_key_id: str
    account_id: str
    role_id: UUID
    role_name: str
    role_session_name: str
    source_arn: str
    source_account_id: str
    source_user_id: UUID | None
    parent_access_key_id: str | None
    session_policy: str | None
    issued_at: datetime
    expiration: datetime

    @classmethod
    def from_event(cls, e: Any) -> SessionRecord:
        return cls(
            e.access_key_id,
            e.account_id,
            e.role_id,
            e.role_name,
            e.role_session_name,
            e.source_arn,
            e.source_account_id,
            e.source_user_id,
            e.parent_access_key_id,
            e.session_policy,
            e.issued_at,
            e.expiration,
        )

    @property
    def arn(self) -> str:
        return assumed_role_arn(self.account_id, self.role_name, self.role_session_name)

    @property
    def role_arn(self) -> str:
        return role_arn(self.account_id, self.role_name)


@dataclass(frozen=True, slots=True)
class EntrustmentState:
    """The contract behind a managed role, as sessions depend on it at one instant."""

    entrustment_id: UUID
    account_id: str
    trustee_account_id: str
    contract_ref: str
    scope: str
    starts_at: datetime | None
    ends_at: datetime | None
    revoked: str | None
    """Why it was revoked (``EntrustmentRevoked``, with its reason), or None."""
    ended: bool

    @property
    def arn(self) -> str:
        return entrustment_arn(self.account_id, self.entrustment_id)

    def status(self, at: datetime) -> EntrustmentStatus:
        """Its status at ``at`` (as the ``Entrustment`` aggregate's ``status``)."""
        return entrustment_status(
            revoked=self.revoked is not None,
            ended=self.ended,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            at=at,
        )

    def dead_reason(self, at: datetime) -> str | None:
        status = self.status(at)
        if status is EntrustmentStatus.REVOKED:
            return self.revoked
        if status is EntrustmentStatus.ENDED:
            when = format_instant(self.ends_at) if self.ends_at else "its end"
            return f"the entrustment {self.arn} (contract {self.contract_ref}) ended at {when}"
        if status is EntrustmentStatus.SCHEDULED:
            return f"the entrustment {self.arn} (contract {self.contract_ref}) had not started"
        return None


@dataclass(frozen=True, slots=True)
class DelegationState:
    """A live delegation of the trustee, as a session's delegation layer uses it."""

    delegation_id: UUID
    account_id: str
    grantee_arn: str
    scope: str
    ends_at: datetime | None

    @property
    def arn(self) -> str:
        return delegation_arn(self.account_id, self.delegation_id)


@dataclass(frozen=True, slots=True)
class RoleState:
    """A role as a session depends on it at one instant; a managed role has its contract."""

    role_id: UUID
    account_id: str
    role_name: str
    sessions_revoked_before: datetime | None
    attachments: tuple[Attachment, ...]
    entrustment: EntrustmentState | None = None

    @property
    def arn(self) -> str:
        return role_arn(self.account_id, self.role_name)


class LineageFacts(Protocol):
    """One store's facts about the links of a lineage, at the instant being decided."""

    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        """The session's record, and why it was ended by a revocation of its own (or None)."""
        ...

    def role(self, role_id: UUID) -> RoleState | None: ...

    def user_exists(self, user_id: UUID) -> bool: ...

    def account_open(self, account_id: str) -> bool: ...

    def role_layer(self, role: RoleState) -> PolicySet:
        """A role's policies — for a managed role, its entrustment's scope (``entrustment``)."""
        ...

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        """The live delegations under ``entrustment`` reaching the user (directly or through a
        group it is in), oldest first; when there are none, why (naming the dead link)."""
        ...

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        """Their scopes, as one ``delegation`` layer (a union: any of them may allow)."""
        ...

    def session_layer(self, record: SessionRecord) -> PolicySet | None: ...


def session_policy_layer(record: SessionRecord) -> PolicySet | None:
    """The session policy as a layer of its own (``None`` when the session has none)."""
    if record.session_policy is None:
        return None
    source = PolicySource(Layer.SESSION, "Inline", "SessionPolicy", None, record.arn)
    compiled = compile_policy(parse_policy_document(record.session_policy), source)
    return PolicySet.of([compiled], Layer.SESSION)


def contract_revoked(arn: str, contract_ref: str, reason: str | None) -> str:
    """Why a session through a revoked contract is refused — the same words live and as-of."""
    return f"the entrustment {arn} (contract {contract_ref}) was revoked" + (
        f": {reason}" if reason else ""
    )


def scope_layer(entrustment: EntrustmentState, role_arn_text: str) -> PolicySet:
    """A managed role's layer: the entrustment's scope, as signed (``entrustment``)."""
    source = PolicySource(Layer.ENTRUSTMENT, "Inline", "EntrustmentScope", None, entrustment.arn)
    compiled = compile_policy(parse_policy_document(entrustment.scope), source)
    return PolicySet.of([compiled], Layer.ENTRUSTMENT)


def delegation_layer(delegations: tuple[DelegationState, ...]) -> PolicySet:
    """The union of the delegations' scopes, each statement ``via`` its delegation."""
    compiled = [
        compile_policy(
            parse_policy_document(d.scope),
            PolicySource(Layer.DELEGATION, "Inline", "DelegationScope", None, d.arn),
        )
        for d in delegations
    ]
    return PolicySet.of(compiled, Layer.DELEGATION)


def resolve_session(access_key_id: str, at: datetime, facts: LineageFacts) -> Subject:
    """The subject a session acts as at ``at``, or ``SessionInvalid`` naming the dead link."""
    return _resolve(access_key_id, at, facts, 0)


def _resolve(access_key_id: str, at: datetime, facts: LineageFacts, depth: int) -> Subject:
    if depth > _MAX_LINEAGE:
        raise SessionInvalid("the session's lineage is too long")
    record, revoked = facts.session(access_key_id)
    if record is None:
        raise SessionInvalid(revoked or f"the session {access_key_id} does not exist")
    if revoked is not None:
        raise SessionInvalid(revoked)
    if at >= record.expiration:
        # a session through a contract expires with it: name the contract when it ended
        role = facts.role(record.role_id)
        terms = role.entrustment if role is not None else None
        dead = terms.dead_reason(at) if terms is not None else None
        raise SessionInvalid(dead or f"the session expired at {format_instant(record.expiration)}")
    if not facts.account_open(record.account_id):
        raise SessionInvalid(f"the role's account {record.account_id} is closed")
    role = facts.role(record.role_id)
    if role is None:
        raise SessionInvalid(f"the session's role {record.role_arn} was deleted")
    horizon = role.sessions_revoked_before
    if horizon is not None and record.issued_at < horizon:
        raise SessionInvalid(
            f"the sessions of role {role.arn} issued before {format_instant(horizon)} were revoked"
        )
    terms = role.entrustment
    # one variant of this generation's own layers per live delegation reaching the source
    # user (the union of docs/design.md §3.2: any of them may allow), one variant otherwise
    variants: list[tuple[tuple[PolicySet, ...], tuple[str, ...]]] = [((), ())]
    if terms is not None:
        dead = terms.dead_reason(at)
        if dead is not None:
            raise SessionInvalid(dead)
        if record.source_user_id is None:
            raise SessionInvalid(f"no delegated user is at the source of {record.arn}")
        delegations, why = facts.delegations(terms, record.source_user_id, at)
        if not delegations:
            raise SessionInvalid(
                f"no live delegation of {terms.arn} reaches {record.source_arn}: {why}"
            )
        variants = [((facts.delegation_layer((d,)),), (d.arn, terms.arn)) for d in delegations]
    if record.parent_access_key_id is not None:
        try:
            parent = _resolve(record.parent_access_key_id, at, facts, depth + 1)
        except SessionInvalid as dead:
            raise SessionInvalid(
                f"its parent session {record.parent_access_key_id} is no longer valid: {dead}"
            ) from None
        inherited = parent.paths or (Path(parent.layers, parent.chain),)
    else:
        if not facts.account_open(record.source_account_id):
            raise SessionInvalid(f"the source account {record.source_account_id} is closed")
        if record.source_user_id is not None and not facts.user_exists(record.source_user_id):
            raise SessionInvalid(f"the session's source user {record.source_arn} was deleted")
        inherited = (Path((), (record.source_arn,)),)
    role_layer = facts.role_layer(role)
    session_layer = facts.session_layer(record)
    tail = (session_layer,) if session_layer is not None else ()
    paths = tuple(
        Path(
            (*path.layers, role_layer, *contract, *tail),
            (*path.chain, *contract_chain, role.arn, record.arn),
        )
        for path in inherited
        for contract, contract_chain in variants
    )
    return Subject(
        record.account_id,
        record.arn,
        SubjectKind.SESSION,
        layers=paths[0].layers,
        chain=paths[0].chain,
        paths=paths if len(paths) > 1 else (),
    )
