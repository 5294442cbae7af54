"""RAM custom policies and their versions over RPC; System policies read from the catalogue.

The same ledger commands, ``ram:<Action>`` on the same policy ARN and index reads as
``api/routers/policies.py``. Differences are RAM's own: ListPolicies lists System and Custom
policies together (``PolicyType`` filters); DeletePolicy is refused while the policy is
attached (``DeleteConflict.Policy.User|Group|Role``, naming a holder's kind) or has another
version than its default (``DeleteConflict.Policy.Version``) unless ``CascadingDelete``
(the ledger's ``delete_policy(require_detached=True)`` decides, on the holders it loads);
CreatePolicyVersion takes ``RotateStrategy``. A System policy's reads are authorised on the
account's ARN for its name, as a custom one's. Mandate keeps no tags: ``Tag`` is refused
rather than dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from mandate.api.reads import live_policy
from mandate.api.rpc.answers import listed
from mandate.api.rpc.errors import unsupported_parameter
from mandate.api.rpc.params import JsonDocument, PagedParams, RpcBool, RpcParams
from mandate.api.rpc.policy_shapes import (
    AttachmentCounts,
    custom_policy_body,
    custom_version_body,
    system_policy_body,
    system_version_body,
)
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import RAM, RpcContext, rpc_action
from mandate.domain.common.arns import policy_arn
from mandate.domain.common.errors import NotFound
from mandate.domain.policy.system_policies import SYSTEM_POLICIES, SystemPolicy
from mandate.projections.decisions.views import PolicyView

__all__ = ["readable_policy", "unkept_tags"]

PolicyTypeName = Literal["System", "Custom"]
"""RAM's ``PolicyType``, exactly as it spells it."""

_ROTATE = "DeleteOldestNonDefaultVersionWhenLimitExceeded"


def readable_policy(
    ctx: RpcContext, action: str, policy_type: str, policy_name: str
) -> PolicyView | SystemPolicy:
    """Authorise the read ``action`` on the account's ARN for ``policy_name`` (a System
    policy's too, as a custom one's), then the policy of that type and name (a System one
    from the catalogue), or ``EntityNotExist.Policy``."""
    ctx.authorize_read(action, policy_arn(ctx.account_id, policy_name))
    if policy_type == "Custom":
        return live_policy(ctx.runtime, ctx.account_id, policy_name)
    system = SYSTEM_POLICIES.get(policy_name)
    if system is None:
        raise NotFound(
            f"System policy {policy_name!r} does not exist", code="EntityNotExist.Policy"
        )
    return system


def unkept_tags(tag: str | None) -> None:
    """Refuse ``Tag``: Mandate keeps no tags, and dropping them would answer a lie."""
    unsupported_parameter("Tag", tag, "Mandate keeps no tags")


# -- policies ------------------------------------------------------------------------------
class CreatePolicyParams(RpcParams):
    policy_name: str
    policy_document: JsonDocument
    description: str | None = None
    tag: str | None = None


@rpc_action("CreatePolicy", RAM, CreatePolicyParams)
def create_policy(ctx: RpcContext, p: CreatePolicyParams) -> dict[str, Any]:
    unkept_tags(p.tag)
    account_id = ctx.account_id
    management = ctx.manage("ram:CreatePolicy", policy_arn(account_id, p.policy_name))
    with recoded({}, document="policy_document"):
        management.write(
            lambda ledger: ledger.create_policy(
                account_id, p.policy_name, p.policy_document, p.description
            )
        )
    return {
        "Policy": custom_policy_body(
            live_policy(ctx.runtime, ctx.account_id, p.policy_name), update=False
        )
    }


class TypedPolicyParams(RpcParams):
    policy_name: str
    policy_type: PolicyTypeName


@rpc_action("GetPolicy", RAM, TypedPolicyParams)
def get_policy(ctx: RpcContext, p: TypedPolicyParams) -> dict[str, Any]:
    policy = readable_policy(ctx, "ram:GetPolicy", p.policy_type, p.policy_name)
    counts = AttachmentCounts(ctx)
    if isinstance(policy, SystemPolicy):
        body = system_policy_body(policy, attachments=counts.system(policy))
        version = system_version_body(policy)
    else:
        body = custom_policy_body(policy, attachments=counts.custom(policy))
        version = custom_version_body(policy, policy.versions[policy.default_version])
    body["PolicyDocument"] = version["PolicyDocument"]
    return {"Policy": body, "DefaultPolicyVersion": version}


class ListPoliciesParams(PagedParams):
    policy_type: PolicyTypeName | None = None
    tag: str | None = None


@rpc_action("ListPolicies", RAM, ListPoliciesParams)
def list_policies(ctx: RpcContext, p: ListPoliciesParams) -> dict[str, Any]:
    """System and Custom policies (Custom first), or one type; paged by a marker."""
    unkept_tags(p.tag)
    ctx.authorize_read("ram:ListPolicies")
    counts = AttachmentCounts(ctx)
    entries: list[tuple[str, PolicyView | SystemPolicy]] = []
    if p.policy_type in (None, "Custom"):
        entries += [
            (f"Custom:{c.policy_name}", c) for c in ctx.runtime.index.policies_of(ctx.account_id)
        ]
    if p.policy_type in (None, "System"):
        entries += [(f"System:{s.policy_name}", s) for s in SYSTEM_POLICIES.values()]

    def render(entry: tuple[str, PolicyView | SystemPolicy]) -> dict[str, Any]:
        policy = entry[1]
        if isinstance(policy, SystemPolicy):
            return system_policy_body(policy, attachments=counts.system(policy))
        return custom_policy_body(policy, attachments=counts.custom(policy))

    return p.page(entries, lambda e: e[0], render, "Policies", "Policy")


class DeletePolicyParams(RpcParams):
    policy_name: str
    cascading_delete: RpcBool = False


@rpc_action("DeletePolicy", RAM, DeletePolicyParams)
def delete_policy(ctx: RpcContext, p: DeletePolicyParams) -> dict[str, Any]:
    """Refused while attached or versioned, as RAM; ``CascadingDelete`` detaches it from every
    holder and deletes its versions with it (one write)."""
    account_id = ctx.account_id
    management = ctx.manage("ram:DeletePolicy", policy_arn(account_id, p.policy_name))
    cascade = p.cascading_delete
    management.write(
        lambda ledger: ledger.delete_policy(
            account_id, p.policy_name, detach=cascade, require_detached=not cascade
        )
    )
    return {}


# -- versions ------------------------------------------------------------------------------
class CreatePolicyVersionParams(RpcParams):
    policy_name: str
    policy_document: JsonDocument
    set_as_default: RpcBool = False
    rotate_strategy: Literal["None", "DeleteOldestNonDefaultVersionWhenLimitExceeded"] = "None"


@rpc_action("CreatePolicyVersion", RAM, CreatePolicyVersionParams)
def create_policy_version(ctx: RpcContext, p: CreatePolicyVersionParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:CreatePolicyVersion", policy_arn(account_id, p.policy_name))
    with recoded({}, document="policy_document"):
        created = management.write(
            lambda ledger: ledger.create_policy_version(
                account_id,
                p.policy_name,
                p.policy_document,
                set_as_default=p.set_as_default,
                rotate=p.rotate_strategy == _ROTATE,
            )
        )
    policy = live_policy(ctx.runtime, ctx.account_id, p.policy_name)
    version = policy.versions.get(created.version_id)
    if version is None:  # deleted between the write and this read
        raise NotFound("the policy version does not exist", code="EntityNotExist.Policy.Version")
    return {"PolicyVersion": custom_version_body(policy, version)}


class PolicyVersionParams(RpcParams):
    policy_name: str
    policy_type: PolicyTypeName
    version_id: str


@rpc_action("GetPolicyVersion", RAM, PolicyVersionParams)
def get_policy_version(ctx: RpcContext, p: PolicyVersionParams) -> dict[str, Any]:
    policy = readable_policy(ctx, "ram:GetPolicyVersion", p.policy_type, p.policy_name)
    if isinstance(policy, SystemPolicy):
        if p.version_id == policy.version:
            return {"PolicyVersion": system_version_body(policy)}
    elif p.version_id in policy.versions:
        return {"PolicyVersion": custom_version_body(policy, policy.versions[p.version_id])}
    raise NotFound(
        f"policy {p.policy_name!r} has no version {p.version_id!r}",
        code="EntityNotExist.Policy.Version",
    )


@rpc_action("ListPolicyVersions", RAM, TypedPolicyParams)
def list_policy_versions(ctx: RpcContext, p: TypedPolicyParams) -> dict[str, Any]:
    policy = readable_policy(ctx, "ram:ListPolicyVersions", p.policy_type, p.policy_name)
    if isinstance(policy, SystemPolicy):
        return listed("PolicyVersions", "PolicyVersion", [system_version_body(policy)])
    bodies = [custom_version_body(policy, v) for v in policy.versions_in_order()]
    return listed("PolicyVersions", "PolicyVersion", bodies)


class VersionParams(RpcParams):
    policy_name: str
    version_id: str


@rpc_action("DeletePolicyVersion", RAM, VersionParams)
def delete_policy_version(ctx: RpcContext, p: VersionParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:DeletePolicyVersion", policy_arn(account_id, p.policy_name))
    with recoded({"DeleteConflict.Policy.DefaultVersion": "DeleteConflict.Policy.Version.Default"}):
        management.write(
            lambda ledger: ledger.delete_policy_version(account_id, p.policy_name, p.version_id)
        )
    return {}


@rpc_action("SetDefaultPolicyVersion", RAM, VersionParams)
def set_default_policy_version(ctx: RpcContext, p: VersionParams) -> dict[str, Any]:
    account_id = ctx.account_id
    management = ctx.manage("ram:SetDefaultPolicyVersion", policy_arn(account_id, p.policy_name))
    management.write(
        lambda ledger: ledger.set_default_policy_version(account_id, p.policy_name, p.version_id)
    )
    return {}
