"""Control policies over RPC: ResourceManager 2020-03-31, the /v1 directory router's commands.

Same ledger commands (``create_control_policy``, ``attach_control_policy``,
``detach_control_policy``), the same read (the decision index's ``DirectoryView``) and the
same authorisation as ``api/routers/resource_directory.py``: ``resourcemanager:<Action>`` on
the policy's ARN (``…:controlpolicy/<name>``) or, to attach and detach, on the target's
(``…:folder/fd-…``, ``…:account/<id>``). A policy's ``PolicyId`` is its name: Mandate's
control policies are named, unique in their directory, and ``FullAliyunAccess`` is the
system policy every folder and member starts with.

The Control Policy feature (on when a Mandate directory is enabled): DisableControlPolicy
runs ``disable_control_policy`` (every control policy detached from every folder and member,
none deleted; attaching is refused 409 ``InvalidStatus.ControlPolicy.Disabled`` until
EnableControlPolicy, which runs ``enable_control_policy``: ``FullAliyunAccess`` on every
folder and member again, custom policies by hand); GetControlPolicyEnablementStatus answers
``Enabled`` or ``Disabled`` (never Pending: the change is done when answered).
UpdateControlPolicy runs ``update_control_policy`` (NewPolicyName — the PolicyId follows the
name, and the attachments with it —, NewPolicyDocument, NewDescription); DeleteControlPolicy
runs ``delete_control_policy``, 409 ``DeleteConflict.ControlPolicy.Attachment`` while attached
anywhere. ``Description`` is kept.
"""

from __future__ import annotations

from typing import Any, Final

from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import JsonDocument, NoParams, RpcParams
from mandate.api.rpc.recoding import recoded
from mandate.api.rpc.registry import RESOURCE_MANAGER, RpcContext, rpc_action
from mandate.api.rpc.rm_directory import (
    RM_CODES,
    PageParams,
    directory_of,
)
from mandate.domain.permissions.resource_directory import control_policy_arn, directory_arn
from mandate.domain.policy.control import FULL_ALIYUN_ACCESS, FULL_ALIYUN_ACCESS_DOCUMENT
from mandate.projections.decisions.directory_events import DirectoryView

__all__: list[str] = []

_EFFECT_SCOPE = "RAM"
"""What a control policy bounds here: RAM users, roles and sessions of the members."""


def _missing_policy() -> RpcError:
    return RpcError(404, "EntityNotExists.ControlPolicy", "The control policy does not exist.")


def _policy_body(directory: DirectoryView, name: str, *, document: bool = False) -> dict[str, Any]:
    system = name == FULL_ALIYUN_ACCESS
    if not system and name not in directory.documents:
        raise _missing_policy()
    count = sum(name in names for names in directory.attached.values())
    body: dict[str, Any] = {
        "PolicyId": name,
        "PolicyName": name,
        "PolicyType": "System" if system else "Custom",
        "EffectScope": _EFFECT_SCOPE,
        "AttachmentCount": str(count),
    }
    if name in directory.descriptions:
        body["Description"] = directory.descriptions[name]
    if document:
        body["PolicyDocument"] = (
            FULL_ALIYUN_ACCESS_DOCUMENT.canonical_json() if system else directory.documents[name]
        )
    return body


class CreateParams(RpcParams):
    policy_name: str
    policy_document: JsonDocument
    description: str | None = None
    effect_scope: str | None = None


@rpc_action("CreateControlPolicy", RESOURCE_MANAGER, CreateParams)
def create_control_policy(ctx: RpcContext, p: CreateParams) -> dict[str, Any]:
    account_id = ctx.account_id
    arn = control_policy_arn(account_id, p.policy_name)
    management = ctx.manage("resourcemanager:CreateControlPolicy", arn)
    if p.effect_scope not in (None, _EFFECT_SCOPE):
        raise RpcError(
            400,
            "InvalidParameter.EffectScope",
            "Only EffectScope=RAM is supported: control policies bound RAM identities here.",
        )
    with recoded(RM_CODES, document="document"):
        management.write(
            lambda ledger: ledger.create_control_policy(
                account_id, p.policy_name, p.policy_document, p.description
            )
        )
    return {"ControlPolicy": _policy_body(directory_of(ctx), p.policy_name)}


class PolicyParams(RpcParams):
    policy_id: str


@rpc_action("GetControlPolicy", RESOURCE_MANAGER, PolicyParams)
def get_control_policy(ctx: RpcContext, p: PolicyParams) -> dict[str, Any]:
    arn = control_policy_arn(ctx.account_id, p.policy_id)
    ctx.authorize_read("resourcemanager:GetControlPolicy", arn)
    return {"ControlPolicy": _policy_body(directory_of(ctx), p.policy_id, document=True)}


class ListParams(PageParams):
    policy_type: str | None = None


@rpc_action("ListControlPolicies", RESOURCE_MANAGER, ListParams)
def list_control_policies(ctx: RpcContext, p: ListParams) -> dict[str, Any]:
    """The system policy then the custom ones by name; ``PolicyType`` System|Custom filters."""
    ctx.authorize_read("resourcemanager:ListControlPolicies", directory_arn(ctx.account_id, "*"))
    if p.policy_type not in (None, "System", "Custom"):
        raise RpcError(400, "InvalidParameter.PolicyType", "PolicyType is System or Custom.")
    directory = directory_of(ctx)
    names = [FULL_ALIYUN_ACCESS, *sorted(directory.documents)]
    if p.policy_type is not None:
        system = p.policy_type == "System"
        names = [n for n in names if (n == FULL_ALIYUN_ACCESS) == system]
    return p.page(names, lambda n: _policy_body(directory, n), "ControlPolicies", "ControlPolicy")


class UpdateParams(PolicyParams):
    new_policy_name: str | None = None
    new_policy_document: JsonDocument | None = None
    new_description: str | None = None


_UPDATE_CODES: Final[dict[str, str]] = {
    **RM_CODES,
    "InvalidParameter.PolicyName": "InvalidParameter.NewPolicyName",
    "InvalidParameter.Description": "InvalidParameter.NewDescription",
}


@rpc_action("UpdateControlPolicy", RESOURCE_MANAGER, UpdateParams)
def update_control_policy(ctx: RpcContext, p: UpdateParams) -> dict[str, Any]:
    """The policy as it is now: its ``PolicyId`` is the new name when renamed."""
    account_id = ctx.account_id
    arn = control_policy_arn(account_id, p.policy_id)
    management = ctx.manage("resourcemanager:UpdateControlPolicy", arn)
    if p.new_policy_name is not None and p.new_policy_name != p.policy_id:
        # a rename is also the new name's update: a grant on ``team-*`` renames into no
        # name outside it
        new_arn = control_policy_arn(account_id, p.new_policy_name)
        ctx.manage("resourcemanager:UpdateControlPolicy", new_arn)
    with recoded(_UPDATE_CODES, document="document"):
        management.write(
            lambda ledger: ledger.update_control_policy(
                account_id,
                p.policy_id,
                new_policy_name=p.new_policy_name,
                document=p.new_policy_document,
                description=p.new_description,
            )
        )
    name = p.new_policy_name or p.policy_id
    return {"ControlPolicy": _policy_body(directory_of(ctx), name)}


@rpc_action("DeleteControlPolicy", RESOURCE_MANAGER, PolicyParams)
def delete_control_policy(ctx: RpcContext, p: PolicyParams) -> dict[str, Any]:
    """Refused 409 ``DeleteConflict.ControlPolicy.Attachment`` while attached anywhere."""
    account_id = ctx.account_id
    arn = control_policy_arn(account_id, p.policy_id)
    management = ctx.manage("resourcemanager:DeleteControlPolicy", arn)
    with recoded(RM_CODES):
        management.write(lambda ledger: ledger.delete_control_policy(account_id, p.policy_id))
    return {}


# -- attachments ---------------------------------------------------------------------------
class AttachParams(RpcParams):
    policy_id: str
    target_id: str


@rpc_action("AttachControlPolicy", RESOURCE_MANAGER, AttachParams)
def attach_control_policy(ctx: RpcContext, p: AttachParams) -> dict[str, Any]:
    account_id = ctx.account_id
    arn = directory_arn(account_id, p.target_id)
    management = ctx.manage("resourcemanager:AttachControlPolicy", arn)
    with recoded(RM_CODES):
        management.write(
            lambda ledger: ledger.attach_control_policy(account_id, p.policy_id, p.target_id)
        )
    return {}


@rpc_action("DetachControlPolicy", RESOURCE_MANAGER, AttachParams)
def detach_control_policy(ctx: RpcContext, p: AttachParams) -> dict[str, Any]:
    """Detaching ``FullAliyunAccess`` is how a node enters allow-list mode."""
    account_id = ctx.account_id
    arn = directory_arn(account_id, p.target_id)
    management = ctx.manage("resourcemanager:DetachControlPolicy", arn)
    with recoded(RM_CODES):
        management.write(
            lambda ledger: ledger.detach_control_policy(account_id, p.policy_id, p.target_id)
        )
    return {}


class TargetParams(RpcParams):
    target_id: str


@rpc_action("ListControlPolicyAttachmentsForTarget", RESOURCE_MANAGER, TargetParams)
def list_attachments_for_target(ctx: RpcContext, p: TargetParams) -> dict[str, Any]:
    arn = directory_arn(ctx.account_id, p.target_id)
    ctx.authorize_read("resourcemanager:ListControlPolicyAttachmentsForTarget", arn)
    directory = directory_of(ctx)
    names = directory.attached.get(p.target_id)
    if names is None:
        raise RpcError(404, "EntityNotExists.Target", "The target does not exist.")
    attachments = [
        {k: v for k, v in _policy_body(directory, n).items() if k != "AttachmentCount"}
        for n in names
    ]
    return {"ControlPolicyAttachments": {"ControlPolicyAttachment": attachments}}


class PolicyPageParams(PageParams):
    policy_id: str


@rpc_action("ListTargetAttachmentsForControlPolicy", RESOURCE_MANAGER, PolicyPageParams)
def list_targets_for_policy(ctx: RpcContext, p: PolicyPageParams) -> dict[str, Any]:
    arn = control_policy_arn(ctx.account_id, p.policy_id)
    ctx.authorize_read("resourcemanager:ListTargetAttachmentsForControlPolicy", arn)
    directory = directory_of(ctx)
    _policy_body(directory, p.policy_id)  # 404 for a policy that does not exist
    targets = sorted(t for t, names in directory.attached.items() if p.policy_id in names)

    def render(target: str) -> dict[str, Any]:
        folder = target in directory.parents
        return {
            "TargetId": target,
            "TargetName": directory.names.get(target, "") if folder else target,
            "TargetType": "Folder" if folder else "Account",
        }

    return p.page(targets, render, "TargetAttachments", "TargetAttachment")


# -- enablement ------------------------------------------------------------------------------
def _status(directory: DirectoryView) -> dict[str, Any]:
    return {"EnablementStatus": "Enabled" if directory.control_enabled else "Disabled"}


@rpc_action("GetControlPolicyEnablementStatus", RESOURCE_MANAGER, NoParams)
def get_enablement_status(ctx: RpcContext, p: NoParams) -> dict[str, Any]:
    action = "resourcemanager:GetControlPolicyEnablementStatus"
    ctx.authorize_read(action, directory_arn(ctx.account_id, "*"))
    return _status(directory_of(ctx))


@rpc_action("EnableControlPolicy", RESOURCE_MANAGER, NoParams)
def enable_control_policy(ctx: RpcContext, p: NoParams) -> dict[str, Any]:
    """``FullAliyunAccess`` on every folder and member again; already enabled, nothing is
    written. Done when answered, so ``Enabled`` (Alibaba's may answer ``PendingEnable``)."""
    account_id = ctx.account_id
    management = ctx.manage("resourcemanager:EnableControlPolicy", directory_arn(account_id, "*"))
    directory_of(ctx)
    with recoded(RM_CODES):
        management.write(lambda ledger: ledger.enable_control_policy(account_id))
    return _status(directory_of(ctx))


@rpc_action("DisableControlPolicy", RESOURCE_MANAGER, NoParams)
def disable_control_policy(ctx: RpcContext, p: NoParams) -> dict[str, Any]:
    """Every control policy detached, none attachable until enabled again; already disabled,
    nothing is written. ``Disabled`` when answered (Alibaba's may say ``PendingDisable``)."""
    account_id = ctx.account_id
    management = ctx.manage("resourcemanager:DisableControlPolicy", directory_arn(account_id, "*"))
    directory_of(ctx)
    with recoded(RM_CODES):
        management.write(lambda ledger: ledger.disable_control_policy(account_id))
    return _status(directory_of(ctx))
