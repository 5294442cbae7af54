"""``PersonalDataErased``: the ledger's record of who erased an account's personal data.

The erasure itself is the keyring's (its keys' tombstones); the event, written after it,
carries the account, the destroyed key ids and — as every event — its audit context, so the
trail names who erased and when. Never a personal value or key material.
"""

from __future__ import annotations

import pytest

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import NotFound
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger

OPERATOR = AuditContext(actor="mandate:admin", credential="cli", request_id="cli-1")


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def test_the_erasure_is_recorded_with_who_erased_even_on_a_closed_account(ledger: Ledger) -> None:
    account = ledger.open_account("Acme").account_id
    ledger.close_account(account)
    with acting_as(OPERATOR):
        written = ledger.record_personal_data_erasure(account, [f"p1-{account}"])
    (notification,) = ledger.recorder.select_notifications(written.position, 1)
    event = ledger.mapper.to_domain_event(notification)
    assert isinstance(event, Account.PersonalDataErased)
    assert (event.account_id, event.destroyed_key_ids) == (account, [f"p1-{account}"])
    assert event.audit == OPERATOR.as_dict()


def test_nothing_destroyed_or_no_such_account_records_nothing(ledger: Ledger) -> None:
    account = ledger.open_account("Acme").account_id
    head = _head(ledger)
    with pytest.raises(ValueError, match="destroyed"):
        ledger.record_personal_data_erasure(account, [])
    with pytest.raises(NotFound) as missing:
        ledger.record_personal_data_erasure("1234567890123456", ["p1-1234567890123456"])
    assert missing.value.code == "EntityNotExist.Account"
    assert _head(ledger) == head
