"""Follows the event log into an in-memory projection, from its last applied position.

Polling works on every store (SQLite has no subscription); a process that has just
written calls ``catch_up`` itself, so its own writes are applied before it answers
without waiting for the next poll. On PostgreSQL a ``LogListener``
(``projections.log_notifications``) calls ``wake`` when another process commits, so the
others apply it within milliseconds; the poll stays as the fallback for a lost notification.
Positions may have permanent gaps (a rolled-back insert consumes its id), so the follower
always reads ``id > last`` and never counts.

An event the index cannot apply (it does not decode, or its handler raises) is logged,
recorded in ``skipped`` (position, type, error; ``/readyz`` names it) and passed over: the
index is in memory and decides live, so stopping there would leave every later change —
revocations included — unapplied in every process, and every write waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application

from projections.sql_projection import Stall, event_type_of

__all__ = ["LogFollower", "Projection"]

_SKIPPED_KEPT = 100  # the most recent events passed over, for /readyz

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
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
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
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mandate-follower", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Read the log now instead of at the next poll (another process committed)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
                self.last_error = None
            except Exception as error:  # a store outage must not kill the follower
                if self.last_error is None:
                    log.warning("following the log failed: %s", error)
                self.last_error = error
            self._wake.wait(self.poll_interval)
            self._wake.clear()
