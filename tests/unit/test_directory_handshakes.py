"""Invitations to a resource directory (handshakes): an account joins only by accepting.

https://www.alibabacloud.com/help/en/resource-management/api-accepthandshake: a handshake is
Pending until the invited account accepts (it joins) or declines it, or the inviter cancels
it; only a pending one changes. Refusals write nothing.
"""

from __future__ import annotations

from functools import partial

import pytest

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions.resource_directory import ResourceDirectory, directory_id


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


def _members(ledger: Ledger, management: str) -> dict[str, str]:
    directory = ledger.repository.get(directory_id(management))
    assert isinstance(directory, ResourceDirectory)
    return dict(directory.members)


def test_only_the_invited_account_accepts_and_only_a_pending_handshake(ledger: Ledger) -> None:
    management = ledger.open_account("M").account_id
    member = ledger.open_account("A").account_id
    third = ledger.open_account("T").account_id
    root = ledger.enable_resource_directory(management).node_id
    first = ledger.invite_account(management, member, "join us").node_id
    second = ledger.invite_account(management, member).node_id
    pending = ledger.invite_account(management, member).node_id
    assert _members(ledger, management) == {}  # invited is not joined
    head = _head(ledger)
    for refused in (
        partial(ledger.accept_handshake, management, first),  # the inviter: not its to accept
        partial(ledger.accept_handshake, third, first),
        partial(ledger.decline_handshake, third, first),
        partial(ledger.cancel_handshake, third, first),
        partial(ledger.cancel_handshake, member, first),  # the invited account cancels nothing
        partial(ledger.accept_handshake, member, "h-0000000000000000"),
    ):
        with pytest.raises(NotFound) as raised:
            refused()
        assert raised.value.code == "EntityNotExist.Handshake"
    for target in ("not-an-account", management):
        with pytest.raises(InvalidInput):
            ledger.invite_account(management, target)
    with pytest.raises(NotFound):
        ledger.invite_account(third, member)  # no directory to invite to
    assert _head(ledger) == head

    ledger.decline_handshake(member, first)
    ledger.cancel_handshake(management, second)
    head = _head(ledger)
    for done in (first, second):
        for change in (ledger.accept_handshake, ledger.decline_handshake):
            with pytest.raises(Conflict, match="not Pending"):
                change(member, done)
        with pytest.raises(Conflict, match="not Pending"):
            ledger.cancel_handshake(management, done)
    assert _head(ledger) == head
    ledger.accept_handshake(member, pending)
    assert _members(ledger, management) == {member: root}
    with pytest.raises(Conflict, match="not Pending"):
        ledger.accept_handshake(member, pending)


def test_a_removed_member_may_join_another_directory(ledger: Ledger) -> None:
    """RemoveCloudAccount: the member leaves with its attachments and its claim; any other
    account is refused alike (404, nothing written); it may then accept another directory."""
    first = ledger.open_account("M1").account_id
    second = ledger.open_account("M2").account_id
    member = ledger.open_account("A").account_id
    ledger.enable_resource_directory(first)
    ledger.enable_resource_directory(second)
    ledger.accept_handshake(member, ledger.invite_account(first, member).node_id)
    elsewhere = ledger.invite_account(second, member).node_id
    with pytest.raises(Conflict):
        ledger.accept_handshake(member, elsewhere)
    head = _head(ledger)
    for outsider, management in ((member, second), ("1999999999999999", first), (first, first)):
        with pytest.raises(NotFound) as raised:
            ledger.remove_cloud_account(management, outsider)
        assert raised.value.code == "EntityNotExist.Account"
    assert _head(ledger) == head
    ledger.remove_cloud_account(first, member)
    assert _members(ledger, first) == {}
    directory = ledger.repository.get(directory_id(first))
    assert isinstance(directory, ResourceDirectory)
    assert member not in directory.attached
    ledger.accept_handshake(member, elsewhere)
    assert list(_members(ledger, second)) == [member]
