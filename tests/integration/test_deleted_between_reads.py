"""A command never records on an entity deleted between its reads (found by issue 14's load).

``LedgerCore._live`` reads a name's claim, then the entity it names. Another process's delete
committed between those two reads used to go unnoticed by a command that saves only the
entity (attach/detach, group membership, access keys): the entity, read at its latest version,
was extended with no conflict, so ``User.PolicyAttached`` landed after ``UserDeleted`` and the
audit projection stalled on it for good. Here the delete is made to happen exactly there, by a
second runtime on the same store (another process), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import NotFound
from mandate.domain.identity.principals import User
from mandate.domain.ledger.application import Ledger

ADMIN = AuditContext(actor="mandate:admin")


@pytest.fixture
def two(store_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    settings = Settings(
        database_url=store_url, hash_key="k" * 40, admin_token="t" * 40, state_dir=tmp_path
    )
    first = Runtime(settings, create_tables=True)
    second = Runtime(settings, create_tables=False)
    try:
        yield first, second
    finally:
        second.stop()
        first.stop()


COMMANDS: dict[str, Callable[[Ledger, str], Any]] = {
    "attach": lambda ledger, a: ledger.attach_policy(
        a, "user", "victim", "System", "ReadOnlyAccess"
    ),
    "add to group": lambda ledger, a: ledger.add_user_to_group(a, "ops", "victim"),
    "access key": lambda ledger, a: ledger.create_access_key(a, "victim"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_delete_between_the_claim_and_the_entity_read_is_refused_404(
    two: tuple[Runtime, Runtime], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    with acting_as(ADMIN):
        account = first.ledger.open_account("Acme").account_id
        first.ledger.create_group(account, "ops")
        first.ledger.create_user(account, "victim", None)
    read = type(first.ledger)._get
    deleted: list[int] = []

    def delete_in_between(self: Ledger, aggregate_id: UUID, kind: type[Any]) -> Any:
        if self is first.ledger and kind is User and not deleted:  # after the claim's read
            deleted.append(second.ledger.delete_user(account, "victim").position)
        return read(self, aggregate_id, kind)

    monkeypatch.setattr(type(first.ledger), "_get", delete_in_between)
    with acting_as(ADMIN), pytest.raises(NotFound) as refused:
        COMMANDS[command](first.ledger, account)
    assert refused.value.code == "EntityNotExist.User"
    assert deleted
    assert first.head() == deleted[0]  # nothing recorded after the delete
    topics = [n.topic for n in first.ledger.recorder.select_notifications(1, 100)]
    assert topics[-2:] == ["mandate:UserDeleted.v1", "mandate:NameReleased.v1"]
