"""What-if's part of a Resource Directory: the control policies bounding each member account.

A control policy grants nothing: it bounds the RAM users, roles and sessions of every member
account beneath the node it is attached to — a Deny at any level denies, and every level of
the path from the root folder down to the member must allow (``domain.policy.control``). A
management account reads its directory's tree and control policies, never its members'
principals (their users, groups and policies are each member's own). So its reach lists the
bound per member account, not per principal: for each member ``X`` of its directory, each
row of each control policy on ``X``'s path is one entry of principal ``acs:ram::<X>:*`` (every
RAM identity of ``X``; ``X``'s root is not bounded), chain the path's nodes as ARNs (root
folder first, ``X`` last), ``layer`` ``control``, ``via`` the node it is attached at.

A control Deny denies the same wherever it is attached, but levels intersect: an Allow at
one node never stands in for an Allow at another (``what_if.diff`` keys them by node), so
detaching ``FullAliyunAccess`` from a member whose folder keeps it is a loss, not a reroute.
"""

from __future__ import annotations

from collections.abc import Iterator

from mandate.domain.permissions.directory_paths import directory_arn
from mandate.domain.policy.evaluation import Layer
from mandate.projections.decisions.directory_events import control_of
from mandate.projections.decisions.reach_entries import Reach, policy_rows
from mandate.projections.decisions.state import IndexState

__all__ = ["control_reach", "member_principal"]


def member_principal(account_id: str) -> str:
    """How a reach names every RAM identity of member account ``account_id`` at once."""
    return f"acs:ram::{account_id}:*"


def control_reach(index: IndexState, management_account: str) -> Iterator[Reach]:
    """The control bound over each member of ``management_account``'s directory (none if it
    has no directory, nor while its Control Policy feature is disabled)."""
    directory = index.directories.get(management_account)
    if directory is None:
        return
    for member in sorted(directory.members):
        levels, _ = control_of(index, member)
        chain = tuple(directory_arn(management_account, level.node) for level in levels)
        principal = member_principal(member)
        for level in levels:
            for policy in level.policies:
                source = policy.source
                for effect, action, resource, condition in policy_rows(policy):
                    yield Reach(
                        principal,
                        effect,
                        action,
                        resource,
                        chain,
                        Layer.CONTROL.value,
                        source.policy_type,
                        source.policy_name,
                        source.via,
                        condition,
                    )
