"""The ``ResourcePolicy`` aggregate: the one policy an account attaches to one of its resources.

One aggregate per (account, service, resource id) — the key ``domain.policy.
resource_policies.resource_key`` gives, the region left out — with a deterministic id, so
PUT, GET and DELETE find it without a name claim and two writers of the same resource
conflict on its version (the ledger re-runs the loser). Its events carry the account, the
ARN as given and the whole document, so each is readable by itself (audit, as-of reads).

Setting it again replaces the document (OSS's PutBucketPolicy, KMS's SetKeyPolicy); after a
deletion the same aggregate takes a new one, its ``version`` still counting up, so the
``matched`` entries of a decision (``policy_name`` the ARN, ``version`` ``v<n>``) tell apart
two documents the resource has had.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID, uuid5

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import NotFound
from mandate.domain.policy.resource_policies import ResourceKey, resource_key

__all__ = ["ResourcePolicy", "resource_policy_id"]

_NAMESPACE: Final = UUID("5b0f1d6e-93a4-4b7f-8d16-0f2c7ad3e915")


def resource_policy_id(key: ResourceKey) -> UUID:
    """The aggregate id of the policy attached at ``key`` (service, account, resource id)."""
    service, account_id, relative = key
    return uuid5(_NAMESPACE, f"resource-policy/{account_id}/{service}/{relative}")


class ResourcePolicy(LedgerAggregate):
    TOPIC = "mandate:ResourcePolicy.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:ResourcePolicy.Event.v1"

    class ResourcePolicyCreated(LedgerAggregate.Created, Event):
        """The first document the resource is given (``version`` 1)."""

        TOPIC = "mandate:ResourcePolicyCreated.v1"
        account_id: str
        resource_arn: str
        document: str
        version: int

    @staticmethod
    def create_id(account_id: str, resource_arn: str, document: str, version: int) -> UUID:
        """Deterministic: the same resource always has the same aggregate."""
        return resource_policy_id(resource_key(resource_arn))

    @event(ResourcePolicyCreated)
    def __init__(self, account_id: str, resource_arn: str, document: str, version: int) -> None:
        self.account_id = account_id
        self.resource_arn = resource_arn
        self.document = document
        self.version = version
        self.deleted = False

    def set(self, resource_arn: str, document: str) -> None:
        """Replace the document (or give one again after a deletion)."""
        self._set(
            account_id=self.account_id,
            resource_arn=resource_arn,
            document=document,
            version=self.version + 1,
        )

    class ResourcePolicySet(Event):
        """A new document for the resource, by itself readable."""

        TOPIC = "mandate:ResourcePolicySet.v1"
        account_id: str
        resource_arn: str
        document: str
        version: int

    @event(ResourcePolicySet)
    def _set(self, account_id: str, resource_arn: str, document: str, version: int) -> None:
        self.resource_arn = resource_arn
        self.document = document
        self.version = version
        self.deleted = False

    def delete(self) -> None:
        if self.deleted:
            raise NotFound(
                f"{self.resource_arn} has no resource policy", code="EntityNotExist.ResourcePolicy"
            )
        self._deleted(
            account_id=self.account_id, resource_arn=self.resource_arn, version=self.version
        )

    class ResourcePolicyDeleted(Event):
        """Carries the account and the ARN: its audit record names the resource by itself."""

        TOPIC = "mandate:ResourcePolicyDeleted.v1"
        account_id: str
        resource_arn: str
        version: int

    @event(ResourcePolicyDeleted)
    def _deleted(self, account_id: str, resource_arn: str, version: int) -> None:
        self.deleted = True
