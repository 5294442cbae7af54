"""Follows the event log into an in-memory projection, from its last applied position.

Polling works on every store (SQLite has no subscription); a process that has just
written calls ``catch_up`` itself, so its own writes are applied before it answers
without waiting for the next poll. On PostgreSQL a ``LogListener``
(``projections.store.log_notifications``) calls ``wake`` when another process commits, so the
others apply it within milliseconds; the poll stays as the fallback for a lost notification.
Positions may have permanent gaps (a rolled-back insert consumes its id), so the follower
always reads ``id > last`` and never counts.

An event the index cannot apply (it does not decode, or its handler raises) is logged,
recorded in ``skipped`` (position, type, error; ``/readyz`` names it) and passed over: the
index is in memory and decides live, so stopping there would leave every later change —
revocations included — unapplied in every process, and every write waiting for it.

A projection that is ``replaying`` (a process catching up before it serves) is fed in bulk:
pages of ``BULK_PAGE`` events read by a thread while the previous page applies, on PostgreSQL
by one binary-format query, and decoded by ``BulkDecoder`` — the mapper's decoding, without
its per-event overheads. What it builds is exactly what the mapper builds; any event it cannot
decode goes through the mapper, so errors (and skips) are the mapper's.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    Notification,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from mandate.projections.store.background import BackgroundThread
from mandate.projections.store.bulk_decoding import BulkDecoder, fewer_collections
from mandate.projections.store.sql_projection import Stall, event_type_of

__all__ = ["BULK_PAGE", "LogFollower", "Projection"]

_SKIPPED_KEPT = 100  # the most recent events passed over, for /readyz
BULK_PAGE = 1_000
"""Events a page while replaying: one page applying, one read ahead; larger pages saved no
time here and left more memory to the process (13 MB per 100k events at 5,000)."""

Row = tuple[int, Any, int, str, bytes]
"""A stored event as the bulk reader hands it on: position, originator id and version, topic,
state."""

log = logging.getLogger("mandate.follower")


class Projection(Protocol):
    position: int

    def apply(self, event: Any, position: int) -> None: ...


class LogFollower:
    """Applies new events to ``projection`` in order, on a background thread and on demand."""

    def __init__(
        self,
        app: Application[UUID],
        projection: Projection,
        *,
        poll_interval: float = 0.05,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.projection = projection
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._applied = threading.Condition()
        self._wake = threading.Event()
        self._loop = BackgroundThread()
        self.last_error: BaseException | None = None
        self.skipped: list[Stall] = []  # events the index could not apply, most recent last

    @property
    def position(self) -> int:
        return self.projection.position

    def catch_up(self, until: int | None = None) -> int:
        """Apply everything the log holds beyond our position; return the new position.

        With ``until``, nothing is read when, once our turn comes, another caller's catch-up
        has already applied that far: concurrent writers then share one read, not one each.
        """
        with self._lock:
            if getattr(self.projection, "replaying", False):
                decoder = BulkDecoder.for_mapper(self.app.mapper)
                if decoder is not None:
                    with fewer_collections():
                        return self._replay(decoder, until)
            while until is None or self.projection.position < until:
                notifications = self.app.recorder.select_notifications(
                    self.projection.position, self.batch_size, inclusive_of_start=False
                )
                if not notifications:
                    break
                for notification in notifications:
                    position = int(notification.id)
                    try:
                        event = self.app.mapper.to_domain_event(notification)
                        self.projection.apply(event, position)
                    except Exception as error:  # no store is touched here: not an outage
                        self._skip(Stall(position, event_type_of(notification.topic), repr(error)))
                with self._applied:
                    self._applied.notify_all()
                if len(notifications) < self.batch_size:
                    break
            return self.projection.position

    def _replay(self, decoder: BulkDecoder, until: int | None) -> int:
        """``catch_up`` in bulk: pages read ahead by a thread, events decoded by ``decoder``."""
        projection, mapper = self.projection, self.app.mapper
        pages: queue.Queue[Sequence[Row] | BaseException] = queue.Queue(maxsize=1)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read_ahead,
            args=(projection.position, pages, stop),
            name="mandate-replay-reader",
            daemon=True,
        )
        reader.start()
        try:
            while until is None or projection.position < until:
                page = pages.get()
                if isinstance(page, BaseException):
                    raise page
                for position, originator_id, version, topic, state in page:
                    try:
                        try:
                            event = decoder.decode(originator_id, version, topic, state)
                        except Exception:  # anything unusual: the mapper's own decoding
                            event = mapper.to_domain_event(
                                Notification(
                                    id=position,
                                    originator_id=originator_id,
                                    originator_version=version,
                                    topic=topic,
                                    state=state,
                                )
                            )
                        projection.apply(event, position)
                    except Exception as error:  # as in ``catch_up``
                        self._skip(Stall(position, event_type_of(topic), repr(error)))
                with self._applied:
                    self._applied.notify_all()
                if len(page) < BULK_PAGE:
                    break
            return projection.position
        finally:
            stop.set()
            while reader.is_alive():  # unblock a reader waiting to hand on a page
                with contextlib.suppress(queue.Empty):
                    pages.get(timeout=0.01)
            reader.join()

    def _read_ahead(
        self, after: int, pages: queue.Queue[Sequence[Row] | BaseException], stop: threading.Event
    ) -> None:
        """Read pages from ``after`` until a short one (the head), handing each on in order."""
        try:
            for page in self._pages(after):
                pages.put(page)
                if stop.is_set() or len(page) < BULK_PAGE:
                    return
        except BaseException as error:  # handed to the applying thread, which raises it
            pages.put(error)

    def _pages(self, after: int) -> Iterator[Sequence[Row]]:
        """Pages of rows beyond ``after``, the last one short (maybe empty): on PostgreSQL one
        binary query a page (the C loaders build every column), falling back to the recorder
        — and its retries — on any error."""
        recorder = self.app.recorder
        postgres = recorder if isinstance(recorder, PostgresApplicationRecorder) else None
        statement = None
        if postgres is not None:
            statement = SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM {}.{} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(Identifier(postgres.datastore.schema), Identifier(postgres.events_table_name))
        while True:
            page: Sequence[Row] | None = None
            if postgres is not None and statement is not None:
                try:
                    with (
                        postgres.datastore.get_connection() as connection,
                        connection.cursor(binary=True, row_factory=tuple_row) as cursor,
                    ):
                        cursor.execute(statement, (after, BULK_PAGE), prepare=True)
                        page = cursor.fetchall()
                except Exception as error:
                    log.warning("the bulk read failed (%s); reading through the recorder", error)
            if page is None:
                notifications = recorder.select_notifications(
                    after, BULK_PAGE, inclusive_of_start=False
                )
                page = [
                    (n.id, n.originator_id, n.originator_version, n.topic, n.state)
                    for n in notifications
                ]
            yield page
            if len(page) < BULK_PAGE:
                return  # the head (an empty page included: the consumer waits for one)
            after = int(page[-1][0])

    def _skip(self, stall: Stall) -> None:
        log.error("the decision index could not apply %s; passed over", stall)
        self.skipped = [*self.skipped[-(_SKIPPED_KEPT - 1) :], stall]
        self.projection.position = max(self.projection.position, stall.position)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until ``position`` is applied (catching up ourselves), or ``timeout`` passes."""
        if self.projection.position >= position:
            return True
        deadline = time.monotonic() + timeout
        self.catch_up(until=position)
        with self._applied:
            while self.projection.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._applied.wait(min(remaining, self.poll_interval))
                if self.projection.position < position:
                    self.catch_up(until=position)
        return True

    def start(self) -> None:
        self._loop.start(self._run, "mandate-follower")

    def wake(self) -> None:
        """Read the log now instead of at the next poll (another process committed)."""
        self._wake.set()

    def stop(self) -> None:
        self._loop.stop(self._wake)

    def _run(self) -> None:
        while not self._loop.stopping.is_set():
            try:
                self.catch_up()
                self.last_error = None
            except Exception as error:  # a store outage must not kill the follower
                if self.last_error is None:
                    log.warning("following the log failed: %s", error)
                self.last_error = error
            self._wake.wait(self.poll_interval)
            self._wake.clear()
