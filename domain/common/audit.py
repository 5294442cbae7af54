"""The audit context every event carries, and the base classes that put it there.

Who acted, with which credential, in which request, from where and why: set once per
request in a ``ContextVar`` by the API layer (or the CLI), and copied into every event
triggered while it is set — the pattern of eventsourcing's ``contentmanagement`` example,
instead of threading ``actor`` through every command signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

from eventsourcing.domain import Aggregate

__all__ = [
    "SYSTEM_ACTOR",
    "AuditContext",
    "LedgerAggregate",
    "acting_as",
    "current_audit_context",
]


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The facts about a request that every event it causes must record."""

    actor: str
    credential: str | None = None
    request_id: str | None = None
    source_ip: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SYSTEM_ACTOR = AuditContext(actor="mandate:system")

_audit_context: ContextVar[AuditContext] = ContextVar("mandate_audit_context", default=SYSTEM_ACTOR)


def current_audit_context() -> AuditContext:
    return _audit_context.get()


@contextmanager
def acting_as(context: AuditContext) -> Iterator[AuditContext]:
    """Every event triggered inside the block records ``context``."""
    token = _audit_context.set(context)
    try:
        yield context
    finally:
        _audit_context.reset(token)


def _audit_from_context() -> dict[str, Any]:
    return _audit_context.get().as_dict()


class LedgerAggregate(Aggregate):
    """Base of Mandate's aggregates: explicit topics and the audit context on every event.

    Ids are random (``Aggregate.create_id``'s uuid4) unless an aggregate derives its own.
    """

    TOPIC = "mandate:LedgerAggregate"

    class Event(Aggregate.Event):
        TOPIC = "mandate:LedgerAggregate.Event"
        audit: dict[str, Any] = field(default_factory=_audit_from_context, init=False)
