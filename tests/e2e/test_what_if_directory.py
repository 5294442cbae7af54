"""What-if of Resource Directory changes, over HTTP on both stores.

A control policy bounds the RAM identities of every member beneath where it is attached
(https://help.aliyun.com/en/resource-management/resource-directory/user-guide/control-policy-overview):
a Deny at any level denies, every level must allow. The management account sees its tree and
control policies, not its members' principals, so the answer is per member account
(principal ``acs:ram::<X>:*``, ``layer`` ``control``). Detaching a Deny loses that bound (the
member's users gain), attaching one gains it (they lose), ``FullAliyunAccess`` at one level
never stands in for another's. Every answer is checked against the change made for real
(``_asked_then_made``), and then against ``POST /v1/authorize``.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Headers, MandateClient
from tests.e2e.test_resource_directory_api import NO_ECS, _join, _set_up
from tests.e2e.test_what_if_api import _asked_then_made, _problem, _what_if


def _directory(api: MandateClient) -> tuple[str, Headers, str, Headers, str, str]:
    """Management m with a root folder and ``prod``; member X (user dev, admin) in ``prod``;
    control policy NoEcs created, attached nowhere."""
    m, root_m, x, root_x = _set_up(api)
    rd = f"/v1/accounts/{m}/resource-directory"
    enabled = api.post(rd, headers=root_m)
    assert enabled.status_code == 201, enabled.text
    root = enabled.json()["root_folder_id"]
    made = api.post(
        f"{rd}/folders", json={"parent_folder_id": root, "folder_name": "prod"}, headers=root_m
    )
    assert made.status_code == 201, made.text
    prod = made.json()["folder_id"]
    _join(api, m, root_m, x, root_x)
    api.put(f"{rd}/accounts/{x}", json={"folder_id": prod}, headers=root_m).raise_for_status()
    api.post(
        f"{rd}/control-policies",
        json={"policy_name": "NoEcs", "policy_document": NO_ECS},
        headers=root_m,
    ).raise_for_status()
    return m, root_m, x, root_x, root, prod


def _ecs(api: MandateClient, x: str, root_x: Headers) -> str:
    dev = f"acs:ram::{x}:user/dev"
    resource = f"acs:ecs:*:{x}:instance/*"
    answer = api.authorize(root_x, principal=dev, action="ecs:RunInstances", resource=resource)
    decision: str = answer["decision"]
    return decision


def _bound(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (i["principal"], i["effect"], i["action"], i["layer"], i["policy"], i["via"]) for i in items
    }


def test_attaching_a_deny_loses_and_detaching_it_gains(api: MandateClient) -> None:
    m, root_m, x, root_x, root, prod = _directory(api)
    rd = f"/v1/accounts/{m}/resource-directory"
    members = f"acs:ram::{x}:*"
    assert _ecs(api, x, root_x) == "Allow"
    change = {"attach_control_policy": {"target_id": prod, "policy_name": "NoEcs"}}
    answer = _asked_then_made(
        api, m, root_m, change, lambda: api.put(f"{rd}/attachments/{prod}/NoEcs", headers=root_m)
    )
    assert _bound(answer["gain"]) == {(members, "Deny", "ecs:*", "control", "NoEcs", prod)}
    [entry] = answer["gain"]
    assert entry["chain"] == [
        f"acs:resourcemanager::{m}:folder/{root}",
        f"acs:resourcemanager::{m}:folder/{prod}",
        f"acs:resourcemanager::{m}:account/{x}",
    ]
    assert answer["lose"] == []
    assert answer["principals_affected"] == [members]
    assert _ecs(api, x, root_x) == "ExplicitDeny"  # the member's users lose ECS

    change = {"detach_control_policy": {"target_id": prod, "policy_name": "NoEcs"}}
    answer = _asked_then_made(
        api,
        m,
        root_m,
        change,
        lambda: api.delete(f"{rd}/attachments/{prod}/NoEcs", headers=root_m),
    )
    assert _bound(answer["lose"]) == {(members, "Deny", "ecs:*", "control", "NoEcs", prod)}
    assert answer["gain"] == []
    assert _ecs(api, x, root_x) == "Allow"  # and gain it back


def test_a_deny_elsewhere_reroutes_and_an_allow_never_stands_in_for_another_levels(
    api: MandateClient,
) -> None:
    m, root_m, x, root_x, root, _ = _directory(api)
    rd = f"/v1/accounts/{m}/resource-directory"
    for node in (root, x):
        api.put(f"{rd}/attachments/{node}/NoEcs", headers=root_m).raise_for_status()
    change = {"detach_control_policy": {"target_id": x, "policy_name": "NoEcs"}}
    answer = _asked_then_made(
        api, m, root_m, change, lambda: api.delete(f"{rd}/attachments/{x}/NoEcs", headers=root_m)
    )
    assert answer["lose"] == []  # the root folder still denies
    assert answer["gain"] == []
    assert _bound(answer["rerouted"]) == {
        (f"acs:ram::{x}:*", "Deny", "ecs:*", "control", "NoEcs", x)
    }
    assert _ecs(api, x, root_x) == "ExplicitDeny"
    # FullAliyunAccess stays at the root folder and prod, but the member's own level then
    # allows nothing: lost, not rerouted
    change = {"detach_control_policy": {"target_id": x, "policy_name": "FullAliyunAccess"}}
    answer = _asked_then_made(
        api,
        m,
        root_m,
        change,
        lambda: api.delete(f"{rd}/attachments/{x}/FullAliyunAccess", headers=root_m),
    )
    assert _bound(answer["lose"]) == {
        (f"acs:ram::{x}:*", "Allow", "*", "control", "FullAliyunAccess", x)
    }
    assert answer["rerouted"] == []
    dev = f"acs:ram::{x}:user/dev"
    oss = api.authorize(root_x, principal=dev, action="oss:GetObject", resource="acs:oss:*:*:b/o")
    assert oss["decision"] != "Allow"


def test_moving_a_member_changes_the_levels_it_is_bounded_by(api: MandateClient) -> None:
    m, root_m, x, root_x, root, prod = _directory(api)
    rd = f"/v1/accounts/{m}/resource-directory"
    api.put(f"{rd}/attachments/{prod}/NoEcs", headers=root_m).raise_for_status()
    assert _ecs(api, x, root_x) == "ExplicitDeny"
    change = {"move_account": {"account_id": x, "folder_id": root}}
    answer = _asked_then_made(
        api,
        m,
        root_m,
        change,
        lambda: api.put(f"{rd}/accounts/{x}", json={"folder_id": root}, headers=root_m),
    )
    members = f"acs:ram::{x}:*"
    assert _bound(answer["lose"]) == {
        (members, "Deny", "ecs:*", "control", "NoEcs", prod),
        (members, "Allow", "*", "control", "FullAliyunAccess", prod),
    }
    assert answer["gain"] == []
    assert _ecs(api, x, root_x) == "Allow"


def test_refusals_and_bad_input_write_nothing(api: MandateClient) -> None:
    m, root_m, x, root_x, root, prod = _directory(api)
    other, other_root = api.open_account("Other")
    head = api.log_head()
    detach = {"detach_control_policy": {"target_id": prod, "policy_name": "NoEcs"}}
    _problem(_what_if(api, m, root_m, detach), 404)  # attached nowhere: as the real DELETE
    attach = {"attach_control_policy": {"target_id": prod, "policy_name": "Nothing"}}
    _problem(_what_if(api, m, root_m, attach), 404)
    move = {"move_account": {"account_id": other, "folder_id": root}}
    _problem(_what_if(api, m, root_m, move), 404)  # not a member
    _problem(_what_if(api, m, root_m, {**detach, **attach}), 400)
    bad = _problem(
        _what_if(api, m, root_m, {"attach_control_policy": {"target_id": "", "policy_name": "x"}}),
        400,
    )
    assert "attach_control_policy.target_id" in str(bad)
    good = {"attach_control_policy": {"target_id": prod, "policy_name": "NoEcs"}}
    _problem(_what_if(api, m, root_x, good), 403)  # a member may not change the directory
    _problem(_what_if(api, x, root_x, good), 404)  # nor ask about a directory it has none of
    _problem(_what_if(api, m, other_root, good), 403)
    _problem(_what_if(api, m, api.admin, good), 403)
    assert api.log_head() == head
    # a user of m allowed the attachment and the effective permissions, not the directory's
    # read, is refused; with it, answered
    ops = api.create_user(m, root_m, "ops")
    allow = [
        {
            "Effect": "Allow",
            "Action": ["resourcemanager:AttachControlPolicy", "ram:GetEffectivePermissions"],
            "Resource": "*",
        }
    ]
    api.create_policy(m, root_m, "Attacher", allow)
    api.attach(m, root_m, "users/ops", "Custom", "Attacher")
    head = api.log_head()
    refused = _problem(_what_if(api, m, ops, good), 403)
    assert "GetResourceDirectory" in str(refused)
    read = [{"Effect": "Allow", "Action": "resourcemanager:GetResourceDirectory", "Resource": "*"}]
    api.create_policy(m, root_m, "DirectoryReader", read)
    api.attach(m, root_m, "users/ops", "Custom", "DirectoryReader")
    head = api.log_head()
    answered = _what_if(api, m, ops, good)
    assert answered.status_code == 200, answered.text
    assert answered.json()["principals_affected"] == [f"acs:ram::{x}:*"]
    assert api.log_head() == head
