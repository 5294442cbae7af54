"""Resource-based policies over HTTP, on both stores (issue 16 item 2).

``PUT/GET/DELETE /v1/accounts/{a}/resource-policies?resource=<ARN>``; ``POST /v1/authorize``
then shows ``layer: "resource"`` in ``matched``. The combination is RAM's
(https://www.alibabacloud.com/help/en/ram/policy-evaluation-process; for a resource policy
spelled out in the KMS key policy overview,
https://help.aliyun.com/en/kms/key-management-service/security-and-compliance/overview-of-key-policies):
either allowing is enough inside the owner's account, both are needed across accounts, and an
explicit Deny in either wins.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import MandateClient


def _doc(a: str, principal: Any, effect: str = "Allow") -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": effect,
                "Action": "oss:GetObject",
                "Resource": f"acs:oss:*:{a}:photos/*",
                "Principal": principal,
            }
        ],
    }


def test_put_get_delete_and_decisions_across_accounts(api: MandateClient) -> None:
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    alice = api.create_user(a, root_a, "alice")
    bob = api.create_user(b, root_b, "bob")
    api.create_policy(
        b,
        root_b,
        "ReadAcme",
        [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{a}:*"}],
    )
    api.attach(b, root_b, "users/bob", "Custom", "ReadAcme")
    url = f"/v1/accounts/{a}/resource-policies"
    bucket = f"acs:oss:*:{a}:photos"
    cat = f"acs:oss:cn-hangzhou:{a}:photos/cat.jpg"

    assert not api.authorize(bob, action="oss:GetObject", resource=cat)["allowed"]
    document = _doc(a, [f"acs:ram::{a}:user/alice", f"acs:ram::{b}:user/bob"])
    put = api.put(
        url, params={"resource": bucket}, json={"policy_document": document}, headers=root_a
    )
    assert put.status_code == 200, put.text
    assert put.json()["version"] == "v1"
    got = api.get(url, params={"resource": bucket}, headers=root_a)
    assert got.status_code == 200, got.text
    assert got.json()["policy_document"] == document

    answer = api.authorize(alice, action="oss:GetObject", resource=cat)
    assert answer["allowed"], answer
    assert [m["layer"] for m in answer["matched"]] == ["resource"]
    assert answer["matched"][0]["policy_name"] == bucket
    crossed = api.authorize(bob, action="oss:GetObject", resource=cat)
    assert crossed["allowed"], crossed
    assert {m["layer"] for m in crossed["matched"]} == {"identity", "resource"}
    assert crossed["billed_account"] == a

    denied = _doc(a, f"acs:ram::{b}:user/bob", "Deny")
    assert (
        api.put(url, params={"resource": bucket}, json={"policy_document": denied}, headers=root_a)
    ).status_code == 200
    refused = api.authorize(bob, action="oss:GetObject", resource=cat)
    assert refused["decision"] == "ExplicitDeny"
    assert [m["layer"] for m in refused["matched"]] == ["resource"]

    deleted = api.delete(url, params={"resource": bucket}, headers=root_a)
    assert deleted.status_code == 200, deleted.text
    gone = api.get(url, params={"resource": bucket}, headers=root_a)
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")
    assert not api.authorize(alice, action="oss:GetObject", resource=cat)["allowed"]


def test_refusals_are_problems_and_write_nothing(api: MandateClient) -> None:
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    alice = api.create_user(a, root_a, "alice")
    url = f"/v1/accounts/{a}/resource-policies"
    bucket = f"acs:oss:*:{a}:photos"
    head = api.log_head()

    other = api.put(
        f"/v1/accounts/{b}/resource-policies",
        params={"resource": bucket},
        json={"policy_document": _doc(a, "*")},
        headers=root_b,
    )
    assert other.status_code == 400, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    outside = _doc(a, "*")
    outside["Statement"][0]["Resource"] = f"acs:oss:*:{a}:logs/*"
    bad = api.put(
        url, params={"resource": bucket}, json={"policy_document": outside}, headers=root_a
    )
    assert bad.status_code == 400, bad.text
    assert "Statement[0].Resource[0]" in {e["field"] for e in bad.json()["errors"]}
    no_principal = _doc(a, "*")
    del no_principal["Statement"][0]["Principal"]
    missing = api.put(
        url, params={"resource": bucket}, json={"policy_document": no_principal}, headers=root_a
    )
    assert missing.status_code == 400, missing.text
    forbidden = api.put(
        url, params={"resource": bucket}, json={"policy_document": _doc(a, "*")}, headers=alice
    )
    assert forbidden.status_code == 403, forbidden.text
    assert api.delete(url, params={"resource": bucket}, headers=root_a).status_code == 404
    assert api.log_head() == head


def test_the_routes_are_in_openapi(api: MandateClient) -> None:
    spec = api.get("/openapi.json").json()
    operations = spec["paths"]["/v1/accounts/{account_id}/resource-policies"]
    assert {"put", "get", "delete"} <= set(operations)
