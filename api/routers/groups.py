"""Groups and their members (members inherit the group's policies)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.presenters import group_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read, live_group
from mandate.api.schemas import CreateGroup
from mandate.domain.common.arns import group_arn

router = APIRouter(
    prefix="/v1/accounts/{account_id}/groups",
    tags=["groups"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


@router.post("", status_code=201)
def create_group(
    account_id: str, body: CreateGroup, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:CreateGroup", group_arn(account_id, body.group_name)
    ).write_position(lambda ledger: ledger.create_group(account_id, body.group_name, body.comments))
    group = live_group(runtime, account_id, body.group_name)
    return {**group_json(group, runtime.index), "position": position}


@router.get("")
async def list_groups(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListGroups")
    groups = runtime.index.groups_of(account_id)
    return paging.page(groups, lambda g: g.group_name, lambda g: group_json(g, runtime.index))


@router.get("/{group_name}")
async def get_group(
    account_id: str, group_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:GetGroup", group_arn(account_id, group_name))
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
    ).write_position(lambda ledger: ledger.delete_group(account_id, group_name, detach=detach))
    return {"group_name": group_name, "deleted": True, "position": position}


@router.put("/{group_name}/members/{user_name}")
def add_member(
    account_id: str, group_name: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:AddUserToGroup", group_arn(account_id, group_name)
    ).write_position(lambda ledger: ledger.add_user_to_group(account_id, group_name, user_name))
    return {"group_name": group_name, "user_name": user_name, "position": position}


@router.delete("/{group_name}/members/{user_name}")
def remove_member(
    account_id: str, group_name: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:RemoveUserFromGroup", group_arn(account_id, group_name)
    ).write_position(
        lambda ledger: ledger.remove_user_from_group(account_id, group_name, user_name)
    )
    return {"group_name": group_name, "user_name": user_name, "position": position}
