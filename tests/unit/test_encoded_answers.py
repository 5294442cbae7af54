"""The encodings of answers ``/v1/authorize`` keeps are bounded in bytes, like the memo.

Each kept encoding keeps its ``Answer`` alive, so unique resources must not grow them beyond
the budget; answers that are never memoised (context-dependent ones, through-role answers)
are new objects every time and are not kept at all.
"""

from __future__ import annotations

import gc
import tracemalloc

from mandate.api.presenters import answer_json
from mandate.api.routers import decision_encoding as router
from mandate.domain.policy import decisions
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind, decide
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    Decision,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
)

ACCOUNT = "1234567890123456"
_READER = parse_policy_document(
    '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}'
)


def _subject() -> Subject:
    source = PolicySource(Layer.IDENTITY, "Custom", "Reader", "v1", None)
    layer = PolicySet.of([compile_policy(_READER, source)], Layer.IDENTITY)
    return Subject(ACCOUNT, f"acs:ram::{ACCOUNT}:user/alice", SubjectKind.USER, identity=layer)


def _answer(subject: Subject, i: int) -> Answer:
    return decide(subject, AccessRequest.make("oss:GetObject", f"acs:oss:*:{ACCOUNT}:b/{i:08d}"))


def _encoded(answer: Answer) -> bytes:
    return router._encode_json(answer_json(answer))[:-1].encode()


def test_many_unique_answers_stay_within_the_byte_budget() -> None:
    budget = 256 * 1024
    encodings = router._Encodings(budget)
    subject = _subject()
    for i in range(20_000):
        answer = _answer(subject, i)
        encodings.keep(answer, _encoded(answer))
    assert 0 < encodings.filled <= budget
    assert len(encodings.entries) <= budget // router._ENCODED_ENTRY_BYTES
    assert encodings.filled >= len(encodings.entries) * router._ENCODED_ENTRY_BYTES


def test_the_estimate_is_not_below_what_the_encodings_really_hold() -> None:
    """Measured with tracemalloc: what emptying them frees (the answers they alone kept
    alive included) is at most their estimate."""
    encodings = router._Encodings(10**9)
    subject = _subject()
    _answer(subject, -1)
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(5_000):
            answer = _answer(subject, i)
            encodings.keep(answer, _encoded(answer))
        del answer
        decisions._account_of.cache_clear()  # resources are cached there, not here
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        estimated = encodings.filled
        encodings.entries.clear()
        gc.collect()
        freed = full - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert 0 < freed <= estimated


def test_only_answers_the_memo_could_hold_are_kept() -> None:
    subject = _subject()
    answer = _answer(subject, 1)
    before = len(router._encodings.entries)
    router._answer_prefix(answer, cache=False)
    assert id(answer) not in router._encodings.entries
    decision = answer.decision
    dependent = answer._replace(decision=Decision(decision.kind, decision.matched, True))
    router._answer_prefix(dependent)
    assert id(dependent) not in router._encodings.entries
    assert router._answer_prefix(answer) == _encoded(answer)
    assert router._encodings.entries[id(answer)] == (answer, _encoded(answer))
    assert len(router._encodings.entries) <= before + 1


def test_the_resource_account_cache_is_bounded_in_size_and_key_length() -> None:
    decisions._account_of.cache_clear()
    subject = _subject()
    long_resource = f"acs:oss:*:{ACCOUNT}:b/" + "x" * decisions.ACCOUNT_CACHE_MAX_CHARS
    answer = decide(subject, AccessRequest.make("oss:GetObject", long_resource))
    assert answer.allowed  # decided, its account parsed, but not cached
    assert decisions._account_of.cache_info().currsize == 0
    for i in range(decisions.ACCOUNT_CACHE_SIZE + 100):
        _answer(subject, i)
    info = decisions._account_of.cache_info()
    assert info.currsize == info.maxsize == decisions.ACCOUNT_CACHE_SIZE
    decisions._account_of.cache_clear()
