"""Groups and their members (members inherit the group's policies)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mandate.api.deps import CallerDep, RuntimeDep, authorize_management, manage
from mandate.api.presenters import group_json, page
from mandate.api.runtime import Runtime
from mandate.api.schemas import CreateGroup
from mandate.domain.common.arns import group_arn
from mandate.domain.common.errors import NotFound
from mandate.projections.decisions.views import GroupView

router = APIRouter(prefix="/v1/accounts/{account_id}/groups", tags=["groups"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def live_group(runtime: Runtime, account_id: str, group_name: str) -> GroupView:
    group = runtime.index.group_by_name(account_id, group_name)
    if group is None:
        raise NotFound(f"group {group_name!r} does not exist", code="EntityNotExist.Group")
    return group


@router.post("", status_code=201)
def create_group(
    account_id: str, body: CreateGroup, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:CreateGroup", group_arn(account_id, body.group_name)
    ).write(lambda ledger: ledger.create_group(account_id, body.group_name, body.comments))
    group = live_group(runtime, account_id, body.group_name)
    return {**group_json(group, runtime.index), "position": position}


@router.get("")
async def list_groups(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    authorize_management(
        runtime, caller, account_id, "ram:ListGroups", f"acs:ram::{account_id}:*", admin_may=True
    )
    return page(
        runtime.index.groups_of(account_id),
        lambda g: g.group_name,
        lambda g: group_json(g, runtime.index),
        cursor=cursor,
        limit=limit,
    )


@router.get("/{group_name}")
async def get_group(
    account_id: str, group_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:GetGroup",
        group_arn(account_id, group_name),
        admin_may=True,
    )
    return group_json(live_group(runtime, account_id, group_name), runtime.index)


@router.delete("/{group_name}")
def delete_group(
    account_id: str,
    group_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    detach: bool = False,
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:DeleteGroup", group_arn(account_id, group_name)
    ).write(lambda ledger: ledger.delete_group(account_id, group_name, detach=detach))
    return {"group_name": group_name, "deleted": True, "position": position}


@router.put("/{group_name}/members/{user_name}")
def add_member(
    account_id: str, group_name: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:AddUserToGroup", group_arn(account_id, group_name)
    ).write(lambda ledger: ledger.add_user_to_group(account_id, group_name, user_name))
    return {"group_name": group_name, "user_name": user_name, "position": position}


@router.delete("/{group_name}/members/{user_name}")
def remove_member(
    account_id: str, group_name: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:RemoveUserFromGroup", group_arn(account_id, group_name)
    ).write(lambda ledger: ledger.remove_user_from_group(account_id, group_name, user_name))
    return {"group_name": group_name, "user_name": user_name, "position": position}
