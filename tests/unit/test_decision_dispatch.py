"""The decision index's handlers: every catalogue event handled or ignored, others refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from mandate.domain.events import EVENT_CLASSES
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.secrets import SecretHasher
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.state import HANDLERS
from mandate.projections.dispatch import UnknownEvent


@dataclass(frozen=True)
class _Unheard:
    TOPIC = "test:Unheard.v1"
    timestamp: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def _index() -> DecisionIndex:
    return DecisionIndex(SecretHasher("k1", {"k1": b"dispatch-test-key-" + b"k" * 32}))


def test_every_catalogue_event_is_handled_or_ignored() -> None:
    assert HANDLERS.unhandled(EVENT_CLASSES) == []


def test_an_event_of_an_unknown_class_is_refused_and_changes_nothing() -> None:
    index = _index()
    with pytest.raises(UnknownEvent, match=r"decision index has no handler for test:Unheard\.v1"):
        index.apply(_Unheard(), 1)  # type: ignore[arg-type]
    assert index.position == 0
    assert index.ledger_time is None


def test_an_ignored_event_moves_the_position_but_not_the_lineage_epoch() -> None:
    claim = NameClaim("123456789012", "user", "alice", uuid4())
    (event,) = claim.collect_events()
    assert HANDLERS.ignored(type(event))
    index = _index()
    epoch = index._lineage_epoch
    index.apply(event, 7)
    assert index.position == 7
    assert index._lineage_epoch == epoch


def test_the_hot_lookup_sees_what_the_registry_holds() -> None:
    lookup = HANDLERS.lookup()
    for cls in EVENT_CLASSES.values():
        assert lookup(cls) is HANDLERS.handler_for(cls)
    assert lookup(_Unheard) is None
