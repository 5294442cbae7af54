"""A real primary and hot standby: history and audit reads served from the replica.

The primary is a throwaway cluster (``initdb``, ``wal_level=replica``, trust for replication
from 127.0.0.1 — PostgreSQL 15's defaults with ``-A trust``); the standby is made from it with
``pg_basebackup -R`` and started with ``hot_standby=on``, both on spare ports under one
temporary directory removed even when the test fails. The app writes and decides live on the
primary and reads as-of, effective permissions, access review and the audit trail from the
standby: correct once it has caught up; with replay paused, a read needing a position the
standby has not replayed answers 503 problem+json with Retry-After, and 200 once resumed.
``/metrics`` shows the standby's lag (its log, each copy against the primary's copy), back to
0 once it has caught up, and ``mandate_read_replica_up 0`` when the standby is down.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.conftest import _free_port
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient, serving
from tests.e2e.test_store_outage import Cluster

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"
READ_ALL = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]


class Standby(Cluster):
    """A hot standby of ``primary`` (``pg_basebackup -R``), in a directory of the primary's."""

    def __init__(self, primary: Cluster) -> None:
        self.initdb, self.pg_ctl, self.as_user = primary.initdb, primary.pg_ctl, primary.as_user
        self.base = os.path.join(primary.base, "standby")
        os.mkdir(self.base)
        stat = os.stat(primary.base)
        os.chown(self.base, stat.st_uid, stat.st_gid)
        self.data = os.path.join(self.base, "data")
        self.port = _free_port()
        basebackup = os.path.join(os.path.dirname(os.path.realpath(self.pg_ctl)), "pg_basebackup")
        copied = self._ctl(
            basebackup,
            *("-D", self.data, "-R", "-X", "stream", "--no-sync"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
        )
        assert copied.returncode == 0, copied.stderr
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as conf:
            conf.write("hot_standby = on\n")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def sql(self, statement: str) -> Any:
        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute(statement).fetchone()

    def pause_replay(self) -> None:
        self.sql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.sql("SELECT pg_get_wal_replay_pause_state()")[0] != "paused":
            assert time.monotonic() < deadline, "the standby did not pause its replay"
            time.sleep(0.02)

    def resume_replay(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Standby]]:
    primary = Cluster()
    standby: Standby | None = None
    try:
        primary.start()
        standby = Standby(primary)
        standby.start()
        yield primary, standby
    finally:
        if standby is not None:
            with contextlib.suppress(Exception):
                standby._ctl(standby.pg_ctl, "-D", standby.data, "-m", "immediate", "-w", "stop")
        primary.remove()  # stops the primary, removes the directory (the standby's too)


def _settings(primary: Cluster, standby: Standby, state: Any) -> Settings:
    return Settings(
        database_url=primary.url,
        read_database_url=standby.url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state,
    )


@pytest.fixture(scope="module")
def api(
    clusters: tuple[Cluster, Standby], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MandateClient]:
    primary, standby = clusters
    state = tmp_path_factory.mktemp("state")
    # The schema first (as `mandate migrate` would), then wait for the standby to hold it.
    Runtime(
        Settings(database_url=primary.url, hash_key=HASH_KEY, state_dir=state), create_tables=True
    ).stop()
    deadline = time.monotonic() + 10
    while standby.sql("SELECT to_regclass('public.mandate_projection_versions')")[0] is None:
        assert time.monotonic() < deadline, "the standby never received the schema"
        time.sleep(0.05)
    with serving(Runtime(_settings(primary, standby, state), create_tables=False)) as client:
        yield client


def _replica_metrics(api: MandateClient) -> dict[str, float]:
    """The ``mandate_read_replica_*`` samples of one scrape: name[projection] -> value."""
    answer = api.get("/metrics")
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name.startswith("mandate_read_replica_"):
                which = sample.labels.get("projection")
                samples[sample.name + (f"[{which}]" if which else "")] = sample.value
    return samples


def _reads(api: MandateClient, account: str, root: Any, position: int) -> dict[str, Any]:
    """Every replica-served read, each carrying ``Min-Position: position``."""
    headers = {**root, "Min-Position": str(position)}
    alice = f"acs:ram::{account}:user/alice"
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account}:photos/a.jpg"}
    now = datetime.now(UTC).isoformat()
    return {
        "as of": lambda: api.post(
            "/v1/authorize",
            json={**question, "principal": alice, "as_of": now},
            headers=headers,
        ),
        "effective permissions": lambda: api.get(
            f"/v1/accounts/{account}/effective-permissions",
            params={"principal": alice},
            headers=headers,
        ),
        "audit": lambda: api.get(f"/v1/accounts/{account}/audit-events", headers=headers),
        "audit verify": lambda: api.get(f"/v1/accounts/{account}/audit/verify", headers=headers),
        "access review": lambda: api.get(
            f"/v1/accounts/{account}/access-review",
            params={**question, "from": "2020-01-01T00:00:00Z"},
            headers=headers,
        ),
    }


def test_reads_come_from_the_replica_and_wait_for_its_own_tracking(
    api: MandateClient, clusters: tuple[Cluster, Standby], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, standby = clusters
    runtime = api.runtime
    assert runtime.replica is not None
    # Every wait a read makes for the replica, (timeout, reached): a refusal must come from
    # waits bounded by min_position_timeout giving up, not from a stopwatch's reading.
    waits: list[tuple[float, bool]] = []
    wait_for = runtime.replica.wait_for

    def recorded(name: str | None, position: int, timeout: float) -> bool:
        reached = wait_for(name, position, timeout)
        waits.append((timeout, reached))
        return reached

    monkeypatch.setattr(runtime.replica, "wait_for", recorded)
    # Readers use the replica's copies, never the workers' (which write on the primary).
    assert runtime.as_of.store is runtime.replica.store("temporal")
    assert runtime.audit_reads is runtime.replica.store("audit")
    assert runtime.audit_reads is not runtime.audit.store

    account, root = api.open_account("Replica")
    alice_headers = api.create_user(account, root, "alice")
    api.create_policy(account, root, "Reader", READ_ALL)
    attached = api.attach(account, root, "users/alice", "Custom", "Reader")

    # Caught up: the replica's answers are the primary's.
    answers = {what: send() for what, send in _reads(api, account, root, attached).items()}
    for what, answer in answers.items():
        assert answer.status_code == 200, (what, answer.text)
    assert answers["as of"].json()["decision"] == "Allow"
    assert answers["as of"].json()["position"] >= attached
    statements = answers["effective permissions"].json()["statements"]
    assert [s["policy_name"] for s in statements] == ["Reader"]
    trail = answers["audit"].json()["items"]
    assert trail[-1]["position"] == attached
    assert trail[-1]["event_type"].endswith("PolicyAttached")
    assert answers["audit verify"].json()["ok"] is True
    reviewed = answers["access review"].json()["items"]
    assert f"acs:ram::{account}:user/alice" in [item["principal"] for item in reviewed]
    ready = api.get("/readyz").json()
    assert ready["replica"]["projections"]["temporal"]["position"] >= attached, ready
    scraped = _replica_metrics(api)
    assert scraped["mandate_read_replica_up"] == 1, scraped
    assert {"mandate_read_replica_log_lag_events", "mandate_read_replica_log_lag_seconds"} <= set(
        scraped
    ), scraped
    assert {
        "mandate_read_replica_lag_events[temporal]",
        "mandate_read_replica_lag_events[audit]",
    } <= set(scraped), scraped

    # Replay paused: the primary moves on, the replica does not.
    standby.pause_replay()
    try:
        detached = api.delete(
            f"/v1/accounts/{account}/users/alice/policies/Custom/Reader", headers=root
        )
        assert detached.status_code == 200, detached.text
        moved = detached.json()["position"]
        live = api.authorize(
            alice_headers, action="oss:GetObject", resource=f"acs:oss:*:{account}:photos/a.jpg"
        )
        assert live["decision"] == "ImplicitDeny"  # live decisions: the primary's index
        bound = runtime.settings.min_position_timeout
        for what, send in _reads(api, account, root, moved).items():
            waits.clear()
            refused = send()
            assert refused.status_code == 503, (what, refused.status_code, refused.text)
            assert refused.headers["content-type"].startswith(PROBLEM), what
            assert int(refused.headers["retry-after"]) >= 1, what
            assert "read replica" in refused.json()["detail"], (what, refused.text)
            # at most two bounded waits (the replica's log, then a copy); the last gave up
            assert 1 <= len(waits) <= 2, (what, waits)
            assert all(timeout == bound for timeout, _ in waits), (what, waits)
            assert waits[-1] == (bound, False), (what, waits)
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text  # a lagging replica is not an outage
        lag = ready.json()["replica"]
        assert lag["lag_events"] >= 1, lag
        assert lag["projections"]["temporal"]["lag_events"] >= 1, lag
        assert lag["lag_seconds"] >= 0, lag
        # The primary's temporal copy holds the detachment (its worker applies it on its own
        # schedule: wait for that, not for a time): the replica's lacks it, and says so.
        deadline = time.monotonic() + 10
        while runtime.temporal.position < moved:
            assert time.monotonic() < deadline, "the primary's temporal copy never applied it"
            time.sleep(0.02)
        scraped = _replica_metrics(api)
        assert scraped["mandate_read_replica_up"] == 1, scraped
        assert scraped["mandate_read_replica_log_lag_events"] >= 1, scraped
        assert scraped["mandate_read_replica_lag_events[temporal]"] >= 1, scraped
    finally:
        standby.resume_replay()

    # Resumed: the same questions answer, with the detachment.
    deadline = time.monotonic() + 10
    while True:
        answer = _reads(api, account, root, moved)["as of"]()
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "ImplicitDeny"
    answers = {what: send() for what, send in _reads(api, account, root, moved).items()}
    for what, answer in answers.items():
        assert answer.status_code == 200, (what, answer.text)
    assert answers["effective permissions"].json()["statements"] == []
    assert answers["audit"].json()["items"][-1]["position"] == moved
    assert answers["audit verify"].json()["ok"] is True
    ready = api.get("/readyz").json()
    assert ready["replica"]["lag_events"] == 0, ready
    # Caught up: every replica lag in /metrics is back to 0 (once both sides' copies hold the
    # log's head; the primary's audit worker may still be applying when replay resumes).
    lagging = ("mandate_read_replica_log_lag_events", "mandate_read_replica_lag_events[")
    deadline = time.monotonic() + 10
    while True:
        scraped = _replica_metrics(api)
        behind = {k: v for k, v in scraped.items() if k.startswith(lagging) and v != 0}
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert behind == {}, scraped
    assert scraped["mandate_read_replica_lag_events[temporal]"] == 0, scraped
    assert scraped["mandate_read_replica_log_lag_seconds"] == 0, scraped


def test_the_replica_side_is_read_only(api: MandateClient) -> None:
    """No DDL, no tracking writes: every session on the replica is a read-only one."""
    replica = api.runtime.replica
    assert replica is not None
    store = replica.store("audit")
    with pytest.raises(Exception, match="read-only"):
        store.query("CREATE TABLE {p}_intruder (x INTEGER)")
    with pytest.raises(Exception, match="read-only"), store.transaction(commit=True) as cursor:
        store.record_position(cursor, 10**9)


def test_metrics_answer_while_the_replica_is_down(
    api: MandateClient, clusters: tuple[Cluster, Standby]
) -> None:
    """A stopped standby: /metrics still answers, ``mandate_read_replica_up 0``. Last here:
    it leaves the standby stopped (the fixture's stop is then a no-op)."""
    _, standby = clusters
    stopped = standby._ctl(standby.pg_ctl, "-D", standby.data, "-m", "immediate", "-w", "stop")
    assert stopped.returncode == 0, stopped.stderr
    scraped = _replica_metrics(api)
    assert scraped["mandate_read_replica_up"] == 0, scraped
    assert "mandate_read_replica_log_lag_events" not in scraped, scraped
