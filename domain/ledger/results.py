"""What a ledger command hands back when it made a secret: the only moment it exists here.

The secret is shown once to the caller; the log keeps only its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["IssuedKey", "IssuedSession", "OpenedAccount"]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly made AccessKey: the only moment its secret exists outside its holder."""

    access_key_id: str
    access_key_secret: str
    position: int


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """Temporary credentials from AssumeRole: the only moment their secret exists here."""

    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: datetime
    arn: str
    assumed_role_id: str
    position: int


@dataclass(frozen=True, slots=True)
class OpenedAccount:
    account_id: str
    root_key: IssuedKey
