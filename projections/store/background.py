"""The thread a follower of the log loops in: started at most once, stopped and joined in bounds.

The decision index's follower (``follower.py``), the LISTEN connection (``log_notifications.py``)
and each SQL projection worker (``sql_projection.py``) run a loop in a daemon thread until they
are stopped; this is that thread's lifecycle, written once so that all three start and stop
alike (a second ``start`` is a no-op, ``stop`` cuts the loop's wait short and joins it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["BackgroundThread"]


class BackgroundThread:
    """A daemon thread running a loop, which should return once ``stopping`` is set.

    The loop is given to ``start`` and held only by the thread, so that this object keeps
    no reference to its owner (no cycle: a stopped follower is freed at once)."""

    def __init__(self, *, join_timeout: float = 5.0) -> None:
        self.join_timeout = join_timeout
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, loop: Callable[[], None], name: str) -> None:
        """Run ``loop`` in a new daemon thread called ``name``, unless one runs already."""
        if self.thread is not None:
            return
        self.stopping.clear()
        self.thread = threading.Thread(target=loop, name=name, daemon=True)
        self.thread.start()

    def stop(self, *waits: threading.Event) -> None:
        """Ask the loop to stop, set ``waits`` (the events it sleeps on between rounds, so it
        sees the request now rather than after its poll interval), and join it."""
        self.stopping.set()
        for wait in waits:
            wait.set()
        if self.thread is not None:
            self.thread.join(timeout=self.join_timeout)
            self.thread = None
