"""Issue 14 with real processes and a real outage: two ``mandate serve`` processes on one
PostgreSQL schema (each its own interpreter and nonce cache) refuse a signed write replayed
from one to the other; a server whose PostgreSQL is stopped refuses signed writes with 503
and Retry-After — the nonce guard is never switched off — and serves the very same request
once the database is back. (``test_shared_nonces_api.py`` covers the same in one process,
with two apps, and the ACS3 form on ``/v1``.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.bench.harness import mandate_servers
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, serving
from tests.e2e.rpc_support import Key
from tests.e2e.test_shared_nonces_api import HOST, _rpc_query
from tests.e2e.test_store_outage import Cluster

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _open_account(api: httpx.Client) -> Key:
    response = api.post("/v1/accounts", json={"name": "Acme"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    root = body["root_access_key"]
    return Key(root["access_key_id"], root["access_key_secret"], body["account_id"])


def _ready(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _applied(api: httpx.Client, position: int) -> None:
    """Wait (bounded) until ``api``'s index has applied ``position``: its keys are known."""
    deadline = time.monotonic() + 15
    while _ready(api)["index_position"] < position:
        assert time.monotonic() < deadline, "the other process did not catch up"
        time.sleep(0.02)


def _rpc(api: httpx.Client, query: str) -> httpx.Response:
    return api.get("/?" + query, headers={"host": HOST})


def test_two_serve_processes_refuse_a_write_replayed_from_one_to_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {"MANDATE_ADMIN_TOKEN": ADMIN_TOKEN, "MANDATE_HASH_KEY": HASH_KEY}
    with (
        mandate_servers(tmp_path, postgres_url, count=2, migrate=True, env=env) as urls,
        httpx.Client(base_url=urls[0], timeout=30) as one,
        httpx.Client(base_url=urls[1], timeout=30) as other,
    ):
        root = _open_account(one)
        made = _rpc(one, _rpc_query(root, "CreateUser", {"UserName": "alice"}))
        assert made.status_code == 200, made.text
        issue = _rpc_query(root, "CreateAccessKey", {"UserName": "alice"})
        answered = _rpc(one, issue)
        assert answered.status_code == 200, answered.text
        assert "AccessKeySecret" in answered.json()["AccessKey"]
        head = _ready(one)["head"]
        _applied(other, head)

        replayed = _rpc(other, issue)
        assert replayed.status_code == 400, replayed.text
        assert replayed.json()["Code"] == "SignatureNonceUsed"
        assert "AccessKey" not in replayed.json()
        assert _ready(other)["head"] == head  # no second key, no event at all

        fresh = _rpc(other, _rpc_query(root, "CreateUser", {"UserName": "bob"}))
        assert fresh.status_code == 200, fresh.text


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    made.start()
    try:
        yield made
    finally:
        made.remove()


def test_signed_writes_are_refused_503_while_postgresql_is_down_then_served(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=cluster.url, admin_token=ADMIN_TOKEN, hash_key=HASH_KEY, state_dir=tmp_path
    )
    with serving(Runtime(settings, create_tables=True)) as api:
        root = _open_account(api)
        create = _rpc_query(root, "CreateUser", {"UserName": "alice"})
        cluster.stop()
        try:
            refused = _rpc(api, create)
            assert refused.status_code == 503, refused.text
            assert refused.json()["Code"] == "ServiceUnavailable"
            # refused by the nonce guard, before the write was attempted
            assert "nonce could not be checked" in refused.json()["Message"]
            assert refused.headers["retry-after"] == "1"
        finally:
            cluster.start()
        # the refused request did not spend its nonce: its retry is served, once
        deadline = time.monotonic() + 15
        while (served := _rpc(api, create)).status_code == 503:
            assert time.monotonic() < deadline, served.text
            time.sleep(0.1)
        assert served.status_code == 200, served.text
        assert served.json()["User"]["UserName"] == "alice"
        assert _rpc(api, create).json()["Code"] == "SignatureNonceUsed"
