"""The account: an enterprise, the payer, and the owner of its root AccessKey."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict
from mandate.domain.common.identifiers import account_aggregate_id

__all__ = ["Account"]


class Account(LedgerAggregate):
    TOPIC = "mandate:Account.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Account.Event.v1"

    @staticmethod
    def create_id(account_id: str) -> UUID:
        return account_aggregate_id(account_id)

    class AccountOpened(LedgerAggregate.Created, Event):
        TOPIC = "mandate:AccountOpened.v1"
        account_id: str
        name: str
        root_access_key_id: str
        root_secret_hash: str
        root_secret_sealed: str | None = None
        """Absent (None) in accounts opened before secrets were sealed."""

    @event(AccountOpened)
    def __init__(
        self,
        account_id: str,
        name: str,
        root_access_key_id: str,
        root_secret_hash: str,
        root_secret_sealed: str | None = None,
    ) -> None:
        self.account_id = account_id
        self.name = name
        self.root_access_key_id = root_access_key_id
        self.root_secret_hash = root_secret_hash
        self.root_secret_sealed = root_secret_sealed
        self.closed = False

    def close(self) -> None:
        if self.closed:
            raise Conflict(f"account {self.account_id} is already closed")
        self._closed()

    class AccountClosed(Event):
        TOPIC = "mandate:AccountClosed.v1"

    @event(AccountClosed)
    def _closed(self) -> None:
        self.closed = True

    def rotate_root_access_key(
        self, access_key_id: str, secret_hash: str, secret_sealed: str | None = None
    ) -> None:
        self.require_open()
        self._root_key_rotated(
            access_key_id=access_key_id,
            secret_hash=secret_hash,
            previous_access_key_id=self.root_access_key_id,
            secret_sealed=secret_sealed,
        )

    class RootAccessKeyRotated(Event):
        TOPIC = "mandate:RootAccessKeyRotated.v1"
        access_key_id: str
        secret_hash: str
        previous_access_key_id: str
        secret_sealed: str | None = None
        """Absent (None) in rotations recorded before secrets were sealed."""

    @event(RootAccessKeyRotated)
    def _root_key_rotated(
        self,
        access_key_id: str,
        secret_hash: str,
        previous_access_key_id: str,
        secret_sealed: str | None = None,
    ) -> None:
        self.root_access_key_id = access_key_id
        self.root_secret_hash = secret_hash
        self.root_secret_sealed = secret_sealed

    def record_personal_data_erased(self, destroyed_key_ids: list[str]) -> None:
        """Record that the account's personal-data keys ``destroyed_key_ids`` were destroyed
        (``Keyring.erase_personal``): the event's audit says who erased and when. Recorded on
        a closed account too (erasure often follows closing); only after a destruction, so a
        repeated erasure, which destroys nothing, records nothing."""
        if not destroyed_key_ids:
            raise ValueError("an erasure is recorded only when it destroyed a key")
        self._personal_data_erased(
            account_id=self.account_id, destroyed_key_ids=list(destroyed_key_ids)
        )

    class PersonalDataErased(Event):
        """Who erased the account's personal data (the audit) and which personal-data keys
        went: key ids only — never a personal value, nor any key material."""

        TOPIC = "mandate:PersonalDataErased.v1"
        account_id: str
        destroyed_key_ids: list[str]

    @event(PersonalDataErased)
    def _personal_data_erased(self, account_id: str, destroyed_key_ids: list[str]) -> None:
        """Nothing of the aggregate changes: the erasure itself is the keys' tombstones."""

    def require_open(self) -> None:
        if self.closed:
            raise Conflict(f"account {self.account_id} is closed", code="Account.Closed")
