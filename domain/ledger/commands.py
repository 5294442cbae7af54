"""``@command``: a ledger method run as one command, so it reads as straight-line code.

Saves are optimistic: when another writer extended one of the command's aggregates first,
the save (through group commit) raises ``IntegrityError`` and the whole method is run
again against the new state, its checks and guards included (they only read, so a re-run
answers as a first run would against that state). After a few attempts the caller hears
``Conflict``. A refused command raises before any event exists, so it writes nothing.
What it answers is a ``Positioned`` result (``domain.ledger.results``), which the type of
``T`` holds every command to (``None`` only where a command may record nothing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from eventsourcing.persistence import IntegrityError

from mandate.domain.common.errors import Conflict
from mandate.domain.ledger.idempotency import IdempotencyKeyTaken
from mandate.domain.ledger.results import Positioned

__all__ = ["COMMAND_ATTEMPTS", "command"]

COMMAND_ATTEMPTS = 4
P = ParamSpec("P")
T = TypeVar("T", bound=Positioned | None)


def command(method: Callable[P, T]) -> Callable[P, T]:
    """Run ``method`` as one command: re-run on an optimistic-concurrency conflict."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(COMMAND_ATTEMPTS - 1):
            try:
                return method(*args, **kwargs)
            except IdempotencyKeyTaken:
                raise  # another request with this key committed first: never re-run
            except IntegrityError:
                continue  # someone extended one of our aggregates first: decide again
        try:
            return method(*args, **kwargs)
        except IdempotencyKeyTaken:
            raise
        except IntegrityError:
            raise Conflict(
                "the entity was changed concurrently; retry the request",
                code="ConcurrentModification",
            ) from None

    return run
