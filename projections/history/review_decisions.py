"""The access review's decisions at one instant: who the candidates are, and their answers.

``ReplayIndex`` is a decision index that notes which principals the events applied since may
have changed; ``Reviewer`` decides the candidates (A's root, A's users, and users of accounts
with a path into A, through A's roles) with the live rules, and reports only the answers that
changed. The resource policies covering the resource take part as in live decisions
(``decide_with_resource_and_control``): a user one of them names is a candidate from any open
account, and every other principal they name (``*``, an account, a role, a session) is an
entry of its own, chain ``[principal, "resource-policy:<ARN>"]`` — ``conditional`` unless it
is of A, since across accounts its own account's policies must allow too, which the review
does not enumerate. A role of another account that an Allow of a covering policy names by ARN
is a way in as A's roles are (``role_reach.answer_through_roles`` tries it after them): the
users who could assume it are candidates (its trust's accounts, its contract's trustee), listed
with chain ``[user, …, role, "resource-policy:<ARN>"]``, and its generation is watched like
A's roles'. After user-scoped events (``USER_SCOPED``) only the users touched are decided again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from mandate.domain.common.arns import root_arn
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.policy.decisions import Answer, Subject, decide
from mandate.domain.policy.document import Effect, PolicyDocument
from mandate.domain.policy.evaluation import AccessRequest, Decision
from mandate.domain.policy.patterns import PatternSet, has_wildcard
from mandate.domain.policy.resource_policies import (
    RESOURCE_POLICY_TYPE,
    ResourcePolicy,
    decide_resource_layer,
    decide_with_resource_and_control,
)
from mandate.domain.sts.role_reach import named_role_arns
from mandate.projections.decisions.directory_events import control_of
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.views import RoleView
from mandate.projections.history.review_timeline import CURRENT_TIME, Allowed, Entry, PrincipalId

__all__ = ["USER_SCOPED", "ReplayIndex", "Reviewer"]


USER_SCOPED: Final = frozenset(
    {
        "mandate:UserCreated.v1",
        "mandate:UserUpdated.v1",
        "mandate:UserDeleted.v1",
        "mandate:AccessKeyCreated.v1",
        "mandate:AccessKeyDisabled.v1",
        "mandate:AccessKeyEnabled.v1",
        "mandate:AccessKeyDeleted.v1",
        "mandate:RootAccessKeyRotated.v1",
        "mandate:UserAddedToGroup.v1",
        "mandate:UserRemovedFromGroup.v1",
        "mandate:User.PolicyAttached.v1",
        "mandate:User.PolicyDetached.v1",
        "mandate:GroupCreated.v1",
        "mandate:GroupDeleted.v1",
        "mandate:Group.PolicyAttached.v1",
        "mandate:Group.PolicyDetached.v1",
        "mandate:PolicyCreated.v1",
        "mandate:PolicyVersionCreated.v1",
        "mandate:DefaultPolicyVersionSet.v1",
        "mandate:PolicyVersionDeleted.v1",
        "mandate:PolicyDeleted.v1",
        "mandate:SessionIssued.v1",
        "mandate:SessionRevoked.v1",
        "mandate:RoleSessionsRevoked.v1",
        # no effect on any decision (the index does not apply them): a name's claim
        "mandate:NameClaimed.v1",
        "mandate:NameReleased.v1",
        "mandate:NameReclaimed.v1",
    }
)
"""Events whose every effect on a principal's answer touches it in the index (``_touch``: the
users concerned, or a role whose policies they change, which re-decides everyone), or that
have none. After only such events, only the users touched (and new or deleted ones, whose
own events touch them) are decided again; any other event (accounts, roles and trust,
entrustments, delegations) and every time bound re-decide every candidate."""


class ReplayIndex(DecisionIndex):
    """A decision index that notes which principals the events applied since may have changed.

    ``touched`` gathers every aggregate id an event came from and every id whose generation
    the index moves (``_touch``: a group's members, a policy's holders, …) — exactly the
    invalidation the live index's own caches rely on — so a review re-decides only those.
    """

    def __init__(self, hasher: SecretHasher) -> None:
        super().__init__(hasher)
        self.touched: set[UUID | str] = set()

    def apply(self, event: Any, position: int) -> None:
        self.touched.add(event.originator_id)
        super().apply(event, position)

    def _touch(self, user_ids: Iterable[UUID]) -> None:
        ids = tuple(user_ids)
        self.touched.update(ids)
        super()._touch(ids)


class Reviewer:
    """Decides the candidates at one instant against the replayed index.

    It remembers each principal's last answer, so that after user-scoped events
    (``USER_SCOPED``) only the users the index says they touched are decided again, and
    it reports only the answers that changed.
    """

    def __init__(
        self,
        index: ReplayIndex,
        account_id: str,
        action: str,
        resource: str,
        *,
        as_written: bool = False,
    ) -> None:
        self.index = index
        self.account_id = account_id
        self.action = action
        self.resource = resource
        self.as_written = as_written
        """Another account's principals the covering policies name are listed as written,
        not decided: whether they exist, their account is open, or (a user) its own policies
        allow is not A's to learn. Its users still reach A through A's roles; another
        account's role they name is no way in (its assumers are its account's to know), so
        a path it would have hidden is listed as it would be were that role not named."""
        self._named_of = frozenset({account_id}) if as_written else None
        """Whose roles the covering policies name may be a way in (None: any)."""
        self.decisions = 0
        """Principals decided (each: directly, through roles, then optimistically)."""
        self._answers: dict[PrincipalId, Entry] = {}
        self._roles_signature: tuple[tuple[UUID, int], ...] = ()
        self._reachable: frozenset[str] = frozenset()
        self._covering: tuple[ResourcePolicy, ...] = ()
        self._named: frozenset[str] = frozenset()
        """Every principal the covering resource policies name."""
        self._whole: frozenset[str] = frozenset()
        """Those decided whole as users (none of another account when ``as_written``)."""
        self._named_accounts: frozenset[str] = frozenset()
        """The accounts of the users among them."""
        self._named_roles: tuple[RoleView, ...] = ()
        """The roles of other accounts among them (their assumers are candidates)."""
        self._fresh = False
        """Whether ``_answers`` holds every candidate's answer at some earlier instant."""

    def changes(self, at: datetime, *, everyone: bool) -> dict[PrincipalId, Entry | None]:
        """The answers that changed since the last instant (None: no longer allowed).

        ``everyone``: decide every candidate afresh, else only those touched since.
        """
        index, account_id = self.index, self.account_id
        touched, index.touched = index.touched, set()
        roles = index.roles_of(account_id)
        # only events that are not user-scoped change these, and they re-decide everyone
        self._covering = index.resource_policies_covering(self.resource)
        self._named = frozenset(
            name
            for policy in self._covering
            for grant in policy.grants
            for name in grant.principals
        )
        # users of another account decided whole: to the admin only (``as_written``)
        self._whole = frozenset() if self.as_written else self._named
        self._named_accounts = frozenset(n.split(":")[3] for n in self._whole if ":user/" in n)
        self._named_roles = self._roles_named()
        # the index's own invalidation keys: a role's moves when anything it grants changes
        signature = tuple(
            (role.id, index.generation_of(role.id)) for role in (*roles, *self._named_roles)
        )
        if signature != self._roles_signature:
            everyone = True
            self._roles_signature = signature
        before = self._answers
        if not _is_open(index, account_id):
            self._fresh = False
            self._answers = {}
            return dict.fromkeys(before)
        # a RAM user's or role's tags are facts of the index at ``at``, not request context
        request = index.with_resource_facts(
            AccessRequest.make(self.action, self.resource, {CURRENT_TIME: at})
        )
        if everyone or not self._fresh:
            self._fresh = True
            after: dict[PrincipalId, Entry] = {}
            root = decide(index.root_subject(account_id), request)
            if root.allowed:
                after[None] = ((root_arn(account_id), account_id, None), (False, root.chain))
            self._reachable = self._reachable_accounts()
            for user_id in list(index.users):
                entry = self._user_entry(user_id, request, roles)
                if entry is not None:
                    after[user_id] = entry
            after.update(self._resource_principals(request))
            self._answers = after
            changed: dict[PrincipalId, Entry | None] = {
                p: e for p, e in after.items() if before.get(p) != e
            }
            changed.update((p, None) for p in before if p not in after)
            return changed
        changed = {}
        for principal in touched:
            if not isinstance(principal, UUID):
                continue
            entry = self._user_entry(principal, request, roles)
            if before.get(principal) != entry:
                changed[principal] = entry
                if entry is None:
                    del before[principal]
                else:
                    before[principal] = entry
        return changed

    def _user_entry(
        self, user_id: UUID, request: AccessRequest, roles: list[RoleView]
    ) -> Entry | None:
        """A user's answer now (None when not allowed, not a candidate, or gone)."""
        user = self.index.users.get(user_id)
        if user is None:
            return None
        outside = user.account_id != self.account_id and user.account_id not in self._reachable
        if outside and user.account_id not in self._named_accounts:
            return None  # cheap: no subject is built for users of unrelated accounts
        subject = self.index.user_subject(user_id)
        if outside and (
            subject.arn not in self._whole or not _is_open(self.index, user.account_id)
        ):
            return None
        self.decisions += 1
        state = self._user_state(subject, request, roles)
        return None if state is None else ((subject.arn, user.account_id, user_id), state)

    def _user_state(
        self, subject: Subject, request: AccessRequest, roles: list[RoleView]
    ) -> Allowed | None:
        own = subject.account_id == self.account_id or subject.arn in self._whole
        direct = self._decide(subject, request) if own else None
        if direct is not None and direct.allowed:
            return False, _chain(direct.chain, direct.decision)
        named_of = self._named_of
        through = self.index.answer_through_roles(subject, request, roles=roles, named_of=named_of)
        if through is not None:
            return False, _chain(through.chain, through.decision)
        if direct is not None and direct.decision.context_dependent:
            hopeful = self._decide(subject, request, optimistic=True)
            if hopeful.allowed:
                return True, _chain(hopeful.chain, hopeful.decision)
        hopeful_role = self.index.answer_through_roles(
            subject, request, optimistic=True, roles=roles, named_of=named_of
        )
        if hopeful_role is not None:
            return True, _chain(hopeful_role.chain, hopeful_role.decision)
        return None

    def _decide(
        self, subject: Subject, request: AccessRequest, *, optimistic: bool = False
    ) -> Answer:
        """``decide``, bounded by the control policies over the subject's account then, with
        the resource policies covering the resource."""
        levels, management = control_of(self.index, subject.account_id)
        return decide_with_resource_and_control(
            subject, levels, management, self._covering, request, optimistic=optimistic
        )

    def _resource_principals(self, request: AccessRequest) -> Iterator[tuple[str, Entry]]:
        """The entries of principals the covering policies name that are not users: ``*``, an
        account's root (of another account: A's own is not bound by them), a role, a session.
        Each is decided on the resource layer alone, by the names a statement may use for it.
        ``as_written``: one of another account, a user too, is listed whether or not it
        exists, and a user without its own account's decision."""
        for name in sorted(self._named):
            account = "" if name == "*" else name.split(":")[3]
            checked = account == self.account_id or not self.as_written
            if name != "*":
                if (":user/" in name and checked) or name == root_arn(self.account_id):
                    continue  # a user is decided whole (``_user_entry``), A's root above
                if checked and account != self.account_id and not _is_open(self.index, account):
                    continue  # no one of a closed or unknown account can authenticate
            head, session, rest = name.partition(":assumed-role/")
            role = f"{head}:role/{rest.split('/', 1)[0]}" if session else name
            if (
                ":role/" in role
                and checked
                and self.index.role_by_name(account, role.split("/")[1]) is None
            ):
                continue  # no session of a role that does not exist
            names = {name, role} if name != "*" else {name}
            decision = decide_resource_layer(self._covering, frozenset(names), request)
            conditional = account != self.account_id
            if decision is not None and not decision.allowed and decision.context_dependent:
                decision = decide_resource_layer(
                    self._covering, frozenset(names), request, optimistic=True
                )
                conditional = True
            if decision is not None and decision.allowed:
                allowed = (conditional, _chain((name,), decision))
                yield f"resource-policy:{name}", ((name, account, None), allowed)

    def _roles_named(self) -> tuple[RoleView, ...]:
        """The roles of other open accounts an Allow of the covering policies names: their
        assumers reach the resource through them (``role_reach.answer_through_roles``)."""
        index, found = self.index, []
        if self.as_written:
            return ()
        for arn in named_role_arns(self._covering, self.account_id):
            account, name = arn.split(":")[3], arn.split("/", 1)[1]
            if _is_open(index, account) and (role := index.role_by_name(account, name)):
                found.append(role)
        return tuple(found)

    def _reachable_accounts(self) -> frozenset[str]:
        """Open accounts other than A with a path into A: trusted by a role of A or by one
        a covering policy names, or trustee of its contract."""
        index, account_id = self.index, self.account_id
        others = [a for a, view in index.accounts.items() if view.is_open and a != account_id]
        reachable: set[str] = set()
        for role in (*index.roles_of(account_id), *self._named_roles):
            if role.entrustment_id is not None:
                reachable.add(index.entrustments[role.entrustment_id].trustee_account_id)
                continue
            for pattern in _trusted_account_patterns(role.trust):
                if has_wildcard(pattern):
                    matcher = PatternSet((pattern,), case_sensitive=True)
                    reachable.update(a for a in others if matcher.matches(a))
                else:
                    reachable.add(pattern)
        reachable.discard(account_id)
        return frozenset(a for a in reachable if _is_open(index, a))


def _chain(chain: tuple[str, ...], decision: Decision) -> tuple[str, ...]:
    """``chain``, then each resource policy whose Allow statements took part in ``decision``."""
    arns = dict.fromkeys(
        f"resource-policy:{m.policy_name}"
        for m in decision.matched
        if m.policy_type == RESOURCE_POLICY_TYPE and m.effect is Effect.ALLOW
    )
    return chain + tuple(arns)


def _trusted_account_patterns(trust: PolicyDocument) -> Iterator[str]:
    """The account part of every RAM principal a trust policy names (a pattern)."""
    for statement in trust.statements:
        principal = statement.principal
        for name in (principal.ram or ()) if principal is not None else ():
            if name.startswith("acs:ram::"):
                parts = name.split(":")
                yield parts[3] if len(parts) > 3 else "*"
            else:
                yield name


def _is_open(index: DecisionIndex, account_id: str) -> bool:
    account = index.accounts.get(account_id)
    return account is not None and account.is_open
