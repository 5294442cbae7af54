"""Resource-policy commands: put, read and delete the policy attached to a resource (issue 16).

Every check runs before an event exists (``parse_resource_policy``: the document in RAM's
policy language with a ``Principal`` in each statement, the ARN literal and the caller's
own, each statement's ``Resource`` within that ARN), so a refused call writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from mandate.domain.common.errors import FieldError, InvalidInput, NotFound
from mandate.domain.ledger.commands import command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Written
from mandate.domain.permissions.resource_policies import ResourcePolicy, resource_policy_id
from mandate.domain.policy.resource_policies import owned_resource_key, parse_resource_policy

__all__ = ["AttachedResourcePolicy", "ResourcePolicyCommands", "read_resource_policy"]


@dataclass(frozen=True, slots=True)
class AttachedResourcePolicy:
    """What GET answers: the ARN, the document as stored, and its version."""

    resource_arn: str
    document: Mapping[str, Any]
    version: int


class ResourcePolicyCommands(LedgerCore):
    """PUT/GET/DELETE /v1/accounts/{a}/resource-policies?resource=<ARN>."""

    def _resource_policy(self, account_id: str, resource_arn: object) -> ResourcePolicy | None:
        """The resource's aggregate (``None`` if never given a policy); an ARN of another
        account is refused as on PUT: an account reads and deletes only its own."""
        if not isinstance(resource_arn, str):
            raise InvalidInput(FieldError("resource", "must be a resource ARN"))
        key = owned_resource_key(resource_arn, account_id)
        try:
            found: object = self.repository.get(resource_policy_id(key))
        except AggregateNotFoundError:
            return None
        assert isinstance(found, ResourcePolicy)
        return found

    @command
    def put_resource_policy(
        self, account_id: str, resource_arn: object, document: object
    ) -> Written:
        """Attach ``document`` to ``resource_arn`` of ``account_id``, replacing any earlier one."""
        if not isinstance(resource_arn, str):
            raise InvalidInput(FieldError("resource", "must be a resource ARN"))
        if not isinstance(document, (str, Mapping)):
            raise InvalidInput(FieldError("policy_document", "must be a JSON policy document"))
        checked = parse_resource_policy(document, resource_arn, account_id)
        self._open_account(account_id)
        existing = self._resource_policy(account_id, resource_arn)
        if existing is None:
            created = ResourcePolicy(
                account_id=account_id,
                resource_arn=resource_arn,
                document=checked.canonical,
                version=1,
            )
            return Written(self._commit(created))
        existing.set(resource_arn, checked.canonical)
        return Written(self._commit(existing))

    @command
    def delete_resource_policy(self, account_id: str, resource_arn: object) -> Written:
        """Detach the resource's policy; ``NotFound`` if it has none."""
        self._open_account(account_id)
        found = self._resource_policy(account_id, resource_arn)
        if found is None or found.account_id != account_id:
            raise NotFound(
                f"{resource_arn} has no resource policy", code="EntityNotExist.ResourcePolicy"
            )
        found.delete()
        return Written(self._commit(found))


def read_resource_policy(
    ledger: ResourcePolicyCommands, account_id: str, resource_arn: object
) -> AttachedResourcePolicy:
    """The policy attached to the resource, read from the log, or ``NotFound``. A read, not a
    command: the ledger's public methods are its commands only."""
    ledger._open_account(account_id)
    found = ledger._resource_policy(account_id, resource_arn)
    if found is None or found.deleted or found.account_id != account_id:
        raise NotFound(
            f"{resource_arn} has no resource policy", code="EntityNotExist.ResourcePolicy"
        )
    return AttachedResourcePolicy(found.resource_arn, json.loads(found.document), found.version)
