"""How STS and contract events change the decision index: roles, sessions, entrustments.

Each handler is registered by its event class on the index's one registry (``state.on``). An
entrustment brings its managed role with it (same id, a written trust that admits no one:
who may assume it is computed from the live delegations under it); a session is remembered
by its AccessKey id until an hour after it expires (``IndexState._forget_expired_sessions``).
"""

from __future__ import annotations

import heapq

from mandate.domain.common.arns import PrincipalKind, entrustment_arn
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.policy.document import DocumentKind, parse_policy_document
from mandate.domain.sts.roles import Role
from mandate.domain.sts.session_lineage import SessionRecord, contract_revoked
from mandate.domain.sts.sessions import Session
from mandate.projections.decisions.identity_events import attachment_handler, release_name
from mandate.projections.decisions.state import IndexState, on
from mandate.projections.decisions.views import (
    DelegationView,
    EntrustmentView,
    RoleView,
    SessionView,
)

__all__ = ["MANAGED_ROLE_MAX_SESSION_DURATION"]

MANAGED_ROLE_MAX_SESSION_DURATION = 3_600

_MANAGED_TRUST = parse_policy_document(
    '{"Statement": [{"Action": "sts:AssumeRole", "Effect": "Deny",'
    ' "Principal": {"RAM": "acs:ram::*"}}], "Version": "1"}',
    kind=DocumentKind.TRUST,
)
"""A managed role's written trust admits no one: who may assume it is computed from the
live delegations under its entrustment (``RoleFacts.entrustment``)."""


def _add_role(index: IndexState, role: RoleView) -> None:
    """Index a new role, ordinary or managed: its name and its trust bind from this event."""
    role.named_at = role.trust_position = index._applying
    index.roles[role.id] = role
    index.role_ids[(role.account_id, role.role_name)] = role.id


@on.on(Role.RoleCreated)
def role_created(index: IndexState, e: Role.RoleCreated) -> None:
    role = RoleView(
        e.originator_id,
        e.account_id,
        e.role_name,
        e.description,
        e.trust_policy,
        parse_policy_document(e.trust_policy, kind=DocumentKind.TRUST),
        e.max_session_duration,
        e.timestamp,
        e.timestamp,
    )
    _add_role(index, role)


@on.on(Role.RoleUpdated)
def role_updated(index: IndexState, e: Role.RoleUpdated) -> None:
    role = index.roles[e.originator_id]
    role.description = e.description
    role.max_session_duration = e.max_session_duration
    role.updated_at = e.timestamp


@on.on(Role.RoleTrustPolicyUpdated)
def role_trust_updated(index: IndexState, e: Role.RoleTrustPolicyUpdated) -> None:
    role = index.roles[e.originator_id]
    role.trust = parse_policy_document(e.trust_policy, kind=DocumentKind.TRUST)
    role.trust_policy = e.trust_policy
    role.trust_position = index._applying
    role.updated_at = e.timestamp


@on.on(Role.RoleSessionsRevoked)
def role_sessions_revoked(index: IndexState, e: Role.RoleSessionsRevoked) -> None:
    role = index.roles[e.originator_id]
    role.sessions_revoked_before = e.issued_before
    role.updated_at = e.timestamp


@on.on(Role.RoleDeleted)
def role_deleted(index: IndexState, e: Role.RoleDeleted) -> None:
    role = index.roles.pop(e.originator_id)
    index._touch((role.id,))
    release_name(index.role_ids, (role.account_id, role.role_name), role.id)


on.on(Role.PolicyAttached)(attachment_handler(PrincipalKind.ROLE, attach=True))
on.on(Role.PolicyDetached)(attachment_handler(PrincipalKind.ROLE, attach=False))


@on.on(Entrustment.EntrustmentGranted)
def entrustment_granted(index: IndexState, e: Entrustment.EntrustmentGranted) -> None:
    entrustment = EntrustmentView(
        e.originator_id,
        e.account_id,
        e.trustee_account_id,
        e.role_name,
        e.scope,
        e.scope_policies,
        e.contract_ref,
        e.starts_at,
        e.ends_at,
        e.description,
        e.timestamp,
        e.timestamp,
    )
    index.entrustments[entrustment.id] = entrustment
    role = RoleView(
        entrustment.id,
        e.account_id,
        e.role_name,
        e.description,
        _MANAGED_TRUST.canonical_json(),
        _MANAGED_TRUST,
        MANAGED_ROLE_MAX_SESSION_DURATION,
        e.timestamp,
        e.timestamp,
        entrustment_id=entrustment.id,
    )
    _add_role(index, role)


def _entrustment_changed(
    index: IndexState, entrustment: EntrustmentView, e: Entrustment.Event
) -> None:
    """After an amendment, a revocation or an end: the entrustment's new time and version, and
    the generation of everything keyed by its id moves, so no memoised decision through it
    outlives the change."""
    entrustment.updated_at = e.timestamp
    entrustment.version = e.originator_version
    index._touch((entrustment.id,))


@on.on(Entrustment.EntrustmentAmended)
def entrustment_amended(index: IndexState, e: Entrustment.EntrustmentAmended) -> None:
    entrustment = index.entrustments[e.originator_id]
    entrustment.scope = e.scope
    entrustment.scope_policies = e.scope_policies
    _entrustment_changed(index, entrustment, e)


@on.on(Entrustment.EntrustmentRevoked)
def entrustment_revoked(index: IndexState, e: Entrustment.EntrustmentRevoked) -> None:
    entrustment = index.entrustments[e.originator_id]
    why = (e.audit or {}).get("reason")
    entrustment.revoked = contract_revoked(
        entrustment_arn(entrustment.account_id, entrustment.id), entrustment.contract_ref, why
    )
    _entrustment_changed(index, entrustment, e)


@on.on(Entrustment.EntrustmentEnded)
def entrustment_ended(index: IndexState, e: Entrustment.EntrustmentEnded) -> None:
    entrustment = index.entrustments[e.originator_id]
    entrustment.ended = True
    _entrustment_changed(index, entrustment, e)


@on.on(Delegation.DelegationGranted)
def delegation_granted(index: IndexState, e: Delegation.DelegationGranted) -> None:
    delegation = DelegationView(
        e.originator_id,
        e.account_id,
        e.entrustment_id,
        e.entrustment_account_id,
        e.grantee_arn,
        PrincipalKind(e.grantee_kind),
        e.grantee_id,
        e.scope,
        e.ends_at,
        e.timestamp,
    )
    index.delegations[delegation.id] = delegation
    entrustment = index.entrustments.get(delegation.entrustment_id)
    if entrustment is not None:
        entrustment.delegation_ids = (*entrustment.delegation_ids, delegation.id)
        index._touch((entrustment.id,))


@on.on(Delegation.DelegationRevoked)
def delegation_revoked(index: IndexState, e: Delegation.DelegationRevoked) -> None:
    delegation = index.delegations[e.originator_id]
    delegation.revoked = True
    index._touch((delegation.entrustment_id,))


@on.on(Session.SessionIssued)
def session_issued(index: IndexState, e: Session.SessionIssued) -> None:
    record = SessionRecord.from_event(e)
    index.sessions[record.access_key_id] = SessionView(
        record, e.secret_hash, secret_sealed=e.secret_sealed
    )
    index._session_keys[e.originator_id] = record.access_key_id
    heapq.heappush(index._session_expiries, (record.expiration, record.access_key_id))


@on.on(Session.SessionRevoked)
def session_revoked(index: IndexState, e: Session.SessionRevoked) -> None:
    key = index._session_keys.get(e.originator_id)
    view = index.sessions.get(key) if key else None
    if view is not None:
        view.revoked = f"the session {view.record.access_key_id} was revoked"
