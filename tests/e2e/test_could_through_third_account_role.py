""" "Could P" asked by P's own account shows no path through a third account's role.

Acme's bucket policy names OpsCo's role ``ops`` (OSS bucket policies name RAM roles of any
account, https://www.alibabacloud.com/help/en/object-storage-service/latest/examples); ``ops``
trusts Home's alice and may read Acme's objects; alice may assume roles, bob may not. Whether
alice could read through ``ops`` tells Home that Acme's policy names OpsCo's role, OpsCo's
trust and what ``ops`` may do on Acme's bucket: Acme's and OpsCo's facts towards each other,
which RAM never shows Home. The admin hears the Allow; Home hears exactly what it hears about
bob (no path at all), live and as of. A role of Home's own that Acme's policy names is still
a path Home hears.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.e2e.conftest import Headers, MandateClient

GET = "oss:GetObject"


def _trust(*principals: str) -> dict[str, Any]:
    allow = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
    return {"Version": "1", "Statement": [allow]}


def _role(api: MandateClient, account: str, root: Headers, name: str, trusted: str) -> str:
    created = api.post(
        f"/v1/accounts/{account}/roles",
        json={"role_name": name, "assume_role_policy_document": _trust(trusted)},
        headers=root,
    )
    assert created.status_code in (200, 201), created.text
    return f"acs:ram::{account}:role/{name}"


def _scene(api: MandateClient) -> tuple[str, Headers, str, Headers, str, str]:
    """Acme (the bucket), Home (alice, bob), OpsCo's ops trusting alice, named by Acme."""
    o, root_o = api.open_account("Acme")
    a, root_a = api.open_account("Home")
    b, root_b = api.open_account("OpsCo")
    alice = f"acs:ram::{a}:user/alice"
    for name in ("alice", "bob"):
        api.create_user(a, root_a, name)
    api.attach(a, root_a, "users/alice", "System", "AliyunSTSAssumeRoleAccess")  # bob: none
    ops = _role(api, b, root_b, "ops", alice)
    read = [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{o}:*"}]
    api.create_policy(b, root_b, "ReadAcme", read)
    api.attach(b, root_b, "roles/ops", "Custom", "ReadAcme")
    _name(api, o, root_o, ops)
    return o, root_o, a, root_a, alice, ops


def _name(api: MandateClient, o: str, root_o: Headers, *roles: str) -> None:
    statement = {
        "Effect": "Allow",
        "Action": GET,
        "Resource": f"acs:oss:*:{o}:photos/*",
        "Principal": {"RAM": list(roles)},
    }
    response = api.put(
        f"/v1/accounts/{o}/resource-policies",
        params={"resource": f"acs:oss:*:{o}:photos"},
        json={"policy_document": {"Version": "1", "Statement": [statement]}},
        headers=root_o,
    )
    assert response.status_code == 200, response.text


def _could(
    api: MandateClient, o: str, asker: Headers, principal: str, **extra: Any
) -> dict[str, Any]:
    return api.authorize(
        asker, action=GET, resource=f"acs:oss:*:{o}:photos/cat.jpg", principal=principal, **extra
    )


def _heard(answer: dict[str, Any], principal: str) -> dict[str, Any]:
    """An answer with its instant left out and the principal called P."""
    shown = {k: v for k, v in answer.items() if k not in ("evaluated_at", "position")}
    return {
        k: [(x if x != principal else "P") for x in v] if isinstance(v, list) else v
        for k, v in shown.items()
    } | {"reason": str(answer.get("reason")).replace(principal, "P")}


def test_p_s_account_hears_nothing_of_a_path_through_a_third_accounts_role(
    api: MandateClient,
) -> None:
    o, _, a, root_a, alice, ops = _scene(api)
    bob = f"acs:ram::{a}:user/bob"
    when = datetime.now(UTC).isoformat()
    for extra in ({}, {"as_of": when}):
        allowed = _could(api, o, api.admin, alice, **extra)
        assert (allowed["allowed"], allowed["chain"]) == (True, [alice, ops])
        heard = _could(api, o, root_a, alice, **extra)
        assert heard["allowed"] is False
        assert ops not in str(heard)
        assert _heard(heard, alice) == _heard(_could(api, o, root_a, bob, **extra), bob)


def test_a_role_of_p_s_own_account_named_by_the_policy_is_still_heard(
    api: MandateClient,
) -> None:
    o, root_o, a, root_a, alice, ops = _scene(api)
    mine = _role(api, a, root_a, "reader", alice)
    read = [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{o}:*"}]
    api.create_policy(a, root_a, "ReadAcme", read)
    api.attach(a, root_a, "roles/reader", "Custom", "ReadAcme")
    _name(api, o, root_o, ops, mine)
    when = datetime.now(UTC).isoformat()
    for extra in ({}, {"as_of": when}):
        heard = _could(api, o, root_a, alice, **extra)
        assert (heard["allowed"], heard["chain"]) == (True, [alice, mine])
