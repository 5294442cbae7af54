"""Resource Directory commands: a management account's folders, members and control policies.

Every command names the management account first; its directory is the aggregate derived
from it (``directory_id``). A member account is kept in one directory by a name claim of
kind ``resource-directory`` on the member (``_new_claim``: a second directory's claim
conflicts), taken when the account accepts an invitation (``handshakes``). Documents go
through ``parse_policy_document`` like any policy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from mandate.domain.common.errors import Conflict, NotFound
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Written
from mandate.domain.permissions.resource_directory import (
    MEMBERSHIP_KIND,
    ResourceDirectory,
    directory_id,
)

__all__ = ["MEMBERSHIP_NAME", "DirectoryCommands", "DirectoryNode"]

MEMBERSHIP_NAME = "membership"


@dataclass(frozen=True, slots=True)
class DirectoryNode:
    """A new root folder or folder: its id (``r-…``, ``fd-…``) and the ledger position."""

    node_id: str
    position: int


class DirectoryCommands(LedgerCore):
    """Resource Directory: enable, folders, members, control policies and attachments."""

    def _resource_directory(self, management_account: str) -> ResourceDirectory:
        """The directory of ``management_account`` (404 if it has not enabled one)."""
        try:
            found: object = self.repository.get(directory_id(management_account))
        except AggregateNotFoundError:
            raise NotFound(
                f"account {management_account} has no resource directory",
                code="EntityNotExist.ResourceDirectory",
            ) from None
        assert isinstance(found, ResourceDirectory)
        return found

    def _directory(self, management_account: str) -> ResourceDirectory:
        self._open_account(management_account)
        return self._resource_directory(management_account)

    @command
    def enable_resource_directory(self, management_account: str) -> DirectoryNode:
        """Make ``management_account`` a management account: a directory with its root folder."""
        self._open_account(management_account)
        membership = self._claim(management_account, MEMBERSHIP_KIND, MEMBERSHIP_NAME)
        if membership is not None and membership.entity_id is not None:
            raise Conflict(
                f"account {management_account} is a member of a resource directory",
                code="InvalidStatus.ResourceDirectory",
            )
        try:
            self._resource_directory(management_account)
        except NotFound:
            directory = ResourceDirectory.enable(management_account)
            return DirectoryNode(directory.root_folder_id, self._commit(directory))
        raise Conflict(
            f"account {management_account} already has a resource directory",
            code="ResourceDirectoryAlreadyEnabled",
        )

    @command
    def create_folder(self, management_account: str, parent_id: str, name: str) -> DirectoryNode:
        directory = self._directory(management_account)
        folder_id = directory.create_folder(parent_id, name)
        return DirectoryNode(folder_id, self._commit(directory))

    @command
    def rename_folder(self, management_account: str, folder_id: str, name: str) -> Written:
        """UpdateFolder: a new name, unique in the directory (not the root folder's)."""
        directory = self._directory(management_account)
        directory.rename_folder(folder_id, name)
        return Written(self._commit(directory))

    @command
    def delete_folder(self, management_account: str, folder_id: str) -> Written:
        """DeleteFolder: refused while a folder or a member is in it."""
        directory = self._directory(management_account)
        directory.delete_folder(folder_id)
        return Written(self._commit(directory))

    @command
    def move_account(self, management_account: str, account_id: str, folder_id: str) -> Written:
        """Move a member to ``folder_id``. An account joins only by accepting an invitation
        (``HandshakeCommands``); any other account is refused 404 ``EntityNotExist.Account``
        alike, whether it exists, is another directory's or the management account."""
        directory = self._directory(management_account)
        directory.move_account(account_id, folder_id)
        return Written(self._commit(directory))

    @command
    def remove_cloud_account(self, management_account: str, account_id: str) -> Written:
        """RemoveCloudAccount: a member leaves the directory, with its attachments, and its
        membership claim is released (it may accept another invitation); 404
        ``EntityNotExist.Account`` for any other account alike."""
        directory = self._directory(management_account)
        directory.remove_account(account_id)
        claim = self._claim(account_id, MEMBERSHIP_KIND, MEMBERSHIP_NAME)
        if claim is None or claim.entity_id != directory.id:
            return Written(self._commit(directory))
        claim.release()
        return Written(self._commit(claim, directory))

    def _manages(self, account_id: str) -> bool:
        try:
            self._resource_directory(account_id)
        except NotFound:
            return False
        return True

    @command
    def create_control_policy(
        self,
        management_account: str,
        policy_name: str,
        document: str | Mapping[str, Any],
        description: str | None = None,
    ) -> Written:
        directory = self._directory(management_account)
        canonical = self._document(document, "document")
        directory.create_policy(policy_name, canonical, description)
        return Written(self._commit(directory))

    @command
    def update_control_policy(
        self,
        management_account: str,
        policy_name: str,
        *,
        new_policy_name: str | None = None,
        document: str | Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Written:
        """UpdateControlPolicy: a new name (attachments follow), document or description."""
        directory = self._directory(management_account)
        canonical = None if document is None else self._document(document, "document")
        directory.update_policy(policy_name, new_policy_name, canonical, description)
        return Written(self._commit(directory))

    @command
    def delete_control_policy(self, management_account: str, policy_name: str) -> Written:
        """DeleteControlPolicy: refused while the policy is attached anywhere."""
        directory = self._directory(management_account)
        directory.delete_policy(policy_name)
        return Written(self._commit(directory))

    @command
    def attach_control_policy(
        self, management_account: str, policy_name: str, target: str
    ) -> Written:
        directory = self._directory(management_account)
        directory.attach(policy_name, target)
        return Written(self._commit(directory))

    @command
    def detach_control_policy(
        self, management_account: str, policy_name: str, target: str
    ) -> Written:
        directory = self._directory(management_account)
        directory.detach(policy_name, target)
        return Written(self._commit(directory))

    @command
    def disable_control_policy(self, management_account: str) -> Written:
        """DisableControlPolicy: every control policy detached, none attachable, none bounding
        a member; already disabled, nothing is recorded (the position answered is the log's)."""
        directory = self._directory(management_account)
        directory.set_control_enabled(False)
        return Written(self._commit(directory))

    @command
    def enable_control_policy(self, management_account: str) -> Written:
        """EnableControlPolicy: ``FullAliyunAccess`` on every folder and member again (custom
        policies are attached again by hand); already enabled, nothing is recorded."""
        directory = self._directory(management_account)
        directory.set_control_enabled(True)
        return Written(self._commit(directory))
