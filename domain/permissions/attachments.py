"""Policy attachments of a principal and RAM's limits on them.

Users, groups and roles each keep their attachments in their own aggregate, so the
per-principal quota is checked against the very version that the attach event extends.
A Custom attachment records the policy's random id: a policy deleted and re-created under
the same name is a different policy, and the old attachment does not revive for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from mandate.domain.common.errors import Conflict, LimitExceeded, NotFound

__all__ = [
    "MAX_CUSTOM_ATTACHMENTS",
    "MAX_SYSTEM_ATTACHMENTS",
    "Attachment",
    "PolicyChange",
    "PolicyHolder",
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


@dataclass(frozen=True)
class PolicyChange:
    """The fields of a ``PolicyAttached`` / ``PolicyDetached`` event, the same for all three.

    Each aggregate still declares its own two event classes (``class PolicyAttached(PolicyChange,
    Event)`` with a TOPIC naming the aggregate); this base only writes their fields once. Being
    a frozen dataclass, its fields follow the event's own (``audit``) in the stored JSON, as
    when each class declared them.
    """

    policy_type: str
    policy_name: str
    policy_id: UUID | None


class PolicyHolder:
    """What users, groups and roles share about their attachments: RAM's checks, then the event.

    Each aggregate declares its own ``PolicyAttached`` / ``PolicyDetached`` classes (their topics
    name the aggregate) and binds them to the state changes written here::

        _policy_attached = event(PolicyAttached)(PolicyHolder.record_attached)
        _policy_detached = event(PolicyDetached)(PolicyHolder.record_detached)
    """

    attachments: dict[tuple[str, str], Attachment]

    def _holder(self) -> str:
        """How refusals name this principal (``user 'alice'``)."""
        raise NotImplementedError

    def _policy_attached(self, policy_type: str, policy_name: str, policy_id: UUID | None) -> None:
        raise NotImplementedError

    def _policy_detached(self, policy_type: str, policy_name: str, policy_id: UUID | None) -> None:
        raise NotImplementedError

    def attach_policy(self, attachment: Attachment) -> None:
        check_can_attach(self.attachments, attachment, self._holder())
        self._policy_attached(
            policy_type=attachment.policy_type.value,
            policy_name=attachment.policy_name,
            policy_id=attachment.policy_id,
        )

    def detach_policy(self, key: tuple[str, str]) -> None:
        a = check_can_detach(self.attachments, key, self._holder())
        self._policy_detached(
            policy_type=a.policy_type.value, policy_name=a.policy_name, policy_id=a.policy_id
        )

    def detach_all(self) -> None:
        """Detach every attached policy, one event each (a delete with ``detach=true``)."""
        for key in list(self.attachments):
            self.detach_policy(key)

    def record_attached(self, policy_type: str, policy_name: str, policy_id: UUID | None) -> None:
        """Applies a ``PolicyAttached``."""
        a = Attachment(PolicyType(policy_type), policy_name, policy_id)
        self.attachments[a.key] = a

    def record_detached(self, policy_type: str, policy_name: str, policy_id: UUID | None) -> None:
        """Applies a ``PolicyDetached`` (the id is recorded in the event, not needed here)."""
        del self.attachments[(policy_type, policy_name)]
