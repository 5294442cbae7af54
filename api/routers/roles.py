"""RAM roles: trust policy, session limit, and revoking the sessions issued for them.

Attaching and detaching a role's policies goes through the shared attachment routes
(``PUT/DELETE/GET …/roles/{role_name}/policies…`` in ``policies.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.presenters import role_json, session_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read, live_role
from mandate.api.routers import tag_routes
from mandate.api.runtime import Runtime
from mandate.api.schemas import (
    CreateRole,
    RevokeRoleSessions,
    SetTrustPolicy,
    TagResource,
    UpdateRole,
)
from mandate.domain.common.arns import role_arn

router = APIRouter(
    prefix="/v1/accounts/{account_id}/roles",
    tags=["roles"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


def _role_after(runtime: Runtime, account_id: str, role_name: str, position: int) -> dict[str, Any]:
    """The role as the index has it once the write at ``position`` is applied, and that position."""
    role = live_role(runtime, account_id, role_name)
    return {**role_json(role, runtime.index), "position": position}


@router.post("", status_code=201)
def create_role(
    account_id: str, body: CreateRole, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = role_arn(account_id, body.role_name)
    if body.tags is not None:  # tagging at creation is tagging: the caller needs both actions
        manage(runtime, caller, account_id, "ram:TagResources", arn)
    position = manage(runtime, caller, account_id, "ram:CreateRole", arn).write_position(
        lambda ledger: ledger.create_role(
            account_id,
            body.role_name,
            body.assume_role_policy_document,
            max_session_duration=body.max_session_duration,
            description=body.description,
            tags=body.tags,
        )
    )
    return _role_after(runtime, account_id, body.role_name, position)


@router.get("")
async def list_roles(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListRoles")
    roles = runtime.index.roles_of(account_id)
    return paging.page(roles, lambda r: r.role_name, lambda r: role_json(r, runtime.index))


@router.get("/{role_name}")
async def get_role(
    account_id: str, role_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:GetRole", role_arn(account_id, role_name))
    return role_json(live_role(runtime, account_id, role_name), runtime.index)


@router.patch("/{role_name}")
def update_role(
    account_id: str, role_name: str, body: UpdateRole, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:UpdateRole", role_arn(account_id, role_name)
    ).write_position(
        lambda ledger: ledger.update_role(
            account_id,
            role_name,
            description=body.description,
            max_session_duration=body.max_session_duration,
            assume_role_policy_document=body.assume_role_policy_document,
        )
    )
    return _role_after(runtime, account_id, role_name, position)


@router.put("/{role_name}/trust-policy")
def set_trust_policy(
    account_id: str, role_name: str, body: SetTrustPolicy, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Replace the trust policy (RAM's UpdateRole with NewAssumeRolePolicyDocument)."""
    update = UpdateRole(assume_role_policy_document=body.assume_role_policy_document)
    return update_role(account_id, role_name, update, caller, runtime)


@router.delete("/{role_name}")
def delete_role(
    account_id: str,
    role_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    detach: bool = False,
) -> dict[str, Any]:
    """Delete the role; every session issued for it is refused from the next decision."""
    position = manage(
        runtime, caller, account_id, "ram:DeleteRole", role_arn(account_id, role_name)
    ).write_position(lambda ledger: ledger.delete_role(account_id, role_name, detach=detach))
    return {"role_name": role_name, "deleted": True, "position": position}


@router.post("/{role_name}/revoke-sessions")
def revoke_role_sessions(
    account_id: str,
    role_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: RevokeRoleSessions | None = None,
) -> dict[str, Any]:
    """Every session of the role issued before ``issued_before`` (default: now) is dead."""
    revoking = manage(
        runtime, caller, account_id, "ram:RevokeSession", role_arn(account_id, role_name)
    )
    body = body or RevokeRoleSessions()
    issued_before = body.issued_before or datetime.now(UTC)
    position = revoking.write(
        lambda ledger: ledger.revoke_role_sessions(account_id, role_name, issued_before),
        reason=body.reason,
    ).position
    return _role_after(runtime, account_id, role_name, position)


@router.get("/{role_name}/sessions")
async def list_role_sessions(
    account_id: str,
    role_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    """The role's sessions that can still act now (never a secret or a token)."""
    authorize_read(runtime, caller, account_id, "ram:GetRole", role_arn(account_id, role_name))
    role = live_role(runtime, account_id, role_name)
    live = runtime.index.live_sessions_of(role.id)
    return paging.page(live, lambda r: r.access_key_id, session_json)


# -- tags (RAM's TagResources / UntagResources / ListTagResources, ``tag_routes``) ----------
@router.put("/{role_name}/tags")
def tag_role(
    account_id: str, role_name: str, body: TagResource, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return tag_routes.tag(runtime, caller, account_id, "role", role_name, body.tags)


@router.delete("/{role_name}/tags")
def untag_role(
    account_id: str,
    role_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    tag_key: Annotated[list[str] | None, Query()] = None,
    all: bool = False,
) -> dict[str, Any]:
    return tag_routes.untag(runtime, caller, account_id, "role", role_name, tag_key, all)


@router.get("/{role_name}/tags")
async def list_role_tags(
    account_id: str, role_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return tag_routes.list_tags(runtime, caller, account_id, "role", role_name)
