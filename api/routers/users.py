"""RAM users and their AccessKeys (the secret is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.presenters import key_json, user_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read, live_user, shown_user
from mandate.api.routers import tag_routes
from mandate.api.schemas import CreateUser, TagResource, UpdateAccessKey, UpdateUser
from mandate.domain.common.arns import group_arn, user_arn
from mandate.domain.ledger.application import IssuedKey

router = APIRouter(
    prefix="/v1/accounts/{account_id}/users",
    tags=["users"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


@router.post("", status_code=201)
def create_user(
    account_id: str, body: CreateUser, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:CreateUser", user_arn(account_id, body.user_name)
    ).write_position(
        lambda ledger: ledger.create_user(account_id, body.user_name, body.display_name)
    )
    return {**user_json(shown_user(runtime, account_id, body.user_name)), "position": position}


@router.get("")
async def list_users(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListUsers")
    users = runtime.index.users_of(account_id)
    return paging.page(users, lambda u: u.user_name, user_json)


@router.get("/{user_name}")
async def get_user(
    account_id: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:GetUser", user_arn(account_id, user_name))
    return user_json(shown_user(runtime, account_id, user_name))


@router.patch("/{user_name}")
def update_user(
    account_id: str, user_name: str, body: UpdateUser, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:UpdateUser", user_arn(account_id, user_name)
    ).write_position(
        lambda ledger: ledger.update_user(
            account_id,
            user_name,
            new_user_name=body.new_user_name,
            new_display_name=body.new_display_name,
        )
    )
    name = body.new_user_name or user_name
    return {**user_json(shown_user(runtime, account_id, name)), "position": position}


@router.delete("/{user_name}")
def delete_user(
    account_id: str,
    user_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    detach: bool = False,
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:DeleteUser", user_arn(account_id, user_name)
    ).write_position(lambda ledger: ledger.delete_user(account_id, user_name, detach=detach))
    return {"user_name": user_name, "deleted": True, "position": position}


@router.get("/{user_name}/groups")
async def list_groups_for_user(
    account_id: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = user_arn(account_id, user_name)
    authorize_read(runtime, caller, account_id, "ram:ListGroupsForUser", arn)
    user = live_user(runtime, account_id, user_name)
    names = sorted(user.groups.values())
    return {
        "items": [{"group_name": n, "arn": group_arn(account_id, n)} for n in names],
        "next_cursor": None,
    }


# -- access keys -------------------------------------------------------------------------
@router.post("/{user_name}/access-keys", status_code=201)
def create_access_key(
    account_id: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    issued: IssuedKey = manage(
        runtime, caller, account_id, "ram:CreateAccessKey", user_arn(account_id, user_name)
    ).write(lambda ledger: ledger.create_access_key(account_id, user_name))
    return {
        "access_key_id": issued.access_key_id,
        "access_key_secret": issued.access_key_secret,
        "status": "Active",
        "position": issued.position,
    }


@router.get("/{user_name}/access-keys")
async def list_access_keys(
    account_id: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = user_arn(account_id, user_name)
    authorize_read(runtime, caller, account_id, "ram:ListAccessKeys", arn)
    user = live_user(runtime, account_id, user_name)
    keys = runtime.index.access_keys_of(user)
    return {"items": [key_json(k) for k in keys], "next_cursor": None}


@router.patch("/{user_name}/access-keys/{access_key_id}")
def update_access_key(
    account_id: str,
    user_name: str,
    access_key_id: str,
    body: UpdateAccessKey,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:UpdateAccessKey", user_arn(account_id, user_name)
    ).write_position(
        lambda ledger: ledger.set_access_key_status(
            account_id, user_name, access_key_id, body.status
        )
    )
    return {"access_key_id": access_key_id, "status": body.status, "position": position}


@router.delete("/{user_name}/access-keys/{access_key_id}")
def delete_access_key(
    account_id: str, user_name: str, access_key_id: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    position = manage(
        runtime, caller, account_id, "ram:DeleteAccessKey", user_arn(account_id, user_name)
    ).write_position(lambda ledger: ledger.delete_access_key(account_id, user_name, access_key_id))
    return {"access_key_id": access_key_id, "deleted": True, "position": position}


# -- tags (RAM's TagResources / UntagResources / ListTagResources, ``tag_routes``) ----------
@router.put("/{user_name}/tags")
def tag_user(
    account_id: str, user_name: str, body: TagResource, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return tag_routes.tag(runtime, caller, account_id, "user", user_name, body.tags)


@router.delete("/{user_name}/tags")
def untag_user(
    account_id: str,
    user_name: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    tag_key: Annotated[list[str] | None, Query()] = None,
    all: bool = False,
) -> dict[str, Any]:
    return tag_routes.untag(runtime, caller, account_id, "user", user_name, tag_key, all)


@router.get("/{user_name}/tags")
async def list_user_tags(
    account_id: str, user_name: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return tag_routes.list_tags(runtime, caller, account_id, "user", user_name)
