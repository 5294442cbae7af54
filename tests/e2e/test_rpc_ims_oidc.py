"""OIDC providers through IMS 2019-08-15 at ``/``, by the real SDK (alibabacloud-ims20190815).

The provider made over RPC is the one /v1 and STS see: created (with Mandate's ``JWKS``
parameter, sent V3 through tea-openapi's generic call and V1 through aliyun-python-sdk-core),
read, listed, updated, its client ids and fingerprints changed one at a time, a token of its
issuer exchanged through STS's AssumeRoleWithOIDC, then deleted. Refusals carry IMS's codes
and write nothing; a RAM user needs ``ram:<Action>`` as on Alibaba Cloud.

API: https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as ims
from alibabacloud_ims20190815.client import Client as ImsClient
from alibabacloud_sts20150401 import models as sts
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import utils_models as open_api
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

from tests.e2e.rpc_support import Key, RpcServer, TeaError, core_call, rpc_serving
from tests.oidc_support import CLIENT_ID, ISSUER, SUBJECT, federated_trust, jwks, token

IMS_VERSION = "2019-08-15"
PRINT = "a" * 40


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def _ims(rpc: RpcServer, key: Key) -> ImsClient:
    return ImsClient(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.secret,
            endpoint=rpc.endpoint,
            protocol="http",
        )
    )


def _create_v3(client: ImsClient, name: str, **extra: str) -> dict[str, Any]:
    """CreateOIDCProvider V3 with Mandate's ``JWKS`` (tea-openapi's generic call: the typed
    request has no such field)."""
    query = {
        "OIDCProviderName": name,
        "IssuerUrl": ISSUER,
        "ClientIds": CLIENT_ID,
        "JWKS": json.dumps(jwks()),
        **extra,
    }
    params = open_api.Params(
        action="CreateOIDCProvider",
        version=IMS_VERSION,
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    request = open_api.OpenApiRequest(query=Utils.query(query))
    answer: dict[str, Any] = client.call_api(params, request, RuntimeOptions())["body"]
    return answer


def _code_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(TeaError) as caught:
        call()
    return caught.value.status_code, caught.value.code


def test_a_provider_made_over_ims_federates_through_sts(rpc: RpcServer) -> None:
    root = rpc.open_account()
    account_id = root.account_id
    client = _ims(rpc, root)
    made = _create_v3(client, "ci-idp", Fingerprints=PRINT, IssuanceLimitTime="6")
    provider = made["OIDCProvider"]
    assert provider["Arn"] == f"acs:ram::{account_id}:oidc-provider/ci-idp"
    assert (provider["IssuerUrl"], provider["ClientIds"]) == (ISSUER, CLIENT_ID)
    assert (provider["Fingerprints"], provider["IssuanceLimitTime"]) == (PRINT, 6)
    assert provider["CreateDate"].endswith("Z")

    got = client.get_oidcprovider(ims.GetOIDCProviderRequest(oidcprovider_name="ci-idp"))
    assert got.body.oidcprovider.issuer_url == ISSUER
    listed = client.list_oidcproviders(ims.ListOIDCProvidersRequest(max_items=10)).body
    assert [p.oidcprovider_name for p in listed.oidcproviders.oidcprovider] == ["ci-idp"]
    assert listed.is_truncated is False

    updated = client.update_oidcprovider(
        ims.UpdateOIDCProviderRequest(
            oidcprovider_name="ci-idp",
            client_ids=f"{CLIENT_ID},other-app",
            issuance_limit_time=12,
            new_description="CI workloads",
        )
    ).body.oidcprovider
    assert (updated.client_ids, updated.description) == (f"{CLIENT_ID},other-app", "CI workloads")
    removed = client.remove_client_id_from_oidcprovider(
        ims.RemoveClientIdFromOIDCProviderRequest(oidcprovider_name="ci-idp", client_id="other-app")
    ).body.oidcprovider
    assert removed.client_ids == CLIENT_ID
    added = client.add_client_id_to_oidcprovider(
        ims.AddClientIdToOIDCProviderRequest(oidcprovider_name="ci-idp", client_id="third")
    ).body.oidcprovider
    assert added.client_ids == f"{CLIENT_ID},third"
    second = "B" * 40
    printed = client.add_fingerprint_to_oidcprovider(
        ims.AddFingerprintToOIDCProviderRequest(oidcprovider_name="ci-idp", fingerprint=second)
    ).body.oidcprovider
    assert printed.fingerprints == f"{PRINT},{second.lower()}"
    client.remove_fingerprint_from_oidcprovider(
        ims.RemoveFingerprintFromOIDCProviderRequest(oidcprovider_name="ci-idp", fingerprint=PRINT)
    )
    # /v1 sees the same provider
    shown = rpc.api.get(
        f"/v1/accounts/{account_id}/oidc-providers/ci-idp",
        headers=rpc.api.basic(root.access_key_id, root.secret),
    ).json()
    assert shown["client_ids"] == [CLIENT_ID, "third"]
    assert shown["fingerprints"] == [second.lower()]

    headers = rpc.api.basic(root.access_key_id, root.secret)
    role = rpc.api.post(
        f"/v1/accounts/{account_id}/roles",
        json={
            "role_name": "deployer",
            "assume_role_policy_document": federated_trust(account_id, "ci-idp", sub=SUBJECT),
        },
        headers=headers,
    )
    assert role.status_code == 201, role.text
    exchange = sts.AssumeRoleWithOIDCRequest(
        oidcprovider_arn=provider["Arn"],
        role_arn=f"acs:ram::{account_id}:role/deployer",
        oidctoken=token(),
        role_session_name="sdk-run",
    )
    anonymous = StsClient(Config(endpoint=rpc.endpoint, protocol="http", region_id="cn-hangzhou"))
    session = anonymous.assume_role_with_oidc(exchange).body
    assert session.assumed_role_user.arn == f"acs:ram::{account_id}:assumed-role/deployer/sdk-run"

    client.delete_oidcprovider(ims.DeleteOIDCProviderRequest(oidcprovider_name="ci-idp"))
    assert _code_of(lambda: anonymous.assume_role_with_oidc(exchange))[0] in (401, 403)
    listed = client.list_oidcproviders(ims.ListOIDCProvidersRequest()).body
    assert listed.oidcproviders.oidcprovider == []


def test_sdk_core_creates_one_with_a_v1_signature(rpc: RpcServer) -> None:
    root = rpc.open_account()
    request = rpc.common(
        "CreateOIDCProvider",
        {
            "OIDCProviderName": "v1-idp",
            "IssuerUrl": ISSUER,
            "ClientIds": CLIENT_ID,
            "JWKS": json.dumps(jwks()),
        },
        method="POST",
        version=IMS_VERSION,
    )
    answer = core_call(rpc.core(root), request)
    assert answer["OIDCProvider"]["OIDCProviderName"] == "v1-idp"
    assert answer["RequestId"]


def test_refusals_carry_ims_codes_and_write_nothing(rpc: RpcServer) -> None:
    root = rpc.open_account()
    client = _ims(rpc, root)
    _create_v3(client, "taken")
    head = rpc.head()
    typed = ims.CreateOIDCProviderRequest(
        oidcprovider_name="no-keys", issuer_url="https://other.example.test", client_ids="x"
    )
    # RAM finds keys from the issuer; Mandate must be given them, and says so
    assert _code_of(lambda: client.create_oidcprovider(typed)) == (400, "InvalidParameter.JWKS")
    assert _code_of(lambda: _create_v3(client, "taken")) == (
        409,
        "EntityAlreadyExists.OIDCProvider",
    )
    assert _code_of(lambda: _create_v3(client, "same-issuer")) == (
        409,
        "EntityAlreadyExists.OIDCProvider.IssuerUrl",
    )
    assert _code_of(
        lambda: _create_v3(client, "bad-url", IssuerUrl="http://plain.example.test")
    ) == (400, "InvalidParameter.IssuerUrl")
    assert _code_of(lambda: _create_v3(client, "bad-limit", IssuanceLimitTime="500"))[1] == (
        "InvalidParameter.IssuanceLimitTime"
    )
    missing = ims.GetOIDCProviderRequest(oidcprovider_name="nobody")
    assert _code_of(lambda: client.get_oidcprovider(missing)) == (
        404,
        "EntityNotExist.OIDCProvider",
    )
    gone = ims.DeleteOIDCProviderRequest(oidcprovider_name="nobody")
    assert _code_of(lambda: client.delete_oidcprovider(gone)) == (
        404,
        "EntityNotExist.OIDCProvider",
    )
    twice = ims.AddClientIdToOIDCProviderRequest(oidcprovider_name="taken", client_id=CLIENT_ID)
    assert _code_of(lambda: client.add_client_id_to_oidcprovider(twice)) == (
        409,
        "EntityAlreadyExists.OIDCProvider.ClientId",
    )
    absent = ims.RemoveFingerprintFromOIDCProviderRequest(
        oidcprovider_name="taken", fingerprint=PRINT
    )
    assert _code_of(lambda: client.remove_fingerprint_from_oidcprovider(absent)) == (
        404,
        "EntityNotExist.OIDCProvider.Fingerprint",
    )
    bad_print = ims.AddFingerprintToOIDCProviderRequest(
        oidcprovider_name="taken", fingerprint="not-hex"
    )
    assert _code_of(lambda: client.add_fingerprint_to_oidcprovider(bad_print)) == (
        400,
        "InvalidParameter.Fingerprints",
    )
    no_name = ims.GetOIDCProviderRequest()
    assert _code_of(lambda: client.get_oidcprovider(no_name)) == (
        400,
        "MissingOIDCProviderName",
    )
    assert rpc.head() == head


def test_a_ram_user_needs_the_ram_action(rpc: RpcServer) -> None:
    root = rpc.open_account()
    account_id = root.account_id
    headers = rpc.api.basic(root.access_key_id, root.secret)
    user_headers = rpc.api.create_user(account_id, headers, "ops")
    user_key_id, user_secret = _basic_pair(user_headers)
    user = _ims(rpc, Key(user_key_id, user_secret, account_id))
    head = rpc.head()
    assert _code_of(lambda: _create_v3(user, "by-user")) == (403, "NoPermission")
    listing = ims.ListOIDCProvidersRequest()
    assert _code_of(lambda: user.list_oidcproviders(listing)) == (403, "NoPermission")
    assert rpc.head() == head
    rpc.api.attach(account_id, headers, "users/ops", "System", "AliyunRAMFullAccess")
    assert _create_v3(user, "by-user")["OIDCProvider"]["OIDCProviderName"] == "by-user"


def _basic_pair(headers: dict[str, str]) -> tuple[str, str]:
    """The AccessKey id and secret inside HTTP Basic headers (the test's own key)."""
    pair = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    key_id, secret = pair.split(":", 1)
    return key_id, secret
