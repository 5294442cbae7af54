"""``GET /v1/accounts/{a}/as-of/{kind}``: the account's entities as they stood at an instant.

On both stores, through the real server: a user deleted after T is listed at T and not now;
scenario 2's contract, its delegation and the session through it are active before the
revocation and revoked or ended after it; each kind is authorised as its live listing; bad
instants and kinds are 400s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import MandateClient
from tests.e2e.console_support import Key, open_account, scenario_2


def listed(api: MandateClient, key: Key, kind: str, at: datetime | None = None) -> list[dict]:
    params = {"as_of": at.isoformat()} if at else {}
    response = api.get(
        f"/v1/accounts/{key.account_id}/as-of/{kind}", params=params, headers=key.basic
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == kind
    assert body["next_cursor"] is None
    items: list[dict] = body["items"]
    return items


def test_a_deleted_user_is_listed_as_of_before_its_deletion_and_not_after(
    api: MandateClient,
) -> None:
    acme = open_account(api, "Acme")
    a = acme.account_id
    for name in ("bob", "alice"):
        api.create_user(a, acme.basic, name)
    api.post(f"/v1/accounts/{a}/groups", json={"group_name": "auditors"}, headers=acme.basic)
    api.create_policy(
        a, acme.basic, "readers", [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]
    )
    time.sleep(0.01)
    before = datetime.now(UTC)
    time.sleep(0.01)
    deleted = api.delete(f"/v1/accounts/{a}/users/bob", headers=acme.basic)
    assert deleted.status_code in (200, 204), deleted.text
    then = listed(api, acme, "users", before)
    assert [u["name"] for u in then] == ["alice", "bob"]  # by name
    assert then[1]["arn"] == f"acs:ram::{a}:user/bob"
    assert then[1]["status"] == "active"
    assert datetime.fromisoformat(then[1]["since"]) <= before
    assert [u["name"] for u in listed(api, acme, "users")] == ["alice"]
    assert [g["name"] for g in listed(api, acme, "groups", before)] == ["auditors"]
    (policy,) = listed(api, acme, "policies", before)
    assert (policy["name"], policy["default_version"]) == ("readers", "v1")
    # paged like every listing
    page = api.get(
        f"/v1/accounts/{a}/as-of/users",
        params={"as_of": before.isoformat(), "limit": 1},
        headers=acme.basic,
    ).json()
    assert [u["name"] for u in page["items"]] == ["alice"]
    rest = api.get(
        f"/v1/accounts/{a}/as-of/users",
        params={"as_of": before.isoformat(), "limit": 1, "cursor": page["next_cursor"]},
        headers=acme.basic,
    ).json()
    assert [u["name"] for u in rest["items"]] == ["bob"]


def test_scenario_2_before_and_after_the_revocation(api: MandateClient) -> None:
    s = scenario_2(api)
    (contract,) = listed(api, s.acme, "entrustments", s.before_revocation)
    assert (contract["status"], contract["contract_ref"]) == ("active", "MSA-2026-117")
    assert contract["arn"] == s.entrustment["arn"]
    assert contract["trustee_account_id"] == s.opsco.account_id
    assert contract["scope"] == s.entrustment["scope"]
    (after,) = listed(api, s.acme, "entrustments", s.after_revocation)
    assert (after["status"], after["revoked_reason"]) == ("revoked", "contract terminated")
    # OpsCo's side: the contract received, then revoked; no other account's contract
    received = api.get(
        f"/v1/accounts/{s.opsco.account_id}/as-of/entrustments",
        params={"as_of": s.before_revocation.isoformat(), "direction": "received"},
        headers=s.opsco.basic,
    ).json()["items"]
    assert [(e["arn"], e["status"]) for e in received] == [(s.entrustment["arn"], "active")]
    assert received[0]["grantor_account_id"] == s.acme.account_id
    assert received[0]["scope"] == s.entrustment["scope"]
    assert listed(api, s.opsco, "entrustments", s.before_revocation) == []  # granted: none
    later = api.get(
        f"/v1/accounts/{s.opsco.account_id}/as-of/entrustments",
        params={"as_of": s.after_revocation.isoformat(), "direction": "received"},
        headers=s.opsco.basic,
    ).json()["items"]
    assert [e["status"] for e in later] == ["revoked"]
    not_received = api.get(
        f"/v1/accounts/{s.acme.account_id}/as-of/entrustments",
        params={"direction": "received"},
        headers=s.acme.basic,
    )
    assert not_received.json()["items"] == []
    (managed,) = listed(api, s.acme, "roles", s.before_revocation)
    assert (managed["name"], managed["managed_by"]) == ("MSA-2026-117", s.entrustment["arn"])
    assert managed["arn"] == s.entrustment["role_arn"]
    (delegation,) = listed(api, s.opsco, "delegations", s.before_revocation)
    assert (delegation["arn"], delegation["status"]) == (s.delegation["arn"], "active")
    assert delegation["grantee_arn"] == f"acs:ram::{s.opsco.account_id}:user/ravi.k"
    assert delegation["scope"] == s.delegation["scope"]
    assert listed(api, s.opsco, "delegations", s.after_revocation)[0]["status"] == "ended"
    (session,) = listed(api, s.acme, "sessions", s.before_revocation)
    assert session["id"] == s.session_key_id
    assert session["status"] == "active"
    assert session["arn"] == f"acs:ram::{s.acme.account_id}:assumed-role/MSA-2026-117/ravi-oncall"
    assert "access_key_secret" not in session
    assert "security_token" not in session
    (ended,) = listed(api, s.acme, "sessions", s.after_revocation)
    assert ended["status"] == "ended"
    assert "revoked" in ended["ended_reason"]
    # before the contract existed there was nothing
    assert listed(api, s.acme, "entrustments", s.before_revocation - timedelta(hours=1)) == []


def test_each_kind_is_authorised_as_its_listing_and_bad_input_is_refused(
    api: MandateClient,
) -> None:
    acme, other = open_account(api, "Acme"), open_account(api, "Other")
    a = acme.account_id
    nobody = api.create_user(a, acme.basic, "nobody")
    path = f"/v1/accounts/{a}/as-of"
    for kind in ("users", "groups", "roles", "policies", "entrustments", "delegations", "sessions"):
        refused = api.get(f"{path}/{kind}", headers=nobody)
        assert refused.status_code == 403, (kind, refused.text)
        assert api.get(f"{path}/{kind}", headers=other.basic).status_code == 403
        assert api.get(f"{path}/{kind}", headers=acme.basic).status_code == 200
    api.create_policy(
        a, acme.basic, "lister", [{"Effect": "Allow", "Action": "ram:ListUsers", "Resource": "*"}]
    )
    api.attach(a, acme.basic, "users/nobody", "Custom", "lister")
    assert api.get(f"{path}/users", headers=nobody).status_code == 200
    assert api.get(f"{path}/groups", headers=nobody).status_code == 403
    head = api.log_head()
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for query in (
        f"{path}/users?as_of={future}",
        f"{path}/users?as_of=2026-12-07T10:00:00",  # no zone
        f"{path}/users?as_of=1733565600",  # Unix seconds
        f"{path}/accounts",
        f"{path}/users?limit=0",
        f"{path}/users?direction=received",
        f"{path}/entrustments?direction=sideways",
    ):
        response = api.get(query, headers=acme.basic)
        assert response.status_code == 400, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.log_head() == head
