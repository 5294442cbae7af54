"""Conflicting load on two API processes and a projection runner, all real, on PostgreSQL.

Issue 14, item 1: 16 client threads send commands that fight over the same entities — attach
and detach of one policy on one user, deleting users while others attach to them, adding and
removing one group's members, revoking an entrustment while its delegates assume its role and
make decisions — to two ``mandate serve`` processes on 127.0.0.1, while ``mandate projections
run`` keeps the SQL projections. Every request and answer is kept. Afterwards:

(a) every acknowledged write (an answer with a position) is in the log exactly once: the events
    after the setup split at the acknowledged positions, and the tail of each slice is exactly
    the events its command writes, on the entity it named, once (positions are distinct);
(b) every refused write left nothing: no event lies outside an acknowledged write, and
    nothing is recorded on a user after its deletion;
(c) each SQL projection equals a clean rebuild from position 0, table by table, row by row;
(d) ``mandate audit verify`` says the chains and checkpoints verify;
(e) no decision was allowed after the revocation was applied: no Allow and no session for the
    delegates from a process that had applied it when asked (its earlier answers' positions
    bound what it had applied from below), no Allow answered with a position at or past it
    (a decision's position is exactly the state it decided on), no ``SessionIssued`` through
    the contract anywhere in the log after it, and each live decision of the decider's user
    is what the log says at the position it answered.

Every write carries an ``Idempotency-Key``; a client that hears no answer (a killed process,
a 503 without a position, 409 ``IdempotencyKeyInFlight``) sends it again with the same key, so
every write is answered in the end, and one key answers one position. The second test does
all this while an API process and the projection runner are killed -9 (and restarted) and a
throwaway PostgreSQL cluster is restarted, mid-load; 5xx only as 503.
Bounded: ``MANDATE_TEST_CONFLICT_ROUNDS`` requests a thread (default 60: ~1,000 requests).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.rebuild import open_copy
from mandate.projections.store.sql_projection import ProjectionWorker
from tests.conftest import _free_port, fresh_schema_url
from tests.e2e.test_store_outage import Cluster

pytestmark = pytest.mark.postgres

ADMIN_TOKEN = "conflict-admin-token-" + "a" * 32
HASH_KEY = "conflict-hash-key-" + "h" * 32
ROUNDS = int(os.environ.get("MANDATE_TEST_CONFLICT_ROUNDS", "60"))
CHECKPOINT_EVERY = 25
STARTUP_TIMEOUT = 60.0
POLICY = "Shared"
GROUP = "ops"
MEMBERS = ("m0", "m1", "m2")
DELEGATES = ("e0", "e1", "e2", "e3")
VICTIMS = 6
CONTRACT = "MSA-LOAD-1"
RETRY_FOR = 60.0  # seconds a client keeps retrying one write with its Idempotency-Key

Headers = dict[str, str]


# --- the processes ----------------------------------------------------------------------------


class Processes:
    """Two ``mandate serve`` processes and one ``mandate projections run``, on one store."""

    def __init__(self, database_url: str, state_dir: Path) -> None:
        self.env = {
            **os.environ,
            "MANDATE_DATABASE_URL": database_url,
            "MANDATE_HASH_KEY": HASH_KEY,
            "MANDATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "MANDATE_STATE_DIR": str(state_dir),
            "MANDATE_RUN_PROJECTIONS": "false",  # the runner alone keeps the projections
            "MANDATE_AUDIT_CHECKPOINT_EVERY_EVENTS": str(CHECKPOINT_EVERY),
            "MANDATE_LOG_REQUESTS": "false",
        }
        self.logs = state_dir
        self.ports = [_free_port(), _free_port()]
        self.servers: list[subprocess.Popen[bytes] | None] = [None, None]
        self.runner: subprocess.Popen[bytes] | None = None
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.started = 0

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"{name}-{self.started}.log").open("wb")
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "mandate.api.cli", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "mandate.api.cli", "migrate"],
            env=self.env,
            check=True,
            timeout=120,
            capture_output=True,
        )

    def start_server(self, i: int) -> None:
        self.servers[i] = self._spawn(
            f"serve{i}", "serve", "--host", "127.0.0.1", "--port", str(self.ports[i])
        )

    def start_runner(self) -> None:
        self.runner = self._spawn("runner", "projections", "run")

    def wait_ready(self, i: int) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        process = self.servers[i]
        assert process is not None
        while time.monotonic() < deadline:
            assert process.poll() is None, f"serve {i} exited: {self.log_tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.urls[i] + "/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"serve {i} did not start in {STARTUP_TIMEOUT} s", pytrace=False)

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    def stop(self) -> list[int]:
        codes = []
        for process in [*self.servers, self.runner]:
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    codes.append(process.wait(timeout=30))
                except subprocess.TimeoutExpired:
                    process.kill()
                    codes.append(process.wait(timeout=30))
        return codes

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + path.read_text(errors="replace")[-6000:]
            for path in sorted(self.logs.glob("*.log"))
        )


# --- the record of every request --------------------------------------------------------------


@dataclass
class Call:
    """One request and its answer (status 0: no answer reached the client)."""

    thread: str
    kind: str
    target: tuple[str, ...]
    server: int
    method: str
    path: str
    status: int = 0
    body: Any = None
    started: float = 0.0
    ended: float = 0.0
    key: str | None = None  # the Idempotency-Key every attempt of one write carries
    unsent: bool = False  # the connection was refused (a killed process): never sent
    replayed: bool = False  # Idempotency-Replayed: an earlier attempt's answer

    @property
    def position(self) -> int | None:
        """The position a write answered (2xx, or 503 'committed, not yet applied')."""
        answered = 200 <= self.status < 300 or self.status == 503
        if answered and self.kind in WRITES and isinstance(self.body, dict):
            position = self.body.get("position")
            return position if isinstance(position, int) else None
        return None


@dataclass
class World:
    """What the setup made: accounts, their root headers, the entrustment."""

    owner: str
    owner_root: Headers
    operator: str
    operator_root: Headers
    decider: Headers
    delegates: dict[str, Headers]
    entrustment_id: str
    role_arn: str
    setup_head: int


@dataclass
class Load:
    """The threads, their shared state and every call they made."""

    world: World
    urls: list[str]
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    victim: int = 0  # the victim user the attachers aim at now
    revocation: Call | None = None
    applied_everywhere: float = float("inf")  # when every process's index had the revocation
    counter: itertools.count[int] = field(default_factory=itertools.count)
    faults_done: threading.Event = field(default_factory=threading.Event)
    faults: list[tuple[str, float]] = field(default_factory=list)
    figures: collections.Counter[str] = field(default_factory=collections.Counter)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def more(self, sent: int) -> bool:
        """Another request? ``ROUNDS`` a thread, and on until the faults are over."""
        return sent < ROUNDS or not self.faults_done.is_set()

    def send(
        self,
        client: httpx.Client,
        thread: str,
        kind: str,
        target: tuple[str, ...],
        method: str,
        path: str,
        headers: Headers,
        body: Any = None,
    ) -> Call:
        key = uuid.uuid4().hex if kind in WRITES else None
        if key is not None:
            headers = {**headers, "Idempotency-Key": key}
        deadline = time.monotonic() + RETRY_FOR
        while True:
            call = self._attempt(client, thread, kind, target, method, path, headers, body)
            call.key = key
            with self.lock:
                self.calls.append(call)
            if key is None or not _retry(call) or time.monotonic() > deadline:
                return call
            time.sleep(0.2)  # the same request, the same key: its answer, or it is made now

    def _attempt(
        self,
        client: httpx.Client,
        thread: str,
        kind: str,
        target: tuple[str, ...],
        method: str,
        path: str,
        headers: Headers,
        body: Any,
    ) -> Call:
        server = next(self.counter) % len(self.urls)  # the same entity through both processes
        call = Call(thread, kind, target, server, method, path, started=time.monotonic())
        try:
            response = client.request(
                method, self.urls[server] + path, json=body, headers=headers, timeout=30.0
            )
            call.status = response.status_code
            call.replayed = response.headers.get("idempotency-replayed") == "true"
            with contextlib.suppress(ValueError):
                call.body = response.json()
        except httpx.HTTPError as error:
            call.body = repr(error)
            if isinstance(error, httpx.ConnectError):  # a killed process: never sent
                call.unsent = True
                time.sleep(0.05)
        call.ended = time.monotonic()
        return call


def _retry(call: Call) -> bool:
    """Whether a client must send a write again: no answer, the store away (503 with no
    position), or its first attempt still in flight (409 IdempotencyKeyInFlight)."""
    if call.status == 0 or (call.status == 503 and call.position is None):
        return True
    return (
        call.status == 409
        and isinstance(call.body, dict)
        and (call.body.get("code") == "IdempotencyKeyInFlight")
    )


def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _basic(client: httpx.Client, key: dict[str, Any]) -> Headers:
    pair = httpx.BasicAuth(key["access_key_id"], key["access_key_secret"])
    request = client.build_request("GET", "/")
    return {"Authorization": next(pair.auth_flow(request)).headers["Authorization"]}


def _set_up(url: str) -> World:
    """Owner A (a policy, users, a group) entrusts O&M to B; B delegates to four employees."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=url, timeout=30.0) as c:
        opened = _ok(c.post("/v1/accounts", json={"name": "Owner"}, headers=admin))
        owner, owner_root = opened["account_id"], _basic(c, opened["root_access_key"])
        opened = _ok(c.post("/v1/accounts", json={"name": "Operator"}, headers=admin))
        operator, operator_root = opened["account_id"], _basic(c, opened["root_access_key"])
        a = f"/v1/accounts/{owner}"
        statement = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}
        document = {"Version": "1", "Statement": [statement]}
        _ok(
            c.post(
                f"{a}/policies",
                json={"policy_name": POLICY, "policy_document": document},
                headers=owner_root,
            )
        )
        for name in ("target", *MEMBERS):
            _ok(c.post(f"{a}/users", json={"user_name": name}, headers=owner_root))
        decider = _basic(c, _ok(c.post(f"{a}/users/target/access-keys", headers=owner_root)))
        _ok(c.post(f"{a}/groups", json={"group_name": GROUP}, headers=owner_root))
        scope = {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "ecs:*", "Resource": f"acs:ecs:*:{owner}:instance/*"}
            ],
        }
        granted = _ok(
            c.post(
                f"{a}/entrustments",
                json={"trustee_account_id": operator, "scope": scope, "contract_ref": CONTRACT},
                headers=owner_root,
            )
        )
        b = f"/v1/accounts/{operator}"
        delegates = {}
        for name in DELEGATES:
            _ok(c.post(f"{b}/users", json={"user_name": name}, headers=operator_root))
            key = _ok(c.post(f"{b}/users/{name}/access-keys", headers=operator_root))
            delegates[name] = _basic(c, key)
            _ok(
                c.put(
                    f"{b}/users/{name}/policies/System/AliyunSTSAssumeRoleAccess",
                    headers=operator_root,
                ),
                200,
            )
            _ok(
                c.post(
                    f"{b}/delegations",
                    json={
                        "entrustment_id": granted["entrustment_id"],
                        "grantee": f"acs:ram::{operator}:user/{name}",
                        "scope": scope,
                    },
                    headers=operator_root,
                )
            )
        head = int(_ok(c.get("/readyz"), 200)["head"])
    return World(
        owner,
        owner_root,
        operator,
        operator_root,
        decider,
        delegates,
        granted["entrustment_id"],
        granted["role_arn"],
        head,
    )


# --- the conflicting threads -----------------------------------------------------------------


def _attacher(load: Load, name: str, seed: int) -> None:
    """Attach and detach the shared policy on the same user, at random."""
    rnd, w = random.Random(seed), load.world
    path = f"/v1/accounts/{w.owner}/users/target/policies/Custom/{POLICY}"
    with httpx.Client() as client:
        sent = 0
        while load.more(sent):
            sent += 1
            attach = rnd.random() < 0.5
            kind = "attach" if attach else "detach"
            load.send(
                client, name, kind, ("target",), "PUT" if attach else "DELETE", path, w.owner_root
            )


def _victim_lifecycle(load: Load, name: str, _: int) -> None:
    """Create a victim user, try to delete it while it may hold the policy, then delete it."""
    w = load.world
    users = f"/v1/accounts/{w.owner}/users"
    with httpx.Client() as client:
        for k in itertools.count():
            if k >= VICTIMS and load.faults_done.is_set():
                break
            victim = f"victim-{k}"
            load.send(
                client,
                name,
                "create_user",
                (victim,),
                "POST",
                users,
                w.owner_root,
                {"user_name": victim},
            )
            load.victim = k
            for _ in range(max(1, ROUNDS // (2 * VICTIMS))):
                time.sleep(0.01)
                load.send(
                    client,
                    name,
                    "delete_user",
                    (victim,),
                    "DELETE",
                    f"{users}/{victim}",
                    w.owner_root,
                )
            load.send(
                client,
                name,
                "delete_user",
                (victim,),
                "DELETE",
                f"{users}/{victim}?detach=true",
                w.owner_root,
            )


def _victim_attacher(load: Load, name: str, seed: int) -> None:
    """Attach and detach the policy on whichever victim is current: it may be gone already."""
    rnd, w = random.Random(seed), load.world
    with httpx.Client() as client:
        sent = 0
        while load.more(sent):
            sent += 1
            victim = f"victim-{load.victim}"
            attach = rnd.random() < 0.6
            path = f"/v1/accounts/{w.owner}/users/{victim}/policies/Custom/{POLICY}"
            load.send(
                client,
                name,
                "attach" if attach else "detach",
                (victim,),
                "PUT" if attach else "DELETE",
                path,
                w.owner_root,
            )


def _member(load: Load, name: str, seed: int) -> None:
    """Add and remove the group's members, at random."""
    rnd, w = random.Random(seed), load.world
    with httpx.Client() as client:
        sent = 0
        while load.more(sent):
            sent += 1
            user = rnd.choice(MEMBERS)
            add = rnd.random() < 0.5
            path = f"/v1/accounts/{w.owner}/groups/{GROUP}/members/{user}"
            load.send(
                client,
                name,
                "add_member" if add else "remove_member",
                (user,),
                "PUT" if add else "DELETE",
                path,
                w.owner_root,
            )


def _delegate(load: Load, name: str, _: int) -> None:
    """Assume the entrusted role, then use the session: until and after the revocation."""
    w = load.world
    employee = DELEGATES[int(name.rsplit("-", 1)[1])]
    question = {
        "action": "ecs:RebootInstance",
        "resource": f"acs:ecs:cn-hangzhou:{w.owner}:instance/i-1",
    }
    with httpx.Client() as client:
        sent = 0
        while load.more(sent):
            assumed = load.send(
                client,
                name,
                "assume_role",
                (employee,),
                "POST",
                "/v1/sts/assume-role",
                w.delegates[employee],
                {"role_arn": w.role_arn, "role_session_name": f"{employee}-s"},
            )
            sent += 1
            if assumed.status != 201:
                continue
            credentials = assumed.body["credentials"]
            session = {
                **_basic(client, credentials),
                "X-Security-Token": credentials["security_token"],
            }
            for _ in range(3):
                load.send(
                    client,
                    name,
                    "authorize",
                    (employee, credentials["access_key_id"]),
                    "POST",
                    "/v1/authorize",
                    session,
                    question,
                )
                sent += 1


def _revoker(load: Load, name: str, _: int) -> None:
    """Revoke the entrustment once the delegates are well under way."""
    w = load.world
    while True:
        with load.lock:
            allowed = sum(
                1
                for c in load.calls
                if c.kind == "authorize"
                and c.target[0] in DELEGATES
                and c.status == 200
                and c.body.get("allowed")
            )
            done = len(load.calls)
        if allowed >= 8 or done >= ROUNDS * 6:
            break
        time.sleep(0.02)
    path = f"/v1/accounts/{w.owner}/entrustments/{w.entrustment_id}/revoke"
    deadline = time.monotonic() + 120
    with httpx.Client() as client:
        while time.monotonic() < deadline:  # until answered: a fault may take the answer
            call = load.send(
                client,
                name,
                "revoke",
                (w.entrustment_id,),
                "POST",
                path,
                w.owner_root,
                {"reason": "load test"},
            )
            if call.position is not None:
                load.revocation = call
                break
            if 400 <= call.status < 500:  # revoked already, by an attempt that got no answer
                break
            time.sleep(0.2)
        # From when has every process applied it? Each one's /readyz says its index position.
        revoked_at = load.revocation.position if load.revocation else None
        waiting = set(range(len(load.urls)))
        while revoked_at is not None and waiting and time.monotonic() < deadline:
            for server in sorted(waiting):
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    ready = client.get(load.urls[server] + "/readyz", timeout=5.0).json()
                    if ready["index_position"] >= revoked_at:
                        waiting.discard(server)
            time.sleep(0.005)
        load.applied_everywhere = time.monotonic()


def _decider(load: Load, name: str, _: int) -> None:
    """The target user asks what the shared policy allows, while it is attached and detached."""
    w = load.world
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{w.owner}:bucket/k"}
    with httpx.Client() as client:
        sent = 0
        while load.more(sent):
            sent += 1
            load.send(
                client, name, "authorize", ("target",), "POST", "/v1/authorize", w.decider, question
            )


THREADS = (
    [(_attacher, f"attach-{i}") for i in range(4)]
    + [(_victim_lifecycle, "victims")]
    + [(_victim_attacher, f"victim-attach-{i}") for i in range(2)]
    + [(_member, f"member-{i}") for i in range(3)]
    + [(_delegate, f"delegate-{i}") for i in range(len(DELEGATES))]
    + [(_revoker, "revoker"), (_decider, "decider")]
)


def _run_load(load: Load) -> float:
    started = time.monotonic()
    threads = [
        threading.Thread(target=run, args=(load, name, seed), name=name, daemon=True)
        for seed, (run, name) in enumerate(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive(), f"{thread.name} did not finish"
    return time.monotonic() - started


# --- the checks -------------------------------------------------------------------------------


@dataclass
class Stored:
    position: int
    topic: str
    originator: Any
    event: Any

    @property
    def name(self) -> str:
        return self.topic.split(":", 1)[1].rsplit(".v", 1)[0]


def _stored(runtime: Runtime) -> list[Stored]:
    recorder, mapper = runtime.ledger.recorder, runtime.ledger.mapper
    notifications = recorder.select_notifications(1, 1_000_000)
    return [
        Stored(n.id, n.topic, n.originator_id, mapper.to_domain_event(n)) for n in notifications
    ]


# What each command writes (by event name), and the event that says it was written.
EXPECTED: dict[str, set[str]] = {
    "attach": {"User.PolicyAttached"},
    "detach": {"User.PolicyDetached"},
    "add_member": {"UserAddedToGroup"},
    "remove_member": {"UserRemovedFromGroup"},
    "create_user": {"NameClaimed", "UserCreated", "NameReclaimed"},
    "delete_user": {"UserDeleted", "NameReleased", "User.PolicyDetached", "UserRemovedFromGroup"},
    "assume_role": {"SessionIssued"},
    "revoke": {"EntrustmentRevoked"},
}
PRIMARY = {
    "User.PolicyAttached": "attach",
    "User.PolicyDetached": "detach",
    "UserAddedToGroup": "add_member",
    "UserRemovedFromGroup": "remove_member",
    "UserCreated": "create_user",
    "UserDeleted": "delete_user",
    "SessionIssued": "assume_role",
    "EntrustmentRevoked": "revoke",
}
WRITES = set(EXPECTED)


def _final(load: Load) -> dict[str, Call]:
    """Each write's last attempt, by its Idempotency-Key."""
    last: dict[str, Call] = {}
    for call in sorted(load.calls, key=lambda c: c.started):
        if call.key is not None:
            last[call.key] = call
    return last


def _unanswered(call: Call) -> bool:
    """A write sent whose outcome the client does not know: it may or may not be in the log."""
    return call.kind in WRITES and call.position is None and _retry(call) and not call.unsent


def _own(call: Call, chunk: list[Stored], users: dict[Any, str]) -> int:
    """How many of the last events of ``chunk`` (its slice) the acknowledged ``call`` wrote."""
    if call.kind == "create_user":
        return 2  # its name claimed (or reclaimed), the user created
    if call.kind != "delete_user":
        return 1
    n = 0
    for s in reversed(chunk):  # the user's own detachments and removals, its name released
        if s.name == "NameReleased" or (
            s.name in EXPECTED["delete_user"] and users.get(s.originator) == call.target[0]
        ):
            n += 1
        else:
            break
    return n


def _explain(orphans: list[Stored], unanswered: list[Call], users: dict[Any, str]) -> int:
    """Each event no acknowledged write made must be the work of a write that got no answer
    (a process killed mid-request, the store restarted at commit): one such write, of that
    kind, on that entity, for each command-defining event. Answers how many were found."""
    left = list(unanswered)
    deleted = {users.get(s.originator) for s in orphans if s.name == "UserDeleted"}
    found = 0
    for s in orphans:
        kind = PRIMARY.get(s.name)
        user = users.get(s.originator)
        if kind is None or (kind in ("detach", "remove_member") and user in deleted):
            continue  # part of a command whose defining event is checked itself
        if kind == "assume_role":
            target = s.event.source_arn.rsplit("/", 1)[1]
        elif kind == "revoke":
            target = str(s.originator)
        else:
            target = user or ""
        match = next(
            (c for c in left if c.kind == kind and (kind == "revoke" or c.target[0] == target)),
            None,
        )
        assert match is not None, f"an event no write made (an orphan): {s}"
        left.remove(match)
        found += 1
    return found


def _check_log(load: Load, stored: list[Stored]) -> dict[str, int]:
    """(a) and (b): the log after the setup is exactly the acknowledged writes' slices, plus
    (after faults only) writes whose answer was lost."""
    users = {s.originator: s.event.user_name for s in stored if s.name == "UserCreated"}
    # A deleted user is gone: nothing may be recorded on it after its UserDeleted.
    deleted: dict[Any, int] = {}
    for s in stored:
        assert s.originator not in deleted, (
            f"{s.name} recorded at {s.position} on user {users.get(s.originator)!r}, deleted at "
            f"{deleted.get(s.originator)}"
        )
        if s.name == "UserDeleted":
            deleted[s.originator] = s.position
    after = [s for s in stored if s.position > load.world.setup_head]
    # One write, one key: its attempts answered one position (a replay repeats it), and no
    # two writes share one.
    answers: dict[str, set[int]] = collections.defaultdict(set)
    first: dict[str, Call] = {}
    for c in sorted(load.calls, key=lambda c: c.started):
        if c.position is not None and c.key is not None:
            answers[c.key].add(c.position)
            first.setdefault(c.key, c)
    assert all(len(p) == 1 for p in answers.values()), "one key, two positions"
    written: collections.Counter[str] = collections.Counter()
    written["answers replayed"] = sum(1 for c in load.calls if c.replayed)
    acknowledged = sorted(first.values(), key=lambda c: c.position or 0)
    positions = [c.position for c in acknowledged]
    assert len(positions) == len(set(positions)), "two acknowledged writes share one position"
    by_position = {s.position: s for s in after}
    slices: dict[int | None, list[Stored]] = collections.defaultdict(list)
    bounds = iter(positions)
    bound = next(bounds, None)
    for s in after:
        while bound is not None and s.position > bound:
            bound = next(bounds, None)
        slices[bound].append(s)  # None: after the last acknowledged write
    orphans = list(slices[None])
    for call in acknowledged:
        assert call.position in by_position, f"acknowledged, not in the log: {call}"
        chunk = slices[call.position]
        n = _own(call, chunk, users)
        mine, orphans_here = chunk[len(chunk) - n :], chunk[: len(chunk) - n]
        orphans += orphans_here
        names = {s.name for s in mine}
        assert mine, (call, chunk)
        assert mine[-1].position == call.position, (call, chunk)
        assert names <= EXPECTED[call.kind], (call, [s.name for s in mine])
        defining = [s for s in mine if PRIMARY.get(s.name) == call.kind]
        assert len(defining) == 1, (call, mine)  # the event that says what it did, once
        if call.kind in ("attach", "detach", "add_member", "remove_member", "delete_user"):
            owners = {users.get(s.originator) for s in mine if s.name != "NameReleased"}
            assert owners == {call.target[0]}, (call, owners)
        if call.kind in ("attach", "detach"):
            assert mine[0].event.policy_name == POLICY, (call, mine)
        if call.kind == "create_user":
            assert defining[0].event.user_name == call.target[0], (call, mine)
        if call.kind == "assume_role" and "credentials" in call.body:  # not a lost answer
            assert mine[0].event.access_key_id == call.body["credentials"]["access_key_id"]
        written[call.kind] += 1
    # Every write was answered in the end, if need be by retrying with its key ...
    unanswered = [c for c in _final(load).values() if _unanswered(c)]
    assert not unanswered, unanswered[:5]
    # ... and any write a fault cost its answer (none, then) is in the log once or not at all.
    written["unanswered, found in the log"] = _explain(orphans, unanswered, users)
    written["unanswered, not in the log"] = (
        len(unanswered) - written["unanswered, found in the log"]
    )
    return dict(written)


def _instance(call: Call, restarted: float) -> tuple[int, bool]:
    """Which process answered: the server, and (server 1) whether after its restart."""
    return call.server, call.server == 1 and call.started > restarted


def _floors(load: Load) -> dict[int, int]:
    """For each call (by id), the least position its process had applied when it began.

    Positions of answers only move forward within one process: a write answered with
    position p (2xx: applied here before answering) or a decision answered with position p
    (the index's position) means that process's index held p from then on. So the highest
    such position among the answers of the same process that arrived before a request was
    sent bounds from below the state the request was decided on. (A decision's own
    ``position`` is exactly the state it was decided on.)"""
    restarted = dict(load.faults).get("serve 1 dead", float("inf"))
    marks: dict[tuple[int, bool], list[tuple[float, int]]] = collections.defaultdict(list)
    for c in load.calls:
        # a replay may come from a process that has not applied the write yet: not a mark
        answered = 200 <= c.status < 300 and isinstance(c.body, dict) and not c.replayed
        if answered and isinstance(c.body.get("position"), int):
            marks[_instance(c, restarted)].append((c.ended, c.body["position"]))
    for seen in marks.values():
        seen.sort()
    floors = {}
    for c in load.calls:
        seen = marks[_instance(c, restarted)]
        floors[id(c)] = max((p for t, p in seen if t < c.started), default=0)
    return floors


def _check_decisions(load: Load, stored: list[Stored]) -> dict[str, int]:
    """(e): nothing allowed through the entrustment once the revocation was applied."""
    [event] = [s for s in stored if s.name == "EntrustmentRevoked"]
    revoked_at = event.position
    revocation = load.revocation  # None: its answer was lost, and a retry found it revoked
    assert revocation is None or revocation.position == revoked_at, revocation
    first = min(c.started for c in load.calls if c.kind == "revoke")
    floors = _floors(load)
    figures: collections.Counter[str] = collections.Counter()
    # No session through the contract is written after its revocation, whichever process
    # issued it and whether or not its answer arrived: AssumeRole reads the contract from the
    # log and fences its save on it (domain.ledger.fences).
    contract = event.event.originator_id
    through: set[str] = set()
    for s in stored:
        if s.name != "SessionIssued":
            continue
        issued = s.event
        if issued.role_id == contract or issued.parent_access_key_id in through:
            through.add(issued.access_key_id)
            assert s.position < revoked_at, f"a session through the contract after it: {s}"
    for call in load.calls:
        if call.kind != "assume_role":
            continue
        if call.replayed:  # a retry answered what its first attempt did (counted there)
            continue
        if call.position is not None:
            # Issued only by a process that had not applied the revocation when asked, and
            # written before it.
            assert floors[id(call)] < revoked_at, f"a session issued after: {call}"
            assert call.started < load.applied_everywhere, f"a session issued after: {call}"
            assert call.position < revoked_at, f"a session written after: {call}"
            figures["sessions issued"] += 1
        elif call.status == 403:
            assert call.ended > first, f"refused before the revocation: {call}"
            figures["assume-role refused"] += 1
        else:  # a fault: no answer, the store away, or its first attempt still in flight
            assert call.status in (0, 503) or _retry(call), call
    figures["sessions through the contract in the log"] = len(through)
    for call in load.calls:
        if call.kind != "authorize" or call.target[0] not in DELEGATES:
            continue
        if call.status == 200 and call.body["allowed"]:
            assert floors[id(call)] < revoked_at, f"allowed after the revocation: {call}"
            assert call.started < load.applied_everywhere, f"allowed after the revocation: {call}"
            # the state it decided on held no revocation: strictly before it
            assert call.body["position"] < revoked_at, f"allowed at the revocation: {call}"
            figures["delegate allows"] += 1
        elif call.status in (0, 503):  # a fault
            continue
        else:
            assert call.status == 401, call
            figures["delegate refusals"] += 1
    # The decider's answers agree with the log at exactly the position each answered (the
    # state it decided on), which its process's earlier answers bound from below.
    target_ids = {
        s.originator for s in stored if s.name == "UserCreated" and s.event.user_name == "target"
    }
    changes = [
        (s.position, s.name == "User.PolicyAttached")
        for s in stored
        if s.originator in target_ids and s.name in ("User.PolicyAttached", "User.PolicyDetached")
    ]

    def attached_at(position: int) -> bool:
        return next((a for p, a in reversed(changes) if p <= position), False)

    for call in load.calls:
        if call.kind != "authorize" or call.target != ("target",):
            continue
        if call.status == 0:  # the process was killed under it
            continue
        assert call.status == 200, call
        floor, at = floors[id(call)], call.body["position"]
        assert floor <= at, call
        near = [(p, a) for p, a in changes if floor - 5 <= p <= at + 5]
        assert call.body["allowed"] == attached_at(at), (call.body, call.server, floor, near)
        figures["decider " + ("allows" if call.body["allowed"] else "denies")] += 1
    return dict(figures)


def _dump(store: ReadModelStore) -> dict[str, list[tuple[str, ...]]]:
    dump = {}
    for table in store.table_names():
        suffix = table.removeprefix(store.prefix)
        rows = store.query(f"SELECT * FROM {{p}}{suffix}")  # noqa: S608 (our table names)
        dump[suffix] = sorted(tuple(str(v) for v in dict(row).values()) for row in rows)
    return dump


def _check_projections(runtime: Runtime, head: int) -> dict[str, int]:
    """(c): each projection's copy equals a clean rebuild into a fresh copy, table by table."""
    rows = {}
    for worker in runtime.projection_workers:
        live = worker.store
        assert live.position() == head, (live.prefix, live.position(), head)
        projection = worker.projection
        if isinstance(projection, AuditTrailProjection):
            fresh_projection: Any = AuditTrailProjection(
                projection.signer,
                every_events=projection.every_events,
                every_seconds=projection.every_micros / 1_000_000,
            )
        else:
            fresh_projection = type(projection)()
        clean = open_copy(runtime.store.env, fresh_projection, live.version + 100, create=True)
        try:
            assert ProjectionWorker(runtime.ledger, clean, fresh_projection).catch_up() == head
            mine, theirs = _dump(live), _dump(clean)
            assert sorted(mine) == sorted(theirs)
            for table in mine:
                assert mine[table] == theirs[table], f"{projection.name}{table} differs"
            rows[projection.name] = sum(len(v) for v in mine.values())
        finally:
            clean.drop()
    return rows


def _runtime_when_back(settings: Settings) -> Runtime:
    """A runtime of our own to read the log and the copies, once the store answers again
    (after a restart its pools may still be refusing for a moment)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            runtime = Runtime(settings)
            try:
                runtime.head()
            except BaseException:
                runtime.stop()
                raise
            return runtime
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _caught_up(runtime: Runtime, head: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if all(w.store.position() >= head for w in runtime.projection_workers):
                return True
        time.sleep(0.2)
    return False


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture
def database_url(postgres_dsn: str) -> Iterator[str]:
    with fresh_schema_url(postgres_dsn) as url:
        yield url


Faults = Callable[[Load, Processes], None]


def _scenario(database_url: str, state_dir: Path, faults: Faults | None) -> Load:
    """Serve, load (with ``faults`` in a thread of their own), then every check of item 1."""
    processes = Processes(database_url, state_dir)
    processes.migrate()
    for i in (0, 1):
        processes.start_server(i)
    processes.start_runner()
    runtime: Runtime | None = None
    failures: list[BaseException] = []
    try:
        for i in (0, 1):
            processes.wait_ready(i)
        load = Load(_set_up(processes.urls[0]), processes.urls)
        if faults is None:
            load.faults_done.set()
        else:

            def inject() -> None:
                try:
                    faults(load, processes)
                except BaseException as error:  # surfaced below, in the test's thread
                    failures.append(error)
                finally:
                    load.faults_done.set()

            threading.Thread(target=inject, name="faults", daemon=True).start()
        load.seconds = _run_load(load)
        assert not failures, failures
        settings = Settings(
            database_url=database_url,
            hash_key=HASH_KEY,
            state_dir=state_dir,
            audit_checkpoint_every_events=CHECKPOINT_EVERY,
            run_projections=False,
        )
        runtime = _runtime_when_back(settings)
        head = runtime.head()
        stored = _stored(runtime)
        load.figures.update(_check_log(load, stored))
        load.figures.update(_check_decisions(load, stored))
        if not _caught_up(runtime, head, 60):
            positions = {w.store.prefix: w.store.position() for w in runtime.projection_workers}
            pytest.fail(f"the runner did not reach {head}: {positions}\n{processes.log_tail()}")
        codes = processes.stop()
        # uvicorn ends on SIGTERM by the signal itself (-15); the runner exits 0
        assert all(code in (0, -signal.SIGTERM) for code in codes), (codes, processes.log_tail())
        load.rows = _check_projections(runtime, head)
    finally:
        if runtime is not None:
            runtime.stop()
        processes.stop()
    verified = subprocess.run(
        [sys.executable, "-m", "mandate.api.cli", "audit", "verify"],
        env=processes.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    return load


def _summary(load: Load, title: str) -> str:
    statuses = collections.Counter(c.status for c in load.calls)
    by_kind = collections.Counter(
        (c.kind, c.status, c.body.get("code") if isinstance(c.body, dict) else None)
        for c in load.calls
        if c.status >= 400
    )
    seconds = load.seconds
    text = (
        f"\n{title}: {len(load.calls)} requests in {seconds:.1f} s "
        f"({len(load.calls) / seconds:.0f} req/s) by {len(THREADS)} threads through 2 "
        f"processes; 409 conflicts {statuses[409]}; other 4xx refusals "
        f"{sum(n for s, n in statuses.items() if 400 <= s < 500 and s != 409)}; "
        f"5xx {sum(n for s, n in statuses.items() if s >= 500)}; "
        f"no answer {sum(1 for c in load.calls if c.status == 0 and not c.unsent)}; "
        f"refused connections {sum(1 for c in load.calls if c.unsent)}; "
        f"{dict(load.figures)}; projection rows equal to a clean rebuild {load.rows}; "
        f"refusals {dict(sorted(by_kind.items(), key=str))}"
    )
    print(text)
    return text


def test_conflicting_load_on_two_processes_loses_nothing(database_url: str, tmp_path: Path) -> None:
    load = _scenario(database_url, tmp_path, None)
    _summary(load, "conflicting load")
    errors = [c for c in load.calls if c.status >= 500 or c.status == 0]
    assert not errors, errors[:5]


def _after(load: Load, more: int) -> None:
    """Wait until the load has made ``more`` further requests."""
    target = len(load.calls) + more
    deadline = time.monotonic() + 120
    while len(load.calls) < target and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill_restart(load: Load, processes: Processes, cluster: Cluster) -> None:
    """kill -9 an API process, then the projection runner, then restart PostgreSQL."""
    _after(load, 120)
    load.faults.append(("kill -9 serve 1", time.monotonic()))
    processes.kill(processes.servers[1])
    load.faults.append(("serve 1 dead", time.monotonic()))
    processes.start_server(1)
    processes.wait_ready(1)
    _after(load, 80)
    load.faults.append(("kill -9 projections run", time.monotonic()))
    processes.kill(processes.runner)
    processes.start_runner()
    _after(load, 80)
    load.faults.append(("PostgreSQL restart", time.monotonic()))
    cluster.restart()
    load.faults.append(("PostgreSQL back", time.monotonic()))
    _after(load, 80)


def test_kill_9_and_a_database_restart_under_conflicting_load_lose_nothing(
    tmp_path: Path,
) -> None:
    """Item 3: the same checks hold after kill -9 of an API process and of the projection
    runner and a PostgreSQL restart (a throwaway cluster of our own), all mid-load. Clients
    that got no answer retry by reading the log (no Idempotency-Key yet): each such write is
    either in the log (and then the only unacknowledged events are theirs) or not at all."""
    cluster = Cluster()
    cluster.start()
    try:
        load = _scenario(cluster.url, tmp_path, partial(_kill_restart, cluster=cluster))
    finally:
        cluster.remove()
    _summary(load, "conflicting load with faults " + ", ".join(f for f, _ in load.faults))
    # Only the faults may cost answers: 503 problem+json with Retry-After (the store away, or
    # a write committed and not yet applied), or no answer from the killed process.
    for call in load.calls:
        if call.status >= 500:
            assert call.status == 503, call
            assert isinstance(call.body, dict), call
            assert call.body.get("title"), call
        if call.status == 0 and not call.unsent:
            when = dict(load.faults)
            assert call.server == 1, call
            assert call.started <= when["serve 1 dead"], call
            assert call.ended >= when["kill -9 serve 1"], call
