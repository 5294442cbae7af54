"""Blue/green rebuilds: a new copy catches up from position 0 while the old one serves.

1. A copy under the next version (``temporal_v2``) is created and fed from position 0 by its
   own worker; readers keep using the active copy meanwhile.
2. An optional ``check`` inspects the caught-up copy (the audit trail compares itself with
   the last signed checkpoint) and may refuse: the new copy is dropped, nothing switches,
   and the refusal says where the copies disagree.
3. The registry row is switched in one committed statement; every process notices within
   its watch interval and moves its readers and workers to the new copy.
4. After a grace period (longer than that interval) the old copy is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application

from mandate.projections.store.leadership import Lease
from mandate.projections.store.read_model_store import ProjectionRegistry, ReadModelStore
from mandate.projections.store.sql_projection import (
    EventNotApplicable,
    ProjectionWorker,
    SqlProjection,
    open_copy,
)

__all__ = ["RebuildRefused", "RebuildResult", "open_copy", "rebuild"]


class RebuildRefused(Exception):
    """The new copy disagrees with what must hold (a signed checkpoint): nothing switched."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    name: str
    old_version: int
    new_version: int
    position: int
    events: int
    events_per_second: float
    seconds: float


def rebuild(
    ledger: Application[UUID],
    ledger_env: Mapping[str, str],
    registry: ProjectionRegistry,
    projection: SqlProjection,
    *,
    check: Callable[[ReadModelStore], None] | None = None,
    grace_seconds: float = 5.0,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
    leases: Callable[[ReadModelStore], Lease] | None = None,
) -> RebuildResult:
    """Rebuild ``projection`` from position 0 into a new copy, then switch readers to it.

    With ``leases`` (PostgreSQL) the rebuild holds the new copy's lease until it has caught up
    after the switch, so the processes that move to the new copy stand by meanwhile instead of
    racing it for the tail; the first of them to try afterwards takes the lease over.
    """
    old_version = registry.active().get(projection.name, 1)
    new_version = old_version + 1
    stale = open_copy(ledger_env, projection, new_version, create=True)
    stale.drop()  # leftovers of an earlier rebuild that was interrupted
    store = open_copy(ledger_env, projection, new_version, create=True)
    worker = ProjectionWorker(ledger, store, projection, batch_size=batch_size, leases=leases)
    if worker.lease is not None and not worker.lease.acquire():
        worker.lease.close()
        raise RebuildRefused(f"another process is running {store.prefix}: is a rebuild under way?")
    started = time.perf_counter()
    events = 0
    size = worker.catch_up_size  # a backlog from 0: the large transactions of a catch-up
    try:
        while (applied := worker.run_batch(size)) > 0:
            events += applied
            if progress is not None:
                progress(worker.position)
            if applied < size:
                break
        worker.finish_catch_up()  # e.g. deferred indexes, whatever the last batch's size
        seconds = time.perf_counter() - started
        position = store.position()
        if check is not None:
            check(store)
    except EventNotApplicable as error:
        _let_go(worker)
        store.drop()
        raise RebuildRefused(f"the log cannot be projected at {error}") from error
    except BaseException:
        _let_go(worker)
        store.drop()
        raise
    registry.activate(projection.name, new_version)
    try:
        worker.catch_up()
    finally:
        _let_go(worker)  # the processes that moved to this copy take it over
    store.close()
    time.sleep(grace_seconds)
    old = open_copy(ledger_env, projection, old_version, create=False)
    old.drop()
    return RebuildResult(
        projection.name,
        old_version,
        new_version,
        position,
        events,
        events / seconds if seconds > 0 else 0.0,
        seconds,
    )


def _let_go(worker: ProjectionWorker) -> None:
    if worker.lease is not None:
        worker.lease.close()
