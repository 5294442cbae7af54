"""The write side's read port (``domain.ledger.ports.ReadPort``) over the decision index.

The ledger checks a command's preconditions against these answers (who is in a group, who
holds a policy, what an AssumeRole needs to know of a role) before it writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind, entrustment_arn
from mandate.domain.ledger.ports import PrincipalRef
from mandate.domain.sts.assume_role import EntrustmentTerms, RoleFacts
from mandate.projections.decisions.through_roles import ThroughRoles

__all__ = ["LedgerReadPort"]


class LedgerReadPort(ThroughRoles):
    """``ReadPort``: group members, policy holders, a policy's document, a role's facts."""

    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        group = self.groups.get(group_id)
        return sorted(group.member_ids) if group else []

    def policy_holders(self, policy_id: UUID) -> list[PrincipalRef]:
        return sorted(self._holders.get(policy_id, frozenset()))

    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        policy = self.policy_by_name(account_id, policy_name)
        if policy is None:
            return None
        return policy.versions[policy.default_version].document

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        """The role as AssumeRole needs it, read with no event applying (``steady``): a
        managed role's terms and the entrustment's version they were read at agree, so a
        save fenced on that version is fenced on those terms."""
        with self.steady:
            return self._role_facts(account_id, role_name)

    def _role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        role = self.role_by_name(account_id, role_name)
        if role is None or not self._is_open(account_id):
            return None
        terms = None
        if role.entrustment_id is not None:
            entrustment = self.entrustments[role.entrustment_id]
            now = datetime.now(UTC)
            reaching = self.delegations_reaching(entrustment, now)
            terms = EntrustmentTerms(
                entrustment.id,
                entrustment_arn(entrustment.account_id, entrustment.id),
                entrustment.trustee_account_id,
                entrustment.state().dead_reason(now),
                entrustment.ends_at,
                frozenset(reaching),
                reaching,
                entrustment.version,
                frozenset(
                    i
                    for i in entrustment.delegation_ids
                    if self.delegations[i].grantee_kind is PrincipalKind.GROUP
                ),
            )
        return RoleFacts(
            role.id,
            role.account_id,
            role.role_name,
            role.trust,
            role.max_session_duration,
            terms,
            role.trust_position,
            role.tags,
        )
