"""The built-in System policies: read-only, the same in every account (docs/design.md §1).

Their documents are RAM's own, written out here as data and parsed through the same
``parse_policy_document`` as any custom policy, so they obey the same language and are
compiled the same way. They have one version, ``v1``, forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from mandate.domain.policy.document import PolicyDocument, parse_policy_document

__all__ = ["SYSTEM_POLICIES", "SYSTEM_POLICY_TYPE", "SYSTEM_POLICY_VERSION", "SystemPolicy"]

SYSTEM_POLICY_TYPE: Final = "System"
SYSTEM_POLICY_VERSION: Final = "v1"


@dataclass(frozen=True, slots=True)
class SystemPolicy:
    """A built-in policy: its name, what it is for, and its (only) document."""

    policy_name: str
    description: str
    document: PolicyDocument
    version: str = SYSTEM_POLICY_VERSION
    policy_type: str = SYSTEM_POLICY_TYPE


def _allow(actions: str | list[str]) -> PolicyDocument:
    return parse_policy_document(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    )


def _catalogue() -> Mapping[str, SystemPolicy]:
    policies = (
        SystemPolicy(
            "AdministratorAccess",
            "Provides full access to all services and resources.",
            _allow("*"),
        ),
        SystemPolicy(
            "ReadOnlyAccess",
            "Provides read-only access to all services and resources.",
            _allow(["*:Get*", "*:List*", "*:Describe*", "*:Query*", "*:BatchGet*"]),
        ),
        SystemPolicy(
            "AliyunOSSFullAccess",
            "Provides full access to Object Storage Service (OSS).",
            _allow("oss:*"),
        ),
        SystemPolicy(
            "AliyunOSSReadOnlyAccess",
            "Provides read-only access to Object Storage Service (OSS).",
            _allow(["oss:Get*", "oss:List*"]),
        ),
        SystemPolicy(
            "AliyunECSFullAccess",
            "Provides full access to Elastic Compute Service (ECS).",
            _allow("ecs:*"),
        ),
        SystemPolicy(
            "AliyunRAMFullAccess",
            "Provides full access to Resource Access Management (RAM): users, groups, "
            "policies and roles.",
            _allow("ram:*"),
        ),
        SystemPolicy(
            "AliyunSTSAssumeRoleAccess",
            "Allows calling AssumeRole of Security Token Service (STS).",
            _allow("sts:AssumeRole"),
        ),
    )
    return MappingProxyType({policy.policy_name: policy for policy in policies})


SYSTEM_POLICIES: Final[Mapping[str, SystemPolicy]] = _catalogue()
"""Every System policy by name, in the order of docs/design.md §1."""
