"""Entrusted contracts between enterprises (A → B) and B's delegations under them.

A grants, amends and revokes its entrustments (``ram:CreateEntrustment``,
``ram:RevokeEntrustment``); both sides list them (``?direction=granted|received``). B delegates
an entrustment it received to one of its users or groups (``ram:CreateDelegation``) and revokes
delegations (``ram:RevokeDelegation``). The rules live in the domain and the decision index;
this router authenticates, authorises and shows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query

from mandate.api.deps import CallerDep, RuntimeDep, authorize_management, manage
from mandate.api.presenters import delegation_json, entrustment_json, page
from mandate.api.runtime import Runtime
from mandate.api.schemas import AmendEntrustment, GrantDelegation, GrantEntrustment, Revocation
from mandate.domain.common.arns import delegation_arn, entrustment_arn
from mandate.domain.common.errors import NotFound
from mandate.projections.decisions.views import DelegationView, EntrustmentView

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["entrustments"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def _entrustment(runtime: Runtime, account_id: str, entrustment_id: UUID) -> EntrustmentView:
    """An entrustment the account granted or received (404 otherwise, inside the account)."""
    entrustment = runtime.index.entrustments.get(entrustment_id)
    if entrustment is None or account_id not in (
        entrustment.account_id,
        entrustment.trustee_account_id,
    ):
        raise NotFound(
            f"entrustment {entrustment_id} does not exist", code="EntityNotExist.Entrustment"
        )
    return entrustment


def _delegation(runtime: Runtime, account_id: str, delegation_id: UUID) -> DelegationView:
    delegation = runtime.index.delegations.get(delegation_id)
    if delegation is None or account_id not in (
        delegation.account_id,
        delegation.entrustment_account_id,
    ):
        raise NotFound(
            f"delegation {delegation_id} does not exist", code="EntityNotExist.Delegation"
        )
    return delegation


@router.post("/entrustments", status_code=201)
def grant_entrustment(
    account_id: str, body: GrantEntrustment, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    entrustment_id, _, position = manage(
        runtime, caller, account_id, "ram:CreateEntrustment", entrustment_arn(account_id, "*")
    ).write(
        lambda ledger: ledger.grant_entrustment(
            account_id,
            trustee_account_id=body.trustee_account_id,
            scope=body.scope,
            contract_ref=body.contract_ref,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            description=body.description,
            role_name=body.role_name,
        ),
        lambda r: r[2],
    )
    entrustment = _entrustment(runtime, account_id, entrustment_id)
    return {**entrustment_json(entrustment, runtime.index), "position": position}


@router.get("/entrustments")
async def list_entrustments(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    direction: Literal["granted", "received"] = "granted",
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListEntrustments",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    found = runtime.index.entrustments_of(account_id, direction)
    return page(
        found,
        lambda e: f"{e.created_at.isoformat()}|{e.id}",
        lambda e: entrustment_json(e, runtime.index),
        cursor=cursor,
        limit=limit,
    )


@router.get("/entrustments/{entrustment_id}")
async def get_entrustment(
    account_id: str, entrustment_id: UUID, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:GetEntrustment",
        f"acs:ram::{account_id}:entrustment/{entrustment_id}",
        admin_may=True,
    )
    return entrustment_json(_entrustment(runtime, account_id, entrustment_id), runtime.index)


@router.patch("/entrustments/{entrustment_id}")
def amend_entrustment(
    account_id: str,
    entrustment_id: UUID,
    body: AmendEntrustment,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """``EntrustmentAmended``: a new scope for the contract, as an event."""
    arn = entrustment_arn(account_id, entrustment_id)
    position = manage(runtime, caller, account_id, "ram:CreateEntrustment", arn).write(
        lambda ledger: ledger.amend_entrustment(account_id, entrustment_id, body.scope)
    )
    entrustment = _entrustment(runtime, account_id, entrustment_id)
    return {**entrustment_json(entrustment, runtime.index), "position": position}


@router.post("/entrustments/{entrustment_id}/revoke")
def revoke_entrustment(
    account_id: str,
    entrustment_id: UUID,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: Revocation | None = None,
) -> dict[str, Any]:
    """One event: every delegation under it and every session through it is dead from now."""
    arn = entrustment_arn(account_id, entrustment_id)
    position = manage(runtime, caller, account_id, "ram:RevokeEntrustment", arn).write(
        lambda ledger: ledger.revoke_entrustment(account_id, entrustment_id),
        reason=body.reason if body else None,
    )
    entrustment = _entrustment(runtime, account_id, entrustment_id)
    return {**entrustment_json(entrustment, runtime.index), "position": position}


@router.post("/delegations", status_code=201)
def grant_delegation(
    account_id: str, body: GrantDelegation, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    delegation_id = uuid4()
    warnings, position = manage(
        runtime,
        caller,
        account_id,
        "ram:CreateDelegation",
        delegation_arn(account_id, delegation_id),
    ).write(
        lambda ledger: ledger.grant_delegation(
            account_id,
            delegation_id=delegation_id,
            entrustment_id=body.entrustment_id,
            grantee=body.grantee,
            scope=body.scope,
            ends_at=body.ends_at,
        ),
        lambda r: r[1],
    )
    delegation = _delegation(runtime, account_id, delegation_id)
    return {
        **delegation_json(delegation, runtime.index),
        "warnings": [w.as_dict() for w in warnings],
        "position": position,
    }


@router.get("/delegations")
async def list_delegations(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    authorize_management(
        runtime,
        caller,
        account_id,
        "ram:ListDelegations",
        f"acs:ram::{account_id}:*",
        admin_may=True,
    )
    found = runtime.index.delegations_of(account_id)
    return page(
        found,
        lambda d: f"{d.created_at.isoformat()}|{d.id}",
        lambda d: delegation_json(d, runtime.index),
        cursor=cursor,
        limit=limit,
    )


@router.post("/delegations/{delegation_id}/revoke")
def revoke_delegation(
    account_id: str,
    delegation_id: UUID,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: Revocation | None = None,
) -> dict[str, Any]:
    position = manage(
        runtime,
        caller,
        account_id,
        "ram:RevokeDelegation",
        delegation_arn(account_id, delegation_id),
    ).write(
        lambda ledger: ledger.revoke_delegation(account_id, delegation_id),
        reason=body.reason if body else None,
    )
    return {
        **delegation_json(_delegation(runtime, account_id, delegation_id), runtime.index),
        "position": position,
    }
