"""Access reviews started from a snapshot answer exactly what a replay from position 0 does.

``ReviewSnapshots`` keeps one replay index per process and a snapshot of it every few events;
a review of ``[from, to)`` begins at the latest snapshot before ``from``. The history here has
what a snapshot must carry over: users and groups changing, a contract and a delegation with
terms ending inside the windows, and a policy whose ``acs:CurrentTime`` date ends it — the
events naming those bounds lie before the snapshot a later window starts from.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from mandate.domain.common.arns import user_arn
from mandate.projections.history.access_review import AccessReview, logged_events, review_access
from mandate.projections.history.review_snapshots import ReviewSnapshots
from tests.integration.test_access_review import GET, _delegate, _entrust, _times
from tests.integration.test_roles_sessions import ASSUME, World, allow, document, world

__all__ = ["world"]


def _history(world: World) -> tuple[str, datetime]:
    owner = world.account("Owner")
    trustee = world.account("Trustee")
    far = datetime.now(UTC) + timedelta(hours=1)
    entrustment_id, _ = _entrust(world, owner, trustee, ends_at=far + timedelta(minutes=30))
    for name in ("ike", "jo"):
        world.do("create_user", trustee, name, None)
        world.do("attach_policy", trustee, "user", name, "System", ASSUME)
    _delegate(world, trustee, entrustment_id, user_arn(trustee, "ike"))
    _delegate(world, trustee, entrustment_id, user_arn(trustee, "jo"), ends_at=far)
    resource = f"acs:oss:*:{owner}:bucket/x"
    until = {"DateLessThan": {"acs:CurrentTime": (far + timedelta(minutes=10)).isoformat()}}
    world.do(
        "create_policy", owner, "Temporary", document({**allow(GET, resource), "Condition": until})
    )
    world.do("create_group", owner, "readers")
    world.do("attach_policy", owner, "group", "readers", "System", "AliyunOSSReadOnlyAccess")
    for round_ in range(3):
        name = f"u{round_}"
        world.do("create_user", owner, name, None)
        world.do("attach_policy", owner, "user", name, "Custom", "Temporary")
        time.sleep(0.002)
        world.do("add_user_to_group", owner, "readers", name)
        time.sleep(0.002)
        if round_ != 1:
            world.do("detach_policy", owner, "user", name, "Custom", "Temporary")
    world.do("remove_user_from_group", owner, "readers", "u0")
    return owner, far + timedelta(hours=1)


def _as_tuples(review: AccessReview) -> list[tuple[object, ...]]:
    return [(i.principal, i.account_id, i.user_id, i.intervals) for i in review.items]


def test_reviews_from_snapshots_equal_reviews_from_position_zero(world: World) -> None:
    """Every window starting at an event of the history: the same items, interval for interval."""
    owner, end = _history(world)
    ledger, hasher, head = world.runtime.ledger, world.runtime.hasher, world.head()
    times = _times(world)
    snapshots = ReviewSnapshots(hasher, every=2, keep=3)
    started_later = 0
    for position in sorted(times):
        start = times[position]
        query = {
            "account_id": owner,
            "resource": f"acs:oss:*:{owner}:bucket/x",
            "action": GET,
            "start": start,
            "end": end,
            "position": head,
        }
        whole = review_access(logged_events(ledger, head), hasher, **query)  # type: ignore[arg-type]
        begin = snapshots.start_for(
            start, head, lambda after: logged_events(ledger, head, after=after)
        )
        after = 0 if begin is None else begin.index.position
        started_later += after > 0
        part = review_access(
            logged_events(ledger, head, after=after),
            hasher,
            start_from=begin,
            **query,  # type: ignore[arg-type]
        )
        assert _as_tuples(part) == _as_tuples(whole), position
        assert part.instants == whole.instants
        assert part.events <= whole.events
    assert started_later > len(times) // 2
    # At most ``keep`` snapshots, spaced further apart as the history grew.
    positions = snapshots.snapshot_positions
    assert 0 < len(positions) <= 3
    assert positions == sorted(positions)
    assert snapshots.position == head


def test_a_window_after_the_last_event_copies_the_replay_index(world: World) -> None:
    """Nothing happened since ``from``: the review replays no event at all."""
    owner, end = _history(world)
    ledger, hasher, head = world.runtime.ledger, world.runtime.hasher, world.head()
    snapshots = ReviewSnapshots(hasher)
    start = datetime.now(UTC)
    begin = snapshots.start_for(start, head, lambda after: logged_events(ledger, head, after=after))
    assert begin is not None
    assert begin.index.position == head
    review = review_access(
        logged_events(ledger, head, after=head),
        hasher,
        account_id=owner,
        resource=f"acs:oss:*:{owner}:bucket/x",
        action=GET,
        start=start,
        end=end,
        position=head,
        start_from=begin,
    )
    whole = review_access(
        logged_events(ledger, head),
        hasher,
        account_id=owner,
        resource=f"acs:oss:*:{owner}:bucket/x",
        action=GET,
        start=start,
        end=end,
        position=head,
    )
    assert review.events == 0
    assert _as_tuples(review) == _as_tuples(whole)
    assert len(review.items) >= 3  # the root, u1 (until its date), the entrusted users
