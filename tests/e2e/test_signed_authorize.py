"""Signed requests on /v1: an enforcement point's ``signed`` authorize form, and the
``ACS3-HMAC-SHA256`` Authorization header as an alternative to Basic.

The app is the real one under uvicorn over the module's store (``rpc_serving``), with its own
secret lookup: signatures are verified with the secrets the server sealed when it issued
them (the account's user key, the STS session's secret).

An account holds a role ``app-writer`` whose policy allows ``oss:GetObject``/``oss:PutObject``
on ``acs:oss:*:*:media/app/*``; the user ``phone`` (an app's backend) assumes it with a
session policy narrowing that to ``media/app/alice/*``. The mobile client signs OSS requests
with the session's credentials through oss2 (V1 and V4 headers, presigned URLs); the
enforcement point ``gateway`` (a user allowed ``ram:Authorize``) sends what it received to
``/v1/authorize`` and never holds the session's secret.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import oss2
import pytest
from alibabacloud_tea_openapi.utils import Utils
from oss2.http import Request as OssRequest

from mandate.projections.decisions import authentication
from tests.e2e.conftest import Headers
from tests.e2e.rpc_support import Key, RpcServer, rpc_serving

BUCKET = "media"
REGION = "cn-hangzhou"
ENDPOINT = f"https://oss-{REGION}.aliyuncs.com"
ROLE = "app-writer"


@pytest.fixture(scope="module")
def server(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as served:
        yield served


@dataclass(frozen=True)
class Tenant:
    """One account: its root, the gateway's headers, the phone user's key, a session."""

    account_id: str
    root: Headers
    gateway: Headers
    phone: Key
    session: dict[str, str]


def _tenant(server: RpcServer) -> Tenant:
    api = server.api
    root_key = server.open_account()
    account_id = root_key.account_id
    root = api.basic(root_key.access_key_id, root_key.secret)
    objects = {
        "Effect": "Allow",
        "Action": ["oss:GetObject", "oss:PutObject"],
        "Resource": f"acs:oss:*:*:{BUCKET}/app/*",
    }
    api.create_policy(account_id, root, "AppObjects", [objects])
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
        json={"role_name": ROLE, "assume_role_policy_document": trust},
        headers=root,
    )
    assert created.status_code == 201, created.text
    api.attach(account_id, root, f"roles/{ROLE}", "Custom", "AppObjects")

    users = f"/v1/accounts/{account_id}/users"
    assert api.post(users, json={"user_name": "phone"}, headers=root).status_code == 201
    issued = api.post(f"{users}/phone/access-keys", headers=root).json()
    phone = server.register(issued["access_key_id"], issued["access_key_secret"], account_id)
    api.attach(account_id, root, "users/phone", "System", "AliyunSTSAssumeRoleAccess")
    api.attach(account_id, root, "users/phone", "System", "ReadOnlyAccess")

    gateway = api.create_user(account_id, root, "gateway")
    asks = {"Effect": "Allow", "Action": "ram:Authorize", "Resource": "*"}
    api.create_policy(account_id, root, "GatewayAsks", [asks])
    api.attach(account_id, root, "users/gateway", "Custom", "GatewayAsks")

    session_policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject", "oss:PutObject"],
                "Resource": f"acs:oss:*:*:{BUCKET}/app/alice/*",
            }
        ],
    }
    assumed = api.post(
        "/v1/sts/assume-role",
        json={
            "role_arn": f"acs:ram::{account_id}:role/{ROLE}",
            "role_session_name": "alice-phone",
            "duration_seconds": 1800,
            "policy": session_policy,
        },
        headers=api.basic(phone.access_key_id, phone.secret),
    )
    assert assumed.status_code == 201, assumed.text
    credentials: dict[str, str] = assumed.json()["credentials"]
    server.register(credentials["access_key_id"], credentials["access_key_secret"], account_id)
    return Tenant(account_id, root, gateway, phone, credentials)


@pytest.fixture(scope="module")
def tenant(server: RpcServer) -> Tenant:
    return _tenant(server)


def _sts_auth(session: dict[str, str], version: str = "v1") -> Any:
    return oss2.StsAuth(
        session["access_key_id"],
        session["access_key_secret"],
        session["security_token"],
        auth_version=version,
    )


def _signed_header(
    auth: Any,
    key: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    v4: bool = False,
) -> dict[str, Any]:
    """oss2 signing a prepared request (as ``Bucket`` does before sending); what the
    enforcement point received, as the ``signed`` object it forwards."""
    request = OssRequest(
        method,
        f"https://{BUCKET}.oss-{REGION}.aliyuncs.com/{key}",
        params=dict(params or {}),
        headers=dict(headers or {}),
        region=REGION,
        product="oss",
    )
    auth._sign_request(request, BUCKET, key)
    sent = [[k, v] for k, v in request.headers.items() if v is not None]
    signed: dict[str, Any] = {
        "method": method,
        "bucket": BUCKET,
        "key": key,
        "params": [[k, v] for k, v in request.params.items()],
        "headers": sent,
    }
    if v4:
        signed["region"] = REGION
    return signed


def _signed_url(auth: Any, key: str, *, method: str = "GET", v4: bool = False) -> dict[str, Any]:
    """``Bucket.sign_url``, and the URL read back as the enforcement point receives it."""
    bucket = oss2.Bucket(auth, ENDPOINT, BUCKET, region=REGION)
    url = bucket.sign_url(method, key, 600)
    split = urlsplit(url)
    signed: dict[str, Any] = {
        "method": method,
        "bucket": BUCKET,
        "key": unquote(split.path[1:]),
        "params": parse_qsl(split.query, keep_blank_values=True),
    }
    if v4:
        signed["region"] = REGION
    return signed


def _resource(tenant: Tenant, key: str) -> str:
    return f"acs:oss:{REGION}:{tenant.account_id}:{BUCKET}/{key}"


def _ask(server: RpcServer, tenant: Tenant, signed: dict[str, Any], action: str, key: str) -> Any:
    """The gateway's question: the client's signed request, the action and resource."""
    body = {"action": action, "resource": _resource(tenant, key), "signed": signed}
    sent = json.dumps(body)
    # the enforcement point holds no secret of its client: it forwards what it received
    assert tenant.session["access_key_secret"] not in sent
    return server.api.post("/v1/authorize", content=sent, headers=tenant.gateway)


def _problem(response: Any, code: str, *secrets: str) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    for secret in secrets:
        assert secret not in response.text
    return body


SIGNERS = {
    "v1 header": lambda t, key, method: _signed_header(_sts_auth(t.session), key, method=method),
    "v4 header": lambda t, key, method: _signed_header(
        _sts_auth(t.session, "v4"), key, method=method, v4=True
    ),
    "v1 url": lambda t, key, method: _signed_url(_sts_auth(t.session), key, method=method),
    "v4 url": lambda t, key, method: _signed_url(
        _sts_auth(t.session, "v4"), key, method=method, v4=True
    ),
}


@pytest.mark.parametrize("scheme", list(SIGNERS))
def test_the_allowed_prefix_is_allowed_and_another_denied(
    server: RpcServer, tenant: Tenant, scheme: str
) -> None:
    sign = SIGNERS[scheme]
    head = server.head()
    for method, action in (("GET", "oss:GetObject"), ("PUT", "oss:PutObject")):
        mine = "app/alice/cat.jpg"
        allowed = _ask(server, tenant, sign(tenant, mine, method), action, mine)
        assert allowed.status_code == 200, allowed.text
        answer = allowed.json()
        assert answer["decision"] == "Allow", answer
        assert {m["layer"] for m in answer["matched"]} >= {"session"}

        other = "app/bob/cat.jpg"  # the role allows it; the session policy does not
        denied = _ask(server, tenant, sign(tenant, other, method), action, other)
        assert denied.status_code == 200, denied.text
        assert denied.json()["decision"] == "ImplicitDeny"
        assert denied.json()["allowed"] is False
    assert server.head() == head  # a decision writes nothing


def test_a_v1_header_with_content_headers_and_subresources_is_verified(
    server: RpcServer, tenant: Tenant
) -> None:
    key = "app/alice/report 2026 ~é.csv"
    signed = _signed_header(
        _sts_auth(tenant.session),
        key,
        method="PUT",
        headers={
            "Content-Type": "text/csv",
            "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
            "x-oss-meta-owner": "alice",
        },
        params={"acl": "", "versionId": "v1"},
    )
    response = _ask(server, tenant, signed, "oss:PutObject", key)
    assert response.status_code == 200, response.text
    assert response.json()["allowed"] is True


@pytest.mark.parametrize("scheme", list(SIGNERS))
def test_a_tampered_signature_is_401(server: RpcServer, tenant: Tenant, scheme: str) -> None:
    key = "app/alice/cat.jpg"
    signed = SIGNERS[scheme](tenant, key, "GET")
    signed["key"] = "app/alice/dog.jpg"  # another object than the one signed
    response = _ask(server, tenant, signed, "oss:GetObject", "app/alice/dog.jpg")
    body = _problem(response, "SignatureDoesNotMatch", tenant.session["access_key_secret"])
    assert body["detail"].startswith("the signed request is refused: ")
    assert tenant.session["security_token"] not in response.text


def test_a_wrong_secret_is_401(server: RpcServer, tenant: Tenant) -> None:
    forged = dict(tenant.session, access_key_secret="not-the-secret-at-all")
    signed = _signed_header(_sts_auth(forged), "app/alice/cat.jpg")
    response = _ask(server, tenant, signed, "oss:GetObject", "app/alice/cat.jpg")
    _problem(response, "SignatureDoesNotMatch", tenant.session["access_key_secret"])


def test_a_stale_date_an_unknown_key_and_a_missing_token_are_401(
    server: RpcServer, tenant: Tenant
) -> None:
    key = "app/alice/cat.jpg"
    old = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    stale = _signed_header(_sts_auth(tenant.session), key, headers={"x-oss-date": old})
    _problem(_ask(server, tenant, stale, "oss:GetObject", key), "InvalidTimeStamp.Expired")

    stranger = oss2.StsAuth("STS.NeverIssued0000", "whatever", tenant.session["security_token"])
    unknown = _signed_header(stranger, key)
    _problem(_ask(server, tenant, unknown, "oss:GetObject", key), "InvalidAccessKeyId.NotFound")

    s = tenant.session
    tokenless = _signed_header(oss2.Auth(s["access_key_id"], s["access_key_secret"]), key)
    _problem(_ask(server, tenant, tokenless, "oss:GetObject", key), "MissingSecurityToken")

    unsigned = {"method": "GET", "bucket": BUCKET, "key": key}
    _problem(_ask(server, tenant, unsigned, "oss:GetObject", key), "IncompleteSignature")


def test_an_expired_session_is_401(
    server: RpcServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session was issued for 1800 s; the server's clock for sessions moves 2 h on (the
    request itself is freshly signed, so only the session's expiry refuses it)."""

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=2)

    key = "app/alice/cat.jpg"
    signed = _signed_header(_sts_auth(tenant.session), key)
    assert _ask(server, tenant, signed, "oss:GetObject", key).json()["allowed"] is True
    monkeypatch.setattr(authentication, "datetime", Later)
    response = _ask(server, tenant, signed, "oss:GetObject", key)
    body = _problem(response, "InvalidSecurityToken.Expired", tenant.session["access_key_secret"])
    assert "expired" in body["detail"]


def test_the_signed_form_is_alone_and_asked_only_by_those_who_may(
    server: RpcServer, tenant: Tenant
) -> None:
    key = "app/alice/cat.jpg"
    signed = _signed_header(_sts_auth(tenant.session), key)
    api = server.api
    for extra in (
        {"principal": f"acs:ram::{tenant.account_id}:user/phone"},
        {"as_of": "2026-01-01T00:00:00Z"},
    ):
        body = {"action": "oss:GetObject", "resource": _resource(tenant, key), "signed": signed}
        response = api.post("/v1/authorize", json={**body, **extra}, headers=tenant.gateway)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["field"] == "signed"
    # the phone user may not decide for the session (no ram:Authorize): 403, not an answer
    phone = api.basic(tenant.phone.access_key_id, tenant.phone.secret)
    response = api.post(
        "/v1/authorize",
        json={"action": "oss:GetObject", "resource": _resource(tenant, key), "signed": signed},
        headers=phone,
    )
    assert response.status_code == 403, response.text
    # another account's root learns nothing about this account's session
    _, stranger = api.open_account("Other")
    response = api.post(
        "/v1/authorize",
        json={"action": "oss:GetObject", "resource": _resource(tenant, key), "signed": signed},
        headers=stranger,
    )
    assert response.status_code == 403, response.text


# -- ACS3-HMAC-SHA256 on /v1 ---------------------------------------------------------------


def _acs3(
    server: RpcServer,
    key: Key,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: dict[str, str] | None = None,
    token: str | None = None,
    date: datetime | None = None,
) -> dict[str, str]:
    """The headers tea-openapi's V3 signer (``Utils.get_authorization``) makes for a request."""
    url = server.api.base_url
    headers = {
        "host": f"{url.host}:{url.port}",
        "x-acs-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if body:
        headers["content-type"] = "application/json"
    if token is not None:
        headers["x-acs-security-token"] = token
    request = SimpleNamespace(method=method, pathname=path, query=query or {}, headers=headers)
    headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], key.access_key_id, key.secret
    )
    return headers


def test_v1_routes_accept_an_acs3_signature(server: RpcServer, tenant: Tenant) -> None:
    api = server.api
    users = f"/v1/accounts/{tenant.account_id}/users"
    listed = api.get(users, headers=_acs3(server, tenant.phone, "GET", users))
    assert listed.status_code == 200, listed.text
    assert "phone" in listed.text

    query = {"marker": ""}
    listed = api.get(
        users, params=query, headers=_acs3(server, tenant.phone, "GET", users, query=query)
    )
    assert listed.status_code == 200, listed.text

    me = "/v1/sts/caller-identity"
    identity = api.get(me, headers=_acs3(server, tenant.phone, "GET", me))
    assert identity.status_code == 200, identity.text
    assert identity.json()["arn"] == f"acs:ram::{tenant.account_id}:user/phone"

    # the hand-served authorize, self form, signed with its body
    ask = json.dumps({"action": "oss:PutObject", "resource": _resource(tenant, "app/x")}).encode()
    answer = api.post(
        "/v1/authorize",
        content=ask,
        headers=_acs3(server, tenant.phone, "POST", "/v1/authorize", body=ask),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "ImplicitDeny"  # ReadOnlyAccess writes nothing


def test_an_sts_session_signs_v1_calls_with_its_token(server: RpcServer, tenant: Tenant) -> None:
    s = tenant.session
    key = Key(s["access_key_id"], s["access_key_secret"], tenant.account_id)
    ask = json.dumps(
        {"action": "oss:GetObject", "resource": _resource(tenant, "app/alice/cat.jpg")}
    ).encode()
    path = "/v1/authorize"
    headers = _acs3(server, key, "POST", path, body=ask, token=s["security_token"])
    answer = server.api.post(path, content=ask, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "Allow"
    unsigned_token = _acs3(server, key, "POST", path, body=ask)
    _problem(server.api.post(path, content=ask, headers=unsigned_token), "MissingSecurityToken")


def test_a_signed_write_on_v1_writes_as_the_signer(server: RpcServer, tenant: Tenant) -> None:
    root = server.open_account()
    users = f"/v1/accounts/{root.account_id}/users"
    body = json.dumps({"user_name": "signed-in"}).encode()
    created = server.api.post(
        users, content=body, headers=_acs3(server, root, "POST", users, body=body)
    )
    assert created.status_code == 201, created.text
    got = server.api.get(
        f"{users}/signed-in", headers=_acs3(server, root, "GET", f"{users}/signed-in")
    )
    assert got.status_code == 200, got.text


def test_refused_acs3_signatures_on_v1_are_401_with_rams_codes(
    server: RpcServer, tenant: Tenant
) -> None:
    api = server.api
    phone = tenant.phone
    users = f"/v1/accounts/{tenant.account_id}/users"
    head = server.head()

    tampered = _acs3(server, phone, "GET", users)
    tampered["Authorization"] = tampered["Authorization"][:-4] + "0000"
    _problem(api.get(users, headers=tampered), "SignatureDoesNotMatch", phone.secret)

    other_path = _acs3(server, phone, "GET", f"/v1/accounts/{tenant.account_id}/groups")
    _problem(api.get(users, headers=other_path), "SignatureDoesNotMatch", phone.secret)

    wrong = Key(phone.access_key_id, "not-the-secret", phone.account_id)
    _problem(api.get(users, headers=_acs3(server, wrong, "GET", users)), "SignatureDoesNotMatch")

    body = json.dumps({"user_name": "mallory"}).encode()
    signed = _acs3(server, phone, "POST", users, body=body)
    changed = json.dumps({"user_name": "mallory2"}).encode()
    _problem(api.post(users, content=changed, headers=signed), "SignatureDoesNotMatch")

    stale = _acs3(server, phone, "GET", users, date=datetime.now(UTC) - timedelta(minutes=20))
    _problem(api.get(users, headers=stale), "InvalidTimeStamp.Expired", phone.secret)

    once = _acs3(server, phone, "GET", users)
    assert api.get(users, headers=once).status_code == 200
    _problem(api.get(users, headers=once), "SignatureNonceUsed", phone.secret)

    unknown = Key("LTAI5tNeverIssued0000", "whatever", tenant.account_id)
    _problem(
        api.get(users, headers=_acs3(server, unknown, "GET", users)), "InvalidAccessKeyId.NotFound"
    )

    unsigned_host = _acs3(server, phone, "GET", users)
    auth = unsigned_host["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    unsigned_host["Authorization"] = auth
    _problem(api.get(users, headers=unsigned_host), "IncompleteSignature", phone.secret)
    assert server.head() == head  # no refused call wrote anything


def test_basic_still_works_and_refusals_without_a_signature_have_no_code(
    server: RpcServer, tenant: Tenant
) -> None:
    api = server.api
    users = f"/v1/accounts/{tenant.account_id}/users"
    assert (
        api.get(
            users, headers=api.basic(tenant.phone.access_key_id, tenant.phone.secret)
        ).status_code
        == 200
    )
    refused = api.get(users, headers=api.basic(tenant.phone.access_key_id, "wrong"))
    assert refused.status_code == 401
    assert "code" not in refused.json()
