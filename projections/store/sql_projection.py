"""Following the log into a SQL read model, a batch per transaction, exactly once.

A ``ProjectionWorker`` reads the ledger's notifications after the copy's tracked position
(polling: it works on every store, SQLite included), hands each decoded event with its
position and *ledger time* to the projection, and commits the projection's rows together
with the batch's last position in one transaction. Rebuilds therefore run at the speed of
decoding, not of commits; a failure anywhere in a batch rolls the whole batch back, and the
next attempt starts again from the tracked position.

This module holds the worker: who applies and when (leases, the background thread, catch-up
and waits); a batch's application is in ``projection_batches``, stalls in
``projection_stalls``.

Ledger time (``domain.common.ledger_time``) is carried from batch to batch in the copy's
``_state`` table, in the same transaction as everything else.

On PostgreSQL a worker is given a ``Lease`` (``projections.store.leadership``): only its holder
applies batches, so one runner per copy, whatever the number of processes. The others stand
by — no batch, no reload — and try the lease again every ``lease_retry`` seconds; a read that
needs the copy current waits for the leader's tracked position instead of applying itself.
A worker without a background thread (a CLI command, a process with ``run_projections`` off)
takes the lease only for the time of its catch-up. Without a lease (SQLite, rebuilds into a
fresh copy), two workers on one copy still end well: the tracking insert refuses a position
that does not advance, the loser's batch is rolled back, and it reloads its state.

An event the projection cannot apply (it does not decode, ``apply`` raises, or the store
refuses its rows) *stalls* the worker at that position: the events before it in the batch are
committed, nothing of it is, and the ``Stall`` names the position, the event type and the
error. A stall is deterministic, so it is not retried: every later batch, and so every read
that needs this copy current, raises ``EventNotApplicable`` (503 naming it) until the copy is
replaced by a rebuild or the process restarts; the other projections and the decision index
go on. The stall is also written to the copy's ``_state`` (and cleared by the next batch that
commits), so that a process which does not run the worker — ``mandate projections status`` —
can name it. Outages (the store unreachable) are not stalls: the batch is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from uuid import UUID

from eventsourcing.application import Application

from mandate.projections.store.background import BackgroundThread
from mandate.projections.store.leadership import Lease
from mandate.projections.store.projection_batches import BatchApplier, SqlProjection
from mandate.projections.store.projection_stalls import (
    STATE_DDL,
    EventNotApplicable,
    Stall,
    event_type_of,
)
from mandate.projections.store.read_model_store import ReadModelStore

__all__ = [
    "CATCH_UP_BATCH",
    "STATE_DDL",
    "EventNotApplicable",
    "ProjectionWorker",
    "SqlProjection",
    "Stall",
    "event_type_of",
    "open_copy",
]

log = logging.getLogger("mandate.projections")

CATCH_UP_BATCH = 10_000
"""Events per transaction while a worker drains a backlog (``catch_up``, a rebuild): a copy far
behind commits fewer, larger transactions, and a fact opened and closed within one of them
is written once instead of inserted then updated. The background thread keeps ``batch_size``."""


def open_copy(
    ledger_env: Mapping[str, str], projection: SqlProjection, version: int, *, create: bool
) -> ReadModelStore:
    """Copy ``version`` of ``projection``'s read model on the ledger's store."""
    return ReadModelStore(
        ledger_env, projection.name, version, [*projection.ddl, STATE_DDL], create=create
    )


class ProjectionWorker(BatchApplier):
    """Keeps one copy of a SQL projection current with the ledger."""

    def __init__(
        self,
        ledger: Application[UUID],
        store: ReadModelStore,
        projection: SqlProjection,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.1,
        leases: Callable[[ReadModelStore], Lease] | None = None,
        lease_retry: float = 1.0,
    ) -> None:
        super().__init__(ledger, store, projection, batch_size=batch_size)
        self.poll_interval = poll_interval
        self._leases = leases
        self.lease: Lease | None = leases(store) if leases is not None else None
        self.lease_retry = lease_retry
        self._next_attempt = 0.0  # monotonic time of the next try for the lease
        self._next_check = 0.0  # monotonic time of the next check that the lease still holds
        self._wake = threading.Event()
        self._loop = BackgroundThread(join_timeout=10)
        self.last_error: BaseException | None = None

    @property
    def catch_up_size(self) -> int:
        """Events per transaction while draining a backlog (``CATCH_UP_BATCH`` at least)."""
        return max(self.batch_size, CATCH_UP_BATCH)

    def retarget(self, store: ReadModelStore) -> ReadModelStore:
        """Follow into another copy (a rebuild switched readers); return the one we left."""
        with self._lock:
            old = self._forget_copy(store)
            if self.lease is not None and self._leases is not None:
                old_lease, self.lease = self.lease, self._leases(store)  # one lease per copy
                self._next_attempt = 0.0
                old_lease.close()
        return old

    # -- who applies: the lease ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the background thread follows the log (else only reads apply on demand)."""
        return self._loop.thread is not None

    @property
    def leading(self) -> bool:
        """Whether this worker may apply batches now (always, without a lease)."""
        return self.lease is None or self.lease.held

    def _try_lead(self, *, now: bool = False) -> bool:
        """Hold the lease, trying for it at most every ``lease_retry`` s (``now``: try at once).

        A lease whose session died is noticed here (checked every ``lease_retry`` s) and given
        up, so a process that lost its connection stops applying and stands by like the others.
        """
        lease = self.lease
        if lease is None:
            return True
        clock = time.monotonic()
        if lease.held:
            if clock < self._next_check:
                return True
            self._next_check = clock + self.lease_retry
            if lease.check():
                return True
            self._position = None  # whoever leads next may move the copy: reload on return
        if not now and clock < self._next_attempt:
            return False
        self._next_attempt = clock + self.lease_retry
        if lease.acquire():
            log.info("projection %s: this process now runs it", self.store.prefix)
            self._next_check = clock + self.lease_retry
            return True
        return False

    def catch_up(self) -> int:
        """Apply everything the log holds now; return the copy's position.

        Under a lease held elsewhere, wait (up to a minute) for its holder to get there.
        """
        if self.lease is not None and not self.lease.held:
            head = int(self.ledger.recorder.max_notification_id() or 0)
            self.wait_for(head, 60.0)
            return self.store.position()
        size = self.catch_up_size
        while self.run_batch(size) == size:
            pass
        self.finish_catch_up()
        return self.store.position()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the copy has applied ``position`` or time is up.

        The leader (or a worker without a lease) applies the batches itself. A stand-by waits
        for the leader's tracked position; one with no background thread takes the lease for
        the time of this catch-up when nobody holds it, then gives it back.
        """
        deadline = time.monotonic() + timeout
        while self.store.position() < position:
            self._apply_or_stand_by()
            if self.store.position() >= position:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll_interval, 0.02))
        return True

    def _apply_or_stand_by(self) -> None:
        if self.lease is None or self.lease.held:
            self.run_batch()
            return
        if self.running:  # the background thread tries for the lease
            self._raise_recorded_stall()
            return
        if not self._try_lead():
            self._raise_recorded_stall()
            return
        try:
            size = self.catch_up_size
            while self.run_batch(size) == size:
                pass
            self.finish_catch_up()
        finally:
            self.lease.release()

    def _raise_recorded_stall(self) -> None:
        """A stand-by learns of the leader's stall from the copy (not retried, like it)."""
        stall = self.known_stall()
        if stall is not None:
            raise self._not_applicable(stall)

    def wake(self) -> None:
        """Look at the log now rather than at the next poll (a notification arrived)."""
        self._wake.set()

    # -- the background thread ---------------------------------------------------------------
    def start(self) -> None:
        self._loop.start(self._run, f"mandate-{self.store.prefix}")

    def stop(self) -> None:
        self._loop.stop(self._wake)
        if self.lease is not None:
            try:
                self.lease.close()
            except Exception as error:  # closing the session releases the lock anyway
                log.warning("releasing the lease of %s failed: %s", self.store.prefix, error)

    def _run(self) -> None:
        stopping = self._loop.stopping
        while not stopping.is_set():
            try:
                if self._try_lead():
                    while self.run_batch() == self.batch_size and not stopping.is_set():
                        pass
                self.last_error = None
            except Exception as error:  # an outage must not kill the worker
                if self.last_error is None:
                    log.warning("projection %s failed: %s", self.store.prefix, error)
                self.last_error = error
            self._wake.wait(self.poll_interval)
            self._wake.clear()
