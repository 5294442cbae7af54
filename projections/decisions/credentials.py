"""What authenticating yields: a verified ``Credential``, or ``AuthenticationFailed`` (→ 401).

Kept apart from ``authentication`` (which checks keys and session tokens) because the index's
state caches verified session credentials and the API's routers only need these two names.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, auto
from uuid import UUID

from mandate.domain.policy.decisions import Subject, SubjectKind
from mandate.domain.sts.session_lineage import SessionRecord

__all__ = ["KEY_REFUSED", "AuthenticationFailed", "Credential", "Refusal", "SecretNotSealed"]

KEY_REFUSED = "the AccessKey id is unknown or its secret does not match"


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a verified AccessKey belongs to."""

    account_id: str
    arn: str
    kind: SubjectKind
    access_key_id: str
    user_id: UUID | None
    subject: Subject | None = field(default=None, compare=False)
    """A session's subject, resolved when it authenticated (its layers and chain)."""
    generation: Hashable = field(default=None, compare=False)
    """A session's memo generation: its lineage's role generations."""
    session: SessionRecord | None = field(default=None, compare=False)
    valid_until: datetime = field(default=datetime.max.replace(tzinfo=UTC), compare=False)
    """When a time bound of the session's lineage passes (expiry, a contract's or a
    delegation's end): a remembered credential is judged afresh from then on."""


class Refusal(Enum):
    """Why authentication failed, as a kind: the API picks its codes (RAM's
    ``InvalidAccessKeyId.*``, ``InvalidSecurityToken.*``) from this, never from the words."""

    KEY_REFUSED = auto()
    """An unknown id, or a secret that does not match (one answer, so nothing leaks)."""
    KEY_DEAD = auto()
    """A deleted or rotated AccessKey, to whoever proves its secret."""
    KEY_INACTIVE = auto()
    ACCOUNT_CLOSED = auto()
    USER_DELETED = auto()
    TOKEN_REQUIRED = auto()
    """STS credentials presented without their security token."""
    TOKEN_UNVERIFIABLE = auto()
    """This process holds no token signer."""
    TOKEN_MALFORMED = auto()
    """Malformed, signed with an unknown key, or its signature does not match."""
    TOKEN_MISMATCH = auto()
    """The security token was issued for another AccessKey."""
    SECRET_MISMATCH = auto()
    """A session's secret does not match."""
    SESSION_UNKNOWN = auto()
    """No session has the id (never issued, or forgotten long after it expired)."""
    SESSION_EXPIRED = auto()
    """The session's own expiration has passed."""
    SESSION_INVALID = auto()
    """Revoked, or a link of its lineage is gone (role deleted, account closed…)."""


class AuthenticationFailed(Exception):
    """The credentials are unknown, wrong, inactive, or their owner is gone (→ 401).

    The message says why in words; ``reason`` says it as a ``Refusal``, for codes."""

    def __init__(self, message: str, *, reason: Refusal) -> None:
        super().__init__(message)
        self.reason = reason


class SecretNotSealed(Exception):
    """A live key or session whose secret cannot verify a request signature: issued before
    secrets were sealed, or sealed under keys this process cannot open. The message says
    which in words (never a secret or a ciphertext); Basic still works for such a key."""
