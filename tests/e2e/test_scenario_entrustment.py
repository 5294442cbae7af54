"""Scenario 2 over HTTP: between enterprises, A entrusts the O&M of its resources to B.

Account A (the owner) signs contract ``MSA-2026-117`` with B (an operations company): B may
do ``ecs:*`` on A's instances and ``oss:*`` in A's ``ops-bucket``. The entrustment is realised
as a *managed* role of A, which only B's delegated users may assume. B delegates to its
employee ravi.k restart rights only (``ecs:RebootInstance`` on A's instances); ravi.k, who
also holds ``sts:AssumeRole`` from B's own policies, assumes the role and restarts an
instance of A's, and nothing more: not A's bucket, not a third account's instance. B's other
employee lee.w holds ``sts:AssumeRole`` on ``*`` but no delegation, and cannot assume it.
A revokes the contract: ravi.k's live session is refused at once (401) naming the contract,
no new session is issued, both sides list the entrustment as revoked, both sides' trails show
the revocation, the ledger still answers what ravi.k could do before it, and A's access review
of its instance shows him from his delegation to the revocation. Each test opens its own
accounts on the module's server (SQLite and PostgreSQL).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Headers, MandateClient

CONTRACT = "MSA-2026-117"
ROLE = CONTRACT  # the managed role's name: the contract reference, by default
EMPLOYEE = "ravi.k"
OTHER_EMPLOYEE = "lee.w"
SESSION_NAME = "ravi-oncall"
REASON = "contract terminated"


def instance(account_id: str, instance_id: str = "i-bp67acfmxazb4p") -> str:
    return f"acs:ecs:cn-hangzhou:{account_id}:instance/{instance_id}"


def bucket_object(account_id: str, key: str = "logs/2026-11-28.gz") -> str:
    return f"acs:oss:cn-hangzhou:{account_id}:ops-bucket/{key}"


def entrusted_scope(owner: str) -> dict[str, Any]:
    """What A entrusts to B: O&M of its ECS instances and of its ops bucket."""
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "ecs:*", "Resource": f"acs:ecs:*:{owner}:instance/*"},
            {"Effect": "Allow", "Action": "oss:*", "Resource": f"acs:oss:*:{owner}:ops-bucket/*"},
        ],
    }


def restart_scope(owner: str) -> dict[str, Any]:
    """What B delegates to its employee: restarting A's instances, nothing else."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecs:RebootInstance",
                "Resource": f"acs:ecs:*:{owner}:instance/*",
            }
        ],
    }


@dataclass
class Parties:
    owner: str  # A
    owner_root: Headers
    operator: str  # B
    operator_root: Headers
    employee: Headers  # ravi.k of B, delegated
    other_employee: Headers  # lee.w of B, sts:AssumeRole on * but no delegation
    stranger: str  # C, a third account
    entrustment: dict[str, Any]
    delegation: dict[str, Any]

    @property
    def role_arn(self) -> str:
        return f"acs:ram::{self.owner}:role/{ROLE}"

    @property
    def entrustment_id(self) -> str:
        value: str = self.entrustment["entrustment_id"]
        return value


def _post(api: MandateClient, path: str, headers: Headers, body: Any, status: int) -> Any:
    response = api.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def _between_enterprises(api: MandateClient) -> Parties:
    """A entrusts O&M to B; B delegates restarts to ravi.k; lee.w is B's other employee."""
    owner, owner_root = api.open_account("Acme")
    operator, operator_root = api.open_account("OpsCo")
    stranger, _ = api.open_account("Bystander")

    entrustment = _post(
        api,
        f"/v1/accounts/{owner}/entrustments",
        owner_root,
        {
            "trustee_account_id": operator,
            "scope": entrusted_scope(owner),
            "contract_ref": CONTRACT,
            "description": "O&M of the ECS fleet and the ops bucket",
        },
        201,
    )
    employee = api.create_user(operator, operator_root, EMPLOYEE)
    other_employee = api.create_user(operator, operator_root, OTHER_EMPLOYEE)
    for name in (EMPLOYEE, OTHER_EMPLOYEE):
        api.attach(operator, operator_root, f"users/{name}", "System", "AliyunSTSAssumeRoleAccess")
    delegation = _post(
        api,
        f"/v1/accounts/{operator}/delegations",
        operator_root,
        {
            "entrustment_id": entrustment["entrustment_id"],
            "grantee": f"acs:ram::{operator}:user/{EMPLOYEE}",
            "scope": restart_scope(owner),
        },
        201,
    )
    return Parties(
        owner,
        owner_root,
        operator,
        operator_root,
        employee,
        other_employee,
        stranger,
        entrustment,
        delegation,
    )


def _assume(api: MandateClient, who: Headers, role_arn: str) -> Any:
    return api.post(
        "/v1/sts/assume-role",
        json={"role_arn": role_arn, "role_session_name": SESSION_NAME},
        headers=who,
    )


def _session(api: MandateClient, parties: Parties) -> dict[str, Any]:
    """ravi.k's session of the managed role: its credentials."""
    issued = _assume(api, parties.employee, parties.role_arn)
    assert issued.status_code == 201, issued.text
    credentials: dict[str, Any] = issued.json()["credentials"]
    return credentials


def _session_headers(api: MandateClient, credentials: dict[str, Any]) -> Headers:
    headers = api.basic(credentials["access_key_id"], credentials["access_key_secret"])
    return {**headers, "X-Security-Token": credentials["security_token"]}


def _chain(parties: Parties) -> list[str]:
    return [
        f"acs:ram::{parties.operator}:user/{EMPLOYEE}",
        parties.delegation["arn"],
        parties.entrustment["arn"],
        parties.role_arn,
        f"acs:ram::{parties.owner}:assumed-role/{ROLE}/{SESSION_NAME}",
    ]


def _revoke(api: MandateClient, parties: Parties) -> dict[str, Any]:
    revoked: dict[str, Any] = _post(
        api,
        f"/v1/accounts/{parties.owner}/entrustments/{parties.entrustment_id}/revoke",
        parties.owner_root,
        {"reason": REASON},
        200,
    )
    return revoked


def test_a_entrusts_its_resources_to_b_under_a_contract(api: MandateClient) -> None:
    """The grant answers the contract, its ARN and the managed role; both sides see it."""
    parties = _between_enterprises(api)
    granted = parties.entrustment
    assert granted["arn"] == f"acs:ram::{parties.owner}:entrustment/{parties.entrustment_id}"
    assert granted["role_arn"] == parties.role_arn
    assert granted["role_name"] == ROLE
    assert granted["status"] == "active"
    assert granted["contract_ref"] == CONTRACT
    assert granted["trustee_account_id"] == parties.operator
    assert granted["scope"] == entrusted_scope(parties.owner)
    assert granted["delegations"] == []
    assert granted["position"] > 0

    delegation = parties.delegation
    assert (
        delegation["arn"] == f"acs:ram::{parties.operator}:delegation/{delegation['delegation_id']}"
    )
    assert delegation["entrustment_arn"] == granted["arn"]
    assert delegation["grantee"] == f"acs:ram::{parties.operator}:user/{EMPLOYEE}"
    assert delegation["warnings"] == []  # restarting instances is within the contract
    assert delegation["status"] == "active"

    # A's side and B's side of the same contract
    for account_id, root, direction in (
        (parties.owner, parties.owner_root, "granted"),
        (parties.operator, parties.operator_root, "received"),
    ):
        listed = api.get(
            f"/v1/accounts/{account_id}/entrustments",
            params={"direction": direction},
            headers=root,
        )
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["entrustment_id"] == parties.entrustment_id
        assert item["status"] == "active"
        assert [d["delegation_id"] for d in item["delegations"]] == [delegation["delegation_id"]]

    # The managed role is among A's roles: managed by the contract, its trust computed from
    # the live delegations (ravi.k only).
    roles = api.get(f"/v1/accounts/{parties.owner}/roles", headers=parties.owner_root)
    assert roles.status_code == 200, roles.text
    [role] = [r for r in roles.json()["items"] if r["role_name"] == ROLE]
    assert role["managed_by"] == granted["arn"]
    [statement] = role["assume_role_policy_document"]["Statement"]
    assert statement["Principal"] == {"RAM": [f"acs:ram::{parties.operator}:user/{EMPLOYEE}"]}


def test_the_delegated_employee_may_restart_as_instances_and_nothing_else(
    api: MandateClient,
) -> None:
    """Allowed through entrustment ∩ delegation, with the five-link chain; denied elsewhere."""
    parties = _between_enterprises(api)
    credentials = _session(api, parties)
    assert credentials["access_key_id"].startswith("STS.")
    session = _session_headers(api, credentials)

    allowed = api.authorize(session, action="ecs:RebootInstance", resource=instance(parties.owner))
    assert allowed["decision"] == "Allow", allowed
    assert allowed["allowed"] is True
    assert allowed["chain"] == _chain(parties)
    assert {m["layer"] for m in allowed["matched"]} == {"entrustment", "delegation"}
    by_layer = {m["layer"]: m for m in allowed["matched"]}
    assert by_layer["entrustment"]["via"] == parties.entrustment["arn"]
    assert by_layer["delegation"]["via"] == parties.delegation["arn"]
    assert allowed["billed_account"] == parties.owner

    # entrusted to B, but not delegated to ravi.k
    for action, resource in (
        ("oss:DeleteObject", bucket_object(parties.owner)),
        ("ecs:StopInstance", instance(parties.owner)),
        # a third account's instance: nothing A entrusts reaches it
        ("ecs:RebootInstance", instance(parties.stranger)),
        # A's other resources: not entrusted at all
        ("rds:RestartDBInstance", f"acs:rds:cn-hangzhou:{parties.owner}:dbinstance/rm-1"),
    ):
        denied = api.authorize(session, action=action, resource=resource)
        assert denied["allowed"] is False, (action, resource, denied)
        assert denied["decision"] == "ImplicitDeny"
        assert denied["billed_account"] is None

    # ravi.k's own key reaches nothing of A's: identity policies stay in their own account
    own = api.authorize(
        parties.employee, action="ecs:RebootInstance", resource=instance(parties.owner)
    )
    assert own["allowed"] is False


def test_a_colleague_without_a_delegation_cannot_assume_the_role(api: MandateClient) -> None:
    """lee.w holds sts:AssumeRole on * from B, but only delegated users may assume it."""
    parties = _between_enterprises(api)
    head = api.log_head()
    refused = _assume(api, parties.other_employee, parties.role_arn)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "delegation" in refused.json()["detail"]
    assert api.log_head() == head  # a refused call writes no event
    # nor may A's root or a stranger's user assume it
    assert _assume(api, parties.owner_root, parties.role_arn).status_code == 403


def test_revoking_the_contract_ends_every_session_through_it_at_once(api: MandateClient) -> None:
    """One event: the live session is 401 naming the contract; no new session; both sides see it."""
    parties = _between_enterprises(api)
    credentials = _session(api, parties)
    session = _session_headers(api, credentials)
    request = {"action": "ecs:RebootInstance", "resource": instance(parties.owner)}
    assert api.authorize(session, **request)["allowed"] is True

    revoked = _revoke(api, parties)
    assert revoked["status"] == "revoked"
    assert revoked["position"] > 0

    refused = api.post("/v1/authorize", json=request, headers=session)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert CONTRACT in detail
    assert "revoked" in detail
    assert REASON in detail
    assert api.get("/v1/sts/caller-identity", headers=session).status_code == 401

    again = _assume(api, parties.employee, parties.role_arn)
    assert again.status_code == 403, again.text
    assert "revoked" in again.json()["detail"]

    for account_id, root, direction in (
        (parties.owner, parties.owner_root, "granted"),
        (parties.operator, parties.operator_root, "received"),
    ):
        listed = api.get(
            f"/v1/accounts/{account_id}/entrustments",
            params={"direction": direction},
            headers=root,
        )
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["status"] == "revoked"
        assert item["revoked"]
        assert REASON in item["revoked"]
        one = api.get(
            f"/v1/accounts/{account_id}/entrustments/{parties.entrustment_id}", headers=root
        )
        assert one.status_code == 200, one.text
        assert one.json()["status"] == "revoked"

    # B's delegation died with the contract
    delegations = api.get(
        f"/v1/accounts/{parties.operator}/delegations", headers=parties.operator_root
    )
    assert delegations.status_code == 200, delegations.text
    assert [d["status"] for d in delegations.json()["items"]] == ["ended"]

    # the managed role's computed trust admits no one any more
    role = api.get(f"/v1/accounts/{parties.owner}/roles/{ROLE}", headers=parties.owner_root)
    assert role.status_code == 200, role.text
    assert role.json()["assume_role_policy_document"]["Statement"] == []


def test_both_sides_trails_show_the_revocation(api: MandateClient) -> None:
    """EntrustmentRevoked concerns A and B: one record in each chain, with actor, reason, and
    what it ended (the live delegation and the live session)."""
    parties = _between_enterprises(api)
    key_id = _session(api, parties)["access_key_id"]
    revoked = _revoke(api, parties)
    for account_id, root in (
        (parties.owner, parties.owner_root),
        (parties.operator, parties.operator_root),
    ):
        response = api.get(
            f"/v1/accounts/{account_id}/audit-events",
            params={"type": "EntrustmentRevoked"},
            headers=root,
        )
        assert response.status_code == 200, response.text
        [record] = response.json()["items"]
        assert record["position"] == revoked["position"]
        assert record["reason"] == REASON
        assert record["actor"] == f"acs:ram::{parties.owner}:root"
        assert record["target"] == parties.entrustment["arn"]
        assert sorted(record["accounts"]) == sorted([parties.owner, parties.operator])
        assert record["summary"]["ended_delegations"] == [parties.delegation["arn"]]
        assert record["summary"]["ended_sessions"] == [key_id]
        verified = api.get(f"/v1/accounts/{account_id}/audit/verify", headers=root)
        assert verified.status_code == 200, verified.text
        assert verified.json()["ok"] is True


def test_as_of_before_the_revocation_the_employee_could(api: MandateClient) -> None:
    """Point in time: by the session's key id, allowed before the revocation, denied after."""
    parties = _between_enterprises(api)
    credentials = _session(api, parties)
    key_id = credentials["access_key_id"]
    request = {"action": "ecs:RebootInstance", "resource": instance(parties.owner)}
    while_valid = datetime.now(UTC).isoformat()
    _revoke(api, parties)
    after = datetime.now(UTC).isoformat()

    before = api.authorize(parties.owner_root, **request, principal=key_id, as_of=while_valid)
    assert before["allowed"] is True, before
    assert before["chain"] == _chain(parties)
    assert {m["layer"] for m in before["matched"]} == {"entrustment", "delegation"}
    # even then, not A's bucket
    bucket = {"action": "oss:DeleteObject", "resource": bucket_object(parties.owner)}
    assert (
        api.authorize(parties.owner_root, **bucket, principal=key_id, as_of=while_valid)["allowed"]
        is False
    )

    later = api.authorize(parties.owner_root, **request, principal=key_id, as_of=after)
    assert later["allowed"] is False
    assert "revoked" in later["reason"]
    assert api.authorize(parties.owner_root, **request, principal=key_id)["allowed"] is False


def _record_time(api: MandateClient, account_id: str, root: Headers, event_type: str) -> str:
    response = api.get(
        f"/v1/accounts/{account_id}/audit-events", params={"type": event_type}, headers=root
    )
    assert response.status_code == 200, response.text
    [record] = response.json()["items"]
    moment: str = record["time"]
    return moment


def test_the_access_review_shows_who_could_restart_the_instance_and_until_when(
    api: MandateClient,
) -> None:
    """A's review of its instance: ravi.k of B from his delegation to the revocation, through
    the contract's chain; lee.w never; A's root throughout."""
    start = datetime.now(UTC).isoformat()
    parties = _between_enterprises(api)
    _session(api, parties)
    _revoke(api, parties)
    review = api.get(
        f"/v1/accounts/{parties.owner}/access-review",
        params={
            "resource": instance(parties.owner),
            "action": "ecs:RebootInstance",
            "from": start,
            "to": datetime.now(UTC).isoformat(),
        },
        headers=parties.owner_root,
    )
    assert review.status_code == 200, review.text
    items = {item["principal"]: item for item in review.json()["items"]}
    employee_arn = f"acs:ram::{parties.operator}:user/{EMPLOYEE}"
    assert set(items) == {employee_arn, f"acs:ram::{parties.owner}:root"}
    [interval] = items[employee_arn]["intervals"]
    root = parties.owner_root
    assert interval["from"] == _record_time(api, parties.owner, root, "DelegationGranted")
    assert interval["to"] == _record_time(api, parties.owner, root, "EntrustmentRevoked")
    assert interval["chain"] == _chain(parties)[:4]
    assert interval["conditional"] is False
    # B cannot review A's instance: a review covers the account's own resources
    foreign = api.get(
        f"/v1/accounts/{parties.operator}/access-review",
        params={"resource": instance(parties.owner), "action": "ecs:RebootInstance", "from": start},
        headers=parties.operator_root,
    )
    assert foreign.status_code == 403, foreign.text


@pytest.mark.parametrize("side", ["owner", "operator"])
def test_a_third_account_sees_neither_side(api: MandateClient, side: str) -> None:
    """C may not list or read A's or B's entrustments (403 before anything is looked up)."""
    parties = _between_enterprises(api)
    _, stranger_root = api.open_account("Stranger")
    account_id = parties.owner if side == "owner" else parties.operator
    listed = api.get(f"/v1/accounts/{account_id}/entrustments", headers=stranger_root)
    assert listed.status_code == 403, listed.text
    one = api.get(
        f"/v1/accounts/{account_id}/entrustments/{parties.entrustment_id}", headers=stranger_root
    )
    assert one.status_code == 403, one.text


def test_at_the_contracts_term_sessions_end_and_the_server_records_it(api: MandateClient) -> None:
    """A contract with a term: at ends_at its sessions are refused naming it, and the server's
    contract-term watcher records EntrustmentEnded by itself, in both sides' trails."""
    ends_at = datetime.now(UTC) + timedelta(seconds=2)
    owner, owner_root = api.open_account("Acme")
    operator, operator_root = api.open_account("OpsCo")
    entrustment = _post(
        api,
        f"/v1/accounts/{owner}/entrustments",
        owner_root,
        {
            "trustee_account_id": operator,
            "scope": entrusted_scope(owner),
            "contract_ref": CONTRACT,
            "ends_at": ends_at.isoformat(),
        },
        201,
    )
    employee = api.create_user(operator, operator_root, EMPLOYEE)
    api.attach(operator, operator_root, f"users/{EMPLOYEE}", "System", "AliyunSTSAssumeRoleAccess")
    _post(
        api,
        f"/v1/accounts/{operator}/delegations",
        operator_root,
        {
            "entrustment_id": entrustment["entrustment_id"],
            "grantee": f"acs:ram::{operator}:user/{EMPLOYEE}",
            "scope": restart_scope(owner),
        },
        201,
    )
    issued = _assume(api, employee, entrustment["role_arn"])
    assert issued.status_code == 201, issued.text
    session = _session_headers(api, issued.json()["credentials"])
    request = {"action": "ecs:RebootInstance", "resource": instance(owner)}
    assert api.authorize(session, **request)["allowed"] is True

    time.sleep(max(0.0, (ends_at - datetime.now(UTC)).total_seconds()) + 0.05)
    refused = api.post("/v1/authorize", json=request, headers=session)
    assert refused.status_code == 401, refused.text
    assert CONTRACT in refused.json()["detail"]
    assert "ended" in refused.json()["detail"]

    deadline = time.monotonic() + 10
    for account_id, root in ((owner, owner_root), (operator, operator_root)):
        while True:
            records = api.get(
                f"/v1/accounts/{account_id}/audit-events",
                params={"type": "EntrustmentEnded"},
                headers=root,
            )
            assert records.status_code == 200, records.text
            if records.json()["items"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        [record] = records.json()["items"]
        assert record["target"] == entrustment["arn"]
        assert record["actor"] == "mandate:system"
        assert "term" in record["reason"]
    listed = api.get(
        f"/v1/accounts/{operator}/entrustments",
        params={"direction": "received"},
        headers=operator_root,
    )
    assert [e["status"] for e in listed.json()["items"]] == ["ended"]
