"""The decision index: every fact a live decision needs, in memory, kept current from the log.

Each API process holds one, rebuilt from position 0 at start and then fed by a
``LogFollower``. It answers ``authorize`` without I/O: credentials by key id, a principal's
compiled policy layers (cached per principal generation), and memoised decisions for requests whose
outcome cannot depend on the request context.

Writes to the index happen on one thread at a time (the follower's lock); readers run
concurrently and never lock — every container they iterate is replaced, not mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.arns import group_arn, parse_principal_arn, root_arn, user_arn
from domain.attachments import Attachment, PolicyType
from domain.decisions import Answer, Subject, SubjectKind, decide
from domain.evaluation import PolicySet, Request
from domain.secrets import SecretHasher
from projections.ledger_time import ledger_time_after
from projections.policy_sets import CustomVersion, GroupAttachments, PolicyCompiler
from projections.views import (
    AccessKeyView,
    AccountView,
    GroupView,
    PolicyVersionView,
    PolicyView,
    UserView,
)

__all__ = ["AuthenticationFailed", "Credential", "DecisionIndex"]

_MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a verified AccessKey belongs to."""

    account_id: str
    arn: str
    kind: SubjectKind
    access_key_id: str
    user_id: UUID | None


class AuthenticationFailed(Exception):
    """The credentials are unknown, wrong, inactive, or their owner is gone (→ 401)."""


class DecisionIndex:
    """In-memory read model for live decisions, management reads and write preconditions."""

    def __init__(self, hasher: SecretHasher) -> None:
        self.hasher = hasher
        self.position = 0
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
        self._dead_keys: dict[str, str] = {}
        self._holders: dict[UUID, frozenset[tuple[str, UUID]]] = {}
        # Each user's generation moves when anything its decisions depend on changes; cached
        # policy sets and memoised answers are tagged with the generation they were computed
        # at, so a change invalidates exactly the principals it touches, and an answer computed
        # concurrently from the old state is stored under a generation no lookup asks for.
        self._generations: dict[UUID | str, int] = {}
        self._policy_sets: dict[UUID, tuple[int, PolicySet]] = {}
        self._memo: dict[tuple[UUID | str, int, str, str], Answer] = {}
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
        }

    # -- applying the log ------------------------------------------------------------------
    def apply(self, event: Any, position: int) -> None:
        """Apply one event at its ledger position (called by the follower, in order)."""
        handler = self._handlers.get(type(event).TOPIC)
        if handler is not None:
            handler(event)
        self.ledger_time = ledger_time_after(self.ledger_time, event.timestamp)
        self.position = position

    def _touch(self, user_ids: Iterable[UUID]) -> None:
        """Move the generation of every user whose decisions this event may change."""
        generations = self._generations
        for user_id in user_ids:
            generations[user_id] = generations.get(user_id, 0) + 1

    def _holders_of(self, policy_id: UUID) -> set[UUID]:
        """Users who hold a policy directly or through a group."""
        users: set[UUID] = set()
        for kind, holder_id in self._holders.get(policy_id, frozenset()):
            if kind == "user":
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
        self.keys.pop(access_key_id, None)
        self._dead_keys[access_key_id] = reason

    def _user_created(self, e: Any) -> None:
        self.users[e.originator_id] = UserView(
            e.originator_id, e.account_id, e.user_name, e.display_name, e.timestamp, e.timestamp
        )
        self.user_ids[(e.account_id, e.user_name)] = e.originator_id

    def _user_updated(self, e: Any) -> None:
        user = self.users[e.originator_id]
        if e.user_name != user.user_name:
            self.user_ids.pop((user.account_id, user.user_name), None)
            self.user_ids[(user.account_id, e.user_name)] = user.id
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
            group.member_ids = group.member_ids | {user.id}

    def _removed_from_group(self, e: Any) -> None:
        user = self.users[e.originator_id]
        user.groups = {g: n for g, n in user.groups.items() if g != e.group_id}
        self._touch((user.id,))
        group = self.groups.get(e.group_id)
        if group is not None:
            group.member_ids = group.member_ids - {user.id}

    def _attached(self, holder: UserView | GroupView, kind: str, e: Any) -> None:
        self._touch_holder(holder)
        a = Attachment(PolicyType(e.policy_type), e.policy_name, e.policy_id)
        holder.attachments = {**holder.attachments, a.key: a}
        if a.policy_id is not None:
            self._holders[a.policy_id] = self._holders.get(a.policy_id, frozenset()) | {
                (kind, holder.id)
            }

    def _touch_holder(self, holder: UserView | GroupView) -> None:
        self._touch(holder.member_ids if isinstance(holder, GroupView) else (holder.id,))

    def _detached(self, holder: UserView | GroupView, kind: str, e: Any) -> None:
        self._touch_holder(holder)
        key = (e.policy_type, e.policy_name)
        holder.attachments = {k: a for k, a in holder.attachments.items() if k != key}
        if e.policy_id is not None and e.policy_id in self._holders:
            self._holders[e.policy_id] = self._holders[e.policy_id] - {(kind, holder.id)}

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
        if self.policy_ids.get((policy.account_id, policy.policy_name)) == policy.id:
            del self.policy_ids[(policy.account_id, policy.policy_name)]

    # -- the write side's read port ----------------------------------------------------
    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        group = self.groups.get(group_id)
        return sorted(group.member_ids) if group else []

    def policy_holders(self, policy_id: UUID) -> list[tuple[str, UUID]]:
        return sorted(self._holders.get(policy_id, frozenset()))

    # -- authentication ----------------------------------------------------------------
    def authenticate(self, access_key_id: str, secret: str) -> Credential:
        key = self.keys.get(access_key_id)
        if key is None:
            dead = self._dead_keys.get(access_key_id)
            raise AuthenticationFailed(dead or "the AccessKey does not exist")
        if not self.hasher.verify(secret, key.secret_hash):
            raise AuthenticationFailed("the AccessKey secret does not match")
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
        )

    def root_subject(self, account_id: str) -> Subject:
        return Subject(account_id, root_arn(account_id), SubjectKind.ROOT)

    def decide(
        self,
        subject: Subject | Callable[[], Subject],
        request: Request,
        *,
        memo_key: UUID | str,
    ) -> Answer:
        """Decide, reusing an earlier answer when nothing it depended on has changed.

        ``memo_key`` names the principal: a user's id (whose generation the index moves on
        every change that concerns it), or for the root, whose answers never depend on
        policies, its AccessKey id. The generation is read *before* the subject's policies,
        so an answer computed while an event is applied is filed under the old generation.
        Pass the subject as a callable to have it built only on a miss.
        """
        key = (memo_key, self._generations.get(memo_key, 0), request.action_key, request.resource)
        memo = self._memo
        answer = memo.get(key)
        if answer is not None:
            return answer
        answer = decide(subject() if callable(subject) else subject, request)
        if not answer.decision.context_dependent:
            if len(memo) >= _MEMO_LIMIT:
                self._memo = memo = {}
            memo[key] = answer
        return answer

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
        self._memo = {}

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
