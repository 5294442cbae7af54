"""Waking followers when another process appends to the log: PostgreSQL LISTEN/NOTIFY.

eventsourcing's PostgreSQL recorder sends ``NOTIFY <channel>`` in every transaction that
inserts events (``PostgresApplicationRecorder.channel_name``: the events table's name), and
PostgreSQL delivers it on commit. A ``LogListener`` holds one connection per process that
LISTENs on that channel and calls its callbacks (the decision index's follower, the SQL
projection workers) on each notification, so a revocation written by one process is applied
by the others within milliseconds instead of at their next poll.

A notification carries nothing the followers need — they read ``id > last`` as always — so a
lost one (the connection dropped, the listener restarting) costs at most one poll interval:
the followers keep polling as a fallback. After every (re)connection the callbacks are called
once, since whatever was committed while the listener was away was never announced to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from mandate.projections.store.background import BackgroundThread
from mandate.projections.store.leadership import postgres_connect_kwargs

__all__ = ["LogListener"]

log = logging.getLogger("mandate.follower")


class LogListener:
    """One LISTEN connection, reconnecting with backoff; never raises out of its thread."""

    def __init__(
        self,
        env: Mapping[str, str],
        channel: str,
        callbacks: Sequence[Callable[[], None]],
        *,
        max_backoff: float = 5.0,
    ) -> None:
        self.channel = channel
        self.callbacks = list(callbacks)
        self.max_backoff = max_backoff
        self._connect: dict[str, Any] = {
            **postgres_connect_kwargs(env),
            "autocommit": True,
            "application_name": "mandate-listen",
        }
        self._loop = BackgroundThread()
        self.connected = threading.Event()  # set while LISTEN is in force (tests wait on it)
        self.notifications = 0
        self.backend_pid: int | None = None  # the LISTEN session's server process
        self.last_error: BaseException | None = None

    def start(self) -> None:
        self._loop.start(self._run, "mandate-listen")

    def stop(self) -> None:
        self._loop.stop()

    def _wake_all(self) -> None:
        for callback in self.callbacks:
            try:
                callback()
            except Exception as error:  # a callback only sets an event; never stop listening
                log.warning("waking a follower failed: %s", error)

    def _run(self) -> None:
        backoff = 0.2
        stopping = self._loop.stopping
        while not stopping.is_set():
            try:
                with psycopg.connect(**self._connect) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.backend_pid = conn.info.backend_pid
                    self.connected.set()
                    if self.last_error is not None:
                        log.info("listening to the log again on %s", self.channel)
                    self.last_error = None
                    backoff = 0.2
                    self._wake_all()  # what was committed while we were not listening
                    # a short wait, so that stop() is answered within ~0.1 s (tests start
                    # and stop hundreds of runtimes); waiting on a socket costs nothing
                    while not stopping.is_set():
                        for _ in conn.notifies(timeout=0.1):
                            self.notifications += 1
                            self._wake_all()
            except Exception as error:  # an outage: followers poll meanwhile; try again
                self.connected.clear()
                self.backend_pid = None
                if self.last_error is None:
                    log.warning("listening to the log failed (polling meanwhile): %s", error)
                self.last_error = error
                stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        self.connected.clear()
