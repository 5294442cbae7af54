"""Resource-based policies through the ledger, live and as of any instant, on both stores.

RAM's rule (https://www.alibabacloud.com/help/en/ram/policy-evaluation-process; the KMS key
policy overview, https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies,
states it for a resource policy): inside the resource's account either the resource policy or
an identity policy allowing is enough; another account's principal needs both; an explicit
Deny in either wins. The temporal oracle (as in ``test_temporal_tags_oracle``) rebuilds a
``DecisionIndex`` from the events up to T and must answer as the temporal index does, at every
ledger time of a scripted history (a policy attached, replaced, deleted, attached again) and
one microsecond before each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import InvalidInput, NotFound
from mandate.domain.ledger.resource_policies import read_resource_policy
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind, Layer
from tests.integration.runtimes import running
from tests.integration.test_temporal_oracle import _instants, _log, _oracle, _summary

WAIT = 10.0
ACTOR = AuditContext(actor="mandate:admin", request_id="req-resource-policies")


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def _grant(a: str, principal: Any, effect: str = "Allow") -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": "oss:GetObject",
        "Resource": f"acs:oss:*:{a}:photos/*",
        "Principal": principal,
    }


def _set_up(runtime: Runtime) -> tuple[str, str]:
    """A owns the bucket; alice (A) has no policy; bob and eve (B) may read A's objects by
    their own policy, which alone reaches nothing in A."""
    ledger = runtime.ledger
    with acting_as(ACTOR):
        a = ledger.open_account("Acme").account_id
        b = ledger.open_account("OpsCo").account_id
        ledger.create_user(a, "alice", None)
        reads = _doc({"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{a}:*"})
        ledger.create_policy(b, "ReadAcme", reads)
        for name in ("bob", "eve"):
            ledger.create_user(b, name, None)
            last = ledger.attach_policy(b, "user", name, "Custom", "ReadAcme")
    assert runtime.follower.wait_for(last.position, WAIT)
    return a, b


def _write(runtime: Runtime, command: str, *args: Any) -> int:
    with acting_as(ACTOR):
        written = getattr(runtime.ledger, command)(*args)
    assert runtime.follower.wait_for(written.position, WAIT)
    return int(written.position)


def _live(runtime: Runtime, account: str, name: str, resource: str) -> Any:
    user = runtime.index.user_by_name(account, name)
    assert user is not None
    request = AccessRequest.make("oss:GetObject", resource)
    return runtime.index.decide(runtime.index.user_subject(user.id), request, memo_key=user.id)


def test_a_history_of_resource_policies_live_and_as_of_the_oracle(runtime: Runtime) -> None:
    a, b = _set_up(runtime)
    bucket = f"acs:oss:*:{a}:photos"
    cat = f"acs:oss:cn-hangzhou:{a}:photos/cat.jpg"
    other = f"acs:oss:cn-hangzhou:{a}:logs/x"

    # before any policy: alice holds nothing; bob's own Allow reaches nothing in A
    assert not _live(runtime, a, "alice", cat).allowed
    assert not _live(runtime, b, "bob", cat).allowed

    _write(
        runtime,
        "put_resource_policy",
        a,
        bucket,
        _doc(_grant(a, user_arn(a, "alice")), _grant(a, [user_arn(b, "bob")])),
    )
    alice = _live(runtime, a, "alice", cat)
    assert alice.allowed
    assert [m.layer for m in alice.decision.matched] == [Layer.RESOURCE]
    assert alice.decision.matched[0].version == "v1"
    bob = _live(runtime, b, "bob", cat)  # cross-account, no role: both policies allow
    assert bob.allowed
    assert bob.billed_account == a
    assert {m.layer for m in bob.decision.matched} == {Layer.IDENTITY, Layer.RESOURCE}
    assert not _live(runtime, b, "eve", cat).allowed  # not named
    assert not _live(runtime, a, "alice", other).allowed  # another bucket: not covered

    # replaced: account B named, eve denied by name (an explicit Deny wins)
    _write(
        runtime,
        "put_resource_policy",
        a,
        bucket,
        _doc(_grant(a, b), _grant(a, user_arn(b, "eve"), "Deny")),
    )
    assert _live(runtime, b, "bob", cat).allowed
    eve = _live(runtime, b, "eve", cat)
    assert eve.decision.kind is DecisionKind.EXPLICIT_DENY
    assert not _live(runtime, a, "alice", cat).allowed
    assert read_resource_policy(runtime.ledger, a, bucket).version == 2

    _write(runtime, "delete_resource_policy", a, bucket)
    assert not _live(runtime, b, "bob", cat).allowed
    with pytest.raises(NotFound):
        read_resource_policy(runtime.ledger, a, bucket)

    _write(runtime, "put_resource_policy", a, bucket, _doc(_grant(a, "*")))
    assert _live(runtime, a, "alice", cat).allowed
    assert _live(runtime, b, "eve", cat).allowed

    # as of every instant: the temporal index answers as the log replayed to then
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    compared, outcomes = 0, set()
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        for arn in (user_arn(a, "alice"), user_arn(b, "bob"), user_arn(b, "eve")):
            expected = oracle.principal_for_arn(arn)
            found, _reason = runtime.as_of.principal_for_arn(arn, at)
            assert (found is None) == (expected is None), f"{arn} at {at.isoformat()}"
            if found is None or expected is None:
                continue
            for resource in (cat, other, bucket):
                request = AccessRequest.make("oss:GetObject", resource, {"acs:currenttime": at})
                want = _summary(oracle.decide(expected[1], request, memo_key=expected[0]))
                got = _summary(runtime.as_of.decide(found, request))
                assert got == want, f"{arn} {resource} at {at.isoformat()}"
                outcomes.add(want[0])
                compared += 1
    assert compared > 100
    assert outcomes == {DecisionKind.ALLOW, DecisionKind.IMPLICIT_DENY, DecisionKind.EXPLICIT_DENY}


def test_refused_puts_and_deletes_write_nothing(runtime: Runtime) -> None:
    a, b = _set_up(runtime)
    bucket = f"acs:oss:*:{a}:photos"
    head = runtime.head()
    refusals = [
        (b, bucket, _doc(_grant(a, "*"))),  # another account's resource
        (a, bucket, _doc({**_grant(a, "*"), "Resource": f"acs:oss:*:{a}:logs/*"})),  # outside
        (a, bucket, _doc({k: v for k, v in _grant(a, "*").items() if k != "Principal"})),
        (a, f"acs:oss:*:{a}:*", _doc(_grant(a, "*"))),  # not a literal ARN
    ]
    for account, arn, document in refusals:
        with acting_as(ACTOR), pytest.raises(InvalidInput):
            runtime.ledger.put_resource_policy(account, arn, document)
    with acting_as(ACTOR), pytest.raises(NotFound):
        runtime.ledger.delete_resource_policy(a, bucket)
    with acting_as(ACTOR), pytest.raises(InvalidInput):
        runtime.ledger.delete_resource_policy(b, bucket)
    assert runtime.head() == head
