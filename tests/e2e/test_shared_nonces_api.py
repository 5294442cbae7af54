"""A signed write captured and replayed to another API process is refused (issue 14).

Two apps under uvicorn over one PostgreSQL schema stand for two API processes behind a load
balancer: each has its own in-process nonce cache (one ``ReplayGuard`` per app) and its own
runtime; only the store's ``mandate_signature_nonces`` table is shared. A write is signed by
hand (RPC V1 on ``/``, ACS3-HMAC-SHA256 on ``/v1``), sent to the first, then replayed byte for
byte — the same ``Host`` a load balancer would pass on — to the second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from alibabacloud_tea_openapi.utils import Utils

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient, serving
from tests.e2e.rpc_support import RAM_VERSION, Key, RpcServer

HOST = "ram.example.test"  # what the load balancer passes on, whichever process serves


@dataclass(frozen=True)
class Process:
    """One API process: its client and its runtime."""

    api: MandateClient
    runtime: Runtime

    def log_head(self) -> int:
        return self.api.log_head()


@pytest.fixture
def two(postgres_url: str, tmp_path: Any) -> Iterator[tuple[Process, Process]]:
    def runtime(create: bool) -> Runtime:
        settings = Settings(
            database_url=postgres_url,
            admin_token=ADMIN_TOKEN,
            hash_key=HASH_KEY,
            state_dir=tmp_path,
        )
        return Runtime(settings, create_tables=create)

    first = runtime(True)
    second = runtime(False)
    with serving(first) as one, serving(second) as other:
        yield Process(one, first), Process(other, second)


def _rpc_query(key: Key, action: str, params: dict[str, str]) -> str:
    """A GET query signed with RPC V1 by hand (the algorithm, not an SDK), for replays."""
    signed = {
        "Action": action,
        "Version": RAM_VERSION,
        "Format": "JSON",
        "AccessKeyId": key.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }

    def pe(text: str) -> str:
        return quote(text, safe="~")

    canonical = "&".join(f"{pe(k)}={pe(v)}" for k, v in sorted(signed.items()))
    to_sign = "GET&%2F&" + pe(canonical)
    digest = hmac.new((key.secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    signed["Signature"] = base64.b64encode(digest).decode()
    return "&".join(f"{pe(k)}={pe(v)}" for k, v in signed.items())


def _acs3(key: Key, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers tea-openapi's V3 signer makes for a request to ``HOST``."""
    headers = {
        "host": HOST,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        "content-type": "application/json",
    }
    request = SimpleNamespace(method=method, pathname=path, query={}, headers=headers)
    headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], key.access_key_id, key.secret
    )
    return headers


def _caught_up(one: Process, other: Process) -> None:
    """The second process has applied everything the first wrote (keys, users)."""
    assert other.runtime.follower.wait_for(one.runtime.head(), timeout=10)


def _rpc(process: Process, query: str) -> tuple[int, dict[str, Any]]:
    response = process.api.get("/?" + query, headers={"host": HOST})
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_an_rpc_write_replayed_to_another_process_is_refused_and_writes_nothing(
    two: tuple[Process, Process],
) -> None:
    one, other = two
    root = RpcServer(one.api).open_account()
    _caught_up(one, other)

    create = _rpc_query(root, "CreateUser", {"UserName": "alice"})
    status, body = _rpc(one, create)
    assert status == 200, body
    _caught_up(one, other)
    head = other.log_head()
    status, body = _rpc(other, create)  # the same bytes, to the other process
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert other.log_head() == head  # no event: no second user, no error event
    # …and to the first process, refused by its own cache without asking the table
    assert _rpc(one, create)[1]["Code"] == "SignatureNonceUsed"

    # a fresh nonce on the second process is a new request: accepted
    status, body = _rpc(other, _rpc_query(root, "CreateUser", {"UserName": "bob"}))
    assert status == 200, body
    assert body["User"]["UserName"] == "bob"

    # the write that hands out a secret: replaying it would give a second key
    issue = _rpc_query(root, "CreateAccessKey", {"UserName": "bob"})
    status, body = _rpc(other, issue)
    assert status == 200, body
    _caught_up(other, one)
    head = one.log_head()
    status, body = _rpc(one, issue)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    assert "AccessKey" not in body
    assert one.log_head() == head


def test_an_acs3_write_on_v1_replayed_to_another_process_is_refused(
    two: tuple[Process, Process],
) -> None:
    one, other = two
    root = RpcServer(one.api).open_account()
    _caught_up(one, other)
    users = f"/v1/accounts/{root.account_id}/users"
    body = json.dumps({"user_name": "carol"}).encode()
    headers = _acs3(root, "POST", users, body)

    created = one.api.post(users, content=body, headers=headers)
    assert created.status_code == 201, created.text
    _caught_up(one, other)
    head = other.log_head()
    replayed = other.api.post(users, content=body, headers=headers)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["code"] == "SignatureNonceUsed"
    assert other.log_head() == head

    fresh = json.dumps({"user_name": "dave"}).encode()
    accepted = other.api.post(users, content=fresh, headers=_acs3(root, "POST", users, fresh))
    assert accepted.status_code == 201, accepted.text


def test_a_shared_store_that_cannot_answer_refuses_writes_with_503_and_retry_after(
    two: tuple[Process, Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed, as the rest of the API answers an outage: 503 with Retry-After, nothing
    written; the refused request's nonce is not spent, so its retry is served."""
    one, other = two
    root = RpcServer(one.api).open_account()
    _caught_up(one, other)
    live = other.runtime.nonces
    assert live is not None

    def down(key: bytes, expires_at: float, now: float) -> bool:
        raise ConnectionError("the store is unreachable")

    # the app's guard holds the runtime's store: make that one fail, as an outage would
    monkeypatch.setattr(live, "add", down)
    try:
        head = other.log_head()
        create = _rpc_query(root, "CreateUser", {"UserName": "erin"})
        response = other.api.get("/?" + create, headers={"host": HOST})
        assert response.status_code == 503, response.text
        assert response.json()["Code"] == "ServiceUnavailable"
        assert response.headers["retry-after"] == "1"
        users = f"/v1/accounts/{root.account_id}/users"
        body = json.dumps({"user_name": "frank"}).encode()
        headers = _acs3(root, "POST", users, body)
        response = other.api.post(users, content=body, headers=headers)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert other.log_head() == head
    finally:
        monkeypatch.undo()
    # the store is back: the very same requests are served once
    response = other.api.get("/?" + create, headers={"host": HOST})
    assert response.status_code == 200, response.text
    response = other.api.post(users, content=body, headers=headers)
    assert response.status_code == 201, response.text
