"""RAM's TagResources, UntagResources and ListTagResources over RPC, with the tea SDK.

https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources
(roles; users as IMS tags them): the SDK sends ``ResourceNames`` and ``Tag`` as JSON arrays;
sdk-core's common requests may send them flattened (``Tag.1.Key``). The tags then decide
``acs:ResourceTag`` conditions, as over /v1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alibabacloud_ram20150501 import models as ram

from tests.e2e.rpc_support import RpcServer, core_call, rpc_serving
from tests.e2e.test_rpc_policies_roles import refused, trust


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def _listed(client: object, kind: str, names: list[str]) -> list[tuple[str, str, str]]:
    answer = client.list_tag_resources(  # type: ignore[attr-defined]
        ram.ListTagResourcesRequest(resource_type=kind, resource_names=names)
    ).body
    return [(t.resource_name, t.tag_key, t.tag_value) for t in answer.tag_resources]


def test_tag_untag_and_list_roles_and_users_with_the_sdk(rpc: RpcServer) -> None:
    root = rpc.open_account()
    account = root.account_id
    client = rpc.ram(root)
    for name in ("ops", "dev"):
        client.create_role(
            ram.CreateRoleRequest(
                role_name=name, assume_role_policy_document=json.dumps(trust(account))
            )
        )
    client.create_user(ram.CreateUserRequest(user_name="alice"))

    tag = ram.TagResourcesRequestTag
    client.tag_resources(
        ram.TagResourcesRequest(
            resource_type="role",
            resource_names=["ops", "dev"],
            tag=[tag(key="team", value="dev"), tag(key="env", value="")],
        )
    )
    client.tag_resources(
        ram.TagResourcesRequest(
            resource_type="user", resource_names=["alice"], tag=[tag(key="team", value="ops")]
        )
    )
    assert _listed(client, "role", ["ops", "dev"]) == [
        ("ops", "env", ""),
        ("ops", "team", "dev"),
        ("dev", "env", ""),
        ("dev", "team", "dev"),
    ]
    assert _listed(client, "user", ["alice"]) == [("alice", "team", "ops")]

    client.untag_resources(
        ram.UntagResourcesRequest(resource_type="role", resource_names=["ops"], tag_keys=["env"])
    )
    client.untag_resources(
        ram.UntagResourcesRequest(resource_type="role", resource_names=["dev"], all=True)
    )
    assert _listed(client, "role", ["ops", "dev"]) == [("ops", "team", "dev")]

    # all or none: one missing role refuses the whole call, and nothing is written
    missing = refused(
        rpc,
        lambda: client.tag_resources(
            ram.TagResourcesRequest(
                resource_type="role",
                resource_names=["ops", "nobody"],
                tag=[tag(key="a", value="b")],
            )
        ),
    )
    assert (missing.status_code, missing.code) == (404, "EntityNotExist.Role")
    reserved = refused(
        rpc,
        lambda: client.tag_resources(
            ram.TagResourcesRequest(
                resource_type="role", resource_names=["ops"], tag=[tag(key="acs:x", value="b")]
            )
        ),
    )
    assert (reserved.status_code, reserved.code) == (400, "InvalidParameter.Tag")
    policy = refused(
        rpc,
        lambda: client.tag_resources(
            ram.TagResourcesRequest(
                resource_type="policy", resource_names=["p"], tag=[tag(key="a", value="b")]
            )
        ),
    )
    assert (policy.status_code, policy.code) == (400, "InvalidParameter.ResourceType")
    full = refused(
        rpc,
        lambda: client.tag_resources(
            ram.TagResourcesRequest(
                resource_type="role",
                resource_names=["ops"],
                tag=[tag(key=f"k{i}", value="v") for i in range(20)],
            )
        ),
    )
    assert (full.status_code, full.code) == (409, "LimitExceeded.Tag")


def test_flattened_tags_from_sdk_core_and_rams_action_on_each_resource(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.ram(root)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    core = rpc.core(root)
    core_call(
        core,
        rpc.common(
            "TagResources",
            {
                "ResourceType": "user",
                "ResourceNames.1": "alice",
                "Tag.1.Key": "team",
                "Tag.1.Value": "dev",
                "Tag.2.Key": "cost",
            },
        ),
    )
    listed = core_call(
        core, rpc.common("ListTagResources", {"ResourceType": "user", "ResourceNames.1": "alice"})
    )
    assert [(t["TagKey"], t["TagValue"]) for t in listed["TagResources"]] == [
        ("cost", ""),
        ("team", "dev"),
    ]

    client.create_user(ram.CreateUserRequest(user_name="clerk"))
    issued = client.create_access_key(ram.CreateAccessKeyRequest(user_name="clerk")).body
    clerk = rpc.register(issued.access_key.access_key_id, issued.access_key.access_key_secret)
    denied = refused(
        rpc,
        lambda: rpc.ram(clerk).tag_resources(
            ram.TagResourcesRequest(
                resource_type="user",
                resource_names=["alice"],
                tag=[ram.TagResourcesRequestTag(key="a", value="b")],
            )
        ),
    )
    assert (denied.status_code, denied.code) == (403, "NoPermission")


def test_list_roles_filters_by_tag(rpc: RpcServer) -> None:
    """ListRoles' ``Tag``: the roles holding every tag named (no value: any value)."""
    root = rpc.open_account()
    client = rpc.ram(root)
    document = json.dumps(trust(root.account_id))
    for name in ("a", "b", "c"):
        client.create_role(
            ram.CreateRoleRequest(role_name=name, assume_role_policy_document=document)
        )
    tag = ram.TagResourcesRequestTag
    client.tag_resources(
        ram.TagResourcesRequest(
            resource_type="role", resource_names=["a", "b"], tag=[tag(key="team", value="dev")]
        )
    )
    client.tag_resources(
        ram.TagResourcesRequest(
            resource_type="role", resource_names=["b"], tag=[tag(key="env", value="prod")]
        )
    )

    def names(*tags: tuple[str, str]) -> list[str]:
        wanted = [ram.ListRolesRequestTag(key=k, value=v) for k, v in tags]
        roles = client.list_roles(ram.ListRolesRequest(tag=wanted)).body.roles
        assert roles is not None
        return [role.role_name for role in roles.role]

    assert names(("team", "dev")) == ["a", "b"]
    listed = client.list_roles(ram.ListRolesRequest()).body.roles
    assert listed is not None
    shown = {
        role.role_name: [(t.tag_key, t.tag_value) for t in role.tags.tag] if role.tags else None
        for role in listed.role
    }
    assert shown == {"a": [("team", "dev")], "b": [("env", "prod"), ("team", "dev")], "c": None}
    assert names(("team", "dev"), ("env", "prod")) == ["b"]
    assert names(("env", "")) == ["b"]
    assert names(("team", "ops")) == []


def test_create_role_with_tags(rpc: RpcServer) -> None:
    """CreateRole's ``Tag`` (a JSON array, as the SDK sends it) tags the role in the same save."""
    root = rpc.open_account()
    client = rpc.ram(root)
    client.create_role(
        ram.CreateRoleRequest(
            role_name="ops",
            assume_role_policy_document=json.dumps(trust(root.account_id)),
            tag=[ram.CreateRoleRequestTag(key="team", value="dev")],
        )
    )
    assert _listed(client, "role", ["ops"]) == [("ops", "team", "dev")]
