"""The security log's writer: refusals handed over in a microsecond, written in batches.

A refused request must not wait for a database write (an attacker's flood of failed
authentications would otherwise become a flood of synchronous inserts), so ``record`` puts the
row on a bounded queue and a daemon thread writes whatever has gathered in one transaction.
When the queue is full (the store down, or a flood beyond what it absorbs) the row is dropped
and counted in ``mandate_security_events_dropped_total``; the refusal itself is still answered
and still counted by the abuse metrics. ``flush`` waits until everything handed over before
it has been written (reads of the log, tests, shutdown).
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from prometheus_client import Counter

from mandate.api.abuse import may_log_denial
from mandate.projections.store.security_log import SecurityEvent, SecurityLog

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore
    from eventsourcing.sqlite import SQLiteDatastore

    from mandate.api.deps import Caller
    from mandate.api.runtime import Runtime
    from mandate.api.settings import Settings

__all__ = ["DROPPED", "SecurityRecorder", "denied", "open_security_events"]

DROPPED: Final = Counter(
    "mandate_security_events_dropped",
    "Security-log rows not written, by why: queue_full (the writer's queue), store_error "
    "(the batch's write failed), caller_flood (one caller's refusals beyond its share).",
    ["reason"],
)
WRITTEN: Final = Counter("mandate_security_events", "Security-log rows written, by kind.", ["kind"])
_BATCH: Final = 500
_REASON_CHARS: Final = 500
_log = logging.getLogger("mandate.security")


class SecurityRecorder:
    """Hands security events to a background writer over ``log``."""

    def __init__(self, log: SecurityLog, *, queue_size: int, retention_days: float = 90) -> None:
        self.log = log
        self.retention = timedelta(days=retention_days)
        self._queue: queue.Queue[SecurityEvent | threading.Event | None] = queue.Queue(
            maxsize=queue_size
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(
        self,
        *,
        kind: str,
        account_id: str | None,
        caller: str | None,
        access_key_id: str | None,
        action: str | None,
        resource: str | None,
        reason: str,
        code: str | None,
        source_ip: str | None,
        request_id: str | None,
    ) -> None:
        """Queue one refusal (never blocks; dropped and counted when the queue is full)."""
        event = SecurityEvent(
            at=datetime.now(UTC),
            account_id=account_id,
            kind=kind,
            caller=caller,
            access_key_id=access_key_id[:128] if access_key_id else None,
            action=action[:256] if action else None,
            resource=resource[:1024] if resource else None,
            reason=reason[:_REASON_CHARS],
            code=code,
            source_ip=source_ip,
            request_id=request_id,
        )
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            DROPPED.labels("queue_full").inc()

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete the rows older than the retention (``MANDATE_SECURITY_LOG_RETENTION_DAYS``)
        at ``now`` (default: now); how many went."""
        return self.log.purge((now or datetime.now(UTC)) - self.retention)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event handed over before this call is written (or failed)."""
        if self._thread is None:
            return True
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the writer."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._write, name="mandate-security-log", daemon=True
                )
                thread.start()
                self._thread = thread

    def _write(self) -> None:
        while True:
            batch: list[SecurityEvent] = []
            waiting: list[threading.Event] = []
            stop = False
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= _BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self.log.append(batch)
                    for event in batch:
                        WRITTEN.labels(event.kind).inc()
                except Exception as error:  # the store is down: these rows are lost, counted
                    DROPPED.labels("store_error").inc(len(batch))
                    _log.warning("%d security-log rows could not be written: %s", len(batch), error)
            for done in waiting:
                done.set()
            if stop:
                with self._lock:
                    self._thread = None
                return


def open_security_events(
    datastore: SQLiteDatastore | PostgresDatastore, settings: Settings, create: bool
) -> SecurityRecorder:
    """The runtime's security log in the ledger's store (its table created when ``create``,
    as the read models' are: ``mandate migrate`` and test runtimes) and its writer."""
    log = SecurityLog(datastore)
    if create:
        log.create_table()
    return SecurityRecorder(
        log,
        queue_size=settings.security_log_queue,
        retention_days=settings.security_log_retention_days,
    )


def denied(
    runtime: Runtime, caller: Caller, account_id: str, action: str, resource: str, reason: str
) -> str:
    """Put a refused management call (403 NoPermission) in the security log of the account it
    concerns (a refusal writes no ledger event); answer ``reason``, for the 403.

    An authenticated caller is not otherwise limited in how many calls it may have refused,
    and may name any account: beyond its share of rows (``api.abuse.DENIAL_ROWS_*``) its
    refusals are counted, not written, so no one caller can fill another account's log."""
    if not may_log_denial(runtime, caller.arn):
        DROPPED.labels("caller_flood").inc()
        return reason
    runtime.security_events.record(
        kind="access_denied",
        account_id=account_id,
        caller=caller.arn,
        access_key_id=caller.credential.access_key_id if caller.credential else None,
        action=action,
        resource=resource,
        reason=reason,
        code="NoPermission",
        source_ip=caller.source_ip,
        request_id=caller.given_request_id,
    )
    return reason
