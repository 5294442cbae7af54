"""How fast Mandate decides: in process (µs per decision) and over HTTP (req/s, latency).

Run ``python -m tests.bench.decide`` (``--quick`` for a short run). It prints a markdown table.

(a) In process. A user holds 10 custom policies x 5 statements (oss, ecs, rds, ram, kms, slb,
vpc, log, cms, fc; wildcards, Deny, NotAction and conditions mixed in): 4 attached to the user
and 3 to each of two groups it belongs to, written through the real ``Ledger`` into a temporary
SQLite store and applied to a ``DecisionIndex`` by its ``LogFollower``. One request is timed
three ways: ``domain.policy.decisions.decide`` with the index's cached policy set (compiled,
uncached), ``DecisionIndex.decide`` answering from its memo, and ``DecisionIndex.decide`` right
after the index dropped its cached sets (what the first decision after any event pays: the
user's policy set is assembled again from the compiled policies). Timings are batches of
``time.perf_counter_ns``; the table shows the median and p99 of the batch means.

(b) Over HTTP. ``python -m api.cli serve`` runs in a subprocess (its own GIL) on a temporary
SQLite store; the same principal is set up through the API; then ``GET /healthz`` and
``POST /v1/authorize`` (self form, the user's Basic credentials) are driven at concurrency 32
and at concurrency 1. The load generator is ``wrk`` when it is on ``PATH``, else Python:
several worker processes, each with keep-alive ``http.client`` connections in threads.
Client and server share this machine's cores, so the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import IssuedKey, Ledger
from mandate.domain.policy.decisions import decide
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.store.follower import LogFollower
from tests.bench.harness import (
    Api,
    LoadPlan,
    LoadResult,
    Target,
    Timing,
    basic,
    find_wrk,
    sqlite_server,
    time_batches,
)
from tests.bench.summary import record

SERVICES = ("oss", "ecs", "rds", "ram", "kms", "slb", "vpc", "log", "cms", "fc")
POLICY_NAMES = tuple(f"Bench{service.upper()}" for service in SERVICES)
DIRECT_POLICIES = POLICY_NAMES[:4]
GROUP_POLICIES = {"dev": POLICY_NAMES[4:7], "ops": POLICY_NAMES[7:]}
USER_NAME = "bench-user"
ACTION = "oss:GetObject"
UNCACHED_TARGET_US = 10.0
THROUGHPUT_TARGET = 0.8
HTTP_CONCURRENCY = 32
SOURCE = "decide"  # its rows in ``python -m tests.bench``'s summary
ROUNDS = 3  # healthz and authorize alternate, so a noisy spell hits both


def resource(account_id: str) -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:bucket-7/reports/2026/q1.csv"


def policy_documents(account_id: str) -> dict[str, dict[str, Any]]:
    """Ten policies of five statements each, one per service, in the shapes RAM users write."""
    documents: dict[str, dict[str, Any]] = {}
    for i, (name, service) in enumerate(zip(POLICY_NAMES, SERVICES, strict=True)):
        other = SERVICES[(i + 3) % len(SERVICES)]
        last: dict[str, Any] = (
            {
                "Effect": "Allow",
                "Action": f"{service}:*",
                "Resource": f"acs:{service}:*:{account_id}:sandbox-{i}/*",
            }
            if i % 2 == 0
            else {
                "Effect": "Deny",
                "NotAction": [f"{service}:Get*", f"{service}:List*"],
                "Resource": f"acs:{service}:*:{account_id}:archive/*",
            }
        )
        documents[name] = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [f"{service}:Get*", f"{service}:List*", f"{service}:Describe*"],
                    "Resource": f"acs:{service}:*:{account_id}:*",
                },
                {
                    "Effect": "Allow",
                    "Action": [f"{service}:Create*", f"{service}:Update*"],
                    "Resource": [
                        f"acs:{service}:cn-*:{account_id}:team-{i}/*",
                        f"acs:{service}:ap-*:{account_id}:team-{i}/*",
                    ],
                },
                {
                    "Effect": "Deny",
                    "Action": f"{service}:Delete*",
                    "Resource": f"acs:{service}:*:{account_id}:prod-*",
                },
                {
                    "Effect": "Allow",
                    "Action": [f"{other}:Describe*", f"{other}:Get*"],
                    "Resource": f"acs:{other}:*:{account_id}:shared/*",
                    "Condition": {
                        "IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
                        "Bool": {"acs:SecureTransport": "true"},
                    },
                },
                last,
            ],
        }
    return documents


# -- (a) in process ---------------------------------------------------------------------------


def write_principal(ledger: Ledger, follower: LogFollower, account_id: str) -> IssuedKey:
    """The benchmark's user, written through ``ledger``: ``USER_NAME`` with an AccessKey (which
    this returns) and the ten policies, ``DIRECT_POLICIES`` attached to it and the rest through
    its two groups (``GROUP_POLICIES``). ``follower`` keeps the index the ledger reads current.
    """
    ledger.create_user(account_id, USER_NAME, None)
    key = ledger.create_access_key(account_id, USER_NAME)
    for name, document in policy_documents(account_id).items():
        ledger.create_policy(account_id, name, document)
    for name in DIRECT_POLICIES:
        ledger.attach_policy(account_id, "user", USER_NAME, "Custom", name)
    for group, names in GROUP_POLICIES.items():
        ledger.create_group(account_id, group)
        follower.catch_up()  # the ledger reads group members through the index
        ledger.add_user_to_group(account_id, group, USER_NAME)
        for name in names:
            ledger.attach_policy(account_id, "group", group, "Custom", name)
    return key


def bench_in_process(workdir: Path, *, quick: bool) -> tuple[list[Timing], str]:
    hasher = SecretHasher("k1", {"k1": b"bench-hash-key-" + b"k" * 32})
    index = DecisionIndex(hasher)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(workdir / "in-process.db"),
        "CREATE_TABLE": "y",
    }
    ledger = Ledger(env, hasher=hasher, read_port=index)
    follower = LogFollower(ledger, index)
    try:
        with acting_as(AuditContext(actor="mandate:admin")):
            account_id = ledger.open_account("Bench").account_id
            write_principal(ledger, follower, account_id)
        follower.catch_up()
    finally:
        ledger.close()

    user = index.user_by_name(account_id, USER_NAME)
    assert user is not None
    user_id = user.id
    request = AccessRequest.make(ACTION, resource(account_id))
    subject = index.user_subject(user_id)
    identity = subject.identity
    assert identity is not None
    statements = sum(len(p.statements) for p in identity.policies)
    answer = decide(subject, request)
    assert answer.allowed, answer
    assert not answer.decision.context_dependent, "the memo would not apply to this request"
    shape = (
        f"{len(identity.policies)} policies, {statements} statements "
        f"({len(DIRECT_POLICIES)} direct, {len(GROUP_POLICIES['dev'])} + "
        f"{len(GROUP_POLICIES['ops'])} through 2 groups); request `{ACTION}` → "
        f"{answer.decision.kind.value}"
    )

    def uncached(n: int) -> None:
        for _ in range(n):
            decide(subject, request)

    def memoised(n: int) -> None:
        for _ in range(n):
            index.decide(subject, request, memo_key=user_id)

    build_subject = partial(index.user_subject, user_id)

    def assembled(n: int) -> None:
        for _ in range(n):
            # What an event that concerns this user does: its memoised answers and assembled
            # policy set go; the compiled policies stay, so the set is re-assembled.
            index.forget_cached_decisions()
            index.decide(build_subject, request, memo_key=user_id)

    batches = 60 if quick else 500
    timings = [
        time_batches("compiled, uncached (`decisions.decide`)", uncached, batches=batches),
        time_batches("memoised (`DecisionIndex.decide` hit)", memoised, batches=batches),
        time_batches("with policy-set assembly (after invalidation)", assembled, batches=batches),
    ]
    return timings, shape


# -- (b) over HTTP ----------------------------------------------------------------------------


def create_principal(api: Api, account_id: str, root: str) -> str:
    """The in-process principal, made through the API by the account's ``root`` (a ``Basic``
    header value); return the user's ``Basic``."""
    call = api.call
    base = f"/v1/accounts/{account_id}"
    call("POST", f"{base}/users", root, {"user_name": USER_NAME})
    key = call("POST", f"{base}/users/{USER_NAME}/access-keys", root)
    for name, document in policy_documents(account_id).items():
        call("POST", f"{base}/policies", root, {"policy_name": name, "policy_document": document})
    for name in DIRECT_POLICIES:
        call("PUT", f"{base}/users/{USER_NAME}/policies/Custom/{name}", root)
    for group, names in GROUP_POLICIES.items():
        call("POST", f"{base}/groups", root, {"group_name": group})
        call("PUT", f"{base}/groups/{group}/members/{USER_NAME}", root)
        for name in names:
            call("PUT", f"{base}/groups/{group}/policies/Custom/{name}", root)
    return basic(key["access_key_id"], key["access_key_secret"])


def set_up_over_http(url: str) -> tuple[str, str]:
    """The in-process principal, made through the API; return (account id, user's Basic)."""
    api = Api(url)
    try:
        account_id, root = api.open_account("Bench")
        user = create_principal(api, account_id, root)
        answer = api.call(
            "POST", "/v1/authorize", user, {"action": ACTION, "resource": resource(account_id)}
        )
        if answer["decision"] != "Allow" or len(answer["matched"]) != 1:
            raise RuntimeError(f"unexpected answer over HTTP: {answer}")
        return account_id, user
    finally:
        api.close()


def bench_http(
    workdir: Path, *, quick: bool, generator: str, processes: int, concurrency_1: bool = True
) -> tuple[list[LoadResult], str]:
    wrk = find_wrk(generator)
    duration, warmup = (2.0, 1.0) if quick else (6.0, 2.0)
    rounds = 1 if quick else ROUNDS
    plan = LoadPlan(rounds, duration, warmup, wrk, processes)
    with sqlite_server(workdir) as url:
        account_id, user = set_up_over_http(url)
        body = json.dumps({"action": ACTION, "resource": resource(account_id)}).encode()
        targets = {
            "GET /healthz": Target("GET", "/healthz", None, {}),
            "POST /v1/authorize": Target(
                "POST",
                "/v1/authorize",
                body,
                {"Authorization": user, "Content-Type": "application/json"},
            ),
        }
        results: list[LoadResult] = []
        for concurrency in (HTTP_CONCURRENCY, 1) if concurrency_1 else (HTTP_CONCURRENCY,):
            for _round, (label, target) in itertools.product(range(rounds), targets.items()):
                results.append(
                    plan.load(url, label, target, concurrency=concurrency, workdir=workdir)
                )
    runs = (
        f"{rounds} alternating rounds of {duration:.0f} s per endpoint, "
        f"each after a {warmup:.0f} s warm-up"
    )
    if wrk is not None:
        used = f"wrk ({wrk}; 2 threads, 1 at concurrency 1; {runs})"
    else:
        used = (
            f"Python ({processes} worker processes, 1 at concurrency 1, each with keep-alive "
            f"http.client connections in threads; {runs})"
        )
    return results, used


# -- the report -------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def report(
    timings: list[Timing], shape: str, loads: list[LoadResult], generator: str, quick: bool
) -> str:
    cores = os.cpu_count() or 1
    out = [
        f"## Mandate decision benchmark{' (quick)' if quick else ''}",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {cores} cores.",
        "",
        f"### In process — {shape}",
        "",
        "| path | median µs | p99 µs | batches x calls | target |",
        "|---|---:|---:|---:|---|",
    ]
    names = (
        "decision, compiled and uncached",
        "decision from the memo",
        "first decision after an event",
    )
    for i, t in enumerate(timings):
        target = ""
        if i == 0:
            met = t.median_us <= UNCACHED_TARGET_US
            target = f"≤ {UNCACHED_TARGET_US:g} µs median {_mark(met)}"
            record(
                names[i],
                f"{t.median_us:.2f} µs",
                f"≤ {UNCACHED_TARGET_US:g} µs",
                met,
                source=SOURCE,
            )
        elif i < len(names):
            record(names[i], f"{t.median_us:.2f} µs", source=SOURCE)
        out.append(
            f"| {t.label} | {t.median_us:.2f} | {t.p99_us:.2f} | "
            f"{t.batches} x {t.batch_size} | {target} |"
        )
    if not loads:
        return "\n".join(out)
    out += [
        "",
        "### Over HTTP — `python -m api.cli serve` (subprocess, SQLite, one uvicorn worker)",
        "",
        f"Load generator: {generator}. Client and server share the machine's {cores} cores.",
        "",
        "| endpoint | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    runs: dict[tuple[str, int], list[LoadResult]] = {}
    for r in loads:
        runs.setdefault((r.label, r.concurrency), []).append(r)
    for (label, concurrency), rs in runs.items():
        out.append(
            f"| `{label}` | {concurrency} "
            f"| {statistics.median(r.requests_per_s for r in rs):,.0f} "
            f"| {statistics.median(r.p50_ms for r in rs):.2f} "
            f"| {statistics.median(r.p99_ms for r in rs):.2f} | {sum(r.errors for r in rs)} |"
        )
    healthz = runs[("GET /healthz", HTTP_CONCURRENCY)]
    authorize = runs[("POST /v1/authorize", HTTP_CONCURRENCY)]
    ratios = [
        a.requests_per_s / h.requests_per_s if h.requests_per_s else 0.0
        for h, a in zip(healthz, authorize, strict=True)
    ]
    ratio = statistics.median(ratios)
    concurrency = f"concurrency {HTTP_CONCURRENCY}"
    rate = statistics.median(r.requests_per_s for r in authorize)
    p50 = statistics.median(r.p50_ms for r in authorize)
    record(
        f"`POST /v1/authorize`, {concurrency}",
        f"{rate:,.0f} req/s, p50 {p50:.1f} ms",
        source=SOURCE,
    )
    record(
        f"authorize / healthz throughput, {concurrency}",
        f"{ratio:.2f}",
        f"≥ {THROUGHPUT_TARGET:g}",
        ratio >= THROUGHPUT_TARGET,
        source=SOURCE,
    )
    out += [
        "",
        "req/s, p50 and p99 are medians over the rounds.",
        f"authorize / healthz throughput at concurrency {HTTP_CONCURRENCY}, median of the "
        f"rounds' ratios ({', '.join(f'{r:.2f}' for r in ratios)}): **{ratio:.2f}** "
        f"(target ≥ {THROUGHPUT_TARGET:g} {_mark(ratio >= THROUGHPUT_TARGET)})",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.decide", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator: wrk when on PATH (auto), or the Python one",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="worker processes of the Python load generator (default 4)",
    )
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument(
        "--skip-concurrency-1",
        action="store_true",
        help=f"over HTTP, concurrency {HTTP_CONCURRENCY} only (python -m tests.bench --quick)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mandate-bench-") as tmp:
        workdir = Path(tmp)
        timings, shape = bench_in_process(workdir, quick=args.quick)
        if args.skip_http:
            loads: list[LoadResult] = []
            used = "none"
        else:
            loads, used = bench_http(
                workdir,
                quick=args.quick,
                generator=args.generator,
                processes=args.client_processes,
                concurrency_1=not args.skip_concurrency_1,
            )
    print(report(timings, shape, loads, used, args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
