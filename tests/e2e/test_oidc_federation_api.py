"""OIDC federation over ``/v1``: providers, ``POST /v1/sts/assume-role-with-oidc``, the session.

Pages the behaviour follows:
- AssumeRoleWithOIDC, called anonymously (no AccessKey, no signature; the token is the
  credential), answering Credentials, AssumedRoleUser and OIDCTokenInfo:
  https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerolewithoidc
- STS's error codes, 401 AuthenticationFail.OIDCToken.*:
  https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes
- CreateOIDCProvider (ram:CreateOIDCProvider):
  https://www.alibabacloud.com/help/en/ram/developer-reference/api-ims-2019-08-15-createoidcprovider

Each test opens its own account on the module's server (SQLite, then PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Headers, MandateClient
from tests.oidc_support import CLIENT_ID, ISSUER, SUBJECT, federated_trust, jwks, token

PROVIDER = "ci-idp"
ROLE = "deployer"


def _object(account_id: str, key: str = "builds/app.tar") -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:bucket/{key}"


def _federated_account(api: MandateClient) -> tuple[str, Headers]:
    """An account with the provider ``ci-idp`` and a role ``deployer`` trusting its tokens
    whose sub is ``SUBJECT`` and aud ``CLIENT_ID``, holding AliyunOSSFullAccess."""
    account_id, root = api.open_account("Acme")
    created = api.post(
        f"/v1/accounts/{account_id}/oidc-providers",
        json={
            "oidc_provider_name": PROVIDER,
            "issuer_url": ISSUER,
            "client_ids": [CLIENT_ID],
            "jwks": jwks(),
            "description": "CI workloads",
        },
        headers=root,
    )
    assert created.status_code == 201, created.text
    trust = federated_trust(account_id, PROVIDER, sub=SUBJECT, aud=CLIENT_ID)
    role = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={"role_name": ROLE, "assume_role_policy_document": trust},
        headers=root,
    )
    assert role.status_code == 201, role.text
    api.attach(account_id, root, f"roles/{ROLE}", "System", "AliyunOSSFullAccess")
    return account_id, root


def _exchange(api: MandateClient, account_id: str, oidc_token: str, **extra: Any) -> Any:
    return api.post(
        "/v1/sts/assume-role-with-oidc",
        json={
            "oidc_provider_arn": f"acs:ram::{account_id}:oidc-provider/{PROVIDER}",
            "role_arn": f"acs:ram::{account_id}:role/{ROLE}",
            "oidc_token": oidc_token,
            "role_session_name": "ci-run-1",
            **extra,
        },
    )


def _session_headers(body: dict[str, Any]) -> Headers:
    credentials = body["credentials"]
    return {
        **MandateClient.basic(credentials["access_key_id"], credentials["access_key_secret"]),
        "X-Security-Token": credentials["security_token"],
    }


def _may(api: MandateClient, headers: Headers, action: str, resource: str) -> bool:
    response = api.post(
        "/v1/authorize", json={"action": action, "resource": resource}, headers=headers
    )
    if response.status_code == 401:
        return False
    assert response.status_code == 200, response.text
    allowed: bool = response.json()["allowed"]
    return allowed


def test_a_workload_exchanges_its_token_for_a_session_within_role_and_session_policy(
    api: MandateClient,
) -> None:
    account_id, root = _federated_account(api)
    policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    response = _exchange(api, account_id, token(alg="ES256"), policy=policy, duration_seconds=900)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["assumed_role_user"]["arn"] == f"acs:ram::{account_id}:assumed-role/{ROLE}/ci-run-1"
    info = body["oidc_token_info"]
    assert info["subject"] == SUBJECT
    assert info["issuer"] == ISSUER
    assert info["client_ids"] == [CLIENT_ID]
    assert body["source_provider_arn"] == f"acs:ram::{account_id}:oidc-provider/{PROVIDER}"
    session = _session_headers(body)
    # role (AliyunOSSFullAccess) ∩ session policy (oss:GetObject only)
    assert _may(api, session, "oss:GetObject", _object(account_id))
    assert not _may(api, session, "oss:PutObject", _object(account_id))
    assert not _may(api, session, "ram:ListUsers", f"acs:ram::{account_id}:user/*")
    identity = api.get("/v1/sts/caller-identity", headers=session).json()
    assert identity["identity_type"] == "AssumedRoleUser"
    assert identity["chain"][0] == f"acs:ram::{account_id}:oidc-provider/{PROVIDER}"
    # the audit trail records who asked: the provider, and the subject it vouched for
    events = api.get(f"/v1/accounts/{account_id}/audit-events", headers=root).json()["items"]
    issued = [e for e in events if e["event_type"] == "SessionIssued"]
    assert len(issued) == 1
    assert issued[0]["actor"] == f"acs:ram::{account_id}:oidc-provider/{PROVIDER}"
    assert issued[0]["credential"] == f"oidc-sub:{SUBJECT}"
    assert issued[0]["summary"]["source_arn"] == body["source_provider_arn"]


def test_refused_tokens_are_401_with_stss_code_write_nothing_and_reach_the_security_log(
    api: MandateClient,
) -> None:
    account_id, root = _federated_account(api)
    head = api.log_head()
    cases = [
        (token(aud="another-client"), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        (token(iss="https://evil.example.test"), "AuthenticationFail.OIDCToken.IssuerNotMatch"),
        (
            token(exp=int(datetime.now(UTC).timestamp()) - 600),
            "AuthenticationFail.OIDCToken.Expired",
        ),
        (token(sub="system:serviceaccount:ci:intruder"), "NoPermission"),
    ]
    for bad, code in cases:
        response = _exchange(api, account_id, bad)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == code
        assert bad not in response.text  # never the token
        assert bad.split(".")[1] not in response.text
    unknown = api.post(
        "/v1/sts/assume-role-with-oidc",
        json={
            "oidc_provider_arn": f"acs:ram::{account_id}:oidc-provider/nope",
            "role_arn": f"acs:ram::{account_id}:role/{ROLE}",
            "oidc_token": token(),
            "role_session_name": "ci-run-1",
        },
    )
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "AuthenticationFail.NoPermission"
    assert api.log_head() == head  # no refusal wrote an event
    rows = api.get(f"/v1/accounts/{account_id}/security-events", headers=root).json()["items"]
    refused = [r for r in rows if r["action"] == "sts:AssumeRoleWithOIDC"]
    # the provider's account sees its tokens refused (the unknown provider's is not its)
    assert sorted(r["code"] for r in refused) == sorted(code for _, code in cases)
    assert all(r["kind"] == "authentication_failed" for r in refused)
    assert all("eyJ" not in (r["reason"] or "") for r in refused)


def test_the_session_is_answered_as_of_any_instant_and_dies_with_revocation(
    api: MandateClient,
) -> None:
    """Temporal oracle: before it was issued, while alive, and after its role's revocation."""
    account_id, root = _federated_account(api)
    before = datetime.now(UTC)
    body = _exchange(api, account_id, token()).json()
    key_id = body["credentials"]["access_key_id"]
    alive_at = datetime.now(UTC) + timedelta(milliseconds=1)
    listed = api.get(f"/v1/accounts/{account_id}/as-of/sessions", headers=root)
    assert listed.status_code == 200, listed.text
    sessions = {s["id"]: s for s in listed.json()["items"]}
    assert sessions[key_id]["source_arn"] == f"acs:ram::{account_id}:oidc-provider/{PROVIDER}"
    assert sessions[key_id]["status"] == "active"
    question = {"action": "oss:GetObject", "resource": _object(account_id), "principal": key_id}
    assert api.authorize(root, **question)["allowed"] is True
    revoked = api.post(
        f"/v1/accounts/{account_id}/roles/{ROLE}/revoke-sessions", json={}, headers=root
    )
    assert revoked.status_code == 200, revoked.text
    assert not _may(api, _session_headers(body), "oss:GetObject", _object(account_id))
    assert api.authorize(root, **question)["allowed"] is False
    then = api.authorize(root, **question, as_of=alive_at.isoformat())
    assert then["allowed"] is True, then
    earlier = api.authorize(root, **question, as_of=before.isoformat())
    assert earlier["allowed"] is False
    # the as-of listing agrees: alive then, ended by the revocation now
    path = f"/v1/accounts/{account_id}/as-of/sessions"
    then_rows = api.get(path, params={"as_of": alive_at.isoformat()}, headers=root).json()
    assert {r["id"]: r["status"] for r in then_rows["items"]}[key_id] == "active"
    now_rows = api.get(path, headers=root).json()["items"]
    assert all(r["status"] != "active" for r in now_rows if r["id"] == key_id)


def test_providers_are_managed_as_ram_authorises(api: MandateClient) -> None:
    account_id, root = _federated_account(api)
    user = api.create_user(account_id, root, "dev")
    path = f"/v1/accounts/{account_id}/oidc-providers"
    denied = api.post(
        path,
        json={
            "oidc_provider_name": "other",
            "issuer_url": ISSUER,
            "client_ids": [CLIENT_ID],
            "jwks": jwks(),
        },
        headers=user,
    )
    assert denied.status_code == 403, denied.text
    got = api.get(f"{path}/{PROVIDER}", headers=root)
    assert got.status_code == 200, got.text
    assert got.json()["issuance_limit_time"] == 12
    assert got.json()["client_ids"] == [CLIENT_ID]
    private = {"keys": [{**jwks()["keys"][0], "d": "AQAB"}]}
    bad = api.post(
        path,
        json={
            "oidc_provider_name": "p2",
            "issuer_url": ISSUER,
            "client_ids": ["c"],
            "jwks": private,
        },
        headers=root,
    )
    assert bad.status_code == 400, bad.text
    assert "AQAB" not in bad.text
    before = _exchange(api, account_id, token(aud="second"))
    assert before.json()["code"] == "AuthenticationFail.OIDCToken.AudienceNotMatch"
    update = {"client_ids": [CLIENT_ID, "second"], "issuance_limit_time": 24}
    assert api.patch(f"{path}/{PROVIDER}", json=update, headers=user).status_code == 403
    patched = api.patch(f"{path}/{PROVIDER}", json=update, headers=root)
    assert patched.status_code == 200, patched.text
    assert patched.json()["client_ids"] == [CLIENT_ID, "second"]
    assert patched.json()["issuance_limit_time"] == 24
    # the token now verifies; the role's trust still asks oidc:aud == CLIENT_ID
    after = _exchange(api, account_id, token(aud="second"))
    assert after.status_code == 401
    assert after.json()["code"] == "NoPermission"
    assert api.delete(f"{path}/{PROVIDER}", headers=user).status_code == 403
    assert api.delete(f"{path}/{PROVIDER}", headers=root).status_code == 200
    assert api.get(f"{path}/{PROVIDER}", headers=root).status_code == 404
    gone = _exchange(api, account_id, token())
    assert gone.status_code == 401
    assert gone.json()["code"] == "AuthenticationFail.NoPermission"


def test_providers_are_listed_now_and_as_of_any_instant(api: MandateClient) -> None:
    """Temporal oracle for the provider layer: absent before its registration, with its first
    client ids between registration and update, its new ones after, gone after deletion —
    ``GET …/as-of/oidc-providers?as_of=T`` at each, and the live listing (ListOIDCProviders)."""
    before = datetime.now(UTC)
    account_id, root = _federated_account(api)
    path = f"/v1/accounts/{account_id}/oidc-providers"
    registered = datetime.now(UTC)
    updated = api.patch(f"{path}/{PROVIDER}", json={"client_ids": ["second"]}, headers=root)
    assert updated.status_code == 200, updated.text
    after_update = datetime.now(UTC)
    listed = api.get(path, headers=root)
    assert listed.status_code == 200, listed.text
    [live] = listed.json()["items"]
    assert live["arn"] == f"acs:ram::{account_id}:oidc-provider/{PROVIDER}"
    assert live["client_ids"] == ["second"]
    assert live["issuer_url"] == ISSUER
    assert live["keys"] == "inline"
    user = api.create_user(account_id, root, "dev")
    assert api.get(path, headers=user).status_code == 403  # ram:ListOIDCProviders
    assert api.delete(f"{path}/{PROVIDER}", headers=root).status_code == 200
    assert api.get(path, headers=root).json()["items"] == []

    def as_of(at: datetime) -> list[dict[str, Any]]:
        response = api.get(
            f"/v1/accounts/{account_id}/as-of/oidc-providers",
            params={"as_of": at.isoformat()},
            headers=root,
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert as_of(before) == []
    [then] = as_of(registered)
    assert then["name"] == PROVIDER
    assert then["client_ids"] == [CLIENT_ID]
    assert then["status"] == "active"
    assert [p["client_ids"] for p in as_of(after_update)] == [["second"]]
    assert as_of(datetime.now(UTC)) == []


def test_an_issuer_url_serves_one_provider_of_an_account(api: MandateClient) -> None:
    """RAM: one issuer URL, one provider per account (its spelling aside); another account
    may register it too. The refusal is 409 and writes nothing; a delete frees the URL."""
    account_id, root = _federated_account(api)
    path = f"/v1/accounts/{account_id}/oidc-providers"
    again = {"oidc_provider_name": "p2", "client_ids": ["c"], "jwks": jwks()}
    head = api.log_head()
    for spelling in (ISSUER, "https://IDP.example.test:443/tenant/"):
        refused = api.post(path, json={**again, "issuer_url": spelling}, headers=root)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "EntityAlreadyExists.OIDCProvider.IssuerUrl"
    assert api.log_head() == head
    other = api.post(path, json={**again, "issuer_url": f"{ISSUER}/other"}, headers=root)
    assert other.status_code == 201, other.text
    elsewhere, other_root = api.open_account("Other")
    theirs = api.post(
        f"/v1/accounts/{elsewhere}/oidc-providers",
        json={**again, "issuer_url": ISSUER},
        headers=other_root,
    )
    assert theirs.status_code == 201, theirs.text
    assert api.delete(f"{path}/{PROVIDER}", headers=root).status_code == 200
    reused = api.post(
        path, json={**again, "oidc_provider_name": "p3", "issuer_url": ISSUER}, headers=root
    )
    assert reused.status_code == 201, reused.text
