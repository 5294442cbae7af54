"""Resource Directory's invitations: an account joins a directory only by accepting one.

As Resource Management's handshakes (InviteAccountToResourceDirectory, AcceptHandshake,
DeclineHandshake, CancelHandshake: https://www.alibabacloud.com/help/en/resource-management/
api-accepthandshake): the management account invites an account (a ``Pending`` handshake
``h-…``); the invited account accepts it (``Accepted``: it is a member from that event on,
in the root folder) or declines it (``Declined``); the inviter may cancel it while pending
(``Cancelled``). Only a pending handshake changes. Mandate's handshakes do not expire (RM's
lapse after 14 days): a pending one is cancelled or declined by hand.

One aggregate per handshake, its id derived from the ``h-…`` id. The invitation names the
account the management account typed: whether it exists, or is already some directory's, is
checked only when the invited account accepts (its own facts, told only to it), so inviting
reveals nothing about another account.
"""

from __future__ import annotations

import secrets
from typing import Literal
from uuid import UUID, uuid5

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, FieldError, InvalidInput

__all__ = ["Handshake", "HandshakeStatus", "handshake_arn", "handshake_id"]

HandshakeStatus = Literal["Pending", "Accepted", "Declined", "Cancelled"]

_NAMESPACE = UUID("3c1f7a52-8e0b-4d6a-b1a4-7e2d9c5f0a13")


def handshake_id(handshake: str) -> UUID:
    """The aggregate id of handshake ``h-…``."""
    return uuid5(_NAMESPACE, f"handshake/{handshake}")


def handshake_arn(account_id: str, handshake: str) -> str:
    """What a handshake's actions are authorised on, in the acting account (RM's shape
    ``acs:resourcemanager:*:<account>:handshake/<id>``, region left empty as Mandate's)."""
    return f"acs:resourcemanager::{account_id}:handshake/{handshake}"


class Handshake(LedgerAggregate):
    TOPIC = "mandate:Handshake.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Handshake.Event.v1"

    @staticmethod
    def create_id(
        handshake: str, management_account: str, target_account: str, note: str | None
    ) -> UUID:
        return handshake_id(handshake)

    class Invited(LedgerAggregate.Created, Event):
        TOPIC = "mandate:HandshakeInvited.v1"
        handshake: str
        management_account: str
        target_account: str
        note: str | None

    @event(Invited)
    def __init__(
        self, handshake: str, management_account: str, target_account: str, note: str | None
    ) -> None:
        self.handshake = handshake
        self.management_account = management_account
        self.target_account = target_account
        self.note = note
        self.status: HandshakeStatus = "Pending"

    @classmethod
    def invite(cls, management_account: str, target_account: str, note: str | None) -> Handshake:
        if not (isinstance(target_account, str) and target_account.isdigit()):
            raise InvalidInput(
                FieldError("target_entity", "must be an account id (16 digits)"),
                code="InvalidParameter.TargetEntity",
            )
        if target_account == management_account:
            raise InvalidInput(
                FieldError("target_entity", "the management account is not invited"),
                code="InvalidParameter.TargetEntity",
            )
        if note is not None and not 1 <= len(note) <= 1024:
            raise InvalidInput(
                FieldError("note", "must be 1 to 1024 characters"), code="InvalidParameter.Note"
            )
        return cls(f"h-{secrets.token_hex(8)}", management_account, target_account, note)

    def _names(self) -> dict[str, str]:
        return {
            "handshake": self.handshake,
            "management_account": self.management_account,
            "target_account": self.target_account,
        }

    def _pending(self) -> None:
        if self.status != "Pending":
            raise Conflict(
                f"handshake {self.handshake} is {self.status}, not Pending",
                code="InvalidStatus.Handshake",
            )

    def accept(self) -> None:
        self._pending()
        self._accepted(**self._names())

    class Accepted(Event):
        TOPIC = "mandate:HandshakeAccepted.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Accepted)
    def _accepted(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Accepted"

    def decline(self) -> None:
        self._pending()
        self._declined(**self._names())

    class Declined(Event):
        TOPIC = "mandate:HandshakeDeclined.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Declined)
    def _declined(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Declined"

    def cancel(self) -> None:
        self._pending()
        self._cancelled(**self._names())

    class Cancelled(Event):
        TOPIC = "mandate:HandshakeCancelled.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Cancelled)
    def _cancelled(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Cancelled"
