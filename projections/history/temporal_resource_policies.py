"""The temporal index's facts of resource policies: which document a resource had at T.

One fact per resource (kind ``resource_policy``, subject its aggregate id, object its ARN as
given, payload the document and its version), opened when a policy is attached, replaced
when it is set again, closed when it is deleted — so an as-of decision reads the policies
that covered the resource at T exactly as the live index holds them now
(``as_of.AsOfReader``). Registered on the temporal index's ``HANDLERS`` when ``temporal_index``
loads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mandate.domain.permissions.resource_policies import ResourcePolicy, resource_policy_id
from mandate.domain.policy import resource_policies
from mandate.projections.history import temporal_index
from mandate.projections.history.as_of_facts import AsOfFacts

if TYPE_CHECKING:
    from mandate.projections.history.temporal_index import TemporalIndexProjection

__all__ = ["KIND", "resource_policies_at"]

KIND = "resource_policy"


def _set(
    index: TemporalIndexProjection,
    e: ResourcePolicy.ResourcePolicyCreated | ResourcePolicy.ResourcePolicySet,
    position: int,
    at: int,
) -> None:
    subject = str(e.originator_id)
    index._close_all(KIND, subject, position, at)
    payload = {"document": e.document, "version": e.version}
    index._open_fact(KIND, subject, e.resource_arn, e.account_id, payload, position, at)


def _deleted(
    index: TemporalIndexProjection, e: ResourcePolicy.ResourcePolicyDeleted, position: int, at: int
) -> None:
    index._close_all(KIND, str(e.originator_id), position, at)


temporal_index.HANDLERS.on(ResourcePolicy.ResourcePolicyCreated)(_set)
temporal_index.HANDLERS.on(ResourcePolicy.ResourcePolicySet)(_set)
temporal_index.HANDLERS.on(ResourcePolicy.ResourcePolicyDeleted)(_deleted)


def resource_policies_at(
    facts: AsOfFacts, cursor: Any, resource: str, at: int
) -> tuple[resource_policies.ResourcePolicy, ...]:
    """The policies covering ``resource`` at ``at``, in the live index's order (its own,
    then its bucket's), compiled from the documents they had then."""
    keys = resource_policies.covering_keys(resource)
    if not keys:
        return ()
    ids = [str(resource_policy_id(key)) for key in keys]
    rows = {row["subject"]: row for row in facts.alive(cursor, KIND, ids, at)}
    found = []
    for subject in ids:
        row = rows.get(subject)
        if row is None:
            continue
        payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
        found.append(
            resource_policies.parse_resource_policy(
                payload["document"], row["object"], row["account_id"], version=payload["version"]
            )
        )
    return tuple(found)
