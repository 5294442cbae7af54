"""A projection (``SqlProjection``) and its batches, applied exactly once.

``BatchApplier`` reads the ledger's notifications after the copy's tracked position, hands each
decoded event with its position and *ledger time* to the projection, and commits the
projection's rows together with the batch's last position in one transaction: a failure
anywhere rolls the whole batch back, and the next attempt starts from the tracked position.
An event it cannot apply stalls it there (``projection_stalls``); rows the store refuses are
found by narrowing the batch to one event at a time. Who applies, and when, is the worker's
business (``sql_projection.ProjectionWorker``).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification

from mandate.domain.common.ledger_time import ledger_time_after
from mandate.projections.store.bulk_decoding import BulkDecoder
from mandate.projections.store.projection_stalls import (
    ROWS_REFUSED,
    STALL_KEY,
    EventNotApplicable,
    Stall,
    clear_state,
    event_type_of,
    put_state,
    read_state,
    record_stall,
    recorded_stall,
)
from mandate.projections.store.read_model_store import ReadModelStore

__all__ = ["BatchApplier", "SqlProjection"]

log = logging.getLogger("mandate.projections")


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

    def caught_up(self, store: ReadModelStore, cursor: Any) -> None:  # noqa: B027 (optional hook)
        """The backlog is drained: finish what a catch-up put off, inside ``cursor``'s
        transaction (called once a catch-up ends, whatever its last batch's size)."""


class BatchApplier:
    """Applies batches of the log to one copy of a projection (see the module's docstring)."""

    def __init__(
        self,
        ledger: Application[UUID],
        store: ReadModelStore,
        projection: SqlProjection,
        *,
        batch_size: int = 1000,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        # What this worker did, for tests and /metrics: batches it committed, reloads of its
        # in-memory state, and batches another worker had already applied (0 under a lease).
        self.batches_committed = 0
        self.reloads = 0
        self.conflicts = 0
        self._position: int | None = None  # what we last committed (None: reload first)
        self._ledger_time: datetime | None = None
        self._lock = threading.Lock()
        self.last_applied_at: float | None = None
        self.stall: Stall | None = None  # set once an event cannot be applied (never retried)
        self._narrow_until = 0  # after rows the store refused: one event per batch up to here
        # Tests inject failures here: called with each event's position before it is applied.
        self.before_apply: Callable[[int], None] | None = None

    @property
    def position(self) -> int:
        return self.store.position()

    def _reload(self) -> None:
        self.reloads += 1
        with self.store.transaction(commit=False) as cursor:
            self.projection.load(self.store, cursor)
            value = read_state(self.store, "ledger_time", cursor)
        self._ledger_time = datetime.fromisoformat(value) if value is not None else None
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
            except ROWS_REFUSED as refused:
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

    def finish_catch_up(self) -> None:
        """Tell the projection its backlog is drained (``SqlProjection.caught_up``), in a
        transaction of its own: a catch-up whose log ends on a full batch ends on an empty
        one, which writes nothing, so no batch can do it. Nothing once stalled."""
        with self._lock:
            if self.stall is not None:
                return
            if self._position != self.store.position():
                self._reload()  # another worker wrote to this copy: its state, not ours
            with self.store.transaction(commit=True) as cursor:
                self.projection.caught_up(self.store, cursor)

    @staticmethod
    def _index_of(notifications: Sequence[Notification], stall: Stall) -> int:
        return next(i for i, n in enumerate(notifications) if int(n.id) == stall.position)

    def _commit(self, notifications: Sequence[Notification], ledger_time: datetime | None) -> None:
        with self.store.transaction(commit=True) as cursor:
            self.projection.flush(self.store, cursor)
            assert ledger_time is not None
            self._save_ledger_time(cursor, ledger_time)
            clear_state(self.store, cursor, STALL_KEY)
            self.store.record_position(cursor, int(notifications[-1].id))

    def _record_stall(self, stall: Stall) -> None:
        try:
            with self.store.transaction(commit=True) as cursor:
                record_stall(self.store, cursor, stall)
        except Exception as error:  # the stall stands in memory; only other readers miss it
            log.warning("recording the stall of %s failed: %s", self.store.prefix, error)

    def known_stall(self) -> Stall | None:
        """This worker's stall, or the one a worker of another process recorded in the copy."""
        if self.stall is not None:
            return self.stall
        return recorded_stall(self.store)

    @staticmethod
    def _not_applicable(stall: Stall) -> EventNotApplicable:
        return EventNotApplicable(stall.position, stall.error, event_type=stall.event_type)

    def ledger_time(self) -> datetime | None:
        """The ledger time of the last position this copy applied (None before any event)."""
        value = read_state(self.store, "ledger_time")
        return datetime.fromisoformat(value) if value is not None else None

    def _forget_copy(self, store: ReadModelStore) -> ReadModelStore:
        """Apply into another copy from now on (under the lock); return the one we left."""
        old, self.store = self.store, store
        self._position = None
        self.stall = None  # a new copy is another attempt
        self._narrow_until = 0
        return old

    def _save_ledger_time(self, cursor: Any, ledger_time: datetime) -> None:
        put_state(self.store, cursor, "ledger_time", ledger_time.isoformat())
