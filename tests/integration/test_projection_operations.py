"""Exactly once, crash and resume, blue/green rebuilds and lag — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import user_arn
from mandate.domain.common.audit import acting_as
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.audit.chain import CheckpointSigner
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.rebuild import RebuildRefused, open_copy, rebuild
from mandate.projections.store.sql_projection import EventNotApplicable, ProjectionWorker
from tests.integration.runtimes import running
from tests.integration.test_index_cache_coherence import ACTOR, _set_up

WAIT = 10.0


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url, registry_watch_interval=0.05) as the_runtime:
        yield the_runtime


def _history(runtime: Runtime) -> str:
    account, _ = _set_up(runtime)
    ledger = runtime.ledger
    with acting_as(ACTOR):
        ledger.attach_policy(account, "user", "u0", "Custom", "p1")
        ledger.set_default_policy_version(account, "p1", "v2")
        ledger.detach_policy(account, "group", "g0", "Custom", "p0")
        ledger.update_user(account, "u1", new_user_name="u1-renamed", new_display_name=None)
        ledger.delete_user(account, "u2", detach=True)
    return account


class Crash(Exception):
    pass


_SIGNER = CheckpointSigner(Ed25519PrivateKey.generate())
PROJECTIONS = {
    "temporal": TemporalIndexProjection,
    "audit": lambda: AuditTrailProjection(_SIGNER, every_events=4),
}


def _dump(store: ReadModelStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a copy, in a canonical order."""
    dump = {}
    for table in store.table_names():
        suffix = table.removeprefix(store.prefix)
        rows = store.query(f"SELECT * FROM {{p}}{suffix}")  # noqa: S608 (our table names)
        dump[suffix] = sorted(tuple(str(v) for v in dict(row).values()) for row in rows)
    return dump


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_a_batch_that_fails_midway_leaves_nothing_and_the_restart_equals_a_clean_rebuild(
    runtime: Runtime, name: str
) -> None:
    make = PROJECTIONS[name]
    _history(runtime)
    head = runtime.head()
    env = runtime.store.env
    crashing = open_copy(env, make(), 7, create=True)
    worker = ProjectionWorker(runtime.ledger, crashing, make(), batch_size=10)
    assert worker.run_batch() == 10  # the first batch commits
    after_first = _dump(crashing)

    def crash_at(position: int) -> None:
        if position == 15:
            raise Crash(f"injected failure before position {position}")

    worker.before_apply = crash_at
    with pytest.raises(Crash):
        worker.run_batch()
    assert crashing.position() == 10  # the failed batch left no tracking ...
    assert _dump(crashing) == after_first  # ... and no rows
    # A new worker (a restarted process) resumes from the tracked position.
    resumed = ProjectionWorker(runtime.ledger, crashing, make(), batch_size=10)
    assert resumed.catch_up() == head
    clean = open_copy(env, make(), 8, create=True)
    assert ProjectionWorker(runtime.ledger, clean, make()).catch_up() == head
    try:
        assert _dump(crashing) == _dump(clean)
    finally:
        crashing.drop()
        clean.drop()


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_one_event_per_transaction_writes_what_a_catch_up_in_large_transactions_writes(
    runtime: Runtime, name: str
) -> None:
    """A backlog is drained in transactions of ``CATCH_UP_BATCH`` events (a fact opened and
    closed inside one is written once, closed already); event by event, every close is an
    update of a committed row. Both write the same rows, checkpoints included."""
    make = PROJECTIONS[name]
    _history(runtime)
    head = runtime.head()
    env = runtime.store.env
    single = open_copy(env, make(), 13, create=True)
    bulk = open_copy(env, make(), 14, create=True)
    try:
        one_by_one = ProjectionWorker(runtime.ledger, single, make(), batch_size=1)
        while one_by_one.run_batch() == 1:
            pass
        drained = ProjectionWorker(runtime.ledger, bulk, make(), batch_size=1)
        assert drained.catch_up() == head
        assert drained.batches_committed == 1
        assert single.position() == head
        assert _dump(single) == _dump(bulk)
    finally:
        single.drop()
        bulk.drop()


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_an_event_that_cannot_be_applied_stalls_the_worker_just_before_it(
    runtime: Runtime, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events before it commit, nothing of it does, the stall names it and is not retried;
    the copy records it for other processes, and a new copy (a rebuild) starts afresh."""
    make = PROJECTIONS[name]
    _history(runtime)
    head = runtime.head()
    copy = open_copy(runtime.store.env, make(), 11, create=True)
    projection = make()
    worker = ProjectionWorker(runtime.ledger, copy, projection, batch_size=10)
    assert worker.run_batch() == 10
    applied: list[int] = []
    apply = projection.apply

    def poisoned(event: Any, position: int, ledger_time: Any) -> None:
        apply(event, position, ledger_time)  # half-applied, then it fails
        if position == 15:
            raise OverflowError("date value out of range")
        applied.append(position)

    monkeypatch.setattr(projection, "apply", poisoned)
    with pytest.raises(EventNotApplicable, match=r"position 15 \(\w+\): OverflowError"):
        worker.run_batch()
    try:
        assert copy.position() == 14  # the events before it committed, nothing of it
        assert worker.stall is not None
        assert worker.stall.position == 15
        applied.clear()
        with pytest.raises(EventNotApplicable):
            worker.wait_for(head, 1.0)  # not retried
        assert applied == []
        assert copy.position() == 14
        # Another process sees the stall recorded in the copy.
        other = ProjectionWorker(runtime.ledger, copy, make())
        assert other.known_stall() == worker.stall
        # A fresh copy is another attempt; with the event applicable it catches up to the head.
        monkeypatch.setattr(projection, "apply", apply)
        fresh = open_copy(runtime.store.env, make(), 12, create=True)
        worker.retarget(fresh)
        try:
            assert worker.stall is None
            assert worker.catch_up() == head
            assert worker.known_stall() is None
        finally:
            fresh.drop()
    finally:
        copy.drop()


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_two_workers_on_one_copy_apply_each_event_once(runtime: Runtime, name: str) -> None:
    make = PROJECTIONS[name]
    _history(runtime)
    env = runtime.store.env
    shared = open_copy(env, make(), 9, create=True)
    first = ProjectionWorker(runtime.ledger, shared, make(), batch_size=7)
    second = ProjectionWorker(runtime.ledger, shared, make(), batch_size=5)
    while first.run_batch() + second.run_batch() > 0:
        pass
    clean = open_copy(env, make(), 10, create=True)
    ProjectionWorker(runtime.ledger, clean, make()).catch_up()
    try:
        assert shared.position() == runtime.head()
        assert _dump(shared) == _dump(clean)
    finally:
        shared.drop()
        clean.drop()


def _copy_exists(store: ReadModelStore) -> bool:
    if store.path is not None:
        return Path(store.path).exists()
    try:
        store.query("SELECT 1 FROM {p}_facts LIMIT 1")
    except Exception:
        return False
    return True


def test_a_blue_green_rebuild_switches_readers_and_drops_the_old_copy(runtime: Runtime) -> None:
    account = _history(runtime)
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    at = runtime.temporal.ledger_time()
    assert at is not None
    arn = user_arn(account, "u0")
    request = AccessRequest.make("oss:GetObject", f"acs:oss:*:{account}:bucket/report.csv")

    def answer() -> tuple[Any, ...]:
        found, _ = runtime.as_of.principal_for_arn(arn, at)
        assert found is not None
        decision = runtime.as_of.decide(found, request).decision
        return decision.kind, [m.as_dict() for m in decision.matched]

    before = answer()
    old_copy = runtime.temporal.store.prefix
    result = rebuild(
        runtime.ledger,
        runtime.store.env,
        runtime.registry,
        TemporalIndexProjection(),
        grace_seconds=0.3,  # the runtime watches the registry every 0.05 s
    )
    assert (result.old_version, result.new_version) == (1, 2)
    assert result.position == runtime.head()
    assert runtime.registry.active()["temporal"] == 2
    assert runtime.temporal.store.prefix == "temporal_v2"  # the watcher moved us
    assert runtime.as_of.store is runtime.temporal.store
    assert answer() == before
    gone = open_copy(runtime.store.env, TemporalIndexProjection(), 1, create=False)
    assert not _copy_exists(gone), f"{old_copy} was not dropped"
    # The runtime keeps following into the new copy.
    with acting_as(ACTOR):
        position = runtime.ledger.detach_policy(account, "user", "u0", "Custom", "p1").position
    assert runtime.temporal.wait_for(position, WAIT)


def test_a_refused_rebuild_switches_nothing(runtime: Runtime) -> None:
    _history(runtime)

    def refuse(_: ReadModelStore) -> None:
        raise RebuildRefused("checkpoint at position 3 disagrees")

    with pytest.raises(RebuildRefused):
        rebuild(
            runtime.ledger,
            runtime.store.env,
            runtime.registry,
            TemporalIndexProjection(),
            check=refuse,
            grace_seconds=0,
        )
    assert runtime.registry.active()["temporal"] == 1
    assert not _copy_exists(
        open_copy(runtime.store.env, TemporalIndexProjection(), 2, create=False)
    )


def test_lag_is_reported_in_events_and_seconds(runtime: Runtime) -> None:
    _history(runtime)
    head = runtime.head()
    lagging = runtime.projection_lags(head)["temporal"]
    assert lagging["lag_events"] == head - runtime.temporal.position > 0
    waited = lagging["lag_seconds"]  # how long the oldest unapplied event has waited
    assert isinstance(waited, float)
    runtime.temporal.catch_up()
    caught_up = runtime.projection_lags(head)["temporal"]
    assert caught_up["lag_events"] == 0
    nothing_waiting = {**caught_up, "lag_events": 0, "lag_seconds": 0}
    assert caught_up == nothing_waiting  # a caught-up copy has no oldest unapplied event


def test_the_rebuild_command_prints_its_rate(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MANDATE_DATABASE_URL": sqlite_url,
        "MANDATE_ADMIN_TOKEN": "t" * 40,
        "MANDATE_HASH_KEY": "k" * 40,
    }
    with running(sqlite_url) as runtime:
        _history(runtime)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mandate.api.cli",
            "projections",
            "rebuild",
            "temporal",
            "--grace",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "v1 -> v2" in done.stdout, done.stdout
    assert "events/s" in done.stdout
