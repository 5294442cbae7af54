"""RAM's user, AccessKey and group actions at ``/``, driven by the real Alibaba Cloud SDKs.

tea-openapi's RAM client with V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1) signatures, and
aliyun-python-sdk-core (its typed aliyunsdkram requests, POST, and CommonRequest, GET or POST
with a form body) all talk to the real server; answers are read back through the SDKs' own
models. Every refused call is checked to have written nothing: the log's head is the same
after it as before. Signatures are verified with the secrets the server itself sealed when it
issued them (see ``rpc_support``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkram.request.v20150501.CreateUserRequest import CreateUserRequest
from aliyunsdkram.request.v20150501.ListUsersRequest import ListUsersRequest

from tests.e2e.conftest import MandateClient
from tests.e2e.rpc_support import (
    RAM_VERSION,
    Key,
    RpcServer,
    ServerException,
    TeaError,
    core_call,
    rpc_serving,
)

SIGNINGS = [pytest.param(False, id="v3"), pytest.param(True, id="v1")]
TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


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


def refused_core(server: RpcServer, call: Callable[[], Any]) -> ServerException:
    """The same for aliyun-python-sdk-core."""
    before = server.head()
    with pytest.raises(ServerException) as caught:
        call()
    assert server.head() == before, "a refused call wrote an event"
    return caught.value


def user_names(body: Any) -> list[str]:
    return [u.user_name for u in body.users.user]


@pytest.mark.parametrize("v1", SIGNINGS)
def test_scenario_one_users_keys_groups_membership_and_paging(rpc: RpcServer, v1: bool) -> None:
    root = rpc.open_account()
    client = rpc.ram(root, v1=v1)

    created = client.create_user(
        ram.CreateUserRequest(user_name="alice", display_name="Alice Liddell")
    ).body
    assert created.request_id
    assert created.user.user_name == "alice"
    assert created.user.display_name == "Alice Liddell"  # a space survives the query
    assert created.user.user_id
    assert created.user.create_date
    for name in ("bob", "carol", "dave", "erin"):
        client.create_user(ram.CreateUserRequest(user_name=name))

    got = client.get_user(ram.GetUserRequest(user_name="alice")).body.user
    assert (got.user_name, got.display_name, got.user_id) == (
        "alice",
        "Alice Liddell",
        created.user.user_id,
    )
    assert got.update_date is not None

    renamed = client.update_user(
        ram.UpdateUserRequest(user_name="erin", new_user_name="eve", new_display_name="Eve")
    ).body.user
    assert (renamed.user_name, renamed.display_name) == ("eve", "Eve")

    # paging: two at a time, in name order, the marker carried from page to page
    seen: list[str] = []
    marker: str | None = None
    pages = 0
    while True:
        page = client.list_users(ram.ListUsersRequest(max_items=2, marker=marker)).body
        pages += 1
        seen += user_names(page)
        if not page.is_truncated:
            assert page.marker is None
            break
        assert page.marker
        marker = page.marker
    assert seen == ["alice", "bob", "carol", "dave", "eve"]
    assert pages == 3
    everyone = client.list_users(ram.ListUsersRequest()).body
    assert everyone.is_truncated is False
    assert user_names(everyone) == seen

    # AccessKeys: the secret once, at creation; then listed without it; made Inactive
    issued = client.create_access_key(ram.CreateAccessKeyRequest(user_name="alice")).body
    key = issued.access_key
    assert key.access_key_id
    assert key.access_key_secret
    assert key.status == "Active"
    listed = client.list_access_keys(ram.ListAccessKeysRequest(user_name="alice")).body
    assert [k.access_key_id for k in listed.access_keys.access_key] == [key.access_key_id]
    assert listed.access_keys.access_key[0].status == "Active"
    assert "AccessKeySecret" not in listed.to_map()["AccessKeys"]["AccessKey"][0]
    client.update_access_key(
        ram.UpdateAccessKeyRequest(
            user_name="alice", user_access_key_id=key.access_key_id, status="Inactive"
        )
    )
    listed = client.list_access_keys(ram.ListAccessKeysRequest(user_name="alice")).body
    assert listed.access_keys.access_key[0].status == "Inactive"
    empty = client.list_access_keys(ram.ListAccessKeysRequest(user_name="bob")).body
    assert empty.to_map()["AccessKeys"] == {"AccessKey": []}  # the wrapper, even empty

    # groups and membership
    group = client.create_group(
        ram.CreateGroupRequest(group_name="devs", comments="the developers")
    ).body.group
    assert (group.group_name, group.comments) == ("devs", "the developers")
    client.create_group(ram.CreateGroupRequest(group_name="ops"))
    got_group = client.get_group(ram.GetGroupRequest(group_name="devs")).body.group
    assert got_group.group_id == group.group_id
    groups = client.list_groups(ram.ListGroupsRequest(max_items=1)).body
    assert [g.group_name for g in groups.groups.group] == ["devs"]
    assert groups.is_truncated is True
    rest = client.list_groups(ram.ListGroupsRequest(marker=groups.marker)).body
    assert [g.group_name for g in rest.groups.group] == ["ops"]
    assert rest.is_truncated is False

    for name in ("bob", "alice", "carol"):
        client.add_user_to_group(ram.AddUserToGroupRequest(group_name="devs", user_name=name))
    client.add_user_to_group(ram.AddUserToGroupRequest(group_name="ops", user_name="alice"))
    of_alice = client.list_groups_for_user(ram.ListGroupsForUserRequest(user_name="alice")).body
    assert [g.group_name for g in of_alice.groups.group] == ["devs", "ops"]
    members = client.list_users_for_group(
        ram.ListUsersForGroupRequest(group_name="devs", max_items=2)
    ).body
    assert [u.user_name for u in members.users.user] == ["alice", "bob"]
    assert members.users.user[0].display_name == "Alice Liddell"
    assert members.is_truncated is True
    more = client.list_users_for_group(
        ram.ListUsersForGroupRequest(group_name="devs", marker=members.marker)
    ).body
    assert [u.user_name for u in more.users.user] == ["carol"]
    client.remove_user_from_group(
        ram.RemoveUserFromGroupRequest(group_name="devs", user_name="bob")
    )
    after = client.list_users_for_group(ram.ListUsersForGroupRequest(group_name="devs")).body
    assert [u.user_name for u in after.users.user] == ["alice", "carol"]
    none = client.list_groups_for_user(ram.ListGroupsForUserRequest(user_name="bob")).body
    assert none.to_map()["Groups"] == {"Group": []}

    # the same engine: /v1 sees what RPC wrote
    basic = MandateClient.basic(root.access_key_id, root.secret)
    v1_group = rpc.api.get(f"/v1/accounts/{root.account_id}/groups/devs", headers=basic)
    assert v1_group.status_code == 200
    assert v1_group.json()["members"] == ["alice", "carol"]

    # deleting: DeleteGroup refused while it has members, then done
    error = refused(rpc, lambda: client.delete_group(ram.DeleteGroupRequest(group_name="devs")))
    assert (error.status_code, error.code) == (409, "DeleteConflict.Group.User")
    for name in ("alice", "carol"):
        client.remove_user_from_group(
            ram.RemoveUserFromGroupRequest(group_name="devs", user_name=name)
        )
    client.delete_group(ram.DeleteGroupRequest(group_name="devs"))
    error = refused(rpc, lambda: client.get_group(ram.GetGroupRequest(group_name="devs")))
    assert (error.status_code, error.code) == (404, "EntityNotExist.Group")


@pytest.mark.parametrize("v1", SIGNINGS)
def test_delete_user_keeps_rams_preconditions_keys_then_groups_then_policies(
    rpc: RpcServer, v1: bool
) -> None:
    root = rpc.open_account()
    client = rpc.ram(root, v1=v1)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    client.create_group(ram.CreateGroupRequest(group_name="devs"))
    key = client.create_access_key(ram.CreateAccessKeyRequest(user_name="alice")).body.access_key
    client.add_user_to_group(ram.AddUserToGroupRequest(group_name="devs", user_name="alice"))
    basic = MandateClient.basic(root.access_key_id, root.secret)
    rpc.api.attach(root.account_id, basic, "users/alice", "System", "ReadOnlyAccess")

    def delete() -> Any:
        return client.delete_user(ram.DeleteUserRequest(user_name="alice"))

    error = refused(rpc, delete)
    assert (error.status_code, error.code) == (409, "DeleteConflict.User.AccessKey")
    assert "The user CAN NOT has any access key while deleting the user." in error.message
    client.delete_access_key(
        ram.DeleteAccessKeyRequest(user_name="alice", user_access_key_id=key.access_key_id)
    )
    error = refused(rpc, delete)
    assert (error.status_code, error.code) == (409, "DeleteConflict.User.Group")
    client.remove_user_from_group(
        ram.RemoveUserFromGroupRequest(group_name="devs", user_name="alice")
    )
    error = refused(rpc, delete)
    assert (error.status_code, error.code) == (409, "DeleteConflict.User.Policy")
    detached = rpc.api.delete(
        f"/v1/accounts/{root.account_id}/users/alice/policies/System/ReadOnlyAccess",
        headers=basic,
    )
    assert detached.status_code == 200, detached.text
    before = rpc.head()
    client.delete_user(ram.DeleteUserRequest(user_name="alice"))
    assert rpc.head() > before
    error = refused(rpc, lambda: client.get_user(ram.GetUserRequest(user_name="alice")))
    assert (error.status_code, error.code) == (404, "EntityNotExist.User")


def test_rams_error_codes_and_no_event_for_any_refusal(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.ram(root)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    client.create_group(ram.CreateGroupRequest(group_name="devs"))
    client.add_user_to_group(ram.AddUserToGroupRequest(group_name="devs", user_name="alice"))
    cases: list[tuple[Callable[[RamClient], Any], int, str]] = [
        (lambda c: c.get_user(ram.GetUserRequest(user_name="nobody")), 404, "EntityNotExist.User"),
        (
            lambda c: c.create_user(ram.CreateUserRequest(user_name="alice")),
            409,
            "EntityAlreadyExists.User",
        ),
        (
            lambda c: c.create_group(ram.CreateGroupRequest(group_name="devs")),
            409,
            "EntityAlreadyExists.Group",
        ),
        (
            lambda c: c.add_user_to_group(
                ram.AddUserToGroupRequest(group_name="devs", user_name="alice")
            ),
            409,
            "EntityAlreadyExists.User.Group",
        ),
        (
            lambda c: c.add_user_to_group(
                ram.AddUserToGroupRequest(group_name="devs", user_name="nobody")
            ),
            404,
            "EntityNotExist.User",
        ),
        (
            lambda c: c.remove_user_from_group(
                ram.RemoveUserFromGroupRequest(group_name="nogroup", user_name="alice")
            ),
            404,
            "EntityNotExist.Group",
        ),
        (
            lambda c: c.update_access_key(
                ram.UpdateAccessKeyRequest(
                    user_name="alice", user_access_key_id="LTAInothere", status="Inactive"
                )
            ),
            404,
            "EntityNotExist.User.AccessKey",
        ),
        (lambda c: c.create_user(ram.CreateUserRequest()), 400, "MissingUserName"),
        (lambda c: c.get_group(ram.GetGroupRequest()), 400, "MissingGroupName"),
        (
            lambda c: c.create_user(ram.CreateUserRequest(user_name="bad name!")),
            400,
            "InvalidParameter.UserName",
        ),
        (
            lambda c: c.create_user(ram.CreateUserRequest(user_name="x", email="x@example.com")),
            400,
            "InvalidParameter.Email",
        ),
        (
            lambda c: c.list_users(ram.ListUsersRequest(max_items=0)),
            400,
            "InvalidParameter.MaxItems",
        ),
        (
            lambda c: c.list_users(ram.ListUsersRequest(max_items=1001)),
            400,
            "InvalidParameter.MaxItems",
        ),
        (
            lambda c: c.list_users(ram.ListUsersRequest(marker="not a marker")),
            400,
            "InvalidParameter.Marker",
        ),
        (
            lambda c: c.update_access_key(
                ram.UpdateAccessKeyRequest(
                    user_name="alice", user_access_key_id="LTAIx", status="Sleeping"
                )
            ),
            400,
            "InvalidParameter.Status",
        ),
    ]
    for call, status, code in cases:
        error = refused(rpc, lambda call=call: call(client))
        assert (error.status_code, error.code) == (status, code), (code, error.message)
        assert error.request_id
        assert error.message


def test_sdk_core_typed_requests_and_common_requests_by_get_and_post(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.core(root)

    create = CreateUserRequest()
    create.set_UserName("alice")
    create.set_DisplayName("Alice * Liddell ~")  # space, * and ~: sdk-core's own encoding
    create.set_protocol_type("http")
    answer = core_call(client, create)
    assert answer["User"]["UserName"] == "alice"
    assert answer["User"]["DisplayName"] == "Alice * Liddell ~"
    assert answer["RequestId"]

    listing = ListUsersRequest()
    listing.set_MaxItems(10)
    listing.set_protocol_type("http")
    users = core_call(client, listing)
    assert users["IsTruncated"] is False
    assert [u["UserName"] for u in users["Users"]["User"]] == ["alice"]

    got = core_call(client, rpc.common("GetUser", {"UserName": "alice"}))  # GET
    assert got["User"]["DisplayName"] == "Alice * Liddell ~"
    assert got["User"]["CreateDate"].endswith("Z")

    core_call(client, rpc.common("CreateGroup", {"GroupName": "devs"}, method="POST"))
    core_call(  # POST with a form body, as add_body_params sends it
        client,
        rpc.common(
            "AddUserToGroup", body={"GroupName": "devs", "UserName": "alice"}, method="POST"
        ),
    )
    groups = core_call(client, rpc.common("ListGroupsForUser", {"UserName": "alice"}))
    assert [g["GroupName"] for g in groups["Groups"]["Group"]] == ["devs"]

    error = refused_core(rpc, lambda: core_call(client, rpc.common("GetUser", {"UserName": "x"})))
    assert (error.get_http_status(), error.get_error_code()) == (404, "EntityNotExist.User")
    error = refused_core(rpc, lambda: core_call(client, rpc.common("CreateUserX", {})))
    assert (error.get_http_status(), error.get_error_code()) == (404, "InvalidAction.NotFound")
    error = refused_core(
        rpc,
        lambda: core_call(client, rpc.common("GetUser", {"UserName": "a"}, version="2099-01-01")),
    )
    assert (error.get_http_status(), error.get_error_code()) == (400, "InvalidVersion")


# -- authentication ---------------------------------------------------------------------
def _v1_query(key: Key, action: str, params: dict[str, str], *, nonce: str | None = None) -> str:
    """A GET query signed with RPC V1 by hand (the algorithm, not an SDK), for replays."""
    signed = {
        "Action": action,
        "Version": RAM_VERSION,
        "Format": "JSON",
        "AccessKeyId": key.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }

    def pe(text: str) -> str:
        return quote(text, safe="~")

    canonical = "&".join(f"{pe(k)}={pe(v)}" for k, v in sorted(signed.items()))
    to_sign = "GET&%2F&" + pe(canonical)
    digest = hmac.new((key.secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    signed["Signature"] = base64.b64encode(digest).decode()
    return "&".join(f"{pe(k)}={pe(v)}" for k, v in signed.items())


def _raw(rpc: RpcServer, query: str, method: str = "GET") -> tuple[int, dict[str, Any]]:
    before = rpc.head()
    response = rpc.api.request(method, "/?" + query if query else "/")
    body: dict[str, Any] = response.json()
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code != 200:
        assert rpc.head() == before, "a refused call wrote an event"
        assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    return response.status_code, body


def test_signature_refusals_are_rams_and_write_nothing(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = rpc.ram(root)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    issued = client.create_access_key(ram.CreateAccessKeyRequest(user_name="alice")).body
    alice = rpc.register(
        issued.access_key.access_key_id, issued.access_key.access_key_secret, root.account_id
    )

    # an AccessKey the server does not know
    stranger = Key("LTAIunknownkey000000", "whatever-secret")
    for v1 in (False, True):
        error = refused(
            rpc, lambda v1=v1: rpc.ram(stranger, v1=v1).list_users(ram.ListUsersRequest())
        )
        assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")

    # a wrong secret: SignatureDoesNotMatch, whose message ends with the string to sign
    wrong = Key(root.access_key_id, root.secret + "x")
    for v1 in (False, True):
        error = refused(
            rpc,
            lambda v1=v1: rpc.ram(wrong, v1=v1).create_user(
                ram.CreateUserRequest(user_name="mallory")
            ),
        )
        assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")
        assert "server string to sign is:" in error.message
        assert wrong.secret not in error.message
    # aliyun-python-sdk-core compares the echoed string with its own and names the secret
    # (its typed requests: a CommonRequest keeps no string to sign to compare)
    listing = ListUsersRequest()
    listing.set_protocol_type("http")
    error_core = refused_core(rpc, lambda: core_call(rpc.core(wrong), listing))
    assert error_core.get_error_code() == "InvalidAccessKeySecret"
    error_core = refused_core(rpc, lambda: core_call(rpc.core(wrong), rpc.common("ListUsers")))
    assert error_core.get_error_code() == "SignatureDoesNotMatch"

    # unsigned, and signed then replayed
    status, body = _raw(rpc, "Action=ListUsers&Version=2015-05-01")
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    query = _v1_query(alice, "GetUser", {"UserName": "alice"})
    status, body = _raw(rpc, query)
    assert status == 403  # signed and authenticated: alice may not GetUser yet
    assert body["Code"] == "NoPermission"
    status, body = _raw(rpc, query)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")

    # a V1 query whose parameter was changed after signing
    tampered = _v1_query(alice, "GetUser", {"UserName": "alice"}).replace(
        "UserName=alice", "UserName=bob"
    )
    status, body = _raw(rpc, tampered)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")

    # an Inactive key, then a deleted one
    client.update_access_key(
        ram.UpdateAccessKeyRequest(
            user_name="alice", user_access_key_id=alice.access_key_id, status="Inactive"
        )
    )
    error = refused(rpc, lambda: rpc.ram(alice).list_users(ram.ListUsersRequest()))
    assert (error.status_code, error.code) == (400, "InvalidAccessKeyId.Inactive")
    client.delete_access_key(
        ram.DeleteAccessKeyRequest(user_name="alice", user_access_key_id=alice.access_key_id)
    )
    error = refused(rpc, lambda: rpc.ram(alice).list_users(ram.ListUsersRequest()))
    assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")


def test_a_ram_user_is_authorised_as_on_v1_and_may_name_itself_by_omission(
    rpc: RpcServer,
) -> None:
    root = rpc.open_account()
    admin = rpc.ram(root)
    admin.create_user(ram.CreateUserRequest(user_name="alice"))
    issued = admin.create_access_key(ram.CreateAccessKeyRequest(user_name="alice")).body
    alice = rpc.register(
        issued.access_key.access_key_id, issued.access_key.access_key_secret, root.account_id
    )
    as_alice = rpc.ram(alice, v1=True)

    error = refused(rpc, lambda: as_alice.create_user(ram.CreateUserRequest(user_name="bob")))
    assert (error.status_code, error.code) == (403, "NoPermission")
    error = refused(rpc, lambda: as_alice.list_users(ram.ListUsersRequest()))
    assert (error.status_code, error.code) == (403, "NoPermission")

    basic = MandateClient.basic(root.access_key_id, root.secret)
    rpc.api.attach(root.account_id, basic, "users/alice", "System", "ReadOnlyAccess")
    listed = as_alice.list_users(ram.ListUsersRequest()).body
    assert user_names(listed) == ["alice"]
    # no UserName: the caller's own keys, as RAM answers a RAM user
    own = as_alice.list_access_keys(ram.ListAccessKeysRequest()).body
    assert [k.access_key_id for k in own.access_keys.access_key] == [alice.access_key_id]
    error = refused(rpc, lambda: as_alice.create_group(ram.CreateGroupRequest(group_name="g")))
    assert (error.status_code, error.code) == (403, "NoPermission")

    # the root has no user name to default to
    error = refused(rpc, lambda: admin.list_access_keys(ram.ListAccessKeysRequest()))
    assert (error.status_code, error.code) == (400, "MissingUserName")


def _session(rpc: RpcServer, root: Key) -> tuple[Key, str]:
    """STS credentials (from /v1's AssumeRole) of a role allowed RAM's reads;
    and their security token."""
    api, account_id = rpc.api, root.account_id
    basic = MandateClient.basic(root.access_key_id, root.secret)
    alice = api.create_user(account_id, basic, "alice")
    api.attach(account_id, basic, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }
    created = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={"role_name": "auditor", "assume_role_policy_document": trust},
        headers=basic,
    )
    assert created.status_code == 201, created.text
    api.attach(account_id, basic, "roles/auditor", "System", "ReadOnlyAccess")
    assumed = api.post(
        "/v1/sts/assume-role",
        json={"role_arn": f"acs:ram::{account_id}:role/auditor", "role_session_name": "s-1"},
        headers=alice,
    )
    assert assumed.status_code == 201, assumed.text
    credentials = assumed.json()["credentials"]
    key = rpc.register(credentials["access_key_id"], credentials["access_key_secret"], account_id)
    return key, credentials["security_token"]


def test_sts_credentials_sign_with_their_security_token_under_v3_v1_and_sdk_core(
    rpc: RpcServer,
) -> None:
    root = rpc.open_account()
    session, token = _session(rpc, root)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    def tea(v1: bool, security_token: str | None) -> RamClient:
        return RamClient(
            Config(
                access_key_id=session.access_key_id,
                access_key_secret=session.secret,
                security_token=security_token,
                endpoint=rpc.endpoint,
                protocol="http",
                signature_algorithm="v2" if v1 else None,
            )
        )

    for v1 in (False, True):  # x-acs-security-token (V3), SecurityToken= (V1)
        listed = tea(v1, token).list_users(ram.ListUsersRequest()).body
        assert user_names(listed) == ["alice"]
        error = refused(
            rpc, lambda v1=v1: tea(v1, token).create_user(ram.CreateUserRequest(user_name="x"))
        )
        assert (error.status_code, error.code) == (403, "NoPermission")
        error = refused(rpc, lambda v1=v1: tea(v1, None).list_users(ram.ListUsersRequest()))
        assert (error.status_code, error.code) == (400, "MissingSecurityToken")
        error = refused(rpc, lambda v1=v1: tea(v1, forged).list_users(ram.ListUsersRequest()))
        assert error.status_code == 400
        assert error.code == "InvalidSecurityToken.Malformed"

    core = AcsClient(
        region_id="cn-hangzhou",
        credential=StsTokenCredential(session.access_key_id, session.secret, token),
    )
    answer = core_call(core, rpc.common("ListUsers", {"MaxItems": 10}))
    assert [u["UserName"] for u in answer["Users"]["User"]] == ["alice"]
