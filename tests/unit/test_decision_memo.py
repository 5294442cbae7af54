"""The decision memo is bounded in bytes: unique actions and resources cannot grow it for ever.

Decided for an account root, which needs no other state in the index; every answer is
context-independent, so each request is memoised unless its key is too long.
"""

from __future__ import annotations

import gc
import tracemalloc

from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.policy import decisions
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.memo import MEMO_MAX_KEY_CHARS, _memo_cost

ACCOUNT = "1234567890123456"


def _index(memo_bytes: int) -> DecisionIndex:
    return DecisionIndex(
        SecretHasher("k1", {"k1": b"memo-test-key-" + b"k" * 32}), memo_bytes=memo_bytes
    )


def _resource(i: int, length: int = 80) -> str:
    stem = f"acs:oss:cn-hangzhou:{ACCOUNT}:bucket/{i:08d}/"
    return stem + "x" * max(0, length - len(stem))


def test_many_unique_requests_stay_within_the_byte_budget() -> None:
    budget = 256 * 1024
    index = _index(budget)
    subject = index.root_subject(ACCOUNT)
    for i in range(20_000):
        index.decide(subject, AccessRequest.make(f"oss:Get{i}", _resource(i)), memo_key="root")
    entries, estimated = index.memo_size
    assert 0 < estimated <= budget
    assert entries <= budget // 300  # far fewer than were asked
    # the latest answers are still served from the memo
    request = AccessRequest.make("oss:Get19999", _resource(19_999))
    first = index.decide(subject, request, memo_key="root")
    assert index.decide(subject, request, memo_key="root") is first


def test_the_estimate_is_not_below_what_the_memo_really_holds() -> None:
    """Measured with tracemalloc: what emptying the memo frees is at most its estimate."""
    index = _index(10**9)
    subject = index.root_subject(ACCOUNT)
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(5_000):
            index.decide(
                subject, AccessRequest.make("oss:GetObject", _resource(i)), memo_key="root"
            )
        decisions._account_of.cache_clear()  # resources are also cached there, not in the memo
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        _, estimated = index.memo_size
        index.forget_cached_decisions()
        gc.collect()
        freed = full - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert index.memo_size == (0, 0)
    assert freed <= estimated


def test_a_long_request_is_decided_but_not_memoised() -> None:
    index = _index(10**6)
    subject = index.root_subject(ACCOUNT)
    request = AccessRequest.make("oss:GetObject", _resource(1, MEMO_MAX_KEY_CHARS))
    first = index.decide(subject, request, memo_key="root")
    second = index.decide(subject, request, memo_key="root")
    assert first == second
    assert first.allowed
    assert second is not first
    assert index.memo_size == (0, 0)


def test_an_answer_moved_to_the_older_half_is_still_a_hit() -> None:
    cost = _memo_cost("oss:getobject", _resource(0))
    index = _index(2 * (2 * cost + 1))  # two answers per half: the third one swaps them
    subject = index.root_subject(ACCOUNT)
    request = AccessRequest.make("oss:GetObject", _resource(0))
    first = index.decide(subject, request, memo_key="root")
    index.decide(subject, AccessRequest.make("oss:GetObject", _resource(1)), memo_key="root")
    index.decide(subject, AccessRequest.make("oss:GetObject", _resource(2)), memo_key="root")
    assert request_key(request) in index._memo_old
    assert index.decide(subject, request, memo_key="root") is first
    assert request_key(request) in index._memo  # moved back


def request_key(request: AccessRequest) -> tuple[str, int, str, str]:
    return ("root", 0, request.action_key, request.resource)


def test_a_zero_budget_memoises_nothing() -> None:
    index = _index(0)
    subject = index.root_subject(ACCOUNT)
    request = AccessRequest.make("oss:GetObject", _resource(0))
    assert index.decide(subject, request, memo_key="root").allowed
    assert index.memo_size == (0, 0)
