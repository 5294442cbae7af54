"""Name claims: one aggregate per (account, kind, name), pointing at the live entity.

The claim's id is a ``uuid5`` of the name, so two concurrent creates of one name collide
on the claim's first event and one of them fails with a version conflict; the entity's id
is random, so a name released by a delete and claimed again names a different entity.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict
from mandate.domain.common.identifiers import name_claim_id

__all__ = ["NameClaim"]


class NameClaim(LedgerAggregate):
    TOPIC = "mandate:NameClaim.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:NameClaim.Event.v1"

    @staticmethod
    def create_id(account_id: str, kind: str, name: str) -> UUID:
        return name_claim_id(account_id, kind, name)

    class NameClaimed(LedgerAggregate.Created, Event):
        TOPIC = "mandate:NameClaimed.v1"
        account_id: str
        kind: str
        name: str
        entity_id: UUID

    @event(NameClaimed)
    def __init__(self, account_id: str, kind: str, name: str, entity_id: UUID) -> None:
        self.account_id = account_id
        self.kind = kind
        self.name = name
        self.entity_id: UUID | None = entity_id

    def claim_again(self, entity_id: UUID) -> None:
        if self.entity_id is not None:
            raise Conflict(
                f"{self.kind} {self.name!r} already exists",
                code=f"EntityAlreadyExists.{self.kind.capitalize()}",
            )
        self._reclaimed(entity_id=entity_id)

    class NameReclaimed(Event):
        TOPIC = "mandate:NameReclaimed.v1"
        entity_id: UUID

    @event(NameReclaimed)
    def _reclaimed(self, entity_id: UUID) -> None:
        self.entity_id = entity_id

    def release(self) -> None:
        if self.entity_id is not None:
            self._released(entity_id=self.entity_id)

    class NameReleased(Event):
        TOPIC = "mandate:NameReleased.v1"
        entity_id: UUID

    @event(NameReleased)
    def _released(self, entity_id: UUID) -> None:
        self.entity_id = None
