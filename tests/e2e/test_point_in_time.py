"""Point in time over HTTP: as-of decisions and effective permissions, on both stores."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import MandateClient

READ = [{"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": "acs:oss:*:{a}:bucket/*"}]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _tick() -> None:
    time.sleep(0.01)  # instants between events must be distinguishable


def test_as_of_answers_what_held_then_and_why(api: MandateClient) -> None:
    account, root = api.open_account()
    api.create_user(account, root, "ana")
    statements = [{**s, "Resource": s["Resource"].format(a=account)} for s in READ]
    api.create_policy(account, root, "Reader", statements)
    api.post(f"/v1/accounts/{account}/groups", json={"group_name": "ops"}, headers=root)
    assert (
        api.put(f"/v1/accounts/{account}/groups/ops/members/ana", headers=root).status_code == 200
    )
    before = _now()
    _tick()
    api.attach(account, root, "groups/ops", "Custom", "Reader")
    _tick()
    while_attached = _now()
    _tick()
    detached = api.delete(f"/v1/accounts/{account}/groups/ops/policies/Custom/Reader", headers=root)
    assert detached.status_code == 200, detached.text
    ana = f"acs:ram::{account}:user/ana"
    question = {
        "principal": ana,
        "action": "oss:GetObject",
        "resource": f"acs:oss:*:{account}:bucket/a",
    }

    then = api.authorize(root, **question, as_of=while_attached)
    assert then["decision"] == "Allow", then
    assert then["as_of"].startswith(while_attached[:19])
    assert then["matched"] == [
        {
            "layer": "identity",
            "policy_type": "Custom",
            "policy_name": "Reader",
            "version": "v1",
            "statement": 0,
            "effect": "Allow",
            "via": f"acs:ram::{account}:group/ops",
        }
    ]
    assert then["billed_account"] == account
    assert api.authorize(root, **question, as_of=before)["decision"] == "ImplicitDeny"
    assert api.authorize(root, **question)["decision"] == "ImplicitDeny"  # live: detached

    permissions = api.get(
        f"/v1/accounts/{account}/effective-permissions",
        params={"principal": ana, "as_of": while_attached},
        headers=root,
    )
    assert permissions.status_code == 200, permissions.text
    body = permissions.json()
    assert body["principal"] == ana
    assert body["chain"] == [ana]
    assert body["statements"] == [
        {
            "layer": "identity",
            "policy_type": "Custom",
            "policy_name": "Reader",
            "version": "v1",
            "via": f"acs:ram::{account}:group/ops",
            "statement_index": 0,
            "statement": statements[0],
        }
    ]
    now = api.get(
        f"/v1/accounts/{account}/effective-permissions", params={"principal": ana}, headers=root
    )
    assert now.json()["statements"] == []


def test_as_of_refuses_the_future_and_naive_times(api: MandateClient) -> None:
    account, root = api.open_account()
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account}:bucket/a"}
    head = api.log_head()
    for bad, reason in (
        ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "future"),
        ("2026-03-03T10:00:00", "zone"),
        ("not a time", "datetime"),
    ):
        response = api.post("/v1/authorize", json={**question, "as_of": bad}, headers=root)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        errors = response.json()["errors"]
        assert errors[0]["field"] == "as_of"
        assert reason in errors[0]["reason"], errors
    assert api.log_head() == head  # nothing was written


def test_effective_permissions_of_another_account_are_forbidden_before_lookup(
    api: MandateClient,
) -> None:
    account, root = api.open_account()
    other, _ = api.open_account("Other")
    response = api.get(
        f"/v1/accounts/{other}/effective-permissions",
        params={"principal": f"acs:ram::{other}:user/nobody"},
        headers=root,
    )
    assert response.status_code == 403, response.text
    missing = api.get(
        f"/v1/accounts/{account}/effective-permissions",
        params={"principal": f"acs:ram::{account}:user/nobody"},
        headers=root,
    )
    assert missing.status_code == 404, missing.text


def test_a_user_deleted_since_is_still_answered_as_of_before(api: MandateClient) -> None:
    account, root = api.open_account()
    key = api.create_user(account, root, "bo")
    api.attach(account, root, "users/bo", "System", "AliyunOSSReadOnlyAccess")
    _tick()
    alive = _now()
    _tick()
    deleted = api.delete(f"/v1/accounts/{account}/users/bo?detach=true", headers=root)
    assert deleted.status_code == 200, deleted.text
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account}:bucket/a"}
    bo = f"acs:ram::{account}:user/bo"
    assert api.authorize(root, principal=bo, **question, as_of=alive)["allowed"] is True
    gone = api.authorize(root, principal=bo, **question)
    assert gone["allowed"] is False
    # The deleted user's own key is refused now, whatever instant it asks about.
    refused = api.post("/v1/authorize", json={**question, "as_of": alive}, headers=key)
    assert refused.status_code == 401, refused.text


def test_as_of_could_p_goes_through_the_roles_p_could_assume_then(api: MandateClient) -> None:
    """The principal form as of T answers through another account's role as live does, and
    effective permissions list the roles P could assume, as of T and now alike."""
    a, a_root = api.open_account("Acme")
    b, b_root = api.open_account("Partner")
    api.create_user(b, b_root, "ravi")
    api.attach(b, b_root, "users/ravi", "System", "AliyunSTSAssumeRoleAccess")
    ravi, role = f"acs:ram::{b}:user/ravi", f"acs:ram::{a}:role/ops"
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [ravi]}}
        ],
    }
    created = api.post(
        f"/v1/accounts/{a}/roles",
        json={"role_name": "ops", "assume_role_policy_document": trust},
        headers=a_root,
    )
    assert created.status_code == 201, created.text
    api.attach(a, a_root, "roles/ops", "System", "AliyunOSSReadOnlyAccess")
    _tick()
    while_trusted = _now()
    _tick()
    deleted = api.delete(f"/v1/accounts/{a}/roles/ops?detach=true", headers=a_root)
    assert deleted.status_code == 200, deleted.text
    question = {"principal": ravi, "action": "oss:GetObject", "resource": f"acs:oss:*:{a}:b/x"}

    then = api.authorize(b_root, **question, as_of=while_trusted)
    assert then["decision"] == "Allow", then
    assert then["chain"] == [ravi, role]
    assert [m["layer"] for m in then["matched"]] == ["role"]
    assert then["billed_account"] == a
    now = api.authorize(b_root, **question, as_of=_now())
    assert now["decision"] == "ImplicitDeny", now
    assert api.authorize(b_root, **question)["decision"] == "ImplicitDeny"  # live: deleted

    path = f"/v1/accounts/{b}/effective-permissions"
    asked = api.get(path, params={"principal": ravi, "as_of": while_trusted}, headers=b_root)
    assert asked.status_code == 200, asked.text
    assert asked.json()["assumable_roles"] == [
        {"role_arn": role, "managed_by": None, "chains": [[ravi, role]], "conditional": False}
    ]
    live = api.get(path, params={"principal": ravi}, headers=b_root)
    assert live.status_code == 200, live.text
    assert live.json()["assumable_roles"] == []
