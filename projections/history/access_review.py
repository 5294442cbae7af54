"""Access review: who could do an action on a resource of account A, when, and through what.

The answer is computed by replaying the log once into a fresh ``DecisionIndex`` and asking
the *live* rules (``domain.policy.decisions.decide``, ``DecisionIndex.answer_through_roles``) at
every instant of the window where an answer may change:

- ``from`` itself (with every event whose ledger time is at most ``from`` applied);
- each distinct ledger time of an event inside the window (all events of that instant
  applied first, so a ``save()`` of several events is seen whole);
- each time bound inside the window that no event marks: an entrustment's ``starts_at`` and
  ``ends_at``, a delegation's ``ends_at``, and every instant a ``Date…`` condition on
  ``acs:CurrentTime`` names in a document of the log (and the microsecond after it, for the
  ``…Equals``/``…GreaterThan`` operators that change one tick later).

Between two consecutive such instants nothing a decision reads changes, so the answer at an
instant holds until the next one: intervals are exact, half-open ``[from, to)``, clipped to
the window, and merged while the answer (allowed, conditional, chain) stays the same.

Candidates at each instant, each decided with ``acs:CurrentTime`` = that instant and no
other context key:

- A's root, while A is open (it may do anything in its own account);
- A's users, directly (their identity policies and groups) and through A's roles;
- users of the accounts that have a path into A — named by the trust policy of one of A's
  ordinary roles (by user ARN, account root or account id, wildcards included), or trustee
  of one of A's entrustments — through A's roles only (identity policies never reach another
  account's resources). A user of a closed account is no candidate: it cannot authenticate.

"Could" is meant as ``POST /v1/authorize`` with ``principal`` means it: a principal's
policies, trust and delegations, not whether it holds an active AccessKey.

``conditional``: when the empty context does not allow, the same question is asked
*optimistically* (``evaluate``'s flag: a condition clause on a key the context leaves open
holds in an Allow and not in a Deny, a role's trust likewise); if that allows, the interval
is ``conditional: true`` — some request context (a source IP, MFA, secure transport, a
service key) would be allowed. ``acs:CurrentTime`` is always fixed, so a time-bounded
policy is never conditional, just bounded.

Cost: the replay applies every event up to the window's end once (O(N)). At each instant,
after events that only concern some users (``_USER_SCOPED``: their policies, groups, names,
and name claims, which change nothing), only the users the index touched are decided again
and only changed answers reach the timeline; after any other event, or at a time bound,
every candidate is, each by one decision plus one per role of A. So O(N + T + F·C·R) for T
users touched over the window, F instants where everyone is re-decided, C candidates and R
roles of A: about 20 µs per principal re-decided (more the first time a policy set is
assembled). Before name claims counted as neutral and the per-instant work was bounded by
what changed, each user created re-decided every user (quadratic: 20 s at 5,000 events).
It runs in the threadpool (see ``api.routers.access_review`` for measured figures).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from domain.common.arns import root_arn
from domain.common.ledger_time import ledger_time_after
from domain.identity.secrets import SecretHasher
from domain.policy.condition_values import as_date
from domain.policy.decisions import Subject, decide
from domain.policy.document import PolicyDocument
from domain.policy.evaluation import Request
from domain.policy.patterns import PatternSet, has_wildcard
from projections.decisions.index import DecisionIndex
from projections.decisions.views import RoleView
from projections.store.read_replica import LogSource

__all__ = [
    "AccessReview",
    "ReplayIndex",
    "ReplayStart",
    "ReviewInterval",
    "ReviewItem",
    "ReviewTooLarge",
    "logged_events",
    "review_access",
    "time_bounds",
]

_TICK = timedelta(microseconds=1)
_ASSUME_ROLE = "sts:AssumeRole"
_CURRENT_TIME = "acs:currenttime"


@dataclass(frozen=True, slots=True)
class ReviewInterval:
    """``[start, end)``: the principal could do it, through ``chain``, the whole time."""

    start: datetime
    end: datetime
    conditional: bool
    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One principal (a root, or one user entity under one ARN) and its intervals."""

    principal: str
    kind: str
    """``root`` or ``user``."""
    account_id: str
    user_id: UUID | None
    intervals: tuple[ReviewInterval, ...]


@dataclass(frozen=True, slots=True)
class AccessReview:
    """The review of ``action`` on ``resource`` over ``[start, end)``, as of ``position``."""

    account_id: str
    resource: str
    action: str
    start: datetime
    end: datetime
    position: int
    items: tuple[ReviewItem, ...]
    events: int
    """Events replayed (those up to ``position`` whose ledger time is before ``end``)."""
    instants: int
    """Instants at which an answer may change (each decided)."""
    decisions: int
    """Principals decided over all instants (the rest kept their answer)."""


def logged_events(
    app: LogSource, up_to: int, batch: int = 1000, *, after: int = 0
) -> Iterator[tuple[int, Any]]:
    """The events of the log after ``after``, up to position ``up_to``, in order, with positions."""
    recorder, mapper = app.recorder, app.mapper
    while after < up_to:
        notifications = recorder.select_notifications(
            after, batch, stop=up_to, inclusive_of_start=False
        )
        if not notifications:
            return
        for notification in notifications:
            yield int(notification.id), mapper.to_domain_event(notification)
        after = int(notifications[-1].id)


# --- the principal an item is about -----------------------------------------------------------

_Key = tuple[str, str, UUID | None]
"""(ARN, account id, user id or None for a root): a renamed user gets a new item, and a
deleted user's name taken by a new user is a different principal."""
_State = tuple[bool, tuple[str, ...]]
"""(conditional, chain) of an allowed principal at one instant."""


_Principal = UUID | None
"""A user's id, or None for A's root."""
_Entry = tuple[_Key, _State]


@dataclass(slots=True)
class _Timeline:
    """Intervals under construction: the open one per principal, the closed ones.

    It is told only what changed at an instant (``observe``), so an instant costs what
    changed there, not one step per principal allowed.
    """

    open: dict[_Principal, tuple[datetime, _Entry]] = field(default_factory=dict)
    closed: dict[_Key, list[ReviewInterval]] = field(default_factory=dict)

    def observe(self, at: datetime, changes: Mapping[_Principal, _Entry | None]) -> None:
        for principal, entry in changes.items():
            current = self.open.get(principal)
            if current is not None and current[1] == entry:
                continue
            if current is not None:
                self._close(principal, current, at)
            if entry is not None:
                self.open[principal] = (at, entry)

    def finish(self, end: datetime) -> dict[_Key, list[ReviewInterval]]:
        for principal, current in list(self.open.items()):
            self._close(principal, current, end)
        return self.closed

    def _close(
        self, principal: _Principal, current: tuple[datetime, _Entry], until: datetime
    ) -> None:
        del self.open[principal]
        since, (key, (conditional, chain)) = current
        if until > since:
            self.closed.setdefault(key, []).append(ReviewInterval(since, until, conditional, chain))


# --- time bounds that no event marks ----------------------------------------------------------


def time_bounds(event: Any) -> list[datetime]:
    """Instants after which a decision may change although no event happens then."""
    found = []
    attributes = getattr(event, "__dict__", {})
    for name in ("starts_at", "ends_at"):
        moment = attributes.get(name)
        if isinstance(moment, datetime):
            found.append(moment)
    for value in attributes.values():
        if isinstance(value, str) and _CURRENT_TIME in value.lower():
            try:
                document = json.loads(value)
            except ValueError:
                continue
            for moment in _current_time_values(document):
                found += (moment, moment + _TICK)
    return found


def _current_time_values(node: object) -> Iterator[datetime]:
    """The instants ``Date…`` conditions on ``acs:CurrentTime`` name anywhere in a document."""
    if isinstance(node, list):
        for item in node:
            yield from _current_time_values(item)
    elif isinstance(node, dict):
        for operator, block in node.items():
            if (
                isinstance(operator, str)
                and operator.startswith("Date")
                and isinstance(block, dict)
            ):
                for key, values in block.items():
                    if isinstance(key, str) and key.lower() == _CURRENT_TIME:
                        for value in values if isinstance(values, list) else [values]:
                            moment = as_date(value)
                            if moment is not None:
                                yield moment
            else:
                yield from _current_time_values(block)


# --- deciding at one instant ------------------------------------------------------------------


_USER_SCOPED: Final = frozenset(
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


class _Reviewer:
    """Decides the candidates at one instant against the replayed index.

    It remembers each principal's last answer, so that after user-scoped events
    (``_USER_SCOPED``) only the users the index says they touched are decided again, and
    it reports only the answers that changed.
    """

    def __init__(self, index: ReplayIndex, account_id: str, action: str, resource: str) -> None:
        self.index = index
        self.account_id = account_id
        self.action = action
        self.resource = resource
        self.decisions = 0
        """Principals decided (each: directly, through roles, then optimistically)."""
        self._answers: dict[_Principal, _Entry] = {}
        self._roles_signature: tuple[tuple[UUID, int], ...] = ()
        self._reachable: frozenset[str] = frozenset()
        self._fresh = False
        """Whether ``_answers`` holds every candidate's answer at some earlier instant."""

    def changes(self, at: datetime, *, everyone: bool) -> dict[_Principal, _Entry | None]:
        """The answers that changed since the last instant (None: no longer allowed).

        ``everyone``: decide every candidate afresh, else only those touched since.
        """
        index, account_id = self.index, self.account_id
        touched, index.touched = index.touched, set()
        roles = index.roles_of(account_id)
        generations = index._generations  # the index's own invalidation keys
        signature = tuple((role.id, generations.get(role.id, 0)) for role in roles)
        if signature != self._roles_signature:
            everyone = True
            self._roles_signature = signature
        before = self._answers
        if not _is_open(index, account_id):
            self._fresh = False
            self._answers = {}
            return dict.fromkeys(before)
        request = Request.make(self.action, self.resource, {_CURRENT_TIME: at})
        if everyone or not self._fresh:
            self._fresh = True
            after: dict[_Principal, _Entry] = {}
            root = decide(index.root_subject(account_id), request)
            if root.allowed:
                after[None] = ((root_arn(account_id), account_id, None), (False, root.chain))
            self._reachable = self._reachable_accounts()
            for user_id in list(index.users):
                entry = self._user_entry(user_id, request, roles)
                if entry is not None:
                    after[user_id] = entry
            self._answers = after
            changed: dict[_Principal, _Entry | None] = {
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

    def _user_entry(self, user_id: UUID, request: Request, roles: list[RoleView]) -> _Entry | None:
        """A user's answer now (None when not allowed, not a candidate, or gone)."""
        user = self.index.users.get(user_id)
        if user is None or (
            user.account_id != self.account_id and user.account_id not in self._reachable
        ):
            return None
        subject = self.index.user_subject(user_id)
        self.decisions += 1
        state = self._user_state(subject, request, roles)
        return None if state is None else ((subject.arn, user.account_id, user_id), state)

    def _user_state(
        self, subject: Subject, request: Request, roles: list[RoleView]
    ) -> _State | None:
        own = subject.account_id == self.account_id
        direct = decide(subject, request) if own else None
        if direct is not None and direct.allowed:
            return False, direct.chain
        through = self.index.answer_through_roles(subject, request, roles=roles)
        if through is not None:
            return False, through.chain
        if direct is not None and direct.decision.context_dependent:
            hopeful = decide(subject, request, optimistic=True)
            if hopeful.allowed:
                return True, hopeful.chain
        hopeful_role = self.index.answer_through_roles(
            subject, request, optimistic=True, roles=roles
        )
        if hopeful_role is not None:
            return True, hopeful_role.chain
        return None

    def _reachable_accounts(self) -> frozenset[str]:
        """Open accounts other than A with a path into A: trusted by a role, or trustee."""
        index, account_id = self.index, self.account_id
        others = [a for a, view in index.accounts.items() if view.is_open and a != account_id]
        reachable: set[str] = set()
        for role in index.roles_of(account_id):
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


# --- the replay -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayStart:
    """Where a replay may begin instead of position 0: an index with the log applied up to
    ``index.position``, and the time bounds its events named after its ledger time."""

    index: ReplayIndex
    bounds: tuple[datetime, ...] = ()


class ReviewTooLarge(Exception):
    """A window whose review would exceed a bound on its work (instants or decisions)."""


def review_access(
    events: Iterable[tuple[int, Any]],
    hasher: SecretHasher,
    *,
    account_id: str,
    resource: str,
    action: str,
    start: datetime,
    end: datetime,
    position: int,
    start_from: ReplayStart | None = None,
    max_instants: int | None = None,
    max_decisions: int | None = None,
) -> AccessReview:
    """Replay ``events`` (the log up to ``position``, in order) and review ``[start, end)``.

    Events whose ledger time is ``end`` or later cannot change an answer inside the window
    (ledger time is monotonic), so the replay stops at the first of them. ``start_from``:
    begin from that state (its ledger time at most ``start``), ``events`` being those after
    its position. Beyond ``max_instants`` instants or ``max_decisions`` principals decided,
    ``ReviewTooLarge`` is raised: a bound on the work one request may ask for.
    """
    if start_from is None:
        index = ReplayIndex(hasher)
        known_bounds: Iterable[datetime] = ()
    else:
        index = start_from.index
        if index.ledger_time is not None and index.ledger_time > start:
            raise ValueError("a replay may start only from a state before the window")
        known_bounds = start_from.bounds
    reviewer = _Reviewer(index, account_id, action, resource)
    timeline = _Timeline()
    bounds = [bound for bound in known_bounds if start < bound < end]
    heapq.heapify(bounds)
    stream = iter(events)
    pending = next(stream, None)
    replayed = 0

    def next_ledger_time() -> datetime | None:
        if pending is None:
            return None
        return ledger_time_after(index.ledger_time, pending[1].timestamp)

    def apply_through(moment: datetime) -> bool:
        """Apply the events up to ``moment``; whether each was user-scoped."""
        nonlocal pending, replayed
        user_scoped = True
        while pending is not None:
            at_position, event = pending
            if ledger_time_after(index.ledger_time, event.timestamp) > moment:
                break
            index.apply(event, at_position)
            replayed += 1
            user_scoped = user_scoped and type(event).TOPIC in _USER_SCOPED
            for bound in time_bounds(event):
                if start < bound < end:
                    heapq.heappush(bounds, bound)
            pending = next(stream, None)
        return user_scoped

    at = start
    apply_through(at)
    timeline.observe(at, reviewer.changes(at, everyone=True))
    instants = 1
    while True:
        while bounds and bounds[0] <= at:
            heapq.heappop(bounds)
        next_bound = bounds[0] if bounds else None
        upcoming = [t for t in (next_ledger_time(), next_bound) if t is not None]
        if not upcoming or min(upcoming) >= end:
            break
        at = min(upcoming)
        user_scoped = apply_through(at)
        everyone = at == next_bound or not user_scoped
        timeline.observe(at, reviewer.changes(at, everyone=everyone))
        instants += 1
        if max_instants is not None and instants > max_instants:
            raise ReviewTooLarge(
                f"the window holds more than {max_instants:,} instants where an answer may "
                f"change (events, contract terms, dates in policies); review a shorter window"
            )
        if max_decisions is not None and reviewer.decisions > max_decisions:
            raise ReviewTooLarge(
                f"reviewing the window needs more than {max_decisions:,} decisions (every "
                f"principal is decided again after each role, trust, contract or account "
                f"change); review a shorter window"
            )
    closed = timeline.finish(end)
    items = tuple(
        ReviewItem(
            arn,
            "root" if user_id is None else "user",
            owner,
            user_id,
            tuple(closed[(arn, owner, user_id)]),
        )
        for arn, owner, user_id in sorted(closed, key=lambda k: (k[0], str(k[2] or "")))
    )
    return AccessReview(
        account_id,
        resource,
        action,
        start,
        end,
        position,
        items,
        replayed,
        instants,
        reviewer.decisions,
    )
