"""Access review on each store (docs/design.md §5): who could act on A's resource, when, how.

Histories are written through the real ``Ledger`` (as the API writes them); the review replays
the store's log. Interval bounds are compared with the ledger times of the events that opened
and closed them, recomputed here from the raw log as docs/design.md §4 defines them. A scripted
history is also checked instant by instant against the live rules on an index replayed up to
each instant (the oracle of ``test_temporal_oracle``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.api.deps import Caller
from mandate.api.problems import Forbidden
from mandate.api.routers.access_review import access_review
from mandate.api.runtime import Runtime
from mandate.domain.common.arns import group_arn, role_arn, root_arn, user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import InvalidInput
from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.history.access_review import AccessReview, logged_events, review_access
from tests.integration.runtimes import started_runtime
from tests.integration.test_index_cache_coherence import ACTOR, _apply, _requests, _set_up, _steps
from tests.integration.test_roles_sessions import ASSUME, World, allow, document, trust, world

__all__ = ["world"]  # the fixture, shared with test_roles_sessions

GET = "oss:GetObject"
Interval = tuple[datetime, datetime, bool, tuple[str, ...]]


def _times(world: World) -> dict[int, datetime]:
    """The ledger time of every position (max of its timestamp and the previous one's)."""
    times: dict[int, datetime] = {}
    moment: datetime | None = None
    for position, event in logged_events(world.runtime.ledger, world.head()):
        moment = ledger_time_after(moment, event.timestamp)
        times[position] = moment
    return times


def _review(
    world: World,
    account: str,
    start: datetime,
    end: datetime | None = None,
    *,
    resource: str | None = None,
    action: str = GET,
) -> AccessReview:
    head = world.head()
    return review_access(
        logged_events(world.runtime.ledger, head),
        world.runtime.hasher,
        account_id=account,
        resource=resource or f"acs:oss:*:{account}:bucket/x",
        action=action,
        start=start,
        end=end or datetime.now(UTC) + timedelta(seconds=1),
        position=head,
    )


def _intervals(review: AccessReview) -> dict[str, list[Interval]]:
    return {
        item.principal: [(i.start, i.end, i.conditional, i.chain) for i in item.intervals]
        for item in review.items
    }


def _opened(world: World, name: str = "Acme") -> tuple[str, int]:
    account = world.account(name)
    return account, world.head()


def _pause() -> None:
    time.sleep(0.005)


def test_a_user_attached_then_detached_has_one_closed_interval(world: World) -> None:
    account, opened = _opened(world)
    world.do("create_user", account, "alice", None)
    attached = world.do(
        "attach_policy", account, "user", "alice", "System", "AliyunOSSFullAccess"
    ).position
    _pause()
    detached = world.do(
        "detach_policy", account, "user", "alice", "System", "AliyunOSSFullAccess"
    ).position
    times = _times(world)
    end = datetime.now(UTC) + timedelta(seconds=1)
    review = _review(world, account, times[opened] - timedelta(seconds=1), end)
    alice, root = user_arn(account, "alice"), root_arn(account)
    assert _intervals(review) == {
        alice: [(times[attached], times[detached], False, (alice,))],
        root: [(times[opened], end, False, (root,))],
    }
    (item,) = [i for i in review.items if i.principal == alice]
    assert (item.kind, item.account_id, item.user_id) == (
        "user",
        account,
        world.index.user_by_name(account, "alice").id,  # type: ignore[union-attr]
    )
    assert review.position == world.head()


def test_a_group_membership_opens_and_closes_the_interval(world: World) -> None:
    account, opened = _opened(world)
    world.do("create_user", account, "bob", None)
    world.do("create_group", account, "readers")
    world.do("attach_policy", account, "group", "readers", "System", "AliyunOSSReadOnlyAccess")
    added = world.do("add_user_to_group", account, "readers", "bob").position
    _pause()
    removed = world.do("remove_user_from_group", account, "readers", "bob").position
    times = _times(world)
    review = _review(world, account, times[opened])
    bob = user_arn(account, "bob")
    assert _intervals(review)[bob] == [(times[added], times[removed], False, (bob,))]
    # an action the group's policy does not allow: only the root
    writes = _review(world, account, times[opened], action="oss:PutObject")
    assert [i.principal for i in writes.items] == [root_arn(account)]


def test_a_user_of_another_account_through_a_role_trusting_its_account(world: World) -> None:
    owner, opened = _opened(world, "Owner")
    other = world.account("Other")
    world.role(owner, "reader", trust(other), system=("AliyunOSSReadOnlyAccess",))
    world.user(other, "carol")  # no sts:AssumeRole of its own: no path
    world.do("create_user", other, "dave", None)
    may_assume = world.do("attach_policy", other, "user", "dave", "System", ASSUME).position
    stranger = world.account("Stranger")
    world.user(stranger, "eve", ASSUME)  # its account is not trusted
    times = _times(world)
    review = _review(world, owner, times[opened])
    dave, role = user_arn(other, "dave"), role_arn(owner, "reader")
    found = _intervals(review)
    assert set(found) == {root_arn(owner), dave}
    ((start, _, conditional, chain),) = found[dave]
    assert (start, conditional, chain) == (times[may_assume], False, (dave, role))
    (item,) = [i for i in review.items if i.principal == dave]
    assert item.account_id == other


def test_an_ip_conditioned_policy_is_conditional(world: World) -> None:
    account, opened = _opened(world)
    resource = f"acs:oss:*:{account}:bucket/x"
    in_office = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    world.do(
        "create_policy",
        account,
        "OfficeOnly",
        document({**allow(GET, resource), "Condition": in_office}),
    )
    guard = document(
        allow(GET, resource),
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
        },
    )
    world.do("create_policy", account, "Guarded", guard)
    for name, policy in (("frank", "OfficeOnly"), ("gina", "Guarded")):
        world.do("create_user", account, name, None)
        world.do("attach_policy", account, "user", name, "Custom", policy)
    times = _times(world)
    found = _intervals(_review(world, account, times[opened]))
    for name in ("frank", "gina"):
        arn = user_arn(account, name)
        ((_, _, conditional, chain),) = found[arn]
        assert (conditional, chain) == (True, (arn,)), name
    ((_, _, root_conditional, _),) = found[root_arn(account)]
    assert root_conditional is False


def test_a_condition_in_a_roles_trust_is_conditional_and_time_never_is(world: World) -> None:
    owner, opened = _opened(world, "Owner")
    other = world.account("Other")
    office = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    world.role(owner, "office", trust(other, condition=office), system=("AliyunOSSFullAccess",))
    world.user(other, "pat", ASSUME)
    resource = f"acs:oss:*:{owner}:bucket/x"
    later = {
        "IpAddress": {"acs:SourceIp": "10.0.0.0/8"},
        "DateGreaterThan": {"acs:CurrentTime": "2999-01-01T00:00:00Z"},
    }
    world.do(
        "create_policy", owner, "Later", document({**allow(GET, resource), "Condition": later})
    )
    world.do("create_user", owner, "quinn", None)
    world.do("attach_policy", owner, "user", "quinn", "Custom", "Later")
    found = _intervals(_review(world, owner, _times(world)[opened]))
    pat = user_arn(other, "pat")
    assert set(found) == {root_arn(owner), pat}  # quinn: no context moves the clock
    ((_, _, conditional, chain),) = found[pat]
    assert (conditional, chain) == (True, (pat, role_arn(owner, "office")))


def test_the_window_clips_intervals(world: World) -> None:
    account, _ = _opened(world)
    world.do("create_user", account, "hal", None)
    attached = world.do(
        "attach_policy", account, "user", "hal", "System", "AliyunOSSFullAccess"
    ).position
    _pause()
    world.do("create_user", account, "filler", None)  # an event inside the window, no change
    _pause()
    detached = world.do(
        "detach_policy", account, "user", "hal", "System", "AliyunOSSFullAccess"
    ).position
    times = _times(world)
    start = times[attached] + (times[detached] - times[attached]) / 4
    end = times[detached] - (times[detached] - times[attached]) / 4
    review = _review(world, account, start, end)
    hal = user_arn(account, "hal")
    assert _intervals(review)[hal] == [(start, end, False, (hal,))]  # merged across the filler
    assert (review.start, review.end) == (start, end)
    # a window after the detach: hal is gone
    later = _review(world, account, times[detached])
    assert hal not in _intervals(later)


def test_a_resource_of_another_account_is_refused(world: World) -> None:
    """Refused before anything is replayed: 403 naming the owner, 400 when it names none."""
    account, key = world.root_key("Owner")
    other = world.account("Other")
    credential = world.index.authenticate(key.access_key_id, key.access_key_secret)
    caller = Caller(credential.arn, account, "root", credential, None, None, False)
    since = datetime.now(UTC) - timedelta(minutes=1)

    def ask(resource: str) -> dict[str, Any]:
        call = access_review(
            account, caller, world.runtime, resource=resource, action=GET, time_from=since
        )
        return asyncio.run(call)

    with pytest.raises(Forbidden, match=f"belongs to account {other}"):
        ask(f"acs:oss:*:{other}:bucket/x")
    with pytest.raises(InvalidInput) as no_account:
        ask("acs:oss:*:*:bucket/x")
    assert [e.field for e in no_account.value.errors] == ["resource"]
    answer = ask(f"acs:oss:*:{account}:bucket/x")
    assert [i["principal"] for i in answer["items"]] == [root_arn(account)]
    assert answer["position"] == world.head()


def _entrust(world: World, owner: str, trustee: str, **terms: Any) -> tuple[Any, str]:
    scope = document(allow("oss:*", f"acs:oss:*:{owner}:*"))
    ledger = world.runtime.ledger
    granted = world.runtime.write(
        AuditContext(actor=root_arn(owner)),
        lambda: ledger.grant_entrustment(
            owner,
            trustee_account_id=trustee,
            scope=scope,
            contract_ref=f"C-{uuid4().hex[:6]}",
            **terms,
        ),
    )
    return granted.entrustment_id, role_arn(owner, granted.role_name)


def _delegate(world: World, trustee: str, entrustment_id: Any, grantee: str, **terms: Any) -> Any:
    delegation_id = uuid4()
    world.do(
        "grant_delegation",
        trustee,
        delegation_id=delegation_id,
        entrustment_id=entrustment_id,
        grantee=grantee,
        scope=document(allow(GET, "*")),
        **terms,
    )
    return delegation_id


def test_an_entrusted_user_until_the_contract_is_revoked(world: World) -> None:
    owner, opened = _opened(world, "Owner")
    trustee = world.account("Trustee")
    entrustment_id, role = _entrust(world, owner, trustee)
    world.do("create_user", trustee, "erin", None)
    world.do("attach_policy", trustee, "user", "erin", "System", ASSUME)
    world.user(trustee, "fred", ASSUME)  # allowed to assume roles, but not delegated
    erin = user_arn(trustee, "erin")
    delegated_at = world.head() + 1
    delegation_id = _delegate(world, trustee, entrustment_id, erin)
    assert world.head() == delegated_at
    _pause()
    revoke = AuditContext(actor=root_arn(owner), reason="contract terminated")
    revoked = world.runtime.write(
        revoke, lambda: world.runtime.ledger.revoke_entrustment(owner, entrustment_id)
    ).position
    times = _times(world)
    found = _intervals(_review(world, owner, times[opened]))
    assert set(found) == {root_arn(owner), erin}
    chain = (
        erin,
        f"acs:ram::{trustee}:delegation/{delegation_id}",
        f"acs:ram::{owner}:entrustment/{entrustment_id}",
        role,
    )
    assert found[erin] == [(times[delegated_at], times[revoked], False, chain)]


def test_terms_and_dates_end_intervals_without_an_event(world: World) -> None:
    """A contract's ends_at, a delegation's ends_at and a DateLessThan on acs:CurrentTime."""
    owner, opened = _opened(world, "Owner")
    trustee = world.account("Trustee")
    now = datetime.now(UTC)
    contract_end = now + timedelta(milliseconds=1800)
    delegation_end = now + timedelta(milliseconds=1200)
    date_end = now + timedelta(milliseconds=1500)
    entrustment_id, role = _entrust(world, owner, trustee, ends_at=contract_end)
    for name in ("ike", "jo"):
        world.do("create_user", trustee, name, None)
        world.do("attach_policy", trustee, "user", name, "System", ASSUME)
    ike, jo = user_arn(trustee, "ike"), user_arn(trustee, "jo")
    _delegate(world, trustee, entrustment_id, ike)
    _delegate(world, trustee, entrustment_id, jo, ends_at=delegation_end)
    resource = f"acs:oss:*:{owner}:bucket/x"
    until = {"DateLessThan": {"acs:CurrentTime": date_end.isoformat()}}
    world.do(
        "create_policy", owner, "Temporary", document({**allow(GET, resource), "Condition": until})
    )
    world.do("create_user", owner, "kim", None)
    world.do("attach_policy", owner, "user", "kim", "Custom", "Temporary")
    time.sleep(max(0.0, (contract_end - datetime.now(UTC)).total_seconds()) + 0.05)
    found = _intervals(_review(world, owner, _times(world)[opened]))
    kim = user_arn(owner, "kim")
    assert [(end, conditional) for _, end, conditional, _ in found[kim]] == [(date_end, False)]
    assert [end for _, end, _, _ in found[jo]] == [delegation_end]
    assert [end for _, end, _, _ in found[ike]] == [contract_end]
    assert [chain[-1] for _, _, _, chain in found[ike]] == [role]


def test_the_review_agrees_with_the_live_rules_at_every_instant(world: World) -> None:
    """Intervals against an index replayed up to each instant and asked there (the oracle)."""
    owner, opened = _opened(world, "Owner")
    other = world.account("Other")
    world.role(owner, "reader", trust(user_arn(other, "lee")), system=("AliyunOSSReadOnlyAccess",))
    world.do("create_user", other, "lee", None)
    world.do("attach_policy", other, "user", "lee", "System", ASSUME)
    world.do("create_user", owner, "mo", None)
    world.do("create_group", owner, "ops")
    world.do("attach_policy", owner, "group", "ops", "System", "AliyunOSSFullAccess")
    world.do("add_user_to_group", owner, "ops", "mo")
    world.do("attach_policy", owner, "user", "mo", "System", "AliyunOSSFullAccess")
    world.do("remove_user_from_group", owner, "ops", "mo")
    world.do("detach_policy", owner, "role", "reader", "System", "AliyunOSSReadOnlyAccess")
    world.do("attach_policy", owner, "role", "reader", "System", "AliyunOSSFullAccess")
    world.do("delete_user", owner, "mo", detach=True)
    world.do("create_user", owner, "mo", None)
    world.do("attach_policy", owner, "user", "mo", "System", "AliyunOSSReadOnlyAccess")
    world.do("update_user", owner, "mo", new_user_name="mo2", new_display_name=None)
    world.do("create_user", other, "nia", None)
    world.do("attach_policy", other, "user", "nia", "System", ASSUME)
    world.do("update_role", owner, "reader", assume_role_policy_document=trust(other))
    world.do("delete_user", other, "lee", detach=True)
    trustee = world.account("Trustee")
    entrustment_id, _ = _entrust(world, owner, trustee)
    world.do("create_user", trustee, "oz", None)
    world.do("attach_policy", trustee, "user", "oz", "System", ASSUME)
    world.do("create_group", trustee, "crew")
    _delegate(world, trustee, entrustment_id, group_arn(trustee, "crew"))
    world.do("add_user_to_group", trustee, "crew", "oz")
    direct = _delegate(world, trustee, entrustment_id, user_arn(trustee, "oz"))
    world.do("update_role", owner, "reader", assume_role_policy_document=trust(owner))
    world.do("remove_user_from_group", trustee, "crew", "oz")
    world.do("revoke_delegation", trustee, direct)
    world.do("close_account", owner)
    resource = f"acs:oss:*:{owner}:bucket/x"
    for action in (GET, "oss:PutObject"):
        assert (
            _agrees_with_the_oracle(world.runtime, owner, resource, action, _times(world)[opened])
            > 20
        )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=4, max_value=14))
def test_generated_histories_agree_with_the_live_rules(data: st.DataObject, length: int) -> None:
    """Generated histories of users, groups, policies and versions (some held by a role that
    a user of another account may assume): the review equals the oracle at every instant."""
    with tempfile.TemporaryDirectory(prefix="mandate-review-") as directory:
        runtime = started_runtime(f"sqlite:///{Path(directory) / 'mandate.db'}")
        try:
            account, documents = _set_up(runtime)
            start = datetime.now(UTC)
            with acting_as(ACTOR):
                ledger = runtime.ledger
                other = ledger.open_account("Other").account_id
                ledger.create_user(other, "lee", None)
                ledger.attach_policy(other, "user", "lee", "System", ASSUME)
                ledger.create_role(account, "reader", trust(other))
                position = ledger.attach_policy(account, "role", "reader", "Custom", "p1").position
            assert runtime.follower.wait_for(position, 5.0)
            for number in range(length):
                step = data.draw(_steps(runtime.index, account), label=f"step {number}")
                _apply(runtime, account, documents, step, lambda: None)
                if data.draw(st.booleans(), label=f"trust flip {number}"):
                    trusted = runtime.index.role_by_name(account, "reader")
                    assert trusted is not None
                    flipped = (
                        trust(user_arn(other, "nobody"))
                        if other in trusted.trust_policy
                        else trust(other)
                    )
                    with acting_as(ACTOR):
                        position = ledger.update_role(
                            account, "reader", assume_role_policy_document=flipped
                        ).position
                    assert runtime.follower.wait_for(position, 5.0)
            for request in _requests(account)[:6]:
                _agrees_with_the_oracle(runtime, account, request.resource, request.action, start)
        finally:
            runtime.stop()


def _agrees_with_the_oracle(
    runtime: Runtime, owner: str, resource: str, action: str, start: datetime
) -> int:
    """The unconditional intervals hold exactly where the live rules allow; the conditional
    ones only where they do not. Returns how many instants were compared."""
    head = int(runtime.ledger.recorder.max_notification_id() or 0)
    events = list(logged_events(runtime.ledger, head))
    times: list[datetime] = []
    moment: datetime | None = None
    for _, event in events:
        moment = ledger_time_after(moment, event.timestamp)
        times.append(moment)
    end = times[-1] + timedelta(seconds=1)
    review = review_access(
        events,
        runtime.hasher,
        account_id=owner,
        resource=resource,
        action=action,
        start=start,
        end=end,
        position=head,
    )
    instants = sorted({t for moment in times for t in (moment - timedelta(microseconds=1), moment)})
    checked = 0
    for at in (t for t in instants if start <= t < end):
        expected = _oracle(runtime, events, owner, resource, action, at)
        held = [
            (item.principal, i)
            for item in review.items
            for i in item.intervals
            if i.start <= at < i.end
        ]
        where = f"{action} at {at.isoformat()}"
        assert {p: i.chain for p, i in held if not i.conditional} == expected, where
        assert not {p for p, i in held if i.conditional} & set(expected), where
        checked += 1
    return checked


def _oracle(
    runtime: Runtime,
    events: list[tuple[int, Any]],
    owner: str,
    resource: str,
    action: str,
    at: datetime,
) -> dict[str, tuple[str, ...]]:
    index = DecisionIndex(runtime.hasher)
    moment: datetime | None = None
    for position, event in events:
        moment = ledger_time_after(moment, event.timestamp)
        if moment > at:
            break
        index.apply(event, position)
    request = AccessRequest.make(action, resource, {"acs:currenttime": at})
    users = [user_arn(u.account_id, u.user_name) for u in index.users.values()]
    allowed: dict[str, tuple[str, ...]] = {}
    for arn in [root_arn(owner), *users]:
        found = index.principal_for_arn(arn)
        if found is None:
            continue
        answer = index.decide(found[1], request, memo_key=found[0])
        if not answer.allowed:
            answer = index.answer_through_roles(found[1], request) or answer
        if answer.allowed:
            allowed[arn] = answer.chain
    return allowed
