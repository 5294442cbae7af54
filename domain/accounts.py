"""The account: an enterprise, the payer, and the owner of its root AccessKey."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from domain.audit import LedgerAggregate
from domain.errors import Conflict
from domain.identifiers import account_aggregate_id

__all__ = ["Account"]


class Account(LedgerAggregate):
    TOPIC = "mandate:Account.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Account.Event.v1"

    @staticmethod
    def create_id(account_id: str) -> UUID:
        return account_aggregate_id(account_id)

    @event("AccountOpened", topic="mandate:AccountOpened.v1")
    def __init__(
        self, account_id: str, name: str, root_access_key_id: str, root_secret_hash: str
    ) -> None:
        self.account_id = account_id
        self.name = name
        self.root_access_key_id = root_access_key_id
        self.root_secret_hash = root_secret_hash
        self.closed = False

    def close(self) -> None:
        if self.closed:
            raise Conflict(f"account {self.account_id} is already closed")
        self._closed()

    @event("AccountClosed", topic="mandate:AccountClosed.v1")
    def _closed(self) -> None:
        self.closed = True

    def rotate_root_access_key(self, access_key_id: str, secret_hash: str) -> None:
        self.require_open()
        self._root_key_rotated(
            access_key_id=access_key_id,
            secret_hash=secret_hash,
            previous_access_key_id=self.root_access_key_id,
        )

    @event("RootAccessKeyRotated", topic="mandate:RootAccessKeyRotated.v1")
    def _root_key_rotated(
        self, access_key_id: str, secret_hash: str, previous_access_key_id: str
    ) -> None:
        self.root_access_key_id = access_key_id
        self.root_secret_hash = secret_hash

    def require_open(self) -> None:
        if self.closed:
            raise Conflict(f"account {self.account_id} is closed", code="Account.Closed")
