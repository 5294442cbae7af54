"""Resource Directory through ResourceManager 2020-03-31 at ``/``, by the real SDK
(alibabacloud-resourcemanager20200331).

The management account's root enables a directory, makes a folder, moves a member account in
and attaches a control policy denying ECS: the member's RAM user is then denied ECS by the
same decision ``/v1/authorize`` makes (and allowed again once it is detached). Refusals carry
Resource Management's codes (``EntityNotExists.*``) and write nothing. DisableControlPolicy
detaches every control policy (the member's user is bounded by none, attaching is refused)
until EnableControlPolicy puts ``FullAliyunAccess`` back everywhere. Folders renamed and
deleted, control policies updated and deleted: ``test_rpc_resource_manager_changes``.

API: https://www.alibabacloud.com/help/en/resource-management/resource-directory/developer-reference/api-resourcemanager-2020-03-31-dir-resource-directory
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_resourcemanager20200331 import models as rm
from alibabacloud_resourcemanager20200331.client import Client as RmClient
from alibabacloud_tea_openapi.models import Config

from tests.e2e.rpc_support import Key, RpcServer, TeaError, core_call, rpc_serving

NO_ECS = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
RM_VERSION = "2020-03-31"


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def _rm(rpc: RpcServer, key: Key) -> RmClient:
    return RmClient(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.secret,
            endpoint=rpc.endpoint,
            protocol="http",
        )
    )


def _code_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(TeaError) as caught:
        call()
    return caught.value.status_code, caught.value.code


def _member_with_admin(rpc: RpcServer) -> tuple[Key, dict[str, str]]:
    """A member-to-be whose RAM user ``dev`` holds AdministratorAccess; its root's headers."""
    member = rpc.open_account()
    headers = rpc.api.basic(member.access_key_id, member.secret)
    rpc.api.create_user(member.account_id, headers, "dev")
    rpc.api.attach(member.account_id, headers, "users/dev", "System", "AdministratorAccess")
    return member, headers


def _join(rpc: RpcServer, client: RmClient, member: Key, folder: str | None = None) -> str:
    """InviteAccountToResourceDirectory, AcceptHandshake as the member (it joins in the root
    folder), then MoveAccount to ``folder`` when given; the handshake id."""
    invite = rm.InviteAccountToResourceDirectoryRequest(
        target_entity=member.account_id, target_type="Account"
    )
    handshake = client.invite_account_to_resource_directory(invite).body.handshake
    accept = rm.AcceptHandshakeRequest(handshake_id=handshake.handshake_id)
    assert _rm(rpc, member).accept_handshake(accept).body.handshake.status == "Accepted"
    if folder is not None:
        move = rm.MoveAccountRequest(account_id=member.account_id, destination_folder_id=folder)
        client.move_account(move)
    return str(handshake.handshake_id)


def test_a_control_policy_attached_over_rpc_denies_a_members_ram_user(rpc: RpcServer) -> None:
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    client = _rm(rpc, management)
    enabled = client.enable_resource_directory(
        rm.EnableResourceDirectoryRequest(enable_mode="CurrentAccount")
    ).body.resource_directory
    root = enabled.root_folder_id
    assert root.startswith("r-")
    assert enabled.master_account_id == management.account_id
    got = client.get_resource_directory().body.resource_directory
    assert (got.root_folder_id, got.control_policy_status) == (root, "Enabled")

    folder = client.create_folder(
        rm.CreateFolderRequest(folder_name="prod", parent_folder_id=root)
    ).body.folder
    prod = folder.folder_id
    assert (folder.folder_name, folder.parent_folder_id) == ("prod", root)
    shown = client.get_folder(rm.GetFolderRequest(folder_id=prod)).body.folder
    assert shown.resource_directory_path == f"{root}/{prod}"
    children = client.list_folders_for_parent(rm.ListFoldersForParentRequest()).body
    assert [f.folder_id for f in children.folders.folder] == [prod]
    assert children.total_count == 1

    _join(rpc, client, member, prod)
    accounts = client.list_accounts(rm.ListAccountsRequest()).body.accounts.account
    assert [(a.account_id, a.folder_id) for a in accounts] == [(member.account_id, prod)]
    account = client.get_account(rm.GetAccountRequest(account_id=member.account_id)).body.account
    assert account.resource_directory_path == f"{root}/{prod}/{member.account_id}"

    created = client.create_control_policy(
        rm.CreateControlPolicyRequest(
            policy_name="NoEcs", policy_document=json.dumps(NO_ECS), effect_scope="RAM"
        )
    ).body.control_policy
    assert (created.policy_id, created.policy_type) == ("NoEcs", "Custom")
    document = client.get_control_policy(rm.GetControlPolicyRequest(policy_id="NoEcs"))
    assert json.loads(document.body.control_policy.policy_document)["Statement"][0]["Effect"] == (
        "Deny"
    )
    policies = client.list_control_policies(rm.ListControlPoliciesRequest()).body
    assert [p.policy_name for p in policies.control_policies.control_policy] == [
        "FullAliyunAccess",
        "NoEcs",
    ]

    ecs = {
        "principal": f"acs:ram::{member.account_id}:user/dev",
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member.account_id}:instance/*",
    }
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"
    client.attach_control_policy(rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=prod))
    denied = rpc.api.authorize(member_headers, **ecs)
    assert denied["decision"] == "ExplicitDeny", denied
    assert [(m["layer"], m["policy_name"]) for m in denied["matched"]] == [("control", "NoEcs")]

    on_prod = client.list_control_policy_attachments_for_target(
        rm.ListControlPolicyAttachmentsForTargetRequest(target_id=prod)
    ).body.control_policy_attachments.control_policy_attachment
    assert [a.policy_id for a in on_prod] == ["FullAliyunAccess", "NoEcs"]
    targets = client.list_target_attachments_for_control_policy(
        rm.ListTargetAttachmentsForControlPolicyRequest(policy_id="NoEcs")
    ).body.target_attachments.target_attachment
    assert [(t.target_id, t.target_type, t.target_name) for t in targets] == [
        (prod, "Folder", "prod")
    ]
    status = client.get_control_policy_enablement_status().body.enablement_status
    assert status == "Enabled"

    client.detach_control_policy(rm.DetachControlPolicyRequest(policy_id="NoEcs", target_id=prod))
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"


def test_disabling_control_policies_detaches_them_all_until_enabled_again(
    rpc: RpcServer,
) -> None:
    """DisableControlPolicy: every control policy detached (none deleted), the member's user
    bounded by none, attaching refused and nothing written; EnableControlPolicy:
    ``FullAliyunAccess`` on every folder and member, a custom policy attached again by hand.
    https://www.alibabacloud.com/help/en/resource-management/api-disablecontrolpolicy,
    https://www.alibabacloud.com/help/en/resource-management/latest/disable-the-control-policy-feature
    """
    management = rpc.open_account()
    member, member_headers = _member_with_admin(rpc)
    client = _rm(rpc, management)
    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root = client.get_resource_directory().body.resource_directory.root_folder_id
    _join(rpc, client, member)
    client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="NoEcs", policy_document=json.dumps(NO_ECS))
    )
    attach = rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=member.account_id)
    client.attach_control_policy(attach)
    ecs = {
        "principal": f"acs:ram::{member.account_id}:user/dev",
        "action": "ecs:RunInstances",
        "resource": f"acs:ecs:*:{member.account_id}:instance/*",
    }
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "ExplicitDeny"

    assert client.disable_control_policy().body.enablement_status == "Disabled"
    assert client.get_control_policy_enablement_status().body.enablement_status == "Disabled"
    got = client.get_resource_directory().body.resource_directory
    assert got.control_policy_status == "Disabled"
    allowed = rpc.api.authorize(member_headers, **ecs)
    assert allowed["decision"] == "Allow", allowed
    assert all(m["layer"] != "control" for m in allowed["matched"])
    for target in (root, member.account_id):
        listed = client.list_control_policy_attachments_for_target(
            rm.ListControlPolicyAttachmentsForTargetRequest(target_id=target)
        ).body.control_policy_attachments.control_policy_attachment
        assert listed == []
    kept = client.list_control_policies(rm.ListControlPoliciesRequest()).body
    assert [p.policy_name for p in kept.control_policies.control_policy] == [
        "FullAliyunAccess",
        "NoEcs",
    ]
    head = rpc.head()
    assert _code_of(lambda: client.attach_control_policy(attach)) == (
        409,
        "InvalidStatus.ControlPolicy.Disabled",
    )
    assert client.disable_control_policy().body.enablement_status == "Disabled"  # already
    assert rpc.head() == head

    assert client.enable_control_policy().body.enablement_status == "Enabled"
    for target in (root, member.account_id):
        listed = client.list_control_policy_attachments_for_target(
            rm.ListControlPolicyAttachmentsForTargetRequest(target_id=target)
        ).body.control_policy_attachments.control_policy_attachment
        assert [a.policy_id for a in listed] == ["FullAliyunAccess"]
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "Allow"
    client.attach_control_policy(attach)
    assert rpc.api.authorize(member_headers, **ecs)["decision"] == "ExplicitDeny"
    head = rpc.head()
    assert client.enable_control_policy().body.enablement_status == "Enabled"  # already
    assert rpc.head() == head


def test_sdk_core_reads_the_directory_with_a_v1_signature(rpc: RpcServer) -> None:
    management = rpc.open_account()
    _rm(rpc, management).enable_resource_directory(rm.EnableResourceDirectoryRequest())
    answer = core_call(rpc.core(management), rpc.common("GetResourceDirectory", version=RM_VERSION))
    assert answer["ResourceDirectory"]["MasterAccountId"] == management.account_id


def test_refusals_carry_resource_managers_codes_and_write_nothing(rpc: RpcServer) -> None:
    management = rpc.open_account()
    member, _ = _member_with_admin(rpc)
    client = _rm(rpc, management)
    head = rpc.head()
    assert _code_of(lambda: client.get_resource_directory()) == (
        404,
        "EntityNotExists.ResourceDirectory",
    )
    new_ma = rm.EnableResourceDirectoryRequest(enable_mode="NewManagementAccount", maname="x")
    assert _code_of(lambda: client.enable_resource_directory(new_ma)) == (
        400,
        "InvalidParameter.EnableMode",
    )
    assert rpc.head() == head

    client.enable_resource_directory(rm.EnableResourceDirectoryRequest())
    root = client.get_resource_directory().body.resource_directory.root_folder_id
    client.create_control_policy(
        rm.CreateControlPolicyRequest(policy_name="NoEcs", policy_document=json.dumps(NO_ECS))
    )
    head = rpc.head()
    again = rm.EnableResourceDirectoryRequest()
    assert _code_of(lambda: client.enable_resource_directory(again))[0] == 409
    nowhere = rm.CreateFolderRequest(folder_name="x", parent_folder_id="fd-none")
    assert _code_of(lambda: client.create_folder(nowhere)) == (404, "EntityNotExists.Folder")
    missing = rm.GetFolderRequest(folder_id="fd-none")
    assert _code_of(lambda: client.get_folder(missing)) == (404, "EntityNotExists.Folder")
    stranger = rm.MoveAccountRequest(account_id="1" * 16, destination_folder_id=root)
    assert _code_of(lambda: client.move_account(stranger)) == (404, "EntityNotExists.Account")
    bad = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*"}]}
    malformed = rm.CreateControlPolicyRequest(policy_name="Bad", policy_document=json.dumps(bad))
    assert _code_of(lambda: client.create_control_policy(malformed)) == (
        400,
        "MalformedPolicyDocument",
    )
    described = rm.CreateControlPolicyRequest(
        policy_name="Said", policy_document=json.dumps(NO_ECS), description="x" * 1025
    )
    assert _code_of(lambda: client.create_control_policy(described)) == (
        400,
        "InvalidParameter.Description",
    )
    unknown = rm.GetControlPolicyRequest(policy_id="Nothing")
    assert _code_of(lambda: client.get_control_policy(unknown)) == (
        404,
        "EntityNotExists.ControlPolicy",
    )
    no_target = rm.AttachControlPolicyRequest(policy_id="NoEcs", target_id=member.account_id)
    assert _code_of(lambda: client.attach_control_policy(no_target)) == (
        404,
        "EntityNotExists.Target",
    )
    no_policy = rm.AttachControlPolicyRequest(policy_id="Nothing", target_id=root)
    assert _code_of(lambda: client.attach_control_policy(no_policy)) == (
        404,
        "EntityNotExists.ControlPolicy",
    )
    no_folder_name = rm.CreateFolderRequest(parent_folder_id=root)
    assert _code_of(lambda: client.create_folder(no_folder_name)) == (400, "MissingFolderName")
    assert client.enable_control_policy().body.enablement_status == "Enabled"
    assert rpc.head() == head


def test_a_ram_user_of_the_management_account_needs_resourcemanager_actions(
    rpc: RpcServer,
) -> None:
    management = rpc.open_account()
    headers = rpc.api.basic(management.access_key_id, management.secret)
    user_headers = rpc.api.create_user(management.account_id, headers, "ops")
    key_id, secret = (
        base64.b64decode(user_headers["Authorization"].removeprefix("Basic "))
        .decode()
        .split(":", 1)
    )
    user = _rm(rpc, Key(key_id, secret, management.account_id))
    head = rpc.head()
    enable = rm.EnableResourceDirectoryRequest()
    assert _code_of(lambda: user.enable_resource_directory(enable)) == (403, "NoPermission")
    assert _code_of(lambda: user.list_control_policies(rm.ListControlPoliciesRequest()))[1] == (
        "NoPermission"
    )
    assert rpc.head() == head
    rpc.api.attach(management.account_id, headers, "users/ops", "System", "AdministratorAccess")
    assert user.enable_resource_directory(enable).body.resource_directory.root_folder_id
