"""Invitations to a resource directory (handshakes): an account joins only by accepting.

https://www.alibabacloud.com/help/en/resource-management/api-accepthandshake: a handshake is
Pending until the invited account accepts (it joins) or declines it, or the inviter cancels
it; only a pending one changes. Refusals write nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar

import pytest

from mandate.domain.common.errors import Conflict, InvalidInput, NotFound
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.domain.permissions import handshakes
from mandate.domain.permissions.handshakes import (
    Handshake,
    current_status,
    handshake_id,
    status_at,
)
from mandate.domain.permissions.resource_directory import ResourceDirectory, directory_id

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, hasher=SecretHasher("k", {"k": b"k" * 32})
    )


def _head(ledger: Ledger) -> int:
    return ledger.recorder.max_notification_id() or 0


class _Clock(datetime):
    """``datetime`` whose ``now`` is an instant the test sets: the handshakes' clock."""

    at: ClassVar[datetime]

    @classmethod
    def now(cls, tz: Any = None) -> _Clock:
        return cls.fromtimestamp(cls.at.timestamp(), cls.at.tzinfo)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[_Clock]:
    """``handshake_clock()`` (the ledger's answers, the API's statuses) at ``_Clock.at``;
    events keep their real timestamps."""
    monkeypatch.setattr(handshakes, "datetime", _Clock)
    return _Clock


def _invited_at(ledger: Ledger, handshake: str) -> datetime:
    found = ledger.repository.get(handshake_id(handshake))
    assert isinstance(found, Handshake)
    return found.created_on


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
    second = ledger.invite_account(management, member).node_id  # one pending at a time
    ledger.cancel_handshake(management, second)
    pending = ledger.invite_account(management, member).node_id
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


def test_one_pending_invitation_per_account_and_directory(
    ledger: Ledger, clock: type[_Clock]
) -> None:
    """A second invitation while the first may still be answered is refused before anything is
    written (409 ``Duplicate.Handshake``); once it is answered or expired, a new one is taken.
    Another directory's invitation to the same account is no duplicate."""
    management = ledger.open_account("M").account_id
    other = ledger.open_account("O").account_id
    member = ledger.open_account("A").account_id
    ledger.enable_resource_directory(management)
    ledger.enable_resource_directory(other)
    first = ledger.invite_account(management, member).node_id
    invited = _invited_at(ledger, first)
    clock.at = invited + 14 * DAY - TICK  # the last instant it may be answered
    head = _head(ledger)
    with pytest.raises(Conflict) as raised:
        ledger.invite_account(management, member, "again")
    assert (raised.value.code, _head(ledger)) == ("Duplicate.Handshake", head)
    elsewhere = ledger.invite_account(other, member).node_id  # per directory
    ledger.decline_handshake(member, elsewhere)

    clock.at = invited + 14 * DAY  # lapsed: a new invitation takes the claim over
    second = ledger.invite_account(management, member).node_id
    with pytest.raises(Conflict) as raised:
        ledger.invite_account(management, member)
    assert raised.value.code == "Duplicate.Handshake"
    ledger.cancel_handshake(management, second)  # answered: the claim is released
    third = ledger.invite_account(management, member).node_id
    ledger.accept_handshake(member, third)
    assert list(_members(ledger, management)) == [member]


def test_an_expired_handshake_is_answered_by_no_one(ledger: Ledger, clock: type[_Clock]) -> None:
    """14 days after it was made, a pending handshake is ``Expired``: accepting, declining and
    cancelling it are refused (409 ``InvalidStatus.Handshake``), nothing written, no member."""
    management = ledger.open_account("M").account_id
    member = ledger.open_account("A").account_id
    ledger.enable_resource_directory(management)
    h = ledger.invite_account(management, member).node_id
    clock.at = _invited_at(ledger, h) + 14 * DAY
    head = _head(ledger)
    for answer in (
        partial(ledger.accept_handshake, member, h),
        partial(ledger.decline_handshake, member, h),
        partial(ledger.cancel_handshake, management, h),
    ):
        with pytest.raises(Conflict, match="is Expired, not Pending") as raised:
            answer()
        assert raised.value.code == "InvalidStatus.Handshake"
    assert (_head(ledger), _members(ledger, management)) == (head, {})


def test_the_status_at_an_instant_is_the_one_it_had_then() -> None:
    """``current_status`` (commands and live reads): an answer is final, whatever the clock;
    unanswered, ``Expired`` from 14 days on, ``Pending`` before. ``status_at`` (as of T) is
    the same rule read at T, an answer counting from its instant."""
    made = datetime(2026, 1, 1, 12)
    lapse = made + 14 * DAY
    assert current_status("Pending", made, lapse - TICK) == "Pending"
    assert current_status("Pending", made, lapse) == "Expired"
    assert current_status("Declined", made, made) == "Declined"  # a lagging clock: still final
    assert status_at("Pending", made, made, made) == "Pending"
    assert status_at("Pending", made, made, lapse - TICK) == "Pending"
    assert status_at("Pending", made, made, lapse) == "Expired"
    answered = made + 3 * DAY
    for status in ("Accepted", "Declined", "Cancelled"):
        assert status_at(status, made, answered, answered - TICK) == "Pending"  # not yet
        assert status_at(status, made, answered, answered) == status
        assert status_at(status, made, answered, lapse + 100 * DAY) == status  # never lapses
