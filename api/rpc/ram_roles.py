"""RAM roles over RPC: create, read, update (trust included), list, delete.

The same ledger commands, ``ram:<Action>`` on the role's ARN and index reads as
``api/routers/roles.py``. RAM's own: DeleteRole is refused while policies are attached
(``DeleteConflict.Role.Policy``: the ledger's ``delete_role(require_detached=True)``; /v1 may
detach them); UpdateRole's
``New…`` parameters; a malformed trust policy is ``MalformedPolicyDocument``. Mandate keeps
no console-login flag for a role: ``AllowConsoleLogin``/``NewAllowConsoleLogin`` are refused
rather than dropped. CreateRole's ``Tag`` tags the role in the same save (``ram_tags``), and
needs ``ram:TagResources`` on it besides ``ram:CreateRole``.
"""

from __future__ import annotations

from typing import Any

from mandate.api.reads import live_role
from mandate.api.rpc.errors import unsupported_parameter
from mandate.api.rpc.params import JsonDocument, PagedParams, RpcBool, RpcInt, RpcParams
from mandate.api.rpc.policy_shapes import role_body
from mandate.api.rpc.ram_tags import json_tags
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import role_arn
from mandate.projections.decisions.views import RoleView

_TRUST = "assume_role_policy_document"
"""The engine's name of the trust policy field (its faults are MalformedPolicyDocument)."""


def _no_console_login(name: str, value: bool | None) -> None:
    unsupported_parameter(name, value, "Mandate roles have no console login")


class CreateRoleParams(RpcParams):
    role_name: str
    assume_role_policy_document: JsonDocument
    description: str | None = None
    max_session_duration: RpcInt | None = None
    allow_console_login: RpcBool | None = None
    tag: str | None = None


@rpc_action("CreateRole", RAM, CreateRoleParams)
def create_role(ctx: RpcContext, p: CreateRoleParams) -> dict[str, Any]:
    tags = json_tags(p.tag)
    _no_console_login("AllowConsoleLogin", p.allow_console_login)
    account_id = ctx.account_id
    if tags is not None:  # tagging at creation is tagging: the caller needs both actions
        ctx.manage("ram:TagResources", role_arn(account_id, p.role_name))
    management = ctx.manage("ram:CreateRole", role_arn(account_id, p.role_name))
    with recoded({}, document=_TRUST):
        management.write(
            lambda ledger: ledger.create_role(
                account_id,
                p.role_name,
                p.assume_role_policy_document,
                max_session_duration=p.max_session_duration,
                description=p.description,
                tags=tags,
            )
        )
    return {
        "Role": role_body(live_role(ctx.runtime, ctx.account_id, p.role_name), ctx, update=False)
    }


class RoleNameParams(RpcParams):
    role_name: str


@rpc_action("GetRole", RAM, RoleNameParams)
def get_role(ctx: RpcContext, p: RoleNameParams) -> dict[str, Any]:
    ctx.authorize_read("ram:GetRole", role_arn(ctx.account_id, p.role_name))
    return {"Role": role_body(live_role(ctx.runtime, ctx.account_id, p.role_name), ctx)}


class UpdateRoleParams(RpcParams):
    role_name: str
    new_assume_role_policy_document: JsonDocument | None = None
    new_description: str | None = None
    new_max_session_duration: RpcInt | None = None
    new_allow_console_login: RpcBool | None = None


@rpc_action("UpdateRole", RAM, UpdateRoleParams)
def update_role(ctx: RpcContext, p: UpdateRoleParams) -> dict[str, Any]:
    _no_console_login("NewAllowConsoleLogin", p.new_allow_console_login)
    account_id = ctx.account_id
    management = ctx.manage("ram:UpdateRole", role_arn(account_id, p.role_name))
    with recoded({}, document=_TRUST):
        management.write(
            lambda ledger: ledger.update_role(
                account_id,
                p.role_name,
                description=p.new_description,
                max_session_duration=p.new_max_session_duration,
                assume_role_policy_document=p.new_assume_role_policy_document,
            )
        )
    return {"Role": role_body(live_role(ctx.runtime, ctx.account_id, p.role_name), ctx)}


class ListRolesParams(PagedParams):
    tag: str | None = None


@rpc_action("ListRoles", RAM, ListRolesParams)
def list_roles(ctx: RpcContext, p: ListRolesParams) -> dict[str, Any]:
    """``Tag`` (a JSON array of ``{Key, Value}``) keeps the roles holding every tag named (a
    tag without a value: any value); each role lists its ``Tags``."""
    wanted = json_tags(p.tag) or {}
    ctx.authorize_read("ram:ListRoles")
    roles = [
        role
        for role in ctx.runtime.index.roles_of(ctx.account_id)
        if all(k in role.tags and v in ("", role.tags[k]) for k, v in wanted.items())
    ]
    return p.page(roles, lambda r: r.role_name, lambda r: _listed_role(r, ctx), "Roles", "Role")


def _listed_role(role: RoleView, ctx: RpcContext) -> dict[str, Any]:
    """ListRoles' ``Role``: without its trust, with its ``Tags`` (RAM's SDK model reads
    ``Tags.Tag[{TagKey, TagValue}]`` there; absent for a role without tags)."""
    body = role_body(role, ctx, trust=False)
    if role.tags:
        tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(role.tags.items())]
        body["Tags"] = {"Tag": tags}
    return body


@rpc_action("DeleteRole", RAM, RoleNameParams)
def delete_role(ctx: RpcContext, p: RoleNameParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:DeleteRole", role_arn(account_id, p.role_name))
    management.write(
        lambda ledger: ledger.delete_role(account_id, p.role_name, require_detached=True)
    )
    return {}
