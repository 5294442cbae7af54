"""Access review: who could do an action on a resource of account A, when, and through what.

The replay and the report are here; the instants and intervals are in ``review_timeline``,
the candidates' decisions at one instant in ``review_decisions``.

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
  of one of A's entrustments — through A's roles (identity policies never reach another
  account's resources). A user of a closed account is no candidate: it cannot authenticate;
- through the resource policies covering the resource (``review_decisions``): a user one
  names, decided whole; every other principal one names as one item; and a role of another
  account one names by ARN as a way in like A's roles — the users its trust or contract
  admits, through it (chain ``[user, …, role, "resource-policy:<ARN>"]``).

"Could" is meant as ``POST /v1/authorize`` with ``principal`` means it: a principal's
policies, trust and delegations, not whether it holds an active AccessKey.

``conditional``: when the empty context does not allow, the same question is asked
*optimistically* (``evaluate``'s flag: a condition clause on a key the context leaves open
holds in an Allow and not in a Deny, a role's trust likewise); if that allows, the interval
is ``conditional: true`` — some request context (a source IP, MFA, secure transport, a
service key) would be allowed. ``acs:CurrentTime`` is always fixed, so a time-bounded
policy is never conditional, just bounded.

Cost: the replay applies every event up to the window's end once (O(N)). At each instant,
after events that only concern some users (``review_decisions.USER_SCOPED``: their policies,
groups, names, and name claims, which change nothing), only the users the index touched are
decided again and only changed answers reach the timeline; after any other event, or at a
time bound, every candidate is, each by one decision plus one per role of A. So
O(N + T + F·C·R) for T users touched over the window, F instants where everyone is re-decided,
C candidates and R roles of A: about 20 µs per principal re-decided (more the first time a
policy set is assembled). Before name claims counted as neutral and the per-instant work was
bounded by what changed, each user created re-decided every user (quadratic: 20 s at 5,000
events). It runs in the threadpool (see ``api.routers.access_review`` for measured figures).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.identity.secrets import SecretHasher
from mandate.projections.history.review_decisions import USER_SCOPED, ReplayIndex, Reviewer
from mandate.projections.history.review_timeline import ReviewInterval, Timeline, time_bounds
from mandate.projections.store.read_replica import LogSource

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


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One principal (a root, one user entity under one ARN, or another principal a resource
    policy names) and its intervals."""

    principal: str
    kind: str
    """``root`` or ``user``; for a principal only a resource policy names, ``any`` (``*``),
    ``root`` (an account), ``role``, ``session`` or ``user``."""
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
    as_written: bool = False,
) -> AccessReview:
    """Replay ``events`` (the log up to ``position``, in order) and review ``[start, end)``.

    Events whose ledger time is ``end`` or later cannot change an answer inside the window
    (ledger time is monotonic), so the replay stops at the first of them. ``start_from``:
    begin from that state (its ledger time at most ``start``), ``events`` being those after
    its position. Beyond ``max_instants`` instants or ``max_decisions`` principals decided,
    ``ReviewTooLarge`` is raised: a bound on the work one request may ask for.
    ``as_written``: for a caller who is not the platform admin, another account's principals
    the covering policies name are listed as written, not decided (``Reviewer.as_written``).
    """
    if start_from is None:
        index = ReplayIndex(hasher)
        known_bounds: Iterable[datetime] = ()
    else:
        index = start_from.index
        if index.ledger_time is not None and index.ledger_time > start:
            raise ValueError("a replay may start only from a state before the window")
        known_bounds = start_from.bounds
    reviewer = Reviewer(index, account_id, action, resource, as_written=as_written)
    timeline = Timeline()
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
            user_scoped = user_scoped and type(event).TOPIC in USER_SCOPED
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
            _kind(arn, user_id),
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


def _kind(arn: str, user_id: UUID | None) -> str:
    """An item's ``kind``: by its user id, else by the shape of the ARN a policy named."""
    if user_id is not None:
        return "user"
    if arn == "*":
        return "any"
    for marker, kind in ((":assumed-role/", "session"), (":role/", "role"), (":user/", "user")):
        if marker in arn:
            return kind
    return "root"
