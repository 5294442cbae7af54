"""Audit rules of the identity events: accounts, RAM users and groups, custom policies, names.

Each rule names the entity acted upon as it was when the event happened (a rename names the
user by its previous name), updates the naming state, and summarises the change in the
event's own words — never a secret or a secret's hash (``root_secret_hash`` and
``secret_hash`` are not copied). Registered on ``RULES`` by event class.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mandate.domain.common.arns import PrincipalKind, root_arn
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.projections.audit.conventions import UnknownAuditEvent, key_arn
from mandate.projections.audit.naming import CLAIMABLE, AuditNaming, NamedEntity
from mandate.projections.audit.rules import RULES, Described, attachment_rule, created, deleted_rule

__all__: list[str] = []  # the rules register themselves on RULES

# -- accounts ------------------------------------------------------------------------------------


@RULES.on(Account.AccountOpened)
def _account_opened(naming: AuditNaming, e: Account.AccountOpened, at: datetime) -> Described:
    naming.remember(e.originator_id, NamedEntity("account", e.account_id, e.name))
    # root_secret_hash is deliberately not copied.
    summary = {"account_name": e.name, "root_access_key_id": e.root_access_key_id}
    return Described((e.account_id,), root_arn(e.account_id), summary)


@RULES.on(Account.AccountClosed)
def _account_closed(naming: AuditNaming, e: Account.AccountClosed, at: datetime) -> Described:
    return Described.about(naming, e.originator_id, "account")


@RULES.on(Account.RootAccessKeyRotated)
def _root_key_rotated(
    naming: AuditNaming, e: Account.RootAccessKeyRotated, at: datetime
) -> Described:
    account = naming.require(e.originator_id, "account")
    summary = {
        "access_key_id": e.access_key_id,
        "previous_access_key_id": e.previous_access_key_id,
    }  # secret_hash is deliberately not copied.
    return Described((account.account_id,), key_arn(account.arn, e.access_key_id), summary)


@RULES.on(Account.PersonalDataErased)
def _personal_data_erased(
    naming: AuditNaming, e: Account.PersonalDataErased, at: datetime
) -> Described:
    """Who erased (the record's actor and request id) and which key ids went; no value."""
    return Described.about(
        naming, e.originator_id, "account", {"destroyed_key_ids": list(e.destroyed_key_ids)}
    )


# -- users ---------------------------------------------------------------------------------------


@RULES.on(User.UserCreated)
def _user_created(naming: AuditNaming, e: User.UserCreated, at: datetime) -> Described:
    summary = {"user_name": e.user_name, "display_name": e.display_name}
    summary |= _sealed_display_name(e.display_name_sealed)
    return created(naming, e.originator_id, NamedEntity("user", e.account_id, e.user_name), summary)


@RULES.on(User.UserUpdated)
def _user_updated(naming: AuditNaming, e: User.UserUpdated, at: datetime) -> Described:
    before = naming.require(e.originator_id, "user")
    naming.remember(e.originator_id, NamedEntity("user", before.account_id, e.user_name))
    summary = {
        "user_name": e.user_name,
        "previous_user_name": e.previous_user_name,
        "display_name": e.display_name,
    } | _sealed_display_name(e.display_name_sealed)
    return Described.of(before, summary)


@RULES.on(User.TagsChanged)
def _user_tags_changed(naming: AuditNaming, e: User.TagsChanged, at: datetime) -> Described:
    """The user's whole tag set after the change (``acs:ResourceTag`` conditions read it)."""
    return Described.about(naming, e.originator_id, "user", {"tags": dict(e.tags)})


def _sealed_display_name(sealed: str | None) -> dict[str, str]:
    """A display name recorded sealed (crypto-shredding) is summarised sealed: the record and
    its chain hash never hold the clear value, so they verify unchanged after the account's
    personal data is erased (the sealed value then opens nowhere). Absent for clear ones, so
    records of events from before sealing are as they were."""
    return {} if sealed is None else {"display_name_sealed": sealed}


RULES.on(User.UserDeleted)(deleted_rule("user"))


_KeyEvent = (
    User.AccessKeyCreated | User.AccessKeyDisabled | User.AccessKeyEnabled | User.AccessKeyDeleted
)
_KEY_STATUS: dict[type, str | None] = {
    User.AccessKeyCreated: "Active",
    User.AccessKeyDisabled: "Inactive",
    User.AccessKeyEnabled: "Active",
    User.AccessKeyDeleted: None,
}


def _access_key(naming: AuditNaming, e: _KeyEvent, at: datetime) -> Described:
    user = naming.require(e.originator_id, "user")
    summary: dict[str, Any] = {"access_key_id": e.access_key_id}
    status = _KEY_STATUS[type(e)]
    if status is not None:
        summary["status"] = status
    # AccessKeyCreated's secret_hash is deliberately not copied.
    return Described((user.account_id,), key_arn(user.arn, e.access_key_id), summary)


RULES.on(User.AccessKeyCreated)(_access_key)
RULES.on(User.AccessKeyDisabled)(_access_key)
RULES.on(User.AccessKeyEnabled)(_access_key)
RULES.on(User.AccessKeyDeleted)(_access_key)


def _membership(
    naming: AuditNaming, e: User.UserAddedToGroup | User.UserRemovedFromGroup, at: datetime
) -> Described:
    return Described.about(naming, e.originator_id, "user", {"group_name": e.group_name})


RULES.on(User.UserAddedToGroup)(_membership)
RULES.on(User.UserRemovedFromGroup)(_membership)


RULES.on(User.PolicyAttached)(attachment_rule(PrincipalKind.USER))
RULES.on(User.PolicyDetached)(attachment_rule(PrincipalKind.USER))


# -- groups --------------------------------------------------------------------------------------


@RULES.on(Group.GroupCreated)
def _group_created(naming: AuditNaming, e: Group.GroupCreated, at: datetime) -> Described:
    group = NamedEntity("group", e.account_id, e.group_name)
    summary = {"group_name": e.group_name, "comments": e.comments}
    return created(naming, e.originator_id, group, summary)


RULES.on(Group.GroupDeleted)(deleted_rule("group"))
RULES.on(Group.PolicyAttached)(attachment_rule(PrincipalKind.GROUP))
RULES.on(Group.PolicyDetached)(attachment_rule(PrincipalKind.GROUP))


# -- custom policies -----------------------------------------------------------------------------


@RULES.on(ManagedPolicy.PolicyCreated)
def _policy_created(naming: AuditNaming, e: ManagedPolicy.PolicyCreated, at: datetime) -> Described:
    summary = {
        "policy_name": e.policy_name,
        "description": e.description,
        "version_id": "v1",
        "set_as_default": True,
        "policy_document": e.document,
    }
    policy = NamedEntity("policy", e.account_id, e.policy_name)
    return created(naming, e.originator_id, policy, summary)


@RULES.on(ManagedPolicy.PolicyVersionCreated)
def _policy_version_created(
    naming: AuditNaming, e: ManagedPolicy.PolicyVersionCreated, at: datetime
) -> Described:
    summary = {
        "version_id": e.version_id,
        "set_as_default": e.set_as_default,
        "policy_document": e.document,
    }
    return Described.about(naming, e.originator_id, "policy", summary)


@RULES.on(ManagedPolicy.DefaultPolicyVersionSet)
def _default_policy_version_set(
    naming: AuditNaming, e: ManagedPolicy.DefaultPolicyVersionSet, at: datetime
) -> Described:
    summary = {"version_id": e.version_id, "previous_version_id": e.previous_version_id}
    return Described.about(naming, e.originator_id, "policy", summary)


@RULES.on(ManagedPolicy.PolicyVersionDeleted)
def _policy_version_deleted(
    naming: AuditNaming, e: ManagedPolicy.PolicyVersionDeleted, at: datetime
) -> Described:
    return Described.about(naming, e.originator_id, "policy", {"version_id": e.version_id})


RULES.on(ManagedPolicy.PolicyDeleted)(deleted_rule("policy"))


# -- name claims ---------------------------------------------------------------------------------


@RULES.on(NameClaim.NameClaimed)
def _name_claimed(naming: AuditNaming, e: NameClaim.NameClaimed, at: datetime) -> Described:
    if e.kind not in CLAIMABLE:
        raise UnknownAuditEvent(f"a name claim of kind {e.kind!r} has no ARN", e.TOPIC)
    claim = NamedEntity("name-claim", e.account_id, e.name, claimed_kind=e.kind)
    naming.remember(e.originator_id, claim)
    return Described((claim.account_id,), claim.arn, {"kind": e.kind, "name": e.name})


def _name_claim_moved(
    naming: AuditNaming, e: NameClaim.NameReclaimed | NameClaim.NameReleased, at: datetime
) -> Described:
    claim = naming.require(e.originator_id, "name-claim")
    summary = {"kind": claim.claimed_kind, "name": claim.name}
    return Described((claim.account_id,), claim.arn, summary)


RULES.on(NameClaim.NameReclaimed)(_name_claim_moved)
RULES.on(NameClaim.NameReleased)(_name_claim_moved)
