"""Custom policies: up to five versions, one of them the default (the one in force).

Documents are stored in events as canonical JSON text, exactly as accepted; the
projections compile the default version once per change, never per decision.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from eventsourcing.domain import event

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict, LimitExceeded, NotFound, PreconditionFailed

__all__ = ["MAX_POLICY_VERSIONS", "ManagedPolicy", "PolicyVersion"]

MAX_POLICY_VERSIONS = 5


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version_id: str
    document: str


class ManagedPolicy(LedgerAggregate):
    TOPIC = "mandate:ManagedPolicy.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:ManagedPolicy.Event.v1"

    class PolicyCreated(LedgerAggregate.Created, Event):
        TOPIC = "mandate:PolicyCreated.v1"
        account_id: str
        policy_name: str
        description: str | None
        document: str

    @event(PolicyCreated)
    def __init__(
        self, account_id: str, policy_name: str, description: str | None, document: str
    ) -> None:
        self.account_id = account_id
        self.policy_name = policy_name
        self.description = description
        self.versions: dict[str, PolicyVersion] = {"v1": PolicyVersion("v1", document)}
        self.default_version = "v1"
        self.next_version_number = 2
        self.deleted = False

    @property
    def default_document(self) -> str:
        return self.versions[self.default_version].document

    def create_version(self, document: str, *, set_as_default: bool, rotate: bool = False) -> str:
        """A new version; at the limit, ``rotate`` (RAM's RotateStrategy
        ``DeleteOldestNonDefaultVersionWhenLimitExceeded``) first deletes the oldest version
        that is not the default, in the same save, instead of refusing."""
        if len(self.versions) >= MAX_POLICY_VERSIONS and rotate:
            oldest = min(
                (v for v in self.versions if v != self.default_version),
                key=lambda v: int(v[1:]),
            )
            self._version_deleted(version_id=oldest)
        if len(self.versions) >= MAX_POLICY_VERSIONS:
            raise LimitExceeded(
                f"policy {self.policy_name!r} already has {MAX_POLICY_VERSIONS} versions; "
                "delete a non-default version first",
                code="LimitExceeded.Policy.Version",
            )
        version_id = f"v{self.next_version_number}"
        self._version_created(
            version_id=version_id, document=document, set_as_default=set_as_default
        )
        return version_id

    class PolicyVersionCreated(Event):
        TOPIC = "mandate:PolicyVersionCreated.v1"
        version_id: str
        document: str
        set_as_default: bool

    @event(PolicyVersionCreated)
    def _version_created(self, version_id: str, document: str, set_as_default: bool) -> None:
        self.versions[version_id] = PolicyVersion(version_id, document)
        self.next_version_number += 1
        if set_as_default:
            self.default_version = version_id

    def set_default_version(self, version_id: str) -> None:
        self._existing_version(version_id)
        if version_id == self.default_version:
            return
        self._default_set(version_id=version_id, previous_version_id=self.default_version)

    class DefaultPolicyVersionSet(Event):
        TOPIC = "mandate:DefaultPolicyVersionSet.v1"
        version_id: str
        previous_version_id: str

    @event(DefaultPolicyVersionSet)
    def _default_set(self, version_id: str, previous_version_id: str) -> None:
        self.default_version = version_id

    def delete_version(self, version_id: str) -> None:
        self._existing_version(version_id)
        if version_id == self.default_version:
            raise Conflict(
                f"{version_id} is the default version of policy {self.policy_name!r} "
                "and cannot be deleted",
                code="DeleteConflict.Policy.DefaultVersion",
            )
        self._version_deleted(version_id=version_id)

    class PolicyVersionDeleted(Event):
        TOPIC = "mandate:PolicyVersionDeleted.v1"
        version_id: str

    @event(PolicyVersionDeleted)
    def _version_deleted(self, version_id: str) -> None:
        del self.versions[version_id]

    def delete(
        self, *, holders: Collection[PrincipalKind] = (), require_detached: bool = False
    ) -> None:
        """Delete the policy: refused while ``holders`` (the kind of each principal that still
        holds it; the caller detaches them in the same save when told to) is not empty.
        ``require_detached`` is RAM's DeletePolicy without ``CascadingDelete``: the refusal
        names the first kind holding it (``DeleteConflict.Policy.User``, then ``.Group``, then
        ``.Role``), and it is refused too while it has a version other than its default
        (``DeleteConflict.Policy.Version``). Without it (/v1) any holder is
        ``DeleteConflict.Policy.User`` and versions go with the policy."""
        if holders and require_detached:
            kind = min(holders, key=list(PrincipalKind).index)
            count = sum(1 for k in holders if k == kind)
            raise PreconditionFailed(
                f"policy {self.policy_name!r} is still attached to {count} {kind.plural}",
                code=f"DeleteConflict.Policy.{kind.noun}",
            )
        if holders:
            raise PreconditionFailed(
                f"policy {self.policy_name!r} is still attached to {len(holders)} "
                "principals; detach it first or pass detach=true",
                code="DeleteConflict.Policy.User",
            )
        if require_detached and len(self.versions) > 1:
            raise PreconditionFailed(
                f"policy {self.policy_name!r} has versions other than its default "
                f"{self.default_version}; delete them first",
                code="DeleteConflict.Policy.Version",
            )
        self._deleted()

    class PolicyDeleted(Event):
        TOPIC = "mandate:PolicyDeleted.v1"

    @event(PolicyDeleted)
    def _deleted(self) -> None:
        self.deleted = True

    def _existing_version(self, version_id: str) -> PolicyVersion:
        try:
            return self.versions[version_id]
        except KeyError:
            raise NotFound(
                f"policy {self.policy_name!r} has no version {version_id!r}",
                code="EntityNotExist.Policy.Version",
            ) from None
