"""Attaching policies to users, groups and roles over RPC, and who holds a policy.

The same ``attach_policy``/``detach_policy`` commands and ``ram:AttachPolicyTo<Noun>`` /
``ram:DetachPolicyFrom<Noun>`` / ``ram:ListPoliciesFor<Noun>`` on the principal's ARN as
``api/routers/policies.py``; the three kinds are registered from one definition each way.
RAM's codes name the kind (``EntityAlreadyExists.User.Policy``, ``EntityNotExist.Role.Policy``;
``recoding``). Mandate attaches at the account only: ``ResourceGroupId`` is refused rather
than ignored. The index keeps no attachment time, so entries carry no ``AttachDate``.
"""

from __future__ import annotations

from typing import Any

from mandate.api.reads import held_attachments
from mandate.api.rpc.answers import listed
from mandate.api.rpc.errors import unsupported_parameter
from mandate.api.rpc.params import RpcParams
from mandate.api.rpc.policy_shapes import Holder, attached_body, holds
from mandate.api.rpc.ram_policies import PolicyTypeName, TypedPolicyParams, readable_policy
from mandate.api.rpc.recoding import attachment_codes, recoded
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import PrincipalKind, principal_arn, role_arn
from mandate.domain.policy.system_policies import SystemPolicy


class _Attachment(RpcParams):
    policy_type: PolicyTypeName
    policy_name: str
    resource_group_id: str | None = None


class UserAttachmentParams(_Attachment):
    user_name: str


class GroupAttachmentParams(_Attachment):
    group_name: str


class RoleAttachmentParams(_Attachment):
    role_name: str


class UserParams(RpcParams):
    user_name: str


class GroupParams(RpcParams):
    group_name: str


class RoleParams(RpcParams):
    role_name: str


_PARAMS: dict[PrincipalKind, tuple[type[_Attachment], type[RpcParams]]] = {
    PrincipalKind.USER: (UserAttachmentParams, UserParams),
    PrincipalKind.GROUP: (GroupAttachmentParams, GroupParams),
    PrincipalKind.ROLE: (RoleAttachmentParams, RoleParams),
}


def _principal_name(p: RpcParams, kind: PrincipalKind) -> str:
    name: str = getattr(p, f"{kind.value}_name")
    return name


def _set_attachment(
    ctx: RpcContext, p: _Attachment, kind: PrincipalKind, *, attached: bool
) -> dict[str, Any]:
    unsupported_parameter(
        "ResourceGroupId", p.resource_group_id, "Mandate attaches policies to the whole account"
    )
    account_id = ctx.account_id
    name = _principal_name(p, kind)
    noun = kind.noun
    action = f"ram:AttachPolicyTo{noun}" if attached else f"ram:DetachPolicyFrom{noun}"
    management = ctx.manage(action, principal_arn(account_id, kind, name))
    with recoded(attachment_codes(kind)):
        management.write(
            lambda ledger: (ledger.attach_policy if attached else ledger.detach_policy)(
                account_id, kind, name, p.policy_type, p.policy_name
            )
        )
    return {}


def _register(kind: PrincipalKind) -> None:
    """AttachPolicyTo<Noun>, DetachPolicyFrom<Noun> and ListPoliciesFor<Noun> for ``kind``."""
    noun = kind.noun
    attachment_params, holder_params = _PARAMS[kind]

    def attach(ctx: RpcContext, p: _Attachment) -> dict[str, Any]:
        return _set_attachment(ctx, p, kind, attached=True)

    def detach(ctx: RpcContext, p: _Attachment) -> dict[str, Any]:
        return _set_attachment(ctx, p, kind, attached=False)

    def list_for(ctx: RpcContext, p: RpcParams) -> dict[str, Any]:
        name = _principal_name(p, kind)
        ctx.authorize_read(f"ram:ListPoliciesFor{noun}", principal_arn(ctx.account_id, kind, name))
        attachments = held_attachments(ctx.runtime, ctx.account_id, kind, name)
        return listed("Policies", "Policy", [attached_body(a, ctx) for a in attachments])

    rpc_action(f"AttachPolicyTo{noun}", RAM, attachment_params)(attach)
    rpc_action(f"DetachPolicyFrom{noun}", RAM, attachment_params)(detach)
    rpc_action(f"ListPoliciesFor{noun}", RAM, holder_params)(list_for)


for _kind in PrincipalKind:
    _register(_kind)


@rpc_action("ListEntitiesForPolicy", RAM, TypedPolicyParams)
def list_entities_for_policy(ctx: RpcContext, p: TypedPolicyParams) -> dict[str, Any]:
    """The account's users, groups and roles the policy is attached to, each sorted by name."""
    found = readable_policy(ctx, "ram:ListEntitiesForPolicy", p.policy_type, p.policy_name)
    policy = None if isinstance(found, SystemPolicy) else found
    index = ctx.runtime.index
    account_id = ctx.account_id

    def held(holder: Holder) -> bool:
        return holds(holder, p.policy_type, p.policy_name, policy)

    users = []
    for user in filter(held, index.users_of(account_id)):
        entry: dict[str, Any] = {"UserId": str(user.id), "UserName": user.user_name}
        if user.display_name is not None:
            entry["DisplayName"] = user.display_name
        users.append(entry)
    groups = []
    for group in filter(held, index.groups_of(account_id)):
        entry = {"GroupName": group.group_name}
        if group.comments is not None:
            entry["Comments"] = group.comments
        groups.append(entry)
    roles = []
    for role in filter(held, index.roles_of(account_id)):
        entry = {
            "RoleId": str(role.id),
            "RoleName": role.role_name,
            "Arn": role_arn(account_id, role.role_name),
        }
        if role.description is not None:
            entry["Description"] = role.description
        roles.append(entry)
    return {
        **listed("Users", "User", users),
        **listed("Groups", "Group", groups),
        **listed("Roles", "Role", roles),
    }
