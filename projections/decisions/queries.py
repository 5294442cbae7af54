"""Named queries the API reads from the decision index: entities by id or by name, an
account's lists, a principal's generation.

They are the index's read surface: the API reads the index through these, never through the
containers ``IndexState`` keeps (tests/unit/test_layers.py checks it), so that how the index
stores a fact can change without touching a route. Readers never lock: each list is built
from a copy of the container it iterates (handlers replace views' containers, never mutate
them in place while serving).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from mandate.domain.identity.principals import display_name_binding
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.policy.resource_tags import ram_tagged_resource, with_resource_tags
from mandate.projections.decisions.directory_events import DirectoryView, HandshakeView
from mandate.projections.decisions.state import IndexState
from mandate.projections.decisions.views import (
    AccessKeyView,
    AccountView,
    DelegationView,
    EntrustmentView,
    GroupView,
    PolicyView,
    RoleView,
    SessionView,
    UserView,
)

__all__ = ["NamedQueries"]


class NamedQueries(IndexState):
    """Lookups by id and by name, per-account listings (management reads and write
    preconditions), and the generations the index's caches are keyed by."""

    def account(self, account_id: str) -> AccountView | None:
        return self.accounts.get(account_id)

    def user(self, user_id: UUID) -> UserView | None:
        return self.users.get(user_id)

    def shown(self, users: list[UserView]) -> list[UserView]:
        """``users`` as answers show them: sealed display names opened (one query of the key
        table per key), or None and marked erased once the key was destroyed. Only readers
        that show a display name ask for this; lookups (authorization, preconditions) use the
        views as they are, with no query."""
        read = self._personal_reader()
        return [self._opened(user, read) for user in users]

    def _personal_reader(self) -> Callable[[str, str], str | None]:
        """One answer's reader of sealed personal data: asks the data key table whether the
        account's key still lives (so an erasure by any process shows in the next answer)."""
        if self.keyring is None:
            return lambda sealed, bound_to: None
        return self.keyring.personal_reader()

    @staticmethod
    def _opened(user: UserView, read: Callable[[str, str], str | None]) -> UserView:
        """``user`` as answers show it: a copy with its sealed display name opened, or
        marked erased (None) when the account's personal-data key was destroyed."""
        if user.display_name_sealed is None:
            return user
        clear = read(user.display_name_sealed, display_name_binding(user.account_id))
        return dataclasses.replace(user, display_name=clear, display_name_erased=clear is None)

    def policy(self, policy_id: UUID) -> PolicyView | None:
        return self.policies.get(policy_id)

    def access_key(self, access_key_id: str) -> AccessKeyView | None:
        """A live AccessKey (a deleted one is gone; an STS key id is a ``session``)."""
        return self.keys.get(access_key_id)

    def access_keys_of(self, user: UserView) -> list[AccessKeyView]:
        """The user's AccessKeys, in the order the user's view lists them."""
        keys = self.keys
        return [keys[k] for k in user.access_key_ids if k in keys]

    def session(self, access_key_id: str) -> SessionView | None:
        """An STS session by its AccessKeyId, while the index remembers it (expired ones are
        kept an hour, to refuse them with their reason)."""
        return self.sessions.get(access_key_id)

    def entrustment(self, entrustment_id: UUID) -> EntrustmentView | None:
        return self.entrustments.get(entrustment_id)

    def delegation(self, delegation_id: UUID) -> DelegationView | None:
        return self.delegations.get(delegation_id)

    def delegations_under(self, entrustment: EntrustmentView) -> list[DelegationView]:
        """The contract's delegations, in the order it lists them."""
        delegations = self.delegations
        return [delegations[d] for d in entrustment.delegation_ids if d in delegations]

    def member_names(self, group: GroupView) -> list[str]:
        """The names of the group's members, sorted."""
        users = self.users
        return sorted(users[m].user_name for m in group.member_ids if m in users)

    def entrustments_past_term(self, at: datetime) -> list[UUID]:
        """Contracts whose ``ends_at`` is reached at ``at`` but whose end is not yet recorded
        (neither ended nor revoked)."""
        return [
            e.id
            for e in list(self.entrustments.values())
            if e.ends_at is not None and e.ends_at <= at and not e.ended and e.revoked is None
        ]

    def generation_of(self, principal_id: UUID | str) -> int:
        """The principal's generation: it moves whenever anything its decisions depend on
        changes (the key of the index's own caches; 0 for one never touched)."""
        return self._generations.get(principal_id, 0)

    def resource_directory(self, management_account: str) -> DirectoryView | None:
        """The directory a management account enabled (``directory_events``), if any."""
        return self.directories.get(management_account)

    def handshakes_of(self, account_id: str) -> list[HandshakeView]:
        """Invitations ``account_id`` sent (its directory's) or received, oldest first: a
        handshake is shown to these two accounts only."""
        found = [
            view
            for directory in list(self.directories.values())
            for view in directory.handshakes.values()
            if account_id in (view.management_account, view.target_account)
        ]
        return sorted(found, key=lambda view: (view.invited_at, view.handshake))

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
        """The account's users as answers show them (``shown``), by name."""
        mine = [u for u in list(self.users.values()) if u.account_id == account_id]
        return sorted(self.shown(mine), key=lambda u: u.user_name)

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

    def resource_tags(self, resource: str) -> dict[str, str] | None:
        """The tags of the RAM user or role ``resource`` names (``{}`` when none lives under
        that name), or None when it names no RAM user or role: then only an enforcement point
        may say what its tags are."""
        named = ram_tagged_resource(resource)
        if named is None:
            return None
        account_id, kind, name = named
        view = (
            self.user_by_name(account_id, name)
            if kind == "user"
            else self.role_by_name(account_id, name)
        )
        return dict(view.tags) if view is not None else {}

    def with_resource_facts(self, request: AccessRequest) -> AccessRequest:
        """``request`` with the ``acs:ResourceTag/…`` keys of a RAM user or role it names
        taken from the index (what the request said of them is dropped); else as it is."""
        if not request.resource.startswith("acs:ram::"):
            return request  # the hot path: an enforcement point's resource, in a few ns
        tags = self.resource_tags(request.resource)
        if tags is None:
            return request
        # the context's keys are lower-cased already (``AccessRequest.make``), the tags' too
        return AccessRequest(
            request.action, request.resource, with_resource_tags(request.context, tags)
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
