"""Which signed requests claim their nonce in the shared store, and how ``ReplayGuard`` treats
that store (issue 14); the store itself is tested on PostgreSQL in
``tests/integration/test_shared_nonces.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mandate.api.signing import NonceCache, ReplayGuard, SignatureNonceUsed
from mandate.api.signing.replay import NonceStoreUnavailable, rpc_writes, v1_writes

NOW = 1_900_000_000.0


class _Signed:
    def __init__(self, nonce: str | None) -> None:
        self.access_key_id = "LTAI5tExampleKey0001"
        self.security_token = None
        self.nonce = nonce
        self.timestamp = datetime.fromtimestamp(NOW, UTC)
        self.expires = None

    def verify(self, secret: str) -> None:
        return None


class _Table:
    """A shared store that records what it was asked, and fails when told to."""

    def __init__(self) -> None:
        self.keys: dict[bytes, float] = {}
        self.down = False
        self.asked = 0

    def add(self, key: bytes, expires_at: float, now: float) -> bool:
        self.asked += 1
        if self.down:
            raise OSError("connection refused")
        if key in self.keys:
            return False
        self.keys[key] = expires_at
        return True


@pytest.mark.parametrize(
    ("method", "path", "writes"),
    [
        ("GET", "/v1/accounts/1/users", False),
        ("HEAD", "/v1/accounts/1/users", False),
        ("get", "/v1/accounts/1/users", False),
        ("POST", "/v1/accounts/1/users", True),
        ("POST", "/v1/accounts/1/users/alice/access-keys", True),
        ("DELETE", "/v1/accounts/1/users/alice", True),
        ("PATCH", "/v1/accounts/1/users/alice", True),
        ("POST", "/v1/sts/assume-role", True),
        ("POST", "/v1/authorize", False),  # the enforcement points' hot path writes nothing
    ],
)
def test_v1_writes_is_every_method_but_reads_and_the_decision_route(
    method: str, path: str, writes: bool
) -> None:
    assert v1_writes(method, path) is writes


@pytest.mark.parametrize(
    ("action", "writes"),
    [
        ("GetUser", False),
        ("ListAccessKeys", False),
        ("GetCallerIdentity", False),
        ("CreateAccessKey", True),
        ("AssumeRole", True),
        ("AttachPolicyToUser", True),
        ("UpdateAccessKey", True),
        ("DeleteUser", True),
    ],
)
def test_rpc_writes_is_every_action_but_get_and_list(action: str, writes: bool) -> None:
    assert rpc_writes(action) is writes


def test_the_process_cache_answers_first_and_the_table_only_for_writes() -> None:
    table = _Table()
    guard = ReplayGuard(shared=table, clock=lambda: NOW)
    guard.remember_nonce(_Signed("read"), writes=False)
    assert table.asked == 0  # a read: the process's cache only
    guard.remember_nonce(_Signed("write"), writes=True)
    assert table.asked == 1
    with pytest.raises(SignatureNonceUsed):
        guard.remember_nonce(_Signed("write"), writes=True)
    assert table.asked == 1  # a replay to the same process costs no I/O
    guard.remember_nonce(_Signed(None), writes=True)  # no nonce (OSS): nothing to remember
    assert table.asked == 1
    every = ReplayGuard(shared=table, share_all=True, clock=lambda: NOW)
    every.remember_nonce(_Signed("read 2"), writes=False)
    assert table.asked == 2


def test_a_nonce_the_table_holds_is_refused_though_new_to_this_process() -> None:
    table = _Table()
    ReplayGuard(shared=table, clock=lambda: NOW).remember_nonce(_Signed("n"))
    with pytest.raises(SignatureNonceUsed):
        ReplayGuard(shared=table, clock=lambda: NOW).remember_nonce(_Signed("n"))


def test_a_table_that_fails_refuses_with_503_and_leaves_the_nonce_unspent() -> None:
    table, cache = _Table(), NonceCache()
    guard = ReplayGuard(cache, shared=table, clock=lambda: NOW)
    table.down = True
    with pytest.raises(NonceStoreUnavailable) as refused:
        guard.remember_nonce(_Signed("n"))
    assert (refused.value.http_status, refused.value.code) == (503, "ServiceUnavailable")
    assert "connection refused" not in refused.value.message  # the store's words stay inside
    assert len(cache) == 0
    table.down = False
    guard.remember_nonce(_Signed("n"))  # the retry is served, once
    with pytest.raises(SignatureNonceUsed):
        guard.remember_nonce(_Signed("n"))


def test_discard_forgets_a_key_and_the_heap_entry_goes_at_its_expiry() -> None:
    cache = NonceCache()
    assert cache.add(b"k", NOW + 10, NOW)
    cache.discard(b"k")
    cache.discard(b"absent")
    assert len(cache) == 0
    assert cache.add(b"k", NOW + 20, NOW)
    assert cache.add(b"k", NOW + 30, NOW + 15) is False  # the stale heap entry did not free it
    assert cache.add(b"k", NOW + 40, NOW + 25)  # expired: free again
