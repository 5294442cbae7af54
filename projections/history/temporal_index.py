"""The temporal index's projection: what each ledger event opens and closes (``temporal_schema``
describes the facts, ``temporal_facts`` keeps the open ones and writes them).

Handlers are registered by event class in ``HANDLERS`` (``projections.dispatch``); the
name-claim events are declared ignored, and an event of any other class raises
``UnknownEvent``, which stalls the projection's worker at that event instead of passing it over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.ledger_time import to_micros
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session
from mandate.projections.dispatch import EventHandlers
from mandate.projections.history.temporal_facts import (
    RETENTION_MICROS,
    SESSION_RETENTION,
    Fact,
    FactBook,
)
from mandate.projections.history.temporal_schema import FACTS_DDL
from mandate.projections.store.sql_projection import SqlProjection

__all__ = ["FACTS_DDL", "HANDLERS", "SESSION_RETENTION", "Fact", "TemporalIndexProjection"]

HANDLERS: EventHandlers[TemporalIndexProjection] = EventHandlers("temporal index")
on = HANDLERS

_Attached = User.PolicyAttached | Group.PolicyAttached | Role.PolicyAttached
_Detached = User.PolicyDetached | Group.PolicyDetached | Role.PolicyDetached
# one handler each way, whoever holds the attachment (typed so: ``on.on`` would join them)
_ATTACHED: Final[tuple[type[_Attached], ...]] = (
    User.PolicyAttached,
    Group.PolicyAttached,
    Role.PolicyAttached,
)
_DETACHED: Final[tuple[type[_Detached], ...]] = (
    User.PolicyDetached,
    Group.PolicyDetached,
    Role.PolicyDetached,
)
_HOLDER_OF: Final[dict[type, PrincipalKind]] = {
    **dict.fromkeys((User.PolicyAttached, User.PolicyDetached), PrincipalKind.USER),
    **dict.fromkeys((Group.PolicyAttached, Group.PolicyDetached), PrincipalKind.GROUP),
    **dict.fromkeys((Role.PolicyAttached, Role.PolicyDetached), PrincipalKind.ROLE),
}
"""Whose attachments a ``PolicyAttached`` / ``PolicyDetached`` changes, by the event's class."""


class TemporalIndexProjection(FactBook, SqlProjection):
    """Turns ledger events into opened and closed fact intervals."""

    name: ClassVar[str] = "temporal"
    ddl: ClassVar[list[str]] = FACTS_DDL

    def apply(self, event: Any, position: int, ledger_time: datetime) -> None:
        at = to_micros(ledger_time)
        self._applied += 1
        expiries = self._session_expiries
        if expiries and expiries[0][0] < at - RETENTION_MICROS:
            self._forget_expired_sessions(at - RETENTION_MICROS)
        HANDLERS.handler_for(type(event))(self, event, position, at)

    # -- accounts and keys ---------------------------------------------------------------------
    @on.on(Account.AccountOpened)
    def _account_opened(self, e: Account.AccountOpened, position: int, at: int) -> None:
        account = e.account_id
        self._open_fact("account", account, "", account, {"name": e.name}, position, at)
        self._open_fact(
            "access_key", e.root_access_key_id, "", account, {"status": "Active"}, position, at
        )

    @on.on(Account.AccountClosed)
    def _account_closed(self, e: Account.AccountClosed, position: int, at: int) -> None:
        account = self._accounts[e.originator_id]
        self._close("account", account, "", position, at)

    @on.on(Account.RootAccessKeyRotated)
    def _root_key_rotated(self, e: Account.RootAccessKeyRotated, position: int, at: int) -> None:
        account = self._accounts[e.originator_id]
        self._close("access_key", e.previous_access_key_id, "", position, at)
        self._open_fact(
            "access_key", e.access_key_id, "", account, {"status": "Active"}, position, at
        )

    @on.on(User.AccessKeyCreated)
    def _key_created(self, e: User.AccessKeyCreated, position: int, at: int) -> None:
        user = str(e.originator_id)
        self._open_fact(
            "access_key",
            e.access_key_id,
            user,
            self._owners[user],
            {"status": "Active"},
            position,
            at,
        )

    @on.on(User.AccessKeyDisabled)
    def _key_disabled(self, e: User.AccessKeyDisabled, position: int, at: int) -> None:
        self._replace(
            "access_key", e.access_key_id, str(e.originator_id), position, at, status="Inactive"
        )

    @on.on(User.AccessKeyEnabled)
    def _key_enabled(self, e: User.AccessKeyEnabled, position: int, at: int) -> None:
        self._replace(
            "access_key", e.access_key_id, str(e.originator_id), position, at, status="Active"
        )

    @on.on(User.AccessKeyDeleted)
    def _key_deleted(self, e: User.AccessKeyDeleted, position: int, at: int) -> None:
        self._close("access_key", e.access_key_id, str(e.originator_id), position, at)

    # -- users, groups, memberships ------------------------------------------------------------
    @on.on(User.UserCreated)
    def _user_created(self, e: User.UserCreated, position: int, at: int) -> None:
        self._open_fact(
            "user",
            str(e.originator_id),
            e.user_name,
            e.account_id,
            {"display_name": e.display_name, "named_at": position},
            position,
            at,
        )

    @on.on(User.UserUpdated)
    def _user_updated(self, e: User.UserUpdated, position: int, at: int) -> None:
        user = str(e.originator_id)
        old = self._close("user", user, e.previous_user_name, position, at)
        account = old.account_id if old is not None else self._owners[user]
        # a name taken now binds no older trust policy (``domain.sts.assume_role.name_binds``)
        kept = old is not None and e.user_name == e.previous_user_name
        named_at = old.payload.get("named_at") if kept and old is not None else position
        payload = {"display_name": e.display_name, "named_at": named_at}
        if old is not None and old.payload.get("tags"):
            payload["tags"] = old.payload["tags"]  # a rename keeps the user's tags
        self._open_fact("user", user, e.user_name, account, payload, position, at)

    @on.on(User.TagsChanged)
    def _user_tags_changed(self, e: User.TagsChanged, position: int, at: int) -> None:
        """The user's fact is replaced by one holding its new tags (``acs:ResourceTag``)."""
        self._replace_named("user", str(e.originator_id), position, at, tags=dict(e.tags))

    @on.on(User.UserDeleted)
    def _user_deleted(self, e: User.UserDeleted, position: int, at: int) -> None:
        user = str(e.originator_id)
        self._close_all("user", user, position, at)
        self._close_all("memberships", user, position, at)
        self._close_all("attachments", user, position, at)
        for key_id in sorted(self._user_keys.pop(user, set())):
            self._close("access_key", key_id, user, position, at)

    @on.on(User.UserAddedToGroup)
    def _added_to_group(self, e: User.UserAddedToGroup, position: int, at: int) -> None:
        entry = [str(e.group_id), e.group_name]
        self._set_fact(
            "memberships", str(e.originator_id), position, at, lambda items: items.append(entry)
        )

    @on.on(User.UserRemovedFromGroup)
    def _removed_from_group(self, e: User.UserRemovedFromGroup, position: int, at: int) -> None:
        group = str(e.group_id)

        def remove(items: list[Any]) -> None:
            items[:] = [item for item in items if item[0] != group]

        self._set_fact("memberships", str(e.originator_id), position, at, remove)

    @on.on(Group.GroupCreated)
    def _group_created(self, e: Group.GroupCreated, position: int, at: int) -> None:
        self._open_fact("group", str(e.originator_id), e.group_name, e.account_id, {}, position, at)

    @on.on(Group.GroupDeleted)
    def _group_deleted(self, e: Group.GroupDeleted, position: int, at: int) -> None:
        group = str(e.originator_id)
        self._close_all("group", group, position, at)
        self._close_all("attachments", group, position, at)

    # -- attachments and policies --------------------------------------------------------------
    @on.on(*_ATTACHED)
    def _attach(self, e: _Attached, position: int, at: int) -> None:
        policy_id = str(e.policy_id) if e.policy_id is not None else None
        entry = [e.policy_type, e.policy_name, policy_id]
        holder = str(e.originator_id)
        self._set_fact(
            "attachments",
            holder,
            position,
            at,
            lambda items: items.append(entry),
            holder=_HOLDER_OF[type(e)],
        )

    @on.on(*_DETACHED)
    def _detach(self, e: _Detached, position: int, at: int) -> None:
        key = [e.policy_type, e.policy_name]

        def remove(items: list[Any]) -> None:
            items[:] = [item for item in items if item[:2] != key]

        holder = str(e.originator_id)
        self._set_fact("attachments", holder, position, at, remove, holder=_HOLDER_OF[type(e)])

    @on.on(ManagedPolicy.PolicyCreated)
    def _policy_created(self, e: ManagedPolicy.PolicyCreated, position: int, at: int) -> None:
        policy = str(e.originator_id)
        self._open_fact(
            "policy", policy, e.policy_name, e.account_id, {"default_version": "v1"}, position, at
        )
        self._open_fact("policy_version", policy, "v1", e.account_id, {}, position, at)
        self._documents.append((policy, "v1", e.document))

    def _set_default(self, policy: str, version_id: str, position: int, at: int) -> None:
        names = self._objects.get(("policy", policy))
        if not names or ("policy_version", policy, version_id) not in self._open:
            return
        self._replace("policy", policy, next(iter(names)), position, at, default_version=version_id)

    @on.on(ManagedPolicy.PolicyVersionCreated)
    def _policy_version_created(
        self, e: ManagedPolicy.PolicyVersionCreated, position: int, at: int
    ) -> None:
        policy = str(e.originator_id)
        self._open_fact(
            "policy_version", policy, e.version_id, self._owners[policy], {}, position, at
        )
        self._documents.append((policy, e.version_id, e.document))
        if e.set_as_default:
            self._set_default(policy, e.version_id, position, at)

    @on.on(ManagedPolicy.DefaultPolicyVersionSet)
    def _default_version_set(
        self, e: ManagedPolicy.DefaultPolicyVersionSet, position: int, at: int
    ) -> None:
        self._set_default(str(e.originator_id), e.version_id, position, at)

    @on.on(ManagedPolicy.PolicyVersionDeleted)
    def _policy_version_deleted(
        self, e: ManagedPolicy.PolicyVersionDeleted, position: int, at: int
    ) -> None:
        self._close("policy_version", str(e.originator_id), e.version_id, position, at)

    @on.on(ManagedPolicy.PolicyDeleted)
    def _policy_deleted(self, e: ManagedPolicy.PolicyDeleted, position: int, at: int) -> None:
        policy = str(e.originator_id)
        self._close_all("policy", policy, position, at)
        self._close_all("policy_version", policy, position, at)

    # -- roles and sessions --------------------------------------------------------------------
    @on.on(Role.RoleCreated)
    def _role_created(self, e: Role.RoleCreated, position: int, at: int) -> None:
        payload = {
            "description": e.description,
            "trust_policy": e.trust_policy,
            "max_session_duration": e.max_session_duration,
            "sessions_revoked_before": None,
            "named_at": position,
            "trust_position": position,
        }
        self._open_fact(
            "role", str(e.originator_id), e.role_name, e.account_id, payload, position, at
        )

    @on.on(Role.RoleUpdated)
    def _role_updated(self, e: Role.RoleUpdated, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            description=e.description,
            max_session_duration=e.max_session_duration,
        )

    @on.on(Role.RoleTrustPolicyUpdated)
    def _role_trust_updated(self, e: Role.RoleTrustPolicyUpdated, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            trust_policy=e.trust_policy,
            trust_position=position,
        )

    @on.on(Role.TagsChanged)
    def _role_tags_changed(self, e: Role.TagsChanged, position: int, at: int) -> None:
        self._replace_named("role", str(e.originator_id), position, at, tags=dict(e.tags))

    @on.on(Role.RoleSessionsRevoked)
    def _role_sessions_revoked(self, e: Role.RoleSessionsRevoked, position: int, at: int) -> None:
        self._replace_named(
            "role",
            str(e.originator_id),
            position,
            at,
            sessions_revoked_before=to_micros(e.issued_before),
        )

    @on.on(Role.RoleDeleted)
    def _role_deleted(self, e: Role.RoleDeleted, position: int, at: int) -> None:
        role = str(e.originator_id)
        self._close_all("role", role, position, at)
        self._close_all("attachments", role, position, at)

    # -- entrustments and delegations ----------------------------------------------------------
    @on.on(Entrustment.EntrustmentGranted)
    def _entrustment_granted(
        self, e: Entrustment.EntrustmentGranted, position: int, at: int
    ) -> None:
        payload = {
            "trustee_account_id": e.trustee_account_id,
            "scope": e.scope,
            "scope_policies": e.scope_policies,
            "contract_ref": e.contract_ref,
            "starts_at": _micros(e.starts_at),
            "ends_at": _micros(e.ends_at),
            "description": e.description,
            "revoked": False,
            "revoked_reason": None,
            "ended": False,
            "named_at": position,
        }
        self._open_fact(
            "entrustment", str(e.originator_id), e.role_name, e.account_id, payload, position, at
        )

    @on.on(Entrustment.EntrustmentAmended)
    def _entrustment_amended(
        self, e: Entrustment.EntrustmentAmended, position: int, at: int
    ) -> None:
        self._replace_named(
            "entrustment",
            str(e.originator_id),
            position,
            at,
            scope=e.scope,
            scope_policies=e.scope_policies,
        )

    @on.on(Entrustment.EntrustmentRevoked)
    def _entrustment_revoked(
        self, e: Entrustment.EntrustmentRevoked, position: int, at: int
    ) -> None:
        reason = (e.audit or {}).get("reason")
        self._replace_named(
            "entrustment", str(e.originator_id), position, at, revoked=True, revoked_reason=reason
        )

    @on.on(Entrustment.EntrustmentEnded)
    def _entrustment_ended(self, e: Entrustment.EntrustmentEnded, position: int, at: int) -> None:
        self._replace_named("entrustment", str(e.originator_id), position, at, ended=True)

    @on.on(Delegation.DelegationGranted)
    def _delegation_granted(self, e: Delegation.DelegationGranted, position: int, at: int) -> None:
        delegation = str(e.originator_id)
        payload = {
            "entrustment_id": str(e.entrustment_id),
            "entrustment_account_id": e.entrustment_account_id,
            "grantee_arn": e.grantee_arn,
            "grantee_kind": e.grantee_kind,
            "grantee_id": str(e.grantee_id),
            "scope": e.scope,
            "ends_at": _micros(e.ends_at),
            "revoked": False,
        }
        self._open_fact(
            "delegation", delegation, e.grantee_arn, e.account_id, payload, position, at
        )
        entrustment = str(e.entrustment_id)
        old = self._close("entrustment_delegations", entrustment, "", position, at)
        items = [*(old.payload["items"] if old is not None else ()), delegation]
        self._open_fact(
            "entrustment_delegations",
            entrustment,
            "",
            e.account_id,
            {"items": items},
            position,
            at,
        )

    @on.on(Delegation.DelegationRevoked)
    def _delegation_revoked(self, e: Delegation.DelegationRevoked, position: int, at: int) -> None:
        self._replace_named("delegation", str(e.originator_id), position, at, revoked=True)

    @on.on(Session.SessionIssued)
    def _session_issued(self, e: Session.SessionIssued, position: int, at: int) -> None:
        payload = {
            "access_key_id": e.access_key_id,
            "account_id": e.account_id,
            "role_id": str(e.role_id),
            "role_name": e.role_name,
            "role_session_name": e.role_session_name,
            "source_arn": e.source_arn,
            "source_account_id": e.source_account_id,
            "source_user_id": str(e.source_user_id) if e.source_user_id is not None else None,
            "parent_access_key_id": e.parent_access_key_id,
            "session_policy": e.session_policy,
            "issued_at": to_micros(e.issued_at),
            "expiration": to_micros(e.expiration),
        }
        self._open_fact(
            "session", e.access_key_id, e.role_session_name, e.account_id, payload, position, at
        )

    @on.on(Session.SessionRevoked)
    def _session_revoked(self, e: Session.SessionRevoked, position: int, at: int) -> None:
        access_key_id = self._sessions.get(e.originator_id)
        if access_key_id is not None:  # else already revoked, or forgotten long after expiry
            self._close_all("session", access_key_id, position, at)


HANDLERS.ignores(NameClaim.NameClaimed, NameClaim.NameReclaimed, NameClaim.NameReleased)
# who erased an account's personal data changes no fact of any instant (the keyring erases)
HANDLERS.ignores(Account.PersonalDataErased)

# OIDC providers' facts: their handlers register themselves on HANDLERS (defined above)
from mandate.projections.history import (  # noqa: E402
    temporal_directory,
    temporal_federation,
    temporal_resource_policies,
)

_REGISTERED = (temporal_federation, temporal_directory, temporal_resource_policies)


def _micros(moment: datetime | None) -> int | None:
    return to_micros(moment) if moment is not None else None
