"""A fresh temporal copy caught up in large transactions builds its secondary indexes at the
end: the same rows as event by event, the indexes there once the backlog is drained — by a
reloaded worker too, and when the log ends exactly on a full batch (a catch-up or a rebuild)
— on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.audit import acting_as
from mandate.projections.history import temporal_facts
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.history.temporal_schema import DEFERRED_INDEXES
from mandate.projections.store import sql_projection
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.rebuild import open_copy, rebuild
from mandate.projections.store.sql_projection import ProjectionWorker
from tests.integration.runtimes import running
from tests.integration.test_index_cache_coherence import ACTOR
from tests.integration.test_projection_operations import _dump, _history

BATCH = 5


@pytest.fixture
def runtime(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    # a catch-up's transactions of BATCH events, so that a short history spans several
    monkeypatch.setattr(sql_projection, "CATCH_UP_BATCH", BATCH)
    monkeypatch.setattr(temporal_facts, "CATCH_UP_BATCH", BATCH)
    with running(store_url) as the_runtime:
        yield the_runtime


def _indexes(store: ReadModelStore) -> set[str]:
    table = store.prefix + "_facts"
    if store.dialect.is_postgres:
        rows = store.query(
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = ? AND tablename = ?",
            (store.schema or "public", table),
        )
    else:
        rows = store.query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
        )
    return {row["name"].removeprefix(store.prefix) for row in rows}


def _pending(store: ReadModelStore) -> bool:
    return bool(store.query("SELECT 1 FROM {p}_state WHERE key = 'deferred_indexes'"))


def _history_of_full_batches(runtime: Runtime) -> int:
    """The usual history, then users until the log's length is a multiple of ``BATCH`` (more
    than one batch); the head."""
    account = _history(runtime)
    with acting_as(ACTOR):
        while runtime.head() % BATCH or runtime.head() < 2 * BATCH:
            runtime.ledger.create_user(account, f"pad{runtime.head()}", None)
    return runtime.head()


def test_a_catch_up_defers_the_indexes_and_writes_what_event_by_event_writes(
    runtime: Runtime,
) -> None:
    _history(runtime)
    head = runtime.head()
    assert head % BATCH, "the last batch must be a short one"
    env = runtime.store.env
    single = open_copy(env, TemporalIndexProjection(), 31, create=True)
    bulk = open_copy(env, TemporalIndexProjection(), 32, create=True)
    try:
        one_by_one = ProjectionWorker(runtime.ledger, single, TemporalIndexProjection())
        while one_by_one.run_batch(1) == 1:
            pass
        drained = ProjectionWorker(runtime.ledger, bulk, TemporalIndexProjection())
        assert drained.run_batch(BATCH) == BATCH
        assert _pending(bulk)
        assert not set(DEFERRED_INDEXES) & _indexes(bulk)
        # a restarted process resumes the catch-up and builds them when it ends
        resumed = ProjectionWorker(
            runtime.ledger, bulk, TemporalIndexProjection(), batch_size=BATCH
        )
        assert resumed.catch_up() == head
        assert not _pending(bulk)
        assert set(DEFERRED_INDEXES) <= _indexes(bulk)
        assert _indexes(bulk) == _indexes(single)
        assert _dump(single) == _dump(bulk)
    finally:
        single.drop()
        bulk.drop()


def test_a_catch_up_ending_on_a_full_batch_builds_them_when_asked(runtime: Runtime) -> None:
    _history(runtime)
    env = runtime.store.env
    copy = open_copy(env, TemporalIndexProjection(), 33, create=True)
    try:
        projection = TemporalIndexProjection()
        worker = ProjectionWorker(runtime.ledger, copy, projection)
        assert worker.run_batch(BATCH) == BATCH
        assert _pending(copy)
        with copy.transaction(commit=True) as cursor:
            projection.build_deferred_indexes(copy, cursor)
        assert not _pending(copy)
        assert set(DEFERRED_INDEXES) <= _indexes(copy)
    finally:
        copy.drop()


def test_a_catch_up_ending_on_a_full_batch_builds_them_at_its_end(runtime: Runtime) -> None:
    """Its last batch is full and the next one empty: the end of the catch-up builds them."""
    head = _history_of_full_batches(runtime)
    copy = open_copy(runtime.store.env, TemporalIndexProjection(), 34, create=True)
    try:
        worker = ProjectionWorker(runtime.ledger, copy, TemporalIndexProjection())
        assert worker.catch_up() == head
        assert not _pending(copy)
        assert set(DEFERRED_INDEXES) <= _indexes(copy)
    finally:
        copy.drop()


def test_a_rebuild_of_a_log_of_full_batches_serves_with_its_indexes(runtime: Runtime) -> None:
    """The copy a rebuild switches readers to has them, with no further event."""
    head = _history_of_full_batches(runtime)
    result = rebuild(
        runtime.ledger,
        runtime.store.env,
        runtime.registry,
        TemporalIndexProjection(),
        grace_seconds=0,
    )
    assert result.position == head
    assert result.events == head
    copy = open_copy(runtime.store.env, TemporalIndexProjection(), result.new_version, create=False)
    try:
        assert runtime.head() == head
        assert not _pending(copy)
        assert set(DEFERRED_INDEXES) <= _indexes(copy)
    finally:
        copy.close()
