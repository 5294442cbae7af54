"""The decision index's state: what it remembers of the log, and the registry that changes it.

``IndexState`` holds every container the index's readers use (views by id and by name,
AccessKeys, sessions, generations, the caches) and the bookkeeping event handlers share
(``_touch``, the in-place sets of a replay). Handlers are functions registered by event
class on ``HANDLERS`` (``@on.on(User.UserCreated)``) in ``identity_events`` and
``sts_events``; the readers are the mixins ``DecisionIndex`` (``index``) is composed of.
Snapshots pickle these attributes except the
ones ``snapshots._NOT_STATE`` names: a new attribute here belongs in one or the other.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import DomainEvent

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.identity.keyring import Keyring
from mandate.domain.identity.secrets import SecretHasher, new_token
from mandate.domain.permissions.policy_sets import PolicyCompiler
from mandate.domain.policy.control import ControlLevel
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import PolicySet
from mandate.domain.policy.resource_policies import ResourceKey, ResourcePolicy
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.domain.sts.sessions import session_aggregate_id
from mandate.projections.decisions.credentials import Credential
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
from mandate.projections.dispatch import EventHandlers

if TYPE_CHECKING:
    from mandate.projections.decisions.directory_events import DirectoryView

__all__ = ["DEFAULT_MEMO_BYTES", "HANDLERS", "IndexState", "on"]

DEFAULT_MEMO_BYTES = 64 * 1024 * 1024
"""The memo's default budget (``MANDATE_DECISION_MEMO_BYTES``)."""


class IndexState:
    """The decision index's containers, and what its event handlers share."""

    def __init__(
        self,
        hasher: SecretHasher,
        token_signer: SessionTokenSigner | None = None,
        *,
        memo_bytes: int = DEFAULT_MEMO_BYTES,
        keyring: Keyring | None = None,
    ) -> None:
        self.hasher = hasher
        self.token_signer = token_signer
        self.keyring = keyring
        """Opens the sealed secrets kept with keys and sessions (``secret_for``); the
        process's own, like the hasher: never in a snapshot."""
        self.position = 0
        self.steady = threading.Lock()
        """Held while one event applies, and by a reader that must answer the position of
        the very state it read (``/v1/authorize``): inside it, ``position`` is the state."""
        self._replaying = False
        # While replaying, the sets that grow with the log (a group's members, a policy's
        # holders) change in place here, not by a copy per event; ``publish`` hands them on.
        self._staged_members: dict[UUID, tuple[GroupView, set[UUID]]] = {}
        self._staged_holders: dict[UUID, set[tuple[PrincipalKind, UUID]]] = {}
        self._applying = 0
        """The position of the event being applied (entities remember when they took a name
        and when a trust was written: ``domain.sts.assume_role.name_binds``)."""
        self.ledger_time: datetime | None = None
        self.accounts: dict[str, AccountView] = {}
        self._account_ids: dict[UUID, str] = {}
        self.users: dict[UUID, UserView] = {}
        self.user_ids: dict[tuple[str, str], UUID] = {}
        self.groups: dict[UUID, GroupView] = {}
        self.group_ids: dict[tuple[str, str], UUID] = {}
        self.policies: dict[UUID, PolicyView] = {}
        self.policy_ids: dict[tuple[str, str], UUID] = {}
        self.keys: dict[str, AccessKeyView] = {}
        self.roles: dict[UUID, RoleView] = {}
        self.role_ids: dict[tuple[str, str], UUID] = {}
        self.sessions: dict[str, SessionView] = {}
        self.entrustments: dict[UUID, EntrustmentView] = {}
        self.delegations: dict[UUID, DelegationView] = {}
        self.directories: dict[str, DirectoryView] = {}
        """Resource directories by management account (``directory_events``)."""
        self.member_of: dict[str, str] = {}
        """A member account's management account."""
        self._control_epoch = 0
        """Moved by every directory change; folded into generations while it is not 0."""
        self._control_levels: dict[str, tuple[int, tuple[ControlLevel, ...]]] = {}
        self._delegation_layers: dict[tuple[UUID, ...], PolicySet] = {}
        self._session_keys: dict[UUID, str] = {}
        self._session_expiries: list[tuple[datetime, str]] = []
        self._session_layers: dict[str, PolicySet | None] = {}
        # A verified session credential, by its token, until the lineage epoch moves: repeat
        # requests skip the token's MAC and the lineage walk, never the secret's hash or the
        # expiry. Epoch read before resolving, moved after applying: a credential resolved
        # while an event applies is filed under an epoch no lookup will match.
        self._lineage_epoch = 0
        self._verified_sessions: dict[str, tuple[int, Credential, str]] = {}
        self._dead_keys: dict[str, tuple[str, str]] = {}
        """A dead AccessKey's id → why it died and its secret's hash (to say why only to
        whoever presents the right secret)."""
        self._dummy_hash = hasher.hash(new_token())
        """Compared against when no key has the id, so that an unknown id costs what a wrong
        secret costs (no timing oracle)."""
        self._holders: dict[UUID, frozenset[tuple[PrincipalKind, UUID]]] = {}
        # Each user's generation moves when anything its decisions depend on changes; cached
        # policy sets and memoised answers are tagged with the generation they were computed
        # at, so a change invalidates exactly the principals it touches, and an answer computed
        # concurrently from the old state is stored under a generation no lookup asks for.
        self._generations: dict[UUID | str, int] = {}
        self._policy_sets: dict[UUID, tuple[int, PolicySet]] = {}
        # Memoised answers in two halves of ``memo_bytes`` each, bounded in bytes (estimated:
        # ``_memo_cost``) so that unique actions and resources cannot grow memory: answers go
        # into ``_memo``; when it is full it becomes ``_memo_old`` (the older one is dropped)
        # and a hit there moves the answer back — an LRU at the cost of one dictionary swap,
        # and a hit in ``_memo`` stays one lookup.
        self._memo: dict[tuple[UUID | str, Hashable, str, str], Answer] = {}
        self._memo_old: dict[tuple[UUID | str, Hashable, str, str], Answer] = {}
        self._memo_half = max(0, memo_bytes) // 2
        self._memo_filled = 0
        self._compiler = PolicyCompiler()
        # Resource-based policies by where they are attached (``resource_policy_events``);
        # each change moves the epoch, which memoised answers are filed under once it is not 0.
        self.resource_policies: dict[ResourceKey, ResourcePolicy] = {}
        self.resource_policy_epoch = 0

    # -- applying the log ------------------------------------------------------------------
    @property
    def replaying(self) -> bool:
        """Set while a process replays the log before it serves.

        No reader has cached anything yet, so nothing needs invalidating and ``_touch`` is
        skipped — at 18,000 users it was two thirds of a replay (every member and holder of a
        changed group or policy). Nothing reads either, so a group's members and a policy's
        holders change in place instead of being replaced (each copy grew with the log);
        setting it back to False publishes them (``publish``).
        """
        return self._replaying

    @replaying.setter
    def replaying(self, value: bool) -> None:
        if not value:
            self.publish()
        self._replaying = value

    def publish(self) -> None:
        """Hand the sets changed in place while replaying on to the views readers use."""
        for group, members in self._staged_members.values():
            group.member_ids = frozenset(members)
        for policy_id, holders in self._staged_holders.items():
            if policy_id in self._holders:
                self._holders[policy_id] = frozenset(holders)
        self._staged_members = {}
        self._staged_holders = {}

    def _members(self, group: GroupView) -> set[UUID]:
        """The group's members to change in place while replaying (see ``replaying``)."""
        staged = self._staged_members.get(group.id)
        if staged is None or staged[0] is not group:
            staged = self._staged_members[group.id] = (group, set(group.member_ids))
        return staged[1]

    def _holder_set(self, policy_id: UUID) -> set[tuple[PrincipalKind, UUID]]:
        """The policy's holders to change in place while replaying (see ``replaying``)."""
        staged = self._staged_holders.get(policy_id)
        if staged is None:
            staged = self._staged_holders[policy_id] = set(
                self._holders.setdefault(policy_id, frozenset())
            )
        return staged

    def _touch(self, user_ids: Iterable[UUID]) -> None:
        """Move the generation of every user whose decisions this event may change."""
        if self._replaying:
            return
        generations = self._generations
        for user_id in user_ids:
            generations[user_id] = generations.get(user_id, 0) + 1

    def _holders_of(self, policy_id: UUID) -> set[UUID]:
        """Users and roles who hold a policy directly, and users who hold it through a group."""
        users: set[UUID] = set()
        if self._replaying:
            return users  # only ever touched (``_touch``), which replaying skips
        for kind, holder_id in self._holders.get(policy_id, frozenset()):
            if kind in (PrincipalKind.USER, PrincipalKind.ROLE):
                users.add(holder_id)
            elif (group := self.groups.get(holder_id)) is not None:
                users.update(group.member_ids)
        return users

    def _account_for(self, e: DomainEvent) -> AccountView:
        return self.accounts[self._account_ids[e.originator_id]]

    def _kill_key(self, access_key_id: str, reason: str) -> None:
        key = self.keys.pop(access_key_id, None)
        self._dead_keys[access_key_id] = (reason, key.secret_hash if key else self._dummy_hash)

    def _is_open(self, account_id: str) -> bool:
        account = self.accounts.get(account_id)
        return account is not None and account.is_open

    def _forget_expired_sessions(self, before: datetime) -> None:
        """Sessions long expired are dropped; a child never outlives its parent."""
        expiries = self._session_expiries
        while expiries and expiries[0][0] < before:
            _, key = heapq.heappop(expiries)
            view = self.sessions.pop(key, None)
            self._session_layers.pop(key, None)
            if view is not None:
                self._session_keys.pop(session_aggregate_id(key), None)


HANDLERS: EventHandlers[IndexState] = EventHandlers("decision index")
"""The index's handlers by event class (registered in ``identity_events`` and ``sts_events``)."""
on = HANDLERS
