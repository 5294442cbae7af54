"""Resource Directory and control policies over HTTP, on both stores (issue 16 item 3).

Alibaba Cloud documents the rules checked here: control policies attach to folders and
members and bound every RAM user and role beneath (inheritance down the tree), an explicit
Deny at any level denies, every level must allow, ``FullAliyunAccess`` is attached by default
(deny-list mode) and detaching it begins allow-list mode; the management account and a
member's own Alibaba Cloud account are not bounded
(https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview,
https://www.alibabacloud.com/help/en/resource-management/resource-directory/user-guide/attach-a-custom-access-control-policy,
https://www.alibabacloud.com/help/en/oss/user-guide/control-policy).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.e2e.conftest import Headers, MandateClient

NO_ECS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _tick() -> None:
    time.sleep(0.01)  # instants between events must be distinguishable


def _problem(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    content_type = response.headers["content-type"]  # type: ignore[attr-defined]
    assert content_type.startswith("application/problem+json")


def _set_up(api: MandateClient) -> tuple[str, Headers, str, Headers]:
    management, root_m = api.open_account("Management")
    member, root_a = api.open_account("Member")
    api.create_user(member, root_a, "dev")
    api.attach(member, root_a, "users/dev", "System", "AdministratorAccess")
    return management, root_m, member, root_a


def _join(
    api: MandateClient, management: str, root_m: Headers, member: str, root_a: Headers
) -> str:
    """Invite ``member`` and accept as it (it joins in the root folder); the handshake id."""
    invited = api.post(
        f"/v1/accounts/{management}/resource-directory/handshakes",
        json={"target_account_id": member},
        headers=root_m,
    )
    assert invited.status_code == 201, invited.text
    handshake: str = invited.json()["handshake_id"]
    accepted = api.post(f"/v1/accounts/{member}/handshakes/{handshake}/accept", headers=root_a)
    assert accepted.status_code == 200, accepted.text
    return handshake


def test_a_directory_bounds_the_members_ram_identities_live_and_as_of(api: MandateClient) -> None:
    management, root_m, member, root_a = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    enabled = api.post(rd, headers=root_m)
    assert enabled.status_code == 201, enabled.text
    root = enabled.json()["root_folder_id"]
    _problem(api.post(rd, headers=root_m), 409)  # one directory per management account
    # a member's root cannot touch the management account's directory
    _problem(
        api.post(
            f"{rd}/folders", json={"parent_folder_id": root, "folder_name": "x"}, headers=root_a
        ),
        403,
    )
    made = api.post(
        f"{rd}/folders", json={"parent_folder_id": root, "folder_name": "prod"}, headers=root_m
    )
    assert made.status_code == 201, made.text
    prod = made.json()["folder_id"]
    _problem(
        api.post(
            f"{rd}/folders",
            json={"parent_folder_id": "fd-none", "folder_name": "y"},
            headers=root_m,
        ),
        404,
    )
    _join(api, management, root_m, member, root_a)
    moved = api.put(f"{rd}/accounts/{member}", json={"folder_id": prod}, headers=root_m)
    assert moved.status_code == 200, moved.text

    head = api.log_head()
    bad = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*"}]}
    refused = api.post(
        f"{rd}/control-policies",
        json={"policy_name": "NoEcs", "policy_document": bad},
        headers=root_m,
    )
    _problem(refused, 400)
    assert api.log_head() == head  # refused: nothing written
    created = api.post(
        f"{rd}/control-policies",
        json={"policy_name": "NoEcs", "policy_document": NO_ECS},
        headers=root_m,
    )
    assert created.status_code == 201, created.text

    dev = f"acs:ram::{member}:user/dev"
    ecs = {
        "principal": dev,
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member}:instance/*",
    }
    oss = {"principal": dev, "action": "oss:GetObject", "resource": f"acs:oss:*:{member}:b/o"}
    assert api.authorize(root_a, **ecs)["decision"] == "Allow"  # FullAliyunAccess everywhere
    _tick()
    before = _now()
    _tick()
    attached = api.put(f"{rd}/attachments/{prod}/NoEcs", headers=root_m)
    assert attached.status_code == 200, attached.text
    denied = api.authorize(root_a, **ecs)
    assert denied["decision"] == "ExplicitDeny", denied
    assert [(m["layer"], m["policy_name"], m["via"]) for m in denied["matched"]] == [
        ("control", "NoEcs", prod)
    ]
    root_ecs = {**ecs, "principal": f"acs:ram::{member}:root"}
    assert api.authorize(root_a, **root_ecs)["decision"] == "Allow"  # the member's root: exempt
    assert api.authorize(root_a, **ecs, as_of=before)["decision"] == "Allow"  # as of before
    assert api.authorize(root_a, **oss)["decision"] == "Allow"

    # allow-list at prod: FullAliyunAccess detached, nothing else allows oss there
    detached = api.delete(f"{rd}/attachments/{prod}/FullAliyunAccess", headers=root_m)
    assert detached.status_code == 200, detached.text
    gap = api.authorize(root_a, **oss)
    assert gap["decision"] == "ImplicitDeny", gap
    _problem(api.delete(f"{rd}/attachments/{prod}/FullAliyunAccess", headers=root_m), 404)

    tree = api.get(rd, headers=root_m)
    assert tree.status_code == 200, tree.text
    body = tree.json()
    assert body["root_folder_id"] == root
    assert {f["folder_id"]: f["control_policies"] for f in body["folders"]} == {
        root: ["FullAliyunAccess"],
        prod: ["NoEcs"],
    }
    assert body["accounts"] == [
        {"account_id": member, "folder_id": prod, "control_policies": ["FullAliyunAccess"]}
    ]
    assert body["control_policies"] == ["NoEcs"]


def test_the_routes_are_in_the_openapi_document(api: MandateClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    base = "/v1/accounts/{account_id}/resource-directory"
    for path in (
        "",
        "/folders",
        "/accounts/{member_account_id}",
        "/control-policies",
        "/attachments/{target_id}/{policy_name}",
    ):
        assert base + path in paths
