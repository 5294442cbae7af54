"""What the read endpoints share (users, groups, roles, policies, entrustments, audit, history).

RAM's Get/List calls are authorized like any management call except that the platform admin
may make them too; a listing is paged by ``cursor`` and a ``limit`` of 1 to 1000; a name that
holds nothing is RAM's ``EntityNotExist`` problem. Written once here, so the routers (and the
RPC actions, which look the same names up with the same answers) differ only in what they read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from mandate.api.deps import Caller, authorize_management
from mandate.api.presenters import page
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.errors import NotFound
from mandate.domain.permissions.attachments import Attachment
from mandate.projections.decisions.views import GroupView, PolicyView, RoleView, UserView

__all__ = [
    "Limit",
    "Paging",
    "PagingDep",
    "authorize_read",
    "existing",
    "held_attachments",
    "live_group",
    "live_holder",
    "live_policy",
    "live_role",
    "live_user",
    "shown_user",
]

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000)]
"""How many items one page holds (RAM's MaxItems): 1 to 1000."""


class Paging:
    """A listing's ``?cursor=…&limit=…`` (a dependency: the same query parameters, in the same
    order, as when each listing declared them)."""

    def __init__(self, cursor: str | None = None, limit: Limit = 100) -> None:
        self.cursor = cursor
        self.limit = limit

    def page(
        self,
        items: Sequence[T],
        sort_key: Callable[[T], str],
        render: Callable[[T], dict[str, Any]],
    ) -> dict[str, Any]:
        """``{items, next_cursor}`` of ``items`` after the cursor, in ``sort_key`` order."""
        return page(items, sort_key, render, cursor=self.cursor, limit=self.limit)


PagingDep = Annotated[Paging, Depends()]


def authorize_read(
    runtime: Runtime, caller: Caller, account_id: str, action: str, resource: str | None = None
) -> None:
    """A Get/List call, which the platform admin may make too; a listing (no ``resource``)
    is asked about the account's every RAM entity, ``acs:ram::<account_id>:*``."""
    if resource is None:
        resource = f"acs:ram::{account_id}:*"
    authorize_management(runtime, caller, account_id, action, resource, admin_may=True)


def existing(found: T | None, what: str, code: str) -> T:
    """``found``, or RAM's 404 saying ``what`` (``user 'alice'``) does not exist."""
    if found is None:
        raise NotFound(f"{what} does not exist", code=code)
    return found


def live_user(runtime: Runtime, account_id: str, user_name: str) -> UserView:
    """The user, or RAM's ``EntityNotExist.User``."""
    user = runtime.index.user_by_name(account_id, user_name)
    return existing(user, f"user {user_name!r}", "EntityNotExist.User")


def shown_user(runtime: Runtime, account_id: str, user_name: str) -> UserView:
    """The live user as answers show it (its display name opened, or erased)."""
    (user,) = runtime.index.shown([live_user(runtime, account_id, user_name)])
    return user


def live_group(runtime: Runtime, account_id: str, group_name: str) -> GroupView:
    """The group, or RAM's ``EntityNotExist.Group``."""
    group = runtime.index.group_by_name(account_id, group_name)
    return existing(group, f"group {group_name!r}", "EntityNotExist.Group")


def live_role(runtime: Runtime, account_id: str, role_name: str) -> RoleView:
    """The role, or RAM's ``EntityNotExist.Role``."""
    role = runtime.index.role_by_name(account_id, role_name)
    return existing(role, f"role {role_name!r}", "EntityNotExist.Role")


def live_policy(runtime: Runtime, account_id: str, policy_name: str) -> PolicyView:
    """The custom policy, or RAM's ``EntityNotExist.Policy``."""
    policy = runtime.index.policy_by_name(account_id, policy_name)
    return existing(policy, f"policy {policy_name!r}", "EntityNotExist.Policy")


def live_holder(
    runtime: Runtime, account_id: str, kind: PrincipalKind, name: str
) -> UserView | GroupView | RoleView:
    """The user, group or role ``kind`` names, or RAM's ``EntityNotExist.<Noun>``."""
    if kind is PrincipalKind.USER:
        return live_user(runtime, account_id, name)
    if kind is PrincipalKind.GROUP:
        return live_group(runtime, account_id, name)
    return live_role(runtime, account_id, name)


def held_attachments(
    runtime: Runtime, account_id: str, kind: PrincipalKind, name: str
) -> list[Attachment]:
    """What the principal holds attached, by policy type then name (both dialects' order)."""
    holder = live_holder(runtime, account_id, kind, name)
    return sorted(holder.attachments.values(), key=lambda a: (a.policy_type, a.policy_name))
