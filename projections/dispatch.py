"""Typed event dispatch: a read model's handlers, registered by event class, none skipped silently.

Each read model keeps one ``EventHandlers`` registry. A handler is registered with the event
class it takes (``@on(User.UserCreated)``), so mypy checks that its parameter accepts that
class; an event class the read model has nothing to do with is declared with ``ignores``.
``handler_for`` refuses an event of any other class (``UnknownEvent``): a new event that a read
model has not been taught about stops that read model at that event instead of being passed
over, and ``unhandled`` lets a test check every registry against the domain's catalogue of
events, so adding an event means writing its class and its handlers, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

__all__ = ["EventHandlers", "UnknownEvent"]

M = TypeVar("M")
E = TypeVar("E")
P = ParamSpec("P")
R = TypeVar("R")


class UnknownEvent(LookupError):
    """An event of a class the read model neither handles nor ignores."""

    def __init__(self, read_model: str, event_class: type) -> None:
        topic = getattr(event_class, "TOPIC", event_class.__qualname__)
        super().__init__(f"the {read_model} has no handler for {topic}")
        self.read_model = read_model
        self.topic = topic


def _ignore(*_: Any) -> None:
    return None


class EventHandlers(Generic[M]):
    """The handlers of one read model ``M``, by event class.

    Handlers are the model's methods or plain functions taking the model first, then the event,
    then whatever else this read model passes (position, ledger time, ...).
    """

    def __init__(self, read_model: str) -> None:
        self.read_model = read_model
        self._handlers: dict[type, Callable[..., Any]] = {}

    def on(
        self, event_class: type[E], *more: type[E]
    ) -> Callable[[Callable[Concatenate[M, E, P], R]], Callable[Concatenate[M, E, P], R]]:
        """Register the decorated function for ``event_class`` (and ``more`` of the same type)."""

        def register(
            handler: Callable[Concatenate[M, E, P], R],
        ) -> Callable[Concatenate[M, E, P], R]:
            for cls in (event_class, *more):
                self._add(cls, handler)
            return handler

        return register

    def ignores(self, *event_classes: type) -> None:
        """Declare event classes this read model knows and has nothing to do with."""
        for cls in event_classes:
            self._add(cls, _ignore)

    def _add(self, cls: type, handler: Callable[..., Any]) -> None:
        if cls in self._handlers:
            raise ValueError(f"the {self.read_model} already handles {cls.__qualname__}")
        self._handlers[cls] = handler

    def handler_for(self, event_class: type) -> Callable[..., Any]:
        """The handler of ``event_class``; ``UnknownEvent`` when it has none."""
        try:
            return self._handlers[event_class]
        except KeyError:
            raise UnknownEvent(self.read_model, event_class) from None

    def lookup(self) -> Callable[[type], Callable[..., Any] | None]:
        """The handlers' ``dict.get``: for a hot loop, one lookup by class and no call frame
        (``None`` for a class neither handled nor ignored: raise ``UnknownEvent`` then)."""
        return self._handlers.get

    def ignored(self, event_class: type) -> bool:
        return self._handlers.get(event_class) is _ignore

    def known(self) -> Iterable[type]:
        return self._handlers.keys()

    def unhandled(self, catalogue: Mapping[str, type]) -> list[str]:
        """The topics of ``catalogue`` this read model neither handles nor ignores."""
        return sorted(topic for topic, cls in catalogue.items() if cls not in self._handlers)
