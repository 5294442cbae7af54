"""Following the log into a SQL read model, a batch per transaction, exactly once.

A ``ProjectionWorker`` reads the ledger's notifications after the copy's tracked position
(polling: it works on every store, SQLite included), hands each decoded event with its
position and *ledger time* to the projection, and commits the projection's rows together
with the batch's last position in one transaction. Rebuilds therefore run at the speed of
decoding, not of commits; a failure anywhere in a batch rolls the whole batch back, and the
next attempt starts again from the tracked position.

Ledger time (``projections.ledger_time``) is carried from batch to batch in the copy's
``_state`` table, in the same transaction as everything else.

Two workers may follow into the same copy (two API processes, or a rebuild next to a running
server): the tracking insert refuses a position that does not advance, the loser's batch is
rolled back, and it reloads its in-memory state from the tables before going on.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from projections.ledger_time import ledger_time_after
from projections.read_model_store import ReadModelStore

__all__ = [
    "STATE_DDL",
    "EventNotApplicable",
    "ProjectionWorker",
    "SqlProjection",
    "open_copy",
]

log = logging.getLogger("mandate.projections")

STATE_DDL = "CREATE TABLE IF NOT EXISTS {p}_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class EventNotApplicable(Exception):
    """An event the projection cannot apply (its batch rolls back; the worker retries).

    For the audit trail this means the log no longer explains itself — an event it cannot
    name — and recording something vague into a signed chain would be worse than stopping.
    """

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position = position


class SqlProjection(ABC):
    """A read model built from the log: buffers one batch of events, then writes it."""

    name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    ddl: ClassVar[list[str]]

    @abstractmethod
    def load(self, store: ReadModelStore, cursor: Any) -> None:
        """(Re)load the running state the projection keeps in memory from its tables."""

    @abstractmethod
    def apply(self, event: Any, position: int, ledger_time: datetime) -> None:
        """Buffer what one event changes."""

    @abstractmethod
    def flush(self, store: ReadModelStore, cursor: Any) -> None:
        """Write the buffered changes inside the batch's transaction, then forget them."""

    def discard(self) -> None:  # noqa: B027 (optional hook)
        """Forget buffered changes of a batch that was rolled back."""


def open_copy(
    ledger_env: Mapping[str, str], projection: SqlProjection, version: int, *, create: bool
) -> ReadModelStore:
    """Copy ``version`` of ``projection``'s read model on the ledger's store."""
    return ReadModelStore(
        ledger_env, projection.name, version, [*projection.ddl, STATE_DDL], create=create
    )


class ProjectionWorker:
    """Keeps one copy of a SQL projection current with the ledger."""

    def __init__(
        self,
        ledger: Application[UUID],
        store: ReadModelStore,
        projection: SqlProjection,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.1,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._position: int | None = None  # what we last committed (None: reload first)
        self._ledger_time: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self.last_applied_at: float | None = None
        # Tests inject failures here: called with each event's position before it is applied.
        self.before_apply: Callable[[int], None] | None = None

    @property
    def position(self) -> int:
        return self.store.position()

    def _reload(self) -> None:
        with self.store.transaction(commit=False) as cursor:
            self.projection.load(self.store, cursor)
            row = self.store.execute(
                cursor, "SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",)
            ).fetchone()
        self._ledger_time = datetime.fromisoformat(row["value"]) if row else None
        self._position = self.store.position()

    def run_batch(self) -> int:
        """Apply the next batch (up to ``batch_size`` events); return how many were applied."""
        with self._lock:
            tracked = self.store.position()
            if self._position != tracked:
                self._reload()  # first batch, or another worker wrote to this copy
            notifications = self.ledger.recorder.select_notifications(
                tracked, self.batch_size, inclusive_of_start=False
            )
            if not notifications:
                return 0
            ledger_time = self._ledger_time
            try:
                for notification in notifications:
                    position = int(notification.id)
                    if self.before_apply is not None:
                        self.before_apply(position)
                    event: Any = self.ledger.mapper.to_domain_event(notification)
                    ledger_time = ledger_time_after(ledger_time, event.timestamp)
                    self.projection.apply(event, position, ledger_time)
                last = int(notifications[-1].id)
                with self.store.transaction(commit=True) as cursor:
                    self.projection.flush(self.store, cursor)
                    assert ledger_time is not None
                    self._save_ledger_time(cursor, ledger_time)
                    self.store.record_position(cursor, last)
            except IntegrityError:
                # Another worker applied these first: its rows stand, ours are rolled back.
                self.projection.discard()
                self._position = None
                return 0
            except BaseException:
                self.projection.discard()
                self._position = None
                raise
            self._position = last
            self._ledger_time = ledger_time
            self.last_applied_at = time.time()
            return len(notifications)

    def ledger_time(self) -> datetime | None:
        """The ledger time of the last position this copy applied (None before any event)."""
        rows = self.store.query("SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",))
        return datetime.fromisoformat(rows[0]["value"]) if rows else None

    def retarget(self, store: ReadModelStore) -> ReadModelStore:
        """Follow into another copy (a rebuild switched readers); return the one we left."""
        with self._lock:
            old, self.store = self.store, store
            self._position = None
        return old

    def _save_ledger_time(self, cursor: Any, ledger_time: datetime) -> None:
        statement = (
            "INSERT INTO {p}_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        self.store.execute(cursor, statement, ("ledger_time", ledger_time.isoformat()))

    def catch_up(self) -> int:
        """Apply everything the log holds now; return the copy's position."""
        while self.run_batch() == self.batch_size:
            pass
        return self.store.position()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the copy has applied ``position`` (catching up ourselves) or time is up."""
        deadline = time.monotonic() + timeout
        while self.store.position() < position:
            self.run_batch()
            if self.store.position() >= position:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(self.poll_interval, 0.02))
        return True

    # -- the background thread ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"mandate-{self.store.prefix}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.run_batch() == self.batch_size and not self._stop.is_set():
                    pass
                self.last_error = None
            except Exception as error:  # an outage must not kill the worker
                if self.last_error is None:
                    log.warning("projection %s failed: %s", self.store.prefix, error)
                self.last_error = error
            self._stop.wait(self.poll_interval)
