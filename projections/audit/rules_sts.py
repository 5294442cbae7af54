"""Audit rules of the STS events: roles (profile, trust policy, attachments) and sessions.

A role's events name the role; a session's name its assumed-role ARN and concern both the
role's account and the account of the session's source principal (the same one unless the
session is cross-account). A session of an entrustment's managed role is also hung from the
entrustment in the naming state, so the entrustment's end can say it ended it. Never a
secret or an internal UUID (``secret_hash``, ``role_id``, ``source_user_id``). Registered on
``RULES`` by event class.
"""

from __future__ import annotations

from datetime import datetime

from mandate.domain.common.arns import PrincipalKind, role_arn
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session
from mandate.projections.audit.conventions import rfc3339
from mandate.projections.audit.naming import AuditNaming, NamedEntity
from mandate.projections.audit.rules import RULES, Described, attachment_rule, created, deleted_rule

__all__: list[str] = []  # the rules register themselves on RULES

# -- roles ---------------------------------------------------------------------------------------


@RULES.on(Role.RoleCreated)
def _role_created(naming: AuditNaming, e: Role.RoleCreated, at: datetime) -> Described:
    summary = {
        "role_name": e.role_name,
        "description": e.description,
        "trust_policy": e.trust_policy,
        "max_session_duration": e.max_session_duration,
    }
    return created(naming, e.originator_id, NamedEntity("role", e.account_id, e.role_name), summary)


@RULES.on(Role.RoleUpdated)
def _role_updated(naming: AuditNaming, e: Role.RoleUpdated, at: datetime) -> Described:
    summary = {"description": e.description, "max_session_duration": e.max_session_duration}
    return Described.about(naming, e.originator_id, "role", summary)


@RULES.on(Role.RoleTrustPolicyUpdated)
def _role_trust_policy_updated(
    naming: AuditNaming, e: Role.RoleTrustPolicyUpdated, at: datetime
) -> Described:
    return Described.about(naming, e.originator_id, "role", {"trust_policy": e.trust_policy})


@RULES.on(Role.RoleSessionsRevoked)
def _role_sessions_revoked(
    naming: AuditNaming, e: Role.RoleSessionsRevoked, at: datetime
) -> Described:
    summary = {"issued_before": rfc3339(e.issued_before, "issued_before")}
    return Described.about(naming, e.originator_id, "role", summary)


@RULES.on(Role.TagsChanged)
def _role_tags_changed(naming: AuditNaming, e: Role.TagsChanged, at: datetime) -> Described:
    """The role's whole tag set after the change (``acs:ResourceTag`` conditions read it)."""
    return Described.about(naming, e.originator_id, "role", {"tags": dict(e.tags)})


RULES.on(Role.PolicyAttached)(attachment_rule(PrincipalKind.ROLE))
RULES.on(Role.PolicyDetached)(attachment_rule(PrincipalKind.ROLE))
RULES.on(Role.RoleDeleted)(deleted_rule("role"))


# -- sessions ------------------------------------------------------------------------------------


@RULES.on(Session.SessionIssued)
def _session_issued(naming: AuditNaming, e: Session.SessionIssued, at: datetime) -> Described:
    issued_at = rfc3339(e.issued_at, "issued_at")
    expiration = rfc3339(e.expiration, "expiration")
    session = NamedEntity(
        "session",
        e.account_id,
        e.role_name,
        session_name=e.role_session_name,
        access_key_id=e.access_key_id,
        source_account_id=e.source_account_id,
    )
    naming.remember(e.originator_id, session)
    # A session of an entrustment's managed role (whose id is the entrustment's) hangs from it.
    naming.add_session(e.originator_id, e.role_id, e.access_key_id, e.expiration, at)
    # secret_hash is deliberately not copied, nor are role_id and source_user_id (UUIDs).
    summary = {
        "access_key_id": e.access_key_id,
        "role_arn": role_arn(e.account_id, e.role_name),
        "role_session_name": e.role_session_name,
        "source_arn": e.source_arn,
        "parent_access_key_id": e.parent_access_key_id,
        "session_policy": e.session_policy,
        "issued_at": issued_at,
        "expiration": expiration,
    }
    return Described(session.accounts, session.arn, summary)


@RULES.on(Session.SessionRevoked)
def _session_revoked(naming: AuditNaming, e: Session.SessionRevoked, at: datetime) -> Described:
    session = naming.require(e.originator_id, "session")
    naming.revoke_dependent(e.originator_id)
    return Described(session.accounts, session.arn, {"access_key_id": session.access_key_id})
