"""Following the log into a SQL read model, a batch per transaction, exactly once.

A ``ProjectionWorker`` reads the ledger's notifications after the copy's tracked position
(polling: it works on every store, SQLite included), hands each decoded event with its
position and *ledger time* to the projection, and commits the projection's rows together
with the batch's last position in one transaction. Rebuilds therefore run at the speed of
decoding, not of commits; a failure anywhere in a batch rolls the whole batch back, and the
next attempt starts again from the tracked position.

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

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import DataError, IntegrityError, Notification

from domain.common.ledger_time import ledger_time_after
from projections.store.bulk_decoding import BulkDecoder
from projections.store.leadership import Lease
from projections.store.read_model_store import ReadModelStore

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

STATE_DDL = "CREATE TABLE IF NOT EXISTS {p}_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


# Errors by which a store refuses a batch's *rows* (a value it cannot hold), as opposed to
# an outage: the batch is narrowed to one event at a time to find the event, which stalls.
_ROWS_REFUSED = (DataError, ValueError, TypeError, ArithmeticError)
_STALL_KEY = "stalled"

CATCH_UP_BATCH = 10_000
"""Events per transaction while a worker drains a backlog (``catch_up``, a rebuild): a copy far
behind commits fewer, larger transactions, and a fact opened and closed within one of them
is written once instead of inserted then updated. The background thread keeps ``batch_size``."""


def event_type_of(topic: str) -> str:
    """``mandate:RoleSessionsRevoked.v1`` → ``RoleSessionsRevoked`` (known before decoding)."""
    name = topic.rpartition(":")[2]
    head, dot, version = name.rpartition(".v")
    return head if dot and version.isdigit() else name


@dataclass(frozen=True, slots=True)
class Stall:
    """Where a projection (or the decision index) stopped: the event it cannot apply, why."""

    position: int
    event_type: str
    error: str

    def __str__(self) -> str:
        return f"position {self.position} ({self.event_type}): {self.error}"

    def as_dict(self) -> dict[str, object]:
        return {"position": self.position, "event_type": self.event_type, "error": self.error}


class EventNotApplicable(Exception):
    """An event the projection cannot apply: the worker stalls at its position.

    For the audit trail this means the log no longer explains itself — an event it cannot
    name — and recording something vague into a signed chain would be worse than stopping.
    """

    def __init__(self, position: int, reason: str, *, event_type: str | None = None) -> None:
        where = f"position {position}" + (f" ({event_type})" if event_type else "")
        super().__init__(f"{where}: {reason}")
        self.position = position
        self.event_type = event_type
        self.reason = reason


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
        leases: Callable[[ReadModelStore], Lease] | None = None,
        lease_retry: float = 1.0,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._leases = leases
        self.lease: Lease | None = leases(store) if leases is not None else None
        self.lease_retry = lease_retry
        self._next_attempt = 0.0  # monotonic time of the next try for the lease
        self._next_check = 0.0  # monotonic time of the next check that the lease still holds
        self._wake = threading.Event()
        # What this worker did, for tests and /metrics: batches it committed, reloads of its
        # in-memory state, and batches another worker had already applied (0 under a lease).
        self.batches_committed = 0
        self.reloads = 0
        self.conflicts = 0
        self._position: int | None = None  # what we last committed (None: reload first)
        self._ledger_time: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self.last_applied_at: float | None = None
        self.stall: Stall | None = None  # set once an event cannot be applied (never retried)
        self._narrow_until = 0  # after rows the store refused: one event per batch up to here
        # Tests inject failures here: called with each event's position before it is applied.
        self.before_apply: Callable[[int], None] | None = None

    @property
    def position(self) -> int:
        return self.store.position()

    @property
    def catch_up_size(self) -> int:
        """Events per transaction while draining a backlog (``CATCH_UP_BATCH`` at least)."""
        return max(self.batch_size, CATCH_UP_BATCH)

    def _reload(self) -> None:
        self.reloads += 1
        with self.store.transaction(commit=False) as cursor:
            self.projection.load(self.store, cursor)
            row = self.store.execute(
                cursor, "SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",)
            ).fetchone()
        self._ledger_time = datetime.fromisoformat(row["value"]) if row else None
        self._position = self.store.position()

    def run_batch(self, size: int | None = None) -> int:
        """Apply the next batch (up to ``size``, default ``batch_size``, events); return how
        many were applied.

        Raises ``EventNotApplicable`` once the worker is stalled (see the module's docstring).
        """
        with self._lock:
            if self.stall is not None:
                raise self._not_applicable(self.stall)
            tracked = self.store.position()
            if self._position != tracked:
                self._reload()  # first batch, or another worker wrote to this copy
            size = 1 if tracked < self._narrow_until else (size or self.batch_size)
            notifications = self.ledger.recorder.select_notifications(
                tracked, size, inclusive_of_start=False
            )
            if not notifications:
                return 0
            try:
                ledger_time, stall = self._apply_all(notifications)
                if stall is not None:
                    # The failed event may have half-changed the running state: forget the
                    # batch, reload, and apply only what precedes it.
                    self.projection.discard()
                    self._reload()
                    notifications = notifications[: self._index_of(notifications, stall)]
                    ledger_time, again = self._apply_all(notifications)
                    assert again is None, f"{again} failed on a second reading"
                if notifications:
                    self._commit(notifications, ledger_time)
            except IntegrityError:
                # Another worker applied these first: its rows stand, ours are rolled back.
                self.conflicts += 1
                self.projection.discard()
                self._position = None
                return 0
            except _ROWS_REFUSED as refused:
                self.projection.discard()
                self._position = None
                if len(notifications) > 1:  # which event's rows? one at a time will tell
                    self._narrow_until = int(notifications[-1].id)
                    return 0
                stall = Stall(
                    int(notifications[0].id),
                    event_type_of(notifications[0].topic),
                    f"the store refused its rows: {refused!r}",
                )
                notifications = []
            except BaseException:
                self.projection.discard()
                self._position = None
                raise
            if notifications:
                self._position = int(notifications[-1].id)
                self._ledger_time = ledger_time
                self.last_applied_at = time.time()
                self.batches_committed += 1
            if stall is not None:
                self.stall = stall
                self._record_stall(stall)
                log.error(
                    "projection %s stalled at %s; it stays there until a rebuild or a restart",
                    self.store.prefix,
                    stall,
                )
                raise self._not_applicable(stall)
            return len(notifications)

    def _apply_all(
        self, notifications: Sequence[Notification]
    ) -> tuple[datetime | None, Stall | None]:
        """Apply events in order; stop at the first that cannot be applied, naming it."""
        ledger_time = self._ledger_time
        mapper = self.ledger.mapper
        # The bulk decoder builds what the mapper builds, faster; one per batch, so its memo
        # of ids lives no longer than the batch. Anything unusual goes to the mapper.
        decoder = BulkDecoder.for_mapper(mapper)
        for notification in notifications:
            position = int(notification.id)
            if self.before_apply is not None:
                self.before_apply(position)  # an injected crash is an outage, not a stall
            try:
                event: Any = None
                if decoder is not None:
                    try:
                        event = decoder.decode(
                            notification.originator_id,
                            notification.originator_version,
                            notification.topic,
                            notification.state,
                        )
                    except Exception:  # the mapper's decoding says what is wrong, if anything
                        event = None
                if event is None:
                    event = mapper.to_domain_event(notification)
                at = ledger_time_after(ledger_time, event.timestamp)
                self.projection.apply(event, position, at)
            except Exception as error:  # decoding and applying touch no store: deterministic
                reason = error.reason if isinstance(error, EventNotApplicable) else repr(error)
                return ledger_time, Stall(position, event_type_of(notification.topic), reason)
            ledger_time = at
        return ledger_time, None

    @staticmethod
    def _index_of(notifications: Sequence[Notification], stall: Stall) -> int:
        return next(i for i, n in enumerate(notifications) if int(n.id) == stall.position)

    def _commit(self, notifications: Sequence[Notification], ledger_time: datetime | None) -> None:
        with self.store.transaction(commit=True) as cursor:
            self.projection.flush(self.store, cursor)
            assert ledger_time is not None
            self._save_ledger_time(cursor, ledger_time)
            self.store.execute(cursor, "DELETE FROM {p}_state WHERE key = ?", (_STALL_KEY,))
            self.store.record_position(cursor, int(notifications[-1].id))

    def _record_stall(self, stall: Stall) -> None:
        try:
            with self.store.transaction(commit=True) as cursor:
                self._put_state(cursor, _STALL_KEY, json.dumps(stall.as_dict()))
        except Exception as error:  # the stall stands in memory; only other readers miss it
            log.warning("recording the stall of %s failed: %s", self.store.prefix, error)

    def known_stall(self) -> Stall | None:
        """This worker's stall, or the one a worker of another process recorded in the copy."""
        if self.stall is not None:
            return self.stall
        rows = self.store.query("SELECT value FROM {p}_state WHERE key = ?", (_STALL_KEY,))
        if not rows:
            return None
        value = json.loads(rows[0]["value"])
        return Stall(int(value["position"]), str(value["event_type"]), str(value["error"]))

    @staticmethod
    def _not_applicable(stall: Stall) -> EventNotApplicable:
        return EventNotApplicable(stall.position, stall.error, event_type=stall.event_type)

    def ledger_time(self) -> datetime | None:
        """The ledger time of the last position this copy applied (None before any event)."""
        rows = self.store.query("SELECT value FROM {p}_state WHERE key = ?", ("ledger_time",))
        return datetime.fromisoformat(rows[0]["value"]) if rows else None

    def retarget(self, store: ReadModelStore) -> ReadModelStore:
        """Follow into another copy (a rebuild switched readers); return the one we left."""
        with self._lock:
            old, self.store = self.store, store
            self._position = None
            self.stall = None  # a new copy is another attempt
            self._narrow_until = 0
            if self.lease is not None and self._leases is not None:
                old_lease, self.lease = self.lease, self._leases(store)  # one lease per copy
                self._next_attempt = 0.0
                old_lease.close()
        return old

    def _save_ledger_time(self, cursor: Any, ledger_time: datetime) -> None:
        self._put_state(cursor, "ledger_time", ledger_time.isoformat())

    def _put_state(self, cursor: Any, key: str, value: str) -> None:
        statement = (
            "INSERT INTO {p}_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        self.store.execute(cursor, statement, (key, value))

    # -- who applies: the lease ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether the background thread follows the log (else only reads apply on demand)."""
        return self._thread is not None

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
        if self._thread is not None:  # the background thread tries for the lease
            self._raise_recorded_stall()
            return
        if not self._try_lead():
            self._raise_recorded_stall()
            return
        try:
            size = self.catch_up_size
            while self.run_batch(size) == size:
                pass
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
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"mandate-{self.store.prefix}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.lease is not None:
            try:
                self.lease.close()
            except Exception as error:  # closing the session releases the lock anyway
                log.warning("releasing the lease of %s failed: %s", self.store.prefix, error)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._try_lead():
                    while self.run_batch() == self.batch_size and not self._stop.is_set():
                        pass
                self.last_error = None
            except Exception as error:  # an outage must not kill the worker
                if self.last_error is None:
                    log.warning("projection %s failed: %s", self.store.prefix, error)
                self.last_error = error
            self._wake.wait(self.poll_interval)
            self._wake.clear()
