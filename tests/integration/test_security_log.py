"""The security log's table and writer on SQLite and PostgreSQL (projections/store/security_log)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from mandate.api.observability.security_events import DROPPED, SecurityRecorder
from mandate.projections.store.security_log import SecurityEvent, SecurityLog
from tests.integration.runtimes import running


def _refusal(recorder: SecurityRecorder, account_id: str | None, n: int) -> None:
    recorder.record(
        kind="authentication_failed",
        account_id=account_id,
        caller=None,
        access_key_id=f"LTAI{n}",
        action="GET /v1/accounts/{account_id}/users",
        resource=None,
        reason="the AccessKey secret does not match",
        code=None,
        source_ip="192.0.2.1",
        request_id=f"r{n}",
    )


def test_rows_are_written_in_batches_paged_by_account_and_purged(store_url: str) -> None:
    with running(store_url) as runtime:
        recorder = runtime.security_events
        log = recorder.log
        for n in range(1203):
            _refusal(recorder, "1" * 16 if n % 3 else "2" * 16, n)
        assert recorder.flush()
        first = log.page("1" * 16, limit=5)
        assert [r["request_id"] for r in first] == ["r1", "r2", "r4", "r5", "r7"]
        assert log.page("1" * 16, after_id=first[-1]["id"], limit=1)[0]["request_id"] == "r8"
        assert len(list(log.iterate("1" * 16))) == 802  # past the export's page of 500
        assert len(list(log.iterate("2" * 16))) == 401
        assert log.page("3" * 16) == []
        assert log.purge(datetime.now(UTC) - timedelta(days=1)) == 0
        assert runtime.security_events.purge_expired(datetime.now(UTC) + timedelta(days=91)) == 1203
        assert list(log.iterate("1" * 16)) == []


class _GatedLog(SecurityLog):
    """The real table, whose writer is held inside its first batch until the test lets go."""

    def __init__(self, log: SecurityLog) -> None:
        super().__init__(log.datastore)
        self.entered = threading.Event()
        self.go = threading.Event()

    def append(self, events: Sequence[SecurityEvent]) -> None:
        self.entered.set()
        assert self.go.wait(30)
        super().append(events)


def test_a_full_queue_drops_and_counts_instead_of_blocking(store_url: str) -> None:
    with running(store_url) as runtime:
        log = _GatedLog(runtime.security_events.log)
        recorder = SecurityRecorder(log, queue_size=1)
        before = DROPPED.labels("queue_full")._value.get()
        _refusal(recorder, "4" * 16, 1)
        assert log.entered.wait(30)  # the writer holds row 1, inside its write
        _refusal(recorder, "4" * 16, 2)  # waits in the queue (one slot)
        _refusal(recorder, "4" * 16, 3)  # the queue is full: dropped, the caller not held
        assert DROPPED.labels("queue_full")._value.get() == before + 1
        log.go.set()
        assert recorder.flush()
        assert [r["request_id"] for r in log.page("4" * 16)] == ["r1", "r2"]
        recorder.stop()
