"""Group commit: concurrent commands' events saved in one transaction, each answered alone.

Every save pays a transaction: on PostgreSQL the recorder also takes the events table's lock
(so positions follow commit order) and waits for the commit to be flushed. Commands that
arrive while a save is under way queue up; when it ends, the first of them (the leader)
saves everything queued in one transaction on everybody's behalf and hands each command the
recordings of its own events. No timer: a lone command is saved at once, and batches grow
only as large as the concurrency that is actually waiting.

A batch that fails on an ``IntegrityError`` (two commands extended the same aggregate, or
another process got there first) is saved again one command at a time, so the conflict
reaches only the command it belongs to, which the ledger decides again; the others commit.
Any other failure (the store is down) reaches every command of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from eventsourcing.persistence import IntegrityError

__all__ = ["GroupCommitter"]

B = TypeVar("B")  # what one command saves
R = TypeVar("R")  # the record of one saved event

MAX_BATCH = 64  # commands per transaction


@dataclass(eq=False)
class _Waiting(Generic[B, R]):
    batch: B
    done: bool = False
    recordings: list[R] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter(Generic[B, R]):
    """Saves commands' batches through ``record``, several in one call when they queue up.

    ``merge`` makes one batch of several, ``size`` counts a batch's events, and ``record``
    saves a batch in one transaction and answers one record per event, in order.
    """

    def __init__(
        self,
        record: Callable[[B], Sequence[R]],
        merge: Callable[[list[B]], B],
        size: Callable[[B], int],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._record = record
        self._merge = merge
        self._size = size
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: list[_Waiting[B, R]] = []
        self._saving = False
        self.batches = 0  # transactions that saved more than one command
        self.split = 0  # batches saved again one by one after an IntegrityError

    def commit(self, batch: B) -> list[R]:
        """Save ``batch`` (alone or with others'); its records, or its own failure, raised."""
        mine: _Waiting[B, R] = _Waiting(batch)
        with self._changed:
            self._queue.append(mine)
            while not mine.done:
                if self._saving:
                    self._changed.wait()
                    continue
                self._saving = True
                taken = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._changed.release()
                try:
                    self._save(taken)
                finally:
                    self._changed.acquire()
                    self._saving = False
                    self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.recordings

    def _save(self, taken: list[_Waiting[B, R]]) -> None:
        try:
            if len(taken) == 1:
                self._alone(taken[0])
                return
            try:
                recordings = list(self._record(self._merge([w.batch for w in taken])))
            except IntegrityError:
                self.split += 1
                for waiting in taken:
                    self._alone(waiting)
                return
            self.batches += 1
            start = 0
            for waiting in taken:
                end = start + self._size(waiting.batch)
                waiting.recordings = recordings[start:end]
                start = end
        except BaseException as error:  # the store failed: every command of the batch hears it
            for waiting in taken:
                if not waiting.done and waiting.error is None and not waiting.recordings:
                    waiting.error = error
            if not isinstance(error, Exception):
                raise
        finally:
            for waiting in taken:
                waiting.done = True

    def _alone(self, waiting: _Waiting[B, R]) -> None:
        try:
            waiting.recordings = list(self._record(waiting.batch))
        except Exception as error:
            waiting.error = error
