"""Scenario 1 over HTTP: an enterprise, its employees, their keys, groups and policies.

The admin opens the account and hands the root key to the owner once; the owner (root)
manages RAM users; employees act within their policies, and every change takes effect on the
next decision. Each test opens its own account on the module's server.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Headers, MandateClient

PHOTOS_WRITER = "PhotosWriter"


def _photo(account_id: str, key: str = "2026/a.jpg") -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:photos/{key}"


def _photos_writer(account_id: str) -> list[dict[str, Any]]:
    return [
        {
            "Effect": "Allow",
            "Action": ["oss:PutObject", "oss:GetObject"],
            "Resource": f"acs:oss:*:{account_id}:photos/*",
        },
        {
            "Effect": "Deny",
            "Action": "oss:*",
            "Resource": f"acs:oss:*:{account_id}:photos/private/*",
        },
    ]


def _employee(api: MandateClient, name: str = "alice") -> tuple[str, Headers, Headers]:
    """An account whose employee holds PhotosWriter: (account, root headers, employee headers)."""
    account_id, root = api.open_account("Acme")
    employee = api.create_user(account_id, root, name)
    api.create_policy(account_id, root, PHOTOS_WRITER, _photos_writer(account_id))
    api.attach(account_id, root, f"users/{name}", "Custom", PHOTOS_WRITER)
    return account_id, root, employee


def test_the_admin_opens_an_account_and_hands_out_the_root_key_once(api: MandateClient) -> None:
    """Opening an account answers its id, its root ARN and the root AccessKey with a position."""
    response = api.post("/v1/accounts", json={"name": "Acme"}, headers=api.admin)
    assert response.status_code == 201
    body = response.json()
    account_id = body["account_id"]
    assert len(account_id) == 16
    assert account_id.isdigit()
    assert body["root_arn"] == f"acs:ram::{account_id}:root"
    assert set(body["root_access_key"]) == {"access_key_id", "access_key_secret"}
    assert body["position"] > 0
    root = api.basic(**body["root_access_key"])
    identity = api.get(f"/v1/accounts/{account_id}", headers=root)
    assert identity.status_code == 200
    assert identity.json()["status"] == "open"
    assert body["root_access_key"]["access_key_secret"] not in identity.text


def test_an_employee_inside_its_policy_is_allowed_and_billed_to_the_owner(
    api: MandateClient,
) -> None:
    """An employee's request that its policy allows is allowed, billed to the owner's account."""
    account_id, _, alice = _employee(api)
    answer = api.authorize(alice, action="oss:PutObject", resource=_photo(account_id))
    assert answer["decision"] == "Allow"
    assert answer["allowed"] is True
    assert answer["billed_account"] == account_id
    assert answer["chain"] == [f"acs:ram::{account_id}:user/alice"]
    assert answer["matched"] == [
        {
            "layer": "identity",
            "policy_type": "Custom",
            "policy_name": PHOTOS_WRITER,
            "version": "v1",
            "statement": 0,
            "effect": "Allow",
            "via": None,
        }
    ]
    assert answer["reason"]


def test_an_employee_outside_its_policy_is_denied_with_the_reason(api: MandateClient) -> None:
    """A request no statement allows is an implicit deny; a matching Deny is an explicit one."""
    account_id, _, alice = _employee(api)
    implicit = api.authorize(alice, action="oss:DeleteObject", resource=_photo(account_id))
    assert implicit["decision"] == "ImplicitDeny"
    assert implicit["allowed"] is False
    assert implicit["matched"] == []
    assert implicit["billed_account"] is None
    assert "no statement allows" in implicit["reason"]

    explicit = api.authorize(
        alice, action="oss:GetObject", resource=_photo(account_id, "private/b.jpg")
    )
    assert explicit["decision"] == "ExplicitDeny"
    assert explicit["billed_account"] is None
    assert [(m["statement"], m["effect"]) for m in explicit["matched"]] == [(1, "Deny")]
    assert "Deny" in explicit["reason"]


def test_a_detached_policy_no_longer_allows_the_next_decision(api: MandateClient) -> None:
    """After the owner detaches the policy, the employee's very next decision denies."""
    account_id, root, alice = _employee(api)
    request = {"action": "oss:GetObject", "resource": _photo(account_id)}
    assert api.authorize(alice, **request)["allowed"] is True
    detached = api.delete(
        f"/v1/accounts/{account_id}/users/alice/policies/Custom/{PHOTOS_WRITER}", headers=root
    )
    assert detached.status_code == 200
    assert detached.json()["attached"] is False
    answer = api.authorize(alice, **request)
    assert answer["decision"] == "ImplicitDeny"
    assert answer["position"] >= detached.json()["position"]


def test_a_deleted_employees_key_is_refused_with_a_reason(api: MandateClient) -> None:
    """Deleting the user (with its policies) makes its key 401, even once the name is reused."""
    account_id, root, alice = _employee(api)
    deleted = api.delete(f"/v1/accounts/{account_id}/users/alice?detach=true", headers=root)
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    request = {"action": "oss:GetObject", "resource": _photo(account_id)}
    refused = api.post("/v1/authorize", json=request, headers=alice)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "deleted" in refused.json()["detail"]

    api.create_user(account_id, root, "alice")
    again = api.post("/v1/authorize", json=request, headers=alice)
    assert again.status_code == 401


def test_an_employee_without_ram_create_user_gets_403_on_creating_users(
    api: MandateClient,
) -> None:
    """Management calls are decided by the employee's own policies: no ram:CreateUser, no user."""
    account_id, root, alice = _employee(api)
    users = f"/v1/accounts/{account_id}/users"
    refused = api.post(users, json={"user_name": "bob"}, headers=alice)
    assert refused.status_code == 403
    body = refused.json()
    assert "ram:CreateUser" in body["detail"]
    assert body["decision"]["decision"] == "ImplicitDeny"
    assert api.get(f"{users}/bob", headers=root).status_code == 404

    api.attach(account_id, root, "users/alice", "System", "AliyunRAMFullAccess")
    assert api.post(users, json={"user_name": "bob"}, headers=alice).status_code == 201


def test_an_administrator_is_refused_on_another_accounts_entities(api: MandateClient) -> None:
    """AdministratorAccess reaches only its own account: 403 on another's, and a deny there."""
    account_id, root = api.open_account("Acme")
    other_id, other_root = api.open_account("Globex")
    api.create_user(other_id, other_root, "mallory")
    admin = api.create_user(account_id, root, "ada")
    api.attach(account_id, root, "users/ada", "System", "AdministratorAccess")

    assert api.get(f"/v1/accounts/{account_id}/users", headers=admin).status_code == 200
    assert api.get(f"/v1/accounts/{other_id}/users", headers=admin).status_code == 403
    created = api.post(f"/v1/accounts/{other_id}/users", json={"user_name": "x"}, headers=admin)
    assert created.status_code == 403
    assert api.get(f"/v1/accounts/{other_id}/users/mallory", headers=admin).status_code == 403

    own = api.authorize(admin, action="oss:GetObject", resource=_photo(account_id))
    assert own["decision"] == "Allow"
    assert own["billed_account"] == account_id
    foreign = api.authorize(admin, action="oss:GetObject", resource=_photo(other_id))
    assert foreign["decision"] == "ImplicitDeny"
    assert foreign["billed_account"] is None
    assert "own account" in foreign["reason"]


def test_a_self_decision_may_not_vouch_for_its_own_source_ip(api: MandateClient) -> None:
    """A caller deciding for itself may pass service keys but not acs: keys (400 naming the key)."""
    account_id, _, alice = _employee(api)
    request = {"action": "oss:GetObject", "resource": _photo(account_id)}
    refused = api.post(
        "/v1/authorize",
        json={**request, "context": {"acs:SourceIp": "10.1.2.3"}},
        headers=alice,
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["context.acs:sourceip"]

    service_key = api.authorize(alice, **request, context={"oss:Prefix": "2026/"})
    assert service_key["decision"] == "Allow"


def test_an_enforcement_point_vouches_for_its_clients_source_ip(api: MandateClient) -> None:
    """The root or the admin deciding for a client's credentials may set acs:SourceIp."""
    account_id, root = api.open_account("Acme")
    users = f"/v1/accounts/{account_id}/users"
    assert api.post(users, json={"user_name": "alice"}, headers=root).status_code == 201
    issued = api.post(f"{users}/alice/access-keys", headers=root).json()
    credentials = {k: issued[k] for k in ("access_key_id", "access_key_secret")}
    alice = api.basic(**credentials)
    api.create_policy(
        account_id,
        root,
        "OfficeOnly",
        [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": f"acs:oss:*:{account_id}:photos/*",
                "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
            }
        ],
    )
    api.attach(account_id, root, "users/alice", "Custom", "OfficeOnly")
    request = {"action": "oss:GetObject", "resource": _photo(account_id)}

    # Deciding for itself, alice's source IP is her connection's (127.0.0.1): outside 10/8.
    assert api.authorize(alice, **request)["decision"] == "ImplicitDeny"
    for enforcement_point in (root, api.admin):
        inside = api.authorize(
            enforcement_point,
            **request,
            credentials=credentials,
            context={"acs:SourceIp": "10.1.2.3"},
        )
        assert inside["decision"] == "Allow"
        assert inside["matched"][0]["policy_name"] == "OfficeOnly"
        assert inside["billed_account"] == account_id
        outside = api.authorize(
            enforcement_point,
            **request,
            credentials=credentials,
            context={"acs:SourceIp": "192.168.1.20"},
        )
        assert outside["decision"] == "ImplicitDeny"
        assert outside["billed_account"] is None


def test_the_principal_form_answers_for_a_user_arn(api: MandateClient) -> None:
    """The root asks "could this user do it?" by ARN and hears the user's own answer."""
    account_id, root, _ = _employee(api)
    alice_arn = f"acs:ram::{account_id}:user/alice"
    allowed = api.authorize(
        root, action="oss:PutObject", resource=_photo(account_id), principal=alice_arn
    )
    assert allowed["decision"] == "Allow"
    assert allowed["chain"] == [alice_arn]
    assert allowed["matched"][0]["policy_name"] == PHOTOS_WRITER
    denied = api.authorize(
        root, action="ecs:StartInstance", resource=_photo(account_id), principal=alice_arn
    )
    assert denied["decision"] == "ImplicitDeny"


def test_a_group_members_permission_names_the_group_it_came_through(api: MandateClient) -> None:
    """A policy inherited from a group is matched with ``via`` = the group's ARN until removal."""
    account_id, root = api.open_account("Acme")
    bob = api.create_user(account_id, root, "bob")
    groups = f"/v1/accounts/{account_id}/groups"
    assert api.post(groups, json={"group_name": "ops"}, headers=root).status_code == 201
    assert api.put(f"{groups}/ops/members/bob", headers=root).status_code == 200
    api.attach(account_id, root, "groups/ops", "System", "AliyunECSFullAccess")
    instance = f"acs:ecs:cn-hangzhou:{account_id}:instance/i-42"

    answer = api.authorize(bob, action="ecs:StartInstance", resource=instance)
    assert answer["decision"] == "Allow"
    assert answer["matched"] == [
        {
            "layer": "identity",
            "policy_type": "System",
            "policy_name": "AliyunECSFullAccess",
            "version": "v1",
            "statement": 0,
            "effect": "Allow",
            "via": f"acs:ram::{account_id}:group/ops",
        }
    ]
    assert api.delete(f"{groups}/ops/members/bob", headers=root).status_code == 200
    after = api.authorize(bob, action="ecs:StartInstance", resource=instance)
    assert after["decision"] == "ImplicitDeny"


def test_min_position_beyond_the_head_is_400_and_a_reached_one_is_served(
    api: MandateClient,
) -> None:
    """``Min-Position`` (header or body) beyond the log's head is refused; a reachable one works."""
    account_id, root, alice = _employee(api)
    head = api.log_head()
    users = f"/v1/accounts/{account_id}/users"
    beyond = api.get(users, headers={**root, "Min-Position": str(head + 1000)})
    assert beyond.status_code == 400
    assert [e["field"] for e in beyond.json()["errors"]] == ["Min-Position"]
    reached = api.get(users, headers={**root, "Min-Position": str(head)})
    assert reached.status_code == 200

    request = {"action": "oss:GetObject", "resource": _photo(account_id)}
    in_body = api.post(
        "/v1/authorize", json={**request, "min_position": head + 1000}, headers=alice
    )
    assert in_body.status_code == 400
    assert [e["field"] for e in in_body.json()["errors"]] == ["min_position"]
    answer = api.authorize(alice, **request, min_position=head)
    assert answer["allowed"] is True
    assert answer["position"] >= head


def test_every_write_answers_with_an_increasing_position(api: MandateClient) -> None:
    """Each write of the scenario answers a ledger position greater than the one before it."""
    opened = api.post("/v1/accounts", json={"name": "Acme"}, headers=api.admin).json()
    account_id = opened["account_id"]
    root = api.basic(**opened["root_access_key"])
    base = f"/v1/accounts/{account_id}"
    document = {"Version": "1", "Statement": _photos_writer(account_id)}
    writes = [
        ("POST", f"{base}/users", {"user_name": "carol"}),
        ("POST", f"{base}/users/carol/access-keys", None),
        ("POST", f"{base}/groups", {"group_name": "ops"}),
        ("PUT", f"{base}/groups/ops/members/carol", None),
        ("POST", f"{base}/policies", {"policy_name": "P", "policy_document": document}),
        ("PUT", f"{base}/users/carol/policies/Custom/P", None),
        ("PUT", f"{base}/groups/ops/policies/System/ReadOnlyAccess", None),
        ("DELETE", f"{base}/users/carol/policies/Custom/P", None),
        ("DELETE", f"{base}/groups/ops/members/carol", None),
        ("DELETE", f"{base}/users/carol", None),
    ]
    positions = [opened["position"]]
    for method, path, body in writes:
        response = api.request(method, path, json=body, headers=root)
        assert response.status_code in (200, 201), (method, path, response.text)
        positions.append(response.json()["position"])
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
