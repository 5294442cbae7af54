"""Answering "could P do it?" through a role: what a user may assume now, over the live index.

docs/design.md §5: ``domain.sts.role_reach.answer_through_roles`` is the rule (the
temporal index answers the same rule as of any T); ``_LiveRoles`` gives it this index's
roles, trusts, entrustments, delegations and resource policies as they are now.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from datetime import datetime
from uuid import UUID

from mandate.domain.policy.control import ControlLevel
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind
from mandate.domain.policy.evaluation import AccessRequest, Layer, PolicySet
from mandate.domain.policy.resource_policies import ResourcePolicy
from mandate.domain.sts.role_reach import AssumableRole, answer_through_roles
from mandate.domain.sts.session_lineage import DelegationState, EntrustmentState
from mandate.projections.decisions.directory_events import control_of
from mandate.projections.decisions.lineage import SessionLineage
from mandate.projections.decisions.views import RoleView

__all__ = ["ThroughRoles"]


class ThroughRoles(SessionLineage):
    """Answers a user could get by assuming one of the roles it may assume now."""

    def answer_through_roles(
        self,
        subject: Subject,
        request: AccessRequest,
        *,
        optimistic: bool = False,
        roles: list[RoleView] | None = None,
        named_of: Container[str] | None = None,
    ) -> Answer | None:
        """The first answer that allows ``request`` through a role ``subject`` may assume now.

        docs/design.md §5, "could P do it?": ``role_reach.answer_through_roles`` over this
        index's facts (the temporal index answers the same rule as of any T). ``roles``: the
        resource's account's roles, when the caller already holds them (access reviews);
        ``named_of``: the accounts whose roles a resource policy names may be tried (None: any).
        """
        if subject.kind is not SubjectKind.USER:
            return None
        request = self.with_resource_facts(request)
        facts = _LiveRoles(self)
        user_id = self.user_ids.get(_user_key(subject))
        candidates = None if roles is None else (facts.assumable(role) for role in roles)
        return answer_through_roles(
            subject,
            user_id,
            request,
            facts,
            optimistic=optimistic,
            roles=candidates,
            named_of=named_of,
        )

    def live_roles(self) -> _LiveRoles:
        """This index's facts about roles now (``RoleReachFacts``, and each role as
        ``role_reach`` takes it), for readers that walk the rule themselves (what-if)."""
        return _LiveRoles(self)


def _user_key(subject: Subject) -> tuple[str, str]:
    return subject.account_id, subject.arn.rpartition("/")[2]


class _LiveRoles:
    """``RoleReachFacts`` over the live index (now)."""

    __slots__ = ("index",)

    def __init__(self, index: ThroughRoles) -> None:
        self.index = index

    def account_open(self, account_id: str) -> bool:
        return self.index._is_open(account_id)

    def roles_in(self, account_id: str) -> Iterator[AssumableRole]:
        return (self.assumable(role) for role in self.index.roles_of(account_id))

    def role_named(self, account_id: str, role_name: str) -> AssumableRole | None:
        view = self.index.role_by_name(account_id, role_name)
        return self.assumable(view) if view is not None else None

    def resource_policies(self, resource: str) -> tuple[ResourcePolicy, ...]:
        return self.index.resource_policies_covering(resource)

    def assumable(self, role: RoleView) -> AssumableRole:
        terms = None
        if role.entrustment_id is not None:
            terms = self.index.entrustments[role.entrustment_id].state()
        arn = f"acs:ram::{role.account_id}:role/{role.role_name}"
        return AssumableRole(
            role.id, role.account_id, arn, role.trust, terms, role.trust_position, role.tags
        )

    def assumable_role_layer(self, role: AssumableRole) -> PolicySet:
        view = self.index.roles.get(role.role_id)
        if view is None:
            return PolicySet.of((), Layer.ROLE)
        return self.index.role_layer_of(view)

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        index = self.index
        live, why = index.live_delegations(
            index.entrustments[entrustment.entrustment_id], user_id, at
        )
        return tuple(d.state() for d in live), why

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        return self.index.delegation_layer_of(delegations)

    def control(self, account_id: str) -> tuple[tuple[ControlLevel, ...], str | None]:
        return control_of(self.index, account_id)
