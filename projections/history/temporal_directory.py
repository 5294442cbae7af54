"""The temporal index's facts of Resource Directory: the tree and control policies over time.

Two kinds. ``resource_directory`` (subject the management account, object ``""``): the whole
directory — folders' parents, members' folders, control policy documents (the version live
then: an update or deletion replaces the fact, never edits it) and what is attached where —
replaced by each change, so "the directory at T" is one fact, as memberships
and attachments are (the tree is small: five levels, RAM's quotas). ``rd_member`` (subject
the member account, object its management account): opened when an account first joins, so
"which directory was this account in at T" is one lookup. ``control_at`` reads both and
compiles the levels that bounded the account then, for as-of decisions and access reviews.
While the Control Policy feature is disabled the directory's fact says so
(``control_disabled``; absent, as in every fact written before the feature could be
disabled, it was on) and nothing is attached: no levels bound a member then.
Registered on the temporal index's ``HANDLERS`` when ``temporal_index`` loads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mandate.domain.permissions.directory_paths import (
    first_attachments,
    full_access_everywhere,
    nothing_attached,
    path_levels,
    renamed_attachments,
)
from mandate.domain.permissions.handshakes import Handshake
from mandate.domain.permissions.resource_directory import ResourceDirectory
from mandate.domain.policy.control import FULL_ALIYUN_ACCESS, ControlLevel, compile_levels
from mandate.projections.history import temporal_index

if TYPE_CHECKING:
    from mandate.projections.history.as_of_facts import AsOfFacts
    from mandate.projections.history.temporal_index import TemporalIndexProjection

__all__ = ["control_at"]

KIND = "resource_directory"
MEMBER = "rd_member"
RD = ResourceDirectory


def control_at(
    facts: AsOfFacts, cursor: Any, account_id: str, at: int
) -> tuple[tuple[ControlLevel, ...], str | None]:
    """The control levels over ``account_id`` at ``at`` and its management account then."""
    member = facts.alive(cursor, MEMBER, [account_id], at)
    if not member:
        return (), None
    management = str(member[0]["object"])
    [directory] = facts.alive(cursor, KIND, [management], at)
    tree = json.loads(directory["payload"])
    if tree.get("control_disabled"):
        return (), None
    levels = path_levels(tree["parents"], tree["members"], tree["attached"], account_id)
    return compile_levels(levels, tree["documents"]), management


def _tree(index: TemporalIndexProjection, management: str) -> dict[str, Any]:
    """A copy of the directory's open payload (facts are never changed in place)."""
    fact = index._open[(KIND, management, "")]
    tree: dict[str, Any] = json.loads(json.dumps(fact.payload))
    return tree


def _enabled(
    index: TemporalIndexProjection, e: ResourceDirectory.DirectoryEnabled, position: int, at: int
) -> None:
    tree = {
        "root_folder_id": e.root_folder_id,
        "parents": {e.root_folder_id: None},
        "members": {},
        "documents": {},
        "attached": {e.root_folder_id: [FULL_ALIYUN_ACCESS]},
    }
    index._open_fact(KIND, e.management_account, "", e.management_account, tree, position, at)


def _folder(
    index: TemporalIndexProjection, e: ResourceDirectory.FolderCreated, position: int, at: int
) -> None:
    tree = _tree(index, e.management_account)
    tree["parents"][e.folder_id] = e.parent_id
    tree["attached"][e.folder_id] = first_attachments(not tree.get("control_disabled"))
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _folder_deleted(
    index: TemporalIndexProjection, e: ResourceDirectory.FolderDeleted, position: int, at: int
) -> None:
    tree = _tree(index, e.management_account)
    del tree["parents"][e.folder_id], tree["attached"][e.folder_id]
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _moved(
    index: TemporalIndexProjection, e: ResourceDirectory.AccountMoved, position: int, at: int
) -> None:
    tree = _tree(index, e.management_account)
    if e.account_id not in tree["members"]:
        tree["attached"][e.account_id] = first_attachments(not tree.get("control_disabled"))
        index._open_fact(MEMBER, e.account_id, e.management_account, e.account_id, {}, position, at)
    tree["members"][e.account_id] = e.folder_id
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _removed(
    index: TemporalIndexProjection, e: ResourceDirectory.AccountRemoved, position: int, at: int
) -> None:
    """RemoveCloudAccount: a member no more, so bounded by nothing from ``at`` on."""
    tree = _tree(index, e.management_account)
    del tree["members"][e.account_id], tree["attached"][e.account_id]
    index._close(MEMBER, e.account_id, e.management_account, position, at)
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _policy(
    index: TemporalIndexProjection,
    e: ResourceDirectory.ControlPolicyCreated,
    position: int,
    at: int,
) -> None:
    tree = _tree(index, e.management_account)
    tree["documents"][e.policy_name] = e.document
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _policy_updated(
    index: TemporalIndexProjection,
    e: ResourceDirectory.ControlPolicyUpdated,
    position: int,
    at: int,
) -> None:
    """The document live from ``at`` on, under its new name where renamed: the fact before
    keeps the old document and name, so an as-of answer before ``at`` sees them."""
    tree = _tree(index, e.management_account)
    old, new = e.policy_name, e.new_policy_name or e.policy_name
    document = tree["documents"].pop(old)
    tree["documents"][new] = e.document or document
    tree["attached"] = renamed_attachments(tree["attached"], old, new)
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _policy_deleted(
    index: TemporalIndexProjection,
    e: ResourceDirectory.ControlPolicyDeleted,
    position: int,
    at: int,
) -> None:
    tree = _tree(index, e.management_account)
    del tree["documents"][e.policy_name]
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _attachment(
    index: TemporalIndexProjection,
    e: ResourceDirectory.ControlPolicyAttached | ResourceDirectory.ControlPolicyDetached,
    position: int,
    at: int,
) -> None:
    tree = _tree(index, e.management_account)
    attached = tree["attached"][e.target]
    if isinstance(e, ResourceDirectory.ControlPolicyAttached):
        attached.append(e.policy_name)
    else:
        attached.remove(e.policy_name)
    index._replace(KIND, e.management_account, "", position, at, **tree)


def _feature(
    index: TemporalIndexProjection,
    e: ResourceDirectory.ControlPolicyFeatureDisabled
    | ResourceDirectory.ControlPolicyFeatureEnabled,
    position: int,
    at: int,
) -> None:
    """Disabled: nothing attached, and said so; enabled: ``FullAliyunAccess`` everywhere."""
    tree = _tree(index, e.management_account)
    if isinstance(e, ResourceDirectory.ControlPolicyFeatureDisabled):
        tree["attached"] = nothing_attached(tree["attached"])
        tree["control_disabled"] = True
    else:
        tree["attached"] = full_access_everywhere(tree["attached"])
        tree["control_disabled"] = False  # (a replaced fact keeps keys not given anew)
    index._replace(KIND, e.management_account, "", position, at, **tree)


temporal_index.HANDLERS.on(RD.DirectoryEnabled)(_enabled)
temporal_index.HANDLERS.on(RD.FolderCreated)(_folder)
temporal_index.HANDLERS.on(RD.AccountMoved)(_moved)
temporal_index.HANDLERS.on(RD.AccountRemoved)(_removed)
temporal_index.HANDLERS.on(RD.ControlPolicyCreated)(_policy)
temporal_index.HANDLERS.on(RD.ControlPolicyAttached)(_attachment)
temporal_index.HANDLERS.on(RD.ControlPolicyDetached)(_attachment)
temporal_index.HANDLERS.on(RD.FolderDeleted)(_folder_deleted)
temporal_index.HANDLERS.on(RD.ControlPolicyUpdated)(_policy_updated)
temporal_index.HANDLERS.on(RD.ControlPolicyDeleted)(_policy_deleted)
temporal_index.HANDLERS.ignores(RD.FolderRenamed)  # names bound nothing; the tree has none
temporal_index.HANDLERS.on(RD.ControlPolicyFeatureDisabled)(_feature)
temporal_index.HANDLERS.on(RD.ControlPolicyFeatureEnabled)(_feature)
# An invitation bounds nothing: membership as of T is the AccountMoved its acceptance wrote.
temporal_index.HANDLERS.ignores(
    Handshake.Invited, Handshake.Accepted, Handshake.Declined, Handshake.Cancelled
)
