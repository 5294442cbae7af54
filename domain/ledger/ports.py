"""What the write side asks of the read side, as a port the domain owns.

Cross-aggregate preconditions (a group's members live on the user aggregates; a policy's
attachments on its principals) are looked up through this port, implemented by the
decision index. A race between, say, AttachPolicy and DeletePolicy can therefore leave a
reference to a dead entity; every projection treats such a reference as dead, so nothing
of a deleted entity ever takes effect again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind

if TYPE_CHECKING:
    from mandate.domain.sts.assume_role import RoleFacts

__all__ = ["PersonalDataSealer", "PrincipalRef", "ReadPort", "SecretSealer"]

PrincipalRef = tuple[PrincipalKind, UUID]  # (user, group or role, its aggregate id)


class ReadPort(Protocol):
    def group_member_ids(self, group_id: UUID) -> list[UUID]: ...

    def policy_holders(self, policy_id: UUID) -> list[PrincipalRef]: ...
    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None: ...
    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        """The default version's document of a live custom policy of the account."""
        ...


class SecretSealer(Protocol):
    """Seals an issued secret for the log (``domain.identity.keyring.Keyring``).

    The sealed value is ciphertext bound to ``bound_to`` (the AccessKeyId): it opens only
    under the keyring's data keys and only for that id, so an event can hold it for ever
    while the key-encryption key rotates. The ledger never unseals.
    """

    def seal(self, secret: str, *, bound_to: str) -> str: ...


@runtime_checkable
class PersonalDataSealer(Protocol):
    """Seals an account's personal data (a user's display name) for the log
    (``domain.identity.keyring.Keyring``), under a data key of that account alone, kept
    outside the log: destroying it (``mandate account erase-personal-data``) makes every
    value sealed under it unreadable while the events themselves stay as they are."""

    def seal_personal(self, account_id: str, value: str, *, bound_to: str) -> str: ...
