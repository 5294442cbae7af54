"""Access review over HTTP, on both stores: the answer's shape, who may ask, bad parameters,
paging, and a contract A → B revoked under a delegate's feet."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import Headers, MandateClient

GET = "oss:GetObject"
PROBLEM = "application/problem+json"


def _since(minutes: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def _review(api: MandateClient, account: str, headers: Headers, **params: Any) -> httpx.Response:
    query = {"resource": f"acs:oss:*:{account}:bucket/x", "action": GET, "from": _since()}
    query.update(params)
    return api.get(f"/v1/accounts/{account}/access-review", params=query, headers=headers)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _post(api: MandateClient, path: str, headers: Headers, body: Any, status: int) -> Any:
    response = api.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def test_the_answer_and_who_may_ask(api: MandateClient) -> None:
    account, root = api.open_account("Owner")
    other, other_root = api.open_account("Other")
    alice = api.create_user(account, root, "alice")
    api.attach(account, root, "users/alice", "System", "AliyunOSSReadOnlyAccess")

    body = _ok(_review(api, account, root))
    assert set(body) == {
        "account_id",
        "resource",
        "action",
        "from",
        "to",
        "position",
        "evaluated_instants",
        "items",
        "next_cursor",
    }
    assert (body["account_id"], body["resource"], body["action"]) == (
        account,
        f"acs:oss:*:{account}:bucket/x",
        GET,
    )
    assert body["next_cursor"] is None
    assert body["position"] >= 1
    by_principal = {item["principal"]: item for item in body["items"]}
    alice_arn, root_arn = f"acs:ram::{account}:user/alice", f"acs:ram::{account}:root"
    assert set(by_principal) == {alice_arn, root_arn}
    item = by_principal[alice_arn]
    assert (item["principal_type"], item["account_id"]) == ("user", account)
    assert item["user_id"]
    (interval,) = item["intervals"]
    assert interval["chain"] == [alice_arn]
    assert interval["conditional"] is False
    assert interval["to"] == body["to"]  # still allowed: clipped to the window
    assert _instant(body["from"]) < _instant(interval["from"]) < _instant(interval["to"])
    assert by_principal[root_arn]["principal_type"] == "root"
    assert by_principal[root_arn]["user_id"] is None

    # the admin reads too; another account's root may not; a user needs ram:ReviewAccess
    assert {i["principal"] for i in _ok(_review(api, account, api.admin))["items"]} == {
        alice_arn,
        root_arn,
    }
    refused = _problem(_review(api, account, other_root), 403)
    assert other in refused["detail"]
    _problem(_review(api, account, alice), 403)
    reviewer = [
        {
            "Effect": "Allow",
            "Action": "ram:ReviewAccess",
            "Resource": f"acs:oss:*:{account}:bucket/*",
        }
    ]
    api.create_policy(account, root, "Reviewer", reviewer)
    api.attach(account, root, "users/alice", "Custom", "Reviewer")
    assert _ok(_review(api, account, alice))["items"]
    _problem(_review(api, account, alice, resource=f"acs:ecs:*:{account}:instance/i-1"), 403)


def test_bad_parameters_are_problems(api: MandateClient) -> None:
    account, root = api.open_account("Owner")
    other, _ = api.open_account("Other")
    path = f"/v1/accounts/{account}/access-review"

    missing = _problem(api.get(path, params={"action": GET, "from": _since()}, headers=root), 400)
    assert [e["field"] for e in missing["errors"]] == ["resource"]
    now = datetime.now(UTC)
    inverted = _review(
        api,
        account,
        root,
        **{"from": now.isoformat(), "to": (now - timedelta(minutes=1)).isoformat()},
    )
    assert [e["field"] for e in _problem(inverted, 400)["errors"]] == ["from"]
    naive = _review(api, account, root, **{"from": "2026-01-01T00:00:00"})
    assert [e["field"] for e in _problem(naive, 400)["errors"]] == ["from"]
    naive_to = _review(api, account, root, to=now.replace(tzinfo=None).isoformat())
    assert [e["field"] for e in _problem(naive_to, 400)["errors"]] == ["to"]
    future = _review(api, account, root, to=(now + timedelta(hours=1)).isoformat())
    assert [e["field"] for e in _problem(future, 400)["errors"]] == ["to"]
    _problem(_review(api, account, root, **{"from": "yesterday"}), 400)
    _problem(_review(api, account, root, action="GetObject"), 400)
    _problem(_review(api, account, root, cursor="not-a-cursor"), 400)
    foreign = _problem(_review(api, account, root, resource=f"acs:oss:*:{other}:bucket/x"), 403)
    assert f"belongs to account {other}" in foreign["detail"]
    _problem(_review(api, account, root, resource="acs:oss:*:*:bucket/x"), 400)
    _problem(_review(api, "123", root), 400)


def test_pages_share_one_position_and_window(api: MandateClient) -> None:
    account, root = api.open_account("Owner")
    for name in ("ann", "ben", "cat"):
        api.create_user(account, root, name)
        api.attach(account, root, f"users/{name}", "System", "AliyunOSSFullAccess")
    since = _since()
    first = _ok(_review(api, account, root, limit=2, **{"from": since}))
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    api.create_user(account, root, "dan")  # written between the pages: not seen by page 2
    api.attach(account, root, "users/dan", "System", "AliyunOSSFullAccess")
    second = _ok(
        _review(api, account, root, limit=2, cursor=first["next_cursor"], **{"from": since})
    )
    assert (second["position"], second["to"]) == (first["position"], first["to"])
    principals = [i["principal"] for i in first["items"] + second["items"]]
    assert principals == sorted(
        [
            f"acs:ram::{account}:root",
            *(f"acs:ram::{account}:user/{n}" for n in ("ann", "ben", "cat")),
        ]
    )
    assert second["next_cursor"] is None
    other_query = _review(
        api, account, root, action="oss:PutObject", cursor=first["next_cursor"], **{"from": since}
    )
    assert [e["field"] for e in _problem(other_query, 400)["errors"]] == ["cursor"]


def test_a_delegate_of_a_revoked_contract(api: MandateClient) -> None:
    owner, owner_root = api.open_account("Owner")
    trustee, trustee_root = api.open_account("Trustee")
    scope = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": f"acs:oss:*:{owner}:*"}],
    }
    entrustment = _post(
        api,
        f"/v1/accounts/{owner}/entrustments",
        owner_root,
        {"trustee_account_id": trustee, "scope": scope, "contract_ref": "MSA-2026-7"},
        201,
    )
    erin = api.create_user(trustee, trustee_root, "erin")
    api.attach(trustee, trustee_root, "users/erin", "System", "AliyunSTSAssumeRoleAccess")
    erin_arn = f"acs:ram::{trustee}:user/erin"
    delegation = _post(
        api,
        f"/v1/accounts/{trustee}/delegations",
        trustee_root,
        {"entrustment_id": entrustment["entrustment_id"], "grantee": erin_arn, "scope": scope},
        201,
    )
    _post(
        api,
        "/v1/sts/assume-role",
        erin,
        {"role_arn": entrustment["role_arn"], "role_session_name": "oncall"},
        201,
    )
    time.sleep(0.01)
    revoked = _post(
        api,
        f"/v1/accounts/{owner}/entrustments/{entrustment['entrustment_id']}/revoke",
        owner_root,
        {"reason": "contract terminated"},
        200,
    )
    body = _ok(_review(api, owner, owner_root))
    assert body["position"] >= revoked["position"]
    by_principal = {item["principal"]: item for item in body["items"]}
    assert set(by_principal) == {f"acs:ram::{owner}:root", erin_arn}  # no session, no root of B
    assert by_principal[erin_arn]["account_id"] == trustee
    (interval,) = by_principal[erin_arn]["intervals"]
    assert interval["chain"] == [
        erin_arn,
        delegation["arn"],
        entrustment["arn"],
        entrustment["role_arn"],
    ]
    assert interval["conditional"] is False
    assert _instant(interval["from"]) < _instant(interval["to"]) < _instant(body["to"])
    # the trustee may not review the owner's resources
    _problem(_review(api, owner, trustee_root), 403)
