"""Access review counts resource policies, on both stores (issue 16 item 2).

A user of another account that a bucket policy names could read the bucket while the policy
allowed it (its own policies allowing too): the admin's review lists it for that interval,
with the chain ``[user, "resource-policy:<ARN>"]``, and no longer once a Deny names it or the
policy is deleted (the account's own review shows it as written, ``conditional``). An account
the policy names is one entry, its root, ``conditional: true``: its principals are admitted
only where their own account's policies allow too.

Pages: how RAM evaluates identity and resource policies together,
https://www.alibabacloud.com/help/en/ram/policy-evaluation-process; the KMS key policy
overview (OR inside the owner's account, AND across accounts),
https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies;
bucket policies naming accounts, users and roles,
https://www.alibabacloud.com/help/en/object-storage-service/latest/examples
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Headers, MandateClient

GET = "oss:GetObject"


def _review(api: MandateClient, a: str, root: Headers, **params: str) -> dict[str, Any]:
    query = {
        "resource": f"acs:oss:*:{a}:photos/cat.jpg",
        "action": GET,
        "from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    query.update(params)
    response = api.get(f"/v1/accounts/{a}/access-review", params=query, headers=root)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _statement(a: str, effect: str, principal: Any) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": "oss:GetObject",
        "Resource": f"acs:oss:*:{a}:photos/*",
        "Principal": principal,
    }


def test_principals_granted_only_by_a_resource_policy(api: MandateClient) -> None:
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    api.create_user(b, root_b, "bob")
    api.create_user(b, root_b, "carol")  # named by no policy: never listed
    api.create_policy(
        b, root_b, "ReadAcme", [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*"}]
    )
    api.attach(b, root_b, "users/bob", "Custom", "ReadAcme")
    api.attach(b, root_b, "users/carol", "Custom", "ReadAcme")
    url, bucket = f"/v1/accounts/{a}/resource-policies", f"acs:oss:*:{a}:photos"
    bob_arn, root_b_arn = f"acs:ram::{b}:user/bob", f"acs:ram::{b}:root"
    via = f"resource-policy:{bucket}"

    def put(*statements: dict[str, Any]) -> None:
        document = {"Version": "1", "Statement": list(statements)}
        response = api.put(
            url, params={"resource": bucket}, json={"policy_document": document}, headers=root_a
        )
        assert response.status_code == 200, response.text

    before = {i["principal"] for i in _review(api, a, api.admin)["items"]}
    assert before == {f"acs:ram::{a}:root"}

    put(_statement(a, "Allow", {"RAM": [bob_arn, b]}))
    body = _review(api, a, api.admin)
    items = {i["principal"]: i for i in body["items"]}
    assert set(items) == {f"acs:ram::{a}:root", bob_arn, root_b_arn}
    bob = items[bob_arn]
    assert (bob["principal_type"], bob["account_id"]) == ("user", b)
    assert bob["user_id"]
    (granted,) = bob["intervals"]
    assert granted["chain"] == [bob_arn, via]
    assert granted["conditional"] is False
    assert granted["to"] == body["to"]  # still granted: clipped to the window
    account_b = items[root_b_arn]
    assert (account_b["principal_type"], account_b["account_id"]) == ("root", b)
    assert account_b["user_id"] is None
    (admitted,) = account_b["intervals"]
    assert admitted["chain"] == [root_b_arn, via]
    assert admitted["conditional"] is True  # B's own policies must allow too
    # decided whole for the admin only: Acme's root sees bob as its policy writes him
    (written,) = [i for i in _review(api, a, root_a)["items"] if i["principal"] == bob_arn]
    assert written["user_id"] is None
    assert [(i["chain"], i["conditional"]) for i in written["intervals"]] == [
        ([bob_arn, via], True)
    ]

    # a Deny naming bob ends his interval; the account's entry goes on unchanged
    put(_statement(a, "Allow", b), _statement(a, "Deny", bob_arn))
    body = _review(api, a, api.admin)
    items = {i["principal"]: i for i in body["items"]}
    (ended,) = items[bob_arn]["intervals"]
    assert ended["from"] == granted["from"]
    assert datetime.fromisoformat(ended["to"]) < datetime.fromisoformat(body["to"])
    (still,) = items[root_b_arn]["intervals"]
    assert (still["from"], still["to"]) == (admitted["from"], body["to"])

    # deleted: the account's entry ends there, and from then on no one of B is listed
    assert api.delete(url, params={"resource": bucket}, headers=root_a).status_code == 200
    body = _review(api, a, api.admin)
    items = {i["principal"]: i for i in body["items"]}
    assert items[bob_arn]["intervals"] == [ended]
    (closed,) = items[root_b_arn]["intervals"]
    assert datetime.fromisoformat(closed["to"]) < datetime.fromisoformat(body["to"])
    after = _review(api, a, api.admin, **{"from": closed["to"]})
    assert {i["principal"] for i in after["items"]} == {f"acs:ram::{a}:root"}


def test_anyone_and_a_role_of_the_owner(api: MandateClient) -> None:
    a, root_a = api.open_account("Acme")
    role = f"acs:ram::{a}:role/reader"
    trust = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [a]}}],
    }
    created = api.post(
        f"/v1/accounts/{a}/roles",
        json={"role_name": "reader", "assume_role_policy_document": trust},
        headers=root_a,
    )
    assert created.status_code in (200, 201), created.text
    url, bucket = f"/v1/accounts/{a}/resource-policies", f"acs:oss:*:{a}:photos"
    missing = f"acs:ram::{a}:role/nobody"  # a role that does not exist has no session
    document = {"Version": "1", "Statement": [_statement(a, "Allow", ["*", role, missing])]}
    response = api.put(
        url, params={"resource": bucket}, json={"policy_document": document}, headers=root_a
    )
    assert response.status_code == 200, response.text
    items = {i["principal"]: i for i in _review(api, a, root_a)["items"]}
    assert missing not in items
    anyone, reader = items["*"], items[role]
    assert (anyone["principal_type"], anyone["account_id"]) == ("any", "")
    assert [(i["chain"], i["conditional"]) for i in anyone["intervals"]] == [
        (["*", f"resource-policy:{bucket}"], True)
    ]
    assert (reader["principal_type"], reader["account_id"]) == ("role", a)
    # inside the owner's account the resource policy alone is enough
    assert [(i["chain"], i["conditional"]) for i in reader["intervals"]] == [
        ([role, f"resource-policy:{bucket}"], False)
    ]
