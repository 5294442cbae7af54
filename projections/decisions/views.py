"""The read-model records the decision index keeps in memory.

Collections a reader may iterate while the follower applies events are replaced, never
mutated in place (copy-on-write), so a decision running on another thread always sees a
consistent container without taking a lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.permissions.attachments import Attachment
from mandate.domain.policy.document import PolicyDocument
from mandate.domain.sts.session_lineage import DelegationState, EntrustmentState, SessionRecord

__all__ = [
    "AccessKeyView",
    "AccountView",
    "DelegationView",
    "EntrustmentView",
    "GroupView",
    "PolicyVersionView",
    "PolicyView",
    "RoleView",
    "SessionView",
    "UserView",
]


@dataclass(slots=True)
class AccountView:
    account_id: str
    name: str
    opened_at: datetime
    root_access_key_id: str
    is_open: bool = True


@dataclass(slots=True)
class AccessKeyView:
    access_key_id: str
    secret_hash: str
    status: str
    account_id: str
    user_id: UUID | None  # None: the account's root key
    created_at: datetime
    secret_sealed: str | None = None
    """The secret sealed (ciphertext, opened only by the keyring to verify a signature);
    None for a key created before secrets were sealed."""


@dataclass(slots=True)
class UserView:
    id: UUID
    account_id: str
    user_name: str
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    groups: dict[UUID, str] = field(default_factory=dict)
    attachments: dict[tuple[str, str], Attachment] = field(default_factory=dict)
    access_key_ids: tuple[str, ...] = ()
    named_at: int = 0
    """The log position since which it has held ``user_name`` (created or renamed)."""
    display_name_sealed: str | None = None
    """The display name as the events hold it, sealed under the account's personal-data key
    (``display_name`` is then None here); the index's queries answer a copy with it opened."""
    display_name_erased: bool = False
    """In such a copy: the sealed display name no longer opens — its key was erased."""
    tags: dict[str, str] = field(default_factory=dict)
    """Its tags (``acs:ResourceTag/<key>`` when it is the resource); replaced, never mutated."""


@dataclass(slots=True)
class GroupView:
    id: UUID
    account_id: str
    group_name: str
    comments: str | None
    created_at: datetime
    attachments: dict[tuple[str, str], Attachment] = field(default_factory=dict)
    member_ids: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class PolicyVersionView:
    version_id: str
    document: str
    created_at: datetime


@dataclass(slots=True)
class PolicyView:
    id: UUID
    account_id: str
    policy_name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    default_version: str
    versions: dict[str, PolicyVersionView] = field(default_factory=dict)

    def versions_in_order(self) -> list[PolicyVersionView]:
        """The versions by number (``v2`` before ``v10``), as both dialects list them."""
        return sorted(self.versions.values(), key=lambda v: int(v.version_id[1:]))


@dataclass(slots=True)
class RoleView:
    id: UUID
    account_id: str
    role_name: str
    description: str | None
    trust_policy: str
    trust: PolicyDocument
    max_session_duration: int
    created_at: datetime
    updated_at: datetime
    attachments: dict[tuple[str, str], Attachment] = field(default_factory=dict)
    sessions_revoked_before: datetime | None = None
    entrustment_id: UUID | None = None
    """Set for a managed role: the entrustment (same id) that realises it."""
    named_at: int = 0
    """The log position of its creation (roles are never renamed)."""
    trust_position: int = 0
    """The log position of the event that wrote its trust policy (``name_binds``)."""
    tags: dict[str, str] = field(default_factory=dict)
    """As ``UserView.tags``."""


@dataclass(slots=True)
class EntrustmentView:
    id: UUID
    account_id: str
    trustee_account_id: str
    role_name: str
    scope: str
    scope_policies: list[str] | None
    contract_ref: str
    starts_at: datetime | None
    ends_at: datetime | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    revoked: str | None = None
    ended: bool = False
    delegation_ids: tuple[UUID, ...] = ()
    version: int = 1
    """The aggregate's version this view reflects (AssumeRole fences its save on it)."""

    def state(self) -> EntrustmentState:
        return EntrustmentState(
            self.id,
            self.account_id,
            self.trustee_account_id,
            self.contract_ref,
            self.scope,
            self.starts_at,
            self.ends_at,
            self.revoked,
            self.ended,
        )


@dataclass(slots=True)
class DelegationView:
    id: UUID
    account_id: str
    entrustment_id: UUID
    entrustment_account_id: str
    grantee_arn: str
    grantee_kind: PrincipalKind
    grantee_id: UUID
    scope: str
    ends_at: datetime | None
    created_at: datetime
    revoked: bool = False

    def state(self) -> DelegationState:
        return DelegationState(self.id, self.account_id, self.grantee_arn, self.scope, self.ends_at)


@dataclass(slots=True)
class SessionView:
    record: SessionRecord
    secret_hash: str
    revoked: str | None = None
    """Why the session was ended by a revocation of its own (``SessionRevoked``), if it was."""
    secret_sealed: str | None = None
    """As ``AccessKeyView.secret_sealed``: None for a session issued before sealing."""
