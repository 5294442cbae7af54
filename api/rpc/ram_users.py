"""RAM users and their AccessKeys over RPC: the /v1 users router's commands, in RAM's shapes.

Same ledger commands, same ``ram:<Action>`` on the same ARNs, same index reads as
``api/routers/users.py``. Differences are RAM's own: DeleteUser is refused while the user
has AccessKeys, groups or policies (``DeleteConflict.User.AccessKey|Group|Policy``, decided by
the ledger's ``delete_user(require_detached=True)``; /v1 deletes a user's keys with it); a RAM
user may omit ``UserName`` on the AccessKey actions to mean itself. Mandate keeps no mobile
phone, e-mail or comments for a user: a call setting one is refused
(``InvalidParameter.<Name>``) rather than silently dropped.
"""

from __future__ import annotations

from typing import Any

from mandate.api.reads import live_user, shown_user
from mandate.api.rpc.answers import listed, rpc_time
from mandate.api.rpc.errors import RpcError, missing_parameter, unsupported_parameter
from mandate.api.rpc.params import PagedParams, RpcParams
from mandate.api.rpc.ram_groups import group_body
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import user_arn
from mandate.projections.decisions.views import AccessKeyView, UserView

__all__ = ["user_body"]


def user_body(user: UserView, *, update_date: bool = True) -> dict[str, Any]:
    """RAM's ``User`` (no MobilePhone/Email/Comments: Mandate keeps none)."""
    body: dict[str, Any] = {"UserId": str(user.id), "UserName": user.user_name}
    if user.display_name is not None:
        body["DisplayName"] = user.display_name
    body["CreateDate"] = rpc_time(user.created_at)
    if update_date:
        body["UpdateDate"] = rpc_time(user.updated_at)
    return body


def _key_body(key: AccessKeyView) -> dict[str, Any]:
    return {
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": rpc_time(key.created_at),
    }


def _unkept(**given: str | None) -> None:
    """Refuse a user attribute Mandate does not keep, naming it."""
    for name, value in given.items():
        unsupported_parameter(name, value, f"Mandate keeps no {name} for a user")


# -- users -----------------------------------------------------------------------------
class CreateUserParams(RpcParams):
    user_name: str
    display_name: str | None = None
    mobile_phone: str | None = None
    email: str | None = None
    comments: str | None = None


@rpc_action("CreateUser", RAM, CreateUserParams)
def create_user(ctx: RpcContext, p: CreateUserParams) -> dict[str, Any]:
    _unkept(MobilePhone=p.mobile_phone, Email=p.email, Comments=p.comments)
    account_id = ctx.account_id
    ctx.manage("ram:CreateUser", user_arn(account_id, p.user_name)).write(
        lambda ledger: ledger.create_user(account_id, p.user_name, p.display_name)
    )
    return {
        "User": user_body(shown_user(ctx.runtime, ctx.account_id, p.user_name), update_date=False)
    }


class UserNameParams(RpcParams):
    user_name: str


@rpc_action("GetUser", RAM, UserNameParams)
def get_user(ctx: RpcContext, p: UserNameParams) -> dict[str, Any]:
    ctx.authorize_read("ram:GetUser", user_arn(ctx.account_id, p.user_name))
    return {"User": user_body(shown_user(ctx.runtime, ctx.account_id, p.user_name))}


class UpdateUserParams(RpcParams):
    user_name: str
    new_user_name: str | None = None
    new_display_name: str | None = None
    new_mobile_phone: str | None = None
    new_email: str | None = None
    new_comments: str | None = None


@rpc_action("UpdateUser", RAM, UpdateUserParams)
def update_user(ctx: RpcContext, p: UpdateUserParams) -> dict[str, Any]:
    _unkept(NewMobilePhone=p.new_mobile_phone, NewEmail=p.new_email, NewComments=p.new_comments)
    account_id = ctx.account_id
    ctx.manage("ram:UpdateUser", user_arn(account_id, p.user_name)).write(
        lambda ledger: ledger.update_user(
            account_id,
            p.user_name,
            new_user_name=p.new_user_name,
            new_display_name=p.new_display_name,
        )
    )
    return {
        "User": user_body(shown_user(ctx.runtime, ctx.account_id, p.new_user_name or p.user_name))
    }


@rpc_action("ListUsers", RAM, PagedParams)
def list_users(ctx: RpcContext, p: PagedParams) -> dict[str, Any]:
    ctx.authorize_read("ram:ListUsers")
    users = ctx.runtime.index.users_of(ctx.account_id)
    return p.page(users, lambda u: u.user_name, user_body, "Users", "User")


@rpc_action("DeleteUser", RAM, UserNameParams)
def delete_user(ctx: RpcContext, p: UserNameParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:DeleteUser", user_arn(account_id, p.user_name))
    # RAM's preconditions are the ledger's: decided on the user as the command loads it.
    management.write(
        lambda ledger: ledger.delete_user(account_id, p.user_name, require_detached=True)
    )
    return {}


@rpc_action("ListGroupsForUser", RAM, UserNameParams)
def list_groups_for_user(ctx: RpcContext, p: UserNameParams) -> dict[str, Any]:
    ctx.authorize_read("ram:ListGroupsForUser", user_arn(ctx.account_id, p.user_name))
    user = live_user(ctx.runtime, ctx.account_id, p.user_name)
    index = ctx.runtime.index
    groups = []
    for name in sorted(user.groups.values()):
        group = index.group_by_name(ctx.account_id, name)
        if group is None:  # deleted between the two reads
            continue
        groups.append(group_body(group, create_date=False))
    return listed("Groups", "Group", groups)


# -- access keys -----------------------------------------------------------------------
class KeyOwnerParams(RpcParams):
    user_name: str | None = None


def _owner(ctx: RpcContext, user_name: str | None) -> str:
    """``UserName``, or — when a RAM user omits it — the caller itself, as RAM does."""
    if user_name is not None:
        return user_name
    caller = ctx.caller
    if caller.kind == "user":
        return caller.arn.rsplit("/", 1)[1]
    raise missing_parameter("UserName")


@rpc_action("CreateAccessKey", RAM, KeyOwnerParams)
def create_access_key(ctx: RpcContext, p: KeyOwnerParams) -> dict[str, Any]:
    account_id = ctx.account_id
    user_name = _owner(ctx, p.user_name)
    issued = ctx.manage("ram:CreateAccessKey", user_arn(account_id, user_name)).write(
        lambda ledger: ledger.create_access_key(account_id, user_name)
    )
    key = ctx.runtime.index.access_key(issued.access_key_id)
    if key is None:  # applied before write() returned: only a deletion since can hide it
        raise RpcError(404, "EntityNotExist.User.AccessKey")
    return {"AccessKey": {**_key_body(key), "AccessKeySecret": issued.access_key_secret}}


class KeyParams(RpcParams):
    user_name: str | None = None
    user_access_key_id: str


class UpdateKeyParams(KeyParams):
    status: str


@rpc_action("UpdateAccessKey", RAM, UpdateKeyParams)
def update_access_key(ctx: RpcContext, p: UpdateKeyParams) -> dict[str, Any]:
    account_id = ctx.account_id
    user_name = _owner(ctx, p.user_name)
    ctx.manage("ram:UpdateAccessKey", user_arn(account_id, user_name)).write(
        lambda ledger: ledger.set_access_key_status(
            account_id, user_name, p.user_access_key_id, p.status
        )
    )
    return {}


@rpc_action("DeleteAccessKey", RAM, KeyParams)
def delete_access_key(ctx: RpcContext, p: KeyParams) -> dict[str, Any]:
    account_id = ctx.account_id
    user_name = _owner(ctx, p.user_name)
    ctx.manage("ram:DeleteAccessKey", user_arn(account_id, user_name)).write(
        lambda ledger: ledger.delete_access_key(account_id, user_name, p.user_access_key_id)
    )
    return {}


@rpc_action("ListAccessKeys", RAM, KeyOwnerParams)
def list_access_keys(ctx: RpcContext, p: KeyOwnerParams) -> dict[str, Any]:
    user_name = _owner(ctx, p.user_name)
    ctx.authorize_read("ram:ListAccessKeys", user_arn(ctx.account_id, user_name))
    user = live_user(ctx.runtime, ctx.account_id, user_name)
    keys = ctx.runtime.index.access_keys_of(user)
    return listed("AccessKeys", "AccessKey", [_key_body(k) for k in keys])
