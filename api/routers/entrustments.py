"""Entrusted contracts between enterprises (A → B) and B's delegations under them.

A grants, amends and revokes its entrustments (``ram:CreateEntrustment``,
``ram:RevokeEntrustment``); both sides list them (``?direction=granted|received``). B delegates
an entrustment it received to one of its users or groups (``ram:CreateDelegation``) and revokes
delegations (``ram:RevokeDelegation``). The rules live in the domain and the decision index;
this router authenticates, authorises and shows.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter

from mandate.api.deps import CallerDep, RuntimeDep, manage
from mandate.api.presenters import delegation_json, entrustment_json
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.reads import PagingDep, authorize_read, existing
from mandate.api.runtime import Runtime
from mandate.api.schemas import AmendEntrustment, GrantDelegation, GrantEntrustment, Revocation
from mandate.domain.common.arns import delegation_arn, entrustment_arn
from mandate.projections.decisions.views import DelegationView, EntrustmentView

router = APIRouter(
    prefix="/v1/accounts/{account_id}",
    tags=["entrustments"],
    responses=PROBLEM_RESPONSES,
    dependencies=AUTHENTICATED,
)


def _entrustment(runtime: Runtime, account_id: str, entrustment_id: UUID) -> EntrustmentView:
    """An entrustment the account granted or received (404 otherwise, inside the account)."""
    entrustment = runtime.index.entrustment(entrustment_id)
    if entrustment and account_id not in (entrustment.account_id, entrustment.trustee_account_id):
        entrustment = None
    return existing(entrustment, f"entrustment {entrustment_id}", "EntityNotExist.Entrustment")


def _entrustment_after(
    runtime: Runtime, account_id: str, entrustment_id: UUID, position: int
) -> dict[str, Any]:
    """The entrustment as the index has it once the write at ``position`` is applied, and
    that position (what every write to an entrustment answers)."""
    entrustment = _entrustment(runtime, account_id, entrustment_id)
    return {**entrustment_json(entrustment, runtime.index), "position": position}


def _delegation(runtime: Runtime, account_id: str, delegation_id: UUID) -> DelegationView:
    """A delegation the account granted or that is under one of its entrustments."""
    delegation = runtime.index.delegation(delegation_id)
    if delegation and account_id not in (delegation.account_id, delegation.entrustment_account_id):
        delegation = None
    return existing(delegation, f"delegation {delegation_id}", "EntityNotExist.Delegation")


def _created_order(contract: EntrustmentView | DelegationView) -> str:
    """Listings of entrustments and delegations run in creation order (ids break ties)."""
    return f"{contract.created_at.isoformat()}|{contract.id}"


@router.post("/entrustments", status_code=201)
def grant_entrustment(
    account_id: str, body: GrantEntrustment, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    granted = manage(
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
    )
    return _entrustment_after(runtime, account_id, granted.entrustment_id, granted.position)


@router.get("/entrustments")
async def list_entrustments(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
    direction: Literal["granted", "received"] = "granted",
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListEntrustments")
    found = runtime.index.entrustments_of(account_id, direction)
    return paging.page(found, _created_order, lambda e: entrustment_json(e, runtime.index))


@router.get("/entrustments/{entrustment_id}")
async def get_entrustment(
    account_id: str, entrustment_id: UUID, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    arn = entrustment_arn(account_id, entrustment_id)
    authorize_read(runtime, caller, account_id, "ram:GetEntrustment", arn)
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
    position = manage(runtime, caller, account_id, "ram:CreateEntrustment", arn).write_position(
        lambda ledger: ledger.amend_entrustment(account_id, entrustment_id, body.scope)
    )
    return _entrustment_after(runtime, account_id, entrustment_id, position)


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
    position = manage(runtime, caller, account_id, "ram:RevokeEntrustment", arn).write_position(
        lambda ledger: ledger.revoke_entrustment(account_id, entrustment_id),
        reason=body.reason if body else None,
    )
    return _entrustment_after(runtime, account_id, entrustment_id, position)


@router.post("/delegations", status_code=201)
def grant_delegation(
    account_id: str, body: GrantDelegation, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    delegation_id = uuid4()
    arn = delegation_arn(account_id, delegation_id)
    granted = manage(runtime, caller, account_id, "ram:CreateDelegation", arn).write(
        lambda ledger: ledger.grant_delegation(
            account_id,
            delegation_id=delegation_id,
            entrustment_id=body.entrustment_id,
            grantee=body.grantee,
            scope=body.scope,
            ends_at=body.ends_at,
        ),
    )
    delegation = _delegation(runtime, account_id, granted.delegation_id)
    return {
        **delegation_json(delegation, runtime.index),
        "warnings": [w.as_dict() for w in granted.warnings],
        "position": granted.position,
    }


@router.get("/delegations")
async def list_delegations(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    paging: PagingDep,
) -> dict[str, Any]:
    authorize_read(runtime, caller, account_id, "ram:ListDelegations")
    found = runtime.index.delegations_of(account_id)
    return paging.page(found, _created_order, lambda d: delegation_json(d, runtime.index))


@router.post("/delegations/{delegation_id}/revoke")
def revoke_delegation(
    account_id: str,
    delegation_id: UUID,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: Revocation | None = None,
) -> dict[str, Any]:
    arn = delegation_arn(account_id, delegation_id)
    position = manage(runtime, caller, account_id, "ram:RevokeDelegation", arn).write_position(
        lambda ledger: ledger.revoke_delegation(account_id, delegation_id),
        reason=body.reason if body else None,
    )
    return {
        **delegation_json(_delegation(runtime, account_id, delegation_id), runtime.index),
        "position": position,
    }
