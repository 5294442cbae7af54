"""Policy attachments of a principal and RAM's limits on them.

Users, groups and (later) roles each keep their attachments in their own aggregate, so the
per-principal quota is checked against the very version that the attach event extends.
A Custom attachment records the policy's random id: a policy deleted and re-created under
the same name is a different policy, and the old attachment does not revive for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from domain.common.errors import Conflict, LimitExceeded, NotFound

__all__ = [
    "MAX_CUSTOM_ATTACHMENTS",
    "MAX_SYSTEM_ATTACHMENTS",
    "Attachment",
    "PolicyType",
    "check_can_attach",
    "check_can_detach",
]

MAX_CUSTOM_ATTACHMENTS = 10
MAX_SYSTEM_ATTACHMENTS = 20


class PolicyType(StrEnum):
    SYSTEM = "System"
    CUSTOM = "Custom"


@dataclass(frozen=True, slots=True)
class Attachment:
    policy_type: PolicyType
    policy_name: str
    policy_id: UUID | None  # None for System policies, which have no aggregate

    @property
    def key(self) -> tuple[str, str]:
        return (self.policy_type.value, self.policy_name)


def check_can_attach(
    attachments: dict[tuple[str, str], Attachment], attachment: Attachment, principal: str
) -> None:
    if attachment.key in attachments:
        raise Conflict(
            f"{attachment.policy_type} policy {attachment.policy_name!r} is already attached "
            f"to {principal}",
            code="EntityAlreadyExists.Policy.Attachment",
        )
    same_type = sum(1 for a in attachments.values() if a.policy_type == attachment.policy_type)
    limit = (
        MAX_CUSTOM_ATTACHMENTS
        if attachment.policy_type is PolicyType.CUSTOM
        else MAX_SYSTEM_ATTACHMENTS
    )
    if same_type >= limit:
        raise LimitExceeded(
            f"{principal} already has {limit} {attachment.policy_type} policies attached",
            code="LimitExceeded.Policy.Attachment",
        )


def check_can_detach(
    attachments: dict[tuple[str, str], Attachment], key: tuple[str, str], principal: str
) -> Attachment:
    try:
        return attachments[key]
    except KeyError:
        raise NotFound(
            f"{key[0]} policy {key[1]!r} is not attached to {principal}",
            code="EntityNotExist.Policy.Attachment",
        ) from None
