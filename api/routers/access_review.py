"""Access review: ``GET /v1/accounts/{a}/access-review?resource=&action=&from=&to=``.

Every principal of any account that could perform ``action`` on ``resource`` (a resource of
account ``a``) at some instant of the window ``[from, to)``, with the intervals in which it
could and the chain it would act through:

- ``a``'s root, while the account is open (chain ``[root]``);
- ``a``'s users, through their identity policies and groups (chain ``[user]``) or through a
  role of ``a`` they may assume (``[user, role]``);
- users of other accounts through a role of ``a``: an ordinary role whose trust names them
  (by ARN, account root or id) and on which their own policies allow ``sts:AssumeRole``
  (``[user, role]``), or the managed role of an entrustment ``a`` → their account, reached by
  a live delegation (``[user, delegation, entrustment, role]``);
- through the resource policies covering ``resource``, as live decisions combine them: a user
  of any open account one names, decided whole (its own policies must allow too across
  accounts; chain ``[user, "resource-policy:<ARN>"]``, appended to ``a``'s users' chains where
  the policy allows; to the admin only: anyone else sees another account's user as written,
  below), and each other principal one names that can exist — ``*``
  (``principal_type: "any"``), another account (its root, ``"root"``), a role or a session
  (``"role"``, ``"session"``) — as one item, chain ``[principal, "resource-policy:<ARN>"]``,
  ``conditional: true`` unless it is of ``a`` (its own account's policies must allow too, and
  its principals are not enumerated);
- through a role of another account that a covering policy's Allow names by ARN: each user
  who could assume it then (its trust, the user's ``sts:AssumeRole``, control policies; or a
  delegation for a managed role), the role's session decided with the resource policies
  (across accounts the role's own policies must allow too, a Deny naming the role wins):
  ``[user, role, "resource-policy:<ARN>"]`` (``[user, delegation, entrustment, role, …]``).
  A path through a role of ``a`` also ends with the policy when its Allow took part. Shown to
  the platform admin only: anyone else (a caller of ``a``) sees such a role as its own item
  (``principal_type`` ``role``, ``conditional``) and no interval through it, since which of
  that account's users its trust admits is not ``a``'s to learn (``a`` may name any role in
  its own policy; ``decision_access.through_other_role``). The admin's review computes them
  all; anyone else's does not try such a role (``Reviewer.as_written``), so a user's other
  path (her own conditional grant, say) is listed as it would be were the role not named,
  with no gap that would tell one exists. Likewise a user, role, session or root of another
  account that a covering policy names is listed to anyone but the admin exactly as the
  policy writes it (``conditional``, ``user_id`` null), whether or not it exists, its account
  is open or its own policies allow: the same answer for an existing and a missing principal
  apart from its name (its users still come through ``a``'s roles as above).

The answer is ``200``::

    {"account_id": "<a>", "resource": "...", "action": "oss:GetObject",
     "from": "<RFC 3339>", "to": "<RFC 3339>", "position": 4711, "evaluated_instants": 12,
     "items": [
       {"principal": "acs:ram::<b>:user/ravi.k", "principal_type": "user",
        "account_id": "<b>", "user_id": "<uuid>",
        "intervals": [{"from": "<RFC 3339>", "to": "<RFC 3339>", "conditional": false,
                       "chain": ["acs:ram::<b>:user/ravi.k", "acs:ram::<b>:delegation/…",
                                 "acs:ram::<a>:entrustment/…", "acs:ram::<a>:role/…"]}]}],
     "next_cursor": null}

- ``from`` is required and ``to`` defaults to now; both carry a zone and are not in the future,
  and ``from`` is before ``to``. The window, like every interval, is half-open; intervals are
  clipped to it and merged while the answer stays the same (allowed, conditional, chain).
  Times have microseconds: an interval ends exactly at the ledger time of the event that
  ended it (or at the contract's or the delegation's end).
- ``conditional: true`` — with no request context the principal would not be allowed, but a
  condition on a key the caller supplies (``acs:SourceIp``, ``acs:SecureTransport``,
  ``acs:MFAPresent``, ``acs:SourceVpc``, ``acs:UserAgent``, ``acs:Referer``,
  ``acs:RequestTag/<key>``, a tag an enforcement point vouches for, a service key) would let
  some context through. ``acs:CurrentTime`` is never free: a time-bounded policy shows as a
  bounded interval, not a conditional one; nor are a RAM user's or role's tags, which the
  ledger knows at each instant (a tag it lacks is lacking).
- Items are ordered by principal ARN; a user renamed, or a name deleted and taken again,
  appears once per (ARN, user) pair. ``position`` is the log position the answer is as of;
  ``next_cursor`` pages (``limit`` ≤ 1000, default 100) over the same position and window.
- "Could" is decided as ``POST /v1/authorize`` with ``principal`` decides: by policies, trust
  and delegations, whether or not the principal holds an active AccessKey.

Who may ask: the platform admin, ``a``'s root, or a principal of ``a`` allowed
``ram:ReviewAccess`` on the resource. A resource of another account is refused (403: a review
covers the account's own resources), a resource naming no account is 400, as are a missing
``resource`` or ``action``, a naive or future instant, and ``from`` not before ``to``.

Cost, and its bounds. The review replays the log into a decision index of its own (in the
threadpool; the live index is never touched), starting from the latest in-memory snapshot
whose ledger time is at most ``from`` (``projections.history.review_snapshots``: one every 1,000
events, at most 16, the spacing doubling beyond) and stopping at the first event at or after
``to``. An answer is computed at each instant where it may change (each event inside the
window, each contract or delegation term, each ``acs:CurrentTime`` date a policy names);
after an event that concerns only some users (their policies, groups, names; name claims
change nothing) only the users it touched are decided again, after any other (roles, trust,
contracts, accounts) and at a time bound every candidate is (about 20 µs per principal, more
when its policy set is assembled for the first time). One request may ask for at most
``MAX_INSTANTS`` instants and ``MAX_DECISIONS`` decisions (400 naming ``from`` beyond: review
a shorter window), and a process computes at most ``MAX_CONCURRENT_REVIEWS`` at once (503
with ``Retry-After`` beyond). ``tests/bench/access_review.py`` measures it at 10k and 100k
events. Each page replays again: an audit query, not a hot path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import weakref
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query

from mandate.api.abuse import spend_read_budget
from mandate.api.deps import (
    CallerDep,
    RuntimeDep,
    check_account_id,
    reach_replica_log,
)
from mandate.api.problem_responses import AUTHENTICATED, PROBLEM_RESPONSES
from mandate.api.problems import Busy, Forbidden
from mandate.api.reads import Limit, authorize_read
from mandate.api.routers.decision_access import through_other_role
from mandate.api.routers.history import check_instant
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import account_of_resource
from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.common.instants import EPOCH_REFUSED, LATEST
from mandate.domain.common.ledger_time import format_instant, from_micros, to_micros
from mandate.projections.history.access_review import (
    AccessReview,
    ReviewInterval,
    ReviewItem,
    ReviewTooLarge,
    logged_events,
    review_access,
)
from mandate.projections.history.review_snapshots import ReviewSnapshots

router = APIRouter(tags=["access review"], responses=PROBLEM_RESPONSES, dependencies=AUTHENTICATED)

_ACTION = re.compile(r"[^:\s]+:[^:\s]+")


def _query_tag(resource: str, action: str, start: datetime) -> str:
    text = f"{resource}\n{action.lower()}\n{to_micros(start)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_cursor(position: int, end: datetime, offset: int, tag: str) -> str:
    raw = json.dumps({"p": position, "to": to_micros(end), "o": offset, "q": tag})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, tag: str) -> tuple[int, datetime, int]:
    invalid = InvalidInput(FieldError("cursor", "is not a cursor this API issued"))
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        position, end, offset, found = value["p"], value["to"], value["o"], value["q"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise invalid from None
    if not all(isinstance(v, int) and v >= 0 for v in (position, end, offset)):
        raise invalid
    if found != tag:
        raise InvalidInput(FieldError("cursor", "was issued for another resource, action or from"))
    if end >= to_micros(LATEST):
        raise invalid
    return position, from_micros(end), offset


def _interval_json(interval: ReviewInterval) -> dict[str, Any]:
    return {
        "from": format_instant(interval.start),
        "to": format_instant(interval.end),
        "conditional": interval.conditional,
        "chain": list(interval.chain),
    }


def _shown(items: tuple[ReviewItem, ...], account_id: str) -> list[ReviewItem]:
    """The items a caller who is not the admin sees: no interval through a role of another
    account (``through_other_role``), whose own item stands for it; an item left with none
    is not listed."""
    shown = []
    for item in items:
        kept = tuple(i for i in item.intervals if not through_other_role(i.chain, account_id))
        if len(kept) == len(item.intervals):
            shown.append(item)
        elif kept:
            shown.append(replace(item, intervals=kept))
    return shown


MAX_CONCURRENT_REVIEWS = 2
"""Reviews computed at once per process (each holds a core); one more is 503 + Retry-After."""
MAX_INSTANTS = 100_000
"""Instants one review may decide at (about 20 to 90 µs each): beyond, 400 naming ``from``."""
MAX_DECISIONS = 200_000
"""Principals one review may decide over all its instants (20 to 200 µs each): beyond, 400."""


class _Reviews:
    """A runtime's access-review state: its replay snapshots and its concurrency slots."""

    def __init__(self, runtime: Runtime) -> None:
        self.snapshots = ReviewSnapshots(runtime.hasher)
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT_REVIEWS)


_reviews: weakref.WeakKeyDictionary[Runtime, _Reviews] = weakref.WeakKeyDictionary()
_reviews_lock = threading.Lock()


def _reviews_of(runtime: Runtime) -> _Reviews:
    with _reviews_lock:
        reviews = _reviews.get(runtime)
        if reviews is None:
            reviews = _reviews[runtime] = _Reviews(runtime)
        return reviews


def _run(
    runtime: Runtime,
    account_id: str,
    resource: str,
    action: str,
    start: datetime,
    end: datetime,
    position: int | None,
    as_written: bool = False,
) -> AccessReview:
    """The review (in the threadpool): the head seen now, unless a cursor pins one.

    It starts from the latest snapshot before ``start`` (``ReviewSnapshots``), not from
    position 0, and stops beyond ``MAX_INSTANTS`` or ``MAX_DECISIONS``.
    """
    up_to = runtime.head() if position is None else position
    ledger = runtime.log_reads  # the read replica's log when there is one
    begin = _reviews_of(runtime).snapshots.start_for(
        start, up_to, lambda after: logged_events(ledger, up_to, after=after)
    )
    after = 0 if begin is None else begin.index.position
    try:
        return review_access(
            logged_events(ledger, up_to, after=after),
            runtime.hasher,
            account_id=account_id,
            resource=resource,
            action=action,
            start=start,
            end=end,
            position=up_to,
            start_from=begin,
            max_instants=MAX_INSTANTS,
            max_decisions=MAX_DECISIONS,
            as_written=as_written,
        )
    except ReviewTooLarge as too_large:
        raise InvalidInput(FieldError("from", str(too_large))) from None


@router.get("/v1/accounts/{account_id}/access-review")
async def access_review(
    account_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    resource: Annotated[str, Query(min_length=1, description="a resource ARN of the account")],
    action: Annotated[str, Query(min_length=1, description="``<service>:<Action>``")],
    time_from: Annotated[
        datetime, Query(alias="from", description="RFC 3339, with a zone"), EPOCH_REFUSED
    ],
    time_to: Annotated[
        datetime | None,
        Query(alias="to", description="RFC 3339, with a zone; default: now"),
        EPOCH_REFUSED,
    ] = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Who could do ``action`` on ``resource`` during ``[from, to)``, when, and through what."""
    check_account_id(account_id)
    start = check_instant(time_from, "from")
    tag = _query_tag(resource, action, start)
    position: int | None = None
    offset = 0
    end = check_instant(time_to, "to") if time_to is not None else None
    if cursor is not None:
        position, pinned_end, offset = _decode_cursor(cursor, tag)
        if end is not None and end != pinned_end:
            raise InvalidInput(FieldError("to", "differs from the cursor's window"))
        end = pinned_end
    if end is None:
        end = datetime.now(UTC)
    if start >= end:
        raise InvalidInput(FieldError("from", "must be before to"))
    if not _ACTION.fullmatch(action):
        raise InvalidInput(FieldError("action", "must be <service>:<Action>"))
    owner = account_of_resource(resource)
    if owner is None:
        raise InvalidInput(
            FieldError(
                "resource",
                "names no account: expected acs:<service>:<region>:<account_id>:<relative_id>",
            )
        )
    if owner != account_id:
        raise Forbidden(
            f"an access review of account {account_id} covers its own resources; "
            f"{resource} belongs to account {owner}"
        )
    authorize_read(runtime, caller, account_id, "ram:ReviewAccess", resource)
    spend_read_budget(runtime, caller.arn, "access review")
    slots = _reviews_of(runtime).slots
    if not slots.acquire(blocking=False):
        raise Busy(
            f"{MAX_CONCURRENT_REVIEWS} access reviews are being computed in this process; "
            "retry shortly",
            retry_after=2,
        )
    try:
        # From a read replica: its log must hold the head seen now (or the cursor's).
        position = await reach_replica_log(runtime, position) or position
        review = await anyio.to_thread.run_sync(
            partial(
                _run,
                runtime,
                account_id,
                resource,
                action,
                start,
                end,
                position,
                as_written=not caller.is_admin,
            )
        )
    finally:
        slots.release()
    items = review.items if caller.is_admin else _shown(review.items, account_id)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return {
        "account_id": account_id,
        "resource": resource,
        "action": action,
        "from": format_instant(start),
        "to": format_instant(end),
        "position": review.position,
        "evaluated_instants": review.instants,
        "items": [
            {
                "principal": item.principal,
                "principal_type": item.kind,
                "account_id": item.account_id,
                "user_id": str(item.user_id) if item.user_id is not None else None,
                "intervals": [_interval_json(i) for i in item.intervals],
            }
            for item in page
        ],
        "next_cursor": (
            _encode_cursor(review.position, end, offset + limit, tag) if more else None
        ),
    }
