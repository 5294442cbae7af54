"""Custom policies and their versions; the built-in System policies; attachments."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends

from mandate.api.deps import Caller, CallerDep, RuntimeDep, manage
from mandate.api.presenters import attachment_json, policy_json, version_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read, held_attachments, live_policy
from mandate.api.runtime import Runtime
from mandate.api.schemas import CreatePolicy, CreatePolicyVersion, SetDefaultVersion
from mandate.domain.common.arns import PrincipalKind, policy_arn, principal_arn
from mandate.domain.policy.system_policies import SYSTEM_POLICIES

router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["policies"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)
system_router = APIRouter(
    prefix="/v1/system-policies", tags=["policies"], responses=PROBLEM_RESPONSES
)

PrincipalSegment = Literal["users", "groups", "roles"]
"""The URL segment naming a principal collection; ``PrincipalKind.from_plural`` parses it."""


@system_router.get("")
async def list_system_policies() -> dict[str, Any]:
    """The built-in policies are public knowledge, like RAM's: no credentials needed."""
    return {
        "items": [
            {
                "policy_type": "System",
                "policy_name": p.policy_name,
                "description": p.description,
                "default_version": "v1",
                "policy_document": json.loads(p.document.canonical_json()),
            }
            for p in SYSTEM_POLICIES.values()
        ],
        "next_cursor": None,
    }


@router.post("/policies", status_code=201)
def create_policy(
    account_id: str, body: CreatePolicy, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:CreatePolicy", policy_arn(account_id, body.policy_name)
    ).write_position(
        lambda ledger: ledger.create_policy(
            account_id, body.policy_name, body.policy_document, body.description
        )
    )
    policy = live_policy(runtime, account_id, body.policy_name)
    return {**policy_json(policy, with_document=True), "position": position}


@router.get("/policies")
async def list_policies(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListPolicies")
    policies = runtime.index.policies_of(account_id)
    return paging.page(policies, lambda p: p.policy_name, policy_json)


@router.get("/policies/{policy_name}")
async def get_policy(
    account_id: str, policy_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = policy_arn(account_id, policy_name)
    authorize_read(runtime, caller, account_id, "ram:GetPolicy", arn)
    return policy_json(live_policy(runtime, account_id, policy_name), with_document=True)


@router.delete("/policies/{policy_name}")
def delete_policy(
    account_id: str,
    policy_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    detach: bool = False,
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:DeletePolicy", policy_arn(account_id, policy_name)
    ).write_position(lambda ledger: ledger.delete_policy(account_id, policy_name, detach=detach))
    return {"policy_name": policy_name, "deleted": True, "position": position}


@router.post("/policies/{policy_name}/versions", status_code=201)
def create_policy_version(
    account_id: str,
    policy_name: str,
    body: CreatePolicyVersion,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    created = manage(
        runtime, caller, account_id, "ram:CreatePolicyVersion", policy_arn(account_id, policy_name)
    ).write(
        lambda ledger: ledger.create_policy_version(
            account_id, policy_name, body.policy_document, set_as_default=body.set_as_default
        ),
    )
    policy = live_policy(runtime, account_id, policy_name)
    version = policy.versions[created.version_id]
    return {**version_json(policy, version), "position": created.position}


@router.get("/policies/{policy_name}/versions")
async def list_policy_versions(
    account_id: str, policy_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = policy_arn(account_id, policy_name)
    authorize_read(runtime, caller, account_id, "ram:ListPolicyVersions", arn)
    policy = live_policy(runtime, account_id, policy_name)
    versions = policy.versions_in_order()
    return {"items": [version_json(policy, v) for v in versions], "next_cursor": None}


@router.delete("/policies/{policy_name}/versions/{version_id}")
def delete_policy_version(
    account_id: str, policy_name: str, version_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:DeletePolicyVersion", policy_arn(account_id, policy_name)
    ).write_position(
        lambda ledger: ledger.delete_policy_version(account_id, policy_name, version_id)
    )
    return {
        "policy_name": policy_name,
        "version_id": version_id,
        "deleted": True,
        "position": position,
    }


@router.put("/policies/{policy_name}/default-version")
def set_default_version(
    account_id: str,
    policy_name: str,
    body: SetDefaultVersion,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    arn = policy_arn(account_id, policy_name)
    position = manage(
        runtime, caller, account_id, "ram:SetDefaultPolicyVersion", arn
    ).write_position(
        lambda ledger: ledger.set_default_policy_version(account_id, policy_name, body.version_id)
    )
    return {"policy_name": policy_name, "default_version": body.version_id, "position": position}


# -- attachments ---------------------------------------------------------------------------
class PolicyAttachment:
    """The attachment a PUT or DELETE of ``…/{kind}/{name}/policies/{policy_type}/{policy_name}``
    names (a dependency: the same path parameters, in the same order, as when each route
    declared them)."""

    def __init__(
        self, account_id: str, kind: PrincipalSegment, name: str, policy_type: str, policy_name: str
    ) -> None:
        self.account_id = account_id
        self.kind = PrincipalKind.from_plural(kind)
        self.name = name
        self.policy_type = policy_type
        self.policy_name = policy_name

    def set(self, runtime: Runtime, caller: Caller, *, attached: bool) -> dict[str, Any]:
        """Attach (``attached``) or detach the policy: RAM's ``ram:AttachPolicyTo<Noun>`` /
        ``ram:DetachPolicyFrom<Noun>`` on the principal's ARN deciding."""
        account_id, kind, name = self.account_id, self.kind, self.name
        policy_type, policy_name = self.policy_type, self.policy_name
        action = (
            f"ram:AttachPolicyTo{kind.noun}" if attached else f"ram:DetachPolicyFrom{kind.noun}"
        )
        position = manage(
            runtime, caller, account_id, action, principal_arn(account_id, kind, name)
        ).write_position(
            lambda ledger: (ledger.attach_policy if attached else ledger.detach_policy)(
                account_id, kind, name, policy_type, policy_name
            )
        )
        return {
            "policy_type": policy_type,
            "policy_name": policy_name,
            "attached": attached,
            "position": position,
        }


AttachmentDep = Annotated[PolicyAttachment, Depends()]


@router.put("/{kind}/{name}/policies/{policy_type}/{policy_name}")
def attach_policy(target: AttachmentDep, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    return target.set(runtime, caller, attached=True)


@router.delete("/{kind}/{name}/policies/{policy_type}/{policy_name}")
def detach_policy(target: AttachmentDep, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    return target.set(runtime, caller, attached=False)


@router.get("/{kind}/{name}/policies")
async def list_attached_policies(
    account_id: str, kind: PrincipalSegment, name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal = PrincipalKind.from_plural(kind)
    arn = principal_arn(account_id, principal, name)
    authorize_read(runtime, caller, account_id, f"ram:ListPoliciesFor{principal.noun}", arn)
    attachments = held_attachments(runtime, account_id, principal, name)
    return {
        "items": [attachment_json(a, runtime.index) for a in attachments],
        "next_cursor": None,
    }
