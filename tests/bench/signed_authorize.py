"""What an enforcement point pays for never holding its clients' secrets: ``POST
/v1/authorize`` with the client's signed request against the same call with its credentials.

Run ``python -m tests.bench.signed_authorize`` (``--quick`` for a short run). It prints
markdown tables.

``python -m mandate.api.cli serve`` runs in a subprocess on a fresh SQLite store, with the
secret lookup the server has (sealed secrets, unsealed to verify). Through its API: an
account, a role allowed ``oss:GetObject`` on ``media/app/*``, a user who assumes it with a
session policy narrowing that to ``media/app/alice/*``, and a ``gateway`` user allowed
``ram:Authorize`` (the enforcement point, authenticated with Basic). ``POST /v1/authorize``
then decides the same request for the same session, three ways:

- ``credentials``: the session's id, secret and token in the body (the old form, for trusted
  in-process callers; the secret is checked against its keyed hash, as Basic's is): the
  baseline, what "Basic" costs;
- ``signed V1``: an oss2 ``StsAuth`` V1 header-signed ``GET`` as the client sent it;
- ``signed V4``: the same signed with ``OSS4-HMAC-SHA256`` (region ``cn-hangzhou``).

Each signed body is one request signed once and sent over and over: OSS signatures carry
no nonce, so the server accepts a replay within the 15-minute window, as OSS does (the run
is far shorter). The load generator is ``wrk`` when on ``PATH``, else Python's; the sides
alternate round by round. Ratios are signed / credentials of p50 latency and of req/s,
median of the rounds' ratios; the target (issue 13) is p50 ≤ 1.2x.

Part 2, the literal "signed vs Basic": the session asks for itself (self form), with Basic
(+ ``X-Security-Token``) or an ``ACS3-HMAC-SHA256`` header. A V3 nonce is accepted once, so
no static load can replay it: one Python ``http.client`` connection sends the calls one at a
time, each V3 call signed anew by tea-openapi's signer before its clock starts; the figure
is the median round trip, and the ratio ACS3 / Basic (target ≤ 1.2x); the two take turns
every ``BLOCK`` calls, so a busy neighbour weighs on both alike. Beside it, the
server's own CPU time per call (``/proc/<pid>/task/*/schedstat`` of its event loop and
request-log threads, on Linux):
what each side costs the server, which other processes on a busy machine move far less than
a round trip.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.bench.harness import (
    Api,
    LoadPlan,
    LoadResult,
    Target,
    alternating,
    basic,
    code_version,
    find_wrk,
    format_ratios,
    load_average,
    machine,
    mark,
    median,
    ratios,
    sqlite_server,
)
from tests.bench.summary import record

SOURCE = "signed_authorize"
TARGET = 1.2
BLOCK = 100
"""Part 2's calls per turn: each side's turn is this many calls, then the other's."""
BUCKET = "media"
REGION = "cn-hangzhou"
OBJECT = "app/alice/cat.jpg"
BASELINE = "credentials"
SIGNED = ("signed V1", "signed V4")


def _statement(action: Any, resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def set_up(url: str) -> tuple[dict[str, Target], dict[str, str], bytes]:
    """The account, role, session and gateway, made through the API: the three targets
    (label -> target), checked to be answered Allow before anything is timed; the session's
    credentials and the self-form body it asks with (part 2)."""
    import oss2
    from oss2.http import Request

    api = Api(url)
    try:
        account_id, root = api.open_account("Bench")
        base = f"/v1/accounts/{account_id}"
        objects = _statement(["oss:GetObject"], f"acs:oss:*:*:{BUCKET}/app/*")
        document = {"Version": "1", "Statement": [objects]}
        api.call(
            "POST", f"{base}/policies", root, {"policy_name": "App", "policy_document": document}
        )
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
                }
            ],
        }
        role = {"role_name": "app", "assume_role_policy_document": trust}
        api.call("POST", f"{base}/roles", root, role)
        api.call("PUT", f"{base}/roles/app/policies/Custom/App", root)
        keys: dict[str, str] = {}
        for user in ("phone", "gateway"):
            api.call("POST", f"{base}/users", root, {"user_name": user})
            issued = api.call("POST", f"{base}/users/{user}/access-keys", root)
            keys[user] = basic(issued["access_key_id"], issued["access_key_secret"])
        api.call("PUT", f"{base}/users/phone/policies/System/AliyunSTSAssumeRoleAccess", root)
        asks = {"Version": "1", "Statement": [_statement("ram:Authorize", "*")]}
        api.call("POST", f"{base}/policies", root, {"policy_name": "Asks", "policy_document": asks})
        api.call("PUT", f"{base}/users/gateway/policies/Custom/Asks", root)
        narrowed = _statement(["oss:GetObject"], f"acs:oss:*:*:{BUCKET}/app/alice/*")
        assumed = api.call(
            "POST",
            "/v1/sts/assume-role",
            keys["phone"],
            {
                "role_arn": f"acs:ram::{account_id}:role/app",
                "role_session_name": "alice",
                "policy": {"Version": "1", "Statement": [narrowed]},
            },
        )
        session = assumed["credentials"]
        ask = {
            "action": "oss:GetObject",
            "resource": f"acs:oss:{REGION}:{account_id}:{BUCKET}/{OBJECT}",
        }

        def signed(version: str) -> dict[str, Any]:
            auth = oss2.StsAuth(
                session["access_key_id"],
                session["access_key_secret"],
                session["security_token"],
                auth_version=version,
            )
            request = Request(
                "GET",
                f"https://{BUCKET}.oss-{REGION}.aliyuncs.com/{OBJECT}",
                params={},
                headers={},
                region=REGION,
                product="oss",
            )
            auth._sign_request(request, BUCKET, OBJECT)
            headers = {k: v for k, v in request.headers.items() if v is not None}
            body: dict[str, Any] = {"method": "GET", "bucket": BUCKET, "key": OBJECT}
            body["headers"] = headers  # an object: no header repeats
            if version == "v4":
                body["region"] = REGION
            return body

        client = {
            "access_key_id": session["access_key_id"],
            "access_key_secret": session["access_key_secret"],
            "security_token": session["security_token"],
        }
        bodies = {
            BASELINE: {**ask, "credentials": client},
            SIGNED[0]: {**ask, "signed": signed("v1")},
            SIGNED[1]: {**ask, "signed": signed("v4")},
        }
        headers = {"Authorization": keys["gateway"], "Content-Type": "application/json"}
        targets: dict[str, Target] = {}
        for label, body in bodies.items():
            if label != BASELINE:
                assert session["access_key_secret"] not in json.dumps(body)
            answer = api.call("POST", "/v1/authorize", keys["gateway"], body)
            if answer["decision"] != "Allow":
                raise RuntimeError(f"{label}: unexpected answer {answer}")
            data = json.dumps(body).encode()
            targets[label] = Target("POST", "/v1/authorize", data, headers)
        return targets, session, json.dumps(ask).encode()
    finally:
        api.close()


def drive(
    url: str, workdir: Path, targets: dict[str, Target], plan: LoadPlan, concurrencies: list[int]
) -> dict[int, dict[str, list[LoadResult]]]:
    """Every target at each concurrency, the order alternating round by round."""
    results: dict[int, dict[str, list[LoadResult]]] = {}
    for concurrency in concurrencies:
        runs: dict[str, list[LoadResult]] = {label: [] for label in targets}
        results[concurrency] = runs
        for round_ in range(plan.rounds):
            for label in alternating(round_, list(targets)):
                runs[label].append(
                    plan.load(url, label, targets[label], concurrency=concurrency, workdir=workdir)
                )
    return results


def tables(results: dict[int, dict[str, list[LoadResult]]], generator: str) -> list[str]:
    out = [
        "### `POST /v1/authorize` for an enforcement point: the client's signed request vs "
        "its credentials — HTTP, SQLite store",
        "",
        f"Load generator: {generator}. req/s, p50, p99: medians over the rounds.",
        "",
        "| body | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for concurrency, runs in results.items():
        for label, rs in runs.items():
            out.append(
                f"| {label} | {concurrency} | {median([r.requests_per_s for r in rs]):,.0f} "
                f"| {median([r.p50_ms for r in rs]):.3f} | {median([r.p99_ms for r in rs]):.3f} "
                f"| {sum(r.errors for r in rs)} |"
            )
    out += [
        "",
        f"Ratios: signed / {BASELINE}, median of the rounds' ratios (latency: lower is better).",
        "",
        f"| signed | concurrency | p50 ratio (rounds) | p99 | req/s | target: p50 ≤ {TARGET:g}x |",
        "|---|---:|---|---|---|---|",
    ]
    for concurrency, runs in results.items():
        base = runs[BASELINE]
        for label in SIGNED:
            rs = runs[label]
            p50 = ratios([r.p50_ms for r in rs], [r.p50_ms for r in base])
            p99 = ratios([r.p99_ms for r in rs], [r.p99_ms for r in base])
            rate = ratios([r.requests_per_s for r in rs], [r.requests_per_s for r in base])
            ok = median(p50) <= TARGET
            out.append(
                f"| {label} | {concurrency} | **{median(p50):.2f}** ({format_ratios(p50)}) "
                f"| {median(p99):.2f} | {median(rate):.2f} | {mark(ok)} |"
            )
            record(
                f"`POST /v1/authorize` p50, concurrency {concurrency}: {label} / {BASELINE}",
                f"{median(p50):.2f} ({median([r.p50_ms for r in base]):.2f} → "
                f"{median([r.p50_ms for r in rs]):.2f} ms)",
                f"≤ {TARGET:g}",
                ok,
                source=SOURCE,
            )
    return out


def acs3_headers(host: str, session: dict[str, str], body: bytes) -> dict[str, str]:
    """A fresh ``ACS3-HMAC-SHA256`` signature (a new nonce) by tea-openapi's own signer."""
    from types import SimpleNamespace

    from alibabacloud_tea_openapi.utils import Utils

    headers = {
        "host": host,
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        "content-type": "application/json",
        "x-acs-security-token": session["security_token"],
    }
    request = SimpleNamespace(method="POST", pathname="/v1/authorize", query={}, headers=headers)
    headers["authorization"] = Utils.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        headers["x-acs-content-sha256"],
        session["access_key_id"],
        session["access_key_secret"],
    )
    return headers


def server_pid(port: int) -> int | None:
    """The pid of this process's child serving on ``port`` (``serve --port <port>``), or None
    where ``/proc`` does not say."""
    wanted = f"serve\0--port\0{port}\0".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if wanted in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def cpu_ns(pid: int | None) -> int | None:
    """CPU time the server ``pid`` has spent on requests so far (ns; None: unknown): its main
    thread (the event loop) and its request-log writer; not the watchers that poll on a
    timer, whose time grows with the wall clock rather than with the calls."""
    if pid is None:
        return None
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            name = (task / "comm").read_text().strip()
            if task.name == str(pid) or name.startswith("mandate-request"):
                total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def self_form(
    url: str, session: dict[str, str], body: bytes, *, rounds: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Part 2: the session asks ``POST /v1/authorize`` (self form) for itself, with Basic
    (+ ``X-Security-Token``) or an ``ACS3-HMAC-SHA256`` signature, one keep-alive connection,
    one call at a time. Each V3 call is signed anew (a nonce is accepted once) *before* its
    clock starts, so only the round trip is timed. Within a round the two sides take turns
    every ``BLOCK`` calls (the order alternating block by block), so a neighbour's load on a
    shared machine falls on both alike; ``calls // 10`` calls of each side warm up first.
    Label -> each round's median µs, and label -> each round's server CPU µs per call (empty
    where ``/proc`` cannot tell)."""
    split = urlsplit(url)
    pid = server_pid(split.port or 0)
    host = f"{split.hostname}:{split.port}"
    plain = {
        "Authorization": basic(session["access_key_id"], session["access_key_secret"]),
        "X-Security-Token": session["security_token"],
        "Content-Type": "application/json",
    }
    sides = {"Basic": lambda: plain, "ACS3-HMAC-SHA256": lambda: acs3_headers(host, session, body)}
    out: dict[str, list[float]] = {label: [] for label in sides}
    cpu: dict[str, list[float]] = {label: [] for label in sides}
    connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)

    def call(label: str) -> float:
        headers = sides[label]()
        started = time.perf_counter_ns()
        connection.request("POST", "/v1/authorize", body, headers)
        response = connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter_ns() - started
        if response.status != 200:
            raise RuntimeError(f"{label}: {response.status} {answer[:300]!r}")
        return elapsed / 1000

    try:
        for round_ in range(rounds):
            for label in sides:
                for _ in range(calls // 10):
                    call(label)
            times: dict[str, list[float]] = {label: [] for label in sides}
            spent = dict.fromkeys(sides, 0)
            known = pid is not None
            for block in range(max(1, calls // BLOCK)):
                for label in alternating(round_ + block, list(sides)):
                    before = cpu_ns(pid)
                    times[label] += [call(label) for _ in range(BLOCK)]
                    after = cpu_ns(pid)
                    if before is None or after is None:
                        known = False
                    else:
                        spent[label] += after - before
            for label in sides:
                out[label].append(statistics.median(times[label]))
                if known:
                    cpu[label].append(spent[label] / 1000 / len(times[label]))
    finally:
        connection.close()
    return out, cpu


def self_form_table(
    medians: dict[str, list[float]], cpu: dict[str, list[float]], calls: int
) -> list[str]:
    base, signed = medians["Basic"], medians["ACS3-HMAC-SHA256"]
    rounds_ratios = ratios(signed, base)
    ratio = median(rounds_ratios)
    record(
        "`POST /v1/authorize` self form, one client: ACS3-HMAC-SHA256 / Basic (median latency)",
        f"{ratio:.2f} ({median(base):.0f} → {median(signed):.0f} µs)",
        f"≤ {TARGET:g}",
        ratio <= TARGET,
        source=SOURCE,
    )
    cpu_lines: list[str] = []
    if cpu["Basic"] and cpu["ACS3-HMAC-SHA256"]:
        cpu_base, cpu_signed = cpu["Basic"], cpu["ACS3-HMAC-SHA256"]
        cpu_ratio = median(ratios(cpu_signed, cpu_base))
        record(
            "`POST /v1/authorize` self form: server CPU per call, ACS3-HMAC-SHA256 / Basic",
            f"{cpu_ratio:.2f} ({median(cpu_base):.0f} → {median(cpu_signed):.0f} µs)",
            f"≤ {TARGET:g}",
            cpu_ratio <= TARGET,
            source=SOURCE,
        )
        cpu_lines = [
            "",
            "Server CPU µs per call (event loop + request-log threads, the timed calls of each "
            "round): Basic "
            f"{median(cpu_base):.0f} ({format_ratios(cpu_base)}), ACS3 {median(cpu_signed):.0f} "
            f"({format_ratios(cpu_signed)}); ACS3 / Basic **{cpu_ratio:.2f}** "
            f"({format_ratios(ratios(cpu_signed, cpu_base))}).",
        ]
    return [
        "",
        "### The session asking for itself (self form): `ACS3-HMAC-SHA256` vs Basic — HTTP, one "
        "client",
        "",
        f"One keep-alive `http.client` connection, one call at a time, {calls} timed calls per "
        f"side and round, the sides taking turns every {BLOCK} calls (signing happens before "
        "the clock starts); median µs per round trip, median over the rounds.",
        "",
        "| authentication | median µs (rounds) |",
        "|---|---|",
        f"| Basic + X-Security-Token | {median(base):.0f} ({format_ratios(base)}) |",
        f"| ACS3-HMAC-SHA256 + x-acs-security-token | {median(signed):.0f} "
        f"({format_ratios(signed)}) |",
        "",
        f"ACS3 / Basic: **{ratio:.2f}** ({format_ratios(rounds_ratios)}); target ≤ {TARGET:g}x "
        f"{mark(ratio <= TARGET)}",
        *cpu_lines,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.signed_authorize", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about 20 s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--concurrencies",
        type=lambda text: [int(c) for c in text.split(",")],
        default=None,
        help="comma-separated (default 1,32; 32 with --quick)",
    )
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto", help="load generator"
    )
    parser.add_argument("--client-processes", type=int, default=4, help="Python generator")
    parser.add_argument(
        "--self-form-only", action="store_true", help="part 2 only (ACS3 vs Basic, one client)"
    )
    args = parser.parse_args(argv)
    rounds = 1 if args.quick and args.rounds == 3 else args.rounds
    duration, warmup = (2.0, 1.0) if args.quick else (6.0, 2.0)
    concurrencies = args.concurrencies or ([32] if args.quick else [1, 32])
    plan = LoadPlan(rounds, duration, warmup, find_wrk(args.generator), args.client_processes)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mandate-bench-") as tmp:
        workdir = Path(tmp)
        with sqlite_server(workdir) as url:
            targets, session, ask = set_up(url)
            only_self = args.self_form_only
            results = {} if only_self else drive(url, workdir, targets, plan, concurrencies)
            calls = 1000 if args.quick else 4000
            own, cpu = self_form(url, session, ask, rounds=rounds, calls=calls)
    print(f"## Signed authorize{' (quick)' if args.quick else ''}\n")
    print(f"{machine()}; code {code_version()}; load {load_average()}.\n")
    if results:
        print("\n".join(tables(results, plan.describe())))
    print("\n".join(self_form_table(own, cpu, calls)))
    print(f"\n{time.monotonic() - started:.0f} s in all.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
