"""Resource Directory invitations: InviteAccountToResourceDirectory, Accept/Decline/Cancel.

The management account invites (a ``Pending`` handshake); only the invited account accepts
or declines it, and its acceptance commits, in one transaction, the handshake ``Accepted``,
the account in the directory's root folder (``ResourceDirectory.admit``) and the name claim
that keeps it in one directory. An invitation is taken for any 16-digit account id and says
nothing about it; a handshake is found only by the inviter or the invited account (404
``EntityNotExist.Handshake`` to anyone else, as for an id that does not exist).

A directory has one pending invitation per account: the invitation claim
(``INVITATION_KIND``, in the management account, named by the invited account) points at it
and is released by its answer; a second invitation while it may still be answered is refused
409 ``Duplicate.Handshake`` before anything is written, and takes the claim over once it is
answered or expired. Answering is decided at ``handshake_clock()``: an expired handshake is
refused (409 ``InvalidStatus.Handshake``) like an answered one.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from mandate.domain.common.errors import Conflict, NotFound
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.directory import MEMBERSHIP_NAME, DirectoryCommands, DirectoryNode
from mandate.domain.ledger.results import Written
from mandate.domain.permissions.handshakes import (
    INVITATION_KIND,
    Handshake,
    handshake_clock,
    handshake_id,
)
from mandate.domain.permissions.resource_directory import MEMBERSHIP_KIND

__all__ = ["HandshakeCommands"]


class HandshakeCommands(DirectoryCommands):
    """Invitations to a resource directory, and the acceptance that makes a member."""

    def _handshake(self, handshake: str, account_id: str, *, inviter: bool) -> Handshake:
        """Handshake ``h-…`` if ``account_id`` is its inviter (``inviter``) or else its invited
        account; for anyone else the same 404 as for no such handshake."""
        missing = NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")
        try:
            found: object = self.repository.get(handshake_id(handshake))
        except AggregateNotFoundError:
            raise missing from None
        assert isinstance(found, Handshake)
        if account_id != (found.management_account if inviter else found.target_account):
            raise missing
        return found

    def _answered(self, found: Handshake) -> tuple[NameClaim, ...]:
        """The invitation claim ``found`` held, released (none if another holds it)."""
        claim = self._claim(found.management_account, INVITATION_KIND, found.target_account)
        if claim is None or claim.entity_id != found.id:
            return ()
        claim.release()
        return (claim,)

    @command
    def invite_account(
        self, management_account: str, target_account: str, note: str | None = None
    ) -> DirectoryNode:
        """A ``Pending`` handshake from ``management_account``'s directory to the account."""
        directory = self._directory(management_account)
        handshake = Handshake.invite(directory.management_account, target_account, note)
        claim = self._claim(management_account, INVITATION_KIND, target_account)
        if claim is None:
            claim = self._new_claim(
                management_account, INVITATION_KIND, target_account, handshake.id
            )
        else:
            if claim.entity_id is not None:
                self._not_pending(claim.entity_id, target_account)
                claim.release()  # its handshake expired: the new one takes the claim over
            claim.claim_again(handshake.id)
        return DirectoryNode(handshake.handshake, self._commit(claim, handshake))

    def _not_pending(self, held_id: UUID, target_account: str) -> None:
        """409 ``Duplicate.Handshake`` if the claim's handshake may still be answered."""
        held: object = self.repository.get(held_id)
        assert isinstance(held, Handshake)
        if held.status_now(handshake_clock()) == "Pending":
            raise Conflict(
                f"account {target_account} has a pending invitation {held.handshake} "
                "to this directory",
                code="Duplicate.Handshake",
            )

    @command
    def accept_handshake(self, account_id: str, handshake: str) -> Written:
        """The invited account joins the directory, in its root folder."""
        found = self._handshake(handshake, account_id, inviter=False)
        self._open_account(account_id)
        found.accept(handshake_clock())  # Pending only: checked before the account's own state
        if self._manages(account_id):
            raise Conflict(
                f"account {account_id} is the management account of a resource directory",
                code="InvalidStatus.Account",
            )
        claim = self._claim(account_id, MEMBERSHIP_KIND, MEMBERSHIP_NAME)
        if claim is not None and claim.entity_id is not None:
            raise Conflict(
                f"account {account_id} is a member of a resource directory",
                code="InvalidStatus.Account",
            )
        directory = self._resource_directory(found.management_account)
        directory.admit(account_id)
        claim = self._new_claim(account_id, MEMBERSHIP_KIND, MEMBERSHIP_NAME, directory.id)
        return Written(self._commit(found, claim, *self._answered(found), directory))

    @command
    def decline_handshake(self, account_id: str, handshake: str) -> Written:
        found = self._handshake(handshake, account_id, inviter=False)
        found.decline(handshake_clock())
        return Written(self._commit(found, *self._answered(found)))

    @command
    def cancel_handshake(self, management_account: str, handshake: str) -> Written:
        found = self._handshake(handshake, management_account, inviter=True)
        found.cancel(handshake_clock())
        return Written(self._commit(found, *self._answered(found)))
