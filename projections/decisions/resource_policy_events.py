"""How resource-policy events change the decision index (issue 16 item 2).

A resource policy is kept compiled by where it is attached (``ResourceKey``); live decisions
on a resource it covers combine it with the caller's own layers
(``domain.policy.resource_policies.decide_with_resource``). A change can alter anyone's
decisions on that resource, so it moves the index's resource-policy epoch, under which
memoised answers are filed (``memo``): answers from before the change are never read again.
"""

from __future__ import annotations

from mandate.domain.permissions.resource_policies import ResourcePolicy
from mandate.domain.policy.resource_policies import parse_resource_policy, resource_key
from mandate.projections.decisions.state import IndexState, on

__all__: list[str] = []


def _set(
    index: IndexState,
    e: ResourcePolicy.ResourcePolicyCreated | ResourcePolicy.ResourcePolicySet,
) -> None:
    """The document was checked when written; parsed again here, it compiles the same."""
    policy = parse_resource_policy(e.document, e.resource_arn, e.account_id, version=e.version)
    index.resource_policies[policy.key] = policy
    index.resource_policy_epoch += 1


on.on(ResourcePolicy.ResourcePolicyCreated)(_set)
on.on(ResourcePolicy.ResourcePolicySet)(_set)


@on.on(ResourcePolicy.ResourcePolicyDeleted)
def _deleted(index: IndexState, e: ResourcePolicy.ResourcePolicyDeleted) -> None:
    index.resource_policies.pop(resource_key(e.resource_arn), None)
    index.resource_policy_epoch += 1
