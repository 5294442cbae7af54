"""STS's AssumeRoleWithOIDC at ``/``, driven by the real SDK (alibabacloud-sts20150401).

The SDK sends the call anonymously (``auth_type='Anonymous'``: no AccessKey, no signature),
as STS documents it; the answer is read into its models (``Credentials``, ``AssumedRoleUser``,
``OIDCTokenInfo``), and the credentials then sign calls with their security token. A refused
token is STS's 401 with its code and writes nothing.

Pages: https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc
and the error codes https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alibabacloud_sts20150401 import models as sts
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.models import Config

from tests.e2e.rpc_support import RpcServer, TeaError, rpc_serving
from tests.oidc_support import CLIENT_ID, ISSUER, SUBJECT, federated_trust, jwks, token


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


def _federated_account(rpc: RpcServer) -> str:
    """An account (set up through /v1) whose role ``deployer`` trusts the provider's tokens
    for ``SUBJECT``."""
    root = rpc.open_account()
    api, account_id = rpc.api, root.account_id
    headers = api.basic(root.access_key_id, root.secret)
    created = api.post(
        f"/v1/accounts/{account_id}/oidc-providers",
        json={
            "oidc_provider_name": "ci-idp",
            "issuer_url": ISSUER,
            "client_ids": [CLIENT_ID],
            "jwks": jwks(),
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    role = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={
            "role_name": "deployer",
            "assume_role_policy_document": federated_trust(account_id, "ci-idp", sub=SUBJECT),
        },
        headers=headers,
    )
    assert role.status_code == 201, role.text
    api.attach(account_id, headers, "roles/deployer", "System", "AliyunOSSFullAccess")
    return account_id


def _anonymous(rpc: RpcServer) -> StsClient:
    return StsClient(Config(endpoint=rpc.endpoint, protocol="http", region_id="cn-hangzhou"))


def _request(account_id: str, oidc_token: str) -> sts.AssumeRoleWithOIDCRequest:
    return sts.AssumeRoleWithOIDCRequest(
        oidcprovider_arn=f"acs:ram::{account_id}:oidc-provider/ci-idp",
        role_arn=f"acs:ram::{account_id}:role/deployer",
        oidctoken=oidc_token,
        role_session_name="sdk-run",
        duration_seconds=900,
    )


def _code_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(TeaError) as caught:
        call()
    return caught.value.status_code, caught.value.code


def test_the_sdk_exchanges_a_token_anonymously_and_signs_with_the_session(
    rpc: RpcServer,
) -> None:
    account_id = _federated_account(rpc)
    answer = _anonymous(rpc).assume_role_with_oidc(_request(account_id, token())).body
    assert answer.assumed_role_user.arn == f"acs:ram::{account_id}:assumed-role/deployer/sdk-run"
    assert answer.oidctoken_info.subject == SUBJECT
    assert answer.oidctoken_info.issuer == ISSUER
    assert answer.oidctoken_info.client_ids == CLIENT_ID
    credentials = answer.credentials
    assert credentials.access_key_id.startswith("STS.")
    assert credentials.expiration.endswith("Z")
    session = StsClient(
        Config(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            endpoint=rpc.endpoint,
            protocol="http",
        )
    )
    me = session.get_caller_identity().body
    assert me.identity_type == "AssumedRoleUser"
    assert me.arn == f"acs:ram::{account_id}:assumed-role/deployer/sdk-run"


def test_a_refused_token_is_stss_401_and_writes_nothing(rpc: RpcServer) -> None:
    account_id = _federated_account(rpc)
    head = rpc.head()
    client = _anonymous(rpc)
    expired = token(iat=int(time.time()) - 7_200, exp=int(time.time()) - 3_600)
    assert _code_of(lambda: client.assume_role_with_oidc(_request(account_id, expired))) == (
        401,
        "AuthenticationFail.OIDCToken.Expired",
    )
    stranger = token(sub="system:serviceaccount:ci:intruder")
    assert _code_of(lambda: client.assume_role_with_oidc(_request(account_id, stranger))) == (
        401,
        "NoPermission",
    )
    assert rpc.head() == head
