"""One entity's relations at an instant: ``GET /v1/accounts/{a}/as-of/…`` (the console's details).

On both stores, through the real server: a user's attached policies and a policy's entities
before and after a detach; a group's members before and after a removal; a role's trust policy
before and after it is rewritten, and a contract's managed role's computed trust before and
after the revocation (scenario 2); the name resolved at the instant (a user deleted then
re-created under its name is another user); each read authorised as its live counterpart;
nothing by that name then is a 404; bad input a 400 that writes nothing. The listing's
``ended_since`` for sessions is refused on any other kind and after ``as_of``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import MandateClient
from tests.e2e.console_support import Key, open_account, post, scenario_2

ALLOW_GET = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]


def at_(api: MandateClient, key: Key, path: str, at: datetime | None = None, **more: Any) -> Any:
    params = {"as_of": at.isoformat()} if at else {}
    response = api.get(
        f"/v1/accounts/{key.account_id}/as-of/{path}",
        params={**params, **more},
        headers=key.basic,
    )
    assert response.status_code == 200, response.text
    return response.json()


def instant() -> datetime:
    """Now, with the ledger's events of this instant behind it and the next ones after it."""
    time.sleep(0.01)
    moment = datetime.now(UTC)
    time.sleep(0.01)
    return moment


def test_attachments_members_and_holders_follow_the_instant(api: MandateClient) -> None:
    acme = open_account(api, "Acme")
    a = acme.account_id
    api.create_user(a, acme.basic, "alice")
    api.create_user(a, acme.basic, "bob")
    post(api, f"/v1/accounts/{a}/groups", acme, {"group_name": "readers"})
    api.create_policy(a, acme.basic, "photos", ALLOW_GET)
    api.attach(a, acme.basic, "users/alice", "Custom", "photos")
    api.attach(a, acme.basic, "users/alice", "System", "AliyunOSSReadOnlyAccess")
    api.attach(a, acme.basic, "groups/readers", "Custom", "photos")
    for name in ("alice", "bob"):
        joined = api.put(f"/v1/accounts/{a}/groups/readers/members/{name}", headers=acme.basic)
        assert joined.status_code == 200, joined.text
    post(
        api,
        f"/v1/accounts/{a}/policies/photos/versions",
        acme,
        {"policy_document": {"Version": "1", "Statement": ALLOW_GET}, "set_as_default": True},
    )
    before = instant()
    detached = api.delete(
        f"/v1/accounts/{a}/users/alice/policies/Custom/photos", headers=acme.basic
    )
    assert detached.status_code == 200, detached.text
    removed = api.delete(f"/v1/accounts/{a}/groups/readers/members/bob", headers=acme.basic)
    assert removed.status_code == 200, removed.text
    after = instant()

    then = at_(api, acme, "users/alice/policies", before)
    assert then["arn"] == f"acs:ram::{a}:user/alice"
    assert [(p["policy_type"], p["policy_name"], p["version"]) for p in then["items"]] == [
        ("Custom", "photos", "v2"),  # its default version then
        ("System", "AliyunOSSReadOnlyAccess", "v1"),
    ]
    now = at_(api, acme, "users/alice/policies", after)
    assert [p["policy_name"] for p in now["items"]] == ["AliyunOSSReadOnlyAccess"]
    live = api.get(f"/v1/accounts/{a}/users/alice/policies", headers=acme.basic).json()
    assert at_(api, acme, "users/alice/policies")["items"] == live["items"]  # default: now
    assert [
        p["policy_name"] for p in at_(api, acme, "groups/readers/policies", after)["items"]
    ] == ["photos"]

    members = at_(api, acme, "groups/readers/members", before)
    assert [m["name"] for m in members["items"]] == ["alice", "bob"]
    assert members["items"][1]["arn"] == f"acs:ram::{a}:user/bob"
    assert [m["name"] for m in at_(api, acme, "groups/readers/members", after)["items"]] == [
        "alice"
    ]

    held = at_(api, acme, "policies/photos/entities", before)
    assert (held["default_version"], held["versions"]) == ("v2", ["v1", "v2"])
    assert [u["name"] for u in held["users"]] == ["alice"]
    assert [g["name"] for g in held["groups"]] == ["readers"]
    assert held["roles"] == []
    later = at_(api, acme, "policies/photos/entities", after)
    assert (later["users"], [g["name"] for g in later["groups"]]) == ([], ["readers"])
    system = at_(
        api, acme, "policies/AliyunOSSReadOnlyAccess/entities", after, policy_type="System"
    )
    assert [u["name"] for u in system["users"]] == ["alice"]

    # a user deleted, then another created under the name: at each instant, that one's
    deleted = api.delete(
        f"/v1/accounts/{a}/users/alice", params={"detach": "true"}, headers=acme.basic
    )
    assert deleted.status_code in (200, 204), deleted.text
    gone = instant()
    api.create_user(a, acme.basic, "alice")
    assert at_(api, acme, "users/alice/policies")["items"] == []
    assert [p["policy_name"] for p in at_(api, acme, "users/alice/policies", after)["items"]] == [
        "AliyunOSSReadOnlyAccess"
    ]
    assert at_(api, acme, "groups/readers/members", gone)["items"] == []
    missing = api.get(
        f"/v1/accounts/{a}/as-of/users/alice/policies",
        params={"as_of": gone.isoformat()},
        headers=acme.basic,
    )
    assert missing.status_code == 404, missing.text
    assert missing.json()["code"] == "EntityNotExist.User"
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_a_roles_trust_policy_then_and_a_managed_roles_computed_one(api: MandateClient) -> None:
    s = scenario_2(api)
    a, b = s.acme.account_id, s.opsco.account_id
    # the contract's managed role: ravi.k admitted while the contract lived, no one after
    managed = at_(api, s.acme, "roles/MSA-2026-117", s.before_revocation)
    assert managed["managed_by"] == s.entrustment["arn"]
    assert managed["arn"] == s.entrustment["role_arn"]
    (statement,) = managed["assume_role_policy_document"]["Statement"]
    assert statement["Principal"] == {"RAM": [f"acs:ram::{b}:user/ravi.k"]}
    ended = at_(api, s.acme, "roles/MSA-2026-117", s.after_revocation)
    assert ended["assume_role_policy_document"]["Statement"] == []
    live = api.get(f"/v1/accounts/{a}/roles/MSA-2026-117", headers=s.acme.basic).json()
    assert live["assume_role_policy_document"]["Statement"] == []
    assert at_(api, s.acme, "roles/MSA-2026-117/policies", s.before_revocation)["items"] == []
    # an ordinary role whose trust is rewritten
    first = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{a}:root"]},
            }
        ],
    }
    post(
        api,
        f"/v1/accounts/{a}/roles",
        s.acme,
        {"role_name": "auditor", "assume_role_policy_document": first, "description": "audits"},
    )
    before = instant()
    second = {
        **first,
        "Statement": [{**first["Statement"][0], "Principal": {"RAM": [f"acs:ram::{b}:root"]}}],
    }
    updated = api.patch(
        f"/v1/accounts/{a}/roles/auditor",
        json={"assume_role_policy_document": second},
        headers=s.acme.basic,
    )
    assert updated.status_code == 200, updated.text
    then = at_(api, s.acme, "roles/auditor", before)
    assert then["assume_role_policy_document"] == first
    assert (then["description"], then["managed_by"]) == ("audits", None)
    assert at_(api, s.acme, "roles/auditor")["assume_role_policy_document"] == second
    too_early = api.get(
        f"/v1/accounts/{a}/as-of/roles/auditor",
        params={"as_of": s.before_revocation.isoformat()},
        headers=s.acme.basic,
    )
    assert (too_early.status_code, too_early.json()["code"]) == (404, "EntityNotExist.Role")


def test_each_detail_is_authorised_as_its_live_read_and_bad_input_is_refused(
    api: MandateClient,
) -> None:
    acme, other = open_account(api, "Acme"), open_account(api, "Other")
    a = acme.account_id
    nobody = api.create_user(a, acme.basic, "nobody")
    post(api, f"/v1/accounts/{a}/groups", acme, {"group_name": "ops"})
    api.create_policy(a, acme.basic, "ops", ALLOW_GET)
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{a}:root"]},
            }
        ],
    }
    post(
        api,
        f"/v1/accounts/{a}/roles",
        acme,
        {"role_name": "ops", "assume_role_policy_document": trust},
    )
    path = f"/v1/accounts/{a}/as-of"
    arn = f"acs:ram::{a}"
    reads = {
        f"{path}/users/nobody/policies": ("ram:ListPoliciesForUser", f"{arn}:user/nobody"),
        f"{path}/groups/ops/policies": ("ram:ListPoliciesForGroup", f"{arn}:group/ops"),
        f"{path}/roles/ops/policies": ("ram:ListPoliciesForRole", f"{arn}:role/ops"),
        f"{path}/groups/ops/members": ("ram:ListUsersForGroup", f"{arn}:group/ops"),
        f"{path}/roles/ops": ("ram:GetRole", f"{arn}:role/ops"),
        f"{path}/policies/ops/entities": ("ram:ListEntitiesForPolicy", f"{arn}:policy/ops"),
    }
    for url in reads:
        assert api.get(url, headers=nobody).status_code == 403, url
        assert api.get(url, headers=other.basic).status_code == 403, url
        assert api.get(url, headers=acme.basic).status_code == 200, url
    # allowed the one action on the one ARN: that read and no other
    for url, (action, resource) in reads.items():
        name = f"only-{action.split(':')[1]}"
        allow = [{"Effect": "Allow", "Action": action, "Resource": resource}]
        api.create_policy(a, acme.basic, name, allow)
        api.attach(a, acme.basic, "users/nobody", "Custom", name)
        allowed = [u for u in reads if api.get(u, headers=nobody).status_code == 200]
        assert allowed == [url], (action, allowed)
        gone = api.delete(
            f"/v1/accounts/{a}/users/nobody/policies/Custom/{name}", headers=acme.basic
        )
        assert gone.status_code == 200
    head = api.log_head()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for query, status in (
        (f"{path}/users/nobody/policies?as_of={future}", 400),
        (f"{path}/users/nobody/policies?as_of=2026-12-07T10:00:00", 400),  # no zone
        (f"{path}/roles/ops?as_of=1733565600", 400),  # Unix seconds
        (f"{path}/accounts/ops/policies", 400),
        (f"{path}/policies/ops/entities?policy_type=Managed", 400),
        (f"{path}/users/nobody/policies?as_of=2000-01-01T00:00:00Z", 404),
        (f"{path}/policies/NoSuchSystemPolicy/entities?policy_type=System", 404),
        (f"{path}/groups/nothing/members", 404),
        (f"{path}/users?ended_since=2026-01-01T00:00:00Z", 400),  # sessions only
        (
            f"{path}/sessions?ended_since={datetime.now(UTC).isoformat()}&as_of=2026-01-01T00:00:00Z",
            400,
        ),
        (f"{path}/sessions?ended_since=1733565600", 400),
    ):
        response = api.get(query, headers=acme.basic)
        assert response.status_code == status, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.log_head() == head
    listed = api.get(
        f"{path}/sessions",
        params={"ended_since": "2026-01-01T00:00:00Z"},
        headers=acme.basic,
    )
    assert (listed.status_code, listed.json()["items"]) == (200, [])
    # a session revoked: out of the sessions alive now, listed revoked with ended_since
    api.attach(a, acme.basic, "users/nobody", "System", "AliyunSTSAssumeRoleAccess")
    trust["Statement"][0]["Principal"] = {"RAM": [f"acs:ram::{a}:user/nobody"]}
    post(
        api,
        f"/v1/accounts/{a}/roles",
        acme,
        {"role_name": "once", "assume_role_policy_document": trust},
    )
    issued = post(
        api,
        "/v1/sts/assume-role",
        nobody,
        {"role_arn": f"acs:ram::{a}:role/once", "role_session_name": "once"},
    )
    key_id = issued["credentials"]["access_key_id"]
    before = instant()
    post(api, f"/v1/sts/sessions/{key_id}/revoke", acme, {"reason": "done"})
    assert at_(api, acme, "sessions")["items"] == []
    (ended,) = at_(api, acme, "sessions", ended_since=before.isoformat())["items"]
    assert (ended["id"], ended["status"]) == (key_id, "revoked")
    assert ended["ended_reason"] == f"revoked at {ended['ended_at']}"
    assert datetime.fromisoformat(ended["ended_at"]) >= before
