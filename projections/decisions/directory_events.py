"""How Resource Directory events change the decision index: the tree and its control policies.

The index keeps each directory as its management account's ``DirectoryView`` and which
directory each member is in. Any change moves one counter, ``_control_epoch``, that the memo
folds into every principal's generation while a directory exists (``memo.DecisionMemo``):
directory changes are rare and touch every RAM identity of the accounts beneath, so
invalidating all memoised answers is simpler than tracing them, and costs nothing to an index
with no directory. ``control_of`` gives a member's compiled levels, cached per epoch. A folder
renamed or an unattached control policy deleted bounds nothing, so moves no epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

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
from mandate.projections.decisions.state import IndexState, on

__all__ = ["DirectoryView", "HandshakeView", "control_of"]

RD = ResourceDirectory


@dataclass(frozen=True, slots=True)
class HandshakeView:
    """An invitation to a directory, as listings show it (``handshakes``)."""

    handshake: str
    management_account: str
    target_account: str
    note: str | None
    status: str
    invited_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class DirectoryView:
    """A directory as decisions need it: the tree, the members, policies and attachments.

    Handlers change a copy and put it in place whole (``_changing``), never mutating a view
    or its containers, so a reader holding a view (a route listing the tree, an RPC answer
    reading several containers) sees one state while the follower applies the next event."""

    management_account: str
    parents: dict[str, str | None]
    members: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """Folders' names (the root folder's is ``Root``), for listings."""
    descriptions: dict[str, str] = field(default_factory=dict)
    """Custom control policies' descriptions, where one was given."""
    control_enabled: bool = True
    """The Control Policy feature: disabled, nothing is attached and nothing bounds."""
    handshakes: dict[str, HandshakeView] = field(default_factory=dict)
    """The directory's invitations by id, whatever their status (they bound nothing)."""


def control_of(index: IndexState, account_id: str) -> tuple[tuple[ControlLevel, ...], str | None]:
    """The compiled control levels over ``account_id`` and its management account; no levels
    for an account in no directory (or for a management account: it is no member), nor for a
    member while its directory's Control Policy feature is disabled."""
    management = index.member_of.get(account_id)
    if management is None or not index.directories[management].control_enabled:
        return (), None
    epoch = index._control_epoch  # read before the directory: see below
    cached = index._control_levels.get(account_id)
    if cached is not None and cached[0] == epoch:
        return cached[1], management
    directory = index.directories[management]
    levels = compile_levels(
        path_levels(directory.parents, directory.members, directory.attached, account_id),
        directory.documents,
    )
    # Stored under the epoch read *before* computing: callers outside ``steady`` (management
    # calls, the review) may compute while an event applies, and an event bumps the epoch
    # only after it has changed the directory, so levels read mid-change are stored under an
    # epoch already past and recomputed by the next caller, never served as current.
    index._control_levels[account_id] = (epoch, levels)
    return levels, management


@contextmanager
def _changing(index: IndexState, management_account: str) -> Iterator[DirectoryView]:
    """A copy of the directory to change, put in place whole once changed: a reader holding
    the view (a listing, an RPC answer) sees it as before the event or after, never between
    two of its containers (a policy renamed in ``documents`` but not yet in ``attached``)."""
    directory = replace(index.directories[management_account])
    yield directory
    index.directories[management_account] = directory


def _changed(index: IndexState) -> None:
    index._control_epoch += 1


@on.on(RD.DirectoryEnabled)
def directory_enabled(index: IndexState, e: ResourceDirectory.DirectoryEnabled) -> None:
    index.directories[e.management_account] = DirectoryView(
        e.management_account,
        {e.root_folder_id: None},
        attached={e.root_folder_id: [FULL_ALIYUN_ACCESS]},
        names={e.root_folder_id: "Root"},
    )
    _changed(index)


@on.on(RD.FolderCreated)
def folder_created(index: IndexState, e: ResourceDirectory.FolderCreated) -> None:
    with _changing(index, e.management_account) as directory:
        directory.parents = {**directory.parents, e.folder_id: e.parent_id}
        directory.names = {**directory.names, e.folder_id: e.name}
        attached = first_attachments(directory.control_enabled)
        directory.attached = {**directory.attached, e.folder_id: attached}
    _changed(index)


@on.on(RD.FolderRenamed)
def folder_renamed(index: IndexState, e: ResourceDirectory.FolderRenamed) -> None:
    """Only listings change: a folder's name bounds nothing."""
    with _changing(index, e.management_account) as directory:
        directory.names = {**directory.names, e.folder_id: e.name}


@on.on(RD.FolderDeleted)
def folder_deleted(index: IndexState, e: ResourceDirectory.FolderDeleted) -> None:
    """An empty folder goes, with what was attached to it (no member was beneath it)."""
    with _changing(index, e.management_account) as directory:
        directory.parents = {f: p for f, p in directory.parents.items() if f != e.folder_id}
        directory.names = {f: n for f, n in directory.names.items() if f != e.folder_id}
        directory.attached = {t: a for t, a in directory.attached.items() if t != e.folder_id}
    _changed(index)


@on.on(RD.AccountMoved)
def account_moved(index: IndexState, e: ResourceDirectory.AccountMoved) -> None:
    with _changing(index, e.management_account) as directory:
        if e.account_id not in directory.members:
            attached = first_attachments(directory.control_enabled)
            directory.attached = {**directory.attached, e.account_id: attached}
        directory.members = {**directory.members, e.account_id: e.folder_id}
    index.member_of[e.account_id] = e.management_account  # once its directory shows it
    _changed(index)


@on.on(RD.AccountRemoved)
def account_removed(index: IndexState, e: ResourceDirectory.AccountRemoved) -> None:
    """RemoveCloudAccount: the account is bounded by no control policy from now on."""
    index.member_of.pop(e.account_id, None)  # first: a reader in between sees "not bounded"
    with _changing(index, e.management_account) as directory:
        directory.members = {a: f for a, f in directory.members.items() if a != e.account_id}
        directory.attached = {t: a for t, a in directory.attached.items() if t != e.account_id}
    _changed(index)


@on.on(RD.ControlPolicyCreated)
def control_policy_created(index: IndexState, e: ResourceDirectory.ControlPolicyCreated) -> None:
    with _changing(index, e.management_account) as directory:
        directory.documents = {**directory.documents, e.policy_name: e.document}
        if e.description is not None:
            directory.descriptions = {**directory.descriptions, e.policy_name: e.description}


def _without(mapping: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in mapping.items() if key != name}


@on.on(RD.ControlPolicyUpdated)
def control_policy_updated(index: IndexState, e: ResourceDirectory.ControlPolicyUpdated) -> None:
    """A new document bounds from now on; a new name is the one attached (and explained)."""
    with _changing(index, e.management_account) as directory:
        old, new = e.policy_name, e.new_policy_name or e.policy_name
        document = e.document or directory.documents[old]
        directory.documents = {**_without(directory.documents, old), new: document}
        description = e.description or directory.descriptions.get(old)
        kept = {} if description is None else {new: description}
        directory.descriptions = {**_without(directory.descriptions, old), **kept}
        directory.attached = renamed_attachments(directory.attached, old, new)
    _changed(index)


@on.on(RD.ControlPolicyDeleted)
def control_policy_deleted(index: IndexState, e: ResourceDirectory.ControlPolicyDeleted) -> None:
    """Attached nowhere (the aggregate refuses otherwise): no decision changes."""
    with _changing(index, e.management_account) as directory:
        directory.documents = _without(directory.documents, e.policy_name)
        directory.descriptions = _without(directory.descriptions, e.policy_name)


@on.on(RD.ControlPolicyAttached)
def control_policy_attached(index: IndexState, e: ResourceDirectory.ControlPolicyAttached) -> None:
    with _changing(index, e.management_account) as directory:
        attached = [*directory.attached[e.target], e.policy_name]
        directory.attached = {**directory.attached, e.target: attached}
    _changed(index)


@on.on(RD.ControlPolicyDetached)
def control_policy_detached(index: IndexState, e: ResourceDirectory.ControlPolicyDetached) -> None:
    with _changing(index, e.management_account) as directory:
        attached = [name for name in directory.attached[e.target] if name != e.policy_name]
        directory.attached = {**directory.attached, e.target: attached}
    _changed(index)


@on.on(RD.ControlPolicyFeatureDisabled)
def feature_disabled(index: IndexState, e: ResourceDirectory.ControlPolicyFeatureDisabled) -> None:
    """Every control policy detached: the directory's members are bounded by none."""
    with _changing(index, e.management_account) as directory:
        directory.control_enabled = False  # put in place with the detachments, at once
        directory.attached = nothing_attached(directory.attached)
    _changed(index)


@on.on(RD.ControlPolicyFeatureEnabled)
def feature_enabled(index: IndexState, e: ResourceDirectory.ControlPolicyFeatureEnabled) -> None:
    """``FullAliyunAccess`` alone on every folder and member: bounding again (allowing all)."""
    with _changing(index, e.management_account) as directory:
        directory.attached = full_access_everywhere(directory.attached)
        directory.control_enabled = True
    _changed(index)


@on.on(Handshake.Invited)
def handshake_invited(index: IndexState, e: Handshake.Invited) -> None:
    with _changing(index, e.management_account) as directory:
        at = e.timestamp
        view = HandshakeView(
            e.handshake, e.management_account, e.target_account, e.note, "Pending", at, at
        )
        directory.handshakes = {**directory.handshakes, e.handshake: view}


@on.on(Handshake.Accepted, Handshake.Declined, Handshake.Cancelled)
def handshake_answered(index: IndexState, e: Handshake.Event) -> None:
    """Accepted, declined or cancelled (the event's name is the status): only listings change
    (the acceptance's member is the directory's ``AccountMoved`` of the same transaction)."""
    assert isinstance(e, Handshake.Accepted | Handshake.Declined | Handshake.Cancelled)
    with _changing(index, e.management_account) as directory:
        status = type(e).__name__
        view = replace(directory.handshakes[e.handshake], status=status, modified_at=e.timestamp)
        directory.handshakes = {**directory.handshakes, e.handshake: view}
