"""Bounded waits on PostgreSQL: an outage is answered within seconds, never after a minute.

eventsourcing's PostgreSQL recorders retry every read and write ten times, 0.2 s apart, each
attempt waiting the pool's timeout for a connection: a request learned that the database was
down after ~52 s. ``bound_store`` gives a recorder's pool a short wait for a connection
(``MANDATE_STORE_TIMEOUT``), libpq a connect timeout, and a short reconnection window: a pool
that gave up on a connection regrows on the next request, so it reconnects as soon as the
database is back instead of after a backoff that doubles towards minutes. The recorder's retry
becomes at most one more attempt, and none when no connection could be had at all (the
database is unreachable: say so now, the caller answers 503).

A write whose connection broke may nevertheless have committed. ``insert_events`` then looks
for its own events — the same originator, version, topic and state bytes, which carry the
event's id and timestamp — before it tries again, and answers with their notification ids
when they are there: a committed write is never re-run into a conflict with itself.
"""

from __future__ import annotations

import logging
import math
import select
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProcessRecorder,
    Recorder,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Identifier

__all__ = [
    "FACTORY_TOPIC",
    "STORE_RECONNECT_WINDOW",
    "STORE_TIMEOUT",
    "bound_store",
    "is_outage",
    "no_connection",
]

log = logging.getLogger("mandate.store")

# Keys of the store's environment (beside eventsourcing's own POSTGRES_* keys).
STORE_TIMEOUT = "MANDATE_STORE_TIMEOUT"
STORE_RECONNECT_WINDOW = "MANDATE_STORE_RECONNECT_WINDOW"

_OUTAGE = (InterfaceError, OperationalError)
_RETRY_PAUSE = 0.05  # after a broken connection: the pool's pre-ping discards the dead ones


def is_outage(error: BaseException) -> bool:
    """The store could not be reached or the connection broke (not a refusal of the data)."""
    return isinstance(error, _OUTAGE)


def no_connection(error: BaseException) -> bool:
    """No connection could be had within the pool's wait: nothing reached the database."""
    return isinstance(error.__cause__, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed)


_T = TypeVar("_T", bound=PostgresTrackingRecorder)


class BoundedPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory whose recorders have bounded waits (above)."""

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return _bounded(super().aggregate_recorder(purpose), self.env)

    def application_recorder(self) -> ApplicationRecorder:
        return _bounded(super().application_recorder(), self.env)

    def tracking_recorder(self, tracking_recorder_class: type[_T] | None = None) -> _T:
        return _bounded(super().tracking_recorder(tracking_recorder_class), self.env)

    def process_recorder(self) -> ProcessRecorder:
        return _bounded(super().process_recorder(), self.env)


# What a store's PERSISTENCE_MODULE names so that every recorder built from it is bounded.
FACTORY_TOPIC = f"{__name__}:{BoundedPostgresFactory.__qualname__}"

_R = TypeVar("_R", bound=Recorder)


def _bounded(recorder: _R, env: Mapping[str, str]) -> _R:
    bound_store(recorder, env)
    return recorder


def bound_store(recorder: Recorder, env: Mapping[str, str]) -> None:
    """Bound ``recorder``'s waits (PostgreSQL only; SQLite has no pool and no retry loop)."""
    datastore = getattr(recorder, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        return
    timeout = float(env.get(STORE_TIMEOUT, "0.75"))
    pool = datastore.pool
    pool.timeout = timeout
    pool.reconnect_timeout = float(env.get(STORE_RECONNECT_WINDOW, "2.0"))
    if isinstance(pool.kwargs, dict):
        # libpq's own bound on establishing a connection (whole seconds, 2 at least).
        pool.kwargs["connect_timeout"] = max(2, math.ceil(timeout))
    if datastore.pre_ping:
        # psycopg_pool takes its check from the constructor only (eventsourcing passes
        # ``check_connection`` for POSTGRES_PRE_PING): swap in the one without a round trip.
        pool._check = local_check
    for name in dir(type(recorder)):
        method = getattr(type(recorder), name, None)
        if name == "insert_events" and isinstance(recorder, PostgresApplicationRecorder):
            setattr(recorder, name, _verified_insert(recorder, _unretried(method)))
        elif _is_retried(method):
            setattr(recorder, name, _retried_once(recorder, _unretried(method)))


def local_check(conn: psycopg.Connection[Any]) -> None:
    """The pool's pre-ping without its round trip: a pooled connection is idle, so the
    server has nothing to say on it unless it is going away — a restart or a stop sends its
    FATAL and closes the socket, which then reads ready. Only then (or when libpq already
    knows the connection is bad) is it pinged for real, and discarded if that fails.

    A round trip on every checkout cost a write 3 to 6 of them (each command's reads, its
    commit, the follower's and the projections' reads); this costs a ``poll`` of one socket.
    """
    pgconn = conn.pgconn
    if conn.closed or pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        psycopg_pool.ConnectionPool.check_connection(conn)


def _is_retried(method: object) -> bool:
    """Wrapped by ``eventsourcing.utils.retry`` (ten attempts)."""
    code = getattr(method, "__code__", None)
    return code is not None and code.co_name == "retry_decorator"


def _unretried(method: Any) -> Callable[..., Any]:
    return method.__wrapped__ if _is_retried(method) else method  # type: ignore[no-any-return]


def _retried_once(recorder: Recorder, func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(recorder, *args, **kwargs)
        except _OUTAGE as error:
            if no_connection(error):
                raise
        time.sleep(_RETRY_PAUSE)
        return func(recorder, *args, **kwargs)

    call.__name__ = getattr(func, "__name__", "call")
    return call


def _verified_insert(
    recorder: PostgresApplicationRecorder, func: Callable[..., Any]
) -> Callable[..., Any]:
    def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        try:
            return func(recorder, stored_events, **kwargs)
        except _OUTAGE as error:
            if no_connection(error) or not stored_events:
                raise  # nothing was sent: the write did not happen
            log.warning("a write's connection broke (%s); looking for its events", error)
            found = own_notification_ids(recorder, stored_events)
            if found is not None:
                log.warning("the write had committed at %s; answering it", found[-1])
                return found
        time.sleep(_RETRY_PAUSE)
        try:
            return func(recorder, stored_events, **kwargs)
        except IntegrityError:
            # Did our first attempt commit after all (its answer was lost)? Then it stands.
            found = own_notification_ids(recorder, stored_events)
            if found is None:
                raise
            return found

    return insert_events


def own_notification_ids(
    recorder: PostgresApplicationRecorder, stored_events: Sequence[StoredEvent]
) -> list[int] | None:
    """The notification ids of exactly these events if every one is in the log, else None.

    Raises the store's error when it cannot be asked (the outcome stays unknown).
    """
    statement = SQL(
        "SELECT topic, state, notification_id FROM {schema}.{table}"
        " WHERE originator_id = %s AND originator_version = %s"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    ids: list[int] = []
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        for event in stored_events:
            cursor.execute(statement, (event.originator_id, event.originator_version))
            row = cursor.fetchone()
            if row is None or row["topic"] != event.topic or bytes(row["state"]) != event.state:
                return None
            ids.append(int(row["notification_id"]))
    return ids
