"""Named queries the API reads from the decision index: principals by name, an account's lists.

Readers never lock: each list is built from a copy of the container it iterates (handlers
replace views' containers, never mutate them in place while serving).
"""

from __future__ import annotations

from mandate.projections.decisions.state import IndexState
from mandate.projections.decisions.views import (
    DelegationView,
    EntrustmentView,
    GroupView,
    PolicyView,
    RoleView,
    UserView,
)

__all__ = ["NamedQueries"]


class NamedQueries(IndexState):
    """Lookups by name and per-account listings (management reads and write preconditions)."""

    def user_by_name(self, account_id: str, user_name: str) -> UserView | None:
        user_id = self.user_ids.get((account_id, user_name))
        return self.users.get(user_id) if user_id else None

    def group_by_name(self, account_id: str, group_name: str) -> GroupView | None:
        group_id = self.group_ids.get((account_id, group_name))
        return self.groups.get(group_id) if group_id else None

    def policy_by_name(self, account_id: str, policy_name: str) -> PolicyView | None:
        policy_id = self.policy_ids.get((account_id, policy_name))
        return self.policies.get(policy_id) if policy_id else None

    def users_of(self, account_id: str) -> list[UserView]:
        return sorted(
            (u for u in list(self.users.values()) if u.account_id == account_id),
            key=lambda u: u.user_name,
        )

    def groups_of(self, account_id: str) -> list[GroupView]:
        return sorted(
            (g for g in list(self.groups.values()) if g.account_id == account_id),
            key=lambda g: g.group_name,
        )

    def policies_of(self, account_id: str) -> list[PolicyView]:
        return sorted(
            (p for p in list(self.policies.values()) if p.account_id == account_id),
            key=lambda p: p.policy_name,
        )

    def role_by_name(self, account_id: str, role_name: str) -> RoleView | None:
        role_id = self.role_ids.get((account_id, role_name))
        return self.roles.get(role_id) if role_id else None

    def roles_of(self, account_id: str) -> list[RoleView]:
        return sorted(
            (r for r in list(self.roles.values()) if r.account_id == account_id),
            key=lambda r: r.role_name,
        )

    def entrustments_of(self, account_id: str, direction: str) -> list[EntrustmentView]:
        side = "account_id" if direction == "granted" else "trustee_account_id"
        return sorted(
            (e for e in list(self.entrustments.values()) if getattr(e, side) == account_id),
            key=lambda e: (e.created_at, str(e.id)),
        )

    def delegations_of(self, account_id: str) -> list[DelegationView]:
        return sorted(
            (d for d in list(self.delegations.values()) if d.account_id == account_id),
            key=lambda d: (d.created_at, str(d.id)),
        )
