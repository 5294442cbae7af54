"""Brute force, abuse and the security log, over real HTTP (issue 14, items 5 and 6).

The server trusts 127.0.0.1 as a proxy, so each request's ``X-Forwarded-For`` is its source
IP: one test plays an attacker at several addresses and a victim at its own. Limits are small
and regain one token an hour, so nothing here depends on the clock.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mandate.api.abuse import GcraLimiter, guards_of
from mandate.api.observability.security_events import DROPPED
from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, Headers, MandateClient, serving
from tests.e2e.rpc_support import Key, RpcServer, ServerException, core_call

KEY_BURST = 3
IP_BURST = 5
READ_BURST = 2


@pytest.fixture(scope="module")
def api(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MandateClient]:
    state_dir: Path = tmp_path_factory.mktemp("state")
    settings = Settings(
        database_url=store_url,
        admin_token=ADMIN_TOKEN,
        hash_key=HASH_KEY,
        state_dir=state_dir,
        trusted_proxies=["127.0.0.1"],
        auth_failure_burst_per_key=KEY_BURST,
        auth_failures_per_minute_per_key=1 / 60,
        auth_failure_burst_per_ip=IP_BURST,
        auth_failures_per_minute_per_ip=1 / 60,
        expensive_read_burst=READ_BURST,
        expensive_reads_per_minute=1 / 60,
    )
    with serving(Runtime(settings, create_tables=True)) as client:
        yield client


def _from(ip: str, headers: Headers) -> Headers:
    return {**headers, "X-Forwarded-For": ip}


def _key_of(headers: Headers) -> tuple[str, str]:
    key_id, _, secret = (
        base64.b64decode(headers["Authorization"].split()[1]).decode().partition(":")
    )
    return key_id, secret


def _ip() -> str:
    a, b, c = (secrets.randbelow(250) + 1 for _ in range(3))
    return f"10.{a}.{b}.{c}"


def _throttled(response: Any, limit: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["code"] == "Throttling.User"
    assert body["limit"] == limit
    return body


def test_hammering_a_key_id_from_many_ips_does_not_lock_its_owner_out(
    api: MandateClient,
) -> None:
    account, root = api.open_account()
    victim = api.create_user(account, root, "victim")
    key_id, secret = _key_of(victim)
    me = "/v1/sts/caller-identity"  # needs no permission: only a proven caller
    head = api.log_head()
    wrong = MandateClient.basic(key_id, "x" * 30)
    answers = [api.get(me, headers=_from(_ip(), wrong)).status_code for _ in range(KEY_BURST)]
    assert answers == [401] * KEY_BURST
    for _ in range(3):  # each attacker address is fresh: only the key's limit is reached
        _throttled(api.get(me, headers=_from(_ip(), wrong)), "access_key")
    # The owner, with the right secret, from its own address, still gets in.
    assert api.get(me, headers=_from("192.0.2.7", victim)).status_code == 200
    assert api.get(me, headers=victim).status_code == 200
    assert api.log_head() == head  # refusals write nothing
    metrics = api.get("/metrics").text
    assert 'mandate_auth_failures_total{surface="v1"}' in metrics
    assert 'mandate_rate_limited_total{reason="access_key"}' in metrics
    assert secret not in metrics


def test_an_address_over_its_limit_is_refused_even_with_a_right_secret(
    api: MandateClient,
) -> None:
    account, root = api.open_account()
    user = api.create_user(account, root, "ana")
    me = "/v1/sts/caller-identity"
    attacker = _ip()
    for _ in range(IP_BURST):  # a different made-up key id each time: only the IP counts
        guess = MandateClient.basic("LTAI" + secrets.token_hex(8), "y" * 30)
        assert api.get(me, headers=_from(attacker, guess)).status_code == 401
    guess = MandateClient.basic("LTAI" + secrets.token_hex(8), "y" * 30)
    _throttled(api.get(me, headers=_from(attacker, guess)), "source_ip")
    # Refused before the credentials are checked, right ones included...
    _throttled(api.get(me, headers=_from(attacker, user)), "source_ip")
    # ...but only at that address.
    assert api.get(me, headers=_from(_ip(), user)).status_code == 200


def test_the_rpc_dialect_answers_throttling_user_with_retry_after(api: MandateClient) -> None:
    attacker = _ip()
    params = {
        "Action": "ListUsers",
        "Version": "2015-05-01",
        "Format": "JSON",
        "AccessKeyId": "LTAI" + secrets.token_hex(8),
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": secrets.token_hex(8),
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Signature": "bm90IGEgc2lnbmF0dXJl",
    }
    for _ in range(IP_BURST):  # a new key id each time: only the address's limit is reached
        params["AccessKeyId"] = "LTAI" + secrets.token_hex(8)
        refused = api.get("/", params=params, headers={"X-Forwarded-For": attacker})
        assert refused.status_code in (400, 404), refused.text
    throttled = api.get("/", params=params, headers={"X-Forwarded-For": attacker})
    assert throttled.status_code == 429, throttled.text
    assert int(throttled.headers["retry-after"]) >= 1
    body = throttled.json()
    assert body["Code"] == "Throttling.User"
    assert body["Message"] == "Request was denied due to user flow control."
    assert body["RequestId"] == throttled.headers["x-request-id"]


def test_expensive_reads_have_a_budget_per_caller(api: MandateClient) -> None:
    account, root = api.open_account()
    other, other_root = api.open_account()
    export = f"/v1/accounts/{account}/audit-events/export"
    for _ in range(READ_BURST):
        assert api.get(export, headers=root).status_code == 200
    body = _throttled(api.get(export, headers=root), "expensive_read")
    assert "expensive reads" in body["detail"]
    assert 'mandate_rate_limited_total{reason="expensive_read"}' in api.get("/metrics").text
    review = api.get(
        f"/v1/accounts/{account}/access-review",
        params={
            "resource": f"acs:ram::{account}:*",
            "action": "ram:ListUsers",
            "from": "2020-01-01T00:00:00Z",
        },
        headers=root,
    )
    _throttled(review, "expensive_read")
    # Another caller's budget is its own; cheap reads are not budgeted.
    assert (
        api.get(f"/v1/accounts/{other}/audit-events/export", headers=other_root).status_code == 200
    )
    assert api.get(f"/v1/accounts/{account}/users", headers=root).status_code == 200


def _events(api: MandateClient, account: str, headers: Headers, **params: Any) -> Any:
    return api.get(f"/v1/accounts/{account}/security-events", params=params, headers=headers)


def test_refusals_go_to_the_security_log_of_the_account_they_concern(
    api: MandateClient,
) -> None:
    account, root = api.open_account()
    other, other_root = api.open_account()
    user = api.create_user(account, root, "bo")
    key_id, secret = _key_of(user)
    head = api.log_head()
    denied = api.post(
        f"/v1/accounts/{account}/users",
        json={"user_name": "mallory"},
        headers=_from("198.51.100.4", {**user, "X-Request-Id": "deny-me-1"}),
    )
    assert denied.status_code == 403, denied.text
    wrong_secret = "z" * 29 + "Q"
    failed = api.get(
        f"/v1/accounts/{account}/users",
        headers=_from("198.51.100.5", MandateClient.basic(key_id, wrong_secret)),
    )
    assert failed.status_code == 401
    assert api.log_head() == head  # neither refusal wrote an event

    listed = _events(api, account, root)
    assert listed.status_code == 200, listed.text
    rows = listed.json()["items"]
    assert [r["kind"] for r in rows] == ["access_denied", "authentication_failed"]
    deny, fail = rows
    assert deny["account_id"] == account
    assert deny["caller"] == f"acs:ram::{account}:user/bo"
    assert deny["access_key_id"] == key_id
    assert deny["action"] == "ram:CreateUser"
    assert deny["resource"] == f"acs:ram::{account}:user/mallory"
    assert deny["code"] == "NoPermission"
    assert deny["source_ip"] == "198.51.100.4"
    assert deny["request_id"] == "deny-me-1" == denied.headers["x-request-id"]
    assert "not allowed ram:CreateUser" in deny["reason"]
    assert fail["caller"] is None
    assert fail["access_key_id"] == key_id
    assert fail["action"] == "GET /v1/accounts/{account_id}/users"
    assert fail["source_ip"] == "198.51.100.5"
    assert fail["request_id"] == failed.headers["x-request-id"]
    datetime.fromisoformat(fail["at"])

    # Paged like every listing; exported as JSON lines.
    first = _events(api, account, root, limit=1).json()
    assert len(first["items"]) == 1
    assert first["next_cursor"]
    second = _events(api, account, root, limit=1, cursor=first["next_cursor"]).json()
    assert second["items"] == rows[1:]
    assert second["next_cursor"] is None
    export = api.get(f"/v1/accounts/{account}/security-events/export", headers=root)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in export.text.splitlines()] == rows
    # Never a secret: neither the wrong one tried nor the user's own.
    assert wrong_secret not in export.text
    assert secret not in export.text

    # Only the account's root (or who is allowed ram:ListSecurityEvents) reads it.
    assert _events(api, account, other_root).status_code == 403
    assert _events(api, account, user).status_code == 403
    assert _events(api, account, api.admin).status_code == 200
    assert all(r["account_id"] == other for r in _events(api, other, other_root).json()["items"])
    # ...and the other account's refused read of it is in *this* account's log.
    kinds = [r["kind"] for r in _events(api, account, root).json()["items"]]
    assert kinds.count("access_denied") == 3  # the CreateUser, other's root, the user itself
    assert api.log_head() == head


def test_a_user_allowed_list_security_events_reads_them(api: MandateClient) -> None:
    account, root = api.open_account()
    auditor = api.create_user(account, root, "auditor")
    api.create_policy(
        account,
        root,
        "ReadSecurityLog",
        [{"Effect": "Allow", "Action": "ram:ListSecurityEvents", "Resource": "*"}],
    )
    api.attach(account, root, "users/auditor", "Custom", "ReadSecurityLog")
    assert _events(api, account, auditor).status_code == 200


def test_rows_older_than_the_retention_are_purged(api: MandateClient) -> None:
    account, root = api.open_account()
    user = api.create_user(account, root, "cy")
    assert (
        api.post(
            f"/v1/accounts/{account}/groups", json={"group_name": "g"}, headers=user
        ).status_code
        == 403
    )
    assert len(_events(api, account, root).json()["items"]) == 1
    runtime = api.runtime
    retention = timedelta(days=runtime.settings.security_log_retention_days)
    purge = runtime.security_events.purge_expired
    assert purge(datetime.now(UTC)) == 0  # nothing is that old yet
    assert purge(datetime.now(UTC) + retention + timedelta(seconds=1)) >= 1
    assert _events(api, account, root).json()["items"] == []


def test_rpc_refusals_are_in_the_security_log_too(api: MandateClient) -> None:
    """A NoPermission and a bad signature on ``/`` (sdk-core, V1 signatures) are logged as on
    /v1, under the account of the key; the throttles and failures show in /metrics."""
    account, root = api.open_account()
    user = api.create_user(account, root, "dee")
    key_id, secret = _key_of(user)
    server = RpcServer(api)
    head = api.log_head()
    with pytest.raises(ServerException) as refused:
        core_call(server.core(Key(key_id, secret)), server.common("CreateUser", {"UserName": "e"}))
    assert refused.value.get_error_code() == "NoPermission"
    with pytest.raises(ServerException) as forged:
        core_call(server.core(Key(key_id, "w" * 30)), server.common("ListUsers"))
    assert forged.value.get_error_code() == "SignatureDoesNotMatch"
    assert api.log_head() == head
    rows = _events(api, account, root).json()["items"]
    assert [(r["kind"], r["action"], r["code"]) for r in rows] == [
        ("access_denied", "ram:CreateUser", "NoPermission"),
        ("authentication_failed", "ListUsers", "SignatureDoesNotMatch"),
    ]
    assert rows[1]["access_key_id"] == key_id
    assert rows[1]["caller"] is None
    assert "w" * 30 not in json.dumps(rows)
    assert secret not in json.dumps(rows)
    assert 'mandate_auth_failures_total{surface="rpc"}' in api.get("/metrics").text


def test_one_callers_flood_of_refusals_takes_only_its_share_of_the_log(
    api: MandateClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authenticated caller may name any account; beyond its share its refusals are
    still refused, counted, and not written."""
    account, root = api.open_account()
    mallory_account, mallory_root = api.open_account()
    guards = guards_of(api.runtime)
    monkeypatch.setattr(guards, "denials", GcraLimiter(rate=1 / 3600, burst=2, max_keys=10))
    dropped = DROPPED.labels("caller_flood")._value.get()
    for n in range(4):
        refused = api.post(
            f"/v1/accounts/{account}/users", json={"user_name": f"x{n}"}, headers=mallory_root
        )
        assert refused.status_code == 403
    rows = _events(api, account, root).json()["items"]
    assert [r["caller"] for r in rows] == [f"acs:ram::{mallory_account}:root"] * 2
    assert DROPPED.labels("caller_flood")._value.get() == dropped + 2
