"""Audit rules of Resource Directory: a directory enabled, folders, members, control policies.

Every event of the directory carries its management account, so each record names its
target without naming state: the folder or member (``directory_arn``) or the control policy
(``control_policy_arn``). A member moved concerns both accounts: the management account
acted, and the member's RAM identities are bounded by its new folder's policies from then on.
An invitation concerns both accounts too: it is recorded on the handshake in the account
that acted (the inviter invites and cancels, the invited account accepts or declines).
Registered on ``RULES`` by event class.
"""

from __future__ import annotations

from datetime import datetime

from mandate.domain.permissions.handshakes import Handshake, handshake_arn
from mandate.domain.permissions.resource_directory import (
    ResourceDirectory,
    control_policy_arn,
    directory_arn,
)
from mandate.projections.audit.rules import RULES, Described

__all__: list[str] = []  # the rules register themselves on RULES

RD = ResourceDirectory


@RULES.on(RD.DirectoryEnabled)
def _enabled(_: object, e: ResourceDirectory.DirectoryEnabled, at: datetime) -> Described:
    target = directory_arn(e.management_account, e.root_folder_id)
    return Described((e.management_account,), target, {"root_folder_id": e.root_folder_id})


@RULES.on(RD.FolderCreated)
def _folder(_: object, e: ResourceDirectory.FolderCreated, at: datetime) -> Described:
    summary = {"folder_id": e.folder_id, "parent_id": e.parent_id, "name": e.name}
    return Described(
        (e.management_account,), directory_arn(e.management_account, e.folder_id), summary
    )


@RULES.on(RD.FolderRenamed)
def _renamed(_: object, e: ResourceDirectory.FolderRenamed, at: datetime) -> Described:
    target = directory_arn(e.management_account, e.folder_id)
    return Described((e.management_account,), target, {"folder_id": e.folder_id, "name": e.name})


@RULES.on(RD.FolderDeleted)
def _folder_deleted(_: object, e: ResourceDirectory.FolderDeleted, at: datetime) -> Described:
    target = directory_arn(e.management_account, e.folder_id)
    return Described((e.management_account,), target, {"folder_id": e.folder_id})


@RULES.on(RD.AccountMoved)
def _moved(_: object, e: ResourceDirectory.AccountMoved, at: datetime) -> Described:
    target = directory_arn(e.management_account, e.account_id)
    accounts = (e.management_account, e.account_id)
    return Described(accounts, target, {"account_id": e.account_id, "folder_id": e.folder_id})


@RULES.on(RD.AccountRemoved)
def _removed(_: object, e: ResourceDirectory.AccountRemoved, at: datetime) -> Described:
    """RemoveCloudAccount: concerns both accounts, as a move does."""
    target = directory_arn(e.management_account, e.account_id)
    return Described((e.management_account, e.account_id), target, {"account_id": e.account_id})


@RULES.on(RD.ControlPolicyCreated)
def _policy(_: object, e: ResourceDirectory.ControlPolicyCreated, at: datetime) -> Described:
    target = control_policy_arn(e.management_account, e.policy_name)
    return Described((e.management_account,), target, {"policy_name": e.policy_name})


@RULES.on(RD.ControlPolicyUpdated)
def _policy_updated(
    _: object, e: ResourceDirectory.ControlPolicyUpdated, at: datetime
) -> Described:
    """Names what changed (a new name, ``document``, ``description``), never the texts."""
    target = control_policy_arn(e.management_account, e.policy_name)
    fields = (("document", e.document), ("description", e.description))
    summary = {
        "policy_name": e.policy_name,
        "new_policy_name": e.new_policy_name,
        "changed": [name for name, value in fields if value is not None],
    }
    return Described((e.management_account,), target, summary)


@RULES.on(RD.ControlPolicyDeleted)
def _policy_deleted(
    _: object, e: ResourceDirectory.ControlPolicyDeleted, at: datetime
) -> Described:
    target = control_policy_arn(e.management_account, e.policy_name)
    return Described((e.management_account,), target, {"policy_name": e.policy_name})


def _attachment(
    _: object,
    e: ResourceDirectory.ControlPolicyAttached | ResourceDirectory.ControlPolicyDetached,
    at: datetime,
) -> Described:
    target = directory_arn(e.management_account, e.target)
    summary = {"policy_name": e.policy_name, "target": e.target}
    return Described((e.management_account,), target, summary)


RULES.on(RD.ControlPolicyAttached)(_attachment)
RULES.on(RD.ControlPolicyDetached)(_attachment)


def _feature(
    _: object,
    e: ResourceDirectory.ControlPolicyFeatureDisabled
    | ResourceDirectory.ControlPolicyFeatureEnabled,
    at: datetime,
) -> Described:
    """The Control Policy feature switched, on the whole directory (what it is authorised on)."""
    enabled = isinstance(e, ResourceDirectory.ControlPolicyFeatureEnabled)
    summary = {"enablement_status": "Enabled" if enabled else "Disabled"}
    return Described((e.management_account,), directory_arn(e.management_account, "*"), summary)


RULES.on(RD.ControlPolicyFeatureDisabled)(_feature)
RULES.on(RD.ControlPolicyFeatureEnabled)(_feature)


@RULES.on(Handshake.Invited)
def _invited(_: object, e: Handshake.Invited, at: datetime) -> Described:
    """Whether a note was given, never its text."""
    accounts = (e.management_account, e.target_account)
    summary = {"handshake": e.handshake, "target_account": e.target_account}
    summary_note = {"note": e.note is not None}
    target = handshake_arn(e.management_account, e.handshake)
    return Described(accounts, target, {**summary, **summary_note})


def _answered(
    _: object, e: Handshake.Accepted | Handshake.Declined | Handshake.Cancelled, at: datetime
) -> Described:
    acting = e.management_account if isinstance(e, Handshake.Cancelled) else e.target_account
    accounts = (e.management_account, e.target_account)
    summary = {
        "handshake": e.handshake,
        "management_account": e.management_account,
        "target_account": e.target_account,
        "status": type(e).__name__,
    }
    return Described(accounts, handshake_arn(acting, e.handshake), summary)


RULES.on(Handshake.Accepted)(_answered)
RULES.on(Handshake.Declined)(_answered)
RULES.on(Handshake.Cancelled)(_answered)
