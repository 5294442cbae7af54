"""The typed dispatch registry: handlers by class, explicit ignores, unknown events refused."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mandate.projections.dispatch import EventHandlers, UnknownEvent


@dataclass(frozen=True)
class Opened:
    TOPIC = "test:Opened.v1"
    name: str


@dataclass(frozen=True)
class Closed:
    TOPIC = "test:Closed.v1"


@dataclass(frozen=True)
class Renamed:
    TOPIC = "test:Renamed.v1"


on: EventHandlers[Model] = EventHandlers("test model")


class Model:
    def __init__(self) -> None:
        self.names: list[str] = []

    @on.on(Opened)
    def _opened(self, event: Opened, position: int) -> None:
        self.names.append(f"{event.name}@{position}")

    def apply(self, event: object, position: int) -> None:
        on.handler_for(type(event))(self, event, position)


on.ignores(Closed)


def test_a_handler_is_found_by_the_event_class() -> None:
    model = Model()
    model.apply(Opened("a"), 3)
    model.apply(Closed(), 4)
    assert model.names == ["a@3"]
    assert on.ignored(Closed)
    assert not on.ignored(Opened)


def test_an_event_the_model_was_not_taught_is_refused_not_skipped() -> None:
    with pytest.raises(UnknownEvent, match=r"test model has no handler for test:Renamed\.v1"):
        Model().apply(Renamed(), 5)


def test_unhandled_names_the_catalogue_topics_without_a_handler() -> None:
    catalogue = {c.TOPIC: c for c in (Opened, Closed, Renamed)}
    assert on.unhandled(catalogue) == ["test:Renamed.v1"]


def test_a_class_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already handles"):
        on.ignores(Opened)
