"""Audit rules of resource-policy events: a policy attached to a resource, replaced, removed.

Each event carries the account and the resource's ARN, so each record names the resource
itself (the policy has no name of its own) without naming state. The document is a policy,
no secret: the record carries it whole, with its version, so the trail shows what was
granted to whom. Registered on ``RULES`` by event class.
"""

from __future__ import annotations

import json
from datetime import datetime

from mandate.domain.permissions.resource_policies import ResourcePolicy
from mandate.projections.audit.rules import RULES, Described

__all__: list[str] = []  # the rules register themselves on RULES


def _written(
    _: object,
    e: ResourcePolicy.ResourcePolicyCreated | ResourcePolicy.ResourcePolicySet,
    at: datetime,
) -> Described:
    summary = {"version": e.version, "policy_document": json.loads(e.document)}
    return Described((e.account_id,), e.resource_arn, summary)


RULES.on(ResourcePolicy.ResourcePolicyCreated)(_written)
RULES.on(ResourcePolicy.ResourcePolicySet)(_written)


@RULES.on(ResourcePolicy.ResourcePolicyDeleted)
def _deleted(_: object, e: ResourcePolicy.ResourcePolicyDeleted, at: datetime) -> Described:
    return Described((e.account_id,), e.resource_arn, {"version": e.version})
