"""The audit naming state: what each aggregate is called, for records to name their targets.

Most events carry only their aggregate's id (``AccessKeyCreated`` does not say whose key it
is by name), so ``AuditNaming`` remembers, from the events that create and rename entities,
each entity's account and name: accounts, users, groups, custom policies, roles, STS
sessions (with the session name, key id and source account) and name claims. For each
entrustment it also keeps both accounts and what hangs from it until it is revoked or
ended (``projections.audit.entrustment_dependents``): its delegations (with their
``ends_at`` and whether revoked) and the sessions of its managed role (with their
``expiration`` and whether revoked); a delegation is mapped to its entrustment. It must see
every event in log order, as ``audit_record`` does. Deleted users, groups, policies and roles
are forgotten (their ids are random and never reused, and nothing follows their deletion);
accounts and name claims are kept (a claim is reclaimed under the same id), and so are
sessions (a session may be revoked after its role is deleted, and its aggregate is never
re-created), entrustments and delegations (a delegation may be revoked after its entrustment
has ended).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mandate.domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    group_arn,
    policy_arn,
    role_arn,
    root_arn,
    user_arn,
)
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.handshakes import INVITATION_KIND, invitation_arn
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.permissions.resource_directory import MEMBERSHIP_KIND, membership_arn
from mandate.domain.sts.oidc_providers import (
    CLAIM_KIND,
    ISSUER_CLAIM_KIND,
    SLOT_CLAIM_KIND,
    issuer_claim_arn,
    oidc_provider_arn,
    slot_claim_arn,
)
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session
from mandate.projections.audit.conventions import UnnamedEntity
from mandate.projections.audit.entrustment_dependents import Dependent, EntrustmentDependents

__all__ = ["CLAIMABLE", "AuditNaming", "NamedEntity"]

_ENTITY_KINDS: Final = frozenset(
    {"account", "user", "group", "policy", "role", "session", "name-claim"}
)
CLAIMABLE: Final[dict[str, Callable[[str, str], str]]] = {
    "user": user_arn,
    "group": group_arn,
    "policy": policy_arn,
    "role": role_arn,
    CLAIM_KIND: oidc_provider_arn,
    ISSUER_CLAIM_KIND: issuer_claim_arn,
    SLOT_CLAIM_KIND: slot_claim_arn,
    MEMBERSHIP_KIND: membership_arn,
    INVITATION_KIND: invitation_arn,
}
_SESSION_FIELDS: Final = ("session_name", "access_key_id", "source_account_id")


@dataclass(frozen=True, slots=True)
class NamedEntity:
    """What the trail needs to name an aggregate: its kind, account and current name.

    ``kind`` is ``account`` (``name`` is the account's display name), ``user``, ``group``,
    ``policy``, ``role``, ``session`` or ``name-claim`` (``claimed_kind`` then says whether
    the name is a user's, a group's, a policy's or a role's). A session's ``account_id`` and
    ``name`` are its role's; ``session_name``, ``access_key_id`` and ``source_account_id``
    are set for sessions, and only for them.
    """

    kind: str
    account_id: str
    name: str
    claimed_kind: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    source_account_id: str | None = None
    _arn: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in _ENTITY_KINDS:
            raise ValueError(f"unknown entity kind {self.kind!r}")
        if (self.kind == "name-claim") != (self.claimed_kind is not None):
            raise ValueError("claimed_kind is set for name claims, and only for them")
        session_fields = [getattr(self, name) for name in _SESSION_FIELDS]
        if self.kind == "session":
            if any(value is None for value in session_fields):
                raise ValueError(f"a session needs {', '.join(_SESSION_FIELDS)}")
        elif any(value is not None for value in session_fields):
            raise ValueError(f"{', '.join(_SESSION_FIELDS)} are set for sessions, and only them")

    @property
    def arn(self) -> str:
        """The entity's ARN (a claim's: the ARN of the claimed name; an account's: its root;
        a session's: its assumed-role ARN). Worked out once: every event of the entity asks."""
        try:
            return self._arn
        except AttributeError:
            arn = self._arn_of()
            object.__setattr__(self, "_arn", arn)
            return arn

    def _arn_of(self) -> str:
        if self.kind == "account":
            return root_arn(self.account_id)
        if self.kind == "session":
            return assumed_role_arn(self.account_id, self.name, self.session_name or "")
        kind = self.claimed_kind if self.claimed_kind is not None else self.kind
        try:
            return CLAIMABLE[kind](self.account_id, self.name)
        except KeyError:
            raise UnnamedEntity(f"a {kind!r} name has no ARN") from None

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts the entity's events concern (a session: its role's and its source's)."""
        if self.source_account_id is None:
            return (self.account_id,)
        return (self.account_id, self.source_account_id)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "account_id": self.account_id, "name": self.name}
        if self.claimed_kind is not None:
            data["claimed_kind"] = self.claimed_kind
        for name in _SESSION_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NamedEntity:
        def optional(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            str(data["kind"]),
            str(data["account_id"]),
            str(data["name"]),
            optional("claimed_kind"),
            session_name=optional("session_name"),
            access_key_id=optional("access_key_id"),
            source_account_id=optional("source_account_id"),
        )


# Events that create, rename, change or forget their aggregate's entry.
_NAMING_EVENTS: Final[frozenset[type]] = frozenset(
    {
        Account.AccountOpened,
        User.UserCreated,
        User.UserUpdated,
        User.UserDeleted,
        Group.GroupCreated,
        Group.GroupDeleted,
        ManagedPolicy.PolicyCreated,
        ManagedPolicy.PolicyDeleted,
        Role.RoleCreated,
        Role.RoleDeleted,
        Session.SessionIssued,
        NameClaim.NameClaimed,
        Entrustment.EntrustmentGranted,
        Entrustment.EntrustmentRevoked,
        Entrustment.EntrustmentEnded,
        Delegation.DelegationGranted,
    }
)

# Events whose entry, or whose entrustment's entry, may change: ``touched_by`` looks no further
# for any other.
_TOUCHING: Final[frozenset[type]] = _NAMING_EVENTS | {
    Delegation.DelegationRevoked,
    Session.SessionRevoked,
}


class AuditNaming:
    """Aggregate id → ``NamedEntity``, kept current by ``audit_record`` as events flow; and,
    for each entrustment, its accounts and what hangs from it (its delegations and the
    sessions of its managed role), so that its revocation or end can say what it ended.

    Mutable and not thread-safe: one per trail being built, fed every event in log order.
    For a projection that persists it, ``touched_by(event)`` names the entries an event
    changed (call it after ``audit_record``), ``snapshot(ids)`` gives their JSON (``None``
    for a forgotten one) and ``restore(snapshot)`` rebuilds the state from stored entries.
    Keys are aggregate ids as strings (``str(uuid)``); an entrustment's entry is keyed by
    its id (``"kind": "entrustment"``), a delegation's by its id (``"kind": "delegation"``,
    with its entrustment's id). Snapshots without those kinds, from before entrustments
    existed, restore as they are.
    """

    def __init__(self) -> None:
        self._entities: dict[str, NamedEntity] = {}
        self._entrustments: dict[str, EntrustmentDependents] = {}
        self._delegations: dict[str, str] = {}  # delegation id → entrustment id
        # session id → entrustment id, for the sessions an entrustment's state holds
        self._session_entrustments: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entities) + len(self._entrustments) + len(self._delegations)

    def get(self, aggregate_id: object) -> NamedEntity | None:
        return self._entities.get(str(aggregate_id))

    def require(self, aggregate_id: object, kind: str) -> NamedEntity:
        """The entry of ``aggregate_id``, which must be of ``kind``; else ``UnnamedEntity``."""
        entity = self._entities.get(str(aggregate_id))
        if entity is None or entity.kind != kind:
            raise UnnamedEntity(
                f"no {kind} {aggregate_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return entity

    def remember(self, aggregate_id: object, entity: NamedEntity) -> None:
        self._entities[str(aggregate_id)] = entity

    def forget(self, aggregate_id: object) -> None:
        self._entities.pop(str(aggregate_id), None)

    # -- entrustments and what hangs from them ---------------------------------------------

    def entrustment(self, entrustment_id: object) -> EntrustmentDependents:
        state = self._entrustments.get(str(entrustment_id))
        if state is None:
            raise UnnamedEntity(
                f"no entrustment {entrustment_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return state

    def entrustment_of_delegation(self, delegation_id: object) -> tuple[str, EntrustmentDependents]:
        entrustment_id = self._delegations.get(str(delegation_id))
        if entrustment_id is None:
            raise UnnamedEntity(
                f"no delegation {delegation_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return entrustment_id, self.entrustment(entrustment_id)

    def entrust(self, entrustment_id: object, state: EntrustmentDependents) -> None:
        self._entrustments[str(entrustment_id)] = state

    def _prune(self, state: EntrustmentDependents, at: datetime) -> None:
        """Drop the dependents that can no longer be live at ``at`` or any later time."""
        for dependents in (state.delegations, state.sessions):
            for dependent_id in [i for i, d in dependents.items() if not d.live_at(at)]:
                del dependents[dependent_id]
                self._session_entrustments.pop(dependent_id, None)

    def add_delegation(
        self,
        delegation_id: object,
        entrustment_id: object,
        ends_at: datetime | None,
        at: datetime,
    ) -> None:
        state = self.entrustment(entrustment_id)
        self._delegations[str(delegation_id)] = str(entrustment_id)
        if state.closed is None:
            self._prune(state, at)
            name = delegation_arn(state.trustee_account_id, delegation_id)
            state.delegations[str(delegation_id)] = Dependent(name, ends_at)

    def add_session(
        self,
        session_id: object,
        entrustment_id: object,
        access_key_id: str,
        expiration: datetime,
        at: datetime,
    ) -> None:
        state = self._entrustments.get(str(entrustment_id))
        if state is None or state.closed is not None:
            return
        self._prune(state, at)
        state.sessions[str(session_id)] = Dependent(access_key_id, expiration)
        self._session_entrustments[str(session_id)] = str(entrustment_id)

    def revoke_dependent(self, dependent_id: object) -> None:
        key = str(dependent_id)
        entrustment_id = self._delegations.get(key) or self._session_entrustments.get(key)
        state = None if entrustment_id is None else self._entrustments.get(entrustment_id)
        if state is not None:
            for dependents in (state.delegations, state.sessions):
                if key in dependents:
                    dependents[key].revoked = True

    def close(self, entrustment_id: object, how: str) -> None:
        state = self.entrustment(entrustment_id)
        state.closed = how
        for session_id in state.sessions:
            self._session_entrustments.pop(session_id, None)
        state.delegations.clear()
        state.sessions.clear()

    # -- persistence ---------------------------------------------------------------------------

    def touched_by(self, event: Any) -> tuple[str, ...]:
        """Ids of the entries ``event`` creates, renames, changes or forgets (to persist
        them); ask once ``audit_record`` has recorded it."""
        cls = type(event)
        if cls not in _TOUCHING:  # most events: attachments, memberships, keys, versions
            return ()
        touched: list[str] = []
        if cls in _NAMING_EVENTS:
            touched.append(str(event.originator_id))
        if cls is Delegation.DelegationGranted:
            touched.append(str(event.entrustment_id))
        elif cls is Delegation.DelegationRevoked:
            entrustment_id = self._delegations.get(str(event.originator_id))
            if entrustment_id is not None:
                touched.append(entrustment_id)
        elif cls is Session.SessionIssued or cls is Session.SessionRevoked:
            entrustment_id = self._session_entrustments.get(str(event.originator_id))
            if entrustment_id is not None:
                touched.append(entrustment_id)
        return tuple(touched)

    def snapshot(self, aggregate_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """JSON of the given entries (all when ``None``); ``None`` for one not (or no longer)
        known, so a store can delete it."""
        ids: Iterable[str] = (
            [*self._entities, *self._entrustments, *self._delegations]
            if aggregate_ids is None
            else aggregate_ids
        )
        snapshot: dict[str, Any] = {}
        for aggregate_id in ids:
            key = str(aggregate_id)
            entity = self._entities.get(key)
            entrustment = self._entrustments.get(key)
            delegated_under = self._delegations.get(key)
            if entity is not None:
                snapshot[key] = entity.as_json()
            elif entrustment is not None:
                snapshot[key] = entrustment.as_json()
            elif delegated_under is not None:
                snapshot[key] = {"kind": "delegation", "entrustment_id": delegated_under}
            else:
                snapshot[key] = None
        return snapshot

    def restore(self, snapshot: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Replace the whole state with ``snapshot``'s entries (``None`` values are skipped)."""
        restored = AuditNaming()
        for aggregate_id, value in snapshot.items():
            key = str(aggregate_id)
            if value is None:
                continue
            if value.get("kind") == "entrustment":
                state = EntrustmentDependents.from_json(value)
                restored._entrustments[key] = state
                for session_id in state.sessions:
                    restored._session_entrustments[session_id] = key
            elif value.get("kind") == "delegation":
                restored._delegations[key] = str(value["entrustment_id"])
            else:
                restored._entities[key] = NamedEntity.from_json(value)
        self._entities = restored._entities
        self._entrustments = restored._entrustments
        self._delegations = restored._delegations
        self._session_entrustments = restored._session_entrustments
