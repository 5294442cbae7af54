"""Accounts: opened and closed by the platform admin; the root key rotated by the root."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mandate.api.deps import CallerDep, RuntimeDep, check_account_id
from mandate.api.presenters import rfc3339
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.problems import Forbidden
from mandate.api.schemas import OpenAccount
from mandate.domain.common.errors import NotFound
from mandate.domain.ledger.application import IssuedKey, OpenedAccount

router = APIRouter(
    prefix="/v1/accounts",
    tags=["accounts"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


@router.post("", status_code=201)
def open_account(body: OpenAccount, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    if not caller.is_admin:
        raise Forbidden("only the platform admin opens accounts")
    opened: OpenedAccount = runtime.write(
        caller.audit(),
        lambda: runtime.ledger.open_account(body.name),
    )
    return {
        "account_id": opened.account_id,
        "name": body.name,
        "root_arn": f"acs:ram::{opened.account_id}:root",
        "root_access_key": {
            "access_key_id": opened.root_key.access_key_id,
            "access_key_secret": opened.root_key.access_key_secret,
        },
        "position": opened.root_key.position,
    }


@router.get("/{account_id}")
def get_account(account_id: str, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    check_account_id(account_id)
    if not caller.is_admin and caller.account_id != account_id:
        raise Forbidden(f"{caller.arn} may not read account {account_id}")
    account = runtime.index.account(account_id)
    if account is None:
        raise NotFound(f"account {account_id} does not exist", code="EntityNotExist.Account")
    return {
        "account_id": account.account_id,
        "name": account.name,
        "status": "open" if account.is_open else "closed",
        "create_date": rfc3339(account.opened_at),
    }


@router.post("/{account_id}/close")
def close_account(account_id: str, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    check_account_id(account_id)
    if not caller.is_admin:
        raise Forbidden("only the platform admin closes accounts")
    position = runtime.write(
        caller.audit(), lambda: runtime.ledger.close_account(account_id)
    ).position
    return {"account_id": account_id, "status": "closed", "position": position}


@router.post("/{account_id}/root-access-keys", status_code=201)
def rotate_root_key(account_id: str, caller: CallerDep, runtime: RuntimeDep) -> dict[str, Any]:
    check_account_id(account_id)
    if caller.kind != "root" or caller.account_id != account_id:
        raise Forbidden("only the account's root rotates its root AccessKey")
    issued: IssuedKey = runtime.write(
        caller.audit(),
        lambda: runtime.ledger.rotate_root_access_key(account_id),
    )
    return {
        "access_key_id": issued.access_key_id,
        "access_key_secret": issued.access_key_secret,
        "status": "Active",
        "position": issued.position,
    }
