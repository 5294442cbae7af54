"""Audit rules of Resource Directory: a directory enabled, folders, members, control policies.

Every event of the directory carries its management account, so each record names its
target without naming state: the folder or member (``directory_arn``) or the control policy
(``control_policy_arn``). A member moved concerns both accounts: the management account
acted, and the member's RAM identities are bounded by its new folder's policies from then on.
Registered on ``RULES`` by event class.
"""

from __future__ import annotations

from datetime import datetime

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


@RULES.on(RD.AccountMoved)
def _moved(_: object, e: ResourceDirectory.AccountMoved, at: datetime) -> Described:
    target = directory_arn(e.management_account, e.account_id)
    accounts = (e.management_account, e.account_id)
    return Described(accounts, target, {"account_id": e.account_id, "folder_id": e.folder_id})


@RULES.on(RD.ControlPolicyCreated)
def _policy(_: object, e: ResourceDirectory.ControlPolicyCreated, at: datetime) -> Described:
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
