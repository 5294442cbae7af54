"""Resource Directory invitations: InviteAccountToResourceDirectory, Accept/Decline/Cancel.

The management account invites (a ``Pending`` handshake); only the invited account accepts
or declines it, and its acceptance commits, in one transaction, the handshake ``Accepted``,
the account in the directory's root folder (``ResourceDirectory.admit``) and the name claim
that keeps it in one directory. An invitation is taken for any 16-digit account id and says
nothing about it; a handshake is found only by the inviter or the invited account (404
``EntityNotExist.Handshake`` to anyone else, as for an id that does not exist).
"""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError

from mandate.domain.common.errors import Conflict, NotFound
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.directory import MEMBERSHIP_NAME, DirectoryCommands, DirectoryNode
from mandate.domain.ledger.results import Written
from mandate.domain.permissions.handshakes import Handshake, handshake_id
from mandate.domain.permissions.resource_directory import MEMBERSHIP_KIND

__all__ = ["HandshakeCommands"]


class HandshakeCommands(DirectoryCommands):
    """Invitations to a resource directory, and the acceptance that makes a member."""

    def _handshake(self, handshake: str, account_id: str) -> Handshake:
        """Handshake ``h-…`` if ``account_id`` is its inviter or its invited account."""
        missing = NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")
        try:
            found: object = self.repository.get(handshake_id(handshake))
        except AggregateNotFoundError:
            raise missing from None
        assert isinstance(found, Handshake)
        if account_id not in (found.management_account, found.target_account):
            raise missing
        return found

    @command
    def invite_account(
        self, management_account: str, target_account: str, note: str | None = None
    ) -> DirectoryNode:
        """A ``Pending`` handshake from ``management_account``'s directory to the account."""
        directory = self._directory(management_account)
        handshake = Handshake.invite(directory.management_account, target_account, note)
        return DirectoryNode(handshake.handshake, self._commit(handshake))

    @command
    def accept_handshake(self, account_id: str, handshake: str) -> Written:
        """The invited account joins the directory, in its root folder."""
        found = self._handshake(handshake, account_id)
        if found.target_account != account_id:
            raise NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")
        self._open_account(account_id)
        found.accept()  # Pending only: checked before the account's own state
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
        return Written(self._commit(found, claim, directory))

    @command
    def decline_handshake(self, account_id: str, handshake: str) -> Written:
        found = self._handshake(handshake, account_id)
        if found.target_account != account_id:
            raise NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")
        found.decline()
        return Written(self._commit(found))

    @command
    def cancel_handshake(self, management_account: str, handshake: str) -> Written:
        found = self._handshake(handshake, management_account)
        if found.management_account != management_account:
            raise NotFound(f"handshake {handshake} does not exist", code="EntityNotExist.Handshake")
        found.cancel()
        return Written(self._commit(found))
