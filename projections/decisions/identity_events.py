"""How identity events change the decision index: accounts, users, AccessKeys, groups, policies.

Each handler is registered by its event class on the index's one registry (``state.on``); a
change that can alter a user's decisions moves that user's generation (``_touch``), after
the change, so a reader never caches the old state under the new generation. Name claims
only guard names on the write side: the index declares them ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.sts.oidc_providers import OIDCProvider
from mandate.domain.sts.roles import Role
from mandate.projections.decisions.state import IndexState, on
from mandate.projections.decisions.views import (
    AccessKeyView,
    AccountView,
    GroupView,
    PolicyVersionView,
    PolicyView,
    RoleView,
    UserView,
)

__all__ = ["AttachmentEvent", "attachment_handler", "release_name"]


class AttachmentEvent(Protocol):
    """A user's, group's or role's ``PolicyAttached`` / ``PolicyDetached`` (the same fields)."""

    @property
    def originator_id(self) -> UUID: ...

    @property
    def policy_type(self) -> str: ...

    @property
    def policy_name(self) -> str: ...

    @property
    def policy_id(self) -> UUID | None: ...


on.ignores(NameClaim.NameClaimed, NameClaim.NameReclaimed, NameClaim.NameReleased)
# an erasure is the keys' tombstones, read through the keyring: the event only records who
on.ignores(Account.PersonalDataErased)
# an OIDC provider decides nothing here: AssumeRoleWithOIDC reads it from the log
on.ignores(
    OIDCProvider.OIDCProviderCreated,
    OIDCProvider.OIDCProviderUpdated,
    OIDCProvider.OIDCProviderDeleted,
)


def _new_key(
    index: IndexState,
    key_id: str,
    secret_hash: str,
    sealed: str | None,
    owner: tuple[str, UUID | None],
    at: datetime,
) -> None:
    """A key issued ``at`` to ``owner`` (its account, and its user or None for the root key):
    Active from then on; ``sealed`` is its sealed secret (None before secrets were sealed)."""
    account_id, user_id = owner
    index.keys[key_id] = AccessKeyView(
        key_id, secret_hash, "Active", account_id, user_id, at, sealed
    )


@on.on(Account.AccountOpened)
def account_opened(index: IndexState, e: Account.AccountOpened) -> None:
    index.accounts[e.account_id] = AccountView(
        e.account_id, e.name, e.timestamp, e.root_access_key_id
    )
    index._account_ids[e.originator_id] = e.account_id
    root = (e.account_id, None)
    _new_key(
        index, e.root_access_key_id, e.root_secret_hash, e.root_secret_sealed, root, e.timestamp
    )


@on.on(Account.AccountClosed)
def account_closed(index: IndexState, e: Account.AccountClosed) -> None:
    account = index._account_for(e)
    account.is_open = False
    index._touch(u.id for u in list(index.users.values()) if u.account_id == account.account_id)


@on.on(Account.RootAccessKeyRotated)
def root_key_rotated(index: IndexState, e: Account.RootAccessKeyRotated) -> None:
    account = index._account_for(e)
    index._kill_key(e.previous_access_key_id, "the root AccessKey was rotated")
    account.root_access_key_id = e.access_key_id
    root = (account.account_id, None)
    _new_key(index, e.access_key_id, e.secret_hash, e.secret_sealed, root, e.timestamp)


@on.on(User.UserCreated)
def user_created(index: IndexState, e: User.UserCreated) -> None:
    index.users[e.originator_id] = UserView(
        e.originator_id, e.account_id, e.user_name, e.display_name, e.timestamp, e.timestamp
    )
    index.users[e.originator_id].named_at = index._applying
    index.users[e.originator_id].display_name_sealed = e.display_name_sealed
    index.user_ids[(e.account_id, e.user_name)] = e.originator_id


@on.on(User.UserUpdated)
def user_updated(index: IndexState, e: User.UserUpdated) -> None:
    user = index.users[e.originator_id]
    if e.user_name != user.user_name:
        index.user_ids.pop((user.account_id, user.user_name), None)
        index.user_ids[(user.account_id, e.user_name)] = user.id
        user.named_at = index._applying  # a name taken now binds no older trust
    user.user_name = e.user_name
    user.display_name = e.display_name
    user.display_name_sealed = e.display_name_sealed
    user.updated_at = e.timestamp
    index._touch((user.id,))


@on.on(User.UserDeleted)
def user_deleted(index: IndexState, e: User.UserDeleted) -> None:
    user = index.users.pop(e.originator_id)
    index._touch((user.id,))
    release_name(index.user_ids, (user.account_id, user.user_name), user.id)
    for key_id in user.access_key_ids:
        index._kill_key(key_id, f"the AccessKey's user {user.user_name!r} was deleted")


@on.on(User.TagsChanged)
def user_tags_changed(index: IndexState, e: User.TagsChanged) -> None:
    """The user's tags, replaced whole: only ``acs:ResourceTag`` conditions read them, and a
    decision that reads a condition is never memoised, so no generation moves."""
    user = index.users[e.originator_id]
    user.tags = dict(e.tags)
    user.updated_at = e.timestamp


@on.on(Role.TagsChanged)
def role_tags_changed(index: IndexState, e: Role.TagsChanged) -> None:
    """As ``user_tags_changed``, for a role."""
    role = index.roles[e.originator_id]
    role.tags = dict(e.tags)
    role.updated_at = e.timestamp


@on.on(User.AccessKeyCreated)
def key_created(index: IndexState, e: User.AccessKeyCreated) -> None:
    user = index.users[e.originator_id]
    owner = (user.account_id, user.id)
    _new_key(index, e.access_key_id, e.secret_hash, e.secret_sealed, owner, e.timestamp)
    user.access_key_ids = (*user.access_key_ids, e.access_key_id)


@on.on(User.AccessKeyDisabled)
def key_disabled(index: IndexState, e: User.AccessKeyDisabled) -> None:
    index.keys[e.access_key_id].status = "Inactive"


@on.on(User.AccessKeyEnabled)
def key_enabled(index: IndexState, e: User.AccessKeyEnabled) -> None:
    index.keys[e.access_key_id].status = "Active"


@on.on(User.AccessKeyDeleted)
def key_deleted(index: IndexState, e: User.AccessKeyDeleted) -> None:
    user = index.users[e.originator_id]
    user.access_key_ids = tuple(k for k in user.access_key_ids if k != e.access_key_id)
    index._kill_key(e.access_key_id, "the AccessKey was deleted")


@on.on(User.UserAddedToGroup)
def added_to_group(index: IndexState, e: User.UserAddedToGroup) -> None:
    user = index.users[e.originator_id]
    user.groups = {**user.groups, e.group_id: e.group_name}
    _membership_changed(index, user.id, e.group_id, joined=True)


@on.on(User.UserRemovedFromGroup)
def removed_from_group(index: IndexState, e: User.UserRemovedFromGroup) -> None:
    user = index.users[e.originator_id]
    user.groups = {g: n for g, n in user.groups.items() if g != e.group_id}
    _membership_changed(index, user.id, e.group_id, joined=False)


def _membership_changed(index: IndexState, user_id: UUID, group_id: UUID, *, joined: bool) -> None:
    """The user's decisions move a generation, and the group's members follow: changed in
    place while replaying (``IndexState._members``), else replaced by a new frozen set, which
    readers holding the old one never see change under them."""
    index._touch((user_id,))
    group = index.groups.get(group_id)
    if group is None:
        return
    if index._replaying:
        members = index._members(group)
        if joined:
            members.add(user_id)
        else:
            members.discard(user_id)
    elif joined:
        group.member_ids = group.member_ids | {user_id}
    else:
        group.member_ids = group.member_ids - {user_id}


def attachment_handler(
    kind: PrincipalKind, *, attach: bool
) -> Callable[[IndexState, AttachmentEvent], None]:
    """The handler of a ``kind``'s ``PolicyAttached`` (``attach``) or ``PolicyDetached``."""

    def handle(index: IndexState, e: AttachmentEvent) -> None:
        holder: UserView | GroupView | RoleView
        if kind is PrincipalKind.USER:
            holder = index.users[e.originator_id]
        else:
            holder = (index.groups if kind is PrincipalKind.GROUP else index.roles)[e.originator_id]
        (attached if attach else detached)(index, holder, kind, e)

    return handle


on.on(User.PolicyAttached)(attachment_handler(PrincipalKind.USER, attach=True))
on.on(User.PolicyDetached)(attachment_handler(PrincipalKind.USER, attach=False))


@on.on(Group.GroupCreated)
def group_created(index: IndexState, e: Group.GroupCreated) -> None:
    index.groups[e.originator_id] = GroupView(
        e.originator_id, e.account_id, e.group_name, e.comments, e.timestamp
    )
    index.group_ids[(e.account_id, e.group_name)] = e.originator_id


@on.on(Group.GroupDeleted)
def group_deleted(index: IndexState, e: Group.GroupDeleted) -> None:
    group = index.groups.pop(e.originator_id)
    index._touch(group.member_ids)
    release_name(index.group_ids, (group.account_id, group.group_name), group.id)


on.on(Group.PolicyAttached)(attachment_handler(PrincipalKind.GROUP, attach=True))
on.on(Group.PolicyDetached)(attachment_handler(PrincipalKind.GROUP, attach=False))


@on.on(ManagedPolicy.PolicyCreated)
def policy_created(index: IndexState, e: ManagedPolicy.PolicyCreated) -> None:
    index.policies[e.originator_id] = PolicyView(
        e.originator_id,
        e.account_id,
        e.policy_name,
        e.description,
        e.timestamp,
        e.timestamp,
        "v1",
        {"v1": PolicyVersionView("v1", e.document, e.timestamp)},
    )
    index.policy_ids[(e.account_id, e.policy_name)] = e.originator_id


@on.on(ManagedPolicy.PolicyVersionCreated)
def policy_version_created(index: IndexState, e: ManagedPolicy.PolicyVersionCreated) -> None:
    policy = index.policies[e.originator_id]
    policy.versions = {
        **policy.versions,
        e.version_id: PolicyVersionView(e.version_id, e.document, e.timestamp),
    }
    if e.set_as_default:
        policy.default_version = e.version_id
        index._touch(index._holders_of(policy.id))
    policy.updated_at = e.timestamp


@on.on(ManagedPolicy.DefaultPolicyVersionSet)
def default_version_set(index: IndexState, e: ManagedPolicy.DefaultPolicyVersionSet) -> None:
    policy = index.policies[e.originator_id]
    policy.default_version = e.version_id
    policy.updated_at = e.timestamp
    index._touch(index._holders_of(policy.id))


@on.on(ManagedPolicy.PolicyVersionDeleted)
def policy_version_deleted(index: IndexState, e: ManagedPolicy.PolicyVersionDeleted) -> None:
    policy = index.policies[e.originator_id]
    policy.versions = {v: pv for v, pv in policy.versions.items() if v != e.version_id}
    policy.updated_at = e.timestamp


@on.on(ManagedPolicy.PolicyDeleted)
def policy_deleted(index: IndexState, e: ManagedPolicy.PolicyDeleted) -> None:
    policy = index.policies.pop(e.originator_id)
    index._touch(index._holders_of(policy.id))
    index._holders.pop(policy.id, None)
    index._staged_holders.pop(policy.id, None)
    release_name(index.policy_ids, (policy.account_id, policy.policy_name), policy.id)


def release_name(names: dict[tuple[str, str], UUID], key: tuple[str, str], deleted: UUID) -> None:
    """A deleted user's, group's, policy's or role's ``(account, name)`` is free again, unless
    the name already holds another entity (a later one took it over)."""
    if names.get(key) == deleted:
        del names[key]


def attached(
    index: IndexState,
    holder: UserView | GroupView | RoleView,
    kind: PrincipalKind,
    e: AttachmentEvent,
) -> None:
    a = Attachment(PolicyType(e.policy_type), e.policy_name, e.policy_id)
    holder.attachments = {**holder.attachments, a.key: a}
    if a.policy_id is not None:
        if index._replaying:
            index._holder_set(a.policy_id).add((kind, holder.id))
        else:
            index._holders[a.policy_id] = index._holders.get(a.policy_id, frozenset()) | {
                (kind, holder.id)
            }
    # after the change: a reader that saw the new generation must also see the new
    # attachments, or it would cache the old ones under the new generation
    touch_holder(index, holder)


def touch_holder(index: IndexState, holder: UserView | GroupView | RoleView) -> None:
    index._touch(holder.member_ids if isinstance(holder, GroupView) else (holder.id,))


def detached(
    index: IndexState,
    holder: UserView | GroupView | RoleView,
    kind: PrincipalKind,
    e: AttachmentEvent,
) -> None:
    key = (e.policy_type, e.policy_name)
    holder.attachments = {k: a for k, a in holder.attachments.items() if k != key}
    if e.policy_id is not None and e.policy_id in index._holders:
        if index._replaying:
            index._holder_set(e.policy_id).discard((kind, holder.id))
        else:
            index._holders[e.policy_id] = index._holders[e.policy_id] - {(kind, holder.id)}
    touch_holder(index, holder)  # after the change, as in ``_attached``
