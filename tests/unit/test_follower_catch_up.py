"""A writer waiting for its position reads the log only when no one has applied it yet."""

from __future__ import annotations

from typing import Any

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.ledger.application import Ledger
from mandate.projections.store.follower import LogFollower


class Counting:
    position = 0

    def __init__(self) -> None:
        self.applied: list[int] = []

    def apply(self, event: Any, position: int) -> None:
        self.applied.append(position)
        self.position = position


def test_a_position_already_applied_reads_nothing_and_a_new_one_reads_once() -> None:
    ledger = Ledger(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        hasher=SecretHasher("k", {"k": b"k" * 32}),
    )
    projection = Counting()
    follower = LogFollower(ledger, projection)
    reads = 0
    select = ledger.recorder.select_notifications

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return select(*args, **kwargs)

    ledger.recorder.select_notifications = counted  # type: ignore[method-assign]
    with acting_as(AuditContext(actor="test")):
        account = ledger.open_account("A").account_id
        first = ledger.create_user(account, "alice", None).position
        assert follower.catch_up(until=first) == first
        assert reads == 1
        assert follower.catch_up(until=first) == first  # applied: no read at all
        assert reads == 1
        second = ledger.create_user(account, "bob", None).position
        assert follower.wait_for(second, 1.0)
        assert reads == 2
    assert projection.applied == sorted(projection.applied)
