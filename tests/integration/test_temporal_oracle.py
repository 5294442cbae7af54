"""As-of decisions equal a brute-force replay of the log up to T, at every instant.

The oracle is deliberately naive: for an instant T it builds a brand-new ``DecisionIndex``
from the events whose ledger time is at most T and decides there. The temporal index must
give the same decision and the same explanation (matched statements with their policy,
version and group, chain, billed account) for every principal and request, at every
ledger time of the history and one microsecond before each — that is, between every pair
of events. Ledger time is recomputed here from the raw log as docs/design.md §4 defines it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import root_arn, user_arn
from mandate.domain.common.audit import acting_as
from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.policy.decisions import Answer
from mandate.domain.policy.evaluation import AccessRequest
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.history.as_of_facts import AT_POSTGRES, AT_SQLITE
from tests.conftest import fresh_schema_url
from tests.integration.runtimes import running, started_runtime
from tests.integration.test_index_cache_coherence import (
    ACTOR,
    USERS,
    _apply,
    _requests,
    _set_up,
    _steps,
)

WAIT = 10.0


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


def _log(runtime: Runtime) -> list[tuple[int, datetime, Any]]:
    """Every event with its position and ledger time (max of its timestamp and the previous)."""
    recorder, mapper = runtime.ledger.recorder, runtime.ledger.mapper
    out: list[tuple[int, datetime, Any]] = []
    ledger_time: datetime | None = None
    for notification in recorder.select_notifications(0, 1_000_000, inclusive_of_start=False):
        event: Any = mapper.to_domain_event(notification)
        ledger_time = ledger_time_after(ledger_time, event.timestamp)
        out.append((int(notification.id), ledger_time, event))
    return out


def _oracle(runtime: Runtime, log: list[tuple[int, datetime, Any]], at: datetime) -> DecisionIndex:
    index = DecisionIndex(runtime.hasher)
    for position, ledger_time, event in log:
        if ledger_time > at:
            break
        index.apply(event, position)
    return index


def _summary(answer: Answer) -> tuple[object, ...]:
    return (
        answer.decision.kind,
        tuple(m.as_dict().items() for m in answer.decision.matched),
        answer.chain,
        answer.billed_account,
        answer.reason,
    )


def _instants(log: list[tuple[int, datetime, Any]]) -> list[datetime]:
    times = sorted({ledger_time for _, ledger_time, _ in log})
    return sorted({t for moment in times for t in (moment - timedelta(microseconds=1), moment)})


def _principals(account: str) -> list[str]:
    names = [*USERS, *(f"{u}-renamed" for u in USERS)]
    return [root_arn(account), *(user_arn(account, name) for name in names)]


def _assert_as_of_equals_oracle(runtime: Runtime, account: str) -> int:
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    log = _log(runtime)
    requests = _requests(account)
    compared = 0
    for at in _instants(log):
        oracle = _oracle(runtime, log, at)
        for arn in _principals(account):
            expected = oracle.principal_for_arn(arn)
            found, _reason = runtime.as_of.principal_for_arn(arn, at)
            assert (found is None) == (expected is None), f"{arn} at {at.isoformat()}"
            if found is None or expected is None:
                continue
            for request in requests:
                where = f"{arn} {request.action} {request.resource} at {at.isoformat()}"
                want = _summary(oracle.decide(expected[1], request, memo_key=expected[0]))
                got = _summary(runtime.as_of.decide(found, request))
                assert got == want, where
                compared += 1
    return compared


def test_a_scripted_history_answers_as_the_oracle_at_every_instant(runtime: Runtime) -> None:
    """Attach, detach, re-attach, default version switched, user renamed and deleted."""
    account, documents = _set_up(runtime)
    ledger = runtime.ledger
    with acting_as(ACTOR):
        ledger.attach_policy(account, "user", "u0", "Custom", "p1")
        ledger.detach_policy(account, "group", "g0", "Custom", "p0")
        ledger.attach_policy(account, "group", "g0", "Custom", "p0")
        ledger.set_default_policy_version(account, "p1", "v2")
        ledger.create_policy_version(account, "p0", documents[3], set_as_default=True)
        ledger.update_user(account, "u1", new_user_name="u1-renamed", new_display_name=None)
        ledger.remove_user_from_group(account, "g0", "u0")
        ledger.add_user_to_group(account, "g1", "u0")
        ledger.delete_group(account, "g1", detach=True)
        ledger.delete_user(account, "u2", detach=True)
        ledger.create_user(account, "u2", None)
        ledger.attach_policy(account, "user", "u2", "System", "AdministratorAccess")
        ledger.delete_policy(account, "p1", detach=True)
        ledger.close_account(account)
    assert _assert_as_of_equals_oracle(runtime, account) > 500


def _generated_history_matches_the_oracle(data: st.DataObject, length: int, url: str) -> None:
    runtime = started_runtime(url)
    try:
        account, documents = _set_up(runtime)
        for number in range(length):
            step = data.draw(_steps(runtime.index, account), label=f"step {number}")
            _apply(runtime, account, documents, step, lambda: None)
        assert _assert_as_of_equals_oracle(runtime, account) > 100
    finally:
        runtime.stop()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=4, max_value=14))
def test_generated_histories_answer_as_the_oracle_on_sqlite(
    data: st.DataObject, length: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="mandate-oracle-") as directory:
        _generated_history_matches_the_oracle(
            data, length, f"sqlite:///{Path(directory) / 'mandate.db'}"
        )


@pytest.mark.postgres
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(min_value=4, max_value=14))
def test_generated_histories_answer_as_the_oracle_on_postgres(
    postgres_dsn: str, data: st.DataObject, length: int
) -> None:
    with fresh_schema_url(postgres_dsn) as url:
        _generated_history_matches_the_oracle(data, length, url)


def test_as_of_reads_take_one_index_step_per_subject(runtime: Runtime) -> None:
    """The reader's lookups seek the (kind, subject, valid_from) index: no scan of history."""
    account, _ = _set_up(runtime)
    with acting_as(ACTOR):
        for _ in range(30):
            runtime.ledger.detach_policy(account, "user", "u2", "Custom", "p1")
            runtime.ledger.attach_policy(account, "user", "u2", "Custom", "p1")
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    store = runtime.temporal.store
    template = AT_POSTGRES if store.dialect.is_postgres else AT_SQLITE
    statement = template.replace("{values}", "(?), (?)")
    params = ("a", "b", "attachments", 1, 1)
    with store.transaction(commit=False) as cursor:
        if store.dialect.is_postgres:
            cursor.execute("SET LOCAL enable_seqscan = off")
            rows = store.execute(cursor, "EXPLAIN " + statement, params).fetchall()
            plan = "\n".join(str(next(iter(dict(row).values()))) for row in rows)
        else:
            rows = store.execute(cursor, "EXPLAIN QUERY PLAN " + statement, params).fetchall()
            plan = "\n".join(str(dict(row)["detail"]) for row in rows)
    if store.dialect.is_postgres:
        assert "Index" in plan, plan
        assert "Seq Scan on" not in plan.replace('Seq Scan on "*VALUES*"', ""), plan
    else:
        facts = [line for line in plan.splitlines() if "_facts" in line]
        assert facts, plan
        assert all(line.startswith("SEARCH") for line in facts), plan
    found, _ = runtime.as_of.principal_for_arn(user_arn(account, "u2"), _log(runtime)[-1][1])
    assert found is not None


def test_the_as_of_request_sees_acs_current_time(runtime: Runtime) -> None:
    account, _ = _set_up(runtime)
    assert runtime.temporal.wait_for(runtime.head(), WAIT)
    at = _log(runtime)[-1][1]
    found, _ = runtime.as_of.principal_for_arn(user_arn(account, "u2"), at)
    assert found is not None
    request = AccessRequest.make(
        "oss:GetObject", f"acs:oss:*:{account}:bucket/x", {"acs:currenttime": at}
    )
    assert runtime.as_of.decide(found, request).decision.kind.value == "Allow"
