"""Accounts: opened and closed by the platform admin; the root key rotated by the root; the
account's personal data erased (crypto-shredding) by its root or the platform admin."""

from __future__ import annotations

import logging
from typing import Any, Final, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from mandate.api.deps import CallerDep, RuntimeDep, authorize_management, check_account_id
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


ERASE_ACTION: Final = "ram:ErasePersonalData"
"""The action a RAM user must be allowed (on ``acs:ram::<account>:*``) to erase the account's
personal data; the account's root and the platform admin may without a policy."""

log = logging.getLogger("mandate")


class PersonalDataErased(BaseModel):
    """The account's personal data is erased; ``destroyed_keys``: the personal-data keys this
    request destroyed (none when an earlier erasure had: the call is idempotent)."""

    account_id: str
    personal_data: Literal["erased"] = "erased"
    destroyed_keys: list[str]
    position: int | None = None
    """The ``PersonalDataErased`` event recording who erased (None when nothing was)."""


@router.post("/{account_id}/personal-data/erase")
def erase_personal_data(
    account_id: str, caller: CallerDep, runtime: RuntimeDep
) -> PersonalDataErased:
    """Destroy the account's personal-data keys: its users' display names read as erased in
    every answer from now on, while the log, projections and audit chains still verify.

    The same erasure as ``mandate account erase-personal-data`` (``Keyring.erase_personal``):
    the key table's tombstones are the erasure, and then a ``PersonalDataErased`` event
    records who erased (the caller, the request id) and the key ids destroyed. Idempotent: a
    second call destroys nothing, says so and records nothing; with an ``Idempotency-Key``, a
    retry is answered the first answer. Should the event's write fail after the destruction,
    the keys stay destroyed (the warning below still names the caller) and no retry records it.
    """
    resource = f"acs:ram::{account_id}:*"
    authorize_management(runtime, caller, account_id, ERASE_ACTION, resource, admin_may=True)
    runtime.idempotency.begin(caller.arn)  # a retry is answered here, erasing nothing
    destroyed = runtime.keyring.erase_personal(account_id)
    log.warning(
        "personal data of account %s erased by %s (request %s): destroyed %s",
        account_id,
        caller.arn,
        caller.given_request_id,
        ", ".join(destroyed) or "nothing (already erased)",
    )
    position = None
    if destroyed:
        position = runtime.write(
            caller.audit(),
            lambda: runtime.ledger.record_personal_data_erasure(account_id, destroyed),
        ).position
    return PersonalDataErased(account_id=account_id, destroyed_keys=destroyed, position=position)
