"""RAM users (with their AccessKeys, memberships and attachments) and groups.

Every guard raises before its event is triggered, so a refused command records nothing.
A user's AccessKeys live inside the user aggregate: the two-key quota is then checked
against the version the new key extends, and a deleted user takes its keys with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, LimitExceeded, NotFound, PreconditionFailed
from mandate.domain.common.tags import Tagged
from mandate.domain.permissions.attachments import (
    Attachment,
    PolicyChange,
    PolicyHolder,
)

__all__ = [
    "MAX_ACCESS_KEYS_PER_USER",
    "MAX_GROUPS_PER_USER",
    "AccessKeyRecord",
    "AccessKeyStatus",
    "Group",
    "User",
    "display_name_binding",
]

MAX_ACCESS_KEYS_PER_USER = 2
MAX_GROUPS_PER_USER = 10


def display_name_binding(account_id: str) -> str:
    """What a user's sealed display name is bound to: it opens as nothing else (not as
    another field, nor under another account's key)."""
    return f"user display name|{account_id}"


class AccessKeyStatus(StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    secret_hash: str
    status: AccessKeyStatus
    secret_sealed: str | None = None


class User(Tagged, PolicyHolder, LedgerAggregate):
    TOPIC = "mandate:User.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:User.Event.v1"

    def _holder(self) -> str:
        return f"user {self.user_name!r}"

    class UserCreated(LedgerAggregate.Created, Event):
        TOPIC = "mandate:UserCreated.v1"
        account_id: str
        user_name: str
        display_name: str | None
        display_name_sealed: str | None = None
        """The display name sealed under the account's personal-data key (then
        ``display_name`` is None); absent (None) in users created before sealing."""

    @event(UserCreated)
    def __init__(
        self,
        account_id: str,
        user_name: str,
        display_name: str | None,
        display_name_sealed: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.user_name = user_name
        self.display_name = display_name
        self.display_name_sealed = display_name_sealed
        self.deleted = False
        self.access_keys: dict[str, AccessKeyRecord] = {}
        self.groups: dict[UUID, str] = {}
        self.attachments: dict[tuple[str, str], Attachment] = {}
        self.tags: dict[str, str] = {}

    # -- profile -------------------------------------------------------------------------
    def update(
        self,
        *,
        new_user_name: str | None,
        new_display_name: str | None,
        new_display_name_sealed: str | None = None,
    ) -> None:
        """A new name and/or display name; the display name either clear or (when the
        ledger seals personal data) sealed. An unchanged one is carried forward as it is."""
        if new_user_name is None and new_display_name is None and new_display_name_sealed is None:
            return
        display_name, sealed = self.display_name, self.display_name_sealed
        if new_display_name_sealed is not None:
            display_name, sealed = None, new_display_name_sealed
        elif new_display_name is not None:
            display_name, sealed = new_display_name, None
        self._updated(
            user_name=new_user_name or self.user_name,
            display_name=display_name,
            previous_user_name=self.user_name,
            display_name_sealed=sealed,
        )

    class UserUpdated(Event):
        TOPIC = "mandate:UserUpdated.v1"
        user_name: str
        display_name: str | None
        previous_user_name: str
        display_name_sealed: str | None = None
        """As ``UserCreated.display_name_sealed`` (None before sealing)."""

    @event(UserUpdated)
    def _updated(
        self,
        user_name: str,
        display_name: str | None,
        previous_user_name: str,
        display_name_sealed: str | None = None,
    ) -> None:
        self.user_name = user_name
        self.display_name = display_name
        self.display_name_sealed = display_name_sealed

    def delete(self, *, detach: bool, require_detached: bool = False) -> None:
        """Delete the user and its AccessKeys: refused while policies or memberships remain,
        unless detaching (/v1's ``detach``). ``require_detached`` is RAM's DeleteUser rule:
        refused while anything hangs on the user, AccessKeys included, each named in RAM's
        order (``DeleteConflict.User.AccessKey``, then ``.Group``, then ``.Policy``)."""
        if require_detached:
            for held, what, code in (
                (self.access_keys, "AccessKeys", "AccessKey"),
                (self.groups, "groups", "Group"),
                (self.attachments, "attached policies", "Policy"),
            ):
                if held:
                    raise PreconditionFailed(
                        f"user {self.user_name!r} still has {len(held)} {what}",
                        code=f"DeleteConflict.User.{code}",
                    )
        if (self.attachments or self.groups) and not detach:
            raise PreconditionFailed(
                f"user {self.user_name!r} still has "
                f"{len(self.attachments)} attached policies and {len(self.groups)} groups; "
                "detach them first or pass detach=true",
                code="DeleteConflict.User",
            )
        self.detach_all()
        for group_id in list(self.groups):
            self.remove_from_group(group_id)
        self._deleted()

    class UserDeleted(Event):
        TOPIC = "mandate:UserDeleted.v1"

    @event(UserDeleted)
    def _deleted(self) -> None:
        self.deleted = True

    # -- access keys ---------------------------------------------------------------------
    def create_access_key(
        self, access_key_id: str, secret_hash: str, secret_sealed: str | None = None
    ) -> None:
        """A new Active key: its secret as a keyed hash (Basic) and, when the ledger seals,
        sealed under the keyring bound to ``access_key_id`` (request signatures)."""
        if len(self.access_keys) >= MAX_ACCESS_KEYS_PER_USER:
            raise LimitExceeded(
                f"user {self.user_name!r} already has {MAX_ACCESS_KEYS_PER_USER} AccessKeys",
                code="LimitExceeded.User.AccessKey",
            )
        self._access_key_created(
            access_key_id=access_key_id, secret_hash=secret_hash, secret_sealed=secret_sealed
        )

    class AccessKeyCreated(Event):
        TOPIC = "mandate:AccessKeyCreated.v1"
        access_key_id: str
        secret_hash: str
        secret_sealed: str | None = None
        """Absent (None) in keys created before secrets were sealed: they cannot sign."""

    @event(AccessKeyCreated)
    def _access_key_created(
        self, access_key_id: str, secret_hash: str, secret_sealed: str | None = None
    ) -> None:
        self.access_keys[access_key_id] = AccessKeyRecord(
            access_key_id, secret_hash, AccessKeyStatus.ACTIVE, secret_sealed
        )

    def set_access_key_status(self, access_key_id: str, status: AccessKeyStatus) -> None:
        key = self._key(access_key_id)
        if key.status == status:
            return
        if status is AccessKeyStatus.INACTIVE:
            self._access_key_disabled(access_key_id=access_key_id)
        else:
            self._access_key_enabled(access_key_id=access_key_id)

    class AccessKeyDisabled(Event):
        TOPIC = "mandate:AccessKeyDisabled.v1"
        access_key_id: str

    @event(AccessKeyDisabled)
    def _access_key_disabled(self, access_key_id: str) -> None:
        key = self.access_keys[access_key_id]
        self.access_keys[access_key_id] = AccessKeyRecord(
            key.access_key_id, key.secret_hash, AccessKeyStatus.INACTIVE, key.secret_sealed
        )

    class AccessKeyEnabled(Event):
        TOPIC = "mandate:AccessKeyEnabled.v1"
        access_key_id: str

    @event(AccessKeyEnabled)
    def _access_key_enabled(self, access_key_id: str) -> None:
        key = self.access_keys[access_key_id]
        self.access_keys[access_key_id] = AccessKeyRecord(
            key.access_key_id, key.secret_hash, AccessKeyStatus.ACTIVE, key.secret_sealed
        )

    def delete_access_key(self, access_key_id: str) -> None:
        self._key(access_key_id)
        self._access_key_deleted(access_key_id=access_key_id)

    class AccessKeyDeleted(Event):
        TOPIC = "mandate:AccessKeyDeleted.v1"
        access_key_id: str

    @event(AccessKeyDeleted)
    def _access_key_deleted(self, access_key_id: str) -> None:
        del self.access_keys[access_key_id]

    def _key(self, access_key_id: str) -> AccessKeyRecord:
        try:
            return self.access_keys[access_key_id]
        except KeyError:
            raise NotFound(
                f"AccessKey {access_key_id!r} does not exist for user {self.user_name!r}",
                code="EntityNotExist.User.AccessKey",
            ) from None

    # -- groups --------------------------------------------------------------------------
    def add_to_group(self, group_id: UUID, group_name: str) -> None:
        if group_id in self.groups:
            raise Conflict(
                f"user {self.user_name!r} is already in group {group_name!r}",
                code="EntityAlreadyExists.User.Group",
            )
        if len(self.groups) >= MAX_GROUPS_PER_USER:
            raise LimitExceeded(
                f"user {self.user_name!r} is already in {MAX_GROUPS_PER_USER} groups",
                code="LimitExceeded.User.Group",
            )
        self._added_to_group(group_id=group_id, group_name=group_name)

    class UserAddedToGroup(Event):
        TOPIC = "mandate:UserAddedToGroup.v1"
        group_id: UUID
        group_name: str

    @event(UserAddedToGroup)
    def _added_to_group(self, group_id: UUID, group_name: str) -> None:
        self.groups[group_id] = group_name

    def remove_from_group(self, group_id: UUID) -> None:
        if group_id not in self.groups:
            raise NotFound(
                f"user {self.user_name!r} is not in that group",
                code="EntityNotExist.User.Group",
            )
        self._removed_from_group(group_id=group_id, group_name=self.groups[group_id])

    class UserRemovedFromGroup(Event):
        TOPIC = "mandate:UserRemovedFromGroup.v1"
        group_id: UUID
        group_name: str

    @event(UserRemovedFromGroup)
    def _removed_from_group(self, group_id: UUID, group_name: str) -> None:
        del self.groups[group_id]

    # -- tags (RAM's IMS TagResources / UntagResources, ``domain.common.tags``) -------------
    def _tagged_name(self) -> str:
        return f"user {self.user_name!r}"

    class TagsChanged(Event):
        TOPIC = "mandate:User.TagsChanged.v1"
        tags: dict[str, str]
        """The user's whole tag set after the change."""

    @event(TagsChanged)
    def _tags_changed(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)

    # -- attachments ---------------------------------------------------------------------
    class PolicyAttached(PolicyChange, Event):
        TOPIC = "mandate:User.PolicyAttached.v1"

    class PolicyDetached(PolicyChange, Event):
        TOPIC = "mandate:User.PolicyDetached.v1"

    _policy_attached = event(PolicyAttached)(PolicyHolder.record_attached)
    _policy_detached = event(PolicyDetached)(PolicyHolder.record_detached)


class Group(PolicyHolder, LedgerAggregate):
    TOPIC = "mandate:Group.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Group.Event.v1"

    def _holder(self) -> str:
        return f"group {self.group_name!r}"

    class GroupCreated(LedgerAggregate.Created, Event):
        TOPIC = "mandate:GroupCreated.v1"
        account_id: str
        group_name: str
        comments: str | None

    @event(GroupCreated)
    def __init__(self, account_id: str, group_name: str, comments: str | None) -> None:
        self.account_id = account_id
        self.group_name = group_name
        self.comments = comments
        self.deleted = False
        self.attachments: dict[tuple[str, str], Attachment] = {}

    def delete(self, *, member_count: int, detach: bool, require_detached: bool = False) -> None:
        """Delete the group: refused while policies or members remain, unless detaching
        (/v1's ``detach``). ``require_detached`` is RAM's DeleteGroup rule: refused while it
        has members (``DeleteConflict.Group.User``), then while it has policies
        (``DeleteConflict.Group.Policy``), whatever ``detach`` says.

        Members live on the user aggregates; the caller removes them (in the same save)
        and passes how many there were, so the precondition is judged here.
        """
        if require_detached:
            for held, what, code in (
                (member_count, "members", "User"),
                (len(self.attachments), "attached policies", "Policy"),
            ):
                if held:
                    raise PreconditionFailed(
                        f"group {self.group_name!r} still has {held} {what}",
                        code=f"DeleteConflict.Group.{code}",
                    )
        if (self.attachments or member_count) and not detach:
            raise PreconditionFailed(
                f"group {self.group_name!r} still has {len(self.attachments)} attached "
                f"policies and {member_count} members; detach them first or pass detach=true",
                code="DeleteConflict.Group",
            )
        self.detach_all()
        self._deleted()

    class GroupDeleted(Event):
        TOPIC = "mandate:GroupDeleted.v1"

    @event(GroupDeleted)
    def _deleted(self) -> None:
        self.deleted = True

    class PolicyAttached(PolicyChange, Event):
        TOPIC = "mandate:Group.PolicyAttached.v1"

    class PolicyDetached(PolicyChange, Event):
        TOPIC = "mandate:Group.PolicyDetached.v1"

    _policy_attached = event(PolicyAttached)(PolicyHolder.record_attached)
    _policy_detached = event(PolicyDetached)(PolicyHolder.record_detached)
