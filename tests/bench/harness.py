"""What the benchmarks measure with: timing, servers, load generators, ratios and tables.

``tests.bench.decide``, ``tests.bench.sts`` and ``tests.bench.entrustments`` each measure a
scenario of their own; this module holds the machinery they share, so that a figure is taken
and printed the same way in all of them.

* In process: ``time_batches`` (per-call means of ~2 ms batches, garbage collection paused);
  ``in_process_store`` (a ``Ledger`` on a SQLite file feeding a ``DecisionIndex``, for the
  set-up);
  ``KeyAndSession`` (an AccessKey and STS credentials asked one request: the timed paths) and
  ``time_pairs`` (two sides timed path by path over alternating rounds).
* Servers: ``mandate_servers`` / ``sqlite_server`` (``python -m api.cli serve`` subprocesses,
  after ``migrate`` when asked), ``postgres_schema`` (a throwaway schema, dropped at the end).
* Over HTTP: ``Api`` (the JSON calls of a set-up), ``Target`` and ``LoadResult``, the load
  generators ``wrk_load`` (``parse_wrk`` reads wrk's report) and ``python_load``, a
  ``LoadPlan`` (rounds, durations, which generator), ``compare_loads`` (two targets over
  alternating rounds at several concurrencies) and ``authorize_comparison`` (a whole
  ``POST /v1/authorize`` comparison but for its set-up).
* The report: ``ratios``, ``median``, ``mark``, ``format_ratios``, ``in_process_table``,
  ``authorize_tables``, ``machine``, ``code_version``, ``print_report``; and the command-line
  options the comparison benchmarks share.

Every comparison alternates its two sides (``alternating``), round by round, so that a slow
spell of this noisy machine hits both sides of a round; a ratio is the median of the rounds'
ratios.
"""

from __future__ import annotations

import argparse
import base64
import gc
import http.client
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import IssuedKey, IssuedSession, Ledger
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.projections.decisions.credentials import Credential
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.store.follower import LogFollower
from tests.bench.summary import record

ADMIN_TOKEN = "bench-admin-token-" + "b" * 32
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

T = TypeVar("T")


def alternating(round_: int, sides: list[T]) -> list[T]:
    """``sides`` in order on even rounds, reversed on odd ones: neither always goes first."""
    return sides if round_ % 2 == 0 else sides[::-1]


# -- timing in process ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    label: str
    median_us: float
    p99_us: float
    batches: int
    batch_size: int


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank value at ``fraction`` of ``sorted_values`` (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def time_batches(label: str, run: Callable[[int], None], *, batches: int) -> Timing:
    """Median and p99 of per-call means over ``batches`` batches of about 2 ms each."""
    run(200)  # warm up
    start = time.perf_counter_ns()
    run(200)
    per_call_ns = max(1.0, (time.perf_counter_ns() - start) / 200)
    batch_size = max(1, int(2_000_000 / per_call_ns))
    samples: list[float] = []
    gc.collect()
    gc.disable()  # as timeit does: a collection landing in one batch is noise, not the cost
    try:
        for _ in range(batches):
            start = time.perf_counter_ns()
            run(batch_size)
            samples.append((time.perf_counter_ns() - start) / batch_size / 1000)
    finally:
        gc.enable()
    samples.sort()
    return Timing(label, statistics.median(samples), percentile(samples, 0.99), batches, batch_size)


# A path timed both ways: (label, the first side's run, the second side's run); a run makes
# ``n`` calls.
TimedPath = tuple[str, Callable[[int], None], Callable[[int], None]]


@dataclass
class PairedTimings:
    """Two sides timed path by path; ``shape`` says what was compared (the table's title)."""

    shape: str
    # label -> (the first side's timings per round, the second side's timings per round)
    pairs: dict[str, tuple[list[Timing], list[Timing]]] = field(default_factory=dict)


def time_pairs(shape: str, paths: list[TimedPath], *, rounds: int, batches: int) -> PairedTimings:
    """Each path's two sides, ``batches`` batches each, over ``rounds`` alternating rounds."""
    result = PairedTimings(shape)
    for label, _, _ in paths:
        result.pairs[label] = ([], [])
    for round_ in range(rounds):
        for label, first, second in paths:
            first_runs, second_runs = result.pairs[label]
            for run, out in alternating(round_, [(first, first_runs), (second, second_runs)]):
                out.append(time_batches(label, run, batches=batches))
    return result


@contextmanager
def in_process_store(workdir: Path) -> Iterator[tuple[DecisionIndex, Ledger, LogFollower]]:
    """A ``Ledger`` on ``workdir/in-process.db`` (SQLite), the ``DecisionIndex`` it feeds and
    the ``LogFollower`` that applies its log to the index on ``catch_up()``.

    Inside, commands act as ``mandate:admin``; on the way out the index catches up with the
    log and the ledger is closed, and the index goes on answering. It reads sessions (it has a
    token signer).
    """
    hasher = SecretHasher("k1", {"k1": b"bench-hash-key-" + b"k" * 32})
    signer = SessionTokenSigner("t1", {"t1": b"bench-token-key-" + b"t" * 32})
    index = DecisionIndex(hasher, signer)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(workdir / "in-process.db"),
        "CREATE_TABLE": "y",
    }
    ledger = Ledger(env, hasher=hasher, read_port=index, token_signer=signer)
    follower = LogFollower(ledger, index)
    try:
        with acting_as(AuditContext(actor="mandate:admin")):
            yield index, ledger, follower
        follower.catch_up()
    finally:
        ledger.close()


def plain_context() -> dict[str, Any]:
    """What ``connection_context`` gives a plain-HTTP request from 127.0.0.1."""
    return {
        "acs:currenttime": datetime.now(UTC),
        "acs:securetransport": False,
        "acs:mfapresent": False,
        "acs:sourceip": "127.0.0.1",
    }


@dataclass(frozen=True)
class KeyAndSession:
    """An AccessKey and a session's STS credentials, asked the same ``request`` of ``index``."""

    index: DecisionIndex
    request: AccessRequest
    key: IssuedKey
    session: IssuedSession

    def answers(self) -> tuple[Answer, Credential, Answer]:
        """The AccessKey's answer, the session's credential and its answer.

        Both answers must allow, and neither may depend on the context (the memo applies).
        """
        index, request, key, issued = self.index, self.request, self.key, self.session
        by_key = index.decide_for(
            index.authenticate(key.access_key_id, key.access_key_secret), request
        )
        session = index.authenticate_session(
            issued.access_key_id, issued.access_key_secret, issued.security_token
        )
        by_session = index.decide_for(session, request)
        assert by_key.allowed, by_key
        assert by_session.allowed, by_session
        assert not by_key.decision.context_dependent, "the memo would not apply"
        assert not by_session.decision.context_dependent, "the memo would not apply"
        assert session.subject is not None
        return by_key, session, by_session

    def paths(self, first_request: str) -> list[TimedPath]:
        """AccessKey vs session: authentication alone (a repeat request), a session's first
        request (the remembered sessions emptied before each call; ``first_request`` says what
        that costs), authentication + ``decide_for`` answered from the memo, and the same with
        the memo emptied before each call (the evaluator runs)."""
        index, request = self.index, self.request
        ak_id, ak_secret = self.key.access_key_id, self.key.access_key_secret
        sts_id, sts_secret, token = (
            self.session.access_key_id,
            self.session.access_key_secret,
            self.session.security_token,
        )
        memo = index._memo  # emptied before each call of the "memo miss" paths
        verified = index._verified_sessions  # emptied before each call of the "first request"

        def ak_auth(n: int) -> None:
            for _ in range(n):
                index.authenticate(ak_id, ak_secret)

        def sts_auth(n: int) -> None:
            for _ in range(n):
                index.authenticate_session(sts_id, sts_secret, token)

        def sts_first(n: int) -> None:
            for _ in range(n):
                verified.clear()
                index.authenticate_session(sts_id, sts_secret, token)

        def ak_hit(n: int) -> None:
            for _ in range(n):
                index.decide_for(index.authenticate(ak_id, ak_secret), request)

        def sts_hit(n: int) -> None:
            for _ in range(n):
                index.decide_for(index.authenticate_session(sts_id, sts_secret, token), request)

        def ak_miss(n: int) -> None:
            for _ in range(n):
                memo.clear()
                index.decide_for(index.authenticate(ak_id, ak_secret), request)

        def sts_miss(n: int) -> None:
            for _ in range(n):
                memo.clear()
                index.decide_for(index.authenticate_session(sts_id, sts_secret, token), request)

        return [
            ("authenticate only", ak_auth, sts_auth),
            (f"authenticate only, a session's first request ({first_request})", ak_auth, sts_first),
            ("authenticate + decide_for, memo hit", ak_hit, sts_hit),
            ("authenticate + decide_for, memo miss (evaluator runs)", ak_miss, sts_miss),
        ]


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def mandate_servers(
    workdir: Path,
    database_url: str,
    *,
    count: int = 1,
    migrate: bool = False,
    env: Mapping[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
) -> Iterator[list[str]]:
    """``count`` ``python -m api.cli serve`` processes on ``database_url``; yield their URLs.

    ``migrate`` runs ``python -m api.cli migrate`` first. The servers share ``workdir`` as
    their state directory (and so the audit signing key ``migrate`` makes) and the admin token
    ``ADMIN_TOKEN``; ``env`` adds to their environment. Each logs to ``workdir/server.log``
    (``server-<n>.log`` when there are several), which an error quotes. They are terminated
    (killed after 15 s) on the way out. ``serve_args`` adds to each ``serve`` command line
    (``("--workers", "2")``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "MANDATE_DATABASE_URL": database_url,
        "MANDATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MANDATE_STATE_DIR": str(workdir),
        **(env or {}),
    }
    command = [sys.executable, "-m", "mandate.api.cli"]
    if migrate:
        subprocess.run(  # noqa: S603 (our own interpreter and module)
            [*command, "migrate"], env=environment, check=True, capture_output=True
        )
    which = "the server" if count == 1 else "a server"
    processes: list[tuple[subprocess.Popen[bytes], Path, str]] = []
    try:
        for n in range(1, count + 1):
            port = free_port()
            log_path = workdir / ("server.log" if count == 1 else f"server-{n}.log")
            with log_path.open("wb") as log:
                process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                    [*command, "serve", "--port", str(port), *serve_args],
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            processes.append((process, log_path, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 30
        for process, log_path, url in processes:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{which} exited:\n{log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{which} did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield [url for _, _, url in processes]
    finally:
        for process, _, _ in processes:
            process.terminate()
        for process, _, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def sqlite_server(workdir: Path) -> Iterator[str]:
    """One ``python -m api.cli serve`` over a fresh SQLite store in ``workdir``; yield its URL."""
    with mandate_servers(workdir, f"sqlite:///{workdir}/b.db") as (url,):
        yield url


def with_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its ``schema`` query parameter set to ``schema``."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


@contextmanager
def postgres_schema(dsn: str, prefix: str) -> Iterator[str]:
    """A fresh schema ``<prefix><hex>``; yield the URL naming it; drop only it at the end."""
    name = f"{prefix}{secrets.token_hex(4)}"
    schema = sql.Identifier(name)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    try:
        yield with_schema(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


# -- set-up over HTTP -------------------------------------------------------------------------


def basic(access_key_id: str, access_key_secret: str) -> str:
    """The ``Authorization`` header value for an AccessKey (or an STS key)."""
    return "Basic " + base64.b64encode(f"{access_key_id}:{access_key_secret}".encode()).decode()


class Api:
    """JSON calls to one server, for setting a benchmark up; anything but 200/201 raises."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def call(
        self, method: str, path: str, auth: str, body: Any = None, **headers: str
    ) -> dict[str, Any]:
        response = self.client.request(
            method, path, json=body, headers={"Authorization": auth, **headers}
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        answer: dict[str, Any] = response.json()
        return answer

    def open_account(self, name: str) -> tuple[str, str]:
        """A new account, opened with the admin token: its id and its root's ``Basic``."""
        opened = self.call("POST", "/v1/accounts", f"Bearer {ADMIN_TOKEN}", {"name": name})
        return opened["account_id"], basic(**opened["root_access_key"])

    def head(self) -> int:
        """The log head as this server's index has applied it."""
        for _ in range(100):
            ready = self.client.get("/readyz").json()
            if ready.get("index_position") is not None:
                position: int = ready["index_position"]
                return position
            time.sleep(0.05)
        raise RuntimeError(f"/readyz answers no index position: {ready}")

    def settled_head(self) -> int:
        """The head once the calls still in flight after a wrk run have committed."""
        last = self.head()
        while True:
            time.sleep(0.25)
            now = self.head()
            if now == last:
                return now
            last = now

    def close(self) -> None:
        self.client.close()


# -- load over HTTP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


@dataclass(frozen=True)
class LoadResult:
    label: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _client_thread(
    host: str,
    port: int,
    target: Target,
    start_at: int,
    measure_from: int,
    stop_at: int,
    out: list[tuple[list[int], int]],
) -> None:
    """One keep-alive connection, one request at a time; latencies inside the window only."""
    latencies: list[int] = []
    errors = 0
    delay = (start_at - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    while True:
        started = time.monotonic_ns()
        if started >= stop_at:
            break
        try:
            connection.request(target.method, target.path, body=target.body, headers=target.headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
        finished = time.monotonic_ns()
        if started >= measure_from and finished <= stop_at:
            if ok:
                latencies.append(finished - started)
            else:
                errors += 1
    connection.close()
    out.append((latencies, errors))


def _client_process(
    host: str,
    port: int,
    target: Target,
    threads: int,
    start_at: int,
    measure_from: int,
    stop_at: int,
) -> tuple[list[int], int]:
    out: list[tuple[list[int], int]] = []
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(host, port, target, start_at, measure_from, stop_at, out),
        )
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies = [latency for part, _ in out for latency in part]
    return latencies, sum(errors for _, errors in out)


def python_load(
    url: str,
    label: str,
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    processes: int,
) -> LoadResult:
    """The Python load generator: ``processes`` forked workers, keep-alive connections in
    threads (``concurrency`` in all), a warm-up, then ``duration`` seconds measured."""
    host, port = url.removeprefix("http://").split(":")
    processes = max(1, min(processes, concurrency))
    per_process = [
        concurrency // processes + (i < concurrency % processes) for i in range(processes)
    ]
    start_at = time.monotonic_ns() + 300_000_000  # time for the workers to start
    measure_from = start_at + int(warmup * 1e9)
    stop_at = measure_from + int(duration * 1e9)
    args = [
        (host, int(port), target, threads, start_at, measure_from, stop_at)
        for threads in per_process
    ]
    if processes == 1:
        parts = [_client_process(*args[0])]
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes) as pool:
            parts = pool.starmap(_client_process, args)
    latencies = sorted(latency for part, _ in parts for latency in part)
    errors = sum(errors for _, errors in parts)
    return LoadResult(
        label,
        concurrency,
        len(latencies) / duration,
        percentile([x / 1e6 for x in latencies], 0.50),
        percentile([x / 1e6 for x in latencies], 0.99),
        errors,
    )


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_latency(output: str, percent: str) -> float:
    """The ``percent``% latency of wrk's ``--latency`` report, in ms (NaN when absent)."""
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        return float("nan")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def parse_wrk(output: str, label: str, concurrency: int) -> tuple[LoadResult, int]:
    """wrk's report as a ``LoadResult`` (errors: non-2xx/3xx answers and socket errors), and
    the number of requests it completed."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    result = LoadResult(
        label,
        concurrency,
        float(rate.group(1)) if rate else float("nan"),
        wrk_latency(output, "50"),
        wrk_latency(output, "99"),
        errors,
    )
    return result, int(done.group(1)) if done else 0


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def static_wrk_script(target: Target) -> str:
    """A wrk Lua script sending ``target``'s method, body and headers on every request."""
    lines = [f"wrk.method = {lua_string(target.method)}"]
    if target.body is not None:
        lines.append(f"wrk.body = {lua_string(target.body.decode())}")
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in target.headers.items()]
    return "\n".join(lines) + "\n"


def wrk_script_path(workdir: Path, label: str) -> Path:
    """Where the Lua script of the run labelled ``label`` goes."""
    return workdir / f"wrk-{re.sub(r'[^a-z]+', '-', label.lower()).strip('-')}.lua"


def run_wrk(wrk: str, script: Path, url: str, *, concurrency: int, seconds: float) -> str:
    """One wrk run (2 threads, 1 at concurrency 1) with ``script`` against ``url``; its report."""
    threads = min(2, concurrency)
    command = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    command += ["--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout


def wrk_load(
    wrk: str,
    url: str,
    label: str,
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> LoadResult:
    """A ``warmup`` wrk run, then ``duration`` seconds measured, sending ``target``."""
    script = wrk_script_path(workdir, label)
    script.write_text(static_wrk_script(target))
    run_wrk(wrk, script, url + target.path, concurrency=concurrency, seconds=warmup)
    output = run_wrk(wrk, script, url + target.path, concurrency=concurrency, seconds=duration)
    result, _ = parse_wrk(output, label, concurrency)
    return result


def find_wrk(generator: str) -> str | None:
    """wrk's path when ``generator`` (auto, wrk or python) wants it and it is on ``PATH``."""
    wrk = shutil.which("wrk") if generator in ("auto", "wrk") else None
    if generator == "wrk" and wrk is None:
        raise SystemExit("--generator wrk: wrk is not on PATH")
    return wrk


@dataclass(frozen=True)
class LoadPlan:
    """How a comparison over HTTP drives its load."""

    rounds: int  # alternating rounds
    duration: float  # seconds measured per run
    warmup: float  # seconds of warm-up before each run
    wrk: str | None  # wrk's path; None: the Python generator
    processes: int  # the Python generator's worker processes

    def describe(self) -> str:
        """The load generator and the runs, for a table's preamble."""
        if self.wrk:
            return (
                f"wrk (2 threads, 1 at concurrency 1; {self.rounds} alternating rounds of "
                f"{self.duration:.0f} s each after a {self.warmup:.0f} s warm-up)"
            )
        return f"Python ({self.processes} worker processes; {self.rounds} rounds)"

    def load(
        self, url: str, label: str, target: Target, *, concurrency: int, workdir: Path
    ) -> LoadResult:
        """One run: ``wrk_load`` when there is a ``wrk``, else ``python_load``."""
        if self.wrk is not None:
            return wrk_load(
                self.wrk,
                url,
                label,
                target,
                concurrency=concurrency,
                duration=self.duration,
                warmup=self.warmup,
                workdir=workdir,
            )
        return python_load(
            url,
            label,
            target,
            concurrency=concurrency,
            duration=self.duration,
            warmup=self.warmup,
            processes=self.processes,
        )


def compare_loads(
    url: str,
    workdir: Path,
    targets: dict[str, Target],
    plan: LoadPlan,
    *,
    concurrencies: tuple[int, ...],
) -> dict[int, tuple[list[LoadResult], list[LoadResult]]]:
    """The two ``targets`` (label -> target) driven over alternating rounds, per concurrency:
    concurrency -> (the first target's runs, the second's)."""
    first, second = targets
    results: dict[int, tuple[list[LoadResult], list[LoadResult]]] = {}
    for concurrency in concurrencies:
        first_runs: list[LoadResult] = []
        second_runs: list[LoadResult] = []
        results[concurrency] = (first_runs, second_runs)
        for round_ in range(plan.rounds):
            for label, out in alternating(round_, [(first, first_runs), (second, second_runs)]):
                out.append(
                    plan.load(url, label, targets[label], concurrency=concurrency, workdir=workdir)
                )
    return results


def authorize_comparison(
    workdir: Path,
    set_up: Callable[[str], dict[str, Target]],
    plan: LoadPlan,
    *,
    part: str,
    sides: tuple[str, str],
    target: float,
    concurrencies: tuple[int, ...],
    source: str | None = None,
) -> list[str]:
    """Part ``part``: ``POST /v1/authorize`` with two sides' credentials, over HTTP.

    A server on a fresh SQLite store in ``workdir/sqlite`` (a decision never touches the
    store); ``set_up(url)`` makes the principals through the API and returns the two targets
    (label -> target, the first side first); ``compare_loads`` drives them; the tables of
    ``authorize_tables`` (``sides``: the two sides' names; ``target``: the highest p50 ratio
    that meets it).
    """
    (workdir / "sqlite").mkdir()
    with sqlite_server(workdir / "sqlite") as url:
        targets = set_up(url)
        results = compare_loads(url, workdir, targets, plan, concurrencies=concurrencies)
    first, second = targets
    return authorize_tables(
        results,
        part=part,
        generator=plan.describe(),
        sides=sides,
        labels=(first, second),
        target=target,
        source=source,
    )


# -- the report -------------------------------------------------------------------------------


def ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Round by round, ``numerators[i] / denominators[i]`` (NaN over zero)."""
    return [n / d if d else float("nan") for n, d in zip(numerators, denominators, strict=True)]


def median(values: list[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def mark(ok: bool) -> str:
    """Whether a target was met, for a table."""
    return "✅ met" if ok else "❌ missed"


def format_ratios(values: list[float]) -> str:
    """The rounds' values, for a table: ``1.02, 0.98, 1.10``."""
    return ", ".join(f"{v:.2f}" for v in values)


def in_process_table(
    timings: PairedTimings,
    *,
    part: str,
    rounds: int,
    sides: tuple[str, str],
    target: float | None = None,
    untargeted: Callable[[str], bool] = lambda label: False,
    source: str | None = None,
) -> list[str]:
    """Part ``part``'s table of ``time_pairs``: µs per call of each side (``sides``: their
    names) and the ratio second / first. With a ``target`` (the highest ratio that meets it),
    a column says whether each path met it, but for the paths ``untargeted`` picks. With a
    ``source`` (a module's name), each path's ratio is also recorded for the summary."""
    first, second = sides
    out = [
        f"### ({part}) In process — {timings.shape}",
        "",
        f"Median µs per call (median over {rounds} alternating rounds of each round's median "
        f"batch mean); ratio = {second} / {first}, median of the rounds' ratios.",
        "",
    ]
    header = f"| path | {first} µs | {second} µs | {second} / {first} (rounds) |"
    if target is None:
        out += [header, "|---|---:|---:|---|"]
    else:
        out += [f"{header} target ≤ {target:g}x |", "|---|---:|---:|---|---|"]
    for label, (first_timings, second_timings) in timings.pairs.items():
        first_us = [t.median_us for t in first_timings]
        second_us = [t.median_us for t in second_timings]
        rounds_ratios = ratios(second_us, first_us)
        ratio = median(rounds_ratios)
        row = (
            f"| {label} | {median(first_us):.2f} | {median(second_us):.2f} "
            f"| **{ratio:.2f}** ({format_ratios(rounds_ratios)}) |"
        )
        targeted = target is not None and not untargeted(label)
        if target is not None:
            row += f" {mark(ratio <= target) if targeted else ''} |"
        out.append(row)
        if source is not None:
            record(
                f"in process, {label}: {second} / {first}",
                f"{ratio:.2f} ({median(first_us):.2f} → {median(second_us):.2f} µs)",
                f"≤ {target:g}" if targeted else "",
                ratio <= target if target is not None and targeted else None,
                source=source,
            )
    return out


def authorize_tables(
    results: dict[int, tuple[list[LoadResult], list[LoadResult]]],
    *,
    part: str,
    generator: str,
    sides: tuple[str, str],
    labels: tuple[str, str],
    target: float,
    source: str | None = None,
) -> list[str]:
    """Part ``part``'s tables of ``compare_loads`` on ``POST /v1/authorize`` (self form): each
    side's (``sides``: names; ``labels``: its runs' labels) rate and latency per concurrency,
    then the ratios second / first, the p50 ratio against ``target`` (at most); recorded for
    the summary when a ``source`` (a module's name) is given."""
    first, second = sides
    out = [
        f"### ({part}) `POST /v1/authorize` (self form): {first} vs {second} — HTTP, SQLite store",
        "",
        f"Load generator: {generator}. req/s, p50, p99: medians over the rounds. Ratios: "
        f"{second} / {first}, median of the rounds' ratios (latency: lower is better).",
        "",
        "| credentials | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for concurrency, sides_runs in results.items():
        for label, runs in zip(labels, sides_runs, strict=True):
            out.append(
                f"| {label} | {concurrency} | {median([r.requests_per_s for r in runs]):,.0f} "
                f"| {median([r.p50_ms for r in runs]):.3f} "
                f"| {median([r.p99_ms for r in runs]):.3f} | {sum(r.errors for r in runs)} |"
            )
    out += [
        "",
        f"| concurrency | {second} / {first} p50 (rounds) | p99 | req/s | target: p50 ≤ "
        f"{target:g}x |",
        "|---:|---|---|---|---|",
    ]
    for concurrency, (a, b) in results.items():
        p50 = ratios([r.p50_ms for r in b], [r.p50_ms for r in a])
        p99 = ratios([r.p99_ms for r in b], [r.p99_ms for r in a])
        rate = ratios([r.requests_per_s for r in b], [r.requests_per_s for r in a])
        out.append(
            f"| {concurrency} | **{median(p50):.2f}** ({format_ratios(p50)}) "
            f"| {median(p99):.2f} | {median(rate):.2f} | {mark(median(p50) <= target)} |"
        )
        if source is not None:
            record(
                f"`POST /v1/authorize` p50, concurrency {concurrency}: {second} / {first}",
                f"{median(p50):.2f} ({median([r.p50_ms for r in a]):.2f} → "
                f"{median([r.p50_ms for r in b]):.2f} ms)",
                f"≤ {target:g}",
                median(p50) <= target,
                source=source,
            )
    return out


def machine() -> str:
    """The CPU, cores, OS and Python, for a report's header."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model} ({platform.machine()}), {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if dirty else head


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: ``0.52/0.61/0.70``."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def print_report(header: list[str], sections: list[list[str]], notes: list[str]) -> None:
    """The header, each section followed by a blank line, then the notes."""
    body = [line for section in sections for line in [*section, ""]]
    print("\n".join(header + body + notes))


# -- command-line options ---------------------------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--quick`` and ``--rounds``."""
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    """``--postgres-dsn``: where ``postgres_schema`` makes its schema."""
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get("MANDATE_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="a database to make a throwaway schema in (default: $MANDATE_BENCH_POSTGRES or "
        f"{DEFAULT_POSTGRES})",
    )


def add_generator_options(parser: argparse.ArgumentParser, *, purpose: str) -> None:
    """``--generator`` (auto, wrk or python; ``purpose``: its help) and ``--client-processes``."""
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto", help=purpose
    )
    parser.add_argument("--client-processes", type=int, default=4, help="Python generator")


def add_parts_option(parser: argparse.ArgumentParser, parts: tuple[str, ...]) -> None:
    """``--parts``: a comma-separated subset of ``parts`` (all by default)."""
    default = ",".join(parts)
    parser.add_argument(
        "--parts", default=default, help=f"which parts to run, comma-separated (default {default})"
    )


def chosen_parts(parser: argparse.ArgumentParser, value: str, parts: tuple[str, ...]) -> set[str]:
    """The parts ``--parts`` names; a usage error unless a non-empty subset of ``parts``."""
    chosen = {p.strip() for p in value.split(",") if p.strip()}
    if not chosen or chosen - set(parts):
        parser.error(f"--parts takes a comma-separated subset of {', '.join(parts)}")
    return chosen
