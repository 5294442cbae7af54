"""The access review's time: the instants where an answer may change, and the intervals.

``time_bounds`` names the instants no event marks (an entrustment's or a delegation's
``starts_at``/``ends_at``, each date a ``Date…`` condition on ``acs:CurrentTime`` names, and the
microsecond after it); ``Timeline`` turns the answers that changed at each instant into exact
half-open intervals, merged while the answer stays the same. Kept apart from the replay and
from deciding so each can be read, and tested, alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from mandate.domain.policy.condition_values import as_date

__all__ = [
    "CURRENT_TIME",
    "Allowed",
    "Entry",
    "ItemKey",
    "PrincipalId",
    "ReviewInterval",
    "Timeline",
    "time_bounds",
]

_TICK = timedelta(microseconds=1)
CURRENT_TIME = "acs:currenttime"


@dataclass(frozen=True, slots=True)
class ReviewInterval:
    """``[start, end)``: the principal could do it, through ``chain``, the whole time."""

    start: datetime
    end: datetime
    conditional: bool
    chain: tuple[str, ...]


ItemKey = tuple[str, str, UUID | None]
"""(ARN, account id, user id or None for a root): a renamed user gets a new item, and a
deleted user's name taken by a new user is a different principal."""
Allowed = tuple[bool, tuple[str, ...]]
"""(conditional, chain) of an allowed principal at one instant."""


PrincipalId = UUID | str | None
"""A user's id, None for A's root, or ``resource-policy:<name>`` for another principal a
resource policy names (``review_decisions``)."""
Entry = tuple[ItemKey, Allowed]


@dataclass(slots=True)
class Timeline:
    """Intervals under construction: the open one per principal, the closed ones.

    It is told only what changed at an instant (``observe``), so an instant costs what
    changed there, not one step per principal allowed.
    """

    open: dict[PrincipalId, tuple[datetime, Entry]] = field(default_factory=dict)
    closed: dict[ItemKey, list[ReviewInterval]] = field(default_factory=dict)

    def observe(self, at: datetime, changes: Mapping[PrincipalId, Entry | None]) -> None:
        for principal, entry in changes.items():
            current = self.open.get(principal)
            if current is not None and current[1] == entry:
                continue
            if current is not None:
                self._close(principal, current, at)
            if entry is not None:
                self.open[principal] = (at, entry)

    def finish(self, end: datetime) -> dict[ItemKey, list[ReviewInterval]]:
        for principal, current in list(self.open.items()):
            self._close(principal, current, end)
        return self.closed

    def _close(
        self, principal: PrincipalId, current: tuple[datetime, Entry], until: datetime
    ) -> None:
        del self.open[principal]
        since, (key, (conditional, chain)) = current
        if until > since:
            self.closed.setdefault(key, []).append(ReviewInterval(since, until, conditional, chain))


def time_bounds(event: Any) -> list[datetime]:
    """Instants after which a decision may change although no event happens then."""
    found = []
    attributes = getattr(event, "__dict__", {})
    for name in ("starts_at", "ends_at"):
        moment = attributes.get(name)
        if isinstance(moment, datetime):
            found.append(moment)
    for value in attributes.values():
        if isinstance(value, str) and CURRENT_TIME in value.lower():
            try:
                document = json.loads(value)
            except ValueError:
                continue
            for moment in _current_time_values(document):
                found += (moment, moment + _TICK)
    return found


def _current_time_values(node: object) -> Iterator[datetime]:
    """The instants ``Date…`` conditions on ``acs:CurrentTime`` name anywhere in a document."""
    if isinstance(node, list):
        for item in node:
            yield from _current_time_values(item)
    elif isinstance(node, dict):
        for operator, block in node.items():
            if (
                isinstance(operator, str)
                and operator.startswith("Date")
                and isinstance(block, dict)
            ):
                for key, values in block.items():
                    if isinstance(key, str) and key.lower() == CURRENT_TIME:
                        for value in values if isinstance(values, list) else [values]:
                            moment = as_date(value)
                            if moment is not None:
                                yield moment
            else:
                yield from _current_time_values(block)
