"""Writes at the speed of the database: HTTP writes on PostgreSQL against raw INSERT+COMMIT.

Run ``python -m tests.bench.writes`` (``--quick``: shorter runs, for a look). It prints one
markdown table:

* **raw**: 32 psycopg connections (threads of this process) each doing single-row
  ``INSERT`` + ``COMMIT`` in a loop into a throwaway table shaped like the events table
  (``originator_id uuid, originator_version bigint, topic text, state bytea,
  notification_id bigserial``, the same primary key and notification index; a ~300-byte
  state), in a schema ``mandate_bench_writes_<hex>`` made for the run and dropped at its end.
  This is the denominator of every ratio: what the same database takes, measured in the
  same run.
* **HTTP**: ``python -m api.cli migrate``, then the configuration docker-compose.yml runs:
  ``serve --workers 2`` with the SQL projections in process (whichever process holds a
  copy's lease applies it); ``--workers`` and ``--projections runner`` (one ``mandate
  projections run`` beside servers that run none) change it, and the table's preamble says
  which was measured. ``POST …/users`` (create user: a name claim and a user, two events,
  one transaction) and ``POST /v1/sts/assume-role`` (one ``SessionIssued``) at 1, 8, 16 and
  32 concurrent clients: writes/s, p50/p99, conflicts (409) and other failures, and the
  ratio to raw. The load is wrk when it is on ``PATH`` (C, 2 threads: it leaves the cores
  to the server; a Lua script gives every request a body of its own and counts the answers
  by status), else a Python load loop (forked processes of keep-alive connections) that
  takes a good share of the 2 cores itself; ``--compare-generators`` adds the Python loop at
  32 clients beside wrk.
* **ceiling**: ``GET /healthz`` and ``GET /v1/sts/caller-identity`` (authenticated, answered
  from memory, nothing written) under the same wrk load at 32 clients: what the HTTP stack
  answers on this machine before a write costs anything, the bound on any write rate.
* **history**: an AccessKey status flip (``PATCH …/access-keys/{id}``, one client, one at a
  time) on a fresh user vs on a user with 1,600 events, and the create-user rate again once
  the log holds ``--history`` events (written in process by batched saves, then the server
  restarted so it catches up on them): the write path must not grow with history.

Every figure is measured on a machine whose cores the clients, the server and PostgreSQL
share (and, here, other people's work too): rates are floors; compare ratios in one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
from eventsourcing.domain import Aggregate
from psycopg import sql

from tests.bench.harness import (
    ADMIN_TOKEN,
    Api,
    Target,
    add_postgres_option,
    basic,
    code_version,
    find_wrk,
    load_average,
    lua_string,
    machine,
    mandate_servers,
    parse_wrk,
    percentile,
    postgres_schema,
    run_wrk,
    static_wrk_script,
    wrk_script_path,
)

SCHEMA_PREFIX = "mandate_bench_writes_"
CONCURRENCIES = (1, 8, 16, 32)
# --quick: the headline rows only (32 clients, and 16 for the p99), no history pass, no flips,
# one ceiling row: a look in well under a minute, its figures indicative.
QUICK_CONCURRENCIES = (16, 32)
RAW_CONNECTIONS = 32
FLIP_EVENTS = 1_600
P99_TARGET_MS = 50.0
RATIO_TARGET = 1.0
HISTORY_FLAT = 0.8  # the long log's write rate over the fresh one's, at least
SESSION_NAME = "bench-writes"
TAG = "@TAG@"


# -- raw INSERT+COMMIT ----------------------------------------------------------------------


def raw_insert_rate(dsn: str, schema: str, *, connections: int, duration: float) -> float:
    """Single-row INSERT+COMMITs per second from ``connections`` connections, one thread each."""
    table = sql.Identifier(schema, "raw_events")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
                " topic text, state bytea, notification_id bigserial,"
                " PRIMARY KEY (originator_id, originator_version))"
            ).format(table)
        )
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (notification_id ASC)").format(table))
    insert = sql.SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)"
    ).format(table)
    topic = "domain.identity.principals:User.Created"
    state = os.urandom(300)
    counts: list[int] = []
    start = threading.Barrier(connections + 1)
    stop_at: list[float] = [0.0]

    def client() -> None:
        done = 0
        with psycopg.connect(dsn) as conn:
            start.wait()
            while time.monotonic() < stop_at[0]:
                conn.execute(insert, (uuid.uuid4(), topic, state), prepare=True)
                conn.commit()
                done += 1
        counts.append(done)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.monotonic() + duration + 60  # until everyone is connected
    start.wait()
    began = time.monotonic()
    stop_at[0] = began + duration
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - began)


# -- the HTTP load loop -----------------------------------------------------------------------


@dataclass(frozen=True)
class WriteShape:
    """One kind of write: a path and headers, and the body of the n-th request of a client."""

    label: str
    method: str
    path: str
    headers: dict[str, str]
    body: str  # the body, where each request puts a unique tag of its own for TAG
    keyed: bool = False  # every request with an Idempotency-Key of its own (its tag)

    def body_for(self, tag: str) -> bytes:
        return self.body.replace(TAG, tag).encode()

    def headers_for(self, tag: str) -> dict[str, str]:
        return {**self.headers, "Idempotency-Key": tag} if self.keyed else self.headers


@dataclass(frozen=True)
class WriteRun:
    label: str
    concurrency: int
    writes_per_s: float
    p50_ms: float
    p99_ms: float
    conflicts: int
    failures: int
    server_cpu_ms: float = float("nan")  # CPU of the servers (and runner) per answer
    postgres_cpu_ms: float = float("nan")  # CPU of PostgreSQL's processes per answer


# -- CPU per answer ---------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds so far) of every process in /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        table[int(entry.name)] = (int(fields[1]), comm, cpu)
    return table


def cpu_now() -> tuple[float, float]:
    """CPU seconds so far of this run's servers (the live processes descended from this
    one, wrk aside) and of every PostgreSQL process (others' sessions too: an upper bound)."""
    table = _processes()
    me = os.getpid()

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = table[pid][0] if pid in table else 0
            if pid == me:
                return True
        return False

    servers = sum(
        cpu for pid, (_, comm, cpu) in table.items() if pid != me and comm != "wrk" and ours(pid)
    )
    postgres = sum(cpu for _, comm, cpu in table.values() if comm in ("postgres", "postmaster"))
    return servers, postgres


def _client(
    host: str,
    port: int,
    shape: WriteShape,
    tag: str,
    measure_from: int,
    stop_at: int,
    out: list[tuple[list[int], int, int]],
) -> None:
    latencies: list[int] = []
    conflicts = failures = n = 0
    connection = http.client.HTTPConnection(host, port, timeout=60)
    while True:
        started = time.monotonic_ns()
        if started >= stop_at:
            break
        n += 1
        try:
            connection.request(
                shape.method,
                shape.path,
                body=shape.body_for(f"{tag}-{n}"),
                headers=shape.headers_for(f"{tag}-{n}"),
            )
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
        finished = time.monotonic_ns()
        if started >= measure_from and finished <= stop_at:
            if status in (200, 201):
                latencies.append(finished - started)
            elif status == 409:
                conflicts += 1
            else:
                failures += 1
    connection.close()
    out.append((latencies, conflicts, failures))


def _client_process(
    host: str, port: int, shape: WriteShape, tags: list[str], measure_from: int, stop_at: int
) -> tuple[list[int], int, int]:
    out: list[tuple[list[int], int, int]] = []
    threads = [
        threading.Thread(target=_client, args=(host, port, shape, t, measure_from, stop_at, out))
        for t in tags
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (
        [x for part in out for x in part[0]],
        sum(part[1] for part in out),
        sum(part[2] for part in out),
    )


def write_load(
    url: str,
    shape: WriteShape,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    processes: int,
) -> WriteRun:
    """``concurrency`` clients (threads in up to ``processes`` forked processes), each sending
    one write at a time with a body of its own; ``duration`` seconds measured after ``warmup``."""
    host, port = url.removeprefix("http://").split(":")
    processes = max(1, min(processes, concurrency))
    run = uuid.uuid4().hex[:6]
    tags = [f"{run}-{c}" for c in range(concurrency)]
    groups = [tags[i::processes] for i in range(processes)]
    measure_from = time.monotonic_ns() + int((0.3 + warmup) * 1e9)
    stop_at = measure_from + int(duration * 1e9)
    args = [(host, int(port), shape, group, measure_from, stop_at) for group in groups]
    if processes == 1:
        parts = [_client_process(*args[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = pool.starmap(_client_process, args)
    latencies = sorted(x / 1e6 for part in parts for x in part[0])
    return WriteRun(
        shape.label,
        concurrency,
        len(latencies) / duration,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        sum(part[1] for part in parts),
        sum(part[2] for part in parts),
    )


# wrk's Lua: a body of its own for every request (the run's tag, the thread's number and a
# counter), and the answers counted by status, summed over the threads when the run is done.
_WRK_WRITES = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  n, ok, conflicts, failures = 0, 0, 0, 0
end
function request()
  n = n + 1
  local tag = RUN .. "-" .. tid .. "-" .. n
  local headers = nil
  if KEYED then
    headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["Idempotency-Key"] = tag
  end
  return wrk.format(nil, nil, headers, (string.gsub(BODY, "@TAG@", tag)))
end
function response(status, headers, body)
  if status == 200 or status == 201 then ok = ok + 1
  elseif status == 409 then conflicts = conflicts + 1
  else failures = failures + 1 end
end
function done(summary, latency, requests)
  local o, c, f = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); c = c + t:get("conflicts"); f = f + t:get("failures")
  end
  local errors = summary.errors
  f = f + errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format("ANSWERS ok=%d conflicts=%d failures=%d seconds=%.3f\\n",
    o, c, f, summary.duration / 1e6))
end
"""


def wrk_write_script(shape: WriteShape, run: str) -> str:
    """The Lua script for one wrk run of ``shape``, its bodies tagged ``run``-thread-n."""
    lines = [
        f"wrk.method = {lua_string(shape.method)}",
        *(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in shape.headers.items()),
        f"RUN = {lua_string(run)}",
        f"BODY = {lua_string(shape.body)}",
        f"KEYED = {'true' if shape.keyed else 'false'}",
    ]
    return "\n".join(lines) + _WRK_WRITES


def wrk_write_load(
    wrk: str,
    url: str,
    shape: WriteShape,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> WriteRun:
    """A ``warmup`` wrk run (none when 0), then ``duration`` seconds measured; every body
    distinct. The latencies are wrk's (over every answer, conflicts and failures included)."""
    script = workdir / "wrk-write.lua"
    run = uuid.uuid4().hex[:8]
    if warmup > 0:
        script.write_text(wrk_write_script(shape, f"w{run}"))
        run_wrk(wrk, script, url + shape.path, concurrency=concurrency, seconds=warmup)
    script.write_text(wrk_write_script(shape, f"m{run}"))
    before = cpu_now()
    output = run_wrk(wrk, script, url + shape.path, concurrency=concurrency, seconds=duration)
    after = cpu_now()
    result, _ = parse_wrk(output, shape.label, concurrency)
    answers = re.search(r"ANSWERS ok=(\d+) conflicts=(\d+) failures=(\d+) seconds=([\d.]+)", output)
    if answers is None:
        raise RuntimeError(f"wrk's report has no ANSWERS line:\n{output}")
    ok, conflicts, failures = (int(answers.group(i)) for i in (1, 2, 3))
    answered = max(1, ok + conflicts + failures)
    return WriteRun(
        shape.label,
        concurrency,
        ok / float(answers.group(4)),
        result.p50_ms,
        result.p99_ms,
        conflicts,
        failures,
        (after[0] - before[0]) * 1000 / answered,
        (after[1] - before[1]) * 1000 / answered,
    )


def wrk_read_load(
    wrk: str,
    url: str,
    label: str,
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> WriteRun:
    """A write-less request under the same wrk load: the stack's ceiling on this machine
    (after a ``warmup`` run, none when 0)."""
    script = wrk_script_path(workdir, label)
    script.write_text(static_wrk_script(target))
    if warmup > 0:
        run_wrk(wrk, script, url + target.path, concurrency=concurrency, seconds=warmup)
    before = cpu_now()
    output = run_wrk(wrk, script, url + target.path, concurrency=concurrency, seconds=duration)
    after = cpu_now()
    result, done = parse_wrk(output, label, concurrency)
    return WriteRun(
        label,
        concurrency,
        result.requests_per_s,
        result.p50_ms,
        result.p99_ms,
        0,
        result.errors,
        (after[0] - before[0]) * 1000 / max(1, done),
        (after[1] - before[1]) * 1000 / max(1, done),
    )


# -- the configuration ------------------------------------------------------------------------


def _environment(workdir: Path, database_url: str) -> dict[str, str]:
    """What ``mandate_servers`` gives its servers, for the other commands of a deployment."""
    return {
        **os.environ,
        "MANDATE_DATABASE_URL": database_url,
        "MANDATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MANDATE_STATE_DIR": str(workdir),
    }


def snapshot_index(workdir: Path, database_url: str) -> None:
    """``mandate index snapshot``: processes started on a long log load it and replay only
    the tail (replaying 100k events in each of 2 workers on 2 busy cores can take longer
    than the 30 s ``mandate_servers`` waits for them)."""
    subprocess.run(
        [sys.executable, "-m", "mandate.api.cli", "index", "snapshot"],
        env=_environment(workdir, database_url),
        check=True,
        capture_output=True,
    )


@contextmanager
def projection_runner(workdir: Path, database_url: str) -> Iterator[None]:
    """``python -m api.cli projections run`` on ``database_url`` beside the servers."""
    environment = _environment(workdir, database_url)
    with (workdir / "runner.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mandate.api.cli", "projections", "run"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def deployment(
    workdir: Path, url: str, *, workers: int, runner: bool, migrate: bool = False
) -> Iterator[str]:
    """``serve --workers N`` (one port), the projections in process or in a runner of their
    own (``MANDATE_RUN_PROJECTIONS=false`` on the servers); yield the URL."""
    env = {"MANDATE_RUN_PROJECTIONS": "false"} if runner else {}
    serve_args = ("--workers", str(workers)) if workers > 1 else ()
    with ExitStack() as stack:
        (server,) = stack.enter_context(
            mandate_servers(workdir, url, migrate=migrate, env=env, serve_args=serve_args)
        )
        if runner:
            stack.enter_context(projection_runner(workdir, url))
        yield server


# -- set-up -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetUp:
    account_id: str
    root: str
    app: str  # a user holding AliyunSTSAssumeRoleAccess only
    role_arn: str


def set_up(api: Api) -> SetUp:
    account_id, root = api.open_account("BenchWrites")
    base = f"/v1/accounts/{account_id}"
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
    api.call(
        "POST", f"{base}/roles", root, {"role_name": "app", "assume_role_policy_document": trust}
    )
    api.call("POST", f"{base}/users", root, {"user_name": "app-server"})
    key = api.call("POST", f"{base}/users/app-server/access-keys", root)
    api.call("PUT", f"{base}/users/app-server/policies/System/AliyunSTSAssumeRoleAccess", root)
    return SetUp(
        account_id,
        root,
        basic(key["access_key_id"], key["access_key_secret"]),
        f"acs:ram::{account_id}:role/app",
    )


def shapes(who: SetUp, *, keyed: bool = False) -> list[WriteShape]:
    """The two writes; ``keyed``: each request with an Idempotency-Key of its own."""
    json_headers = {"Content-Type": "application/json"}
    assume_body = json.dumps(
        {"role_arn": who.role_arn, "role_session_name": SESSION_NAME, "duration_seconds": 900}
    )
    return [
        WriteShape(
            "create user",
            "POST",
            f"/v1/accounts/{who.account_id}/users",
            {**json_headers, "Authorization": who.root},
            json.dumps({"user_name": f"u-{TAG}"}),
            keyed,
        ),
        WriteShape(
            "AssumeRole",
            "POST",
            "/v1/sts/assume-role",
            {**json_headers, "Authorization": who.app},
            assume_body,
            keyed,
        ),
    ]


IDLE_SHARE = 0.25  # of one core: idle, 2 workers poll and watch at about 0.12


def quiet(api: Api, *, timeout: float = 600.0) -> None:
    """Wait until the server's index and SQL projections have applied the whole log and the
    servers' processes are idle, so that a run does not share the CPU with the catching up
    of the one before (or of a restart). ``/readyz`` answers for the one worker that
    accepted the connection; the CPU of all of them says when the others are done too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = api.client.get("/readyz").json()
        lags = [lag.get("lag_events", 0) for lag in (ready.get("projections") or {}).values()]
        if ready.get("decision_index_lag_events") == 0 and not any(lags):
            before, began = cpu_now()[0], time.monotonic()
            time.sleep(0.5)
            if cpu_now()[0] - before < IDLE_SHARE * (time.monotonic() - began):
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server did not catch up within {timeout:.0f} s")


def flip_ms(api: Api, who: SetUp, user_name: str, *, flips: int) -> float:
    """The median of ``flips`` sequential AccessKey status flips on ``user_name``, in ms."""
    base = f"/v1/accounts/{who.account_id}/users/{user_name}/access-keys"
    key_id = api.call("GET", base, who.root)["items"][0]["access_key_id"]
    status = api.call("GET", base, who.root)["items"][0]["status"]
    samples = []
    for _ in range(flips):
        status = "Inactive" if status == "Active" else "Active"
        started = time.perf_counter()
        api.call("PATCH", f"{base}/{key_id}", who.root, {"status": status})
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def grow_user(api: Api, who: SetUp, user_name: str, events: int) -> None:
    """``user_name`` with one AccessKey, flipped until the user holds ``events`` events."""
    base = f"/v1/accounts/{who.account_id}/users"
    api.call("POST", base, who.root, {"user_name": user_name})
    key_id = api.call("POST", f"{base}/{user_name}/access-keys", who.root)["access_key_id"]
    status = "Active"
    for _ in range(events - 2):
        status = "Inactive" if status == "Active" else "Active"
        api.call("PATCH", f"{base}/{user_name}/access-keys/{key_id}", who.root, {"status": status})


def flips_notes(api: Api, who: SetUp, flips: int, notes: list[str]) -> None:
    """The AccessKey status flip on a fresh user vs one with ``FLIP_EVENTS`` events."""
    base = f"/v1/accounts/{who.account_id}/users"
    api.call("POST", base, who.root, {"user_name": "fresh"})
    api.call("POST", f"{base}/fresh/access-keys", who.root)
    grow_user(api, who, "long", FLIP_EVENTS)
    quiet(api)
    fresh_flip = flip_ms(api, who, "fresh", flips=flips)
    long_flip = flip_ms(api, who, "long", flips=flips)
    notes.append(
        f"AccessKey status flip, 1 client, median of {flips}: fresh user "
        f"{fresh_flip:.1f} ms, user with {FLIP_EVENTS:,} events {long_flip:.1f} ms "
        f"(ratio {long_flip / fresh_flip:.2f})"
    )


def fill_log(database_url: str, workdir: Path, events: int) -> None:
    """Grow the log to about ``events`` events in process: users created in batched saves
    (a name claim and a user each) in an account of their own."""
    from mandate.api.settings import store_config
    from mandate.domain.common.audit import AuditContext, acting_as
    from mandate.domain.identity.name_claims import NameClaim
    from mandate.domain.identity.principals import User
    from mandate.domain.identity.secrets import SecretHasher
    from mandate.domain.ledger.application import Ledger

    ledger = Ledger(store_config(database_url).env, hasher=SecretHasher("k", {"k": b"x" * 32}))
    try:
        with acting_as(AuditContext(actor="mandate:bench")):
            account = ledger.open_account("Filler").account_id
            made = int(ledger.recorder.max_notification_id() or 0)
            n = 0
            while made < events:
                batch: list[Aggregate] = []
                for _ in range(max(1, min(500, (events - made) // 2))):
                    n += 1
                    user = User(account_id=account, user_name=f"f{n:07d}", display_name=None)
                    claim = NameClaim(
                        account_id=account, kind="user", name=user.user_name, entity_id=user.id
                    )
                    batch += [claim, user]
                ledger.save(*batch)
                made += len(batch)
    finally:
        ledger.close()


# -- the report -------------------------------------------------------------------------------


def _schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


def _rows(runs: list[WriteRun], raw: float, history: str) -> list[str]:
    return [
        f"| {r.label} | {history} | {r.concurrency} | {r.writes_per_s:.0f} | {r.p50_ms:.1f} "
        f"| {r.p99_ms:.1f} | {r.conflicts} | {r.failures} | {r.writes_per_s / raw:.3f} "
        f"| {r.server_cpu_ms:.2f} | {r.postgres_cpu_ms:.2f} |"
        for r in runs
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.writes", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a look (about 30 s): see QUICK_CONCURRENCIES"
    )
    add_postgres_option(parser)
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="events in the log for the second pass (default 100,000; --quick: 0, skipped)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="the load generator: wrk when on PATH (auto), else the Python load loop",
    )
    parser.add_argument(
        "--compare-generators",
        action="store_true",
        help="also drive both writes at 32 clients with the Python load loop",
    )
    parser.add_argument("--client-processes", type=int, default=2, help="Python generator")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="serve --workers N (default 2: docker-compose.yml's configuration)",
    )
    parser.add_argument(
        "--projections",
        choices=("in-process", "runner"),
        default="in-process",
        help="the SQL projections in the API processes (the default configuration) or in "
        "one `mandate projections run` beside them",
    )
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="every write with an Idempotency-Key of its own (the key row written in the "
        "events' transaction, the answer recorded after): what keyed retries-ready writes cost",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    duration, warmup = (2.0, 1.0) if args.quick else (8.0, 2.0)
    history = args.history if args.history is not None else (0 if args.quick else 100_000)
    concurrencies = QUICK_CONCURRENCIES if args.quick else CONCURRENCIES
    flips = 20 if args.quick else 60
    wrk = find_wrk(args.generator)
    runner = args.projections == "runner"
    workdir = Path(tempfile.mkdtemp(prefix="mandate-bench-writes-"))

    def load(
        api: Api, shape: WriteShape, concurrency: int, *, python: bool = False, warm: bool = True
    ) -> WriteRun:
        """One run; ``warm=False`` (--quick, the shape's second run) skips wrk's warm-up."""
        quiet(api)
        url = str(api.client.base_url).rstrip("/")
        if wrk is not None and not python:
            return wrk_write_load(
                wrk,
                url,
                shape,
                concurrency=concurrency,
                duration=duration,
                warmup=warmup if warm else 0.0,
                workdir=workdir,
            )
        return write_load(
            url,
            shape,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            processes=args.client_processes,
        )

    def ceiling(api: Api, who: SetUp) -> list[WriteRun]:
        """``GET /healthz`` and ``GET /v1/sts/caller-identity`` (authenticated, in memory)
        under the same load: what the stack answers when nothing is written."""
        if wrk is None:
            return []
        url = str(api.client.base_url).rstrip("/")
        targets = {
            "ceiling: GET /healthz": Target("GET", "/healthz", None, {}),
            "ceiling: GET caller-identity": Target(
                "GET", "/v1/sts/caller-identity", None, {"Authorization": who.app}
            ),
        }
        if args.quick:  # the authenticated one: the bound for every request here
            targets = {k: v for k, v in targets.items() if "caller-identity" in k}
        quiet(api)
        return [
            wrk_read_load(
                wrk,
                url,
                label,
                target,
                concurrency=max(CONCURRENCIES),
                duration=duration,
                warmup=0.0 if args.quick else warmup,  # --quick: warm from the writes
                workdir=workdir,
            )
            for label, target in targets.items()
        ]

    runs: dict[tuple[str, str], WriteRun] = {}
    rows: list[str] = []
    notes: list[str] = []
    load_before = load_average()
    try:
        with postgres_schema(args.postgres_dsn, SCHEMA_PREFIX) as url:
            raw = raw_insert_rate(
                args.postgres_dsn, _schema_of(url), connections=RAW_CONNECTIONS, duration=duration
            )
            with deployment(
                workdir, url, workers=args.workers, runner=runner, migrate=True
            ) as server:
                api = Api(server)
                who = set_up(api)
                for shape in shapes(who, keyed=args.idempotency_keys):
                    done = [
                        load(api, shape, c, warm=not args.quick or n == 0)
                        for n, c in enumerate(concurrencies)
                    ]
                    runs.update({(f"{r.label}@{r.concurrency}", "fresh"): r for r in done})
                    rows += _rows(done, raw, "fresh")
                if args.compare_generators and wrk is not None:
                    for shape in shapes(who):
                        python_run = load(api, shape, max(CONCURRENCIES), python=True)
                        rows += _rows([python_run], raw, "fresh, Python clients")
                rows += _rows(ceiling(api, who), raw, "-")
                if args.quick:
                    notes.append(
                        f"--quick: {', '.join(map(str, concurrencies))} clients only (the "
                        "second run of each write, and the ceiling, without a warm-up of their "
                        "own), one ceiling row, no AccessKey flip comparison; figures indicative"
                    )
                else:
                    flips_notes(api, who, flips, notes)
                head = api.settled_head()
                api.close()
            if history > head:
                started = time.monotonic()
                fill_log(url, workdir, history)
                snapshot_index(workdir, url)
                notes.append(
                    f"log grown to {history:,} events in {time.monotonic() - started:.0f} s"
                    " (batched saves in process), then `mandate index snapshot`; the servers "
                    "start from it and catch up their projections before the runs"
                )
                # The servers catch up on start.
                with deployment(workdir, url, workers=args.workers, runner=runner) as server:
                    api = Api(server)
                    create = shapes(who)[0]
                    done = [load(api, create, c) for c in (1, max(CONCURRENCIES))]
                    runs.update({(f"{r.label}@{r.concurrency}", "history"): r for r in done})
                    rows += _rows(done, raw, f"{history // 1000}k")
                    if not args.quick:
                        quiet(api)
                        long_flip = flip_ms(api, who, "long", flips=flips)
                        notes.append(
                            f"with {history:,} events in the log: the {FLIP_EVENTS:,}-event "
                            f"user's flip {long_flip:.1f} ms"
                        )
                    api.close()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    projections = (
        "the SQL projections in one `mandate projections run` beside them"
        if runner
        else "the SQL projections in process (whichever holds each copy's lease)"
    )
    generator = (
        "wrk (2 threads; a distinct body per request, Lua)"
        if wrk is not None
        else f"Python clients in {args.client_processes} processes"
    )
    header = [
        "### Writes on PostgreSQL: HTTP writes vs raw single-row INSERT+COMMIT",
        "",
        f"Machine: {machine()} (shared; load {load_before} before, {load_average()} after); "
        f"code {code_version()}; {duration:.0f} s measured after {warmup:.0f} s warm-up per "
        f"run. Configuration: `serve --workers {args.workers}`, {projections}; load: "
        f"{generator}; clients, server and PostgreSQL on the same cores."
        + (" Every write carries an Idempotency-Key of its own." if args.idempotency_keys else ""),
        "",
        f"Raw INSERT+COMMIT, {RAW_CONNECTIONS} psycopg connections, events-shaped table: "
        f"**{raw:.0f}/s**",
        "",
        "| request | log | clients | answers/s | p50 ms | p99 ms | conflicts | failures | / raw "
        "| server CPU ms/answer | PostgreSQL CPU ms/answer |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    notes.append(
        "CPU ms/answer: user+system CPU over the measured run (wrk's) divided by the answers; "
        "server: every live process this benchmark started but wrk (the API processes, the "
        "runner); PostgreSQL: all its processes on the machine, other people's sessions too "
        f"(an upper bound). 2 cores hold 2,000 ms of CPU a second: raw's {raw:,.0f}/s leaves "
        f"{2000 / raw:.2f} ms of CPU per write for everything"
    )
    print("\n".join([*header, *rows, "", *notes]))
    summarize(runs, raw)
    return 0


def summarize(runs: dict[tuple[str, str], WriteRun], raw: float) -> None:
    """The headline figures for ``python -m tests.bench``'s summary."""
    from tests.bench.summary import record

    top, half = max(CONCURRENCIES), max(CONCURRENCIES) // 2
    record("raw INSERT+COMMIT, 32 connections", f"{raw:,.0f}/s", source="writes")
    for label in ("create user", "AssumeRole"):
        at_top = runs.get((f"{label}@{top}", "fresh"))
        if at_top is not None:
            ratio = at_top.writes_per_s / raw
            record(
                f"{label} over HTTP, {top} clients",
                f"{at_top.writes_per_s:,.0f}/s ({ratio:.3f}x raw)",
                f"≥ {RATIO_TARGET:.1f}x raw",
                ratio >= RATIO_TARGET,
                source="writes",
            )
        at_half = runs.get((f"{label}@{half}", "fresh"))
        if at_half is not None:
            record(
                f"{label} p99, {half} clients",
                f"{at_half.p99_ms:.0f} ms",
                f"≤ {P99_TARGET_MS:.0f} ms",
                at_half.p99_ms <= P99_TARGET_MS,
                source="writes",
            )
    fresh = runs.get((f"create user@{top}", "fresh"))
    grown = runs.get((f"create user@{top}", "history"))
    if fresh is not None and grown is not None:
        flat = grown.writes_per_s / fresh.writes_per_s
        record(
            f"create user at {top} clients, long log / fresh log",
            f"{flat:.2f}",
            f"flat (≥ {HISTORY_FLAT:.1f})",
            flat >= HISTORY_FLAT,
            source="writes",
        )


if __name__ == "__main__":
    raise SystemExit(main())
