"""``@command``: a ledger method re-run on an optimistic-concurrency conflict, then Conflict;
one ``Ledger`` composed of the per-context command classes, still the application 'mandate'."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from mandate.domain.common.errors import Conflict, FieldError, InvalidInput
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import APPLICATION_NAME, Ledger
from mandate.domain.ledger.commands import COMMAND_ATTEMPTS, command


class Flaky:
    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.calls = 0

    @command
    def save(self, value: int, *, plus: int = 0) -> int:
        self.calls += 1
        if self.calls <= self.conflicts:
            raise IntegrityError("someone extended the aggregate first")
        return value + plus


def test_a_conflict_decides_again_and_answers_the_rerun() -> None:
    flaky = Flaky(conflicts=COMMAND_ATTEMPTS - 1)
    assert flaky.save(1, plus=2) == 3
    assert flaky.calls == COMMAND_ATTEMPTS


def test_conflicts_on_every_attempt_answer_concurrent_modification() -> None:
    flaky = Flaky(conflicts=COMMAND_ATTEMPTS)
    with pytest.raises(Conflict) as raised:
        flaky.save(1)
    assert raised.value.code == "ConcurrentModification"
    assert raised.value.__cause__ is None  # no store detail behind the answer
    assert flaky.calls == COMMAND_ATTEMPTS


def test_other_errors_are_not_retried() -> None:
    class Refusing:
        calls = 0

        @command
        def save(self) -> None:
            self.calls += 1
            raise InvalidInput(FieldError("value", "refused"))

    refusing = Refusing()
    with pytest.raises(InvalidInput):
        refusing.save()
    assert refusing.calls == 1


def test_one_ledger_of_every_context_under_one_name() -> None:
    ledger = Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )
    assert Ledger.name == APPLICATION_NAME == "mandate"
    opened = ledger.open_account("acme")
    position = ledger.create_user(opened.account_id, "alice", None)
    with pytest.raises(InvalidInput):
        ledger.create_user(opened.account_id, "", None)  # refused: nothing written
    assert ledger.recorder.max_notification_id() == position
    assert ledger.create_user.__name__ == "create_user"  # wrapped, name kept
