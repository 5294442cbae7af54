"""Scenario 3 over HTTP: an untrusted mobile app gets short-lived, narrowed credentials.

The app server is a RAM user allowed ``sts:AssumeRole`` — by the System policy
``AliyunSTSAssumeRoleAccess`` or by a custom policy naming only the role's ARN. The role
``mobile-uploader`` trusts the account's root and holds ``AliyunOSSFullAccess``. For one phone
the app server asks AssumeRole for 30 minutes with a session policy that keeps only
``oss:PutObject``/``oss:GetObject`` on the phone's own prefix; the phone then decides for itself
with the STS credentials (HTTP Basic plus ``X-Security-Token``), and every answer names both
layers it passed. Each test opens its own account on the module's server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Headers, MandateClient

ROLE = "mobile-uploader"
APP_SERVER = "app-server"
SESSION_NAME = "phone-u-42"
SESSION_SECONDS = 1800


def _object(account_id: str, key: str, bucket: str = "photos") -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:{bucket}/{key}"


def _session_policy(account_id: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject", "oss:GetObject"],
                "Resource": f"acs:oss:*:{account_id}:photos/u-42/*",
            }
        ],
    }


@pytest.fixture(params=["system-policy", "custom-policy"])
def grant(request: pytest.FixtureRequest) -> str:
    """How the app server is allowed sts:AssumeRole: the System policy, or only on the role."""
    param: str = request.param
    return param


def _mobile_account(api: MandateClient, grant: str) -> tuple[str, Headers, Headers]:
    """The scenario's account: (account id, root headers, the app server's headers)."""
    account_id, root = api.open_account("PhotoApp")
    app_server = api.create_user(account_id, root, APP_SERVER)
    if grant == "system-policy":
        api.attach(account_id, root, f"users/{APP_SERVER}", "System", "AliyunSTSAssumeRoleAccess")
    else:
        api.create_policy(
            account_id,
            root,
            "AssumeMobileUploader",
            [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": f"acs:ram::{account_id}:role/{ROLE}",
                }
            ],
        )
        api.attach(account_id, root, f"users/{APP_SERVER}", "Custom", "AssumeMobileUploader")
    _create_role(api, account_id, root, ROLE)
    api.attach(account_id, root, f"roles/{ROLE}", "System", "AliyunOSSFullAccess")
    return account_id, root, app_server


def _create_role(api: MandateClient, account_id: str, root: Headers, role_name: str) -> None:
    response = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={
            "role_name": role_name,
            "assume_role_policy_document": {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
                    }
                ],
            },
        },
        headers=root,
    )
    assert response.status_code == 201, response.text


def _assume_request(account_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "role_arn": f"acs:ram::{account_id}:role/{ROLE}",
        "role_session_name": SESSION_NAME,
        "duration_seconds": SESSION_SECONDS,
        "policy": _session_policy(account_id),
        **overrides,
    }


def _issue(api: MandateClient, account_id: str, app_server: Headers) -> dict[str, Any]:
    """The app server's AssumeRole for the phone; the answer (201)."""
    response = api.post("/v1/sts/assume-role", json=_assume_request(account_id), headers=app_server)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _phone(api: MandateClient, credentials: dict[str, Any]) -> Headers:
    """The headers the phone sends: Basic with the STS key, plus the security token."""
    headers = api.basic(credentials["access_key_id"], credentials["access_key_secret"])
    return {**headers, "X-Security-Token": credentials["security_token"]}


def _for_enforcement_point(credentials: dict[str, Any]) -> dict[str, str]:
    return {k: credentials[k] for k in ("access_key_id", "access_key_secret", "security_token")}


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _audit_positions(api: MandateClient, account_id: str, root: Headers) -> list[int]:
    response = api.get(
        f"/v1/accounts/{account_id}/audit-events", params={"limit": "1000"}, headers=root
    )
    assert response.status_code == 200, response.text
    return [record["position"] for record in response.json()["items"]]


def _requests(account_id: str) -> list[tuple[str, str, bool]]:
    """(action, resource, allowed?) — the phone's own prefix, its neighbour, another bucket."""
    return [
        ("oss:PutObject", _object(account_id, "u-42/cat.jpg"), True),
        ("oss:GetObject", _object(account_id, "u-42/cat.jpg"), True),
        ("oss:PutObject", _object(account_id, "u-43/dog.jpg"), False),
        ("oss:GetObject", _object(account_id, "u-43/dog.jpg"), False),
        ("oss:PutObject", _object(account_id, "u-42/cat.jpg", bucket="backups"), False),
        ("oss:DeleteObject", _object(account_id, "u-42/cat.jpg"), False),
    ]


def test_the_app_server_obtains_thirty_minute_credentials_for_the_phone(
    api: MandateClient, grant: str
) -> None:
    """AssumeRole answers an STS key, its secret and token, and an expiration 1800 s away."""
    account_id, _, app_server = _mobile_account(api, grant)
    before = datetime.now(UTC)
    issued = _issue(api, account_id, app_server)
    after = datetime.now(UTC)
    credentials = issued["credentials"]
    assert credentials["access_key_id"].startswith("STS.")
    assert credentials["access_key_secret"]
    assert credentials["security_token"]
    expiration = _parse(credentials["expiration"])
    window = timedelta(seconds=SESSION_SECONDS)
    assert before + window - timedelta(seconds=1) <= expiration <= after + window
    assert issued["assumed_role_user"]["arn"] == (
        f"acs:ram::{account_id}:assumed-role/{ROLE}/{SESSION_NAME}"
    )
    assert issued["assumed_role_user"]["assumed_role_id"].endswith(f":{SESSION_NAME}")
    assert issued["position"] > 0

    identity = api.get("/v1/sts/caller-identity", headers=_phone(api, credentials))
    assert identity.status_code == 200, identity.text
    assert identity.json()["identity_type"] == "AssumedRoleUser"
    assert identity.json()["expiration"] == credentials["expiration"]


def test_the_phone_may_put_and_get_only_under_its_own_prefix(
    api: MandateClient, grant: str
) -> None:
    """Its prefix is allowed through role and session layers; elsewhere, or deleting, is not."""
    account_id, _, app_server = _mobile_account(api, grant)
    phone = _phone(api, _issue(api, account_id, app_server)["credentials"])
    chain = [
        f"acs:ram::{account_id}:user/{APP_SERVER}",
        f"acs:ram::{account_id}:role/{ROLE}",
        f"acs:ram::{account_id}:assumed-role/{ROLE}/{SESSION_NAME}",
    ]
    for action, resource, allowed in _requests(account_id):
        answer = api.authorize(phone, action=action, resource=resource)
        assert answer["allowed"] is allowed, (action, resource, answer)
        assert answer["chain"] == chain
        if allowed:
            assert answer["decision"] == "Allow"
            assert answer["billed_account"] == account_id
            assert {m["layer"] for m in answer["matched"]} == {"role", "session"}
            by_layer = {m["layer"]: m for m in answer["matched"]}
            assert by_layer["role"]["policy_name"] == "AliyunOSSFullAccess"
            assert by_layer["role"]["policy_type"] == "System"
            assert by_layer["session"]["effect"] == "Allow"
        else:
            assert answer["decision"] == "ImplicitDeny"
            assert answer["billed_account"] is None
            assert answer["reason"]


def test_the_narrow_grant_assumes_only_the_named_role(api: MandateClient) -> None:
    """With sts:AssumeRole only on mobile-uploader, another role of the account is 403."""
    account_id, root, app_server = _mobile_account(api, "custom-policy")
    _create_role(api, account_id, root, "billing-exporter")
    refused = api.post(
        "/v1/sts/assume-role",
        json=_assume_request(account_id, role_arn=f"acs:ram::{account_id}:role/billing-exporter"),
        headers=app_server,
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "NoPermission"
    assert "sts:AssumeRole" in refused.json()["detail"]


@pytest.mark.parametrize("duration_seconds", [899, 43201])
def test_a_duration_outside_900_to_43200_seconds_is_refused_and_writes_nothing(
    api: MandateClient, duration_seconds: int
) -> None:
    """RAM's InvalidParameter.DurationSeconds, naming the field; the log does not move."""
    account_id, root, app_server = _mobile_account(api, "system-policy")
    head = api.log_head()
    trail = _audit_positions(api, account_id, root)
    refused = api.post(
        "/v1/sts/assume-role",
        json=_assume_request(account_id, duration_seconds=duration_seconds),
        headers=app_server,
    )
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    body = refused.json()
    assert body["code"] == "InvalidParameter.DurationSeconds"
    assert [e["field"] for e in body["errors"]] == ["duration_seconds"]
    assert "900" in body["errors"][0]["reason"]
    assert api.log_head() == head
    assert _audit_positions(api, account_id, root) == trail
    listed = api.get(f"/v1/accounts/{account_id}/roles/{ROLE}/sessions", headers=root)
    assert listed.json()["items"] == []


def test_a_duration_beyond_the_roles_limit_is_refused_too(api: MandateClient) -> None:
    """Within STS's range but over the role's max_session_duration (3600): 400, same code."""
    account_id, _, app_server = _mobile_account(api, "system-policy")
    head = api.log_head()
    refused = api.post(
        "/v1/sts/assume-role",
        json=_assume_request(account_id, duration_seconds=3601),
        headers=app_server,
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "InvalidParameter.DurationSeconds"
    assert [e["field"] for e in refused.json()["errors"]] == ["duration_seconds"]
    assert api.log_head() == head


def test_a_revoked_session_is_refused_with_the_reason(api: MandateClient, grant: str) -> None:
    """One session revoked (beyond RAM): the same credentials are 401 saying it was revoked."""
    account_id, root, app_server = _mobile_account(api, grant)
    credentials = _issue(api, account_id, app_server)["credentials"]
    phone = _phone(api, credentials)
    request = {"action": "oss:PutObject", "resource": _object(account_id, "u-42/cat.jpg")}
    assert api.authorize(phone, **request)["allowed"] is True

    key_id = credentials["access_key_id"]
    revoked = api.post(
        f"/v1/sts/sessions/{key_id}/revoke", json={"reason": "phone reported stolen"}, headers=root
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["access_key_id"] == key_id
    assert "revoked" in revoked.json()["revoked"]
    assert credentials["access_key_secret"] not in revoked.text
    assert credentials["security_token"] not in revoked.text

    refused = api.post("/v1/authorize", json=request, headers=phone)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in refused.json()["detail"]
    assert api.get("/v1/sts/caller-identity", headers=phone).status_code == 401

    records = api.get(
        f"/v1/accounts/{account_id}/audit-events",
        params={"type": "SessionRevoked"},
        headers=root,
    ).json()["items"]
    assert [r["reason"] for r in records] == ["phone reported stolen"]
    assert records[0]["actor"] == f"acs:ram::{account_id}:root"


def test_an_enforcement_point_deciding_for_the_phone_hears_the_same_answers(
    api: MandateClient, grant: str
) -> None:
    """The root, or a user allowed ram:Authorize, passing the STS credentials and token."""
    account_id, root, app_server = _mobile_account(api, grant)
    gateway = api.create_user(account_id, root, "oss-gateway")
    api.create_policy(
        account_id,
        root,
        "DecideForClients",
        [{"Effect": "Allow", "Action": "ram:Authorize", "Resource": f"acs:ram::{account_id}:*"}],
    )
    api.attach(account_id, root, "users/oss-gateway", "Custom", "DecideForClients")
    credentials = _issue(api, account_id, app_server)["credentials"]
    phone = _phone(api, credentials)
    client = _for_enforcement_point(credentials)

    for action, resource, allowed in _requests(account_id):
        own = api.authorize(phone, action=action, resource=resource)
        for enforcement_point in (root, gateway):
            vouched = api.authorize(
                enforcement_point, action=action, resource=resource, credentials=client
            )
            assert vouched["allowed"] is allowed, (action, resource, vouched)
            for field in ("decision", "matched", "chain", "billed_account"):
                assert vouched[field] == own[field], field

    # A gateway without ram:Authorize may not ask about the phone at all.
    bystander = api.create_user(account_id, root, "bystander")
    asked = api.post(
        "/v1/authorize",
        json={
            "action": "oss:GetObject",
            "resource": _object(account_id, "u-42/cat.jpg"),
            "credentials": client,
        },
        headers=bystander,
    )
    assert asked.status_code == 403, asked.text

    revoked = api.post(f"/v1/sts/sessions/{credentials['access_key_id']}/revoke", headers=root)
    assert revoked.status_code == 200, revoked.text
    for enforcement_point in (root, gateway, api.admin):
        after = api.authorize(
            enforcement_point,
            action="oss:PutObject",
            resource=_object(account_id, "u-42/cat.jpg"),
            credentials=client,
        )
        assert after["allowed"] is False
        assert after["authenticated"] is False
    told = api.authorize(
        api.admin,
        action="oss:PutObject",
        resource=_object(account_id, "u-42/cat.jpg"),
        credentials=client,
    )
    assert "revoked" in told["reason"]


def test_as_of_before_the_revocation_the_session_still_could(api: MandateClient) -> None:
    """Point in time: the ledger still shows what the phone could do before it was revoked."""
    account_id, root, app_server = _mobile_account(api, "system-policy")
    credentials = _issue(api, account_id, app_server)["credentials"]
    key_id = credentials["access_key_id"]
    request = {"action": "oss:PutObject", "resource": _object(account_id, "u-42/cat.jpg")}
    while_valid = datetime.now(UTC).isoformat()
    revoked = api.post(f"/v1/sts/sessions/{key_id}/revoke", json={}, headers=root)
    assert revoked.status_code == 200, revoked.text
    after = datetime.now(UTC).isoformat()

    chain = [
        f"acs:ram::{account_id}:user/{APP_SERVER}",
        f"acs:ram::{account_id}:role/{ROLE}",
        f"acs:ram::{account_id}:assumed-role/{ROLE}/{SESSION_NAME}",
    ]
    by_key = api.authorize(root, **request, principal=key_id, as_of=while_valid)
    assert by_key["allowed"] is True
    assert by_key["chain"] == chain
    assert [m["layer"] for m in by_key["matched"]] == ["role", "session"]
    by_credentials = api.authorize(
        root, **request, credentials=_for_enforcement_point(credentials), as_of=while_valid
    )
    assert by_credentials["allowed"] is True
    assert by_credentials["chain"] == chain
    # outside the prefix it could not, even then
    other = {**request, "resource": _object(account_id, "u-43/cat.jpg")}
    assert api.authorize(root, **other, principal=key_id, as_of=while_valid)["allowed"] is False

    later = api.authorize(root, **request, principal=key_id, as_of=after)
    assert later["allowed"] is False
    assert "revoked" in later["reason"]
    assert api.authorize(root, **request, principal=key_id)["allowed"] is False

    permissions = api.get(
        f"/v1/accounts/{account_id}/effective-permissions",
        params={"principal": key_id, "as_of": while_valid},
        headers=root,
    )
    assert permissions.status_code == 200, permissions.text
    body = permissions.json()
    assert body["chain"] == chain
    assert body["root"] is False
    assert {(s["layer"], s["policy_name"]) for s in body["statements"]} == {
        ("role", "AliyunOSSFullAccess"),
        ("session", "SessionPolicy"),
    }
    gone = api.get(
        f"/v1/accounts/{account_id}/effective-permissions",
        params={"principal": key_id, "as_of": after},
        headers=root,
    )
    assert gone.status_code == 404
    assert "revoked" in gone.json()["detail"]

    # another account learns nothing about the session, now or then
    _, stranger = api.open_account("Stranger")
    refused = api.post(
        "/v1/authorize",
        json={**request, "principal": key_id, "as_of": while_valid},
        headers=stranger,
    )
    assert refused.status_code == 403


def test_a_session_the_live_index_forgot_is_still_answered_about_as_of(
    api: MandateClient,
) -> None:
    """An hour after expiry the live index forgets a session; history still knows whose it was."""
    account_id, root, app_server = _mobile_account(api, "system-policy")
    credentials = _issue(api, account_id, app_server)["credentials"]
    key_id = credentials["access_key_id"]
    request = {"action": "oss:GetObject", "resource": _object(account_id, "u-42/cat.jpg")}
    while_valid = datetime.now(UTC).isoformat()
    index = api.runtime.index
    index._forget_expired_sessions(datetime.now(UTC) + timedelta(days=1))  # as if long expired
    assert key_id not in index.sessions

    answer = api.authorize(root, **request, principal=key_id, as_of=while_valid)
    assert answer["allowed"] is True
    permissions = api.get(
        f"/v1/accounts/{account_id}/effective-permissions",
        params={"principal": key_id, "as_of": while_valid},
        headers=root,
    )
    assert permissions.status_code == 200, permissions.text
    _, stranger = api.open_account("Stranger")
    refused = api.post(
        "/v1/authorize",
        json={**request, "principal": key_id, "as_of": while_valid},
        headers=stranger,
    )
    assert refused.status_code == 403
