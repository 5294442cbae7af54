"""The temporal index's handlers: every catalogue event handled or ignored, others refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from mandate.domain.events import EVENT_CLASSES
from mandate.projections.dispatch import UnknownEvent
from mandate.projections.history.temporal_index import HANDLERS, TemporalIndexProjection


@dataclass(frozen=True)
class _Unheard:
    TOPIC = "test:Unheard.v1"


def test_every_catalogue_event_is_handled_or_ignored() -> None:
    assert HANDLERS.unhandled(EVENT_CLASSES) == []


def test_an_event_of_an_unknown_class_is_refused_not_skipped() -> None:
    with pytest.raises(UnknownEvent, match=r"temporal index has no handler for test:Unheard\.v1"):
        TemporalIndexProjection().apply(_Unheard(), 1, datetime(2026, 1, 1, tzinfo=UTC))
