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
concurrency 32 and 1, with ``wrk`` (else the Python load generator of ``tests.bench.decide``).
The server runs on SQLite: a decision never touches the store, and a SQLite server has no
PostgreSQL pool or projection traffic beside it. Client and server share the machine's cores,
so rates are a floor; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from domain.audit import AuditContext, acting_as
from domain.evaluation import Request
from domain.ledger import Ledger
from domain.secrets import SecretHasher
from domain.session_tokens import SessionTokenSigner
from projections.decision_index import DecisionIndex
from projections.follower import LogFollower
from tests.bench.decide import (
    ACTION,
    ADMIN_TOKEN,
    DIRECT_POLICIES,
    GROUP_POLICIES,
    POLICY_NAMES,
    USER_NAME,
    LoadResult,
    Target,
    Timing,
    _basic,
    _free_port,
    _time_batches,
    _wrk_latency,
    mandate_server,
    policy_documents,
    python_load,
    resource,
    wrk_load,
)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ROLE_NAME = "bench-role"
APP_USER = "app-server"
SESSION_NAME = "app-server-1"
ASSUME_DURATION = 900  # what part 1 asks for
SESSION_DURATION = 3600  # the credentials of part 2 must outlive the run
ASSUME_RATIO_TARGET = 0.8  # AssumeRole rate / plainest write rate, at least
LATENCY_RATIO_TARGET = 1.2  # STS latency / AccessKey latency, at most
AUTHORIZE_CONCURRENCIES = (32, 1)


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


def _ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [n / d if d else float("nan") for n, d in zip(numerators, denominators, strict=True)]


def _mark(ok: bool) -> str:
    return "✅ met" if ok else "❌ missed"


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


# -- (2a) in process ------------------------------------------------------------------------


@dataclass
class InProcess:
    shape: str
    # label -> (AccessKey timings per round, STS timings per round)
    pairs: dict[str, tuple[list[Timing], list[Timing]]] = field(default_factory=dict)


def bench_in_process(workdir: Path, *, rounds: int, batches: int) -> InProcess:
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
    now = datetime.now(UTC)
    # What ``connection_context`` gives a plain-HTTP request from 127.0.0.1.
    context: dict[str, Any] = {
        "acs:currenttime": now,
        "acs:securetransport": False,
        "acs:mfapresent": False,
        "acs:sourceip": "127.0.0.1",
    }
    try:
        with acting_as(AuditContext(actor="mandate:admin")):
            account_id = ledger.open_account("Bench").account_id
            # tests.bench.decide's principal, written the same way
            ledger.create_user(account_id, USER_NAME, None)
            user_key = ledger.create_access_key(account_id, USER_NAME)
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
            # the role holds the same ten policies; the app server may assume it
            ledger.create_role(account_id, ROLE_NAME, trust_policy(account_id))
            for name in POLICY_NAMES:
                ledger.attach_policy(account_id, "role", ROLE_NAME, "Custom", name)
            ledger.create_user(account_id, APP_USER, None)
            app_key = ledger.create_access_key(account_id, APP_USER)
            ledger.attach_policy(
                account_id, "user", APP_USER, "System", "AliyunSTSAssumeRoleAccess"
            )
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
        follower.catch_up()
    finally:
        ledger.close()

    request = Request.make(ACTION, resource(account_id), context)
    ak_id, ak_secret = user_key.access_key_id, user_key.access_key_secret
    sts_id, sts_secret, token = (
        issued.access_key_id,
        issued.access_key_secret,
        issued.security_token,
    )
    ak_answer = index.decide_for(index.authenticate(ak_id, ak_secret), request)
    session = index.authenticate_session(sts_id, sts_secret, token)
    sts_answer = index.decide_for(session, request)
    assert ak_answer.allowed, ak_answer
    assert sts_answer.allowed, sts_answer
    assert not ak_answer.decision.context_dependent, "the memo would not apply"
    assert not sts_answer.decision.context_dependent, "the memo would not apply"
    assert session.subject is not None
    layers = ", ".join(
        f"{len(s.policies)} {'policy' if len(s.policies) == 1 else 'policies'}"
        for s in session.subject.layers
    )
    shape = (
        f"AccessKey user: 10 policies x 5 statements (4 direct, 3 + 3 through 2 groups); "
        f"session: role layer + session layer ({layers}); request `{ACTION}` → "
        f"{ak_answer.decision.decision.value} / {sts_answer.decision.decision.value}"
    )
    memo = index._memo  # emptied before each call of the "memo miss" paths

    def ak_auth(n: int) -> None:
        for _ in range(n):
            index.authenticate(ak_id, ak_secret)

    def sts_auth(n: int) -> None:
        for _ in range(n):
            index.authenticate_session(sts_id, sts_secret, token)

    verified = index._verified_sessions  # emptied before each call of the "first request" path

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

    paths: list[tuple[str, Callable[[int], None], Callable[[int], None]]] = [
        ("authenticate only", ak_auth, sts_auth),
        ("authenticate only, a session's first request (nothing remembered)", ak_auth, sts_first),
        ("authenticate + decide_for, memo hit", ak_hit, sts_hit),
        ("authenticate + decide_for, memo miss (evaluator runs)", ak_miss, sts_miss),
    ]
    result = InProcess(shape)
    for label, _, _ in paths:
        result.pairs[label] = ([], [])
    for round_ in range(rounds):
        for label, ak, sts in paths:
            ak_runs, sts_runs = result.pairs[label]
            order = [(ak, ak_runs), (sts, sts_runs)]
            for run, out in order if round_ % 2 == 0 else reversed(order):
                out.append(_time_batches(label, run, batches=batches))
    return result


# -- servers and set-up over HTTP -----------------------------------------------------------


def _with_schema(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


@contextmanager
def postgres_schema(dsn: str) -> Iterator[str]:
    """A fresh schema ``mandate_bench_sts_<hex>``; yield the URL naming it; drop only it."""
    name = f"mandate_bench_sts_{secrets.token_hex(4)}"
    schema = sql.Identifier(name)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    try:
        yield _with_schema(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


@contextmanager
def postgres_server(workdir: Path, database_url: str) -> Iterator[str]:
    """``mandate migrate`` then ``mandate serve`` on ``database_url``; yield the server's URL.

    (``tests.bench.decide.mandate_server`` starts SQLite only.)
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MANDATE_DATABASE_URL": database_url,
        "MANDATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MANDATE_STATE_DIR": str(workdir),
    }
    command = [sys.executable, "-m", "api.cli"]
    subprocess.run(  # noqa: S603 (our own interpreter and module)
        [*command, "migrate"], env=env, check=True, capture_output=True
    )
    port = _free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [*command, "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


class Api:
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


def set_up(api: Api, *, toggle_users: int) -> Principals:
    """tests.bench.decide's principal, the role, app-server, a session, the toggled keys.

    (``decide.set_up_over_http`` does not return the root's key, which the role needs.)
    """
    call = api.call
    opened = call("POST", "/v1/accounts", f"Bearer {ADMIN_TOKEN}", {"name": "Bench"})
    account_id = opened["account_id"]
    root = _basic(**opened["root_access_key"])
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
    user = _basic(key["access_key_id"], key["access_key_secret"])

    role = {"role_name": ROLE_NAME, "assume_role_policy_document": trust_policy(account_id)}
    call("POST", f"{base}/roles", root, role)
    for name in POLICY_NAMES:
        call("PUT", f"{base}/roles/{ROLE_NAME}/policies/Custom/{name}", root)
    call("POST", f"{base}/users", root, {"user_name": APP_USER})
    app_key = call("POST", f"{base}/users/{APP_USER}/access-keys", root)
    call("PUT", f"{base}/users/{APP_USER}/policies/System/AliyunSTSAssumeRoleAccess", root)
    app = _basic(app_key["access_key_id"], app_key["access_key_secret"])
    issued = call(
        "POST",
        "/v1/sts/assume-role",
        app,
        assume_role_body(account_id) | {"duration_seconds": SESSION_DURATION},
    )["credentials"]
    sts = _basic(issued["access_key_id"], issued["access_key_secret"])

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


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid Lua string literal


def _static_script(target: Target) -> str:
    lines = [f"wrk.method = {_lua(target.method)}"]
    if target.body is not None:
        lines.append(f"wrk.body = {_lua(target.body.decode())}")
    lines += [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in target.headers.items()]
    return "\n".join(lines) + "\n"


def _toggle_script(root: str, keys: list[tuple[str, str]], threads: int) -> str:
    """Each wrk thread flips its share of the keys in turn: opposite, back, opposite, …

    ``keys`` holds (path, current status). The two requests of each key are formatted once.
    """
    rows = ",\n".join(f"  {{{_lua(path)}, {_lua(status)}}}" for path, status in keys)
    return f"""wrk.method = "PATCH"
wrk.headers["Authorization"] = {_lua(root)}
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


def _parse_wrk(output: str, label: str, concurrency: int) -> tuple[LoadResult, int]:
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
        _wrk_latency(output, "50"),
        _wrk_latency(output, "99"),
        errors,
    )
    return result, int(done.group(1)) if done else 0


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
    threads = min(2, concurrency)
    script_path = workdir / f"wrk-{re.sub(r'[^a-z]+', '-', label.lower()).strip('-')}.lua"

    def run(seconds: float) -> tuple[str, int]:
        script_path.write_text(script())
        before = api.settled_head()
        command = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", "-s", str(script_path), str(api.client.base_url) + path]
        done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
        return done.stdout, api.settled_head() - before

    run(warmup)
    output, events = run(duration)
    result, calls = _parse_wrk(output, label, concurrency)
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
                (ASSUME_LABEL, assume.path, lambda: _static_script(assume), result.assume),
            ]
            for label, path, script, out in runs if round_ % 2 == 0 else reversed(runs):
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


def bench_authorize(
    url: str,
    workdir: Path,
    *,
    rounds: int,
    duration: float,
    warmup: float,
    wrk: str | None,
    processes: int,
) -> dict[int, tuple[list[LoadResult], list[LoadResult]]]:
    api = Api(url)
    try:
        who = set_up(api, toggle_users=0)
    finally:
        api.close()
    body = json.dumps({"action": ACTION, "resource": resource(who.account_id)}).encode()
    json_type = {"Content-Type": "application/json"}
    targets = {
        AK_LABEL: Target("POST", "/v1/authorize", body, {"Authorization": who.user, **json_type}),
        STS_LABEL: Target(
            "POST",
            "/v1/authorize",
            body,
            {"Authorization": who.sts, "X-Security-Token": who.security_token, **json_type},
        ),
    }
    results: dict[int, tuple[list[LoadResult], list[LoadResult]]] = {}
    for concurrency in AUTHORIZE_CONCURRENCIES:
        ak_runs: list[LoadResult] = []
        sts_runs: list[LoadResult] = []
        results[concurrency] = (ak_runs, sts_runs)
        order = [(AK_LABEL, ak_runs), (STS_LABEL, sts_runs)]
        for round_ in range(rounds):
            for label, out in order if round_ % 2 == 0 else reversed(order):
                if wrk is not None:
                    run = wrk_load(
                        wrk,
                        url,
                        label,
                        targets[label],
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        workdir=workdir,
                    )
                else:
                    run = python_load(
                        url,
                        label,
                        targets[label],
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        processes=processes,
                    )
                out.append(run)
    return results


# -- the report -----------------------------------------------------------------------------


def _machine() -> str:
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


def _code_version() -> str:
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


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report_in_process(part: InProcess, rounds: int) -> list[str]:
    out = [
        f"### (2a) In process — {part.shape}",
        "",
        f"Median µs per call (median over {rounds} alternating rounds of each round's median "
        "batch mean); ratio = STS / AccessKey, median of the rounds' ratios.",
        "",
        "| path | AccessKey µs | STS µs | STS / AccessKey (rounds) |",
        "|---|---:|---:|---|",
    ]
    for label, (ak, sts) in part.pairs.items():
        ak_us = [t.median_us for t in ak]
        sts_us = [t.median_us for t in sts]
        ratios = _ratios(sts_us, ak_us)
        out.append(
            f"| {label} | {_median(ak_us):.2f} | {_median(sts_us):.2f} "
            f"| **{_median(ratios):.2f}** ({_list(ratios)}) |"
        )
    return out


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
            f"| `{label}` | {_median([r.result.requests_per_s for r in runs]):,.0f} "
            f"| {_median([r.result.p50_ms for r in runs]):.2f} "
            f"| {_median([r.result.p99_ms for r in runs]):.2f} "
            f"| {sum(r.result.errors for r in runs)} | {_median(events):.2f} |"
        )
    ratios = _ratios(
        [r.result.requests_per_s for r in writes.assume],
        [r.result.requests_per_s for r in writes.toggle],
    )
    ratio = _median(ratios)
    # Every toggle call adds one event to one user's history (warm-ups included).
    toggles = _median([r.calls for r in writes.toggle]) * (1 + warmup / duration)
    grown = 2 + toggles / max(1, writes.toggle_users)
    out += [
        "",
        f"AssumeRole / status flip, calls/s, median of the rounds' ratios ({_list(ratios)}): "
        f"**{ratio:.2f}** (target ≥ {ASSUME_RATIO_TARGET:g}: "
        f"{_mark(ratio >= ASSUME_RATIO_TARGET)})",
        f"In a round, each toggled user's history grows from 2 to about {grown:.0f} events "
        "(the ledger replays it on every command); each round has its own users.",
    ]
    return out


def report_authorize(
    results: dict[int, tuple[list[LoadResult], list[LoadResult]]], generator: str
) -> list[str]:
    out = [
        "### (2b) `POST /v1/authorize` (self form): AccessKey vs STS — HTTP, SQLite store",
        "",
        f"Load generator: {generator}. req/s, p50, p99: medians over the rounds. Ratios: STS / "
        "AccessKey, median of the rounds' ratios (latency: lower is better).",
        "",
        "| credentials | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for concurrency, (ak, sts) in results.items():
        for label, runs in ((AK_LABEL, ak), (STS_LABEL, sts)):
            out.append(
                f"| {label} | {concurrency} | {_median([r.requests_per_s for r in runs]):,.0f} "
                f"| {_median([r.p50_ms for r in runs]):.3f} "
                f"| {_median([r.p99_ms for r in runs]):.3f} | {sum(r.errors for r in runs)} |"
            )
    out += [
        "",
        "| concurrency | STS / AccessKey p50 (rounds) | p99 | req/s | target: p50 ≤ "
        f"{LATENCY_RATIO_TARGET:g}x |",
        "|---:|---|---|---|---|",
    ]
    for concurrency, (ak, sts) in results.items():
        p50 = _ratios([r.p50_ms for r in sts], [r.p50_ms for r in ak])
        p99 = _ratios([r.p99_ms for r in sts], [r.p99_ms for r in ak])
        rate = _ratios([r.requests_per_s for r in sts], [r.requests_per_s for r in ak])
        out.append(
            f"| {concurrency} | **{_median(p50):.2f}** ({_list(p50)}) | {_median(p99):.2f} "
            f"| {_median(rate):.2f} | {_mark(_median(p50) <= LATENCY_RATIO_TARGET)} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.sts", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get("MANDATE_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="a database to make a throwaway schema in (default: $MANDATE_BENCH_POSTGRES or "
        f"{DEFAULT_POSTGRES})",
    )
    parser.add_argument(
        "--write-concurrency", type=int, default=16, help="wrk connections for part 1 (16)"
    )
    parser.add_argument(
        "--toggle-users",
        type=int,
        default=None,
        help="users whose keys the baseline flips, per round (default 256; 64 with --quick)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator for part 2b (part 1 needs wrk)",
    )
    parser.add_argument("--client-processes", type=int, default=4, help="Python generator")
    parser.add_argument(
        "--parts",
        default="1,2a,2b",
        help="which parts to run, comma-separated (default 1,2a,2b)",
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"1", "2a", "2b"}:
        parser.error("--parts takes a comma-separated subset of 1, 2a, 2b")
    rounds = max(1, args.rounds)
    duration, warmup = (2.0, 1.0) if args.quick else (6.0, 1.0)
    batches = 40 if args.quick else 150
    toggle_users = args.toggle_users or (64 if args.quick else 256)
    wrk = shutil.which("wrk") if args.generator in ("auto", "wrk") else None
    if args.generator == "wrk" and wrk is None:
        raise SystemExit("--generator wrk: wrk is not on PATH")
    started = time.monotonic()
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
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
            sections.append(report_in_process(in_process, rounds))
        if "1" in parts:
            if shutil.which("wrk") is None:
                notes.append("Part 1 skipped: it needs wrk on PATH (its baseline flips keys).")
            else:
                try:
                    with (
                        postgres_schema(args.postgres_dsn) as database_url,
                        postgres_server(workdir / "pg", database_url) as url,
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
            (workdir / "sqlite").mkdir()
            with mandate_server(workdir / "sqlite") as url:
                authorize = bench_authorize(
                    url,
                    workdir,
                    rounds=rounds,
                    duration=duration,
                    warmup=warmup,
                    wrk=wrk,
                    processes=args.client_processes,
                )
            generator = (
                f"wrk (2 threads, 1 at concurrency 1; {rounds} alternating rounds of "
                f"{duration:.0f} s each after a {warmup:.0f} s warm-up)"
                if wrk
                else f"Python ({args.client_processes} worker processes; {rounds} rounds)"
            )
            sections.append(report_authorize(authorize, generator))
    elapsed = time.monotonic() - started
    header = [
        f"## Mandate STS benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Code: {_code_version()}. "
        f"Machine: {_machine()}; load before the run {load}. HTTP load generators and "
        f"servers share these cores. Stores: {'; '.join(stores)}. "
        f"HTTP runs: {duration:.0f} s measured after a {warmup:.0f} s warm-up, {rounds} "
        f"alternating rounds; in process: {rounds} rounds x {batches} batches of ~2 ms. "
        f"Total {elapsed:.0f} s.",
        "",
    ]
    body = [line for section in sections for line in [*section, ""]]
    print("\n".join(header + body + notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
