"""RAM groups and their members over RPC: the /v1 groups router's commands, in RAM's shapes.

Same ledger commands, same ``ram:<Action>`` on the same group ARNs, same index reads as
``api/routers/groups.py``. DeleteGroup keeps RAM's preconditions (``DeleteConflict.Group.User``
while it has members, then ``.Group.Policy`` while policies are attached), decided by the
ledger's ``delete_group(require_detached=True)``; /v1 may detach them. UpdateGroup is not
served: the ledger cannot rename a group or change its comments yet. Mandate does not record
when a user joined a group, so ``JoinDate`` is left out of the membership listings.
"""

from __future__ import annotations

from typing import Any

from mandate.api.reads import live_group
from mandate.api.rpc.answers import rpc_time
from mandate.api.rpc.params import PagedParams, RpcParams
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import group_arn
from mandate.projections.decisions.views import GroupView, UserView

__all__ = ["group_body"]


def group_body(group: GroupView, *, create_date: bool = True) -> dict[str, Any]:
    """RAM's ``Group`` (no UpdateDate: a group never changes once made; ListGroupsForUser's
    entries carry no CreateDate either)."""
    body: dict[str, Any] = {"GroupId": str(group.id), "GroupName": group.group_name}
    if group.comments is not None:
        body["Comments"] = group.comments
    if create_date:
        body["CreateDate"] = rpc_time(group.created_at)
    return body


class CreateGroupParams(RpcParams):
    group_name: str
    comments: str | None = None


@rpc_action("CreateGroup", RAM, CreateGroupParams)
def create_group(ctx: RpcContext, p: CreateGroupParams) -> dict[str, Any]:
    account_id = ctx.account_id
    ctx.manage("ram:CreateGroup", group_arn(account_id, p.group_name)).write(
        lambda ledger: ledger.create_group(account_id, p.group_name, p.comments)
    )
    return {"Group": group_body(live_group(ctx.runtime, ctx.account_id, p.group_name))}


class GroupNameParams(RpcParams):
    group_name: str


@rpc_action("GetGroup", RAM, GroupNameParams)
def get_group(ctx: RpcContext, p: GroupNameParams) -> dict[str, Any]:
    ctx.authorize_read("ram:GetGroup", group_arn(ctx.account_id, p.group_name))
    return {"Group": group_body(live_group(ctx.runtime, ctx.account_id, p.group_name))}


@rpc_action("ListGroups", RAM, PagedParams)
def list_groups(ctx: RpcContext, p: PagedParams) -> dict[str, Any]:
    ctx.authorize_read("ram:ListGroups")
    groups = ctx.runtime.index.groups_of(ctx.account_id)
    return p.page(groups, lambda g: g.group_name, group_body, "Groups", "Group")


@rpc_action("DeleteGroup", RAM, GroupNameParams)
def delete_group(ctx: RpcContext, p: GroupNameParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:DeleteGroup", group_arn(account_id, p.group_name))
    # RAM's preconditions are the ledger's: decided on the group as the command loads it.
    management.write(
        lambda ledger: ledger.delete_group(account_id, p.group_name, require_detached=True)
    )
    return {}


class MembershipParams(RpcParams):
    group_name: str
    user_name: str


@rpc_action("AddUserToGroup", RAM, MembershipParams)
def add_user_to_group(ctx: RpcContext, p: MembershipParams) -> dict[str, Any]:
    account_id = ctx.account_id
    ctx.manage("ram:AddUserToGroup", group_arn(account_id, p.group_name)).write(
        lambda ledger: ledger.add_user_to_group(account_id, p.group_name, p.user_name)
    )
    return {}


@rpc_action("RemoveUserFromGroup", RAM, MembershipParams)
def remove_user_from_group(ctx: RpcContext, p: MembershipParams) -> dict[str, Any]:
    account_id = ctx.account_id
    ctx.manage("ram:RemoveUserFromGroup", group_arn(account_id, p.group_name)).write(
        lambda ledger: ledger.remove_user_from_group(account_id, p.group_name, p.user_name)
    )
    return {}


class ListUsersForGroupParams(PagedParams):
    group_name: str


def _member_body(user: UserView) -> dict[str, Any]:
    body: dict[str, Any] = {"UserName": user.user_name}
    if user.display_name is not None:
        body["DisplayName"] = user.display_name
    return body


@rpc_action("ListUsersForGroup", RAM, ListUsersForGroupParams)
def list_users_for_group(ctx: RpcContext, p: ListUsersForGroupParams) -> dict[str, Any]:
    ctx.authorize_read("ram:ListUsersForGroup", group_arn(ctx.account_id, p.group_name))
    group = live_group(ctx.runtime, ctx.account_id, p.group_name)
    index = ctx.runtime.index
    found = [u for u in (index.user(uid) for uid in group.member_ids) if u is not None]
    members = index.shown(found)
    return p.page(members, lambda u: u.user_name, _member_body, "Users", "User")
