"""Resource Directory's shapes shared by the aggregate and the read models: ARNs, the path
from the root folder to a member with what is attached at each level, and what the Control
Policy feature attaches.

The feature (EnableControlPolicy / DisableControlPolicy,
https://www.alibabacloud.com/help/en/resource-management/latest/disable-the-control-policy-feature):
disabled, every control policy is detached from every folder and member (none deleted), none
may be attached, and control policies bound no one; enabled again, ``FullAliyunAccess`` is
attached to every folder and member, custom policies only by hand. While it is on, a new
folder or member starts with ``FullAliyunAccess``; while off, with nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.control import FULL_ALIYUN_ACCESS

__all__ = [
    "check_description",
    "check_folder_name",
    "control_policy_arn",
    "directory_arn",
    "first_attachments",
    "folder_depth",
    "full_access_everywhere",
    "membership_arn",
    "nothing_attached",
    "path_levels",
    "renamed_attachments",
]


def directory_arn(management_account: str, node: str) -> str:
    """A folder (``fd-…``, the root ``r-…``) or a member account, as the management account's;
    ``*`` is the whole directory (what the Control Policy feature is authorised on)."""
    if node == "*":
        return f"acs:resourcemanager::{management_account}:*"
    kind = "account" if node.isdigit() else "folder"
    return f"acs:resourcemanager::{management_account}:{kind}/{node}"


def control_policy_arn(management_account: str, policy_name: str) -> str:
    return f"acs:resourcemanager::{management_account}:controlpolicy/{policy_name}"


def membership_arn(account_id: str, name: str) -> str:
    """The membership claim of a member account (its name is always ``membership``)."""
    return f"acs:resourcemanager::{account_id}:membership/{name}"


_FOLDER_NAME = re.compile(r"[A-Za-z0-9_.\-\u4e00-\u9fff]+")
"""Letters, digits, ``_``, ``.``, ``-`` and Chinese characters (CreateFolder's FolderName;
ALIYUN::ResourceManager::Folder's constraint names the Chinese characters)."""


def check_folder_name(name: str, field: str) -> None:
    """A folder's name: 1 to 24 characters of ``_FOLDER_NAME``."""
    if not isinstance(name, str) or not 1 <= len(name) <= 24:
        raise InvalidInput(
            FieldError(field, "must be 1 to 24 characters"), code="InvalidParameter.Name"
        )
    if not _FOLDER_NAME.fullmatch(name):
        reason = "may contain only letters, digits, '_', '.', '-' and Chinese characters"
        raise InvalidInput(FieldError(field, reason), code="InvalidParameter.Folder.Name")


def folder_depth(parents: Mapping[str, str | None], folder_id: str) -> int:
    """Levels below the root folder (the root is 0)."""
    depth = 0
    parent = parents[folder_id]
    while parent is not None:
        depth += 1
        parent = parents[parent]
    return depth


def check_description(description: str | None) -> None:
    """A control policy's description: 1 to 1024 characters when given."""
    if description is not None and not 1 <= len(description) <= 1024:
        raise InvalidInput(
            FieldError("description", "must be 1 to 1024 characters"),
            code="InvalidParameter.Description",
        )


def first_attachments(control_enabled: bool) -> list[str]:
    """What a new folder or member starts with: ``FullAliyunAccess`` while the feature is on."""
    return [FULL_ALIYUN_ACCESS] if control_enabled else []


def full_access_everywhere(attached: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """EnableControlPolicy: ``FullAliyunAccess`` alone on every folder and member."""
    return {node: [FULL_ALIYUN_ACCESS] for node in attached}


def nothing_attached(attached: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """DisableControlPolicy: every control policy detached from every folder and member."""
    return {node: [] for node in attached}


def renamed_attachments(
    attached: Mapping[str, Sequence[str]], old: str, new: str
) -> dict[str, list[str]]:
    """``attached`` with the policy ``old`` named ``new`` where attached, order kept."""
    return {node: [new if n == old else n for n in names] for node, names in attached.items()}


def path_levels(
    parents: Mapping[str, str | None],
    members: Mapping[str, str],
    attached: Mapping[str, Sequence[str]],
    account_id: str,
) -> list[tuple[str, list[str]]]:
    """(node, attached policy names) from the root folder down to ``account_id``; empty if
    the account is not a member. Shared by the aggregate and the read models."""
    folder = members.get(account_id)
    if folder is None:
        return []
    path: list[str] = [account_id]
    node: str | None = folder
    while node is not None:
        path.append(node)
        node = parents[node]
    return [(node, list(attached.get(node, ()))) for node in reversed(path)]
