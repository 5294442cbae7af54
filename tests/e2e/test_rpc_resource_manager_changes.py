"""Folders renamed and deleted, control policies updated and deleted, through ResourceManager
2020-03-31 at ``/`` by the real SDK (alibabacloud-resourcemanager20200331).

Each action runs the ledger command the /v1 routes run, authorised as
``resourcemanager:<Action>``; each refusal carries Resource Management's code and writes
nothing (the log's head does not move).

DeleteFolder: https://www.alibabacloud.com/help/en/resource-management/api-deletefolder
UpdateFolder: https://www.alibabacloud.com/help/en/resource-management/api-updatefolder
UpdateControlPolicy: https://www.alibabacloud.com/help/en/resource-management/api-updatecontrolpolicy
DeleteControlPolicy: https://www.alibabacloud.com/help/en/resource-management/api-deletecontrolpolicy
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from alibabacloud_resourcemanager20200331 import models as rm

from mandate.api.rpc import rm_control_policies
from mandate.domain.permissions.resource_directory import control_policy_arn
from tests.e2e.rpc_support import Key, RpcServer, rpc_serving
from tests.e2e.test_rpc_resource_manager import NO_ECS, _code_of, _join, _member_with_admin, _rm

NO_OSS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "oss:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def test_folders_are_renamed_and_deleted_only_when_empty(rpc: RpcServer) -> None:
    """UpdateFolder answers the folder with its new name (400
    ``InvalidParameter.Folder.Name.AlreadyUsed`` for a name in use,
    ``InvalidParameter.Folder.Name.Length`` past 24 characters); DeleteFolder is refused 409
    ``DeleteConflict.Folder.SubFolder`` / ``DeleteConflict.Folder.Account`` while the folder
    holds a folder or a member (api-updatefolder, api-deletefolder)."""
    management = rpc.open_account()
    member, _ = _member_with_admin(rpc)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root = client.get_resource_directory().body.resource_directory.root_folder_id
    prod = client.create_folder(rm.CreateFolderRequest(folder_name="prod")).body.folder.folder_id
    team = client.create_folder(
        rm.CreateFolderRequest(folder_name="team", parent_folder_id=prod)
    ).body.folder.folder_id
    _join(rpc, client, member, team)

    renamed = client.update_folder(rm.UpdateFolderRequest(folder_id=team, new_folder_name="squad"))
    folder = renamed.body.folder
    assert (folder.folder_id, folder.folder_name, folder.parent_folder_id) == (team, "squad", prod)
    shown = client.get_folder(rm.GetFolderRequest(folder_id=team)).body.folder
    assert shown.folder_name == "squad"

    head = rpc.head()
    refusals = [
        (rm.UpdateFolderRequest(folder_id=prod, new_folder_name="squad"), 400, ".AlreadyUsed"),
        (rm.UpdateFolderRequest(folder_id=prod, new_folder_name="x" * 25), 400, ".Length"),
        (rm.UpdateFolderRequest(folder_id=prod, new_folder_name="a b/<c>"), 400, ""),
    ]
    for request, status, code in refusals:
        refused = _code_of(partial(client.update_folder, request))
        assert refused == (status, f"InvalidParameter.Folder.Name{code}")
    # CreateFolder answers the same codes (api-createfolder's FolderName: letters, digits,
    # "_", ".", "-" and Chinese characters)
    creations = [("squad", ".AlreadyUsed"), ("x" * 25, ".Length"), ("a b/<c>", "")]
    for name, code in creations:
        refused = _code_of(partial(client.create_folder, rm.CreateFolderRequest(folder_name=name)))
        assert refused == (400, f"InvalidParameter.Folder.Name{code}")
    assert rpc.head() == head
    named = client.create_folder(rm.CreateFolderRequest(folder_name="生产_v1.0-a"))
    assert named.body.folder.folder_name == "生产_v1.0-a"
    client.delete_folder(rm.DeleteFolderRequest(folder_id=named.body.folder.folder_id))
    head = rpc.head()
    nowhere = rm.UpdateFolderRequest(folder_id="fd-none", new_folder_name="y")
    assert _code_of(lambda: client.update_folder(nowhere)) == (404, "EntityNotExists.Folder")
    deletions = {
        prod: (409, "DeleteConflict.Folder.SubFolder"),
        team: (409, "DeleteConflict.Folder.Account"),
        root: (400, "InvalidParameter.FolderId"),
        "fd-none": (404, "EntityNotExists.Folder"),
    }
    for folder_id, refused in deletions.items():
        request = rm.DeleteFolderRequest(folder_id=folder_id)
        assert _code_of(partial(client.delete_folder, request)) == refused, folder_id
    assert rpc.head() == head  # refused calls write no event

    client.move_account(
        rm.MoveAccountRequest(account_id=member.account_id, destination_folder_id=root)
    )
    client.delete_folder(rm.DeleteFolderRequest(folder_id=team))
    client.delete_folder(rm.DeleteFolderRequest(folder_id=prod))
    children = client.list_folders_for_parent(rm.ListFoldersForParentRequest()).body
    assert children.total_count == 0
    gone = rm.GetFolderRequest(folder_id=prod)
    assert _code_of(lambda: client.get_folder(gone)) == (404, "EntityNotExists.Folder")


def _now() -> str:
    time.sleep(0.01)  # instants between events must be distinguishable
    now = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    return now


def test_a_control_policy_is_updated_then_deleted_and_decisions_follow(rpc: RpcServer) -> None:
    """UpdateControlPolicy's NewPolicyDocument bounds the member's RAM user from then on (as of
    before, the old document still answers); NewPolicyName renames it where attached (the
    PolicyId is the name in Mandate); NewDescription is shown. DeleteControlPolicy is refused
    while attached (409 ``DeleteConflict.ControlPolicy.Attachment``: the page names no code)
    and for the system policy (api-updatecontrolpolicy, api-deletecontrolpolicy)."""
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    prod = client.create_folder(rm.CreateFolderRequest(folder_name="prod")).body.folder.folder_id
    _join(rpc, client, member, prod)
    created = client.create_control_policy(
        rm.CreateControlPolicyRequest(
            policy_name="Guard", policy_document=json.dumps(NO_ECS), description="No-ECS"
        )
    ).body.control_policy
    assert created.description == "No-ECS"
    client.attach_control_policy(rm.AttachControlPolicyRequest(policy_id="Guard", target_id=prod))
    dev = f"acs:ram::{member.account_id}:user/dev"
    ecs = {
        "principal": dev,
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member.account_id}:instance/*",
    }
    oss = {
        "principal": dev,
        "action": "oss:GetObject",
        "resource": f"acs:oss:*:{member.account_id}:b/o",
    }
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "ExplicitDeny"
    before = _now()

    updated = client.update_control_policy(
        rm.UpdateControlPolicyRequest(policy_id="Guard", new_policy_document=json.dumps(NO_OSS))
    ).body.control_policy
    assert (updated.policy_id, updated.description) == ("Guard", "No-ECS")
    got = client.get_control_policy(rm.GetControlPolicyRequest(policy_id="Guard"))
    assert json.loads(got.body.control_policy.policy_document) == NO_OSS
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"
    assert rpc.api.authorize(member_headers, **oss)["decision"] == "ExplicitDeny"
    as_of = rpc.api.authorize(member_headers, **ecs, as_of=before)
    assert as_of["decision"] == "ExplicitDeny", as_of  # the document live then

    renamed = client.update_control_policy(
        rm.UpdateControlPolicyRequest(
            policy_id="Guard", new_policy_name="NoStorage", new_description="No-OSS"
        )
    ).body.control_policy
    assert (renamed.policy_id, renamed.policy_name, renamed.description) == (
        "NoStorage",
        "NoStorage",
        "No-OSS",
    )
    assert renamed.attachment_count == "1"
    on_prod = client.list_control_policy_attachments_for_target(
        rm.ListControlPolicyAttachmentsForTargetRequest(target_id=prod)
    ).body.control_policy_attachments.control_policy_attachment
    assert [a.policy_id for a in on_prod] == ["FullAliyunAccess", "NoStorage"]
    denied = rpc.api.authorize(member_headers, **oss)
    assert [(m["layer"], m["policy_name"]) for m in denied["matched"]] == [("control", "NoStorage")]

    head = rpc.head()
    bad = json.dumps({"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*"}]})
    updates = [
        (rm.UpdateControlPolicyRequest(policy_id="Guard", new_description="x"), 404),
        (rm.UpdateControlPolicyRequest(policy_id="FullAliyunAccess", new_description="x"), 409),
        (rm.UpdateControlPolicyRequest(policy_id="NoStorage"), 400),
        (rm.UpdateControlPolicyRequest(policy_id="NoStorage", new_policy_document=bad), 400),
        (
            rm.UpdateControlPolicyRequest(
                policy_id="NoStorage", new_policy_name="FullAliyunAccess"
            ),
            400,
        ),
    ]
    codes = [
        "EntityNotExists.ControlPolicy",
        "NoPermission.SystemControlPolicy",
        "MissingParameter",
        "MalformedPolicyDocument",
        "InvalidParameter.NewPolicyName",
    ]
    for (request, status), code in zip(updates, codes, strict=True):
        assert _code_of(partial(client.update_control_policy, request)) == (status, code)
    deletions = {
        "NoStorage": (409, "DeleteConflict.ControlPolicy.Attachment"),
        "FullAliyunAccess": (409, "NoPermission.SystemControlPolicy"),
        "Guard": (404, "EntityNotExists.ControlPolicy"),
    }
    for name, refused in deletions.items():
        request = rm.DeleteControlPolicyRequest(policy_id=name)
        assert _code_of(partial(client.delete_control_policy, request)) == refused, name
    assert rpc.head() == head  # refused calls write no event

    client.detach_control_policy(
        rm.DetachControlPolicyRequest(policy_id="NoStorage", target_id=prod)
    )
    client.delete_control_policy(rm.DeleteControlPolicyRequest(policy_id="NoStorage"))
    policies = client.list_control_policies(rm.ListControlPoliciesRequest()).body
    assert [p.policy_id for p in policies.control_policies.control_policy] == ["FullAliyunAccess"]
    assert rpc.api.authorize(member_headers, **oss)["decision"] == "Allow"


def test_a_ram_user_needs_the_resourcemanager_action_for_each_change(rpc: RpcServer) -> None:
    management = rpc.open_account()
    headers = rpc.api.basic(management.access_key_id, management.secret)
    root_client = _rm(rpc, management)
    root_client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    prod = root_client.create_folder(rm.CreateFolderRequest(folder_name="prod")).body.folder
    root_client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="Guard", policy_document=json.dumps(NO_ECS))
    )
    user_headers = rpc.api.create_user(management.account_id, headers, "ops")
    key_id, secret = (
        base64.b64decode(user_headers["Authorization"].removeprefix("Basic "))
        .decode()
        .split(":", 1)
    )
    user = _rm(rpc, Key(key_id, secret, management.account_id))
    head = rpc.head()
    calls = [
        lambda: user.update_folder(
            rm.UpdateFolderRequest(folder_id=prod.folder_id, new_folder_name="p")
        ),
        lambda: user.delete_folder(rm.DeleteFolderRequest(folder_id=prod.folder_id)),
        lambda: user.update_control_policy(
            rm.UpdateControlPolicyRequest(policy_id="Guard", new_description="d")
        ),
        lambda: user.delete_control_policy(rm.DeleteControlPolicyRequest(policy_id="Guard")),
    ]
    for call in calls:
        assert _code_of(call) == (403, "NoPermission")
    assert rpc.head() == head
    rpc.api.attach(management.account_id, headers, "users/ops", "System", "AdministratorAccess")
    granted = rpc.head()
    user.delete_folder(rm.DeleteFolderRequest(folder_id=prod.folder_id))
    user.delete_control_policy(rm.DeleteControlPolicyRequest(policy_id="Guard"))
    assert rpc.head() == granted + 2


def test_a_rename_is_authorised_on_the_new_name_too(rpc: RpcServer) -> None:
    """UpdateControlPolicy's NewPolicyName is the same action on the new name's ARN: a user
    allowed it on ``controlpolicy/team-*`` cannot rename to ``prod-x`` (403, nothing
    written), and can within ``team-*``."""
    management = rpc.open_account()
    headers = rpc.api.basic(management.access_key_id, management.secret)
    root_client = _rm(rpc, management)
    root_client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root_client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="team-a", policy_document=json.dumps(NO_ECS))
    )
    user_headers = rpc.api.create_user(management.account_id, headers, "ops")
    key_id, secret = (
        base64.b64decode(user_headers["Authorization"].removeprefix("Basic "))
        .decode()
        .split(":", 1)
    )
    team = control_policy_arn(management.account_id, "team-*")
    allow = {"Effect": "Allow", "Action": "resourcemanager:UpdateControlPolicy", "Resource": team}
    rpc.api.create_policy(management.account_id, headers, "TeamPolicies", [allow])
    rpc.api.attach(management.account_id, headers, "users/ops", "Custom", "TeamPolicies")
    user = _rm(rpc, Key(key_id, secret, management.account_id))
    head = rpc.head()
    out = rm.UpdateControlPolicyRequest(policy_id="team-a", new_policy_name="prod-x")
    assert _code_of(lambda: user.update_control_policy(out)) == (403, "NoPermission")
    assert rpc.head() == head
    within = rm.UpdateControlPolicyRequest(policy_id="team-a", new_policy_name="team-b")
    assert user.update_control_policy(within).body.control_policy.policy_id == "team-b"


def test_a_read_holds_one_state_while_a_rename_applies(
    rpc: RpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetControlPolicy and ListTargetAttachmentsForControlPolicy read the directory once:
    a rename applied between that read and the answer's fields cannot turn the answer into
    a false 404 or a KeyError 500 — the index puts a changed directory in place whole, and the
    view read stays as it was (found by review)."""
    management = rpc.open_account()
    headers = rpc.api.basic(management.access_key_id, management.secret)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root = client.get_resource_directory().body.resource_directory.root_folder_id
    client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="Guard", policy_document=json.dumps(NO_ECS))
    )
    client.attach_control_policy(rm.AttachControlPolicyRequest(policy_id="Guard", target_id=root))
    rd = f"/v1/accounts/{management.account_id}/resource-directory"
    real = rm_control_policies.directory_of
    names = iter(["Guard2", "Guard3"])

    def read_then_rename(ctx: Any) -> Any:
        directory = real(ctx)
        old = next(iter(directory.documents))
        renamed = rpc.api.patch(
            f"{rd}/control-policies/{old}", json={"new_policy_name": next(names)}, headers=headers
        )
        assert renamed.status_code == 200, renamed.text
        return directory

    monkeypatch.setattr(rm_control_policies, "directory_of", read_then_rename)
    got = client.get_control_policy(rm.GetControlPolicyRequest(policy_id="Guard")).body
    assert (got.control_policy.policy_name, got.control_policy.attachment_count) == ("Guard", "1")
    assert json.loads(got.control_policy.policy_document) == NO_ECS
    targets = client.list_target_attachments_for_control_policy(
        rm.ListTargetAttachmentsForControlPolicyRequest(policy_id="Guard2")
    ).body
    assert [t.target_id for t in targets.target_attachments.target_attachment] == [root]
    monkeypatch.setattr(rm_control_policies, "directory_of", real)
    listed = client.list_control_policies(rm.ListControlPoliciesRequest()).body
    names_now = [p.policy_name for p in listed.control_policies.control_policy]
    assert names_now == ["FullAliyunAccess", "Guard3"]
