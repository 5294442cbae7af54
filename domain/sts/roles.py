"""RAM roles: a trust policy (who may assume the role), attached policies, a session limit.

A role's sessions are separate aggregates (``domain.sts.sessions``); what the role itself records
about them is the one fact every session of it depends on: ``sessions_revoked_before``, moved
forward by ``RoleSessionsRevoked``. Whether a session is still alive is then decided where it
is used (live index, as-of reader) from facts that never need rewriting: the session's own
interval, its role's liveness and revocation horizon, its source principal and its parent.
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import FieldError, InvalidInput, PreconditionFailed
from mandate.domain.common.tags import Tagged
from mandate.domain.permissions.attachments import (
    Attachment,
    PolicyChange,
    PolicyHolder,
)

__all__ = [
    "DEFAULT_MAX_SESSION_DURATION",
    "MAX_SESSION_DURATION_RANGE",
    "Role",
    "check_max_session_duration",
]

DEFAULT_MAX_SESSION_DURATION = 3_600
MAX_SESSION_DURATION_RANGE = (3_600, 43_200)


def check_max_session_duration(field: str, value: object) -> int:
    low, high = MAX_SESSION_DURATION_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            FieldError(field, f"must be an integer number of seconds from {low} to {high}"),
            code="InvalidParameter.MaxSessionDuration",
        )
    return value


class Role(Tagged, PolicyHolder, LedgerAggregate):
    TOPIC = "mandate:Role.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Role.Event.v1"

    def _holder(self) -> str:
        return f"role {self.role_name!r}"

    class RoleCreated(LedgerAggregate.Created, Event):
        TOPIC = "mandate:RoleCreated.v1"
        account_id: str
        role_name: str
        description: str | None
        trust_policy: str
        max_session_duration: int

    @event(RoleCreated)
    def __init__(
        self,
        account_id: str,
        role_name: str,
        description: str | None,
        trust_policy: str,
        max_session_duration: int,
    ) -> None:
        self.account_id = account_id
        self.role_name = role_name
        self.description = description
        self.trust_policy = trust_policy
        self.max_session_duration = max_session_duration
        self.deleted = False
        self.attachments: dict[tuple[str, str], Attachment] = {}
        self.sessions_revoked_before: datetime | None = None
        self.tags: dict[str, str] = {}

    def update(self, *, description: str | None, max_session_duration: int | None) -> None:
        """RAM's UpdateRole (description and session limit; the trust has its own command)."""
        new_description = self.description if description is None else description
        new_max = (
            self.max_session_duration if max_session_duration is None else max_session_duration
        )
        if (new_description, new_max) == (self.description, self.max_session_duration):
            return
        self._updated(description=new_description, max_session_duration=new_max)

    class RoleUpdated(Event):
        TOPIC = "mandate:RoleUpdated.v1"
        description: str | None
        max_session_duration: int

    @event(RoleUpdated)
    def _updated(self, description: str | None, max_session_duration: int) -> None:
        self.description = description
        self.max_session_duration = max_session_duration

    def set_trust_policy(self, trust_policy: str, *, rebind: bool = False) -> None:
        """Replace the trust; the same text again is no event unless ``rebind``.

        Writing a trust binds each user or role it names exactly to the entity holding the
        name then (``domain.sts.assume_role.name_binds``), so writing the same text again on purpose
        (``rebind``) is an event: it admits a principal re-created under a name since.
        """
        if trust_policy == self.trust_policy and not rebind:
            return
        self._trust_policy_updated(trust_policy=trust_policy)

    class RoleTrustPolicyUpdated(Event):
        TOPIC = "mandate:RoleTrustPolicyUpdated.v1"
        trust_policy: str

    @event(RoleTrustPolicyUpdated)
    def _trust_policy_updated(self, trust_policy: str) -> None:
        self.trust_policy = trust_policy

    def revoke_sessions(self, issued_before: datetime) -> None:
        """Every session of this role issued before ``issued_before`` is dead from now on.

        The horizon only moves forward: revoking "before an earlier instant" again must not
        bring back sessions an earlier revocation ended.
        """
        horizon = self.sessions_revoked_before
        if horizon is not None and issued_before <= horizon:
            return  # an earlier revocation already ended every session this one would
        self._sessions_revoked(issued_before=issued_before)

    class RoleSessionsRevoked(Event):
        TOPIC = "mandate:RoleSessionsRevoked.v1"
        issued_before: datetime

    @event(RoleSessionsRevoked)
    def _sessions_revoked(self, issued_before: datetime) -> None:
        self.sessions_revoked_before = issued_before

    def delete(self, *, detach: bool, require_detached: bool = False) -> None:
        """RAM's DeleteRole: refused while policies are attached, unless detaching (/v1's
        ``detach``); with ``require_detached`` (RAM's rule) refused whatever ``detach`` says."""
        if self.attachments and (require_detached or not detach):
            raise PreconditionFailed(
                f"role {self.role_name!r} still has {len(self.attachments)} attached policies; "
                "detach them first or pass detach=true",
                code="DeleteConflict.Role.Policy",
            )
        self.detach_all()
        self._deleted()

    class RoleDeleted(Event):
        TOPIC = "mandate:RoleDeleted.v1"

    @event(RoleDeleted)
    def _deleted(self) -> None:
        self.deleted = True

    # -- tags (RAM's TagResources / UntagResources, ``domain.common.tags``) ---------------
    def _tagged_name(self) -> str:
        return f"role {self.role_name!r}"

    class TagsChanged(Event):
        TOPIC = "mandate:Role.TagsChanged.v1"
        tags: dict[str, str]
        """The role's whole tag set after the change."""

    @event(TagsChanged)
    def _tags_changed(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)

    class PolicyAttached(PolicyChange, Event):
        TOPIC = "mandate:Role.PolicyAttached.v1"

    class PolicyDetached(PolicyChange, Event):
        TOPIC = "mandate:Role.PolicyDetached.v1"

    _policy_attached = event(PolicyAttached)(PolicyHolder.record_attached)
    _policy_detached = event(PolicyDetached)(PolicyHolder.record_detached)
