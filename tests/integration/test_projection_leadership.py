"""One runner per projection copy among many processes on PostgreSQL, and LISTEN/NOTIFY.

Three ``Runtime`` instances on one schema stand for three API processes in the default
configuration (each runs the temporal and audit projections): only the holder of a copy's
advisory lock applies batches, the others neither apply nor reload, no batch is ever refused
as a duplicate (no IntegrityError, no duplicate-key error in PostgreSQL's log when it is
readable), each copy equals a clean rebuild, and a stopped leader's copy is taken over.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mandate.api.runtime import Runtime
from mandate.api.settings import store_config
from mandate.domain.common.audit import acting_as
from mandate.projections.audit.chain import CheckpointSigner
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.leadership import AdvisoryLease, copy_lease
from mandate.projections.store.rebuild import RebuildRefused, rebuild
from mandate.projections.store.sql_projection import ProjectionWorker, SqlProjection, open_copy
from tests.integration.runtimes import started_runtime
from tests.integration.test_index_cache_coherence import ACTOR, _set_up
from tests.integration.test_projection_operations import _dump

WAIT = 10.0
SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


@pytest.fixture
def three(postgres_url: str) -> Iterator[list[Runtime]]:
    """Three processes' runtimes on one schema, every one running the projections."""
    with ExitStack() as stack:
        runtimes = []
        for _ in range(3):
            runtime = started_runtime(postgres_url, run_projections=True, poll_interval=0.02)
            stack.callback(runtime.stop)
            runtimes.append(runtime)
        yield runtimes


def _write_some(runtimes: list[Runtime], rounds: int) -> int:
    """Writes through every runtime in turn; return the head."""
    account, _ = _set_up(runtimes[0])
    position = 0
    for i in range(rounds):
        ledger = runtimes[i % len(runtimes)].ledger
        with acting_as(ACTOR):
            ledger.create_user(account, f"extra-{i}", None)
            position = ledger.attach_policy(account, "user", f"extra-{i}", "Custom", "p0").position
    return position


def _wait_copy(worker: ProjectionWorker, head: int) -> None:
    _until(lambda: worker.store.position() >= head, f"{worker.store.prefix} stuck below {head}")


def _clean(runtime: Runtime, name: str) -> SqlProjection:
    if name == "temporal":
        return TemporalIndexProjection()
    return AuditTrailProjection(CheckpointSigner(Ed25519PrivateKey.generate()), every_events=10**9)


def _assert_equals_clean_rebuild(runtime: Runtime, worker: ProjectionWorker) -> None:
    name = worker.projection.name
    clean = open_copy(runtime.store.env, _clean(runtime, name), 90, create=True)
    try:
        ProjectionWorker(runtime.ledger, clean, _clean(runtime, name)).catch_up()
        ours, theirs = _dump(worker.store), _dump(clean)
        for table in ("_checkpoints", "_state"):  # signed at times, not a function of the log
            ours.pop(table, None)
            theirs.pop(table, None)
        assert ours == theirs
    finally:
        clean.drop()


def _schema(runtime: Runtime) -> str:
    return runtime.store.env["POSTGRES_SCHEMA"]


def _server_log_offset() -> int | None:
    try:
        return SERVER_LOG.stat().st_size if SERVER_LOG.is_file() else None
    except OSError:
        return None


def _duplicate_keys_logged(offset: int | None, schema: str) -> list[str]:
    """Duplicate-key errors the server logged since ``offset`` about this test's schema."""
    if offset is None:
        return []
    try:
        with SERVER_LOG.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for i, line in enumerate(lines):
        if "duplicate key" in line and any(schema in later for later in lines[i + 1 : i + 4]):
            found.append(line)
    return found


def test_one_runner_per_copy_and_the_others_neither_apply_nor_reload(
    three: list[Runtime],
) -> None:
    offset = _server_log_offset()
    head = _write_some(three, rounds=12)
    for name in ("temporal", "audit"):
        workers = [getattr(runtime, name) for runtime in three]
        for worker in workers:
            _wait_copy(worker, head)
        # A read on every process needs the copy current: stand-bys wait, never apply.
        for worker in workers:
            assert worker.wait_for(head, WAIT)
        leaders = [w for w in workers if w.leading]
        assert len(leaders) == 1, f"{name}: {len(leaders)} runners"
        for worker in workers:
            assert worker.conflicts == 0, "a batch was refused as already applied"
            if worker is not leaders[0]:
                assert worker.batches_committed == 0
                assert worker.reloads == 0
        assert leaders[0].batches_committed >= 1
        _assert_equals_clean_rebuild(three[0], leaders[0])
    lags = three[0].projection_lags(head)
    assert {lag["lag_events"] for lag in lags.values()} == {0}
    assert _duplicate_keys_logged(offset, _schema(three[0])) == []


def _advisory_locks_of(url: str, backend_pid: int) -> int:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s",
            (backend_pid,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_stopped_leaders_copy_is_taken_over_within_seconds(
    three: list[Runtime], postgres_url: str
) -> None:
    """Within seconds by construction, not by a stopwatch: the stopped leader's lock is gone
    when ``stop`` returns (its session ended, no expiry to wait out), and every stand-by
    tries the lease again each ``lease_retry`` second; one of them then runs the copy."""
    head = _write_some(three, rounds=2)
    for runtime in three:
        _wait_copy(runtime.temporal, head)
    leader = next(r for r in three if r.temporal.leading)
    lease: Any = leader.temporal.lease
    leader_pid = lease._conn.info.backend_pid
    assert _advisory_locks_of(postgres_url, leader_pid) == 1
    leader.stop()  # its lease's session ends: PostgreSQL releases the lock
    assert _advisory_locks_of(postgres_url, leader_pid) == 0
    others = [r for r in three if r is not leader]
    assert all(r.temporal.lease_retry <= 1.0 for r in others)
    head = _write_some(others, rounds=3)
    for runtime in others:
        _wait_copy(runtime.temporal, head)
    assert sum(r.temporal.leading for r in others) == 1
    assert all(r.temporal.conflicts == 0 for r in three)
    _assert_equals_clean_rebuild(others[0], others[0].temporal)


def test_a_lease_is_exclusive_and_released_with_its_session(postgres_url: str) -> None:
    env = store_config(postgres_url).env
    first, second = AdvisoryLease(env, "x.copy_v1"), AdvisoryLease(env, "x.copy_v1")
    other = AdvisoryLease(env, "x.copy_v2")
    try:
        assert first.acquire()
        assert first.check()
        assert not second.acquire()
        assert other.acquire()  # another copy, another key
        first.close()  # as a dead process's session ends
        assert second.acquire()
    finally:
        for lease in (first, second, other):
            lease.close()


def _until(done: Any, what: str) -> None:
    """Wait for ``done()``: a guard against hanging, not a bound on speed (the reader's poll
    comes after an hour, so only a notification can make it true within ``WAIT``)."""
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_another_process_is_woken_by_notify_not_by_its_poll(postgres_url: str) -> None:
    writer = started_runtime(postgres_url)
    reader = started_runtime(postgres_url, poll_interval=3600.0)  # its poll never comes
    try:
        listener = reader.listener
        assert listener is not None
        assert listener.connected.wait(WAIT)
        heard = listener.notifications
        with acting_as(ACTOR):
            position = writer.ledger.open_account("Notified").root_key.position
        _until(lambda: reader.index.position >= position, "no notification woke the reader")
        assert listener.notifications > heard  # woken by what it heard
        # A listener whose connection is cut reconnects by itself, and wakes followers again.
        pid = listener.backend_pid
        with psycopg.connect(_dsn(postgres_url), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        _until(lambda: listener.backend_pid not in (None, pid), "the listener did not reconnect")
        heard = listener.notifications
        with acting_as(ACTOR):
            position = writer.ledger.open_account("Again").root_key.position
        _until(lambda: reader.index.position >= position, "no notification after reconnecting")
        assert listener.notifications > heard
    finally:
        reader.stop()
        writer.stop()


def _dsn(url: str) -> str:
    return url.split("?", 1)[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_env(url: str, state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MANDATE_DATABASE_URL": url,
        "MANDATE_HASH_KEY": "k" * 40,
        "MANDATE_ADMIN_TOKEN": "t" * 40,
        "MANDATE_STATE_DIR": str(state),
    }


def _call(port: int, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    """One request on a connection of its own (so the kernel may pick either process)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(
            method, path, body=data, headers={"content-type": "application/json", **headers}
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_serve_with_two_workers_reads_its_writes_on_either_process(
    postgres_url: str, tmp_path: Path
) -> None:
    env = _process_env(postgres_url, tmp_path)
    offset = _server_log_offset()
    subprocess.run(
        [sys.executable, "-m", "mandate.api.cli", "migrate"], env=env, check=True, timeout=60
    )
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 (our own command line)
        [sys.executable, "-m", "mandate.api.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _call(port, "GET", "/healthz", {})[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        admin = {"Authorization": "Bearer " + "t" * 40}
        for i in range(12):
            status, opened = _call(port, "POST", "/v1/accounts", admin, {"name": f"Acme {i}"})
            assert status == 201, opened
            key = opened["root_access_key"]
            basic = base64.b64encode(
                f"{key['access_key_id']}:{key['access_key_secret']}".encode()
            ).decode()
            headers = {"Authorization": f"Basic {basic}", "Min-Position": str(opened["position"])}
            status, users = _call(
                port, "GET", f"/v1/accounts/{opened['account_id']}/users", headers
            )
            assert status == 200, users
        # Both processes run the projections (the default): one applies each copy, no race.
        deadline = time.monotonic() + WAIT
        while True:
            status, ready = _call(port, "GET", "/readyz", {})
            lags = [lag["lag_events"] for lag in ready["projections"].values()]
            if status == 200 and lags == [0, 0]:
                break
            assert time.monotonic() < deadline, ready
            time.sleep(0.1)
        schema = store_config(postgres_url).env["POSTGRES_SCHEMA"]
        assert _duplicate_keys_logged(offset, schema) == []
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_projection_runner_started_during_an_outage_waits_for_the_store(tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{_free_port()}/test"
    runner = subprocess.Popen(
        [sys.executable, "-m", "mandate.api.cli", "projections", "run"],
        env=_process_env(dead, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(3.0)
        assert runner.poll() is None, "the runner exited on a store error"
    finally:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
    assert runner.stderr is not None
    assert "retrying" in runner.stderr.read().decode()


def test_a_rebuild_holds_the_new_copys_lease_until_it_hands_over(postgres_url: str) -> None:
    runtime = started_runtime(postgres_url, run_projections=True, registry_watch_interval=0.05)
    try:
        _write_some([runtime], rounds=2)
        env = runtime.store.env
        taken = AdvisoryLease(env, f"{_schema(runtime)}.temporal_v2")
        assert taken.acquire()
        try:
            with pytest.raises(RebuildRefused, match="another process is running temporal_v2"):
                rebuild(
                    runtime.ledger,
                    env,
                    runtime.registry,
                    TemporalIndexProjection(),
                    grace_seconds=0,
                    leases=partial(copy_lease, env),
                )
        finally:
            taken.close()
        result = rebuild(
            runtime.ledger,
            env,
            runtime.registry,
            TemporalIndexProjection(),
            grace_seconds=0.5,
            leases=partial(copy_lease, env),
        )
        assert result.new_version == 2
        head = _write_some([runtime], rounds=2)
        _wait_copy(runtime.temporal, head)
        assert runtime.temporal.store.prefix == "temporal_v2"
        assert runtime.temporal.leading
        assert runtime.temporal.conflicts == 0
        _assert_equals_clean_rebuild(runtime, runtime.temporal)
    finally:
        runtime.stop()


def test_without_listen_a_process_follows_by_its_poll(postgres_url: str) -> None:
    writer = started_runtime(postgres_url)
    reader = started_runtime(postgres_url, listen=False, poll_interval=0.05)
    try:
        assert reader.listener is None
        with acting_as(ACTOR):
            position = writer.ledger.open_account("Polled").root_key.position
        assert reader.follower.wait_for(position, WAIT)
    finally:
        reader.stop()
        writer.stop()
