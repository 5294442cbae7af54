"""Folders renamed and deleted, control policies updated and deleted, over ``/v1``, on both
stores: PATCH and DELETE on ``…/resource-directory/folders/{folder_id}`` and
``…/resource-directory/control-policies/{policy_name}``, authorised as
``resourcemanager:UpdateFolder|DeleteFolder|UpdateControlPolicy|DeleteControlPolicy``. Bad
input is problem+json naming the field and why; every refusal writes nothing.

DeleteFolder: https://www.alibabacloud.com/help/en/resource-management/api-deletefolder
UpdateFolder: https://www.alibabacloud.com/help/en/resource-management/api-updatefolder
UpdateControlPolicy: https://www.alibabacloud.com/help/en/resource-management/api-updatecontrolpolicy
DeleteControlPolicy: https://www.alibabacloud.com/help/en/resource-management/api-deletecontrolpolicy
Enable/DisableControlPolicy (``PUT …/control-policy-status``):
https://www.alibabacloud.com/help/en/resource-management/api-disablecontrolpolicy
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mandate.domain.permissions.resource_directory import control_policy_arn
from tests.e2e.conftest import MandateClient
from tests.e2e.test_resource_directory_api import NO_ECS, _join, _now, _problem, _set_up, _tick

NO_OSS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "oss:*", "Resource": "*"}]}


def _refused(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    _problem(response, status)
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def _fields(body: dict[str, Any]) -> list[str]:
    assert all(error["reason"] for error in body["errors"]), body
    return [error["field"] for error in body["errors"]]


def test_folders_are_renamed_and_deleted_only_when_empty(api: MandateClient) -> None:
    """A folder holding a folder or a member is not deleted (409
    ``DeleteConflict.Folder.SubFolder``, ``DeleteConflict.Folder.Account``); a new name is 1
    to 24 characters and unique in the directory."""
    management, root_m, member, root_a = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    root = api.post(rd, headers=root_m).json()["root_folder_id"]

    def folder(name: str, parent: str) -> str:
        made = api.post(
            f"{rd}/folders", json={"parent_folder_id": parent, "folder_name": name}, headers=root_m
        )
        assert made.status_code == 201, made.text
        folder_id: str = made.json()["folder_id"]
        return folder_id

    prod = folder("prod", root)
    team = folder("team", prod)
    bad = {"parent_folder_id": root, "folder_name": "a b/<c>"}
    _refused(
        api.post(f"{rd}/folders", json=bad, headers=root_m), 400, "InvalidParameter.Folder.Name"
    )
    _join(api, management, root_m, member, root_a)
    moved = api.put(f"{rd}/accounts/{member}", json={"folder_id": team}, headers=root_m)
    assert moved.status_code == 200, moved.text

    renamed = api.patch(f"{rd}/folders/{team}", json={"folder_name": "squad"}, headers=root_m)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["folder_name"] == "squad"
    names = {
        f["folder_id"]: f["folder_name"] for f in api.get(rd, headers=root_m).json()["folders"]
    }
    assert names == {root: "Root", prod: "prod", team: "squad"}

    head = api.log_head()
    long = api.patch(f"{rd}/folders/{prod}", json={"folder_name": "x" * 25}, headers=root_m)
    assert _fields(_refused(long, 400)) == ["folder_name"]
    unknown = api.patch(f"{rd}/folders/{prod}", json={"name": "p"}, headers=root_m)
    assert "name" in _fields(_refused(unknown, 400))
    taken = api.patch(f"{rd}/folders/{prod}", json={"folder_name": "squad"}, headers=root_m)
    _refused(taken, 409, "Duplicate.FolderName")
    root_renamed = api.patch(f"{rd}/folders/{root}", json={"folder_name": "top"}, headers=root_m)
    assert _fields(_refused(root_renamed, 400, "InvalidParameter.FolderId")) == ["folder_id"]
    _refused(
        api.delete(f"{rd}/folders/{prod}", headers=root_m), 409, "DeleteConflict.Folder.SubFolder"
    )
    _refused(
        api.delete(f"{rd}/folders/{team}", headers=root_m), 409, "DeleteConflict.Folder.Account"
    )
    _refused(api.delete(f"{rd}/folders/fd-none", headers=root_m), 404, "EntityNotExist.Folder")
    _refused(api.delete(f"{rd}/folders/{team}", headers=root_a), 403)  # a member: never
    assert api.log_head() == head  # refused: nothing written

    api.put(f"{rd}/accounts/{member}", json={"folder_id": root}, headers=root_m)
    for folder_id in (team, prod):
        deleted = api.delete(f"{rd}/folders/{folder_id}", headers=root_m)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted"] is True
    tree = api.get(rd, headers=root_m).json()
    assert [f["folder_id"] for f in tree["folders"]] == [root]


def test_a_control_policy_updated_bounds_from_then_on_and_is_deleted_once_detached(
    api: MandateClient,
) -> None:
    """A new document bounds the member's RAM user from its update on (as of before, the old
    one answers); a new name carries the attachments; a policy still attached, or the system
    policy, is not deleted."""
    management, root_m, member, root_a = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    api.post(rd, headers=root_m)
    _join(api, management, root_m, member, root_a)
    created = api.post(
        f"{rd}/control-policies",
        json={"policy_name": "Guard", "policy_document": NO_ECS, "description": "no ECS"},
        headers=root_m,
    )
    assert created.status_code == 201, created.text
    assert api.put(f"{rd}/attachments/{member}/Guard", headers=root_m).status_code == 200
    dev = f"acs:ram::{member}:user/dev"
    ecs = {"principal": dev, "action": "ecs:RunInstances", "resource": f"acs:ecs:*:{member}:i/*"}
    oss = {"principal": dev, "action": "oss:GetObject", "resource": f"acs:oss:*:{member}:b/o"}
    assert api.authorize(root_a, **ecs)["decision"] == "ExplicitDeny"
    _tick()
    before = _now()
    _tick()

    policy = f"{rd}/control-policies/Guard"
    updated = api.patch(policy, json={"policy_document": NO_OSS}, headers=root_m)
    assert updated.status_code == 200, updated.text
    assert api.authorize(root_a, **ecs)["decision"] == "Allow"
    assert api.authorize(root_a, **oss)["decision"] == "ExplicitDeny"
    assert api.authorize(root_a, **ecs, as_of=before)["decision"] == "ExplicitDeny"
    assert api.authorize(root_a, **oss, as_of=before)["decision"] == "Allow"

    head = api.log_head()
    _refused(api.patch(policy, json={}, headers=root_m), 400, "MissingParameter")
    bad = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "oss:*"}]}
    malformed = _refused(api.patch(policy, json={"policy_document": bad}, headers=root_m), 400)
    assert all(field.startswith("document") for field in _fields(malformed))
    long = api.patch(policy, json={"description": "d" * 1025}, headers=root_m)
    assert _fields(_refused(long, 400)) == ["description"]
    clash = api.patch(policy, json={"new_policy_name": "FullAliyunAccess"}, headers=root_m)
    assert _fields(_refused(clash, 400, "InvalidParameter.PolicyName")) == ["new_policy_name"]
    system = api.patch(
        f"{rd}/control-policies/FullAliyunAccess", json={"description": "x"}, headers=root_m
    )
    _refused(system, 409, "NoPermission.SystemControlPolicy")
    _refused(api.delete(policy, headers=root_m), 409, "DeleteConflict.ControlPolicy.Attachment")
    _refused(api.delete(f"{rd}/control-policies/Nothing", headers=root_m), 404)
    _refused(api.patch(policy, json={"description": "x"}, headers=root_a), 403)
    assert api.log_head() == head  # refused: nothing written

    renamed = api.patch(
        policy, json={"new_policy_name": "NoStorage", "description": "no OSS"}, headers=root_m
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["policy_name"] == "NoStorage"
    tree = api.get(rd, headers=root_m).json()
    assert tree["accounts"][0]["control_policies"] == ["FullAliyunAccess", "NoStorage"]
    assert tree["control_policy_descriptions"] == {"NoStorage": "no OSS"}
    denied = api.authorize(root_a, **oss)
    assert [(m["layer"], m["policy_name"]) for m in denied["matched"]] == [("control", "NoStorage")]

    assert api.delete(f"{rd}/attachments/{member}/NoStorage", headers=root_m).status_code == 200
    deleted = api.delete(f"{rd}/control-policies/NoStorage", headers=root_m)
    assert deleted.status_code == 200, deleted.text
    assert api.get(rd, headers=root_m).json()["control_policies"] == []
    assert api.authorize(root_a, **oss)["decision"] == "Allow"


def test_the_control_policy_feature_disabled_bounds_no_one_then_and_as_of_then(
    api: MandateClient,
) -> None:
    """``PUT …/control-policy-status`` (Enable/DisableControlPolicy): disabled, every policy
    is detached and the member's user is bounded by none — live, and as of an instant while
    disabled, where before it the policy denies; attaching is refused (409, nothing
    written); enabled, ``FullAliyunAccess`` is back everywhere, custom policies by hand.
    https://www.alibabacloud.com/help/en/resource-management/api-disablecontrolpolicy"""
    management, root_m, member, root_a = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    api.post(rd, headers=root_m)
    _join(api, management, root_m, member, root_a)
    api.post(
        f"{rd}/control-policies",
        json={"policy_name": "Guard", "policy_document": NO_ECS},
        headers=root_m,
    )
    assert api.put(f"{rd}/attachments/{member}/Guard", headers=root_m).status_code == 200
    dev = f"acs:ram::{member}:user/dev"
    ecs = {"principal": dev, "action": "ecs:RunInstances", "resource": f"acs:ecs:*:{member}:i/*"}
    assert api.get(rd, headers=root_m).json()["control_policy_status"] == "Enabled"
    _tick()
    before = _now()
    _tick()

    status = f"{rd}/control-policy-status"
    off = api.put(status, json={"status": "Disabled"}, headers=root_m)
    assert off.status_code == 200, off.text
    assert off.json()["control_policy_status"] == "Disabled"
    _tick()
    while_off = _now()
    tree = api.get(rd, headers=root_m).json()
    assert tree["control_policy_status"] == "Disabled"
    assert tree["accounts"][0]["control_policies"] == []
    assert tree["control_policies"] == ["Guard"]  # detached, not deleted
    assert api.authorize(root_a, **ecs)["decision"] == "Allow"
    assert api.authorize(root_a, **ecs, as_of=while_off)["decision"] == "Allow"
    assert api.authorize(root_a, **ecs, as_of=before)["decision"] == "ExplicitDeny"

    head = api.log_head()
    attach = api.put(f"{rd}/attachments/{member}/Guard", headers=root_m)
    _refused(attach, 409, "InvalidStatus.ControlPolicy.Disabled")
    _refused(api.put(status, json={"status": "Off"}, headers=root_m), 400)
    _refused(api.put(status, json={"status": "Enabled"}, headers=root_a), 403)
    assert api.put(status, json={"status": "Disabled"}, headers=root_m).status_code == 200
    assert api.log_head() == head  # refused or already so: nothing written

    on = api.put(status, json={"status": "Enabled"}, headers=root_m)
    assert on.status_code == 200, on.text
    tree = api.get(rd, headers=root_m).json()
    assert tree["accounts"][0]["control_policies"] == ["FullAliyunAccess"]
    assert api.authorize(root_a, **ecs)["decision"] == "Allow"
    assert api.put(f"{rd}/attachments/{member}/Guard", headers=root_m).status_code == 200
    assert api.authorize(root_a, **ecs)["decision"] == "ExplicitDeny"
    assert api.authorize(root_a, **ecs, as_of=while_off)["decision"] == "Allow"


def test_the_new_routes_are_in_the_openapi_document(api: MandateClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    base = "/v1/accounts/{account_id}/resource-directory"
    assert set(paths[f"{base}/folders/{{folder_id}}"]) >= {"patch", "delete"}
    assert set(paths[f"{base}/control-policies/{{policy_name}}"]) >= {"patch", "delete"}
    assert set(paths[f"{base}/control-policy-status"]) >= {"put"}
    assert set(paths[f"{base}/handshakes"]) >= {"get", "post"}
    assert set(paths[f"{base}/accounts/{{member_account_id}}"]) >= {"put", "delete"}
    assert set(paths["/v1/accounts/{account_id}/handshakes/{handshake_id}/accept"]) >= {"post"}


def test_a_rename_is_authorised_on_the_new_name_too(api: MandateClient) -> None:
    """A RAM user allowed UpdateControlPolicy on ``controlpolicy/team-*`` renames within it
    but not to ``prod-x``: a rename is the same action on the new name's ARN (403, nothing
    written)."""
    management, root_m, _, _ = _set_up(api)
    rd = f"/v1/accounts/{management}/resource-directory"
    api.post(rd, headers=root_m)
    made = api.post(
        f"{rd}/control-policies",
        json={"policy_name": "team-a", "policy_document": NO_ECS},
        headers=root_m,
    )
    assert made.status_code == 201, made.text
    ops = api.create_user(management, root_m, "ops")
    team = control_policy_arn(management, "team-*")
    statement = {"Effect": "Allow", "Action": "resourcemanager:UpdateControlPolicy"}
    api.create_policy(management, root_m, "TeamPolicies", [{**statement, "Resource": team}])
    api.attach(management, root_m, "users/ops", "Custom", "TeamPolicies")
    head = api.log_head()
    out = api.patch(
        f"{rd}/control-policies/team-a", json={"new_policy_name": "prod-x"}, headers=ops
    )
    _refused(out, 403)
    assert api.log_head() == head
    within = api.patch(
        f"{rd}/control-policies/team-a", json={"new_policy_name": "team-b"}, headers=ops
    )
    assert within.status_code == 200, within.text
    assert api.get(rd, headers=root_m).json()["control_policies"] == ["team-b"]


def test_an_account_joins_only_by_accepting_an_invitation(api: MandateClient) -> None:
    """``PUT …/accounts/{member}`` moves members only: an account that exists and one that
    does not are refused alike (404, nothing written). ``POST …/resource-directory/
    handshakes`` invites; only the invited account accepts (``POST /v1/accounts/{member}/
    handshakes/{id}/accept``) or declines; the inviter cancels (``DELETE``); a third account
    is told 404."""
    management, root_m, member, root_a = _set_up(api)
    stranger, root_s = api.open_account("Stranger")
    rd = f"/v1/accounts/{management}/resource-directory"
    root = api.post(rd, headers=root_m).json()["root_folder_id"]
    head = api.log_head()
    codes = set()
    for outsider in (member, stranger, "1" * 16):
        move = api.put(f"{rd}/accounts/{outsider}", json={"folder_id": root}, headers=root_m)
        codes.add((move.status_code, _refused(move, 404)["code"]))
    assert codes == {(404, "EntityNotExist.Account")}
    assert api.log_head() == head

    def invite() -> str:
        made = api.post(f"{rd}/handshakes", json={"target_account_id": member}, headers=root_m)
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "Pending"
        handshake: str = made.json()["handshake_id"]
        return handshake

    first = invite()
    head = api.log_head()  # one pending invitation per account and directory
    again = api.post(f"{rd}/handshakes", json={"target_account_id": member}, headers=root_m)
    _refused(again, 409, "Duplicate.Handshake")
    mine = f"/v1/accounts/{member}/handshakes"
    listed = api.get(mine, headers=root_a).json()["handshakes"]
    assert [h["handshake_id"] for h in listed] == [first]
    made = datetime.fromisoformat(listed[0]["created_at"])
    assert datetime.fromisoformat(listed[0]["expires_at"]) == made + timedelta(days=14)
    _refused(api.post(f"{mine}/{first}/accept", headers=root_m), 403)  # not its account
    theirs = f"/v1/accounts/{stranger}/handshakes/{first}"
    _refused(api.get(theirs, headers=root_s), 404, "EntityNotExist.Handshake")
    _refused(api.post(f"{theirs}/accept", headers=root_s), 404, "EntityNotExist.Handshake")
    assert api.log_head() == head
    assert api.get(rd, headers=root_m).json()["accounts"] == []

    declined = api.post(f"{mine}/{first}/decline", headers=root_a)
    assert declined.json()["status"] == "Declined", declined.text
    second = invite()  # answered, the account may be invited again
    cancelled = api.delete(f"{rd}/handshakes/{second}", headers=root_m)
    assert cancelled.json()["status"] == "Cancelled", cancelled.text
    third = invite()
    accepted = api.post(f"{mine}/{third}/accept", headers=root_a)
    assert accepted.json()["status"] == "Accepted", accepted.text
    tree = api.get(rd, headers=root_m).json()
    assert [(a["account_id"], a["folder_id"]) for a in tree["accounts"]] == [(member, root)]
    statuses = api.get(f"{rd}/handshakes", headers=root_m).json()["handshakes"]
    assert [h["status"] for h in statuses] == ["Declined", "Cancelled", "Accepted"]
    head = api.log_head()
    _refused(api.post(f"{mine}/{first}/accept", headers=root_a), 409, "InvalidStatus.Handshake")
    assert api.log_head() == head

    # RemoveCloudAccount: a member leaves; an account that is none is refused alike
    _refused(api.delete(f"{rd}/accounts/{member}", headers=root_a), 403)
    removed = api.delete(f"{rd}/accounts/{member}", headers=root_m)
    assert removed.status_code == 200, removed.text
    assert api.get(rd, headers=root_m).json()["accounts"] == []
    head = api.log_head()
    for outsider in (member, "1" * 16):
        gone = api.delete(f"{rd}/accounts/{outsider}", headers=root_m)
        _refused(gone, 404, "EntityNotExist.Account")
    assert api.log_head() == head
