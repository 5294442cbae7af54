"""Resource Directory: a management account's tree of folders, its members and control policies.

One aggregate per management account (its id derived from the account: one directory each).
Its guards are Resource Directory's documented rules, checked before any event exists:

* folders nest at most ``MAX_FOLDER_DEPTH`` levels below the root folder; a folder's name is
  unique in the directory (doc-detail/150781.htm);
* an account joins only by accepting an invitation (``handshakes``; ``admit`` puts it in the
  root folder), then sits in exactly one folder (a name claim keeps it in one directory);
  MoveAccount moves members only; the management account is no member of its own directory;
* a control policy is an identity-policy document (``parse_policy_document``);
  ``FullAliyunAccess`` is on every new folder and member (deny-list mode; detach it for
  allow-list mode);
* a folder (not the root) is deleted only while empty (api-deletefolder); renamed, its name
  stays unique; a custom control policy is updated (its attachments follow a new name) or,
  attached nowhere, deleted (api-deletecontrolpolicy); the system policy is neither;
* the Control Policy feature, disabled, detaches every control policy and refuses attaching
  (409 ``InvalidStatus.ControlPolicy.Disabled``); enabled, ``FullAliyunAccess`` everywhere.

``levels``: root folder → … → account with what is attached at each (``decide_with_control``).
"""

from __future__ import annotations

import secrets
from uuid import UUID, uuid5

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, FieldError, InvalidInput, NotFound
from mandate.domain.permissions.directory_paths import (
    check_description,
    check_folder_name,
    control_policy_arn,
    directory_arn,
    first_attachments,
    folder_depth,
    full_access_everywhere,
    membership_arn,
    nothing_attached,
    path_levels,
    renamed_attachments,
)
from mandate.domain.policy.control import FULL_ALIYUN_ACCESS, MAX_FOLDER_DEPTH

__all__ = [
    "MAX_CONTROL_POLICIES_PER_NODE",
    "MEMBERSHIP_KIND",
    "ResourceDirectory",
    "control_policy_arn",
    "directory_arn",
    "directory_id",
    "membership_arn",
]

MEMBERSHIP_KIND = "resource-directory"
"""The kind of the name claim that keeps a member account in one directory."""

MAX_CONTROL_POLICIES_PER_NODE = 10
"""Control policies attached to one folder or member (Resource Directory's quota; the value
as we remember the limits page, not re-checked against it)."""

_NAMESPACE = UUID("0b5b0f8e-6d55-4b1e-9d5e-3f1c2a7e9d41")


def directory_id(management_account: str) -> UUID:
    return uuid5(_NAMESPACE, f"resource-directory/{management_account}")


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class ResourceDirectory(LedgerAggregate):
    TOPIC = "mandate:ResourceDirectory.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:ResourceDirectory.Event.v1"

    @staticmethod
    def create_id(management_account: str, root_folder_id: str) -> UUID:
        return directory_id(management_account)

    class DirectoryEnabled(LedgerAggregate.Created, Event):
        TOPIC = "mandate:ResourceDirectoryEnabled.v1"
        management_account: str
        root_folder_id: str

    @event(DirectoryEnabled)
    def __init__(self, management_account: str, root_folder_id: str) -> None:
        self.management_account = management_account
        self.root_folder_id = root_folder_id
        self.parents: dict[str, str | None] = {root_folder_id: None}
        self.folder_names: dict[str, str] = {root_folder_id: "Root"}
        self.members: dict[str, str] = {}
        self.policies: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}
        self.attached: dict[str, list[str]] = {root_folder_id: [FULL_ALIYUN_ACCESS]}
        self.control_enabled = True  # the Control Policy feature (Mandate's starts on)

    @classmethod
    def enable(cls, management_account: str) -> ResourceDirectory:
        return cls(management_account=management_account, root_folder_id=_new_id("r"))

    # -- the tree ------------------------------------------------------------------------
    def require_folder(self, folder_id: str) -> None:
        if folder_id not in self.parents:
            raise NotFound(f"folder {folder_id} does not exist", code="EntityNotExist.Folder")

    def _check_folder_name(self, name: str, field: str, renamed: str | None = None) -> None:
        """``check_folder_name``, and unique in the whole directory (as documented)."""
        check_folder_name(name, field)
        if any(n == name and f != renamed for f, n in self.folder_names.items()):
            raise Conflict(f"folder {name!r} already exists", code="Duplicate.FolderName")

    def _not_root(self, folder_id: str, why: str) -> None:
        self.require_folder(folder_id)
        if folder_id == self.root_folder_id:
            raise InvalidInput(FieldError("folder_id", why), code="InvalidParameter.FolderId")

    def create_folder(self, parent_id: str, name: str) -> str:
        self.require_folder(parent_id)
        self._check_folder_name(name, "name")
        if folder_depth(self.parents, parent_id) + 1 > MAX_FOLDER_DEPTH:
            raise Conflict(
                f"folders nest at most {MAX_FOLDER_DEPTH} levels below the root folder",
                code="LimitExceeded.FolderDepth",
            )
        folder_id = _new_id("fd")
        self._folder_created(
            management_account=self.management_account,
            folder_id=folder_id,
            parent_id=parent_id,
            name=name,
        )
        return folder_id

    class FolderCreated(Event):
        TOPIC = "mandate:ResourceDirectoryFolderCreated.v1"
        management_account: str
        folder_id: str
        parent_id: str
        name: str

    @event(FolderCreated)
    def _folder_created(
        self, management_account: str, folder_id: str, parent_id: str, name: str
    ) -> None:
        self.parents[folder_id] = parent_id
        self.folder_names[folder_id] = name
        self.attached[folder_id] = first_attachments(self.control_enabled)

    def rename_folder(self, folder_id: str, name: str) -> None:
        self._not_root(folder_id, "the root folder keeps its name")
        self._check_folder_name(name, "new_folder_name", renamed=folder_id)
        self._folder_renamed(
            management_account=self.management_account, folder_id=folder_id, name=name
        )

    class FolderRenamed(Event):
        TOPIC = "mandate:ResourceDirectoryFolderRenamed.v1"
        management_account: str
        folder_id: str
        name: str

    @event(FolderRenamed)
    def _folder_renamed(self, management_account: str, folder_id: str, name: str) -> None:
        self.folder_names[folder_id] = name

    def delete_folder(self, folder_id: str) -> None:
        """Refused while a folder or a member is in it; its attachments go with it."""
        self._not_root(folder_id, "the root folder goes only with its directory")
        if folder_id in self.parents.values():
            raise Conflict("This folder has sub folders.", code="DeleteConflict.Folder.SubFolder")
        if folder_id in self.members.values():
            raise Conflict("This folder has accounts.", code="DeleteConflict.Folder.Account")
        self._folder_deleted(management_account=self.management_account, folder_id=folder_id)

    class FolderDeleted(Event):
        TOPIC = "mandate:ResourceDirectoryFolderDeleted.v1"
        management_account: str
        folder_id: str

    @event(FolderDeleted)
    def _folder_deleted(self, management_account: str, folder_id: str) -> None:
        del self.parents[folder_id], self.folder_names[folder_id], self.attached[folder_id]

    def move_account(self, account_id: str, folder_id: str) -> None:
        """Move a member to ``folder_id``; any other account is refused alike (no oracle)."""
        self.require_folder(folder_id)
        if account_id not in self.members:
            raise NotFound(f"account {account_id} is no member", code="EntityNotExist.Account")
        if self.members[account_id] == folder_id:
            raise Conflict(f"account {account_id} is already in {folder_id}", code="NoChange")
        self._account_moved(
            management_account=self.management_account, account_id=account_id, folder_id=folder_id
        )

    def admit(self, account_id: str) -> None:
        """An invited account accepted: a member in the root folder (``FullAliyunAccess``)."""
        if account_id in self.members or account_id == self.management_account:
            raise Conflict(f"account {account_id} is a member", code="InvalidStatus.Account")
        self._account_moved(
            management_account=self.management_account,
            account_id=account_id,
            folder_id=self.root_folder_id,
        )

    def remove_account(self, account_id: str) -> None:
        """RemoveCloudAccount: a member leaves with its attachments (404 for others alike)."""
        if account_id not in self.members:
            raise NotFound(f"account {account_id} is no member", code="EntityNotExist.Account")
        self._account_removed(management_account=self.management_account, account_id=account_id)

    class AccountRemoved(Event):
        TOPIC = "mandate:ResourceDirectoryAccountRemoved.v1"
        management_account: str
        account_id: str

    @event(AccountRemoved)
    def _account_removed(self, management_account: str, account_id: str) -> None:
        del self.members[account_id], self.attached[account_id]

    class AccountMoved(Event):
        TOPIC = "mandate:ResourceDirectoryAccountMoved.v1"
        management_account: str
        account_id: str
        folder_id: str

    @event(AccountMoved)
    def _account_moved(self, management_account: str, account_id: str, folder_id: str) -> None:
        if account_id not in self.members:
            self.attached[account_id] = first_attachments(self.control_enabled)
        self.members[account_id] = folder_id

    # -- control policies ----------------------------------------------------------------
    def _check_policy_name(self, name: str, field: str) -> None:
        if not isinstance(name, str) or not 1 <= len(name) <= 128 or name == FULL_ALIYUN_ACCESS:
            raise InvalidInput(
                FieldError(field, "must be 1 to 128 characters, not a system policy's"),
                code="InvalidParameter.PolicyName",
            )
        if name in self.policies:
            raise Conflict(f"control policy {name!r} already exists", code="Duplicate.Policy")

    def create_policy(self, name: str, document: str, description: str | None = None) -> None:
        self._check_policy_name(name, "policy_name")
        check_description(description)
        self._policy_created(
            management_account=self.management_account,
            policy_name=name,
            document=document,
            description=description,
        )

    class ControlPolicyCreated(Event):
        TOPIC = "mandate:ControlPolicyCreated.v1"
        management_account: str
        policy_name: str
        document: str
        """The canonical JSON (``PolicyDocument.canonical_json``)."""
        description: str | None = None

    @event(ControlPolicyCreated)
    def _policy_created(
        self,
        management_account: str,
        policy_name: str,
        document: str,
        description: str | None = None,
    ) -> None:
        self.policies[policy_name] = document
        if description is not None:
            self.descriptions[policy_name] = description

    def _custom(self, policy_name: str) -> None:
        if policy_name == FULL_ALIYUN_ACCESS:
            raise Conflict(
                "the system control policy is neither changed nor deleted",
                code="NoPermission.SystemControlPolicy",
            )
        if policy_name not in self.policies:
            raise NotFound(
                f"control policy {policy_name!r} does not exist", code="EntityNotExist.Policy"
            )

    def update_policy(
        self,
        policy_name: str,
        new_name: str | None,
        document: str | None,
        description: str | None,
    ) -> None:
        """A new name (attachments follow it), document or description; at least one."""
        self._custom(policy_name)
        if new_name is None and document is None and description is None:
            raise InvalidInput(
                FieldError("new_policy_name", "give a new name, document or description"),
                code="MissingParameter",
            )
        if new_name is not None and new_name != policy_name:
            self._check_policy_name(new_name, "new_policy_name")
        check_description(description)
        self._policy_updated(
            management_account=self.management_account,
            policy_name=policy_name,
            new_policy_name=new_name,
            document=document,
            description=description,
        )

    class ControlPolicyUpdated(Event):
        TOPIC = "mandate:ControlPolicyUpdated.v1"
        management_account: str
        policy_name: str
        new_policy_name: str | None  # None: unchanged (so for the others)
        document: str | None
        description: str | None

    @event(ControlPolicyUpdated)
    def _policy_updated(
        self,
        management_account: str,
        policy_name: str,
        new_policy_name: str | None,
        document: str | None,
        description: str | None,
    ) -> None:
        name = new_policy_name or policy_name
        current = self.policies.pop(policy_name)
        self.policies[name] = document or current
        if policy_name in self.descriptions:
            self.descriptions[name] = self.descriptions.pop(policy_name)
        if description is not None:
            self.descriptions[name] = description
        self.attached = renamed_attachments(self.attached, policy_name, name)

    def delete_policy(self, policy_name: str) -> None:
        self._custom(policy_name)
        targets = sorted(t for t, names in self.attached.items() if policy_name in names)
        if targets:
            attached = f"control policy {policy_name!r} is attached to {', '.join(targets)}"
            raise Conflict(attached, code="DeleteConflict.ControlPolicy.Attachment")
        self._policy_deleted(management_account=self.management_account, policy_name=policy_name)

    class ControlPolicyDeleted(Event):
        TOPIC = "mandate:ControlPolicyDeleted.v1"
        management_account: str
        policy_name: str

    @event(ControlPolicyDeleted)
    def _policy_deleted(self, management_account: str, policy_name: str) -> None:
        del self.policies[policy_name]
        self.descriptions.pop(policy_name, None)

    def _target(self, policy_name: str, target: str) -> list[str]:
        if policy_name != FULL_ALIYUN_ACCESS and policy_name not in self.policies:
            raise NotFound(
                f"control policy {policy_name!r} does not exist", code="EntityNotExist.Policy"
            )
        if target not in self.attached:
            raise NotFound(
                f"{target} is neither a folder nor a member of this directory",
                code="EntityNotExist.Target",
            )
        return self.attached[target]

    def attach(self, policy_name: str, target: str) -> None:
        attached = self._target(policy_name, target)
        if not self.control_enabled:
            raise Conflict(
                "the Control Policy feature is disabled: EnableControlPolicy first",
                code="InvalidStatus.ControlPolicy.Disabled",
            )
        if policy_name in attached:
            raise Conflict(f"{policy_name!r} is already attached to {target}", code="NoChange")
        if len(attached) >= MAX_CONTROL_POLICIES_PER_NODE:
            raise Conflict(
                f"at most {MAX_CONTROL_POLICIES_PER_NODE} control policies per folder or member",
                code="LimitExceeded.ControlPolicy",
            )
        self._attached(
            management_account=self.management_account, policy_name=policy_name, target=target
        )

    class ControlPolicyAttached(Event):
        TOPIC = "mandate:ControlPolicyAttached.v1"
        management_account: str
        policy_name: str
        target: str

    @event(ControlPolicyAttached)
    def _attached(self, management_account: str, policy_name: str, target: str) -> None:
        self.attached[target].append(policy_name)

    def detach(self, policy_name: str, target: str) -> None:
        if policy_name not in self._target(policy_name, target):
            raise NotFound(
                f"{policy_name!r} is not attached to {target}", code="EntityNotExist.Attachment"
            )
        self._detached(
            management_account=self.management_account, policy_name=policy_name, target=target
        )

    class ControlPolicyDetached(Event):
        TOPIC = "mandate:ControlPolicyDetached.v1"
        management_account: str
        policy_name: str
        target: str

    @event(ControlPolicyDetached)
    def _detached(self, management_account: str, policy_name: str, target: str) -> None:
        self.attached[target].remove(policy_name)

    # -- the Control Policy feature ---------------------------------------------------------
    def set_control_enabled(self, enabled: bool) -> bool:
        """Enable/DisableControlPolicy (``directory_paths``); False, recording nothing, when
        the feature is already so."""
        if enabled == self.control_enabled:
            return False
        changed = self._control_enabled if enabled else self._control_disabled
        changed(management_account=self.management_account)
        return True

    class ControlPolicyFeatureEnabled(Event):
        TOPIC = "mandate:ControlPolicyFeatureEnabled.v1"
        management_account: str

    @event(ControlPolicyFeatureEnabled)
    def _control_enabled(self, management_account: str) -> None:
        self.control_enabled = True
        self.attached = full_access_everywhere(self.attached)

    class ControlPolicyFeatureDisabled(Event):
        TOPIC = "mandate:ControlPolicyFeatureDisabled.v1"
        management_account: str

    @event(ControlPolicyFeatureDisabled)
    def _control_disabled(self, management_account: str) -> None:
        self.control_enabled = False
        self.attached = nothing_attached(self.attached)

    # -- what decisions need -------------------------------------------------------------
    def levels(self, account_id: str) -> list[tuple[str, list[str]]]:
        """(node, attached policy names) from the root folder down to ``account_id``; none
        while the Control Policy feature is disabled (nothing bounds a member then)."""
        if not self.control_enabled:
            return []
        return path_levels(self.parents, self.members, self.attached, account_id)
