"""The store's bounded waits and the committed write whose answer was lost (PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from api.settings import store_config
from domain.ledger import Ledger
from domain.secrets import SecretHasher
from projections.store_outages import _unretried, _verified_insert
from tests.conftest import _free_port

pytestmark = pytest.mark.postgres

HASHER = SecretHasher("k1", {"k1": b"h" * 32})


def test_an_unreachable_store_answers_within_two_seconds() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(OperationalError):  # no ten-fold retry of five-second waits
        Ledger(store_config(url).env, hasher=HASHER).recorder.max_notification_id()
    assert time.monotonic() - started < 2.0


def test_a_write_that_committed_before_its_connection_broke_is_answered_as_written(
    postgres_url: str,
) -> None:
    ledger = Ledger(store_config(postgres_url, create_table=True).env, hasher=HASHER)
    try:
        recorder: Any = ledger.recorder
        insert = _unretried(type(recorder).insert_events)
        attempts: list[int] = []

        def commits_then_breaks(rec: Any, events: Sequence[StoredEvent], **kw: Any) -> Any:
            attempts.append(len(events))
            insert(rec, events, **kw)  # the commit happens...
            raise OperationalError("server closed the connection unexpectedly")  # ...unheard

        recorder.insert_events = _verified_insert(recorder, commits_then_breaks)
        opened = ledger.open_account("Acme")  # answered, not re-run into a conflict
        assert attempts == [1]
        assert opened.root_key.position == ledger.recorder.max_notification_id()
        assert len(ledger.recorder.select_notifications(0, 10)) == 1  # written once
    finally:
        ledger.close()
