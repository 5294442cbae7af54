"""Bounded work per request, over real HTTP: wildcards that used to hang, and oversized bodies.

A ``/v1/simulate`` whose patterns made the old backtracking regex run for ever answers, and
``/healthz`` answers beside it; a body over ``MANDATE_MAX_BODY_BYTES`` is answered 413
``application/problem+json`` whether it declares its length or streams in chunks, and
writes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from mandate.api.middleware.body_limit import DEFAULT_MAX_BODY_BYTES
from tests.e2e.conftest import MandateClient

STARS = 20
RESOURCE = "acs:" + "a" * 996  # 1,000 characters


def _simulate_body() -> dict[str, Any]:
    """A Deny that almost matches (no trailing ``b``) and an Allow that does, 20 stars each."""
    return {
        "policies": [
            {
                "Version": "1",
                "Statement": [
                    {"Effect": "Deny", "Action": "oss:*", "Resource": "acs:" + "*a" * STARS + "b"},
                    {"Effect": "Allow", "Action": "oss:*", "Resource": "acs:" + "*a" * STARS + "*"},
                ],
            }
        ],
        "action": "oss:GetObject",
        "resource": RESOURCE,
    }


def test_twenty_stars_against_a_thousand_characters_answer_and_healthz_answers_meanwhile(
    api: MandateClient,
) -> None:
    answers: list[httpx.Response] = []

    def simulate() -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=60.0) as client:
            answers.append(client.post("/v1/simulate", json=_simulate_body(), headers=api.admin))

    worker = threading.Thread(target=simulate)
    worker.start()
    health = api.get("/healthz")
    worker.join(timeout=60.0)
    assert health.status_code == 200
    assert not worker.is_alive()
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decision"] == "Allow"
    assert [m["statement"] for m in body["matched"]] == [1]


def _big_account_body(size: int) -> bytes:
    """A valid ``POST /v1/accounts`` body of ``size`` bytes (padded with spaces)."""
    raw = json.dumps({"name": "Huge"}).encode()
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


def _chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 413
    assert problem["errors"][0]["field"] == "body"
    assert str(DEFAULT_MAX_BODY_BYTES) in problem["errors"][0]["reason"]


def test_a_body_over_the_limit_is_413_with_content_length_and_writes_nothing(
    api: MandateClient,
) -> None:
    head = api.log_head()
    body = _big_account_body(DEFAULT_MAX_BODY_BYTES + 1)
    response = api.post(
        "/v1/accounts",
        content=body,
        headers={**api.admin, "content-type": "application/json"},
    )
    _assert_too_large(response)
    assert api.log_head() == head


def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(api: MandateClient) -> None:
    """No Content-Length: counted as it streams, on a FastAPI route and on authorize."""
    head = api.log_head()
    body = _big_account_body(DEFAULT_MAX_BODY_BYTES + 4096)
    with httpx.Client(base_url=str(api.base_url), timeout=30.0) as client:
        created = client.post(
            "/v1/accounts",
            content=_chunks(body),
            headers={**api.admin, "content-type": "application/json"},
        )
        assert "content-length" not in created.request.headers
        _assert_too_large(created)
    with httpx.Client(base_url=str(api.base_url), timeout=30.0) as client:
        decided = client.post(
            "/v1/authorize",
            content=_chunks(b'{"action": "oss:GetObject", "resource": "' + b"a" * 70_000 + b'"}'),
            headers={**api.admin, "content-type": "application/json"},
        )
        _assert_too_large(decided)
    assert api.log_head() == head


def test_a_body_within_the_limit_is_read_chunked_or_not(api: MandateClient) -> None:
    body = _big_account_body(DEFAULT_MAX_BODY_BYTES)
    headers = {**api.admin, "content-type": "application/json"}
    assert api.post("/v1/accounts", content=body, headers=headers).status_code == 201
    with httpx.Client(base_url=str(api.base_url), timeout=30.0) as client:
        response = client.post("/v1/accounts", content=_chunks(body), headers=headers)
        assert response.status_code == 201, response.text
