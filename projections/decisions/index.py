"""The decision index: every fact a live decision needs, in memory, kept current from the log.

Each API process holds one, rebuilt from position 0 at start and then fed by a
``LogFollower``. It answers ``authorize`` without I/O: credentials by key id, a principal's
compiled policy layers (cached per principal generation), and memoised decisions for requests whose
outcome cannot depend on the request context.

Writes to the index happen on one thread at a time (the follower's lock); readers run
concurrently and never lock — every container they iterate is replaced, not mutated.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain.common.arns import (
    delegation_arn,
    entrustment_arn,
    group_arn,
    parse_principal_arn,
    root_arn,
    user_arn,
)
from domain.common.ledger_time import format_instant, ledger_time_after
from domain.identity.secrets import SecretHasher, new_token
from domain.permissions.attachments import Attachment, PolicyType
from domain.permissions.policy_sets import CustomVersion, GroupAttachments, PolicyCompiler
from domain.policy.decisions import Answer, Subject, SubjectKind, decide
from domain.policy.document import DocumentKind, parse_policy_document
from domain.policy.evaluation import Layer, PolicySet, Request
from domain.sts.assumable_roles import AssumableRole, answer_through_roles
from domain.sts.assume_role import AssumingCaller, EntrustmentTerms, ParentSession, RoleFacts
from domain.sts.session_lineage import (
    DelegationState,
    EntrustmentState,
    RoleState,
    SessionInvalid,
    SessionRecord,
    contract_revoked,
    delegation_layer,
    resolve_session,
    scope_layer,
    session_policy_layer,
)
from domain.sts.session_tokens import InvalidSessionToken, SessionTokenSigner
from domain.sts.sessions import session_aggregate_id
from projections.decisions.views import (
    AccessKeyView,
    AccountView,
    DelegationView,
    EntrustmentView,
    GroupView,
    PolicyVersionView,
    PolicyView,
    RoleView,
    SessionView,
    UserView,
)

__all__ = ["KEY_REFUSED", "AuthenticationFailed", "Credential", "DecisionIndex"]

KEY_REFUSED = "the AccessKey id is unknown or its secret does not match"

DEFAULT_MEMO_BYTES = 64 * 1024 * 1024
"""The memo's default budget (``MANDATE_DECISION_MEMO_BYTES``)."""
MEMO_MAX_KEY_CHARS = 512
"""Requests whose action and resource are longer together are decided, never memoised: an ARN
is rarely over 200 characters, and the budget should hold many answers, not a few huge keys."""
_MEMO_ENTRY_BYTES = 400
"""What one memoised answer costs beyond its two strings (key tuple, dict slot, the answer
and its decision; measured with tracemalloc in tests/unit/test_decision_memo.py)."""
MANAGED_ROLE_MAX_SESSION_DURATION = 3_600
_MANAGED_TRUST = parse_policy_document(
    '{"Statement": [{"Action": "sts:AssumeRole", "Effect": "Deny",'
    ' "Principal": {"RAM": "acs:ram::*"}}], "Version": "1"}',
    kind=DocumentKind.TRUST,
)
"""A managed role's written trust admits no one: who may assume it is computed from the
live delegations under its entrustment (``RoleFacts.entrustment``)."""
_SESSION_CACHE_LIMIT = 100_000
_LINEAGE_NEUTRAL = frozenset(
    {
        "mandate:SessionIssued.v1",
        "mandate:AccessKeyCreated.v1",
        "mandate:AccessKeyDisabled.v1",
        "mandate:AccessKeyEnabled.v1",
        "mandate:AccessKeyDeleted.v1",
        "mandate:UserCreated.v1",
        "mandate:UserUpdated.v1",
        "mandate:GroupCreated.v1",
        "mandate:User.PolicyAttached.v1",
        "mandate:User.PolicyDetached.v1",
        "mandate:Group.PolicyAttached.v1",
        "mandate:Group.PolicyDetached.v1",
        "mandate:PolicyCreated.v1",
        "mandate:RootAccessKeyRotated.v1",
    }
)
"""Events that cannot change whether an existing session is alive or what its layers are
(sessions' layers come from roles and session policies, never from users' or groups'
policies; but memberships are not neutral: a delegation to a group reaches its members, so
joining or leaving a group changes a managed role's session). Every other applied event moves
the lineage epoch, which drops every verified session credential at once."""
_SESSION_RETENTION = timedelta(hours=1)
"""How long an expired session is still remembered (to refuse it with its reason)."""


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a verified AccessKey belongs to."""

    account_id: str
    arn: str
    kind: SubjectKind
    access_key_id: str
    user_id: UUID | None
    subject: Subject | None = field(default=None, compare=False)
    """A session's subject, resolved when it authenticated (its layers and chain)."""
    generation: Hashable = field(default=None, compare=False)
    """A session's memo generation: its lineage's role generations."""
    session: SessionRecord | None = field(default=None, compare=False)
    valid_until: datetime = field(default=datetime.max.replace(tzinfo=UTC), compare=False)
    """When a time bound of the session's lineage passes (expiry, a contract's or a
    delegation's end): a remembered credential is judged afresh from then on."""


class AuthenticationFailed(Exception):
    """The credentials are unknown, wrong, inactive, or their owner is gone (→ 401)."""


class DecisionIndex:
    """In-memory read model for live decisions, management reads and write preconditions."""

    def __init__(
        self,
        hasher: SecretHasher,
        token_signer: SessionTokenSigner | None = None,
        *,
        memo_bytes: int = DEFAULT_MEMO_BYTES,
    ) -> None:
        self.hasher = hasher
        self.token_signer = token_signer
        self.position = 0
        self._replaying = False
        # While replaying, the sets that grow with the log (a group's members, a policy's
        # holders) change in place here, not by a copy per event; ``publish`` hands them on.
        self._staged_members: dict[UUID, tuple[GroupView, set[UUID]]] = {}
        self._staged_holders: dict[UUID, set[tuple[str, UUID]]] = {}
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
        self._holders: dict[UUID, frozenset[tuple[str, UUID]]] = {}
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
        self._handlers: dict[str, Callable[[Any], None]] = {
            "mandate:AccountOpened.v1": self._account_opened,
            "mandate:AccountClosed.v1": self._account_closed,
            "mandate:RootAccessKeyRotated.v1": self._root_key_rotated,
            "mandate:UserCreated.v1": self._user_created,
            "mandate:UserUpdated.v1": self._user_updated,
            "mandate:UserDeleted.v1": self._user_deleted,
            "mandate:AccessKeyCreated.v1": self._key_created,
            "mandate:AccessKeyDisabled.v1": self._key_disabled,
            "mandate:AccessKeyEnabled.v1": self._key_enabled,
            "mandate:AccessKeyDeleted.v1": self._key_deleted,
            "mandate:UserAddedToGroup.v1": self._added_to_group,
            "mandate:UserRemovedFromGroup.v1": self._removed_from_group,
            "mandate:User.PolicyAttached.v1": self._user_policy_attached,
            "mandate:User.PolicyDetached.v1": self._user_policy_detached,
            "mandate:GroupCreated.v1": self._group_created,
            "mandate:GroupDeleted.v1": self._group_deleted,
            "mandate:Group.PolicyAttached.v1": self._group_policy_attached,
            "mandate:Group.PolicyDetached.v1": self._group_policy_detached,
            "mandate:PolicyCreated.v1": self._policy_created,
            "mandate:PolicyVersionCreated.v1": self._policy_version_created,
            "mandate:DefaultPolicyVersionSet.v1": self._default_version_set,
            "mandate:PolicyVersionDeleted.v1": self._policy_version_deleted,
            "mandate:PolicyDeleted.v1": self._policy_deleted,
            "mandate:RoleCreated.v1": self._role_created,
            "mandate:RoleUpdated.v1": self._role_updated,
            "mandate:RoleTrustPolicyUpdated.v1": self._role_trust_updated,
            "mandate:RoleSessionsRevoked.v1": self._role_sessions_revoked,
            "mandate:RoleDeleted.v1": self._role_deleted,
            "mandate:Role.PolicyAttached.v1": self._role_policy_attached,
            "mandate:Role.PolicyDetached.v1": self._role_policy_detached,
            "mandate:EntrustmentGranted.v1": self._entrustment_granted,
            "mandate:EntrustmentAmended.v1": self._entrustment_amended,
            "mandate:EntrustmentRevoked.v1": self._entrustment_revoked,
            "mandate:EntrustmentEnded.v1": self._entrustment_ended,
            "mandate:DelegationGranted.v1": self._delegation_granted,
            "mandate:DelegationRevoked.v1": self._delegation_revoked,
            "mandate:SessionIssued.v1": self._session_issued,
            "mandate:SessionRevoked.v1": self._session_revoked,
        }

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

    def _holder_set(self, policy_id: UUID) -> set[tuple[str, UUID]]:
        """The policy's holders to change in place while replaying (see ``replaying``)."""
        staged = self._staged_holders.get(policy_id)
        if staged is None:
            staged = self._staged_holders[policy_id] = set(
                self._holders.setdefault(policy_id, frozenset())
            )
        return staged

    def apply(self, event: Any, position: int) -> None:
        """Apply one event at its ledger position (called by the follower, in order)."""
        topic = type(event).TOPIC
        handler = self._handlers.get(topic)
        if handler is not None:
            self._applying = position
            handler(event)
            if topic not in _LINEAGE_NEUTRAL:
                self._lineage_epoch += 1  # after the change (see ``authenticate_session``)
        self.ledger_time = ledger_time_after(self.ledger_time, event.timestamp)
        self.position = position
        expiries = self._session_expiries
        if expiries and expiries[0][0] < self.ledger_time - _SESSION_RETENTION:
            self._forget_expired_sessions(self.ledger_time - _SESSION_RETENTION)

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
            if kind in ("user", "role"):
                users.add(holder_id)
            elif (group := self.groups.get(holder_id)) is not None:
                users.update(group.member_ids)
        return users

    def _account_opened(self, e: Any) -> None:
        self.accounts[e.account_id] = AccountView(
            e.account_id, e.name, e.timestamp, e.root_access_key_id
        )
        self._account_ids[e.originator_id] = e.account_id
        self.keys[e.root_access_key_id] = AccessKeyView(
            e.root_access_key_id, e.root_secret_hash, "Active", e.account_id, None, e.timestamp
        )

    def _account_for(self, e: Any) -> AccountView:
        return self.accounts[self._account_ids[e.originator_id]]

    def _account_closed(self, e: Any) -> None:
        account = self._account_for(e)
        account.is_open = False
        self._touch(u.id for u in list(self.users.values()) if u.account_id == account.account_id)

    def _root_key_rotated(self, e: Any) -> None:
        account = self._account_for(e)
        self._kill_key(e.previous_access_key_id, "the root AccessKey was rotated")
        account.root_access_key_id = e.access_key_id
        self.keys[e.access_key_id] = AccessKeyView(
            e.access_key_id, e.secret_hash, "Active", account.account_id, None, e.timestamp
        )

    def _kill_key(self, access_key_id: str, reason: str) -> None:
        key = self.keys.pop(access_key_id, None)
        self._dead_keys[access_key_id] = (reason, key.secret_hash if key else self._dummy_hash)

    def _user_created(self, e: Any) -> None:
        self.users[e.originator_id] = UserView(
            e.originator_id, e.account_id, e.user_name, e.display_name, e.timestamp, e.timestamp
        )
        self.users[e.originator_id].named_at = self._applying
        self.user_ids[(e.account_id, e.user_name)] = e.originator_id

    def _user_updated(self, e: Any) -> None:
        user = self.users[e.originator_id]
        if e.user_name != user.user_name:
            self.user_ids.pop((user.account_id, user.user_name), None)
            self.user_ids[(user.account_id, e.user_name)] = user.id
            user.named_at = self._applying  # a name taken now binds no older trust
        user.user_name = e.user_name
        user.display_name = e.display_name
        user.updated_at = e.timestamp
        self._touch((user.id,))

    def _user_deleted(self, e: Any) -> None:
        user = self.users.pop(e.originator_id)
        self._touch((user.id,))
        if self.user_ids.get((user.account_id, user.user_name)) == user.id:
            del self.user_ids[(user.account_id, user.user_name)]
        for key_id in user.access_key_ids:
            self._kill_key(key_id, f"the AccessKey's user {user.user_name!r} was deleted")

    def _key_created(self, e: Any) -> None:
        user = self.users[e.originator_id]
        self.keys[e.access_key_id] = AccessKeyView(
            e.access_key_id, e.secret_hash, "Active", user.account_id, user.id, e.timestamp
        )
        user.access_key_ids = (*user.access_key_ids, e.access_key_id)

    def _key_disabled(self, e: Any) -> None:
        self.keys[e.access_key_id].status = "Inactive"

    def _key_enabled(self, e: Any) -> None:
        self.keys[e.access_key_id].status = "Active"

    def _key_deleted(self, e: Any) -> None:
        user = self.users[e.originator_id]
        user.access_key_ids = tuple(k for k in user.access_key_ids if k != e.access_key_id)
        self._kill_key(e.access_key_id, "the AccessKey was deleted")

    def _added_to_group(self, e: Any) -> None:
        user = self.users[e.originator_id]
        user.groups = {**user.groups, e.group_id: e.group_name}
        self._touch((user.id,))
        group = self.groups.get(e.group_id)
        if group is not None:
            if self._replaying:
                self._members(group).add(user.id)
            else:
                group.member_ids = group.member_ids | {user.id}

    def _removed_from_group(self, e: Any) -> None:
        user = self.users[e.originator_id]
        user.groups = {g: n for g, n in user.groups.items() if g != e.group_id}
        self._touch((user.id,))
        group = self.groups.get(e.group_id)
        if group is not None:
            if self._replaying:
                self._members(group).discard(user.id)
            else:
                group.member_ids = group.member_ids - {user.id}

    def _attached(self, holder: UserView | GroupView | RoleView, kind: str, e: Any) -> None:
        a = Attachment(PolicyType(e.policy_type), e.policy_name, e.policy_id)
        holder.attachments = {**holder.attachments, a.key: a}
        if a.policy_id is not None:
            if self._replaying:
                self._holder_set(a.policy_id).add((kind, holder.id))
            else:
                self._holders[a.policy_id] = self._holders.get(a.policy_id, frozenset()) | {
                    (kind, holder.id)
                }
        # after the change: a reader that saw the new generation must also see the new
        # attachments, or it would cache the old ones under the new generation
        self._touch_holder(holder)

    def _touch_holder(self, holder: UserView | GroupView | RoleView) -> None:
        self._touch(holder.member_ids if isinstance(holder, GroupView) else (holder.id,))

    def _detached(self, holder: UserView | GroupView | RoleView, kind: str, e: Any) -> None:
        key = (e.policy_type, e.policy_name)
        holder.attachments = {k: a for k, a in holder.attachments.items() if k != key}
        if e.policy_id is not None and e.policy_id in self._holders:
            if self._replaying:
                self._holder_set(e.policy_id).discard((kind, holder.id))
            else:
                self._holders[e.policy_id] = self._holders[e.policy_id] - {(kind, holder.id)}
        self._touch_holder(holder)  # after the change, as in ``_attached``

    def _user_policy_attached(self, e: Any) -> None:
        self._attached(self.users[e.originator_id], "user", e)

    def _user_policy_detached(self, e: Any) -> None:
        self._detached(self.users[e.originator_id], "user", e)

    def _group_created(self, e: Any) -> None:
        self.groups[e.originator_id] = GroupView(
            e.originator_id, e.account_id, e.group_name, e.comments, e.timestamp
        )
        self.group_ids[(e.account_id, e.group_name)] = e.originator_id

    def _group_deleted(self, e: Any) -> None:
        group = self.groups.pop(e.originator_id)
        self._touch(group.member_ids)
        if self.group_ids.get((group.account_id, group.group_name)) == group.id:
            del self.group_ids[(group.account_id, group.group_name)]

    def _group_policy_attached(self, e: Any) -> None:
        self._attached(self.groups[e.originator_id], "group", e)

    def _group_policy_detached(self, e: Any) -> None:
        self._detached(self.groups[e.originator_id], "group", e)

    def _policy_created(self, e: Any) -> None:
        self.policies[e.originator_id] = PolicyView(
            e.originator_id,
            e.account_id,
            e.policy_name,
            e.description,
            e.timestamp,
            e.timestamp,
            "v1",
            {"v1": PolicyVersionView("v1", e.document, e.timestamp)},
        )
        self.policy_ids[(e.account_id, e.policy_name)] = e.originator_id

    def _policy_version_created(self, e: Any) -> None:
        policy = self.policies[e.originator_id]
        policy.versions = {
            **policy.versions,
            e.version_id: PolicyVersionView(e.version_id, e.document, e.timestamp),
        }
        if e.set_as_default:
            policy.default_version = e.version_id
            self._touch(self._holders_of(policy.id))
        policy.updated_at = e.timestamp

    def _default_version_set(self, e: Any) -> None:
        policy = self.policies[e.originator_id]
        policy.default_version = e.version_id
        policy.updated_at = e.timestamp
        self._touch(self._holders_of(policy.id))

    def _policy_version_deleted(self, e: Any) -> None:
        policy = self.policies[e.originator_id]
        policy.versions = {v: pv for v, pv in policy.versions.items() if v != e.version_id}
        policy.updated_at = e.timestamp

    def _policy_deleted(self, e: Any) -> None:
        policy = self.policies.pop(e.originator_id)
        self._touch(self._holders_of(policy.id))
        self._holders.pop(policy.id, None)
        self._staged_holders.pop(policy.id, None)
        if self.policy_ids.get((policy.account_id, policy.policy_name)) == policy.id:
            del self.policy_ids[(policy.account_id, policy.policy_name)]

    # -- roles and sessions ------------------------------------------------------------
    def _role_created(self, e: Any) -> None:
        self.roles[e.originator_id] = RoleView(
            e.originator_id,
            e.account_id,
            e.role_name,
            e.description,
            e.trust_policy,
            parse_policy_document(e.trust_policy, kind=DocumentKind.TRUST),
            e.max_session_duration,
            e.timestamp,
            e.timestamp,
            named_at=self._applying,
            trust_position=self._applying,
        )
        self.role_ids[(e.account_id, e.role_name)] = e.originator_id

    def _role_updated(self, e: Any) -> None:
        role = self.roles[e.originator_id]
        role.description = e.description
        role.max_session_duration = e.max_session_duration
        role.updated_at = e.timestamp

    def _role_trust_updated(self, e: Any) -> None:
        role = self.roles[e.originator_id]
        role.trust = parse_policy_document(e.trust_policy, kind=DocumentKind.TRUST)
        role.trust_policy = e.trust_policy
        role.trust_position = self._applying
        role.updated_at = e.timestamp

    def _role_sessions_revoked(self, e: Any) -> None:
        role = self.roles[e.originator_id]
        role.sessions_revoked_before = e.issued_before
        role.updated_at = e.timestamp

    def _role_deleted(self, e: Any) -> None:
        role = self.roles.pop(e.originator_id)
        self._touch((role.id,))
        if self.role_ids.get((role.account_id, role.role_name)) == role.id:
            del self.role_ids[(role.account_id, role.role_name)]

    def _role_policy_attached(self, e: Any) -> None:
        self._attached(self.roles[e.originator_id], "role", e)

    def _role_policy_detached(self, e: Any) -> None:
        self._detached(self.roles[e.originator_id], "role", e)

    def _entrustment_granted(self, e: Any) -> None:
        entrustment = EntrustmentView(
            e.originator_id,
            e.account_id,
            e.trustee_account_id,
            e.role_name,
            e.scope,
            e.scope_policies,
            e.contract_ref,
            e.starts_at,
            e.ends_at,
            e.description,
            e.timestamp,
            e.timestamp,
        )
        self.entrustments[entrustment.id] = entrustment
        self.roles[entrustment.id] = RoleView(
            entrustment.id,
            e.account_id,
            e.role_name,
            e.description,
            _MANAGED_TRUST.canonical_json(),
            _MANAGED_TRUST,
            MANAGED_ROLE_MAX_SESSION_DURATION,
            e.timestamp,
            e.timestamp,
            entrustment_id=entrustment.id,
            named_at=self._applying,
            trust_position=self._applying,
        )
        self.role_ids[(e.account_id, e.role_name)] = entrustment.id

    def _entrustment_amended(self, e: Any) -> None:
        entrustment = self.entrustments[e.originator_id]
        entrustment.scope = e.scope
        entrustment.scope_policies = e.scope_policies
        entrustment.updated_at = e.timestamp
        self._touch((entrustment.id,))

    def _entrustment_revoked(self, e: Any) -> None:
        entrustment = self.entrustments[e.originator_id]
        why = (e.audit or {}).get("reason")
        entrustment.revoked = contract_revoked(
            entrustment_arn(entrustment.account_id, entrustment.id), entrustment.contract_ref, why
        )
        entrustment.updated_at = e.timestamp
        self._touch((entrustment.id,))

    def _entrustment_ended(self, e: Any) -> None:
        entrustment = self.entrustments[e.originator_id]
        entrustment.ended = True
        entrustment.updated_at = e.timestamp
        self._touch((entrustment.id,))

    def _delegation_granted(self, e: Any) -> None:
        delegation = DelegationView(
            e.originator_id,
            e.account_id,
            e.entrustment_id,
            e.entrustment_account_id,
            e.grantee_arn,
            e.grantee_kind,
            e.grantee_id,
            e.scope,
            e.ends_at,
            e.timestamp,
        )
        self.delegations[delegation.id] = delegation
        entrustment = self.entrustments.get(delegation.entrustment_id)
        if entrustment is not None:
            entrustment.delegation_ids = (*entrustment.delegation_ids, delegation.id)
            self._touch((entrustment.id,))

    def _delegation_revoked(self, e: Any) -> None:
        delegation = self.delegations[e.originator_id]
        delegation.revoked = True
        self._touch((delegation.entrustment_id,))

    def live_delegations(
        self, entrustment: EntrustmentView, user_id: UUID, at: datetime
    ) -> tuple[tuple[DelegationView, ...], str]:
        """The live delegations under ``entrustment`` reaching the user now, and why none."""
        user = self.users.get(user_id)
        live: list[DelegationView] = []
        dead: list[str] = []
        for delegation_id in entrustment.delegation_ids:
            d = self.delegations[delegation_id]
            if d.grantee_kind == "user":
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

    def delegated_user_ids(self, entrustment: EntrustmentView, at: datetime) -> frozenset[UUID]:
        """The trustee's users a live delegation under ``entrustment`` reaches at ``at``."""
        users: set[UUID] = set()
        for delegation_id in entrustment.delegation_ids:
            d = self.delegations[delegation_id]
            if d.revoked or (d.ends_at is not None and at >= d.ends_at):
                continue
            if d.grantee_kind == "user":
                if d.grantee_id in self.users:
                    users.add(d.grantee_id)
            elif (group := self.groups.get(d.grantee_id)) is not None:
                users.update(group.member_ids)
        return frozenset(users)

    def delegation_layer_of(self, delegations: tuple[DelegationState, ...]) -> PolicySet:
        key = tuple(d.delegation_id for d in delegations)
        layer = self._delegation_layers.get(key)
        if layer is None:
            if len(self._delegation_layers) >= 10_000:
                self._delegation_layers = {}
            layer = delegation_layer(delegations)
            self._delegation_layers[key] = layer
        return layer

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

    def _session_issued(self, e: Any) -> None:
        record = SessionRecord.from_event(e)
        self.sessions[record.access_key_id] = SessionView(record, e.secret_hash)
        self._session_keys[e.originator_id] = record.access_key_id
        heapq.heappush(self._session_expiries, (record.expiration, record.access_key_id))

    def _session_revoked(self, e: Any) -> None:
        key = self._session_keys.get(e.originator_id)
        view = self.sessions.get(key) if key else None
        if view is not None:
            view.revoked = f"the session {view.record.access_key_id} was revoked"

    def _forget_expired_sessions(self, before: datetime) -> None:
        """Sessions long expired are dropped; a child never outlives its parent."""
        expiries = self._session_expiries
        while expiries and expiries[0][0] < before:
            _, key = heapq.heappop(expiries)
            view = self.sessions.pop(key, None)
            self._session_layers.pop(key, None)
            if view is not None:
                self._session_keys.pop(session_aggregate_id(key), None)

    def role_by_name(self, account_id: str, role_name: str) -> RoleView | None:
        role_id = self.role_ids.get((account_id, role_name))
        return self.roles.get(role_id) if role_id else None

    def roles_of(self, account_id: str) -> list[RoleView]:
        return sorted(
            (r for r in list(self.roles.values()) if r.account_id == account_id),
            key=lambda r: r.role_name,
        )

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

    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        policy = self.policy_by_name(account_id, policy_name)
        if policy is None:
            return None
        return policy.versions[policy.default_version].document

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        role = self.role_by_name(account_id, role_name)
        if role is None or not self._is_open(account_id):
            return None
        terms = None
        if role.entrustment_id is not None:
            entrustment = self.entrustments[role.entrustment_id]
            now = datetime.now(UTC)
            terms = EntrustmentTerms(
                entrustment.id,
                entrustment_arn(entrustment.account_id, entrustment.id),
                entrustment.trustee_account_id,
                entrustment.state().dead_reason(now),
                entrustment.ends_at,
                self.delegated_user_ids(entrustment, now),
            )
        return RoleFacts(
            role.id,
            role.account_id,
            role.role_name,
            role.trust,
            role.max_session_duration,
            terms,
            role.trust_position,
        )

    def _is_open(self, account_id: str) -> bool:
        account = self.accounts.get(account_id)
        return account is not None and account.is_open

    def role_layer_of(self, role: RoleView) -> PolicySet:
        """A role's compiled policies, cached per role generation like a user's."""
        generation = self._generations.get(role.id, 0)
        cached = self._policy_sets.get(role.id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        arn = f"acs:ram::{role.account_id}:role/{role.role_name}"
        if role.entrustment_id is not None:
            layer = scope_layer(self.entrustments[role.entrustment_id].state(), arn)
        else:
            layer = self._compiler.role_layer(arn, role.attachments.values(), self._default_version)
        self._policy_sets[role.id] = (generation, layer)
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

    def verify_session_credentials(
        self, access_key_id: str, secret: str, security_token: str
    ) -> SessionRecord:
        """The session STS credentials belong to — signature and secret only, not liveness.

        For questions about the past: a session revoked since still proves who it was.
        """
        if self.token_signer is None:
            raise AuthenticationFailed("this process cannot verify security tokens")
        try:
            token = self.token_signer.verify(security_token)
        except InvalidSessionToken as invalid:
            raise AuthenticationFailed(str(invalid)) from None
        if token.access_key_id != access_key_id:
            raise AuthenticationFailed("the security token was issued for another AccessKey")
        view = self.sessions.get(access_key_id)
        if view is None:
            raise AuthenticationFailed("the session does not exist or expired long ago")
        if not self.hasher.verify(secret, view.secret_hash):
            raise AuthenticationFailed("the AccessKey secret does not match")
        return view.record

    def authenticate_session(
        self, access_key_id: str, secret: str, security_token: str, now: datetime | None = None
    ) -> Credential:
        """STS credentials: the token's signature, the secret's hash, then the lineage."""
        at = now or datetime.now(UTC)
        epoch = self._lineage_epoch
        cached = self._verified_sessions.get(security_token)
        if cached is not None and cached[0] == epoch:
            _, credential, secret_hash = cached
            record = credential.session
            if (
                record is not None
                and credential.access_key_id == access_key_id
                and at < credential.valid_until
            ):
                if not self.hasher.verify(secret, secret_hash):
                    raise AuthenticationFailed("the AccessKey secret does not match")
                return credential
        record = self.verify_session_credentials(access_key_id, secret, security_token)
        try:
            subject, generation, valid_until = self._resolve_live(access_key_id, at)
        except SessionInvalid as dead:
            raise AuthenticationFailed(str(dead)) from None
        credential = Credential(
            subject.account_id,
            subject.arn,
            SubjectKind.SESSION,
            access_key_id,
            None,
            subject,
            generation,
            record,
            valid_until,
        )
        verified = self._verified_sessions
        if len(verified) >= _SESSION_CACHE_LIMIT:
            self._verified_sessions = verified = {}
        view = self.sessions.get(access_key_id)
        if view is not None:
            verified[security_token] = (epoch, credential, view.secret_hash)
        return credential

    def assuming_caller(self, credential: Credential) -> AssumingCaller:
        """Who calls AssumeRole, as ``domain.sts.assume_role`` needs it: subject and lineage."""
        if credential.kind is SubjectKind.SESSION:
            assert credential.subject is not None
            assert credential.session is not None
            record = credential.session
            role = self.roles.get(record.role_id)
            return AssumingCaller(
                credential.subject,
                record.source_user_id,
                ParentSession(
                    record.access_key_id,
                    record.role_arn,
                    record.expiration,
                    role.named_at if role is not None else None,
                ),
            )
        return AssumingCaller(self.subject_of(credential), credential.user_id)

    def decide_for(self, credential: Credential, request: Request) -> Answer:
        """Decide for an authenticated credential, with the memo that fits its kind."""
        if credential.kind is SubjectKind.SESSION:
            assert credential.subject is not None
            return self.decide(
                credential.subject,
                request,
                memo_key=credential.access_key_id,
                generation=credential.generation,
            )
        return self.decide(
            lambda: self.subject_of(credential),
            request,
            memo_key=credential.user_id or credential.access_key_id,
        )

    def answer_through_roles(
        self,
        subject: Subject,
        request: Request,
        *,
        optimistic: bool = False,
        roles: list[RoleView] | None = None,
    ) -> Answer | None:
        """The first answer that allows ``request`` through a role ``subject`` may assume now.

        docs/design.md §5, "could P do it?": ``assumable_roles.answer_through_roles`` over this
        index's facts (the temporal index answers the same rule as of any T). ``roles``: the
        resource's account's roles, when the caller already holds them (access reviews).
        """
        if subject.kind is not SubjectKind.USER:
            return None
        facts = _LiveRoles(self)
        user_id = self.user_ids.get(_user_key(subject))
        candidates = None if roles is None else (facts.assumable(role) for role in roles)
        return answer_through_roles(
            subject, user_id, request, facts, optimistic=optimistic, roles=candidates
        )

    # -- the write side's read port ----------------------------------------------------
    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        group = self.groups.get(group_id)
        return sorted(group.member_ids) if group else []

    def policy_holders(self, policy_id: UUID) -> list[tuple[str, UUID]]:
        return sorted(self._holders.get(policy_id, frozenset()))

    # -- authentication ----------------------------------------------------------------
    def authenticate(self, access_key_id: str, secret: str) -> Credential:
        """The AccessKey's owner, or why not — in words that tell nothing to a guesser.

        An unknown id, a dead key and a wrong secret all cost one keyed-hash comparison and
        answer ``KEY_REFUSED``; why a key is dead or inactive (naming its user) is said only
        to whoever presents its right secret.
        """
        key = self.keys.get(access_key_id)
        if key is None:
            dead = self._dead_keys.get(access_key_id)
            stored = dead[1] if dead is not None else self._dummy_hash
            if self.hasher.verify(secret, stored) and dead is not None:
                raise AuthenticationFailed(dead[0])
            raise AuthenticationFailed(KEY_REFUSED)
        if not self.hasher.verify(secret, key.secret_hash):
            raise AuthenticationFailed(KEY_REFUSED)
        if key.status != "Active":
            raise AuthenticationFailed("the AccessKey is Inactive")
        account = self.accounts.get(key.account_id)
        if account is None or not account.is_open:
            raise AuthenticationFailed(f"account {key.account_id} is closed")
        if key.user_id is None:
            return Credential(
                key.account_id, root_arn(key.account_id), SubjectKind.ROOT, access_key_id, None
            )
        user = self.users.get(key.user_id)
        if user is None:
            raise AuthenticationFailed("the AccessKey's user was deleted")
        return Credential(
            key.account_id,
            user_arn(key.account_id, user.user_name),
            SubjectKind.USER,
            access_key_id,
            user.id,
        )

    # -- subjects and decisions --------------------------------------------------------
    def subject_of(self, credential: Credential) -> Subject:
        if credential.subject is not None:
            return credential.subject
        if credential.kind is SubjectKind.ROOT or credential.user_id is None:
            return Subject(credential.account_id, credential.arn, SubjectKind.ROOT)
        return self.user_subject(credential.user_id)

    def user_subject(self, user_id: UUID) -> Subject:
        user = self.users[user_id]
        return Subject(
            user.account_id,
            user_arn(user.account_id, user.user_name),
            SubjectKind.USER,
            self.policy_set_of_user(user_id),
            named_at=user.named_at,
        )

    def root_subject(self, account_id: str) -> Subject:
        return Subject(account_id, root_arn(account_id), SubjectKind.ROOT)

    def decide(
        self,
        subject: Subject | Callable[[], Subject],
        request: Request,
        *,
        memo_key: UUID | str,
        generation: Hashable = None,
    ) -> Answer:
        """Decide, reusing an earlier answer when nothing it depended on has changed.

        ``memo_key`` names the principal: a user's id (whose generation the index moves on
        every change that concerns it), or for the root, whose answers never depend on
        policies, its AccessKey id. The generation is read *before* the subject's policies,
        so an answer computed while an event is applied is filed under the old generation.
        Pass the subject as a callable to have it built only on a miss. A session passes its
        own ``generation`` (its lineage's role generations, read before its layers).
        """
        if generation is None:
            generation = self._generations.get(memo_key, 0)
        key = (memo_key, generation, request.action_key, request.resource)
        answer = self._memo.get(key)
        if answer is not None:
            return answer
        answer = self._memo_old.get(key)
        if answer is None:
            answer = decide(subject() if callable(subject) else subject, request)
            if answer.decision.context_dependent:
                return answer
        self._memoise(key, answer)
        return answer

    def _memoise(self, key: tuple[UUID | str, Hashable, str, str], answer: Answer) -> None:
        """File ``answer`` under ``key`` if the key is short, within the byte budget."""
        action, resource = key[2], key[3]
        if len(action) + len(resource) > MEMO_MAX_KEY_CHARS:
            return
        cost = _memo_cost(action, resource)
        if cost > self._memo_half:
            return
        memo = self._memo
        self._memo_filled += cost
        if self._memo_filled > self._memo_half:
            # Replaced, never mutated in place: readers may hold either dictionary.
            self._memo_old, self._memo = memo, {}
            memo, self._memo_filled = self._memo, cost
        memo[key] = answer

    @property
    def memo_size(self) -> tuple[int, int]:
        """(answers memoised, their estimated bytes): what the budget bounds."""
        memos = (self._memo, self._memo_old)
        entries = sum(len(m) for m in memos)
        return entries, sum(_memo_cost(k[2], k[3]) for m in memos for k in list(m))

    def policy_set_of_user(self, user_id: UUID) -> PolicySet:
        generation = self._generations.get(user_id, 0)
        cached = self._policy_sets.get(user_id)
        if cached is not None and cached[0] == generation:
            return cached[1]
        user = self.users[user_id]
        groups = []
        for group_id in user.groups:
            group = self.groups.get(group_id)
            if group is None:
                continue  # a membership of a deleted group is dead
            via = group_arn(group.account_id, group.group_name)
            groups.append(GroupAttachments(via, tuple(group.attachments.values())))
        policy_set = self._compiler.identity_layer(
            user.attachments.values(), groups, self._default_version
        )
        self._policy_sets[user_id] = (generation, policy_set)
        return policy_set

    def _default_version(self, policy_id: UUID) -> CustomVersion | None:
        policy = self.policies.get(policy_id)
        if policy is None:
            return None
        version = policy.default_version
        return CustomVersion(policy_id, version, policy.versions[version].document)

    def forget_cached_decisions(self) -> None:
        """Drop every cached policy set and memoised answer (benchmarks measure cold paths)."""
        self._policy_sets = {}
        self._memo, self._memo_old, self._memo_filled = {}, {}, 0

    # -- lookups for the API -------------------------------------------------------------
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

    def principal_for_arn(self, arn: str) -> tuple[UUID | str, Subject] | None:
        """The memo key and subject of the live principal an ARN names, or None."""
        parsed = parse_principal_arn(arn)
        account = self.accounts.get(parsed.account_id)
        if account is None or not account.is_open:
            return None
        if parsed.kind == "root":
            return f"root:{parsed.account_id}", self.root_subject(parsed.account_id)
        if parsed.kind == "user":
            user = self.user_by_name(parsed.account_id, parsed.name or "")
            return (user.id, self.user_subject(user.id)) if user else None
        return None

    def subject_for_arn(self, arn: str) -> Subject | None:
        """The subject an ARN names now, or None when no live principal has it."""
        found = self.principal_for_arn(arn)
        return found[1] if found else None


def _user_key(subject: Subject) -> tuple[str, str]:
    return subject.account_id, subject.arn.rpartition("/")[2]


class _LiveRoles:
    """``RoleReachFacts`` over the live index (now)."""

    __slots__ = ("index",)

    def __init__(self, index: DecisionIndex) -> None:
        self.index = index

    def account_open(self, account_id: str) -> bool:
        return self.index._is_open(account_id)

    def roles_in(self, account_id: str) -> Iterator[AssumableRole]:
        return (self.assumable(role) for role in self.index.roles_of(account_id))

    def assumable(self, role: RoleView) -> AssumableRole:
        terms = None
        if role.entrustment_id is not None:
            terms = self.index.entrustments[role.entrustment_id].state()
        arn = f"acs:ram::{role.account_id}:role/{role.role_name}"
        return AssumableRole(role.id, role.account_id, arn, role.trust, terms, role.trust_position)

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


class _LiveLineage:
    """``LineageFacts`` over the live index (now), noting each role generation it read."""

    __slots__ = ("generations", "index", "valid_until")

    def __init__(self, index: DecisionIndex) -> None:
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


def _memo_cost(action: str, resource: str) -> int:
    """The bytes one memoised answer is counted for: its key's strings and a fixed part."""
    return _MEMO_ENTRY_BYTES + sys.getsizeof(action) + sys.getsizeof(resource)
