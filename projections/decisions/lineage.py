"""Whether a session is alive, and as whom it acts: its lineage over the live index.

``domain.sts.session_lineage.resolve_session`` walks a session's chain (roles, contracts,
delegations, parent sessions); ``_LiveLineage`` gives it this index's facts and notes what
the answer depends on (role generations, the delegations reached, the first time bound to
pass), which is how a verified session credential is cached and memoised.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime
from uuid import UUID

from mandate.domain.common.arns import PrincipalKind, delegation_arn
from mandate.domain.common.ledger_time import format_instant
from mandate.domain.policy.decisions import Subject
from mandate.domain.policy.evaluation import Layer, PolicySet
from mandate.domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    RoleState,
    SessionInvalid,
    SessionRecord,
    delegation_layer,
    resolve_session,
    session_policy_layer,
)
from mandate.projections.decisions.memo import DecisionMemo
from mandate.projections.decisions.views import DelegationView, EntrustmentView

__all__ = ["SessionLineage"]


class SessionLineage(DecisionMemo):
    """Live delegations, and sessions resolved through their lineage now."""

    def live_delegations(
        self, entrustment: EntrustmentView, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationView, ...], str]:
        """The live delegations under ``entrustment`` reaching the user now, and why none."""
        user = self.users.get(user_id)
        live: list[DelegationView] = []
        dead: list[str] = []
        for delegation_id in entrustment.delegation_ids:
            d = self.delegations[delegation_id]
            if d.grantee_kind is PrincipalKind.USER:
                reaches = d.grantee_id == user_id
            else:
                group = self.groups.get(d.grantee_id)
                reaches = group is not None and user is not None and d.grantee_id in user.groups
            if not reaches:
                continue
            arn = delegation_arn(d.account_id, d.id)
            if d.revoked:
                dead.append(f"delegation {arn} was revoked")
            elif d.ends_at is not None and at >= d.ends_at:
                dead.append(f"delegation {arn} ended at {format_instant(d.ends_at)}")
            elif user is None:
                dead.append("the user no longer exists")
            else:
                live.append(d)
        why = "; ".join(dead) or "no delegation under it names the user or one of its groups"
        return tuple(live), why

    def delegations_reaching(
        self, entrustment: EntrustmentView, at: datetime
    ) -> dict[UUID, tuple[UUID, ...]]:
        """Each trustee's user a live delegation under ``entrustment`` reaches at ``at``, with
        those delegations (directly or through a group the user is in)."""
        reaching: dict[UUID, list[UUID]] = {}
        for delegation_id in entrustment.delegation_ids:
            d = self.delegations[delegation_id]
            if d.revoked or (d.ends_at is not None and at >= d.ends_at):
                continue
            if d.grantee_kind is PrincipalKind.USER:
                if d.grantee_id in self.users:
                    reaching.setdefault(d.grantee_id, []).append(d.id)
            elif (group := self.groups.get(d.grantee_id)) is not None:
                for user_id in group.member_ids:
                    reaching.setdefault(user_id, []).append(d.id)
        return {user_id: tuple(ids) for user_id, ids in reaching.items()}

    def delegation_layer_of(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        key = tuple(d.delegation_id for d in delegations)
        layer = self._delegation_layers.get(key)
        if layer is None:
            if len(self._delegation_layers) >= 10_000:
                self._delegation_layers = {}
            layer = delegation_layer(delegations)
            self._delegation_layers[key] = layer
        return layer

    def session_subject(self, access_key_id: str, at: datetime) -> tuple[Subject, Hashable]:
        """The subject a live session acts as at ``at``, and its memo generation.

        Raises ``SessionInvalid`` naming the dead link of its lineage.
        """
        subject, generation, _ = self._resolve_live(access_key_id, at)
        return subject, generation

    def _resolve_live(self, access_key_id: str, at: datetime) -> tuple[Subject, Hashable, datetime]:
        facts = _LiveLineage(self)
        subject = resolve_session(access_key_id, at, facts)
        return subject, tuple(facts.generations), facts.valid_until

    def live_sessions_of(self, role_id: UUID, now: datetime | None = None) -> list[SessionRecord]:
        """The role's sessions that could act at ``now``, by key id."""
        at = now or datetime.now(UTC)
        live = []
        for view in list(self.sessions.values()):
            if view.record.role_id != role_id:
                continue
            try:
                resolve_session(view.record.access_key_id, at, _LiveLineage(self))
            except SessionInvalid:
                continue
            live.append(view.record)
        return sorted(live, key=lambda r: r.access_key_id)


class _LiveLineage:
    """``LineageFacts`` over the live index (now), noting each role generation it read."""

    __slots__ = ("generations", "index", "valid_until")

    def __init__(self, index: SessionLineage) -> None:
        self.index = index
        self.generations: list[int] = []
        self.valid_until = datetime.max.replace(tzinfo=UTC)
        """The first instant a time bound of the lineage passes (expiry, a contract's end)."""

    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        view = self.index.sessions.get(access_key_id)
        if view is None:
            return None, f"the session {access_key_id} does not exist or expired long ago"
        self.valid_until = min(self.valid_until, view.record.expiration)
        return view.record, view.revoked

    def role(self, role_id: UUID) -> RoleState | None:
        role = self.index.roles.get(role_id)
        if role is None:
            return None
        # read before the layer, so a layer built while an event applies is filed under the
        # old generation (as for users)
        self.generations.append(self.index._generations.get(role_id, 0))
        entrustment = None
        if role.entrustment_id is not None:
            entrustment = self.index.entrustments[role.entrustment_id].state()
            if entrustment.ends_at is not None:
                self.valid_until = min(self.valid_until, entrustment.ends_at)
        return RoleState(
            role.id,
            role.account_id,
            role.role_name,
            role.sessions_revoked_before,
            tuple(role.attachments.values()),
            entrustment,
        )

    def delegations(
        self, entrustment: EntrustmentState, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationState, ...], str]:
        index = self.index
        view = index.entrustments[entrustment.entrustment_id]
        self.generations.append(index._generations.get(user_id, 0))
        live, why = index.live_delegations(view, user_id, at)
        self.generations.append(hash(tuple(d.id for d in live)))
        for d in live:
            if d.ends_at is not None:
                self.valid_until = min(self.valid_until, d.ends_at)
        return tuple(d.state() for d in live), why

    def delegation_layer(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        return self.index.delegation_layer_of(delegations)

    def user_exists(self, user_id: UUID) -> bool:
        return user_id in self.index.users

    def account_open(self, account_id: str) -> bool:
        return self.index._is_open(account_id)

    def role_layer(self, role: RoleState) -> PolicySet:
        view = self.index.roles.get(role.role_id)
        if view is None:
            return PolicySet.of((), Layer.ROLE)
        return self.index.role_layer_of(view)

    def session_layer(self, record: SessionRecord) -> PolicySet | None:
        layers = self.index._session_layers
        key = record.access_key_id
        if key not in layers:
            layers[key] = session_policy_layer(record)
        return layers[key]
