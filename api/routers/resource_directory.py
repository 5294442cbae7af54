"""Resource Directory on ``/v1``: a management account's folders, members and control policies.

Every route is under ``/v1/accounts/{account_id}/resource-directory`` where ``account_id`` is
the management account, and is authorised as Resource Management's own action (RAM code
``resourcemanager``: ``resourcemanager:CreateFolder``, ``…:MoveAccount``,
``…:CreateControlPolicy``, ``…:AttachControlPolicy``…) on the node's ARN in that account, so
only the management account's root, or a RAM user of it granted the action, can change its
directory — never a member. A folder is renamed (PATCH, UpdateFolder) or, empty, deleted
(DELETE, DeleteFolder); a custom control policy is updated (PATCH, UpdateControlPolicy: a new
name, document or description) or, attached nowhere, deleted (DELETE, DeleteControlPolicy).
``PUT …/control-policy-status`` is Enable/DisableControlPolicy. Refusals are problem+json
and write nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import authorize_read
from mandate.domain.common.errors import NotFound
from mandate.domain.permissions.resource_directory import control_policy_arn, directory_arn
from mandate.projections.decisions.directory_events import DirectoryView

router = APIRouter(
    prefix="/v1/accounts/{account_id}/resource-directory",
    tags=["resource-directory"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateFolder(_Body):
    parent_folder_id: str = Field(min_length=1, max_length=64)
    folder_name: str = Field(min_length=1, max_length=24)


class UpdateFolder(_Body):
    folder_name: str = Field(min_length=1, max_length=24)


class MoveAccount(_Body):
    folder_id: str = Field(min_length=1, max_length=64)


class CreateControlPolicy(_Body):
    policy_name: str = Field(min_length=1, max_length=128)
    policy_document: dict[str, Any] | str
    description: str | None = Field(default=None, min_length=1, max_length=1024)


class UpdateControlPolicy(_Body):
    """At least one of the three (UpdateControlPolicy's NewPolicyName, NewPolicyDocument,
    NewDescription); a new name carries the policy's attachments with it."""

    new_policy_name: str | None = Field(default=None, min_length=1, max_length=128)
    policy_document: dict[str, Any] | str | None = None
    description: str | None = Field(default=None, min_length=1, max_length=1024)


def _view(runtime: RuntimeDep, account_id: str) -> DirectoryView:
    directory = runtime.index.resource_directory(account_id)
    if directory is None:
        raise NotFound(
            f"account {account_id} has no resource directory",
            code="EntityNotExist.ResourceDirectory",
        )
    return directory


def _directory_json(directory: DirectoryView) -> dict[str, Any]:
    root = next(f for f, parent in directory.parents.items() if parent is None)
    return {
        "management_account_id": directory.management_account,
        "root_folder_id": root,
        "folders": [
            {
                "folder_id": folder,
                "parent_folder_id": parent,
                "folder_name": directory.names.get(folder),
                "control_policies": list(directory.attached.get(folder, ())),
            }
            for folder, parent in directory.parents.items()
        ],
        "accounts": [
            {
                "account_id": account,
                "folder_id": folder,
                "control_policies": list(directory.attached.get(account, ())),
            }
            for account, folder in sorted(directory.members.items())
        ],
        "control_policies": sorted(directory.documents),
        "control_policy_descriptions": dict(sorted(directory.descriptions.items())),
        "control_policy_status": "Enabled" if directory.control_enabled else "Disabled",
    }


@router.post("", status_code=201)
def enable_resource_directory(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Make the account a management account: a directory with its root folder."""
    arn = directory_arn(account_id, "*")
    node = manage(runtime, caller, account_id, "resourcemanager:EnableResourceDirectory", arn)
    made = node.write(lambda ledger: ledger.enable_resource_directory(account_id))
    return {"root_folder_id": made.node_id, "position": made.position}


class ControlPolicyStatus(_Body):
    """Enable/DisableControlPolicy: the Control Policy feature on or off."""

    status: Literal["Enabled", "Disabled"]


@router.put("/control-policy-status")
def set_control_policy_status(
    account_id: str, body: ControlPolicyStatus, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Disabled: every control policy detached (none deleted), attaching refused, no member
    bounded; Enabled: ``FullAliyunAccess`` on every folder and member again. Already so:
    nothing written (``position`` is where the log stands)."""
    enable = body.status == "Enabled"
    action = "EnableControlPolicy" if enable else "DisableControlPolicy"
    arn = directory_arn(account_id, "*")
    written = manage(runtime, caller, account_id, f"resourcemanager:{action}", arn).write(
        lambda ledger: (
            ledger.enable_control_policy(account_id)
            if enable
            else ledger.disable_control_policy(account_id)
        )
    )
    return {"control_policy_status": body.status, "position": written.position}


@router.get("")
async def get_resource_directory(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The tree: folders, members, and the control policies attached to each."""
    arn = directory_arn(account_id, "*")
    authorize_read(runtime, caller, account_id, "resourcemanager:GetResourceDirectory", arn)
    return _directory_json(_view(runtime, account_id))


@router.post("/folders", status_code=201)
def create_folder(
    account_id: str, body: CreateFolder, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = directory_arn(account_id, body.parent_folder_id)
    made = manage(runtime, caller, account_id, "resourcemanager:CreateFolder", arn).write(
        lambda ledger: ledger.create_folder(account_id, body.parent_folder_id, body.folder_name)
    )
    return {
        "folder_id": made.node_id,
        "parent_folder_id": body.parent_folder_id,
        "folder_name": body.folder_name,
        "position": made.position,
    }


@router.patch("/folders/{folder_id}")
def update_folder(
    account_id: str, folder_id: str, body: UpdateFolder, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Rename a folder (not the root folder): names stay unique in the directory."""
    arn = directory_arn(account_id, folder_id)
    position = manage(
        runtime, caller, account_id, "resourcemanager:UpdateFolder", arn
    ).write_position(lambda ledger: ledger.rename_folder(account_id, folder_id, body.folder_name))
    return {"folder_id": folder_id, "folder_name": body.folder_name, "position": position}


@router.delete("/folders/{folder_id}")
def delete_folder(
    account_id: str, folder_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Delete an empty folder: 409 ``DeleteConflict.Folder.SubFolder`` or
    ``DeleteConflict.Folder.Account`` while a folder or a member is in it."""
    arn = directory_arn(account_id, folder_id)
    position = manage(
        runtime, caller, account_id, "resourcemanager:DeleteFolder", arn
    ).write_position(lambda ledger: ledger.delete_folder(account_id, folder_id))
    return {"folder_id": folder_id, "deleted": True, "position": position}


@router.put("/accounts/{member_account_id}")
def move_account(
    account_id: str,
    member_account_id: str,
    body: MoveAccount,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Move a member to a folder. An account joins only by accepting an invitation
    (``directory_handshakes``); any other account is 404 ``EntityNotExist.Account`` alike."""
    arn = directory_arn(account_id, member_account_id)
    position = manage(runtime, caller, account_id, "resourcemanager:MoveAccount", arn)
    written = position.write_position(
        lambda ledger: ledger.move_account(account_id, member_account_id, body.folder_id)
    )
    return {"account_id": member_account_id, "folder_id": body.folder_id, "position": written}


@router.delete("/accounts/{member_account_id}")
def remove_cloud_account(
    account_id: str, member_account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """RemoveCloudAccount: the member leaves, bounded by no control policy from then on."""
    arn = directory_arn(account_id, member_account_id)
    position = manage(
        runtime, caller, account_id, "resourcemanager:RemoveCloudAccount", arn
    ).write_position(lambda ledger: ledger.remove_cloud_account(account_id, member_account_id))
    return {"account_id": member_account_id, "removed": True, "position": position}


@router.post("/control-policies", status_code=201)
def create_control_policy(
    account_id: str, body: CreateControlPolicy, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = control_policy_arn(account_id, body.policy_name)
    position = manage(
        runtime, caller, account_id, "resourcemanager:CreateControlPolicy", arn
    ).write_position(
        lambda ledger: ledger.create_control_policy(
            account_id, body.policy_name, body.policy_document, body.description
        )
    )
    return {"policy_name": body.policy_name, "position": position}


@router.patch("/control-policies/{policy_name}")
def update_control_policy(
    account_id: str,
    policy_name: str,
    body: UpdateControlPolicy,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """A new name, document or description; the new document bounds from its event on. A
    new name is authorised too: the same action on the new name's ARN."""
    action = "resourcemanager:UpdateControlPolicy"
    arn = control_policy_arn(account_id, policy_name)
    management = manage(runtime, caller, account_id, action, arn)
    new_name = body.new_policy_name
    if new_name is not None and new_name != policy_name:
        manage(runtime, caller, account_id, action, control_policy_arn(account_id, new_name))
    position = management.write_position(
        lambda ledger: ledger.update_control_policy(
            account_id,
            policy_name,
            new_policy_name=body.new_policy_name,
            document=body.policy_document,
            description=body.description,
        )
    )
    return {"policy_name": body.new_policy_name or policy_name, "position": position}


@router.delete("/control-policies/{policy_name}")
def delete_control_policy(
    account_id: str, policy_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Delete a custom control policy attached nowhere (409
    ``DeleteConflict.ControlPolicy.Attachment`` naming where it still is)."""
    arn = control_policy_arn(account_id, policy_name)
    position = manage(
        runtime, caller, account_id, "resourcemanager:DeleteControlPolicy", arn
    ).write_position(lambda ledger: ledger.delete_control_policy(account_id, policy_name))
    return {"policy_name": policy_name, "deleted": True, "position": position}


@router.put("/attachments/{target_id}/{policy_name}")
def attach_control_policy(
    account_id: str, target_id: str, policy_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Attach a control policy (or ``FullAliyunAccess``) to a folder or a member."""
    arn = directory_arn(account_id, target_id)
    position = manage(
        runtime, caller, account_id, "resourcemanager:AttachControlPolicy", arn
    ).write_position(
        lambda ledger: ledger.attach_control_policy(account_id, policy_name, target_id)
    )
    return {"target_id": target_id, "policy_name": policy_name, "position": position}


@router.delete("/attachments/{target_id}/{policy_name}")
def detach_control_policy(
    account_id: str, target_id: str, policy_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Detach it: detaching ``FullAliyunAccess`` is how a node enters allow-list mode."""
    arn = directory_arn(account_id, target_id)
    position = manage(
        runtime, caller, account_id, "resourcemanager:DetachControlPolicy", arn
    ).write_position(
        lambda ledger: ledger.detach_control_policy(account_id, policy_name, target_id)
    )
    return {
        "target_id": target_id,
        "policy_name": policy_name,
        "detached": True,
        "position": position,
    }
