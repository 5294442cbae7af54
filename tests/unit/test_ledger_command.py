"""``@command``: a ledger method re-run on an optimistic-concurrency conflict, then Conflict;
one ``Ledger`` composed of the per-context command classes, still the application 'mandate';
each command answers a frozen result that names its position."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
from eventsourcing.persistence import IntegrityError

from mandate.domain.common.errors import Conflict, FieldError, InvalidInput
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import APPLICATION_NAME, Ledger
from mandate.domain.ledger.commands import COMMAND_ATTEMPTS, command
from mandate.domain.ledger.core import LedgerCore
from mandate.domain.ledger.results import Created, Written


class Flaky:
    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.calls = 0

    @command
    def save(self, value: int, *, plus: int = 0) -> Written:
        self.calls += 1
        if self.calls <= self.conflicts:
            raise IntegrityError("someone extended the aggregate first")
        return Written(value + plus)


def test_a_conflict_decides_again_and_answers_the_rerun() -> None:
    flaky = Flaky(conflicts=COMMAND_ATTEMPTS - 1)
    assert flaky.save(1, plus=2) == Written(3)
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
    created = ledger.create_user(opened.account_id, "alice", None)
    with pytest.raises(InvalidInput):
        ledger.create_user(opened.account_id, "", None)  # refused: nothing written
    assert ledger.recorder.max_notification_id() == created.position
    assert ledger.create_user.__name__ == "create_user"  # wrapped, name kept


def test_every_command_answers_a_frozen_result_that_names_its_position() -> None:
    """No bare int or tuple: each public command's declared answer is a frozen, slotted
    dataclass with a ``position`` (``None`` only for ``end_entrustment``'s nothing to record)."""
    commands = {
        name: method
        for name, method in inspect.getmembers(Ledger, inspect.isfunction)
        if not name.startswith("_") and not hasattr(LedgerCore, name)
    }
    assert {"create_user", "grant_entrustment", "assume_role", "end_entrustment"} <= set(commands)
    for name, method in commands.items():
        answer = typing.get_type_hints(method)["return"]
        results = [t for t in typing.get_args(answer) or (answer,) if t is not type(None)]
        assert len(results) == 1, name
        (result,) = results
        assert dataclasses.is_dataclass(result), name
        assert result.__dataclass_params__.frozen, name  # type: ignore[union-attr]
        assert hasattr(result, "__slots__"), name
        assert "position" in {f.name for f in dataclasses.fields(result)} or isinstance(
            getattr(result, "position", None), property
        ), name
    ledger = Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )
    opened = ledger.open_account("acme")
    created = ledger.create_user(opened.account_id, "alice", None)
    assert isinstance(created, Created)
    assert created.position == opened.position + 2  # its name claim, then UserCreated
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.position = 0  # type: ignore[misc]
