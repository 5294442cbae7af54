"""RAM's shapes of policies, policy versions, attachments and roles, read from the index.

Keys are exactly those the SDK models read (``alibabacloud_ram20150501.models``); an optional
field Mandate has no value for is left out, as ``ram_users.user_body`` does. A document is
the canonical JSON text the engine stored (RAM answers a string, not an object). System
policies are the catalogue's (``domain.policy.system_policies``): one version, ``v1``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from mandate.api.presenters import role_json
from mandate.api.rpc.answers import rpc_time
from mandate.api.rpc.registry import RpcContext
from mandate.domain.common.arns import role_arn
from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.policy.system_policies import (
    SYSTEM_POLICIES,
    SYSTEM_POLICY_VERSION,
    SystemPolicy,
)
from mandate.projections.decisions.views import (
    GroupView,
    PolicyVersionView,
    PolicyView,
    RoleView,
    UserView,
)

__all__ = [
    "SYSTEM_POLICY_DATE",
    "AttachmentCounts",
    "Holder",
    "attached_body",
    "custom_policy_body",
    "custom_version_body",
    "holds",
    "role_body",
    "system_policy_body",
    "system_version_body",
]

SYSTEM_POLICY_DATE: Final = rpc_time(datetime(2015, 5, 1, tzinfo=UTC))
"""The ``CreateDate``/``UpdateDate`` of a System policy: the catalogue has no history, and its
policies are as old as the API version (2015-05-01)."""

Holder = UserView | GroupView | RoleView
"""Whatever policies are attached to: a user, a group or a role."""


def holds(holder: Holder, policy_type: str, policy_name: str, policy: PolicyView | None) -> bool:
    """Whether ``holder`` has the policy attached (a Custom one by its id: a policy re-created
    under the name is another policy)."""
    attached = holder.attachments.get((policy_type, policy_name))
    if attached is None:
        return False
    return policy_type == PolicyType.SYSTEM or (
        policy is not None and attached.policy_id == policy.id
    )


class AttachmentCounts:
    """How many of an account's users, groups and roles hold each policy (one pass)."""

    def __init__(self, ctx: RpcContext) -> None:
        index = ctx.runtime.index
        account_id = ctx.account_id
        holders: Iterable[Holder] = (
            *index.users_of(account_id),
            *index.groups_of(account_id),
            *index.roles_of(account_id),
        )
        self._counts: Counter[tuple[str, Any]] = Counter()
        for holder in holders:
            for a in holder.attachments.values():
                self._counts[(a.policy_type.value, a.policy_id or a.policy_name)] += 1

    def custom(self, policy: PolicyView) -> int:
        return self._counts[(PolicyType.CUSTOM.value, policy.id)]

    def system(self, policy: SystemPolicy) -> int:
        return self._counts[(PolicyType.SYSTEM.value, policy.policy_name)]


def _described(body: dict[str, Any], description: str | None) -> dict[str, Any]:
    if description is not None:
        body["Description"] = description
    return body


def custom_policy_body(
    policy: PolicyView, *, attachments: int | None = None, update: bool = True
) -> dict[str, Any]:
    """RAM's ``Policy`` of a custom policy; ``update`` False for CreatePolicy's answer."""
    body = _described(
        {"PolicyName": policy.policy_name, "PolicyType": "Custom"}, policy.description
    )
    body["DefaultVersion"] = policy.default_version
    if attachments is not None:
        body["AttachmentCount"] = attachments
    body["CreateDate"] = rpc_time(policy.created_at)
    if update:
        body["UpdateDate"] = rpc_time(policy.updated_at)
    return body


def system_policy_body(policy: SystemPolicy, *, attachments: int | None = None) -> dict[str, Any]:
    """RAM's ``Policy`` of a System policy."""
    body = _described(
        {"PolicyName": policy.policy_name, "PolicyType": "System"}, policy.description
    )
    body["DefaultVersion"] = SYSTEM_POLICY_VERSION
    if attachments is not None:
        body["AttachmentCount"] = attachments
    body["CreateDate"] = SYSTEM_POLICY_DATE
    body["UpdateDate"] = SYSTEM_POLICY_DATE
    return body


def custom_version_body(policy: PolicyView, version: PolicyVersionView) -> dict[str, Any]:
    """RAM's ``PolicyVersion``."""
    return {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.version_id == policy.default_version,
        "PolicyDocument": version.document,
        "CreateDate": rpc_time(version.created_at),
    }


def system_version_body(policy: SystemPolicy) -> dict[str, Any]:
    """The one ``PolicyVersion`` of a System policy."""
    return {
        "VersionId": SYSTEM_POLICY_VERSION,
        "IsDefaultVersion": True,
        "PolicyDocument": policy.document.canonical_json(),
        "CreateDate": SYSTEM_POLICY_DATE,
    }


def attached_body(attachment: Attachment, ctx: RpcContext) -> dict[str, Any]:
    """One entry of ListPoliciesFor{User,Group,Role}: the policy as it stands now."""
    body: dict[str, Any] = {
        "PolicyName": attachment.policy_name,
        "PolicyType": attachment.policy_type.value,
    }
    if attachment.policy_id is None:
        system = SYSTEM_POLICIES.get(attachment.policy_name)
        _described(body, system.description if system else None)
        body["DefaultVersion"] = SYSTEM_POLICY_VERSION
        return body
    policy = ctx.runtime.index.policy(attachment.policy_id)
    if policy is not None:
        _described(body, policy.description)
        body["DefaultVersion"] = policy.default_version
    return body


def role_body(
    role: RoleView, ctx: RpcContext, *, trust: bool = True, update: bool = True
) -> dict[str, Any]:
    """RAM's ``Role``: ``trust`` False for ListRoles (no AssumeRolePolicyDocument there),
    ``update`` False for CreateRole's answer (no UpdateDate). A role an entrustment manages
    shows the trust computed from its live delegations, as /v1 does."""
    body = _described(
        {
            "RoleId": str(role.id),
            "RoleName": role.role_name,
            "Arn": role_arn(role.account_id, role.role_name),
        },
        role.description,
    )
    if trust:
        if role.entrustment_id is None:
            body["AssumeRolePolicyDocument"] = role.trust_policy
        else:
            computed = role_json(role, ctx.runtime.index)["assume_role_policy_document"]
            body["AssumeRolePolicyDocument"] = json.dumps(computed, separators=(",", ":"))
    body["MaxSessionDuration"] = role.max_session_duration
    body["CreateDate"] = rpc_time(role.created_at)
    if update:
        body["UpdateDate"] = rpc_time(role.updated_at)
    return body
