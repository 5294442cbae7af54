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

from domain.arns import assumed_role_arn, role_arn
from domain.attachments import Attachment
from domain.decisions import Subject, SubjectKind
from domain.evaluation import Layer, PolicySet, PolicySource, compile_policy
from domain.policy import parse_policy_document
from projections.ledger_time import format_instant

__all__ = [
    "LineageFacts",
    "RoleState",
    "SessionInvalid",
    "SessionRecord",
    "resolve_session",
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
class RoleState:
    """A role as a session depends on it at one instant."""

    role_id: UUID
    account_id: str
    role_name: str
    sessions_revoked_before: datetime | None
    attachments: tuple[Attachment, ...]

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

    def role_layer(self, role: RoleState) -> PolicySet: ...

    def session_layer(self, record: SessionRecord) -> PolicySet | None: ...


def session_policy_layer(record: SessionRecord) -> PolicySet | None:
    """The session policy as a layer of its own (``None`` when the session has none)."""
    if record.session_policy is None:
        return None
    source = PolicySource(Layer.SESSION, "Inline", "SessionPolicy", None, record.arn)
    compiled = compile_policy(parse_policy_document(record.session_policy), source)
    return PolicySet.of([compiled], Layer.SESSION)


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
        raise SessionInvalid(f"the session expired at {format_instant(record.expiration)}")
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
    if record.parent_access_key_id is not None:
        try:
            parent = _resolve(record.parent_access_key_id, at, facts, depth + 1)
        except SessionInvalid as dead:
            raise SessionInvalid(
                f"its parent session {record.parent_access_key_id} is no longer valid: {dead}"
            ) from None
        layers, chain = parent.layers, parent.chain
    else:
        if not facts.account_open(record.source_account_id):
            raise SessionInvalid(f"the source account {record.source_account_id} is closed")
        if record.source_user_id is not None and not facts.user_exists(record.source_user_id):
            raise SessionInvalid(f"the session's source user {record.source_arn} was deleted")
        layers, chain = (), (record.source_arn,)
    own = [facts.role_layer(role)]
    session_layer = facts.session_layer(record)
    if session_layer is not None:
        own.append(session_layer)
    return Subject(
        record.account_id,
        record.arn,
        SubjectKind.SESSION,
        layers=(*layers, *own),
        chain=(*chain, role.arn, record.arn),
    )
