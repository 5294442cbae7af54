"""An access review tells an account nothing of whether another account's principals exist.

Acme's bucket policy may name any principal of any account (OSS bucket policies name
"Alibaba Cloud accounts, RAM users, and RAM roles" by ARN,
https://www.alibabacloud.com/help/en/oss/user-guide/tutorial-use-bucket-policies-to-authorize-other-users-to-access-oss-resources),
and RAM never tells Acme whether OpsCo's role or user exists, nor what OpsCo's own policies
allow. So Acme's review lists each principal of another account its policy names exactly as
the policy writes it (``conditional``: its own account must allow too): an existing and a
missing one alike apart from the name. The platform admin keeps the decided answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Headers, MandateClient

GET = "oss:GetObject"
UNKNOWN = "1999999999999999"


def _put(api: MandateClient, a: str, root: Headers, *names: str) -> None:
    statement = {
        "Effect": "Allow",
        "Action": GET,
        "Resource": f"acs:oss:*:{a}:photos/*",
        "Principal": {"RAM": list(names)},
    }
    response = api.put(
        f"/v1/accounts/{a}/resource-policies",
        params={"resource": f"acs:oss:*:{a}:photos"},
        json={"policy_document": {"Version": "1", "Statement": [statement]}},
        headers=root,
    )
    assert response.status_code == 200, response.text


def _items(api: MandateClient, a: str, asker: Headers, start: str) -> dict[str, dict[str, Any]]:
    response = api.get(
        f"/v1/accounts/{a}/access-review",
        params={"resource": f"acs:oss:*:{a}:photos/cat.jpg", "action": GET, "from": start},
        headers=asker,
    )
    assert response.status_code == 200, response.text
    return {item["principal"]: item for item in response.json()["items"]}


def _shape(item: dict[str, Any]) -> dict[str, Any]:
    """An item as it would read were the principal called P of account X."""
    return {
        **item,
        "principal": "P",
        "account_id": "X",
        "intervals": [{**i, "chain": ["P", *i["chain"][1:]]} for i in item["intervals"]],
    }


def _world(api: MandateClient) -> tuple[str, Headers, str, Headers, str]:
    """Acme and its root, OpsCo (with its role ops) and its root, a closed account Gone."""
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    gone, _ = api.open_account("Gone")
    trust = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [b]}}],
    }
    created = api.post(
        f"/v1/accounts/{b}/roles",
        json={"role_name": "ops", "assume_role_policy_document": trust},
        headers=root_b,
    )
    assert created.status_code in (200, 201), created.text
    api.post(f"/v1/accounts/{gone}/close", headers=api.admin).raise_for_status()
    return a, root_a, b, root_b, gone


def test_a_role_session_or_root_of_another_account_is_listed_as_written(
    api: MandateClient,
) -> None:
    a, root_a, b, _, gone = _world(api)
    start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    pairs = [
        (f"acs:ram::{b}:role/ops", f"acs:ram::{b}:role/nothing"),
        (f"acs:ram::{b}:assumed-role/ops/s1", f"acs:ram::{b}:assumed-role/nothing/s1"),
        (f"acs:ram::{b}:root", f"acs:ram::{gone}:root"),
        (f"acs:ram::{b}:root", f"acs:ram::{UNKNOWN}:root"),
    ]
    _put(api, a, root_a, *{name for pair in pairs for name in pair})
    acme = _items(api, a, root_a, start)
    for known, unknown in pairs:
        assert _shape(acme[known]) == _shape(acme[unknown])
        (interval,) = acme[unknown]["intervals"]
        assert interval["conditional"] is True
        assert interval["chain"] == [unknown, f"resource-policy:acs:oss:*:{a}:photos"]
        assert acme[unknown]["account_id"] == unknown.split(":")[3]
    # the admin keeps the decided answer: no item for what does not exist or cannot sign in
    admin = _items(api, a, api.admin, start)
    for known, unknown in pairs:
        assert known in admin
        assert unknown not in admin


def _trust(*principals: str) -> dict[str, Any]:
    allow = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
    return {"Version": "1", "Statement": [allow]}


def test_a_user_of_another_account_is_listed_as_written_not_decided_whole(
    api: MandateClient,
) -> None:
    """Across accounts RAM needs both sides (``combine_with_resource``): OpsCo's own policies
    must allow too, which is OpsCo's to know. Acme's review shows OpsCo's alice (allowed by
    OpsCo), bob (not allowed by OpsCo) and nobody (no such user) alike, as written; carol,
    who may assume Acme's own role reader, is still listed through it too (what OpsCo granted
    towards Acme). The admin sees alice decided whole, and neither bob nor nobody."""
    a, root_a, b, root_b, _ = _world(api)
    alice, bob, nobody, carol = (
        f"acs:ram::{b}:user/{n}" for n in ("alice", "bob", "nobody", "carol")
    )
    for name in ("alice", "bob", "carol"):
        api.create_user(b, root_b, name)
    read = [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*"}]
    api.create_policy(b, root_b, "ReadAcme", read)
    api.attach(b, root_b, "users/alice", "Custom", "ReadAcme")  # bob: nothing
    api.attach(b, root_b, "users/carol", "System", "AliyunSTSAssumeRoleAccess")
    created = api.post(
        f"/v1/accounts/{a}/roles",
        json={"role_name": "reader", "assume_role_policy_document": _trust(carol)},
        headers=root_a,
    )
    assert created.status_code in (200, 201), created.text
    api.create_policy(a, root_a, "ReadPhotos", read)
    api.attach(a, root_a, "roles/reader", "Custom", "ReadPhotos")
    start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    via = f"resource-policy:acs:oss:*:{a}:photos"
    _put(api, a, root_a, alice, bob, nobody, carol)

    admin = _items(api, a, api.admin, start)
    assert admin[alice]["user_id"] is not None
    assert [i["chain"] for i in admin[alice]["intervals"]] == [[alice, via]]
    assert admin[alice]["intervals"][0]["conditional"] is False
    assert bob not in admin
    assert nobody not in admin

    response = api.get(
        f"/v1/accounts/{a}/access-review",
        params={"resource": f"acs:oss:*:{a}:photos/cat.jpg", "action": GET, "from": start},
        headers=root_a,
    )
    assert response.status_code == 200, response.text
    acme = response.json()["items"]
    written = {i["principal"]: i for i in acme if i["user_id"] is None}
    assert _shape(written[alice]) == _shape(written[bob]) == _shape(written[nobody])
    assert _shape(written[carol]) == _shape(written[nobody])
    (interval,) = written[nobody]["intervals"]
    assert (interval["conditional"], interval["chain"]) == (True, [nobody, via])
    assert written[nobody]["principal_type"] == "user"
    decided = [i for i in acme if i["user_id"] is not None and i["account_id"] == b]
    assert [(i["principal"], [j["chain"] for j in i["intervals"]]) for i in decided] == [
        (carol, [[carol, f"acs:ram::{a}:role/reader"]])
    ]


def test_a_path_through_another_accounts_named_role_hides_no_other_path(
    api: MandateClient,
) -> None:
    """Acme's carol may read from some source IP (a conditional grant of her own) and may
    assume OpsCo's ops, which Acme's policy names. Acme is not shown the path through ops
    (which of Acme's users OpsCo's trust admits is OpsCo's to know), nor may its absence
    tell it: Acme's review lists carol as it would were ops not named, conditional through
    her own grant; the admin sees the path through ops."""
    a, root_a, b, root_b, _ = _world(api)
    carol, ops = f"acs:ram::{a}:user/carol", f"acs:ram::{b}:role/ops"
    api.create_user(a, root_a, "carol")
    api.attach(a, root_a, "users/carol", "System", "AliyunSTSAssumeRoleAccess")
    ip = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    own = [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*", "Condition": ip}]
    api.create_policy(a, root_a, "FromTheOffice", own)
    api.attach(a, root_a, "users/carol", "Custom", "FromTheOffice")
    retrusted = api.put(
        f"/v1/accounts/{b}/roles/ops/trust-policy",
        json={"assume_role_policy_document": _trust(carol)},
        headers=root_b,
    )
    assert retrusted.status_code == 200, retrusted.text
    read = [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*"}]
    api.create_policy(b, root_b, "ReadAcme", read)
    api.attach(b, root_b, "roles/ops", "Custom", "ReadAcme")
    start = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _put(api, a, root_a, ops)
    admin = _items(api, a, api.admin, start)
    via = f"resource-policy:acs:oss:*:{a}:photos"
    assert [(i["chain"], i["conditional"]) for i in admin[carol]["intervals"]][-1] == (
        [carol, ops, via],
        False,
    )
    end = datetime.now(UTC).isoformat()
    response = api.get(
        f"/v1/accounts/{a}/access-review",
        params={
            "resource": f"acs:oss:*:{a}:photos/cat.jpg",
            "action": GET,
            "from": start,
            "to": end,
        },
        headers=root_a,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (listed,) = [i for i in body["items"] if i["principal"] == carol]
    (interval,) = listed["intervals"]  # no gap while ops would have let her in
    assert (interval["chain"], interval["conditional"]) == ([carol], True)
    assert interval["to"] == body["to"]
