"""Resource Directory's invitations: an account joins a directory only by accepting one.

As Resource Management's handshakes (InviteAccountToResourceDirectory, AcceptHandshake,
DeclineHandshake, CancelHandshake: https://www.alibabacloud.com/help/en/resource-management/
api-accepthandshake): the management account invites an account (a ``Pending`` handshake
``h-…``); the invited account accepts it (``Accepted``: it is a member from that event on,
in the root folder) or declines it (``Declined``); the inviter may cancel it while pending
(``Cancelled``). Only a pending handshake changes. As RM's, one lapses 14 days after it was
made (``Expired``): a rule read against the ledger clock (``handshake_clock``) when it is
answered or shown (``current_status``), no event and no background job, so as of an instant
it is the same rule read then (``status_at``). A directory has at most one pending
invitation per account: the name claim ``INVITATION_KIND`` (in the management account, named
by the invited account's id) points at it while it may still be answered, and is taken over
by a new invitation once that one is answered or expired.

One aggregate per handshake, its id derived from the ``h-…`` id. The invitation names the
account the management account typed: whether it exists, or is already some directory's, is
checked only when the invited account accepts (its own facts, told only to it), so inviting
reveals nothing about another account.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, cast
from uuid import UUID, uuid5

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, FieldError, InvalidInput

__all__ = [
    "HANDSHAKE_LIFETIME",
    "INVITATION_KIND",
    "Handshake",
    "HandshakeStatus",
    "current_status",
    "expires_at",
    "handshake_arn",
    "handshake_clock",
    "handshake_id",
    "invitation_arn",
    "status_at",
]

HandshakeStatus = Literal["Pending", "Accepted", "Declined", "Cancelled", "Expired"]

HANDSHAKE_LIFETIME: Final = timedelta(days=14)
"""How long an invitation may be answered (RM's ``ExpireTime`` is ``CreateTime`` + 14 days)."""

INVITATION_KIND: Final = "resource-directory-invitation"
"""The kind of the name claim, in the management account and named by the invited account's
id, that points at the one invitation to it that may be pending."""

_NAMESPACE = UUID("3c1f7a52-8e0b-4d6a-b1a4-7e2d9c5f0a13")


def handshake_id(handshake: str) -> UUID:
    """The aggregate id of handshake ``h-…``."""
    return uuid5(_NAMESPACE, f"handshake/{handshake}")


def handshake_arn(account_id: str, handshake: str) -> str:
    """What a handshake's actions are authorised on, in the acting account (RM's shape
    ``acs:resourcemanager:*:<account>:handshake/<id>``, region left empty as Mandate's)."""
    return f"acs:resourcemanager::{account_id}:handshake/{handshake}"


def invitation_arn(management_account: str, target_account: str) -> str:
    """What the audit trail calls an invitation claim (it names no RM entity)."""
    return f"acs:resourcemanager::{management_account}:invitation/{target_account}"


def handshake_clock() -> datetime:
    """The instant handshakes are answered and shown at: the ledger's clock (one place, so a
    test moves it for the commands and the reads together)."""
    return datetime.now(UTC)


def expires_at(invited_at: datetime) -> datetime:
    """When an invitation made at ``invited_at`` (its event's time) lapses."""
    return invited_at + HANDSHAKE_LIFETIME


def current_status(recorded: str, invited_at: datetime, now: datetime) -> HandshakeStatus:
    """The status now of a handshake whose recorded status is ``recorded``: an answer
    (accepted, declined, cancelled) is final whatever the clock says; unanswered, it is
    ``Expired`` from ``expires_at`` on, else ``Pending``."""
    if recorded != "Pending":
        assert recorded in ("Accepted", "Declined", "Cancelled"), recorded
        return cast(HandshakeStatus, recorded)
    return "Expired" if now >= expires_at(invited_at) else "Pending"


def status_at(
    recorded: str, invited_at: datetime, answered_at: datetime, at: datetime
) -> HandshakeStatus:
    """The status as of ``at`` (the same rule read at an earlier instant): an answer recorded
    at ``answered_at`` counts from that instant on; before it, the handshake was unanswered."""
    return current_status(recorded if answered_at <= at else "Pending", invited_at, at)


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

    def status_now(self, now: datetime) -> HandshakeStatus:
        """Its status at ``now`` (``Expired`` once unanswered past ``expires_at``)."""
        return current_status(self.status, self.created_on, now)

    def _pending(self, now: datetime) -> None:
        """Only a pending handshake is answered: not an answered one, nor an expired one."""
        status = self.status_now(now)
        if status != "Pending":
            raise Conflict(
                f"handshake {self.handshake} is {status}, not Pending",
                code="InvalidStatus.Handshake",
            )

    def accept(self, now: datetime) -> None:
        self._pending(now)
        self._accepted(**self._names())

    class Accepted(Event):
        TOPIC = "mandate:HandshakeAccepted.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Accepted)
    def _accepted(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Accepted"

    def decline(self, now: datetime) -> None:
        self._pending(now)
        self._declined(**self._names())

    class Declined(Event):
        TOPIC = "mandate:HandshakeDeclined.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Declined)
    def _declined(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Declined"

    def cancel(self, now: datetime) -> None:
        self._pending(now)
        self._cancelled(**self._names())

    class Cancelled(Event):
        TOPIC = "mandate:HandshakeCancelled.v1"
        handshake: str
        management_account: str
        target_account: str

    @event(Cancelled)
    def _cancelled(self, handshake: str, management_account: str, target_account: str) -> None:
        self.status = "Cancelled"
