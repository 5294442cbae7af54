"""What STS costs: AssumeRole's write rate, and deciding for session credentials.

Run ``python -m tests.bench.sts`` (about 2.5 minutes; ``--quick``: about 1.5; ``--parts``
picks parts). It prints a markdown table per part; every figure is a median, and every ratio
is the median of the ratios of alternating rounds (the machine is noisy: a slow spell hits
both sides of a round).

(1) AssumeRole over HTTP, on PostgreSQL. ``python -m api.cli migrate`` then ``serve`` run in
subprocesses on a schema ``mandate_bench_sts_<hex>`` made for the run and dropped at its end
(only that schema). An ``app-server`` RAM user holding the System policy
``AliyunSTSAssumeRoleAccess`` calls ``POST /v1/sts/assume-role`` for a role whose trust policy
names the account's root, with a small session policy and ``duration_seconds`` 900. Its rate is
compared with the plainest single-event write of the same API: ``PATCH …/users/{u}/access-keys
/{id}`` by the account root, setting an existing key Inactive or Active (one event,
``AccessKeyDisabled``/``AccessKeyEnabled``, on an existing ``User`` aggregate). Why that one:
creating a user or a group records two events (the name claim and the entity); the other
one-event commands on a user, group or policy (updating it, attaching a policy) read the same
three aggregates (account, name claim, entity) or more; revoking a session reads one, but works
once per session, which AssumeRole would have to make first. The root calls it because a root
skips the policy decision (an AssumeRole caller cannot be a root, so AssumeRole pays one).
A status that is already the wanted one writes nothing, so the wrk Lua script flips each key
in turn: the statuses are read through the API before every wrk run and the script sends each
key the opposite of what it holds, then back. The keys belong to many users (one key each,
split between wrk's threads), and each round has users of its own, because the ledger replays
an aggregate's whole history on every command (no snapshots, no cache): toggling one key
would make every call slower than the last, and later rounds slower than earlier ones. The
report says how long each user's history grows within a round. "events/call"
is the log head's advance over a measured run divided by the calls wrk completed in it (the
few calls in flight when wrk stops still commit, so a little above 1 is expected; well below
1 would mean writes that recorded nothing).

(2a) In process: a ``DecisionIndex`` fed by its ``LogFollower`` from a ``Ledger`` on a temporary
SQLite file. The AccessKey user is ``tests.bench.decide``'s (10 custom policies x 5 statements,
4 direct and 3 + 3 through two groups); the session is of a role holding the same 10 policies,
with a one-statement session policy. Timed per call: authentication alone
(``authenticate`` vs ``authenticate_session``: a repeat request checks the remembered
credential's secret hash and expiry; a session's first request — or the first after any event
that could change a session — also checks the token's MAC and walks the lineage), then
authentication + ``decide_for`` answered from the memo, then the same with the memo emptied
before each call (the evaluator runs over the cached compiled layers: identity layer vs role
layer + session layer). Batches of ~2 ms timed with ``time.perf_counter_ns`` (garbage
collection paused), AccessKey and STS alternating, rounds as for HTTP.

(2b) Over HTTP: ``POST /v1/authorize`` in its self form (the caller asks about itself) with
``Authorization: Basic <AccessKey>`` vs ``Basic <STS.…>`` + ``X-Security-Token``, at
concurrency 32 and 1, with ``wrk`` (else the Python load generator of ``tests.bench.harness``).
The server runs on SQLite: a decision never touches the store, and a SQLite server has no
PostgreSQL pool or projection traffic beside it. Client and server share the machine's cores,
so rates are a floor; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from mandate.domain.policy.evaluation import AccessRequest
from tests.bench.decide import (
    ACTION,
    POLICY_NAMES,
    create_principal,
    resource,
    write_principal,
)
from tests.bench.harness import (
    Api,
    KeyAndSession,
    LoadPlan,
    LoadResult,
    PairedTimings,
    Target,
    add_generator_options,
    add_parts_option,
    add_postgres_option,
    add_run_options,
    alternating,
    authorize_comparison,
    basic,
    chosen_parts,
    code_version,
    find_wrk,
    format_ratios,
    in_process_store,
    in_process_table,
    load_average,
    lua_string,
    machine,
    mandate_servers,
    mark,
    median,
    parse_wrk,
    plain_context,
    postgres_schema,
    print_report,
    ratios,
    run_wrk,
    static_wrk_script,
    time_pairs,
    wrk_script_path,
)
from tests.bench.summary import record

ROLE_NAME = "bench-role"
APP_USER = "app-server"
SESSION_NAME = "app-server-1"
ASSUME_DURATION = 900  # what part 1 asks for
SESSION_DURATION = 3600  # the credentials of part 2 must outlive the run
ASSUME_RATIO_TARGET = 0.8  # AssumeRole rate / plainest write rate, at least
LATENCY_RATIO_TARGET = 1.2  # STS latency / AccessKey latency, at most
AUTHORIZE_CONCURRENCIES = (32, 1)
PARTS = ("1", "2a", "2b")
SOURCE = "sts"  # its rows in ``python -m tests.bench``'s summary
SCHEMA_PREFIX = "mandate_bench_sts_"  # part 1's throwaway schema, and a random suffix


def trust_policy(account_id: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }


def session_policy(account_id: str) -> dict[str, Any]:
    """Small, and it allows the benchmark's request (so the session's answer is Allow)."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:Get*", "oss:List*"],
                "Resource": f"acs:oss:*:{account_id}:bucket-7/*",
            }
        ],
    }


# -- (2a) in process ------------------------------------------------------------------------


def bench_in_process(workdir: Path, *, rounds: int, batches: int) -> PairedTimings:
    """AccessKey (first side) vs STS credentials (second side), path by path."""
    context = plain_context()
    with in_process_store(workdir) as (index, ledger, follower):
        account_id = ledger.open_account("Bench").account_id
        user_key = write_principal(ledger, follower, account_id)  # tests.bench.decide's
        # the role holds the same ten policies; the app server may assume it
        ledger.create_role(account_id, ROLE_NAME, trust_policy(account_id))
        for name in POLICY_NAMES:
            ledger.attach_policy(account_id, "role", ROLE_NAME, "Custom", name)
        ledger.create_user(account_id, APP_USER, None)
        app_key = ledger.create_access_key(account_id, APP_USER)
        ledger.attach_policy(account_id, "user", APP_USER, "System", "AliyunSTSAssumeRoleAccess")
        follower.catch_up()
        app = index.authenticate(app_key.access_key_id, app_key.access_key_secret)
        issued = ledger.assume_role(
            index.assuming_caller(app),
            role_arn=f"acs:ram::{account_id}:role/{ROLE_NAME}",
            role_session_name=SESSION_NAME,
            duration_seconds=SESSION_DURATION,
            policy=session_policy(account_id),
            context=context,
        )

    request = AccessRequest.make(ACTION, resource(account_id), context)
    compared = KeyAndSession(index, request, user_key, issued)
    ak_answer, session, sts_answer = compared.answers()
    assert session.subject is not None
    layers = ", ".join(
        f"{len(s.policies)} {'policy' if len(s.policies) == 1 else 'policies'}"
        for s in session.subject.layers
    )
    shape = (
        f"AccessKey user: 10 policies x 5 statements (4 direct, 3 + 3 through 2 groups); "
        f"session: role layer + session layer ({layers}); request `{ACTION}` → "
        f"{ak_answer.decision.kind.value} / {sts_answer.decision.kind.value}"
    )
    paths = compared.paths("nothing remembered")
    return time_pairs(shape, paths, rounds=rounds, batches=batches)


# -- set-up over HTTP -----------------------------------------------------------------------


@dataclass
class Principals:
    """What the set-up made through the API (``Authorization`` header values)."""

    account_id: str
    root: str
    user: str  # the AccessKey user of tests.bench.decide
    app: str  # app-server: AliyunSTSAssumeRoleAccess only
    sts: str  # Basic for the session's STS.… key
    security_token: str
    toggle_keys: list[tuple[str, str]]  # (user name, access key id)


def set_up(api: Api, *, toggle_users: int) -> Principals:
    """tests.bench.decide's principal, the role, app-server, a session, the toggled keys."""
    call = api.call
    account_id, root = api.open_account("Bench")
    base = f"/v1/accounts/{account_id}"
    user = create_principal(api, account_id, root)

    role = {"role_name": ROLE_NAME, "assume_role_policy_document": trust_policy(account_id)}
    call("POST", f"{base}/roles", root, role)
    for name in POLICY_NAMES:
        call("PUT", f"{base}/roles/{ROLE_NAME}/policies/Custom/{name}", root)
    call("POST", f"{base}/users", root, {"user_name": APP_USER})
    app_key = call("POST", f"{base}/users/{APP_USER}/access-keys", root)
    call("PUT", f"{base}/users/{APP_USER}/policies/System/AliyunSTSAssumeRoleAccess", root)
    app = basic(app_key["access_key_id"], app_key["access_key_secret"])
    issued = call(
        "POST",
        "/v1/sts/assume-role",
        app,
        assume_role_body(account_id) | {"duration_seconds": SESSION_DURATION},
    )["credentials"]
    sts = basic(issued["access_key_id"], issued["access_key_secret"])

    def toggled_user(i: int) -> tuple[str, str]:
        name = f"toggle-{i:04d}"
        call("POST", f"{base}/users", root, {"user_name": name})
        created = call("POST", f"{base}/users/{name}/access-keys", root)
        return name, created["access_key_id"]

    with ThreadPoolExecutor(8) as pool:  # users are independent aggregates: no conflicts
        toggle_keys = list(pool.map(toggled_user, range(toggle_users)))

    principals = Principals(account_id, root, user, app, sts, issued["security_token"], toggle_keys)
    body = {"action": ACTION, "resource": resource(account_id)}
    for auth, extra in (
        (user, {}),
        (sts, {"X-Security-Token": principals.security_token}),
    ):
        answer = call("POST", "/v1/authorize", auth, body, **extra)
        if answer["decision"] != "Allow":
            raise RuntimeError(f"unexpected answer over HTTP: {answer}")
    return principals


def assume_role_body(account_id: str) -> dict[str, Any]:
    return {
        "role_arn": f"acs:ram::{account_id}:role/{ROLE_NAME}",
        "role_session_name": SESSION_NAME,
        "duration_seconds": ASSUME_DURATION,
        "policy": session_policy(account_id),
    }


# -- wrk with our own Lua scripts -----------------------------------------------------------


def _toggle_script(root: str, keys: list[tuple[str, str]], threads: int) -> str:
    """Each wrk thread flips its share of the keys in turn: opposite, back, opposite, …

    ``keys`` holds (path, current status). The two requests of each key are formatted once.
    """
    rows = ",\n".join(f"  {{{lua_string(path)}, {lua_string(status)}}}" for path, status in keys)
    return f"""wrk.method = "PATCH"
wrk.headers["Authorization"] = {lua_string(root)}
wrk.headers["Content-Type"] = "application/json"
local keys = {{
{rows}
}}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
local mine = {{}}
local i = 0
function init(args)
  for k = 1, #keys do
    if (k - 1) % {threads} == tid then
      local path, status = keys[k][1], keys[k][2]
      local off = wrk.format(nil, path, nil, '{{"status":"Inactive"}}')
      local on = wrk.format(nil, path, nil, '{{"status":"Active"}}')
      if status == "Active" then
        table.insert(mine, {{off, on}})
      else
        table.insert(mine, {{on, off}})
      end
    end
  end
end
function request()
  local n = #mine
  local k = i % n + 1
  local pass = math.floor(i / n)
  i = i + 1
  return mine[k][pass % 2 + 1]
end
"""


@dataclass(frozen=True)
class WriteRun:
    result: LoadResult
    calls: int
    events: int  # how far the log head moved over the measured run


def write_load(
    wrk: str,
    api: Api,
    label: str,
    path: str,
    script: Callable[[], str],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> WriteRun:
    """A warm-up wrk run, then a measured one; ``script`` is made afresh before each."""
    script_path = wrk_script_path(workdir, label)

    def run(seconds: float) -> tuple[str, int]:
        script_path.write_text(script())
        before = api.settled_head()
        url = str(api.client.base_url) + path
        output = run_wrk(wrk, script_path, url, concurrency=concurrency, seconds=seconds)
        return output, api.settled_head() - before

    run(warmup)
    output, events = run(duration)
    result, calls = parse_wrk(output, label, concurrency)
    return WriteRun(result, calls, events)


# -- (1) AssumeRole vs the plainest write, on PostgreSQL -------------------------------------


@dataclass
class Writes:
    toggle: list[WriteRun]
    assume: list[WriteRun]
    toggle_users: int
    concurrency: int


TOGGLE_LABEL = "PATCH …/access-keys/{id} (status flip, root)"
ASSUME_LABEL = "POST /v1/sts/assume-role (app-server)"


def bench_writes(
    wrk: str,
    url: str,
    workdir: Path,
    *,
    rounds: int,
    duration: float,
    warmup: float,
    concurrency: int,
    toggle_users: int,
) -> Writes:
    api = Api(url)
    try:
        # Each round flips its own users' keys, so every round starts from the same
        # histories (two events per user) and no round inherits another's growth.
        who = set_up(api, toggle_users=toggle_users * rounds)
        base = f"/v1/accounts/{who.account_id}/users"
        paths = [(name, f"{base}/{name}/access-keys/{key}") for name, key in who.toggle_keys]

        def toggle_script(round_: int) -> Callable[[], str]:
            mine = paths[round_ * toggle_users : (round_ + 1) * toggle_users]

            def script() -> str:
                keys = []
                for name, path in mine:
                    listed = api.call("GET", f"{base}/{name}/access-keys", who.root)["items"]
                    keys.append((path, listed[0]["status"]))
                return _toggle_script(who.root, keys, min(2, concurrency))

            return script

        body = json.dumps(assume_role_body(who.account_id)).encode()
        assume = Target(
            "POST",
            "/v1/sts/assume-role",
            body,
            {"Authorization": who.app, "Content-Type": "application/json"},
        )
        result = Writes([], [], toggle_users, concurrency)
        for round_ in range(rounds):
            runs: list[tuple[str, str, Callable[[], str], list[WriteRun]]] = [
                (TOGGLE_LABEL, paths[0][1], toggle_script(round_), result.toggle),
                (ASSUME_LABEL, assume.path, lambda: static_wrk_script(assume), result.assume),
            ]
            for label, path, script, out in alternating(round_, runs):
                out.append(
                    write_load(
                        wrk,
                        api,
                        label,
                        path,
                        script,
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        workdir=workdir,
                    )
                )
        return result
    finally:
        api.close()


# -- (2b) authorize with an AccessKey vs STS credentials, over HTTP --------------------------

AK_LABEL = "POST /v1/authorize, Basic AccessKey"
STS_LABEL = "POST /v1/authorize, Basic STS.… + X-Security-Token"


def authorize_targets(url: str) -> dict[str, Target]:
    """The set-up through the API; ``POST /v1/authorize`` with the user's AccessKey, then with
    the session's STS credentials."""
    api = Api(url)
    try:
        who = set_up(api, toggle_users=0)
    finally:
        api.close()
    body = json.dumps({"action": ACTION, "resource": resource(who.account_id)}).encode()
    json_type = {"Content-Type": "application/json"}
    return {
        AK_LABEL: Target("POST", "/v1/authorize", body, {"Authorization": who.user, **json_type}),
        STS_LABEL: Target(
            "POST",
            "/v1/authorize",
            body,
            {"Authorization": who.sts, "X-Security-Token": who.security_token, **json_type},
        ),
    }


# -- the report -----------------------------------------------------------------------------


def report_writes(writes: Writes, rounds: int, duration: float, warmup: float) -> list[str]:
    out = [
        "### (1) AssumeRole vs the plainest single-event write — HTTP, PostgreSQL",
        "",
        f"wrk, 2 threads, {writes.concurrency} connections; {rounds} alternating rounds of "
        f"{duration:.0f} s per write, each after a {warmup:.0f} s warm-up. "
        "Baseline: the root flips an AccessKey's status (one event on an existing User "
        f"aggregate), cycling over {writes.toggle_users} users' keys per round.",
        "",
        "| write | calls/s | p50 ms | p99 ms | errors | events/call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, runs in ((TOGGLE_LABEL, writes.toggle), (ASSUME_LABEL, writes.assume)):
        events = [r.events / r.calls if r.calls else float("nan") for r in runs]
        out.append(
            f"| `{label}` | {median([r.result.requests_per_s for r in runs]):,.0f} "
            f"| {median([r.result.p50_ms for r in runs]):.2f} "
            f"| {median([r.result.p99_ms for r in runs]):.2f} "
            f"| {sum(r.result.errors for r in runs)} | {median(events):.2f} |"
        )
    rounds_ratios = ratios(
        [r.result.requests_per_s for r in writes.assume],
        [r.result.requests_per_s for r in writes.toggle],
    )
    ratio = median(rounds_ratios)
    record(
        "AssumeRole / AccessKey status flip, calls/s (PostgreSQL)",
        f"{ratio:.2f} ({median([r.result.requests_per_s for r in writes.assume]):,.0f} vs "
        f"{median([r.result.requests_per_s for r in writes.toggle]):,.0f} calls/s)",
        f"≥ {ASSUME_RATIO_TARGET:g}",
        ratio >= ASSUME_RATIO_TARGET,
        source=SOURCE,
    )
    # Every toggle call adds one event to one user's history (warm-ups included).
    toggles = median([r.calls for r in writes.toggle]) * (1 + warmup / duration)
    grown = 2 + toggles / max(1, writes.toggle_users)
    out += [
        "",
        "AssumeRole / status flip, calls/s, median of the rounds' ratios "
        f"({format_ratios(rounds_ratios)}): **{ratio:.2f}** (target ≥ {ASSUME_RATIO_TARGET:g}: "
        f"{mark(ratio >= ASSUME_RATIO_TARGET)})",
        f"In a round, each toggled user's history grows from 2 to about {grown:.0f} events "
        "(the ledger replays it on every command); each round has its own users.",
    ]
    return out


def _concurrencies(value: str) -> tuple[int, ...]:
    """``--concurrencies 32,1``: positive integers."""
    chosen = tuple(int(v) for v in value.split(",") if v.strip())
    if not chosen or min(chosen) < 1:
        raise argparse.ArgumentTypeError("positive integers, comma-separated")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.sts", description=__doc__)
    add_run_options(parser)
    add_postgres_option(parser)
    parser.add_argument(
        "--write-concurrency", type=int, default=16, help="wrk connections for part 1 (16)"
    )
    parser.add_argument(
        "--toggle-users",
        type=int,
        default=None,
        help="users whose keys the baseline flips, per round (default 256; 64 with --quick)",
    )
    add_generator_options(parser, purpose="HTTP load generator for part 2b (part 1 needs wrk)")
    add_parts_option(parser, PARTS)
    parser.add_argument(
        "--concurrencies",
        type=_concurrencies,
        default=AUTHORIZE_CONCURRENCIES,
        help="concurrencies of the authorize comparison, comma-separated (default 32,1)",
    )
    args = parser.parse_args(argv)
    parts = chosen_parts(parser, args.parts, PARTS)
    rounds = max(1, args.rounds)
    duration, warmup = (2.0, 1.0) if args.quick else (6.0, 1.0)
    batches = 40 if args.quick else 150
    toggle_users = args.toggle_users or (64 if args.quick else 256)
    wrk = find_wrk(args.generator)
    started = time.monotonic()
    load = load_average()
    stores = []
    if "1" in parts:
        host = urlsplit(args.postgres_dsn).hostname
        stores.append(f"(1) PostgreSQL at {host}, a throwaway schema")
    if "2a" in parts:
        stores.append("(2a) SQLite file, in process")
    if "2b" in parts:
        stores.append("(2b) SQLite file")
    notes: list[str] = []
    sections: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="mandate-bench-sts-") as tmp:
        workdir = Path(tmp)
        if "2a" in parts:
            in_process = bench_in_process(workdir, rounds=rounds, batches=batches)
            sections.append(
                in_process_table(
                    in_process,
                    part="2a",
                    rounds=rounds,
                    sides=("AccessKey", "STS"),
                    source=SOURCE,
                )
            )
        if "1" in parts:
            if shutil.which("wrk") is None:
                notes.append("Part 1 skipped: it needs wrk on PATH (its baseline flips keys).")
            else:
                try:
                    with (
                        postgres_schema(args.postgres_dsn, SCHEMA_PREFIX) as database_url,
                        mandate_servers(workdir / "pg", database_url, migrate=True) as (url,),
                    ):
                        writes = bench_writes(
                            shutil.which("wrk") or "wrk",
                            url,
                            workdir,
                            rounds=rounds,
                            duration=duration,
                            warmup=warmup,
                            concurrency=args.write_concurrency,
                            toggle_users=toggle_users,
                        )
                    sections.append(report_writes(writes, rounds, duration, warmup))
                except psycopg.OperationalError as error:
                    notes.append(f"Part 1 skipped: PostgreSQL did not answer ({error}).")
        if "2b" in parts:
            plan = LoadPlan(rounds, duration, warmup, wrk, args.client_processes)
            sections.append(
                authorize_comparison(
                    workdir,
                    authorize_targets,
                    plan,
                    part="2b",
                    sides=("AccessKey", "STS"),
                    target=LATENCY_RATIO_TARGET,
                    concurrencies=args.concurrencies,
                    source=SOURCE,
                )
            )
    elapsed = time.monotonic() - started
    header = [
        f"## Mandate STS benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Code: {code_version()}. "
        f"Machine: {machine()}; load before the run {load}. HTTP load generators and "
        f"servers share these cores. Stores: {'; '.join(stores)}. "
        f"HTTP runs: {duration:.0f} s measured after a {warmup:.0f} s warm-up, {rounds} "
        f"alternating rounds; in process: {rounds} rounds x {batches} batches of ~2 ms. "
        f"Total {elapsed:.0f} s.",
        "",
    ]
    print_report(header, sections, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
