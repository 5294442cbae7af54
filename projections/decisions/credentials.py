"""What authenticating yields: a verified ``Credential``, or ``AuthenticationFailed`` (→ 401).

Kept apart from ``authentication`` (which checks keys and session tokens) because the index's
state caches verified session credentials and the API's routers only need these two names.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from mandate.domain.policy.decisions import Subject, SubjectKind
from mandate.domain.sts.session_lineage import SessionRecord

__all__ = ["KEY_REFUSED", "AuthenticationFailed", "Credential", "SecretNotSealed"]

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


class AuthenticationFailed(Exception):
    """The credentials are unknown, wrong, inactive, or their owner is gone (→ 401)."""


class SecretNotSealed(Exception):
    """A live key or session whose secret cannot verify a request signature: issued before
    secrets were sealed, or sealed under keys this process cannot open. The message says
    which in words (never a secret or a ciphertext); Basic still works for such a key."""
