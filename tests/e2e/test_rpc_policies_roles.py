"""RAM's policy, attachment and role actions at ``/``, driven by the real Alibaba Cloud SDKs.

tea-openapi's RAM client with V3 and V1 signatures, and aliyun-python-sdk-core (typed
aliyunsdkram requests and CommonRequest), against the real server (``rpc_support``): custom
policies and their versions, System policies, attachments to users, groups and roles with
RAM's codes, ListEntitiesForPolicy, and roles. Answers are read through the SDKs' models;
every refused call is checked to have written nothing (the log's head did not move).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_ram20150501.client import Client as RamClient
from aliyunsdkram.request.v20150501.AttachPolicyToUserRequest import AttachPolicyToUserRequest
from aliyunsdkram.request.v20150501.CreatePolicyRequest import CreatePolicyRequest
from aliyunsdkram.request.v20150501.CreateRoleRequest import CreateRoleRequest
from aliyunsdkram.request.v20150501.DeleteRoleRequest import DeleteRoleRequest
from aliyunsdkram.request.v20150501.GetPolicyRequest import GetPolicyRequest

from tests.e2e.rpc_support import (
    RpcServer,
    ServerException,
    TeaError,
    core_call,
    rpc_serving,
)

SIGNINGS = [pytest.param(False, id="v3"), pytest.param(True, id="v1")]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
# spaces, quotes, '*', '/' and non-ASCII: the document travels percent-encoded in the query
READ_LOGS = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:ListObjects"],
            "Resource": "acs:oss:*:*:logs/été 2026/*",
        }
    ],
}
WRITE_LOGS = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "oss:PutObject", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def refused(server: RpcServer, call: Callable[[], Any]) -> TeaError:
    """Run a tea-openapi call that must fail; check it wrote nothing; answer the error."""
    before = server.head()
    with pytest.raises(TeaError) as caught:
        call()
    assert server.head() == before, "a refused call wrote an event"
    return caught.value


def code_of(server: RpcServer, call: Callable[[], Any]) -> tuple[int | None, str | None]:
    error = refused(server, call)
    return error.status_code, error.code


def doc(text: str | None) -> Any:
    assert text is not None
    return json.loads(text)


def trust(account_id: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }


def create_policy(client: RamClient, name: str, document: dict[str, Any] = READ_LOGS) -> None:
    client.create_policy(
        ram.CreatePolicyRequest(policy_name=name, policy_document=json.dumps(document))
    )


# -- custom policies and their versions -----------------------------------------------------
@pytest.mark.parametrize("v1", SIGNINGS)
def test_custom_policy_lifecycle_versions_and_default_switching(rpc: RpcServer, v1: bool) -> None:
    root = rpc.open_account()
    client = rpc.ram(root, v1=v1)

    created = client.create_policy(
        ram.CreatePolicyRequest(
            policy_name="read-logs",
            policy_document=json.dumps(READ_LOGS),
            description="Read the logs, été 2026",
        )
    ).body
    assert created.request_id
    policy = created.policy
    assert (policy.policy_name, policy.policy_type, policy.default_version) == (
        "read-logs",
        "Custom",
        "v1",
    )
    assert policy.description == "Read the logs, été 2026"
    assert TIME.fullmatch(policy.create_date or "")

    got = client.get_policy(ram.GetPolicyRequest(policy_name="read-logs", policy_type="Custom"))
    assert doc(got.body.policy.policy_document) == READ_LOGS
    assert got.body.policy.attachment_count == 0
    assert TIME.fullmatch(got.body.policy.update_date or "")
    default = got.body.default_policy_version
    assert (default.version_id, default.is_default_version) == ("v1", True)
    assert doc(default.policy_document) == READ_LOGS

    # a new default version is in force at once; one not set as default is not
    v2 = client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="read-logs", policy_document=json.dumps(WRITE_LOGS), set_as_default=True
        )
    ).body.policy_version
    assert (v2.version_id, v2.is_default_version) == ("v2", True)
    assert doc(v2.policy_document) == WRITE_LOGS
    v3 = client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="read-logs", policy_document=json.dumps(READ_LOGS), set_as_default=False
        )
    ).body.policy_version
    assert (v3.version_id, v3.is_default_version) == ("v3", False)
    got = client.get_policy(ram.GetPolicyRequest(policy_name="read-logs", policy_type="Custom"))
    assert got.body.policy.default_version == "v2"
    assert doc(got.body.default_policy_version.policy_document) == WRITE_LOGS

    versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="read-logs", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert [(v.version_id, v.is_default_version) for v in versions] == [
        ("v1", False),
        ("v2", True),
        ("v3", False),
    ]

    client.set_default_policy_version(
        ram.SetDefaultPolicyVersionRequest(policy_name="read-logs", version_id="v3")
    )
    v3_now = client.get_policy_version(
        ram.GetPolicyVersionRequest(policy_name="read-logs", policy_type="Custom", version_id="v3")
    ).body.policy_version
    assert (v3_now.is_default_version, doc(v3_now.policy_document)) == (True, READ_LOGS)

    # RAM's refusals, each writing nothing
    assert code_of(
        rpc,
        lambda: client.delete_policy_version(
            ram.DeletePolicyVersionRequest(policy_name="read-logs", version_id="v3")
        ),
    ) == (409, "DeleteConflict.Policy.Version.Default")
    assert code_of(
        rpc, lambda: client.delete_policy(ram.DeletePolicyRequest(policy_name="read-logs"))
    ) == (409, "DeleteConflict.Policy.Version")
    assert code_of(
        rpc,
        lambda: client.get_policy_version(
            ram.GetPolicyVersionRequest(
                policy_name="read-logs", policy_type="Custom", version_id="v9"
            )
        ),
    ) == (404, "EntityNotExist.Policy.Version")
    assert code_of(rpc, lambda: create_policy(client, "read-logs")) == (
        409,
        "EntityAlreadyExists.Policy",
    )
    malformed = refused(
        rpc,
        lambda: client.create_policy_version(
            ram.CreatePolicyVersionRequest(
                policy_name="read-logs", policy_document=json.dumps({"Statement": "nope"})
            )
        ),
    )
    assert (malformed.status_code, malformed.code) == (400, "MalformedPolicyDocument")
    assert code_of(
        rpc,
        lambda: client.get_policy(ram.GetPolicyRequest(policy_name="read-logs")),
    ) == (400, "MissingPolicyType")

    # without its other versions, the policy is deleted
    for version_id in ("v1", "v2"):
        client.delete_policy_version(
            ram.DeletePolicyVersionRequest(policy_name="read-logs", version_id=version_id)
        )
    client.delete_policy(ram.DeletePolicyRequest(policy_name="read-logs"))
    assert code_of(
        rpc,
        lambda: client.get_policy(
            ram.GetPolicyRequest(policy_name="read-logs", policy_type="Custom")
        ),
    ) == (404, "EntityNotExist.Policy")


def test_five_versions_at_most_unless_the_oldest_rotates_out(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.ram(root)
    create_policy(client, "rotating")
    for _ in range(4):
        client.create_policy_version(
            ram.CreatePolicyVersionRequest(
                policy_name="rotating", policy_document=json.dumps(WRITE_LOGS)
            )
        )
    sixth = ram.CreatePolicyVersionRequest(
        policy_name="rotating", policy_document=json.dumps(WRITE_LOGS), set_as_default=True
    )
    assert code_of(rpc, lambda: client.create_policy_version(sixth)) == (
        409,
        "LimitExceeded.Policy.Version",
    )
    sixth.rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
    made = client.create_policy_version(sixth).body.policy_version
    assert (made.version_id, made.is_default_version) == ("v6", True)
    versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="rotating", policy_type="Custom")
    ).body.policy_versions.policy_version
    # v1 was the default when the limit was reached: the oldest non-default, v2, went
    assert [v.version_id for v in versions] == ["v1", "v3", "v4", "v5", "v6"]
    sixth.rotate_strategy = "Sometimes"
    assert code_of(rpc, lambda: client.create_policy_version(sixth)) == (
        400,
        "InvalidParameter.RotateStrategy",
    )


def test_list_policies_by_type_with_marker_and_attachment_counts(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.ram(root, v1=True)
    for name in ("c-one", "c-two", "c-three"):
        create_policy(client, name)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    client.attach_policy_to_user(
        ram.AttachPolicyToUserRequest(policy_type="Custom", policy_name="c-two", user_name="alice")
    )
    client.attach_policy_to_user(
        ram.AttachPolicyToUserRequest(
            policy_type="System", policy_name="ReadOnlyAccess", user_name="alice"
        )
    )

    custom = client.list_policies(ram.ListPoliciesRequest(policy_type="Custom")).body
    assert custom.is_truncated is False
    listed = custom.policies.policy
    assert [(p.policy_name, p.policy_type) for p in listed] == [
        ("c-one", "Custom"),
        ("c-three", "Custom"),
        ("c-two", "Custom"),
    ]
    assert [p.attachment_count for p in listed] == [0, 0, 1]

    system = client.list_policies(ram.ListPoliciesRequest(policy_type="System")).body
    names = [p.policy_name for p in system.policies.policy]
    assert {"AdministratorAccess", "ReadOnlyAccess"} <= set(names)
    assert {p.policy_type for p in system.policies.policy} == {"System"}
    counts = {p.policy_name: p.attachment_count for p in system.policies.policy}
    assert (counts["ReadOnlyAccess"], counts["AdministratorAccess"]) == (1, 0)

    # every policy, both types, two a page: the marker carries from page to page
    seen: list[tuple[str, str]] = []
    marker: str | None = None
    while True:
        page = client.list_policies(ram.ListPoliciesRequest(max_items=2, marker=marker)).body
        seen += [(p.policy_type, p.policy_name) for p in page.policies.policy]
        if not page.is_truncated:
            break
        marker = page.marker
    assert seen == [("Custom", n) for n in ("c-one", "c-three", "c-two")] + [
        ("System", n) for n in sorted(names)
    ]
    assert code_of(rpc, lambda: client.list_policies(ram.ListPoliciesRequest(marker="junk"))) == (
        400,
        "InvalidParameter.Marker",
    )
    assert code_of(
        rpc, lambda: client.list_policies(ram.ListPoliciesRequest(policy_type="Managed"))
    ) == (400, "InvalidParameter.PolicyType")

    admin = client.get_policy(
        ram.GetPolicyRequest(policy_name="AdministratorAccess", policy_type="System")
    ).body
    assert admin.policy.policy_type == "System"
    assert doc(admin.policy.policy_document)["Statement"][0]["Action"] == "*"
    assert admin.default_policy_version.version_id == "v1"


# -- attachments ----------------------------------------------------------------------------
@pytest.mark.parametrize("v1", SIGNINGS)
def test_attach_and_detach_to_users_groups_and_roles_with_rams_codes(
    rpc: RpcServer, v1: bool
) -> None:
    root = rpc.open_account()
    client = rpc.ram(root, v1=v1)
    create_policy(client, "read-logs")
    client.create_user(ram.CreateUserRequest(user_name="alice", display_name="Alice"))
    client.create_group(ram.CreateGroupRequest(group_name="ops", comments="Operations"))
    client.create_role(
        ram.CreateRoleRequest(
            role_name="auditor",
            assume_role_policy_document=json.dumps(trust(root.account_id)),
            description="Reads the logs",
        )
    )
    custom = {"policy_type": "Custom", "policy_name": "read-logs"}
    client.attach_policy_to_user(ram.AttachPolicyToUserRequest(user_name="alice", **custom))
    client.attach_policy_to_group(ram.AttachPolicyToGroupRequest(group_name="ops", **custom))
    client.attach_policy_to_role(ram.AttachPolicyToRoleRequest(role_name="auditor", **custom))
    client.attach_policy_to_user(
        ram.AttachPolicyToUserRequest(
            user_name="alice", policy_type="System", policy_name="AliyunOSSReadOnlyAccess"
        )
    )

    # attaching again, detaching what is not attached: RAM names the principal's kind
    again: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: client.attach_policy_to_user(
                ram.AttachPolicyToUserRequest(user_name="alice", **custom)
            ),
            "EntityAlreadyExists.User.Policy",
        ),
        (
            lambda: client.attach_policy_to_group(
                ram.AttachPolicyToGroupRequest(group_name="ops", **custom)
            ),
            "EntityAlreadyExists.Group.Policy",
        ),
        (
            lambda: client.attach_policy_to_role(
                ram.AttachPolicyToRoleRequest(role_name="auditor", **custom)
            ),
            "EntityAlreadyExists.Role.Policy",
        ),
    ]
    for call, code in again:
        assert code_of(rpc, call) == (409, code)
    system = {"policy_type": "System", "policy_name": "AdministratorAccess"}
    missing: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: client.detach_policy_from_user(
                ram.DetachPolicyFromUserRequest(user_name="alice", **system)
            ),
            "EntityNotExist.User.Policy",
        ),
        (
            lambda: client.detach_policy_from_group(
                ram.DetachPolicyFromGroupRequest(group_name="ops", **system)
            ),
            "EntityNotExist.Group.Policy",
        ),
        (
            lambda: client.detach_policy_from_role(
                ram.DetachPolicyFromRoleRequest(role_name="auditor", **system)
            ),
            "EntityNotExist.Role.Policy",
        ),
        (
            lambda: client.attach_policy_to_user(
                ram.AttachPolicyToUserRequest(user_name="nobody", **custom)
            ),
            "EntityNotExist.User",
        ),
        (
            lambda: client.attach_policy_to_role(
                ram.AttachPolicyToRoleRequest(
                    role_name="auditor", policy_type="Custom", policy_name="nothing"
                )
            ),
            "EntityNotExist.Policy",
        ),
    ]
    for call, code in missing:
        assert code_of(rpc, call) == (404, code)
    assert code_of(
        rpc,
        lambda: client.attach_policy_to_user(
            ram.AttachPolicyToUserRequest(
                user_name="alice", policy_type="custom", policy_name="read-logs"
            )
        ),
    ) == (400, "InvalidParameter.PolicyType")
    assert code_of(
        rpc,
        lambda: client.attach_policy_to_user(
            ram.AttachPolicyToUserRequest(user_name="alice", resource_group_id="rg-1", **system)
        ),
    ) == (400, "InvalidParameter.ResourceGroupId")

    for_user = client.list_policies_for_user(
        ram.ListPoliciesForUserRequest(user_name="alice")
    ).body.policies.policy
    assert [(p.policy_type, p.policy_name, p.default_version) for p in for_user] == [
        ("Custom", "read-logs", "v1"),
        ("System", "AliyunOSSReadOnlyAccess", "v1"),
    ]
    for_group = client.list_policies_for_group(
        ram.ListPoliciesForGroupRequest(group_name="ops")
    ).body.policies.policy
    assert [p.policy_name for p in for_group] == ["read-logs"]
    for_role = client.list_policies_for_role(
        ram.ListPoliciesForRoleRequest(role_name="auditor")
    ).body.policies.policy
    assert [p.policy_name for p in for_role] == ["read-logs"]
    assert code_of(
        rpc,
        lambda: client.list_policies_for_group(ram.ListPoliciesForGroupRequest(group_name="x")),
    ) == (404, "EntityNotExist.Group")

    entities = client.list_entities_for_policy(
        ram.ListEntitiesForPolicyRequest(policy_name="read-logs", policy_type="Custom")
    ).body
    assert [(u.user_name, u.display_name) for u in entities.users.user] == [("alice", "Alice")]
    assert [(g.group_name, g.comments) for g in entities.groups.group] == [("ops", "Operations")]
    (role,) = entities.roles.role
    assert (role.role_name, role.arn, role.description) == (
        "auditor",
        f"acs:ram::{root.account_id}:role/auditor",
        "Reads the logs",
    )
    nobody = client.list_entities_for_policy(
        ram.ListEntitiesForPolicyRequest(policy_name="AdministratorAccess", policy_type="System")
    ).body
    assert (nobody.users.user, nobody.groups.group, nobody.roles.role) == ([], [], [])

    # DeletePolicy names a holder's kind while the policy is attached; each detach moves on
    delete = ram.DeletePolicyRequest(policy_name="read-logs")
    assert code_of(rpc, lambda: client.delete_policy(delete)) == (
        409,
        "DeleteConflict.Policy.User",
    )
    client.detach_policy_from_user(ram.DetachPolicyFromUserRequest(user_name="alice", **custom))
    assert code_of(rpc, lambda: client.delete_policy(delete)) == (
        409,
        "DeleteConflict.Policy.Group",
    )
    client.detach_policy_from_group(ram.DetachPolicyFromGroupRequest(group_name="ops", **custom))
    assert code_of(rpc, lambda: client.delete_policy(delete)) == (
        409,
        "DeleteConflict.Policy.Role",
    )
    assert code_of(rpc, lambda: client.delete_role(ram.DeleteRoleRequest(role_name="auditor"))) == (
        409,
        "DeleteConflict.Role.Policy",
    )
    # CascadingDelete detaches it from the role and deletes it, in one write
    client.delete_policy(ram.DeletePolicyRequest(policy_name="read-logs", cascading_delete=True))
    assert (
        client.list_policies_for_role(
            ram.ListPoliciesForRoleRequest(role_name="auditor")
        ).body.policies.policy
        == []
    )
    client.delete_role(ram.DeleteRoleRequest(role_name="auditor"))


def test_a_user_needs_the_action_on_the_principal(rpc: RpcServer) -> None:
    """ram:AttachPolicyToUser on the user's ARN decides, as on /v1; a refusal writes nothing."""
    root = rpc.open_account()
    client = rpc.ram(root)
    client.create_user(ram.CreateUserRequest(user_name="bob"))
    client.create_user(ram.CreateUserRequest(user_name="carol"))
    key = client.create_access_key(ram.CreateAccessKeyRequest(user_name="bob")).body.access_key
    bob = rpc.register(key.access_key_id, key.access_key_secret, root.account_id)
    allow_on_carol = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ram:AttachPolicyToUser", "ram:ListPoliciesForUser"],
                "Resource": f"acs:ram::{root.account_id}:user/carol",
            }
        ],
    }
    create_policy(client, "manage-carol", allow_on_carol)
    client.attach_policy_to_user(
        ram.AttachPolicyToUserRequest(
            user_name="bob", policy_type="Custom", policy_name="manage-carol"
        )
    )
    as_bob = rpc.ram(bob, v1=True)
    read_only = {"policy_type": "System", "policy_name": "ReadOnlyAccess"}
    as_bob.attach_policy_to_user(ram.AttachPolicyToUserRequest(user_name="carol", **read_only))
    assert code_of(
        rpc,
        lambda: as_bob.attach_policy_to_user(
            ram.AttachPolicyToUserRequest(user_name="bob", **read_only)
        ),
    ) == (403, "NoPermission")
    assert code_of(rpc, lambda: as_bob.list_roles(ram.ListRolesRequest())) == (403, "NoPermission")
    assert [
        p.policy_name
        for p in as_bob.list_policies_for_user(
            ram.ListPoliciesForUserRequest(user_name="carol")
        ).body.policies.policy
    ] == ["ReadOnlyAccess"]


# -- roles ----------------------------------------------------------------------------------
@pytest.mark.parametrize("v1", SIGNINGS)
def test_roles_create_get_update_list_delete(rpc: RpcServer, v1: bool) -> None:
    root = rpc.open_account()
    account = root.account_id
    client = rpc.ram(root, v1=v1)
    made = client.create_role(
        ram.CreateRoleRequest(
            role_name="deployer",
            assume_role_policy_document=json.dumps(trust(account)),
            description="Deploys, nightly",
            max_session_duration=7200,
        )
    ).body.role
    assert (made.role_name, made.arn, made.max_session_duration) == (
        "deployer",
        f"acs:ram::{account}:role/deployer",
        7200,
    )
    assert made.role_id
    assert made.description == "Deploys, nightly"
    assert doc(made.assume_role_policy_document) == trust(account)
    assert TIME.fullmatch(made.create_date or "")

    got = client.get_role(ram.GetRoleRequest(role_name="deployer")).body.role
    assert (got.role_id, got.arn, got.max_session_duration) == (made.role_id, made.arn, 7200)
    assert TIME.fullmatch(got.update_date or "")

    other = rpc.open_account()
    updated = client.update_role(
        ram.UpdateRoleRequest(
            role_name="deployer",
            new_description="Deploys",
            new_max_session_duration=3600,
            new_assume_role_policy_document=json.dumps(trust(other.account_id)),
        )
    ).body.role
    assert (updated.description, updated.max_session_duration) == ("Deploys", 3600)
    assert doc(updated.assume_role_policy_document) == trust(other.account_id)
    unchanged = client.update_role(
        ram.UpdateRoleRequest(role_name="deployer", new_description="Deploys daily")
    ).body.role
    assert (unchanged.description, unchanged.max_session_duration) == ("Deploys daily", 3600)
    assert doc(unchanged.assume_role_policy_document) == trust(other.account_id)

    for name in ("builder", "auditor"):
        client.create_role(
            ram.CreateRoleRequest(
                role_name=name, assume_role_policy_document=json.dumps(trust(account))
            )
        )
    first = client.list_roles(ram.ListRolesRequest(max_items=2)).body
    assert first.is_truncated is True
    rest = client.list_roles(ram.ListRolesRequest(marker=first.marker)).body
    assert rest.is_truncated is False
    roles = first.roles.role + rest.roles.role
    assert [r.role_name for r in roles] == ["auditor", "builder", "deployer"]
    assert roles[2].arn == made.arn

    refusals: list[tuple[Callable[[], Any], int, str]] = [
        (
            lambda: client.create_role(
                ram.CreateRoleRequest(
                    role_name="deployer", assume_role_policy_document=json.dumps(trust(account))
                )
            ),
            409,
            "EntityAlreadyExists.Role",
        ),
        (
            lambda: client.create_role(
                ram.CreateRoleRequest(
                    role_name="short",
                    assume_role_policy_document=json.dumps(trust(account)),
                    max_session_duration=60,
                )
            ),
            400,
            "InvalidParameter.MaxSessionDuration",
        ),
        (
            lambda: client.create_role(
                ram.CreateRoleRequest(role_name="bad", assume_role_policy_document='{"Version"')
            ),
            400,
            "InvalidParameter.AssumeRolePolicyDocument",
        ),
        (
            lambda: client.create_role(
                ram.CreateRoleRequest(
                    role_name="bad", assume_role_policy_document=json.dumps(READ_LOGS)
                )
            ),
            400,
            "MalformedPolicyDocument",
        ),
        (
            lambda: client.update_role(
                ram.UpdateRoleRequest(role_name="ghost", new_description="x")
            ),
            404,
            "EntityNotExist.Role",
        ),
        (
            lambda: client.create_role(
                ram.CreateRoleRequest(
                    role_name="console",
                    assume_role_policy_document=json.dumps(trust(account)),
                    allow_console_login=True,
                )
            ),
            400,
            "InvalidParameter.AllowConsoleLogin",
        ),
    ]
    for call, status, code in refusals:
        assert code_of(rpc, call) == (status, code), code

    client.attach_policy_to_role(
        ram.AttachPolicyToRoleRequest(
            role_name="deployer", policy_type="System", policy_name="AliyunOSSFullAccess"
        )
    )
    assert code_of(
        rpc, lambda: client.delete_role(ram.DeleteRoleRequest(role_name="deployer"))
    ) == (409, "DeleteConflict.Role.Policy")
    client.detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            role_name="deployer", policy_type="System", policy_name="AliyunOSSFullAccess"
        )
    )
    client.delete_role(ram.DeleteRoleRequest(role_name="deployer"))
    assert code_of(rpc, lambda: client.get_role(ram.GetRoleRequest(role_name="deployer"))) == (
        404,
        "EntityNotExist.Role",
    )


# -- aliyun-python-sdk-core -----------------------------------------------------------------
def test_sdk_core_typed_requests_and_common_requests(rpc: RpcServer) -> None:
    root = rpc.open_account()
    core = rpc.core(root)

    def typed(request: Any) -> dict[str, Any]:
        request.set_protocol_type("http")
        return core_call(core, request)

    create = CreatePolicyRequest()
    create.set_PolicyName("core-policy")
    # sdk-core's own encoding: json.dumps with ", " and ": " separators, so spaces travel
    create.set_PolicyDocument(json.dumps(READ_LOGS))
    assert typed(create)["Policy"]["PolicyName"] == "core-policy"

    get = GetPolicyRequest()
    get.set_PolicyName("core-policy")
    get.set_PolicyType("Custom")
    answer = typed(get)
    assert answer["Policy"]["AttachmentCount"] == 0
    assert json.loads(answer["DefaultPolicyVersion"]["PolicyDocument"]) == READ_LOGS

    role = CreateRoleRequest()
    role.set_RoleName("core-role")
    role.set_AssumeRolePolicyDocument(json.dumps(trust(root.account_id)))
    role.set_MaxSessionDuration(3600)
    made = typed(role)["Role"]
    assert made["Arn"] == f"acs:ram::{root.account_id}:role/core-role"
    assert isinstance(made["MaxSessionDuration"], int)

    # CommonRequest, GET and a form body: booleans in any case (SetAsDefault=true)
    version = core_call(
        core,
        rpc.common(
            "CreatePolicyVersion",
            {"PolicyName": "core-policy"},
            body={"PolicyDocument": json.dumps(WRITE_LOGS), "SetAsDefault": "true"},
            method="POST",
        ),
    )["PolicyVersion"]
    assert (version["VersionId"], version["IsDefaultVersion"]) == ("v2", True)
    listed = core_call(core, rpc.common("ListPolicies", {"PolicyType": "Custom"}))
    assert listed["IsTruncated"] is False
    assert [p["DefaultVersion"] for p in listed["Policies"]["Policy"]] == ["v2"]

    attach = AttachPolicyToUserRequest()
    attach.set_UserName("nobody")
    attach.set_PolicyType("Custom")
    attach.set_PolicyName("core-policy")
    before = rpc.head()
    with pytest.raises(ServerException) as caught:
        typed(attach)
    assert rpc.head() == before
    assert (caught.value.get_http_status(), caught.value.get_error_code()) == (
        404,
        "EntityNotExist.User",
    )

    entities = core_call(
        core,
        rpc.common("ListEntitiesForPolicy", {"PolicyName": "core-policy", "PolicyType": "Custom"}),
    )
    assert entities["Users"] == {"User": []}
    assert entities["Groups"] == {"Group": []}
    assert entities["Roles"] == {"Role": []}

    roles = core_call(core, rpc.common("ListRoles"))["Roles"]["Role"]
    assert [r["RoleName"] for r in roles] == ["core-role"]
    assert "AssumeRolePolicyDocument" not in roles[0]  # RAM's listing leaves the trust out

    delete = DeleteRoleRequest()
    delete.set_RoleName("core-role")
    assert set(typed(delete)) == {"RequestId"}
