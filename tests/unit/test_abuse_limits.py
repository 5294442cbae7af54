"""The GCRA buckets behind the abuse limits (api/abuse.py), on a clock the test moves."""

from __future__ import annotations

import base64

import pytest

from mandate.api.abuse import AuthThrottle, GcraLimiter, Throttled, claimed_key_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_one_per_interval() -> None:
    clock = Clock()
    limiter = GcraLimiter(rate=1.0, burst=3, max_keys=10, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)  # the wait until one more token
    assert limiter.wait("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.now += 1.0
    assert limiter.wait("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    clock.now += 10.0  # idle: full again, never beyond the burst
    assert [limiter.take("a") for _ in range(4)][-1] == pytest.approx(1.0)


def test_memory_is_bounded_and_eviction_only_forgives() -> None:
    clock = Clock()
    limiter = GcraLimiter(rate=0.001, burst=1, max_keys=3, clock=clock)
    for key in "abcd":
        assert limiter.take(key) == 0.0
    assert len(limiter) == 3
    assert limiter.take("a") == 0.0  # "a" was the least recently used: forgotten, full
    assert limiter.take("d") > 0


def test_a_key_over_its_limit_refuses_failures_only_and_an_address_everything() -> None:
    clock = Clock()
    throttle = AuthThrottle(
        GcraLimiter(rate=0.001, burst=4, max_keys=10, clock=clock),
        GcraLimiter(rate=0.001, burst=2, max_keys=10, clock=clock),
    )
    assert throttle.failed("10.0.0.1", "LTAIvictim") is None
    assert throttle.failed("10.0.0.2", "LTAIvictim") is None
    refused = throttle.failed("10.0.0.3", "LTAIvictim")
    assert isinstance(refused, Throttled)
    assert refused.reason == "access_key"
    assert refused.retry_after >= 1
    throttle.admit("10.0.0.9")  # the victim's own address is admitted: no lock-out by key
    for _ in range(3):
        throttle.failed("10.0.0.1", None)
    with pytest.raises(Throttled) as over:
        throttle.admit("10.0.0.1")
    assert over.value.reason == "source_ip"
    throttle.admit(None)  # no address known: only the key's limit applies


def test_the_claimed_key_id_is_read_without_its_secret() -> None:
    basic = base64.b64encode(b"LTAIabc:the-secret").decode()
    assert claimed_key_id(f"Basic {basic}") == "LTAIabc"
    assert claimed_key_id("Basic !!!") is None
    assert claimed_key_id("Bearer admin-token") is None
    acs3 = "ACS3-HMAC-SHA256 Credential=LTAIxyz,SignedHeaders=host,Signature=00"
    assert claimed_key_id(acs3) == "LTAIxyz"
    assert claimed_key_id("ACS3-HMAC-SHA256 nothing") is None
