"""The clock window and the nonce memory: stale requests, replays and expired URLs refused;
a nonce is spent only by a request whose signature held; the memory stays bounded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import oss2
import pytest

from mandate.api.signing import (
    InvalidTimeStampExpired,
    NonceCache,
    NonceCacheFull,
    ReplayGuard,
    RpcRequest,
    SignatureDoesNotMatch,
    SignatureNonceUsed,
    SignedRequest,
    parse_acs3,
    parse_oss_v1_header,
    parse_oss_v1_url,
    parse_oss_v4_header,
    parse_oss_v4_url,
    parse_rpc,
)
from tests.unit.signing_sdk import AK, SECRET, core_signed, tea_call
from tests.unit.test_signing_oss import Seen, signed_request, signed_url

MINUTE = 60.0


class Clock:
    """A clock the test sets: no test here depends on how fast anything runs."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rpc(**query: str) -> RpcRequest:
    params, _ = core_signed({"UserName": "alice", **query}, {})
    return parse_rpc("POST", params)


def guard_at(request: SignedRequest, offset: float, **kwargs: object) -> tuple[ReplayGuard, Clock]:
    assert request.timestamp is not None
    clock = Clock(request.timestamp.timestamp() + offset)
    return ReplayGuard(clock=clock, **kwargs), clock  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [0, 15 * MINUTE, -15 * MINUTE, 14 * MINUTE])
def test_a_request_within_fifteen_minutes_is_accepted(offset: float) -> None:
    request = rpc()
    guard, _ = guard_at(request, offset)
    guard.check(request, SECRET)


@pytest.mark.parametrize("offset", [15 * MINUTE + 1, -15 * MINUTE - 1, 24 * 60 * MINUTE])
def test_a_request_outside_the_window_is_expired(offset: float) -> None:
    request = rpc()
    guard, _ = guard_at(request, offset)
    with pytest.raises(InvalidTimeStampExpired) as caught:
        guard.check(request, SECRET)
    assert caught.value.code == "InvalidTimeStamp.Expired"
    assert "15 minutes" in caught.value.message


def test_the_window_is_configurable() -> None:
    request = rpc()
    guard, _ = guard_at(request, 2 * MINUTE, window=timedelta(minutes=1))
    with pytest.raises(InvalidTimeStampExpired, match="1 minutes"):
        guard.check(request, SECRET)


def test_a_replayed_rpc_request_is_refused() -> None:
    request = rpc()
    guard, clock = guard_at(request, 0)
    guard.check(request, SECRET)
    clock.now += 5 * MINUTE
    with pytest.raises(SignatureNonceUsed) as caught:
        guard.check(request, SECRET)
    assert caught.value.code == "SignatureNonceUsed"


def test_a_replayed_v3_request_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    w = tea_call(monkeypatch, query={"UserName": "alice"})
    request = parse_acs3(w.method, w.path, w.query, w.headers, body=w.body)
    guard, _ = guard_at(request, 0)
    guard.check(request, SECRET)
    with pytest.raises(SignatureNonceUsed):
        guard.check(request, SECRET)


def test_a_badly_signed_request_does_not_spend_the_nonce() -> None:
    request = rpc()
    guard, _ = guard_at(request, 0)
    with pytest.raises(SignatureDoesNotMatch):
        guard.check(request, "wrong secret")
    guard.check(request, SECRET)


def test_nonces_are_per_access_key() -> None:
    request = rpc()
    guard, _ = guard_at(request, 0)
    guard.remember_nonce(request)
    guard.remember_nonce(replace(request, access_key_id="LTAIsomeoneElse"))
    with pytest.raises(SignatureNonceUsed):
        guard.remember_nonce(replace(request, signature="unchanged key, same nonce"))


def test_a_nonce_is_forgotten_once_the_clock_would_refuse_its_replay() -> None:
    cache = NonceCache()
    first = rpc()
    guard, clock = guard_at(first, 0, nonces=cache)
    guard.check(first, SECRET)
    assert len(cache) == 1
    clock.now += 15 * MINUTE + 1
    with pytest.raises(InvalidTimeStampExpired):  # the replay is refused by the clock …
        guard.check(first, SECRET)
    guard.remember_nonce(rpc(UserName="bob"))  # … and the next addition purges the old nonce
    assert len(cache) == 1


def test_the_memory_is_bounded_and_refuses_rather_than_forgets() -> None:
    cache = NonceCache(max_entries=2)
    requests = [rpc(UserName=f"u{n}") for n in range(3)]
    guard, clock = guard_at(requests[0], 0, nonces=cache)
    guard.check(requests[0], SECRET)
    guard.check(requests[1], SECRET)
    with pytest.raises(NonceCacheFull) as caught:
        guard.check(requests[2], SECRET)
    assert (caught.value.code, caught.value.http_status) == ("ServiceUnavailable", 503)
    with pytest.raises(SignatureNonceUsed):  # still remembered: nothing was evicted
        guard.remember_nonce(requests[0])
    clock.now += 15 * MINUTE + 1  # the first two expire; the third, signed a bit later, fits
    guard.remember_nonce(requests[2], now=clock.now)
    assert len(cache) == 1


@pytest.mark.parametrize("auth", [oss2.Auth(AK, SECRET), oss2.AuthV4(AK, SECRET)])
def test_oss_header_signatures_keep_to_the_window_and_have_no_nonce(auth: object) -> None:
    seen = signed_request(auth)
    parse = parse_oss_v1_header if isinstance(auth, oss2.Auth) else parse_oss_v4_header
    request = parse(*url_args(seen))  # type: ignore[operator]
    assert request.nonce is None
    guard, clock = guard_at(request, 15 * MINUTE)
    guard.check(request, SECRET)
    guard.check(request, SECRET)  # no nonce: a replay within the window passes, as on OSS
    clock.now += 1
    with pytest.raises(InvalidTimeStampExpired):
        guard.check(request, SECRET)


def test_an_expired_v1_url_is_refused() -> None:
    request = parse_oss_v1_url(*url_args(signed_url(oss2.Auth(AK, SECRET), expires=60)))
    assert request.expires is not None
    guard = ReplayGuard(clock=Clock(request.expires.timestamp()))
    guard.check(request, SECRET)
    guard = ReplayGuard(clock=Clock(request.expires.timestamp() + 1))
    with pytest.raises(InvalidTimeStampExpired, match="Request has expired"):
        guard.check(request, SECRET)


def test_a_v4_url_is_refused_once_expired_or_when_signed_in_the_future() -> None:
    request = parse_oss_v4_url(*url_args(signed_url(oss2.AuthV4(AK, SECRET), expires=60)))
    assert request.expires is not None
    signed_at = request.timestamp.timestamp()
    ReplayGuard(clock=Clock(signed_at + 60)).check(request, SECRET)
    with pytest.raises(InvalidTimeStampExpired, match="expired"):
        ReplayGuard(clock=Clock(signed_at + 61)).check(request, SECRET)
    with pytest.raises(InvalidTimeStampExpired, match="future"):
        ReplayGuard(clock=Clock(signed_at - 15 * MINUTE - 1)).check(request, SECRET)


def url_args(
    seen: Seen,
) -> tuple[str, str | None, str, list[tuple[str, str]], list[tuple[str, str]]]:
    return seen.method, seen.bucket, seen.key, seen.params, seen.headers
