"""Roles and STS over HTTP: refusals and their problem+json shapes, revocation, chaining.

Each test opens its own account on the module's server: a user ``alice`` allowed
``sts:AssumeRole`` (``AliyunSTSAssumeRoleAccess``) and a role ``uploader`` that trusts the
account's root and holds ``AliyunOSSFullAccess``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Headers, MandateClient

ROLE = "uploader"


def _trust(*principals: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def _object(account_id: str, key: str = "photos/cat.jpg") -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:{key}"


def _create_role(
    api: MandateClient, account_id: str, headers: Headers, role_name: str, trust: dict[str, Any]
) -> dict[str, Any]:
    response = api.post(
        f"/v1/accounts/{account_id}/roles",
        json={"role_name": role_name, "assume_role_policy_document": trust},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _account(api: MandateClient) -> tuple[str, Headers, Headers]:
    """(account id, root headers, alice's headers) with the role ``uploader`` in place."""
    account_id, root = api.open_account("Acme")
    alice = api.create_user(account_id, root, "alice")
    api.attach(account_id, root, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    _create_role(api, account_id, root, ROLE, _trust(f"acs:ram::{account_id}:root"))
    api.attach(account_id, root, f"roles/{ROLE}", "System", "AliyunOSSFullAccess")
    return account_id, root, alice


def _assume(
    api: MandateClient,
    headers: Headers,
    account_id: str,
    role_name: str = ROLE,
    session_name: str = "s-1",
    **extra: Any,
) -> dict[str, Any]:
    """AssumeRole (201): the whole answer, with ``headers`` added for the session's requests."""
    response = api.post(
        "/v1/sts/assume-role",
        json={
            "role_arn": f"acs:ram::{account_id}:role/{role_name}",
            "role_session_name": session_name,
            **extra,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    credentials = body["credentials"]
    body["headers"] = {
        **api.basic(credentials["access_key_id"], credentials["access_key_secret"]),
        "X-Security-Token": credentials["security_token"],
    }
    return body


def _acts(api: MandateClient, session: dict[str, Any], account_id: str) -> bool:
    """Whether the session's credentials are accepted (and its request allowed); 401 → False."""
    response = api.post(
        "/v1/authorize",
        json={"action": "oss:GetObject", "resource": _object(account_id)},
        headers=session["headers"],
    )
    if response.status_code == 401:
        return False
    assert response.status_code == 200, response.text
    allowed: bool = response.json()["allowed"]
    return allowed


def _refusal(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


# -- role bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "code", "reason"),
    [
        (
            {"max_session_duration": 3599},
            "max_session_duration",
            "InvalidParameter.MaxSessionDuration",
            "3600",
        ),
        (
            {"max_session_duration": 43201},
            "max_session_duration",
            "InvalidParameter.MaxSessionDuration",
            "43200",
        ),
        (
            {
                "assume_role_policy_document": {
                    "Version": "1",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}],
                }
            },
            "assume_role_policy_document.Statement[0].Principal",
            None,
            "required",
        ),
        (
            {
                "assume_role_policy_document": {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"RAM": "acs:ram::1234567890123456:root"},
                        },
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"RAM": "1234567890123456"},
                            "Condition": {"StringEquaals": {"sts:ExternalId": "x"}},
                        },
                    ],
                }
            },
            "assume_role_policy_document.Statement[1].Condition.StringEquaals",
            None,
            "condition operator",
        ),
    ],
)
def test_a_bad_role_body_is_400_naming_the_field_and_the_reason(
    api: MandateClient, changes: dict[str, Any], field: str, code: str | None, reason: str
) -> None:
    """The session limit out of 3600 to 43200, or a trust policy's fault by its JSON path."""
    account_id, root = api.open_account("Acme")
    head = api.log_head()
    body = {
        "role_name": "r",
        "assume_role_policy_document": _trust(f"acs:ram::{account_id}:root"),
        **changes,
    }
    refused = _refusal(api.post(f"/v1/accounts/{account_id}/roles", json=body, headers=root), 400)
    assert [e["field"] for e in refused["errors"]] == [field]
    assert reason in refused["errors"][0]["reason"]
    if code is not None:
        assert refused["code"] == code
    assert api.log_head() == head
    assert api.get(f"/v1/accounts/{account_id}/roles/r", headers=root).status_code == 404


def test_an_existing_roles_limit_and_trust_are_checked_the_same_way(api: MandateClient) -> None:
    """PATCH with a limit below 3600, or PUT of a malformed trust policy: 400, nothing changes."""
    account_id, root, _ = _account(api)
    role = f"/v1/accounts/{account_id}/roles/{ROLE}"
    patched = _refusal(api.patch(role, json={"max_session_duration": 3599}, headers=root), 400)
    assert patched["code"] == "InvalidParameter.MaxSessionDuration"
    assert [e["field"] for e in patched["errors"]] == ["max_session_duration"]
    trust = _refusal(
        api.put(
            f"{role}/trust-policy",
            json={"assume_role_policy_document": {"Version": "1", "Statement": [{}]}},
            headers=root,
        ),
        400,
    )
    assert all(
        e["field"].startswith("assume_role_policy_document.Statement[0]") for e in trust["errors"]
    )
    assert all(e["reason"] for e in trust["errors"])
    unchanged = api.get(role, headers=root).json()
    assert unchanged["max_session_duration"] == 3600
    assert unchanged["assume_role_policy_document"] == _trust(f"acs:ram::{account_id}:root")

    longer = api.patch(role, json={"max_session_duration": 7200}, headers=root)
    assert longer.status_code == 200, longer.text
    assert longer.json()["max_session_duration"] == 7200


# -- who may assume ------------------------------------------------------------------------


def test_the_root_cannot_assume_a_role(api: MandateClient) -> None:
    """An account root is allowed everything in its account but AssumeRole: 403 NoPermission."""
    account_id, root, _ = _account(api)
    refused = _refusal(
        api.post(
            "/v1/sts/assume-role",
            json={"role_arn": f"acs:ram::{account_id}:role/{ROLE}", "role_session_name": "s-1"},
            headers=root,
        ),
        403,
    )
    assert refused["code"] == "NoPermission"
    assert "root" in refused["detail"]


def test_a_user_without_sts_assume_role_is_refused(api: MandateClient) -> None:
    """A user whose own policies do not allow sts:AssumeRole on the role: 403 NoPermission."""
    account_id, root, _ = _account(api)
    bob = api.create_user(account_id, root, "bob")
    head = api.log_head()
    refused = _refusal(
        api.post(
            "/v1/sts/assume-role",
            json={"role_arn": f"acs:ram::{account_id}:role/{ROLE}", "role_session_name": "s-1"},
            headers=bob,
        ),
        403,
    )
    assert refused["code"] == "NoPermission"
    assert "sts:AssumeRole" in refused["detail"]
    assert api.log_head() == head


def test_a_trust_policy_that_does_not_name_the_caller_refuses_it(api: MandateClient) -> None:
    """Both checks must pass: alice's own policy allows it, but the trust names only bob."""
    account_id, root, alice = _account(api)
    bob = api.create_user(account_id, root, "bob")
    api.attach(account_id, root, "users/bob", "System", "AliyunSTSAssumeRoleAccess")
    _create_role(api, account_id, root, "bobs-role", _trust(f"acs:ram::{account_id}:user/bob"))
    request = {"role_arn": f"acs:ram::{account_id}:role/bobs-role", "role_session_name": "s-1"}
    refused = _refusal(api.post("/v1/sts/assume-role", json=request, headers=alice), 403)
    assert refused["code"] == "NoPermission"
    assert "trust policy" in refused["detail"]
    assert api.post("/v1/sts/assume-role", json=request, headers=bob).status_code == 201


def test_another_accounts_user_learns_nothing_about_this_accounts_roles(
    api: MandateClient,
) -> None:
    """Across accounts, a role whose trust does not admit the caller and no role look alike."""
    account_id, _, _ = _account(api)
    other_id, other_root = api.open_account("Globex")
    mallory = api.create_user(other_id, other_root, "mallory")
    api.attach(other_id, other_root, "users/mallory", "System", "AliyunSTSAssumeRoleAccess")
    details = []
    for role_name in (ROLE, "no-such-role"):
        refused = _refusal(
            api.post(
                "/v1/sts/assume-role",
                json={
                    "role_arn": f"acs:ram::{account_id}:role/{role_name}",
                    "role_session_name": "s-1",
                },
                headers=mallory,
            ),
            403,
        )
        assert refused["code"] == "NoPermission"
        details.append(refused["detail"].replace(role_name, "<role>"))
    assert details[0] == details[1]
    assert "does not exist or its trust policy does not admit" in details[0]


# -- credentials ---------------------------------------------------------------------------


def _altered_tokens(token: str, other_token: str) -> dict[str, str]:
    """Ways to forge a token: ``v1.<signing key id>.STS.<random>.<expiry>.<signature>``."""
    version, signing_key, sts, random, expiry, signature = token.split(".")
    middle = len(signature) // 2
    other = "A" if signature[middle] != "A" else "B"
    flipped = signature[:middle] + other + signature[middle + 1 :]
    prefix = ".".join((version, signing_key, sts, random))
    return {
        "signature changed": f"{prefix}.{expiry}.{flipped}",
        "expiry extended": f"{prefix}.{int(expiry) + 86400}.{signature}",
        "unknown signing key": ".".join((version, "t9", sts, random, expiry, signature)),
        "another session's token": other_token,
        "not a token": "not-a-token",
    }


def test_a_forged_or_altered_security_token_is_401(api: MandateClient) -> None:
    """The token is signed: any change, or another session's token, is refused with why."""
    account_id, _, alice = _account(api)
    session = _assume(api, alice, account_id)
    other = _assume(api, alice, account_id, session_name="s-2")
    credentials = session["credentials"]
    assert _acts(api, session, account_id)
    basic = api.basic(credentials["access_key_id"], credentials["access_key_secret"])
    tokens = _altered_tokens(credentials["security_token"], other["credentials"]["security_token"])
    for how, token in tokens.items():
        headers = {**basic, "X-Security-Token": token}
        refused = _refusal(api.get("/v1/sts/caller-identity", headers=headers), 401)
        assert "security token" in refused["detail"], (how, refused)
        decided = api.post(
            "/v1/authorize",
            json={"action": "oss:GetObject", "resource": _object(account_id)},
            headers=headers,
        )
        assert decided.status_code == 401, how
    wrong_secret = {
        **api.basic(credentials["access_key_id"], "x" * 30),
        "X-Security-Token": credentials["security_token"],
    }
    mismatch = _refusal(api.get("/v1/sts/caller-identity", headers=wrong_secret), 401)
    assert "secret" in mismatch["detail"]
    assert _acts(api, session, account_id)


def test_an_sts_key_without_its_security_token_is_401_naming_the_header(
    api: MandateClient,
) -> None:
    """Basic with an ``STS.`` key alone is refused, and the reason says which header is missing."""
    account_id, _, alice = _account(api)
    credentials = _assume(api, alice, account_id)["credentials"]
    basic = api.basic(credentials["access_key_id"], credentials["access_key_secret"])
    refused = _refusal(api.get("/v1/sts/caller-identity", headers=basic), 401)
    assert "X-Security-Token" in refused["detail"]


def test_caller_identity_names_the_root_a_user_and_a_session(api: MandateClient) -> None:
    """GetCallerIdentity: Account, RAMUser, AssumedRoleUser (with its role, expiry and chain)."""
    account_id, root, alice = _account(api)
    session = _assume(api, alice, account_id, session_name="phone-1")

    as_root = api.get("/v1/sts/caller-identity", headers=root).json()
    assert as_root["identity_type"] == "Account"
    assert as_root["arn"] == f"acs:ram::{account_id}:root"
    assert as_root["account_id"] == account_id

    as_user = api.get("/v1/sts/caller-identity", headers=alice).json()
    assert as_user["identity_type"] == "RAMUser"
    assert as_user["arn"] == f"acs:ram::{account_id}:user/alice"
    assert as_user["account_id"] == account_id
    assert as_user["user_id"] == as_user["principal_id"]

    as_session = api.get("/v1/sts/caller-identity", headers=session["headers"]).json()
    assert as_session["identity_type"] == "AssumedRoleUser"
    assert as_session["arn"] == session["assumed_role_user"]["arn"]
    assert as_session["arn"] == f"acs:ram::{account_id}:assumed-role/{ROLE}/phone-1"
    assert as_session["principal_id"] == session["assumed_role_user"]["assumed_role_id"]
    assert as_session["role_arn"] == f"acs:ram::{account_id}:role/{ROLE}"
    assert as_session["access_key_id"] == session["credentials"]["access_key_id"]
    assert as_session["expiration"] == session["credentials"]["expiration"]
    assert as_session["chain"] == [
        f"acs:ram::{account_id}:user/alice",
        f"acs:ram::{account_id}:role/{ROLE}",
        as_session["arn"],
    ]


# -- deleting a role, revoking its sessions --------------------------------------------------


def test_a_role_holding_policies_is_deleted_only_with_detach_and_its_sessions_die(
    api: MandateClient,
) -> None:
    """409 while a policy is attached; ``?detach=true`` deletes it, and its sessions are 401."""
    account_id, root, alice = _account(api)
    session = _assume(api, alice, account_id)
    role = f"/v1/accounts/{account_id}/roles/{ROLE}"
    conflict = _refusal(api.delete(role, headers=root), 409)
    assert conflict["code"] == "DeleteConflict.Role.Policy"
    assert _acts(api, session, account_id)

    deleted = api.delete(role, params={"detach": "true"}, headers=root)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True
    assert api.get(role, headers=root).status_code == 404
    refused = _refusal(
        api.post(
            "/v1/authorize",
            json={"action": "oss:GetObject", "resource": _object(account_id)},
            headers=session["headers"],
        ),
        401,
    )
    assert "deleted" in refused["detail"]

    # The name is free again; a new role under it is another role, and the old session stays dead.
    _create_role(api, account_id, root, ROLE, _trust(f"acs:ram::{account_id}:root"))
    api.attach(account_id, root, f"roles/{ROLE}", "System", "AliyunOSSFullAccess")
    assert not _acts(api, session, account_id)
    assert _acts(api, _assume(api, alice, account_id, session_name="s-new"), account_id)


def test_revoking_a_roles_sessions_issued_in_the_future_is_400(api: MandateClient) -> None:
    """``issued_before`` may not be later than now (it would kill sessions not yet issued)."""
    account_id, root, _ = _account(api)
    head = api.log_head()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    refused = _refusal(
        api.post(
            f"/v1/accounts/{account_id}/roles/{ROLE}/revoke-sessions",
            json={"issued_before": later},
            headers=root,
        ),
        400,
    )
    assert [e["field"] for e in refused["errors"]] == ["issued_before"]
    assert "future" in refused["errors"][0]["reason"]
    assert refused["code"] == "InvalidParameter.IssuedBefore"
    assert api.log_head() == head


def test_revoking_a_roles_sessions_ends_the_older_ones_only(api: MandateClient) -> None:
    """Sessions issued before the horizon are 401; one issued after it keeps working."""
    account_id, root, alice = _account(api)
    revoke = f"/v1/accounts/{account_id}/roles/{ROLE}/revoke-sessions"
    first = _assume(api, alice, account_id, session_name="s-1")
    between = datetime.now(UTC)
    second = _assume(api, alice, account_id, session_name="s-2")

    horizon = api.post(
        revoke, json={"issued_before": between.isoformat(), "reason": "leak"}, headers=root
    )
    assert horizon.status_code == 200, horizon.text
    assert _parse(horizon.json()["sessions_revoked_before"]) == between.replace(
        microsecond=between.microsecond // 1000 * 1000
    )
    refused = _refusal(
        api.post(
            "/v1/authorize",
            json={"action": "oss:GetObject", "resource": _object(account_id)},
            headers=first["headers"],
        ),
        401,
    )
    assert "revoked" in refused["detail"]
    assert _acts(api, second, account_id)

    # Every field is optional, the body too: no body revokes every session issued until now.
    everything = api.post(revoke, headers=root)
    assert everything.status_code == 200, everything.text
    assert not _acts(api, second, account_id)
    third = _assume(api, alice, account_id, session_name="s-3")
    assert _acts(api, third, account_id)
    listed = api.get(f"/v1/accounts/{account_id}/roles/{ROLE}/sessions", headers=root).json()
    assert [s["role_session_name"] for s in listed["items"]] == ["s-3"]


def test_a_role_lists_its_live_sessions_without_secrets_or_tokens(api: MandateClient) -> None:
    """``GET …/roles/{r}/sessions``: who, since when, until when, which policy — no secret."""
    account_id, root, alice = _account(api)
    policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    kept = _assume(api, alice, account_id, session_name="kept", policy=policy)
    ended = _assume(api, alice, account_id, session_name="ended")
    ended_id = ended["credentials"]["access_key_id"]
    assert api.post(f"/v1/sts/sessions/{ended_id}/revoke", headers=root).status_code == 200

    response = api.get(f"/v1/accounts/{account_id}/roles/{ROLE}/sessions", headers=root)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [s["access_key_id"] for s in items] == [kept["credentials"]["access_key_id"]]
    (listed,) = items
    assert listed["arn"] == kept["assumed_role_user"]["arn"]
    assert listed["role_arn"] == f"acs:ram::{account_id}:role/{ROLE}"
    assert listed["source_arn"] == f"acs:ram::{account_id}:user/alice"
    assert listed["expiration"] == kept["credentials"]["expiration"]
    assert listed["policy"] == policy
    assert listed["revoked"] is None
    assert not {"access_key_secret", "security_token", "secret_hash"} & set(listed)
    for credentials in (kept["credentials"], ended["credentials"]):
        assert credentials["access_key_secret"] not in response.text
        assert credentials["security_token"] not in response.text


# -- role chaining -------------------------------------------------------------------------


def test_a_session_assumes_a_second_role_of_its_account(api: MandateClient) -> None:
    """Chaining keeps every layer and the lineage (5 links) and never outlives the parent."""
    account_id, root, alice = _account(api)
    api.attach(account_id, root, f"roles/{ROLE}", "System", "AliyunSTSAssumeRoleAccess")
    _create_role(api, account_id, root, "reader", _trust(f"acs:ram::{account_id}:role/{ROLE}"))
    api.attach(account_id, root, "roles/reader", "System", "AliyunOSSReadOnlyAccess")
    parent = _assume(api, alice, account_id, session_name="parent", duration_seconds=900)
    child = _assume(api, parent["headers"], account_id, "reader", "child", duration_seconds=3600)
    assert _parse(child["credentials"]["expiration"]) <= _parse(parent["credentials"]["expiration"])

    identity = api.get("/v1/sts/caller-identity", headers=child["headers"]).json()
    assert identity["chain"] == [
        f"acs:ram::{account_id}:user/alice",
        f"acs:ram::{account_id}:role/{ROLE}",
        f"acs:ram::{account_id}:assumed-role/{ROLE}/parent",
        f"acs:ram::{account_id}:role/reader",
        f"acs:ram::{account_id}:assumed-role/reader/child",
    ]
    read = api.authorize(child["headers"], action="oss:GetObject", resource=_object(account_id))
    assert read["decision"] == "Allow"
    assert len(read["chain"]) == 5
    assert [m["policy_name"] for m in read["matched"]] == [
        "AliyunOSSFullAccess",
        "AliyunOSSReadOnlyAccess",
    ]
    # The parent's role may write; the child's may not, and a child keeps both layers.
    write = api.authorize(child["headers"], action="oss:PutObject", resource=_object(account_id))
    assert write["decision"] == "ImplicitDeny"
    assert api.authorize(parent["headers"], action="oss:PutObject", resource=_object(account_id))[
        "allowed"
    ]

    parent_id = parent["credentials"]["access_key_id"]
    assert api.post(f"/v1/sts/sessions/{parent_id}/revoke", headers=root).status_code == 200
    refused = _refusal(api.get("/v1/sts/caller-identity", headers=child["headers"]), 401)
    assert "parent session" in refused["detail"]


# -- across accounts -----------------------------------------------------------------------


def test_another_accounts_principals_cannot_manage_this_accounts_roles(
    api: MandateClient,
) -> None:
    """Even AdministratorAccess or a root reaches only its own account: 403, nothing written."""
    account_id, root, _ = _account(api)
    other_id, other_root = api.open_account("Globex")
    admin = api.create_user(other_id, other_root, "ada")
    api.attach(other_id, other_root, "users/ada", "System", "AdministratorAccess")
    roles = f"/v1/accounts/{account_id}/roles"
    trust = {"assume_role_policy_document": _trust(f"acs:ram::{other_id}:root")}
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", roles, {"role_name": "backdoor", **trust}),
        ("GET", roles, None),
        ("GET", f"{roles}/{ROLE}", None),
        ("PATCH", f"{roles}/{ROLE}", {"max_session_duration": 43200}),
        ("PUT", f"{roles}/{ROLE}/trust-policy", trust),
        ("PUT", f"{roles}/{ROLE}/policies/System/AdministratorAccess", None),
        ("DELETE", f"{roles}/{ROLE}/policies/System/AliyunOSSFullAccess", None),
        ("GET", f"{roles}/{ROLE}/policies", None),
        ("POST", f"{roles}/{ROLE}/revoke-sessions", {}),
        ("GET", f"{roles}/{ROLE}/sessions", None),
        ("DELETE", f"{roles}/{ROLE}?detach=true", None),
        ("GET", f"{roles}/no-such-role", None),
    ]
    head = api.log_head()
    for headers in (admin, other_root):
        for method, path, body in calls:
            response = api.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (method, path, response.text)
    assert api.log_head() == head
    role = api.get(f"{roles}/{ROLE}", headers=root).json()
    assert role["assume_role_policy_document"] == _trust(f"acs:ram::{account_id}:root")


def test_a_session_is_revoked_only_by_its_account_or_itself(api: MandateClient) -> None:
    """An unrelated account (root or administrator) is 403; the session may end itself."""
    account_id, _, alice = _account(api)
    session = _assume(api, alice, account_id)
    key_id = session["credentials"]["access_key_id"]
    other_id, other_root = api.open_account("Globex")
    admin = api.create_user(other_id, other_root, "ada")
    api.attach(other_id, other_root, "users/ada", "System", "AdministratorAccess")
    for headers in (other_root, admin, api.admin):
        refused = _refusal(api.post(f"/v1/sts/sessions/{key_id}/revoke", headers=headers), 403)
        assert refused["detail"]
    assert _acts(api, session, account_id)

    # alice holds only sts:AssumeRole: no ram:RevokeSession on her own account's sessions …
    assert api.post(f"/v1/sts/sessions/{key_id}/revoke", headers=alice).status_code == 403
    # … but a session may always end itself.
    ended = api.post(
        f"/v1/sts/sessions/{key_id}/revoke",
        json={"reason": "logged out"},
        headers=session["headers"],
    )
    assert ended.status_code == 200, ended.text
    assert not _acts(api, session, account_id)
