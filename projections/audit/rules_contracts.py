"""Audit rules of the contract events: entrustments between accounts and their delegations.

Every such event concerns both sides of the contract, the entrusting account and the
trustee, so its record is in both accounts' chains. An entrustment's revocation or end says
what it ended at its ledger time — the delegations under it and the sessions of its managed
role still live then — which the naming state keeps for it (``EntrustmentDependents``).
Registered on ``RULES`` by event class.
"""

from __future__ import annotations

from datetime import datetime

from mandate.domain.common.arns import delegation_arn, entrustment_arn, role_arn
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.projections.audit.conventions import AuditRecordError, optional_rfc3339
from mandate.projections.audit.entrustment_dependents import EntrustmentDependents
from mandate.projections.audit.naming import AuditNaming
from mandate.projections.audit.rules import RULES, Described

__all__: list[str] = []  # the rules register themselves on RULES


@RULES.on(Entrustment.EntrustmentGranted)
def _entrustment_granted(
    naming: AuditNaming, e: Entrustment.EntrustmentGranted, at: datetime
) -> Described:
    # The managed role's name is claimed by a NameClaimed of the same save (recorded apart).
    summary = {
        "contract_ref": e.contract_ref,
        "trustee_account_id": e.trustee_account_id,
        "role_arn": role_arn(e.account_id, e.role_name),
        "scope": e.scope,
        "scope_policies": None if e.scope_policies is None else list(e.scope_policies),
        "starts_at": optional_rfc3339(e.starts_at, "starts_at"),
        "ends_at": optional_rfc3339(e.ends_at, "ends_at"),
        "description": e.description,
    }
    naming.entrust(e.originator_id, EntrustmentDependents(e.account_id, e.trustee_account_id))
    accounts = (e.account_id, e.trustee_account_id)
    return Described(accounts, entrustment_arn(e.account_id, e.originator_id), summary)


@RULES.on(Entrustment.EntrustmentAmended)
def _entrustment_amended(
    naming: AuditNaming, e: Entrustment.EntrustmentAmended, at: datetime
) -> Described:
    state = naming.entrustment(e.originator_id)
    summary = {
        "scope": e.scope,
        "scope_policies": None if e.scope_policies is None else list(e.scope_policies),
    }
    accounts = (state.account_id, state.trustee_account_id)
    return Described(accounts, entrustment_arn(state.account_id, e.originator_id), summary)


def _entrustment_closed(
    naming: AuditNaming,
    e: Entrustment.EntrustmentRevoked | Entrustment.EntrustmentEnded,
    at: datetime,
) -> Described:
    """What it ended at the ledger time: the delegations under it and the sessions of its
    managed role still live then."""
    state = naming.entrustment(e.originator_id)
    delegations, sessions = state.live_at(at)
    naming.close(e.originator_id, _CLOSED_AS[type(e)])
    summary = {"ended_delegations": delegations, "ended_sessions": sessions}
    accounts = (state.account_id, state.trustee_account_id)
    return Described(accounts, entrustment_arn(state.account_id, e.originator_id), summary)


RULES.on(Entrustment.EntrustmentRevoked)(_entrustment_closed)
RULES.on(Entrustment.EntrustmentEnded)(_entrustment_closed)


_CLOSED_AS: dict[type, str] = {
    Entrustment.EntrustmentRevoked: "revoked",
    Entrustment.EntrustmentEnded: "ended",
}


@RULES.on(Delegation.DelegationGranted)
def _delegation_granted(
    naming: AuditNaming, e: Delegation.DelegationGranted, at: datetime
) -> Described:
    state = naming.entrustment(e.entrustment_id)
    if (state.account_id, state.trustee_account_id) != (e.entrustment_account_id, e.account_id):
        raise AuditRecordError(
            f"delegation {e.originator_id} names accounts its entrustment "
            f"{e.entrustment_id} does not"
        )
    # grantee_id (a UUID) is deliberately not copied: grantee_arn names the grantee.
    summary = {
        "entrustment_arn": entrustment_arn(e.entrustment_account_id, e.entrustment_id),
        "grantee_arn": e.grantee_arn,
        "scope": e.scope,
        "ends_at": optional_rfc3339(e.ends_at, "ends_at"),
    }
    naming.add_delegation(e.originator_id, e.entrustment_id, e.ends_at, at)
    accounts = (e.account_id, e.entrustment_account_id)
    return Described(accounts, delegation_arn(e.account_id, e.originator_id), summary)


@RULES.on(Delegation.DelegationRevoked)
def _delegation_revoked(
    naming: AuditNaming, e: Delegation.DelegationRevoked, at: datetime
) -> Described:
    entrustment_id, state = naming.entrustment_of_delegation(e.originator_id)
    naming.revoke_dependent(e.originator_id)
    summary = {"entrustment_arn": entrustment_arn(state.account_id, entrustment_id)}
    accounts = (state.trustee_account_id, state.account_id)
    return Described(accounts, delegation_arn(state.trustee_account_id, e.originator_id), summary)
