"""How long verifying one request's signature takes, per scheme.

Run ``python -m tests.bench.signing`` (``--quick`` for a short run, ``--rounds N`` for more).
It prints a markdown table: microseconds to parse a request (headers, parameters, time) and
to verify its signature with the secret, for ACS3-HMAC-SHA256, RPC V1 (HMAC-SHA1), OSS V1 and
OSS V4, each request signed beforehand by the SDK's own signer (tea-openapi's client,
aliyun-python-sdk-core, oss2); then one nonce-cache addition, and the secret unsealed and
remembered (``Keyring.open_secret``). Each figure is the median over
the rounds of the best of several timed loops, so one slow round from a busy neighbour does
not move it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.bench.summary import record


@dataclass(frozen=True)
class Case:
    name: str
    parse: Callable[[], object]
    verify: Callable[[], None]


def cases() -> list[Case]:
    """One SDK-signed request per scheme, ready to be parsed and verified over and over."""
    import oss2
    from oss2.http import Request

    from mandate.api.signing import (
        parse_acs3,
        parse_oss_v1_header,
        parse_oss_v4_header,
        parse_rpc,
    )
    from tests.unit.signing_sdk import AK, SECRET, core_signed, tea_call

    query = {"UserName": "alice", "DisplayName": "Alice Smith", "Comments": "bench ~*+"}
    patch = pytest.MonkeyPatch()
    try:
        v3 = tea_call(patch, query=query)
    finally:
        patch.undo()
    v1, _ = core_signed(query, {"Email": "alice@example.com"})

    def oss(auth: object) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        request = Request(
            "PUT",
            "https://reports.oss-cn-hangzhou.aliyuncs.com/",
            params={"acl": "", "versionId": "v1"},
            headers={"Content-Type": "text/csv", "x-oss-meta-owner": "alice"},
            region="cn-hangzhou",
            product="oss",
        )
        auth._sign_request(request, "reports", "2026/q1.csv")  # type: ignore[attr-defined]
        headers = [(k, v) for k, v in request.headers.items() if v is not None]
        return list(request.params.items()), headers

    o1_params, o1_headers = oss(oss2.Auth(AK, SECRET))
    o4_params, o4_headers = oss(oss2.AuthV4(AK, SECRET))

    def acs3() -> object:
        return parse_acs3(v3.method, v3.path, v3.query, v3.headers, body=v3.body)

    def rpc() -> object:
        return parse_rpc("POST", v1)

    def oss_v1() -> object:
        return parse_oss_v1_header("PUT", "reports", "2026/q1.csv", o1_params, o1_headers)

    def oss_v4() -> object:
        return parse_oss_v4_header("PUT", "reports", "2026/q1.csv", o4_params, o4_headers)

    out = []
    for name, parse in (
        ("ACS3-HMAC-SHA256 (V3)", acs3),
        ("RPC V1 HMAC-SHA1", rpc),
        ("OSS V1 header", oss_v1),
        ("OSS4-HMAC-SHA256 header", oss_v4),
    ):
        parsed = parse()
        parsed.verify(SECRET)  # type: ignore[attr-defined]  # a wrong case must not be timed
        out.append(Case(name, parse, lambda p=parsed: p.verify(SECRET)))  # type: ignore[misc]
    return out


def best_us(call: Callable[[], object], budget: float) -> float:
    """Microseconds per call: the best of five timed loops sized to ``budget`` seconds."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, min(200_000, int(budget / 5 / once)))
    best = once
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def nonce_add_us(budget: float) -> float:
    """One ``NonceCache.add`` of a new key (hashing included), the cache kept near 100,000."""
    from datetime import UTC, datetime

    from mandate.api.signing import NonceCache, ReplayGuard
    from mandate.api.signing.rpc import RpcRequest

    now = time.time()
    guard = ReplayGuard(NonceCache(max_entries=1_000_000), clock=lambda: now)
    signed_at = datetime.fromtimestamp(now, UTC)
    requests = [
        RpcRequest(
            method="POST",
            params=(),
            signature="",
            access_key_id="LTAIbench",
            security_token=None,
            timestamp=signed_at,
            nonce=f"nonce-{n}",
        )
        for n in range(200_000)
    ]
    for request in requests[:100_000]:
        guard.remember_nonce(request, now)
    rest = iter(requests[100_000:])
    return best_us(lambda: guard.remember_nonce(next(rest), now), min(budget, 0.2))


def secret_us(budget: float) -> tuple[float, float]:
    """The secret to verify with: unsealed (AES-GCM under its data key), then remembered
    (``Keyring.open_secret``'s hit)."""
    from mandate.domain.identity.keyring import KeyEncryptionKeys, Keyring
    from mandate.domain.identity.sealing import DataKey, KeyEncryptionKey

    kek = KeyEncryptionKey.derive("s1", "bench-key-encryption-key-" + "k" * 16, source="bench")
    keyring = Keyring(KeyEncryptionKeys(kek), None, [DataKey.generate("d1")])  # type: ignore[arg-type]
    sealed = keyring.seal("x" * 30, bound_to="LTAIbench")
    unsealed = best_us(lambda: keyring.unseal(sealed, bound_to="LTAIbench"), budget)
    remembered = best_us(lambda: keyring.open_secret(sealed, bound_to="LTAIbench"), budget)
    return unsealed, remembered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    from tests.bench.harness import code_version, load_average, machine

    rounds = 1 if args.quick and args.rounds == 5 else args.rounds
    budget = 0.05 if args.quick else 0.25
    print(f"## Signature verification{' (quick)' if args.quick else ''}\n")
    print(f"{machine()}; code {code_version()}; load {load_average()}.\n")
    print(f"Median of {rounds} round(s), each the best of 5 loops.\n")
    print("| scheme | parse µs | verify µs | parse + verify µs |")
    print("|---|---:|---:|---:|")
    for case in cases():
        parse = statistics.median(best_us(case.parse, budget) for _ in range(rounds))
        verify = statistics.median(best_us(case.verify, budget) for _ in range(rounds))
        both = statistics.median(
            best_us(lambda c=case: (c.parse(), c.verify()), budget)  # type: ignore[misc]
            for _ in range(rounds)
        )
        print(f"| {case.name} | {parse:,.1f} | {verify:,.1f} | {both:,.1f} |")
        record(f"verify {case.name} (parse + verify)", f"{both:,.1f} µs", source="signing")
    nonce = statistics.median(nonce_add_us(budget) for _ in range(rounds))
    print(f"| nonce memory: one new nonce (100,000 held) | | {nonce:,.1f} | |")
    record("nonce memory, one new nonce", f"{nonce:,.1f} µs", source="signing")
    secrets = [secret_us(budget) for _ in range(rounds)]
    unsealed = statistics.median(a for a, _ in secrets)
    remembered = statistics.median(b for _, b in secrets)
    print(f"| the secret: unsealed (AES-GCM) | | {unsealed:,.1f} | |")
    print(f"| the secret: remembered (`Keyring.open_secret`) | | {remembered:,.1f} | |")
    record(
        "the secret, unsealed / remembered",
        f"{unsealed:,.1f} / {remembered:,.1f} µs",
        source="signing",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
