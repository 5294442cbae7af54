"""What a ledger command hands back: a frozen result that carries its ledger ``position``.

Every command answers one of these, never a bare ``int`` or a tuple, so a caller reads what
it needs by name (``.position``, ``.version_id``, ``.entrustment_id``) and the API's write
path (``api.runtime.Runtime.write``) takes any ``Positioned`` result and waits for its
position without knowing which command ran. ``Written`` is the answer of a command that
made nothing new a caller needs; the others carry what the command made.

``IssuedKey``, ``IssuedSession`` and ``OpenedAccount`` hold a secret: this is the only
moment it exists here. It is shown once to the caller; the log keeps only its hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from mandate.domain.contracts.entrustments import ScopeWarning

__all__ = [
    "Created",
    "GrantedDelegation",
    "GrantedEntrustment",
    "IssuedKey",
    "IssuedSession",
    "OpenedAccount",
    "PolicyVersionCreated",
    "Positioned",
    "Written",
]


class Positioned(Protocol):
    """A command's result: the ledger position of its last event (the head if it wrote none)."""

    @property
    def position(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Written:
    """A command that changed or removed something: only where the log now stands."""

    position: int


@dataclass(frozen=True, slots=True)
class Created:
    """A new user, group, custom policy or role: its aggregate id (its name claim is the
    caller's own name for it)."""

    entity_id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class PolicyVersionCreated:
    """A custom policy's new version: its id (``v2``, ``v3``, …)."""

    version_id: str
    position: int


@dataclass(frozen=True, slots=True)
class GrantedEntrustment:
    """A signed entrustment and the name of the managed role it claimed in the truster's roles."""

    entrustment_id: UUID
    role_name: str
    position: int


@dataclass(frozen=True, slots=True)
class GrantedDelegation:
    """A delegation, and what of its scope the entrustment does not grant (``scope_warnings``)."""

    delegation_id: UUID
    warnings: tuple[ScopeWarning, ...]
    position: int


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
    """A new account and its root AccessKey; its position is the key's (one transaction)."""

    account_id: str
    root_key: IssuedKey

    @property
    def position(self) -> int:
        return self.root_key.position
