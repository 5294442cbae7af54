"""What a contract between enterprises costs: deciding through it, and revoking it.

Run ``python -m tests.bench.entrustments`` (about 2 minutes; ``--quick``: about 1; ``--parts``
picks parts). It prints markdown tables; every figure is a median over alternating rounds,
and every ratio is the median of the rounds' ratios (a noisy spell hits both sides of a round).

The policy. Both sides of the comparison hold the same document, ``BenchOSS`` of
``tests.bench.decide`` (5 statements: allows, a Deny, a conditional Allow of another service;
the request ``oss:GetObject`` on ``bucket-7/…`` is allowed by its statement 0):

* direct — account A's RAM user ``bench-user`` with ``BenchOSS`` attached, calling with its
  AccessKey: one ``identity`` layer;
* chain — account A entrusts B with ``{"policies": ["BenchOSS"]}`` (snapshotted into the
  entrustment's scope), B delegates the same document to its user ``ravi.k``, who assumes the
  managed role with the same document as session policy: the session's layers are
  ``entrustment`` ∩ ``delegation`` ∩ ``session`` and its chain has five links (user,
  delegation, entrustment, role, session). Target: within 1.5x of direct.

(a1) In process: a ``DecisionIndex`` fed by its ``LogFollower`` from a ``Ledger`` on a
temporary SQLite file, both principals written through the real commands. Timed per call:
authentication alone (``authenticate`` vs ``authenticate_session``, a repeat request: the
remembered credential's secret hash and expiry), a session's first request (nothing
remembered: the token's MAC, the lineage walk through the role, the contract and the
delegations reaching the user), then authentication + ``decide_for`` answered from the memo,
then the same with the memo emptied before each call (the evaluator runs: one identity layer
vs three layers). Batches of ~2 ms timed with ``time.perf_counter_ns`` (garbage collection
paused), direct and chain alternating.

(a2) Over HTTP: ``POST /v1/authorize`` in its self form (the caller asks about itself) with
``Basic <AccessKey>`` vs ``Basic <STS.…>`` + ``X-Security-Token``, at concurrency 32 and 1,
with ``wrk`` (else the Python load generator of ``tests.bench.harness``), against
``python -m api.cli serve`` on SQLite (a decision never touches the store). Client and server
share the machine's cores: rates are a floor; compare the ratios.

(b) Revocation to denial across two API processes on PostgreSQL. ``python -m api.cli
migrate`` once, then two ``python -m api.cli serve`` processes on one schema
``mandate_bench_entrustments_<hex>`` made for the run and dropped at its end (only that
schema), sharing the hash and token-signing keys (as every process of a deployment must).
Each trial: through process 1, A grants a fresh entrustment to B, B delegates it to ravi.k,
ravi.k assumes its managed role; process 2 is asked (``Min-Position``) whether it allows the
session. A thread then polls process 2 with the session's credentials (``POST /v1/authorize``
self form, one keep-alive connection, back to back); once it has seen the session allowed,
the entrustment is revoked through process 1, and the poller stops at process 2's first 401
(its detail must name the revocation). The delay ends when that 401 *arrived* at the poller (an
upper bound: process 2 decided somewhere within that last request). It is measured from two
starts: the revoke call's *return* — the primary figure: from then on the revoker holds a
committed revocation that its own process already enforces, so the rest is what another
process adds (its follower polls the log every ``MANDATE_POLL_INTERVAL``, 50 ms by default)
— and from the revoke call's *send*, which adds the write itself (commit, and process 1
applying it before it answers). A delay below zero would mean process 2 refused before
process 1 answered. Target: p99 ≤ 100 ms from the return.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg

from mandate.domain.policy.evaluation import AccessRequest
from tests.bench.decide import ACTION, policy_documents, resource
from tests.bench.harness import (
    Api,
    KeyAndSession,
    LoadPlan,
    PairedTimings,
    Target,
    add_generator_options,
    add_parts_option,
    add_postgres_option,
    add_run_options,
    authorize_comparison,
    basic,
    chosen_parts,
    code_version,
    find_wrk,
    in_process_store,
    in_process_table,
    load_average,
    machine,
    mandate_servers,
    mark,
    median,
    percentile,
    plain_context,
    postgres_schema,
    print_report,
    time_pairs,
)
from tests.bench.summary import record

POLICY = "BenchOSS"
USER_NAME = "bench-user"
EMPLOYEE = "ravi.k"
CONTRACT = "BENCH-MSA-1"
SESSION_NAME = "ravi-oncall"
SESSION_DURATION = 3600  # a managed role's sessions last at most 3600 s; the run is shorter
LATENCY_RATIO_TARGET = 1.5  # chain / direct, at most
REVOCATION_P99_TARGET_MS = 100.0
AUTHORIZE_CONCURRENCIES = (32, 1)
HASH_KEY = "bench-entrustments-hash-key-" + "h" * 32
TOKEN_KEY = "bench-entrustments-token-key-" + "t" * 32
# part (b)'s two processes share the hash and token-signing keys, as a deployment's must
SHARED_KEYS = {"MANDATE_HASH_KEY": HASH_KEY, "MANDATE_TOKEN_SIGNING_KEY": TOKEN_KEY}
PARTS = ("a1", "a2", "b")
SOURCE = "entrustments"  # its rows in ``python -m tests.bench``'s summary
SCHEMA_PREFIX = "mandate_bench_entrustments_"  # part (b)'s throwaway schema, and a random suffix

DIRECT_LABEL = "direct: user, policy attached (AccessKey)"
CHAIN_LABEL = "chain: entrustment ∩ delegation ∩ session (STS)"


def the_policy(account_id: str) -> dict[str, Any]:
    return policy_documents(account_id)[POLICY]


def restart_scope(account_id: str) -> dict[str, Any]:
    """Part (b)'s contract: restarting the owner's instances."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecs:RebootInstance",
                "Resource": f"acs:ecs:*:{account_id}:instance/*",
            }
        ],
    }


# -- (a1) in process --------------------------------------------------------------------------


def bench_in_process(workdir: Path, *, rounds: int, batches: int) -> PairedTimings:
    """Direct (an AccessKey, first side) vs chain (STS credentials, second side), path by path."""
    context = plain_context()
    with in_process_store(workdir) as (index, ledger, follower):
        owner = ledger.open_account("Owner").account_id
        operator = ledger.open_account("Operator").account_id
        document = the_policy(owner)
        ledger.create_policy(owner, POLICY, document)
        ledger.create_user(owner, USER_NAME, None)
        user_key = ledger.create_access_key(owner, USER_NAME)
        ledger.attach_policy(owner, "user", USER_NAME, "Custom", POLICY)
        follower.catch_up()  # the grant snapshots the policy through the index
        entrusted = ledger.grant_entrustment(
            owner,
            trustee_account_id=operator,
            scope={"policies": [POLICY]},
            contract_ref=CONTRACT,
        )
        ledger.create_user(operator, EMPLOYEE, None)
        employee_key = ledger.create_access_key(operator, EMPLOYEE)
        ledger.attach_policy(operator, "user", EMPLOYEE, "System", "AliyunSTSAssumeRoleAccess")
        follower.catch_up()
        delegated = ledger.grant_delegation(
            operator,
            delegation_id=uuid4(),
            entrustment_id=entrusted.entrustment_id,
            grantee=f"acs:ram::{operator}:user/{EMPLOYEE}",
            scope=document,
        )
        follower.catch_up()
        employee = index.authenticate(employee_key.access_key_id, employee_key.access_key_secret)
        issued = ledger.assume_role(
            index.assuming_caller(employee),
            role_arn=f"acs:ram::{owner}:role/{entrusted.role_name}",
            role_session_name=SESSION_NAME,
            duration_seconds=SESSION_DURATION,
            policy=document,
            context=context,
        )

    request = AccessRequest.make(ACTION, resource(owner), context)
    compared = KeyAndSession(index, request, user_key, issued)
    direct, session, chain = compared.answers()
    assert len(chain.chain) == 5, chain.chain
    assert session.subject is not None
    layers = " ∩ ".join(s.layer.value for s in session.subject.layers)
    shape = (
        f"`{POLICY}` (5 statements) attached to a user vs as entrustment scope, delegation "
        f"scope and session policy (session layers: {layers}; chain of {len(chain.chain)}; "
        f"{len(delegated.warnings)} scope warnings); request `{ACTION}` → "
        f"{direct.decision.kind.value} / {chain.decision.kind.value}"
    )
    paths = compared.paths("lineage walked")
    return time_pairs(shape, paths, rounds=rounds, batches=batches)


# -- set-up over HTTP -------------------------------------------------------------------------


@dataclass
class Parties:
    owner: str
    owner_root: str  # Authorization header values
    operator: str
    operator_root: str
    employee: str


def open_parties(api: Api) -> Parties:
    """Accounts A and B; B's ravi.k holds AliyunSTSAssumeRoleAccess."""
    owner, owner_root = api.open_account("Owner")
    operator, operator_root = api.open_account("Operator")
    base = f"/v1/accounts/{operator}"
    api.call("POST", f"{base}/users", operator_root, {"user_name": EMPLOYEE})
    key = api.call("POST", f"{base}/users/{EMPLOYEE}/access-keys", operator_root)
    api.call(
        "PUT", f"{base}/users/{EMPLOYEE}/policies/System/AliyunSTSAssumeRoleAccess", operator_root
    )
    return Parties(
        owner,
        owner_root,
        operator,
        operator_root,
        basic(key["access_key_id"], key["access_key_secret"]),
    )


def contract_session(
    api: Api, parties: Parties, *, scope: Any, delegated: Any, session_policy: Any, n: int
) -> tuple[str, dict[str, Any], int]:
    """A grants contract ``n``, B delegates it to ravi.k, ravi.k assumes its role.

    Returns (entrustment id, the session's credentials, the position of its issue).
    """
    granted = api.call(
        "POST",
        f"/v1/accounts/{parties.owner}/entrustments",
        parties.owner_root,
        {
            "trustee_account_id": parties.operator,
            "scope": scope,
            "contract_ref": f"{CONTRACT}-{n}",
            "role_name": f"bench-contract-{n}",
        },
    )
    api.call(
        "POST",
        f"/v1/accounts/{parties.operator}/delegations",
        parties.operator_root,
        {
            "entrustment_id": granted["entrustment_id"],
            "grantee": f"acs:ram::{parties.operator}:user/{EMPLOYEE}",
            "scope": delegated,
        },
    )
    body: dict[str, Any] = {
        "role_arn": granted["role_arn"],
        "role_session_name": SESSION_NAME,
        "duration_seconds": SESSION_DURATION,
    }
    if session_policy is not None:
        body["policy"] = session_policy
    issued = api.call("POST", "/v1/sts/assume-role", parties.employee, body)
    return granted["entrustment_id"], issued["credentials"], int(issued["position"])


def _session_auth(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "Authorization": basic(credentials["access_key_id"], credentials["access_key_secret"]),
        "X-Security-Token": credentials["security_token"],
    }


# -- (a2) authorize: direct vs chain, over HTTP -----------------------------------------------


def set_up_authorize(url: str) -> dict[str, Target]:
    """Part (a2)'s principals through the API: the direct target, then the chain's."""
    api = Api(url)
    try:
        parties = open_parties(api)
        owner, root = parties.owner, parties.owner_root
        base = f"/v1/accounts/{owner}"
        document = the_policy(owner)
        api.call(
            "POST", f"{base}/policies", root, {"policy_name": POLICY, "policy_document": document}
        )
        api.call("POST", f"{base}/users", root, {"user_name": USER_NAME})
        key = api.call("POST", f"{base}/users/{USER_NAME}/access-keys", root)
        api.call("PUT", f"{base}/users/{USER_NAME}/policies/Custom/{POLICY}", root)
        _, credentials, _ = contract_session(
            api,
            parties,
            scope={"policies": [POLICY]},
            delegated=document,
            session_policy=document,
            n=0,
        )
        body = {"action": ACTION, "resource": resource(owner)}
        json_type = {"Content-Type": "application/json"}
        direct = {"Authorization": basic(key["access_key_id"], key["access_key_secret"])}
        chain = _session_auth(credentials)
        for headers, links in ((direct, 1), (chain, 5)):
            extra = {k: v for k, v in headers.items() if k != "Authorization"}
            answer = api.call("POST", "/v1/authorize", headers["Authorization"], body, **extra)
            if answer["decision"] != "Allow" or len(answer["chain"]) != links:
                raise RuntimeError(f"unexpected answer over HTTP: {answer}")
    finally:
        api.close()
    encoded = json.dumps(body).encode()
    return {
        DIRECT_LABEL: Target("POST", "/v1/authorize", encoded, {**direct, **json_type}),
        CHAIN_LABEL: Target("POST", "/v1/authorize", encoded, {**chain, **json_type}),
    }


# -- (b) revocation to denial across two processes on PostgreSQL ------------------------------


@dataclass(frozen=True)
class Trial:
    from_return_ms: float
    from_send_ms: float
    revoke_ms: float  # the revoke call itself, through process 1
    polls: int  # requests process 2 answered during the trial


class _Poller(threading.Thread):
    """Polls ``url`` with the session's credentials until the first 401; notes its arrival."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes) -> None:
        super().__init__(name="revocation-poller", daemon=True)
        self.host, self.port = _host_port(url)
        self.headers = {**headers, "Content-Type": "application/json"}
        self.body = body
        self.allowed = threading.Event()  # it has seen the session allowed at least once
        self.denied_at: float | None = None
        self.detail = ""
        self.polls = 0
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            while not self.stop.is_set():
                connection.request("POST", "/v1/authorize", body=self.body, headers=self.headers)
                response = connection.getresponse()
                payload = response.read()
                arrived = time.perf_counter()
                self.polls += 1
                if response.status == 401:
                    self.denied_at = arrived
                    self.detail = json.loads(payload).get("detail", "")
                    return
                if response.status != 200 or not json.loads(payload).get("allowed"):
                    self.error = f"{response.status} {payload[:300]!r}"
                    return
                self.allowed.set()
        except (OSError, http.client.HTTPException) as error:
            self.error = repr(error)
        finally:
            connection.close()


def bench_revocation(url1: str, url2: str, *, trials: int) -> list[Trial]:
    first, second = Api(url1), Api(url2)
    revoker = http.client.HTTPConnection(*_host_port(url1), timeout=30)
    try:
        parties = open_parties(first)
        owner = parties.owner
        scope = restart_scope(owner)
        request = {
            "action": "ecs:RebootInstance",
            "resource": f"acs:ecs:cn-hangzhou:{owner}:instance/i-bench",
        }
        body = json.dumps(request).encode()
        out: list[Trial] = []
        for n in range(1, trials + 1):
            entrustment_id, credentials, issued_at = contract_session(
                first, parties, scope=scope, delegated=scope, session_policy=None, n=n
            )
            auth = _session_auth(credentials)
            # process 2 has applied the session (Min-Position: it waits before authenticating;
            # the body's min_position is read only after), and allows it
            answer = second.call(
                "POST",
                "/v1/authorize",
                auth["Authorization"],
                request,
                **{"X-Security-Token": auth["X-Security-Token"], "Min-Position": str(issued_at)},
            )
            if not answer["allowed"]:
                raise RuntimeError(f"process 2 does not allow the session: {answer}")
            poller = _Poller(url2, auth, body)
            poller.start()
            if not poller.allowed.wait(5):
                poller.stop.set()
                raise RuntimeError(f"the poller saw no answer from process 2: {poller.error}")
            path = f"/v1/accounts/{owner}/entrustments/{entrustment_id}/revoke"
            headers = {"Authorization": parties.owner_root, "Content-Type": "application/json"}
            sent = time.perf_counter()
            revoker.request("POST", path, body=b'{"reason": "bench"}', headers=headers)
            response = revoker.getresponse()
            payload = response.read()
            returned = time.perf_counter()
            if response.status != 200:
                poller.stop.set()
                raise RuntimeError(f"revoke: {response.status} {payload[:300]!r}")
            poller.join(10)
            if poller.is_alive() or poller.denied_at is None:
                poller.stop.set()
                raise RuntimeError(f"process 2 never refused the session: {poller.error}")
            if "revoked" not in poller.detail:
                raise RuntimeError(f"process 2 refused for another reason: {poller.detail}")
            out.append(
                Trial(
                    (poller.denied_at - returned) * 1000,
                    (poller.denied_at - sent) * 1000,
                    (returned - sent) * 1000,
                    poller.polls,
                )
            )
        return out
    finally:
        revoker.close()
        first.close()
        second.close()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


# -- the report -------------------------------------------------------------------------------


def report_revocation(trials: list[Trial], poll_interval: str) -> list[str]:
    def row(label: str, values: list[float]) -> str:
        ordered = sorted(values)
        return (
            f"| {label} | {len(ordered)} | {percentile(ordered, 0.50):.1f} "
            f"| {percentile(ordered, 0.95):.1f} | {percentile(ordered, 0.99):.1f} "
            f"| {ordered[-1]:.1f} |"
        )

    from_return = sorted(t.from_return_ms for t in trials)
    p99 = percentile(from_return, 0.99)
    record(
        "revocation → first 401 on a second process, p99 from the return",
        f"{p99:.1f} ms (p50 {percentile(from_return, 0.50):.1f} ms, {len(trials)} trials)",
        f"≤ {REVOCATION_P99_TARGET_MS:g} ms",
        p99 <= REVOCATION_P99_TARGET_MS,
        source=SOURCE,
    )
    return [
        "### (b) Revocation to denial across two API processes — PostgreSQL",
        "",
        "Each trial: a fresh contract, delegation and session through process 1; process 2 "
        "polled back to back with the session's credentials; the entrustment revoked through "
        "process 1; delay = arrival of process 2's first 401 minus the revoke call's return "
        f"(or send). Follower poll interval: {poll_interval}.",
        "",
        "| delay measured from | trials | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
        row("the revoke call's return", [t.from_return_ms for t in trials]),
        row("the revoke call's send", [t.from_send_ms for t in trials]),
        row("(the revoke call itself, process 1)", [t.revoke_ms for t in trials]),
        "",
        f"p99 from the return: **{p99:.1f} ms** (target ≤ {REVOCATION_P99_TARGET_MS:g} ms: "
        f"{mark(p99 <= REVOCATION_P99_TARGET_MS)}); process 2 answered a median of "
        f"{median([float(t.polls) for t in trials]):.0f} polls per trial.",
    ]


def _concurrencies(value: str) -> tuple[int, ...]:
    """``--concurrencies 32,1``: positive integers."""
    chosen = tuple(int(v) for v in value.split(",") if v.strip())
    if not chosen or min(chosen) < 1:
        raise argparse.ArgumentTypeError("positive integers, comma-separated")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.entrustments", description=__doc__)
    add_run_options(parser)
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="revocations measured in part b (default 200; 50 with --quick)",
    )
    add_postgres_option(parser)
    add_generator_options(parser, purpose="HTTP load generator for part a2")
    add_parts_option(parser, PARTS)
    parser.add_argument(
        "--concurrencies",
        type=_concurrencies,
        default=AUTHORIZE_CONCURRENCIES,
        help="concurrencies of the authorize comparison, comma-separated (default 32,1)",
    )
    args = parser.parse_args(argv)
    parts = chosen_parts(parser, args.parts, PARTS)
    # A quick run may go down to one round and 10 trials (``python -m tests.bench --quick``).
    rounds = max(1 if args.quick else 3, args.rounds)
    duration, warmup = (2.0, 1.0) if args.quick else (5.0, 1.0)
    batches = 40 if args.quick else 150
    trials = max(10 if args.quick else 50, args.trials or (50 if args.quick else 200))
    wrk = find_wrk(args.generator)
    started = time.monotonic()
    load = load_average()
    notes: list[str] = []
    sections: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="mandate-bench-entrustments-") as tmp:
        workdir = Path(tmp)
        if "a1" in parts:
            in_process = bench_in_process(workdir, rounds=rounds, batches=batches)
            sections.append(
                in_process_table(
                    in_process,
                    part="a1",
                    rounds=rounds,
                    sides=("direct", "chain"),
                    target=LATENCY_RATIO_TARGET,
                    untargeted=lambda label: "only" in label,  # authentication alone
                    source=SOURCE,
                )
            )
        if "a2" in parts:
            plan = LoadPlan(rounds, duration, warmup, wrk, args.client_processes)
            sections.append(
                authorize_comparison(
                    workdir,
                    set_up_authorize,
                    plan,
                    part="a2",
                    sides=("direct", "chain"),
                    target=LATENCY_RATIO_TARGET,
                    concurrencies=args.concurrencies,
                    source=SOURCE,
                )
            )
        if "b" in parts:
            try:
                with (
                    postgres_schema(args.postgres_dsn, SCHEMA_PREFIX) as database_url,
                    mandate_servers(
                        workdir / "pg", database_url, count=2, migrate=True, env=SHARED_KEYS
                    ) as (url1, url2),
                ):
                    revocations = bench_revocation(url1, url2, trials=trials)
                interval = os.environ.get("MANDATE_POLL_INTERVAL", "0.05 s (the default)")
                sections.append(report_revocation(revocations, interval))
            except psycopg.OperationalError as error:
                notes.append(f"Part b skipped: PostgreSQL did not answer ({error}).")
    elapsed = time.monotonic() - started
    header = [
        f"## Mandate entrustments benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Command: `python -m tests.bench.entrustments{' --quick' if args.quick else ''}`. "
        f"Code: {code_version()}. Machine: {machine()}; load before the run {load}. HTTP "
        "load generators and servers share these cores. "
        f"HTTP runs: {duration:.0f} s measured after a {warmup:.0f} s warm-up, {rounds} "
        f"alternating rounds; in process: {rounds} rounds x {batches} batches of ~2 ms; "
        f"revocations: {trials} trials. Total {elapsed:.0f} s.",
        "",
    ]
    print_report(header, sections, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
