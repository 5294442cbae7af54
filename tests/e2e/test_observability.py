"""``/metrics`` through prometheus-client, and one structured log line per request.

The exposition is parsed with prometheus-client's own parser, so a malformed line fails here
rather than in a scraper.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mandate.api.observability.logs import (
    JsonFormatter,
    configure_logging,
    flush_request_lines,
    log_request,
)
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_template_and_decisions_by_layer(
    api: MandateClient,
) -> None:
    account_id, root = api.open_account("Observed")
    request = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account_id}:b/x"}
    before = _samples(api.get("/metrics").text)
    for _ in range(3):
        assert api.post("/v1/authorize", json=request, headers=root).json()["allowed"] is True
    assert api.get(f"/v1/accounts/{account_id}/users/nobody", headers=root).status_code == 404
    after_response = api.get("/metrics")
    assert after_response.headers["content-type"].startswith("text/plain")
    after = _samples(after_response.text)

    count = "mandate_http_request_duration_seconds_count"
    authorize = {"route": "/v1/authorize", "method": "POST", "status": "200"}
    assert _value(after, count, **authorize) == _value(before, count, **authorize) + 3
    # the template, never the raw path (which carries ids and whatever a client typed)
    templates = {dict(labels).get("route") for (name, labels) in after if name == count}
    assert "/v1/accounts/{account_id}/users/{user_name}" in templates
    assert not any(account_id in str(t) for t in templates)

    by_layer = "mandate_decisions_by_layer_total"
    assert _value(after, by_layer, decision="Allow", layer="root") == (
        _value(before, by_layer, decision="Allow", layer="root") + 3
    )
    total = "mandate_decisions_total"
    assert _value(after, total, decision="Allow") == _value(before, total, decision="Allow") + 3
    for name in (
        "mandate_index_position",
        "mandate_log_head",
        "mandate_index_lag_events",
        "mandate_store_up",
        "mandate_decision_memo_entries",
        "mandate_decision_memo_bytes",
    ):
        assert (name, ()) in after, name
    assert _value(after, "mandate_decision_memo_entries") >= 1
    assert (
        "mandate_projection_lag_events",
        (("projection", "audit"),),
    ) in after
    if api.runtime.store.is_postgres:  # the store's pool, where there is one
        assert ("mandate_pool_connections", ()) in after
        assert ("mandate_pool_connections_in_use", ()) in after


def test_writes_are_timed_by_outcome(api: MandateClient) -> None:
    account_id, root = api.open_account("Timed")
    before = _samples(api.get("/metrics").text)
    users = f"/v1/accounts/{account_id}/users"
    assert api.post(users, json={"user_name": "ana"}, headers=root).status_code == 201
    assert api.post(users, json={"user_name": "ana"}, headers=root).status_code == 409
    after = _samples(api.get("/metrics").text)
    count = "mandate_write_duration_seconds_count"
    for outcome in ("written", "refused"):
        assert _value(after, count, outcome=outcome) == _value(before, count, outcome=outcome) + 1


def test_each_request_is_one_log_line_with_its_id_caller_route_status_and_duration(
    api: MandateClient, caplog: pytest.LogCaptureFixture
) -> None:
    account_id, root = api.open_account("Logged")
    with caplog.at_level(logging.INFO, logger="mandate.requests"):
        response = api.post(
            f"/v1/accounts/{account_id}/users",
            json={"user_name": "ana"},
            headers={**root, "X-Request-Id": "req-42"},
        )
        assert response.status_code == 201
        refused = api.get(
            f"/v1/accounts/{account_id}/users", headers={"Authorization": "Bearer not-it"}
        )
        assert refused.status_code == 401
        # the line is written once the response is sent: the client may read it first
        wanted = {"req-42", refused.headers["x-request-id"]}
        deadline = time.monotonic() + 5
        while not wanted <= {r.__dict__.get("request_id") for r in caplog.records}:
            assert time.monotonic() < deadline, "a request's log line never came"
            time.sleep(0.01)
    lines = [r for r in caplog.records if r.name == "mandate.requests"]
    created = next(r for r in lines if r.__dict__.get("request_id") == "req-42")
    fields = json.loads(JsonFormatter().format(created))
    assert fields["caller"] == f"acs:ram::{account_id}:root"
    assert fields["route"] == "/v1/accounts/{account_id}/users"
    assert fields["method"] == "POST"
    assert fields["status"] == 201
    assert fields["duration_ms"] > 0
    unauthenticated = next(
        r for r in lines if r.__dict__.get("request_id") == refused.headers["x-request-id"]
    )
    assert unauthenticated.__dict__["status"] == 401
    assert unauthenticated.__dict__.get("caller") is None
    secret = root["Authorization"].split(" ", 1)[1]
    written = "\n".join(JsonFormatter().format(r) for r in lines)
    for never in (secret, ADMIN_TOKEN, HASH_KEY, "not-it", account_id + "/users"):
        assert never not in written


def test_the_log_format_is_json_or_text(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("mandate.test-format")
    try:
        configure_logging("json")
        log.warning("plain %s", "words")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["message"] == "plain words"
        configure_logging("text")
        log.warning("plain %s", "words")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.endswith("WARNING mandate.test-format: plain words")
        configure_logging("json", requests=False)
        assert logging.getLogger("mandate.requests").disabled
    finally:
        configure_logging("json")


def test_request_lines_are_written_in_order_by_the_background_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A request hands its line over and returns; the writer writes each line once, in order,
    with the time the request ended (not the time it was written)."""
    configure_logging("json")
    capsys.readouterr()
    before = time.time()
    for n in range(50):
        log_request(f"order-{n}", None, "GET", "/healthz", 200, 0.0005)
    assert flush_request_lines()
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "order-" in x]
    assert [line["request_id"] for line in lines] == [f"order-{n}" for n in range(50)]
    assert {line["route"] for line in lines} == {"/healthz"}
    stamp = datetime.fromisoformat(lines[0]["time"]).timestamp()
    assert before - 0.002 <= stamp <= time.time()
