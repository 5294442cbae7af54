"""The entrustments and delegations API over HTTP: refusals, authorisation, the managed role,
scope warnings, revocations, group delegations and a contract's term.

Around scenario 2 (``test_scenario_entrustment.py``): account A entrusts B with ``ecs:*`` on
its instances and ``oss:*`` in its ``ops-bucket``; B delegates to its users. Every refused
call is ``application/problem+json`` and writes no event. The server of this module checks
for reached contract terms once an hour (``MANDATE_TERM_WATCH_INTERVAL``), so a test decides
when ``EntrustmentEnded`` is recorded — by calling the runtime's ``record_reached_terms``, what
each tick of the watcher does — and can show that no decision waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.conftest import Headers, MandateClient

CONTRACT = "MSA-2026-117"
ROLE = CONTRACT
EMPLOYEE = "ravi.k"


@pytest.fixture(scope="module", autouse=True)
def _term_watch_held_off() -> Iterator[None]:
    """Before the module's server starts: its contract-term watcher ticks once an hour."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MANDATE_TERM_WATCH_INTERVAL", "3600")
        yield


def instance(account_id: str, instance_id: str = "i-bp67acfmxazb4p") -> str:
    return f"acs:ecs:cn-hangzhou:{account_id}:instance/{instance_id}"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def allow(action: str | list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def entrusted_scope(owner: str) -> dict[str, Any]:
    return document(
        allow("ecs:*", f"acs:ecs:*:{owner}:instance/*"),
        allow("oss:*", f"acs:oss:*:{owner}:ops-bucket/*"),
    )


def restart_scope(owner: str) -> dict[str, Any]:
    return document(allow("ecs:RebootInstance", f"acs:ecs:*:{owner}:instance/*"))


def _future(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@dataclass
class Contract:
    owner: str  # A
    owner_root: Headers
    operator: str  # B
    operator_root: Headers
    employee: Headers  # ravi.k of B, allowed sts:AssumeRole by B
    entrustment: dict[str, Any]

    @property
    def entrustment_id(self) -> str:
        value: str = self.entrustment["entrustment_id"]
        return value

    @property
    def role_arn(self) -> str:
        value: str = self.entrustment["role_arn"]
        return value

    @property
    def employee_arn(self) -> str:
        return f"acs:ram::{self.operator}:user/{EMPLOYEE}"

    def path(self, side: str = "owner") -> str:
        account_id = self.owner if side == "owner" else self.operator
        return f"/v1/accounts/{account_id}/entrustments/{self.entrustment_id}"


def _grant(
    api: MandateClient, owner: str, root: Headers, trustee: str, **overrides: Any
) -> dict[str, Any]:
    response = api.post(
        f"/v1/accounts/{owner}/entrustments",
        json={
            "trustee_account_id": trustee,
            "scope": entrusted_scope(owner),
            "contract_ref": CONTRACT,
            **overrides,
        },
        headers=root,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _contract(api: MandateClient, **overrides: Any) -> Contract:
    """A entrusts B (no delegation yet); B's ravi.k holds AliyunSTSAssumeRoleAccess."""
    owner, owner_root = api.open_account("Acme")
    operator, operator_root = api.open_account("OpsCo")
    entrustment = _grant(api, owner, owner_root, operator, **overrides)
    employee = api.create_user(operator, operator_root, EMPLOYEE)
    api.attach(operator, operator_root, f"users/{EMPLOYEE}", "System", "AliyunSTSAssumeRoleAccess")
    return Contract(owner, owner_root, operator, operator_root, employee, entrustment)


def _delegate(
    api: MandateClient, contract: Contract, grantee: str | None = None, **overrides: Any
) -> dict[str, Any]:
    response = api.post(
        f"/v1/accounts/{contract.operator}/delegations",
        json={
            "entrustment_id": contract.entrustment_id,
            "grantee": grantee or contract.employee_arn,
            "scope": restart_scope(contract.owner),
            **overrides,
        },
        headers=contract.operator_root,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _assume(api: MandateClient, who: Headers, role_arn: str) -> Any:
    return api.post(
        "/v1/sts/assume-role",
        json={"role_arn": role_arn, "role_session_name": "ravi-oncall"},
        headers=who,
    )


def _session(api: MandateClient, contract: Contract) -> tuple[Headers, dict[str, Any]]:
    issued = _assume(api, contract.employee, contract.role_arn)
    assert issued.status_code == 201, issued.text
    credentials: dict[str, Any] = issued.json()["credentials"]
    headers = api.basic(credentials["access_key_id"], credentials["access_key_secret"])
    return {**headers, "X-Security-Token": credentials["security_token"]}, credentials


def _reboot(contract: Contract) -> dict[str, str]:
    return {"action": "ecs:RebootInstance", "resource": instance(contract.owner)}


# -- bad bodies -------------------------------------------------------------------------------


BAD_GRANTS: list[tuple[str, dict[str, Any], str, str | None]] = [
    # (case, overrides — "$A"/"$B" stand for the accounts, field named, code)
    ("trustee is the owner itself", {"trustee_account_id": "$A"}, "trustee_account_id", None),
    (
        "trustee no open account has",
        {"trustee_account_id": "9999999999999999"},
        "trustee_account_id",
        "EntityNotExist.Account",
    ),
    ("trustee not 16 digits", {"trustee_account_id": "12345"}, "trustee_account_id", None),
    ("ends_at in the past", {"ends_at": "2020-01-01T00:00:00Z"}, "ends_at", None),
    ("ends_at without a zone", {"ends_at": "2099-01-01T00:00:00"}, "ends_at", None),
    ("starts_at without a zone", {"starts_at": "2099-01-01T00:00:00"}, "starts_at", None),
    (
        "ends_at before starts_at",
        {"starts_at": "2099-02-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"},
        "ends_at",
        None,
    ),
    (
        "a statement without a Resource",
        {"scope": document(allow("ecs:*", "*"), {"Effect": "Allow", "Action": "oss:*"})},
        "scope.Statement[1]",
        None,
    ),
    (
        "an unknown Effect",
        {"scope": document({"Effect": "Permit", "Action": "ecs:*", "Resource": "*"})},
        "scope.Statement[0].Effect",
        None,
    ),
    (
        "a policy the owner does not have",
        {"scope": {"policies": ["NoSuchPolicy"]}},
        "scope.policies[0]",
        "EntityNotExist.Policy",
    ),
    ("no policy names", {"scope": {"policies": []}}, "scope.policies", None),
    ("an empty contract_ref", {"contract_ref": ""}, "contract_ref", None),
    ("an unknown field", {"trustees": []}, "trustees", None),
]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [pytest.param(o, f, c, id=case) for case, o, f, c in BAD_GRANTS],
)
def test_a_bad_grant_is_400_naming_the_field_and_writes_nothing(
    api: MandateClient, overrides: dict[str, Any], field: str, code: str | None
) -> None:
    owner, root = api.open_account("Acme")
    trustee, _ = api.open_account("OpsCo")
    body = {
        "trustee_account_id": trustee,
        "scope": entrusted_scope(owner),
        "contract_ref": CONTRACT,
        **{k: (owner if v == "$A" else v) for k, v in overrides.items()},
    }
    head = api.log_head()
    refused = _problem(api.post(f"/v1/accounts/{owner}/entrustments", json=body, headers=root), 400)
    fields = [e["field"] for e in refused["errors"]]
    assert any(f.startswith(field) for f in fields), refused
    assert all(e["reason"] for e in refused["errors"])
    if code is not None:
        assert refused["code"] == code
    assert api.log_head() == head
    assert api.get(f"/v1/accounts/{owner}/entrustments", headers=root).json()["items"] == []


def test_a_closed_trustee_is_refused_like_an_unknown_one(api: MandateClient) -> None:
    owner, root = api.open_account("Acme")
    trustee, _ = api.open_account("Gone")
    closed = api.post(f"/v1/accounts/{trustee}/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    head = api.log_head()
    refused = _problem(
        api.post(
            f"/v1/accounts/{owner}/entrustments",
            json={
                "trustee_account_id": trustee,
                "scope": entrusted_scope(owner),
                "contract_ref": CONTRACT,
            },
            headers=root,
        ),
        400,
    )
    assert [e["field"] for e in refused["errors"]] == ["trustee_account_id"]
    assert refused["code"] == "EntityNotExist.Account"
    assert api.log_head() == head


def test_a_bad_delegation_is_refused_and_writes_nothing(api: MandateClient) -> None:
    """Grantee not a user or group of B, naive or past ends_at, a bad scope: 400; unknown or
    foreign entrustment, unknown user: 404."""
    contract = _contract(api)
    stranger, stranger_root = api.open_account("Bystander")
    api.create_user(stranger, stranger_root, EMPLOYEE)
    path = f"/v1/accounts/{contract.operator}/delegations"
    good = {
        "entrustment_id": contract.entrustment_id,
        "grantee": contract.employee_arn,
        "scope": restart_scope(contract.owner),
    }
    head = api.log_head()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"grantee": f"acs:ram::{contract.operator}:role/ops"}, 400, "grantee"),
        # not an ARN at all: 400, though the domain names the field "principal" (reported)
        ({"grantee": "ravi.k"}, 400, ""),
        ({"grantee": f"acs:ram::{contract.owner}:user/{EMPLOYEE}"}, 400, "grantee"),
        ({"ends_at": "2099-01-01T00:00:00"}, 400, "ends_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, 400, "ends_at"),
        (
            {"scope": document({"Effect": "Allow", "Action": ["ecs:*"], "Resource": 7})},
            400,
            "scope.Statement[0].Resource",
        ),
        ({"entrustment_id": "not-a-uuid"}, 400, "entrustment_id"),
        ({"entrustment_id": "00000000-0000-4000-8000-000000000000"}, 404, ""),
        ({"grantee": f"acs:ram::{contract.operator}:user/nobody"}, 404, ""),
        ({"grantee": f"acs:ram::{contract.operator}:group/nobody"}, 404, ""),
    ]
    for overrides, status, field in cases:
        refused = _problem(
            api.post(path, json={**good, **overrides}, headers=contract.operator_root), status
        )
        if field:
            assert any(e["field"].startswith(field) for e in refused["errors"]), refused
    # the owner cannot delegate its own contract, nor a third account one it did not receive
    for account_id, root in ((contract.owner, contract.owner_root), (stranger, stranger_root)):
        grantee = f"acs:ram::{account_id}:user/{EMPLOYEE}"
        if account_id == contract.owner:
            api.create_user(account_id, root, EMPLOYEE)
            head = api.log_head()
        refused = _problem(
            api.post(
                f"/v1/accounts/{account_id}/delegations",
                json={**good, "grantee": grantee},
                headers=root,
            ),
            404,
        )
        assert refused["code"] == "EntityNotExist.Entrustment"
    assert api.log_head() == head


# -- authorisation ----------------------------------------------------------------------------


def test_creating_an_entrustment_needs_ram_create_entrustment(api: MandateClient) -> None:
    owner, root = api.open_account("Acme")
    trustee, _ = api.open_account("OpsCo")
    legal = api.create_user(owner, root, "legal")
    body = {"trustee_account_id": trustee, "scope": entrusted_scope(owner), "contract_ref": "X-1"}
    path = f"/v1/accounts/{owner}/entrustments"
    head = api.log_head()
    refused = _problem(api.post(path, json=body, headers=legal), 403)
    assert "ram:CreateEntrustment" in refused["detail"]
    assert api.log_head() == head

    api.create_policy(
        owner,
        root,
        "ContractManager",
        [
            allow("ram:CreateEntrustment", f"acs:ram::{owner}:entrustment/*"),
            allow("ram:ListEntrustments", f"acs:ram::{owner}:*"),
        ],
    )
    api.attach(owner, root, "users/legal", "Custom", "ContractManager")
    created = api.post(path, json=body, headers=legal)
    assert created.status_code == 201, created.text
    entrustment_id = created.json()["entrustment_id"]
    assert [e["entrustment_id"] for e in api.get(path, headers=legal).json()["items"]] == [
        entrustment_id
    ]
    # revoking is another permission
    revoke = f"{path}/{entrustment_id}/revoke"
    refused = _problem(api.post(revoke, json={"reason": "x"}, headers=legal), 403)
    assert "ram:RevokeEntrustment" in refused["detail"]
    api.create_policy(
        owner,
        root,
        "ContractRevoker",
        [allow("ram:RevokeEntrustment", f"acs:ram::{owner}:entrustment/{entrustment_id}")],
    )
    api.attach(owner, root, "users/legal", "Custom", "ContractRevoker")
    assert api.post(revoke, json={"reason": "x"}, headers=legal).status_code == 200


def test_creating_a_delegation_needs_ram_create_delegation(api: MandateClient) -> None:
    contract = _contract(api)
    lead = api.create_user(contract.operator, contract.operator_root, "team-lead")
    path = f"/v1/accounts/{contract.operator}/delegations"
    body = {
        "entrustment_id": contract.entrustment_id,
        "grantee": contract.employee_arn,
        "scope": restart_scope(contract.owner),
    }
    head = api.log_head()
    refused = _problem(api.post(path, json=body, headers=lead), 403)
    assert "ram:CreateDelegation" in refused["detail"]
    assert api.log_head() == head

    api.create_policy(
        contract.operator,
        contract.operator_root,
        "Delegator",
        [allow("ram:CreateDelegation", f"acs:ram::{contract.operator}:delegation/*")],
    )
    api.attach(contract.operator, contract.operator_root, "users/team-lead", "Custom", "Delegator")
    created = api.post(path, json=body, headers=lead)
    assert created.status_code == 201, created.text
    delegation_id = created.json()["delegation_id"]
    refused = _problem(api.post(f"{path}/{delegation_id}/revoke", json={}, headers=lead), 403)
    assert "ram:RevokeDelegation" in refused["detail"]


def test_another_account_cannot_see_or_touch_either_side(api: MandateClient) -> None:
    """A third account: 403 on every entrustment and delegation route of A and of B. B cannot
    amend or revoke A's contract, at A's path (403) or at its own (404)."""
    contract = _contract(api)
    delegation = _delegate(api, contract)
    _, stranger = api.open_account("Bystander")
    head = api.log_head()
    for account_id in (contract.owner, contract.operator):
        base = f"/v1/accounts/{account_id}"
        calls: list[tuple[str, str, Any]] = [
            ("GET", f"{base}/entrustments", None),
            ("GET", f"{base}/entrustments?direction=received", None),
            ("GET", f"{base}/entrustments/{contract.entrustment_id}", None),
            ("PATCH", f"{base}/entrustments/{contract.entrustment_id}", {"scope": {}}),
            ("POST", f"{base}/entrustments/{contract.entrustment_id}/revoke", {}),
            ("GET", f"{base}/delegations", None),
            ("POST", f"{base}/delegations/{delegation['delegation_id']}/revoke", {}),
        ]
        for method, path, body in calls:
            _problem(api.request(method, path, json=body, headers=stranger), 403)
    scope = {"scope": restart_scope(contract.owner)}
    _problem(api.patch(contract.path("owner"), json=scope, headers=contract.operator_root), 403)
    _problem(api.post(f"{contract.path('owner')}/revoke", headers=contract.operator_root), 403)
    own_path = contract.path("operator")
    _problem(api.patch(own_path, json=scope, headers=contract.operator_root), 404)
    _problem(api.post(f"{own_path}/revoke", headers=contract.operator_root), 404)
    # nor can A revoke B's delegation
    _problem(
        api.post(
            f"/v1/accounts/{contract.owner}/delegations/{delegation['delegation_id']}/revoke",
            headers=contract.owner_root,
        ),
        404,
    )
    assert api.log_head() == head
    # both sides may read it, each at its own path
    assert api.get(own_path, headers=contract.operator_root).status_code == 200
    assert api.get(contract.path("owner"), headers=contract.owner_root).status_code == 200
    unknown = f"/v1/accounts/{contract.owner}/entrustments/{UUID(int=7)}"
    assert _problem(api.get(unknown, headers=contract.owner_root), 404)["code"] == (
        "EntityNotExist.Entrustment"
    )


# -- the managed role -------------------------------------------------------------------------


def test_the_managed_role_cannot_be_edited_as_a_role(api: MandateClient) -> None:
    """PATCH, trust-policy PUT, attach, detach, DELETE, revoke-sessions: 409
    EntityManaged.Role, and nothing written; its name is taken in A's roles."""
    contract = _contract(api)
    _delegate(api, contract)
    role = f"/v1/accounts/{contract.owner}/roles/{ROLE}"
    trust = document(
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"RAM": [f"acs:ram::{contract.owner}:root"]},
        }
    )
    head = api.log_head()
    calls: list[tuple[str, str, Any]] = [
        ("PATCH", role, {"description": "mine now"}),
        ("PATCH", role, {"max_session_duration": 7200}),
        ("PUT", f"{role}/trust-policy", {"assume_role_policy_document": trust}),
        ("PUT", f"{role}/policies/System/AdministratorAccess", None),
        ("DELETE", f"{role}/policies/System/AdministratorAccess", None),
        ("DELETE", role, None),
        ("DELETE", f"{role}?detach=true", None),
        ("POST", f"{role}/revoke-sessions", {}),
    ]
    for method, path, body in calls:
        refused = _problem(api.request(method, path, json=body, headers=contract.owner_root), 409)
        assert refused["code"] == "EntityManaged.Role", (method, path, refused)
        assert contract.entrustment["arn"] in refused["detail"] or (
            contract.entrustment_id in refused["detail"]
        )
    taken = api.post(
        f"/v1/accounts/{contract.owner}/roles",
        json={"role_name": ROLE, "assume_role_policy_document": trust},
        headers=contract.owner_root,
    )
    _problem(taken, 409)
    assert api.log_head() == head

    shown = api.get(role, headers=contract.owner_root)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["managed_by"] == contract.entrustment["arn"]
    [statement] = body["assume_role_policy_document"]["Statement"]
    assert statement["Principal"] == {"RAM": [contract.employee_arn]}
    attached = api.get(f"{role}/policies", headers=contract.owner_root)
    assert attached.status_code == 200, attached.text

    # a grant claiming a role name already taken — the managed role's, or an ordinary
    # role's — is refused too
    ordinary = api.post(
        f"/v1/accounts/{contract.owner}/roles",
        json={"role_name": "ops", "assume_role_policy_document": trust},
        headers=contract.owner_root,
    )
    assert ordinary.status_code == 201, ordinary.text
    for taken_name in (ROLE, "ops"):
        clash = api.post(
            f"/v1/accounts/{contract.owner}/entrustments",
            json={
                "trustee_account_id": contract.operator,
                "scope": entrusted_scope(contract.owner),
                "contract_ref": "another",
                "role_name": taken_name,
            },
            headers=contract.owner_root,
        )
        _problem(clash, 409)


def test_a_named_role_and_a_scope_of_policies_snapshotted_at_grant(api: MandateClient) -> None:
    """``role_name`` names the managed role; ``{"policies": [...]}`` is copied at grant, so a
    later default version does not widen the contract — an amendment does, as an event."""
    owner, root = api.open_account("Acme")
    operator, operator_root = api.open_account("OpsCo")
    api.create_policy(owner, root, "FleetOps", restart_scope(owner)["Statement"])
    granted = _grant(
        api, owner, root, operator, scope={"policies": ["FleetOps"]}, role_name="opsco-fleet"
    )
    assert granted["role_arn"] == f"acs:ram::{owner}:role/opsco-fleet"
    assert granted["scope_policies"] == ["FleetOps"]
    assert granted["scope"]["Statement"] == restart_scope(owner)["Statement"]

    wider = api.post(
        f"/v1/accounts/{owner}/policies/FleetOps/versions",
        json={"policy_document": document(allow("ecs:*", "*")), "set_as_default": True},
        headers=root,
    )
    assert wider.status_code == 201, wider.text
    path = f"/v1/accounts/{owner}/entrustments/{granted['entrustment_id']}"
    assert api.get(path, headers=root).json()["scope"] == granted["scope"]

    amended = api.patch(path, json={"scope": {"policies": ["FleetOps"]}}, headers=root)
    assert amended.status_code == 200, amended.text
    assert amended.json()["scope"]["Statement"] == [allow("ecs:*", "*")]
    assert amended.json()["position"] > granted["position"]
    seen = api.get(
        f"/v1/accounts/{operator}/entrustments/{granted['entrustment_id']}",
        headers=operator_root,
    )
    assert seen.json()["scope"] == amended.json()["scope"]


def test_an_amendment_applies_to_live_sessions_at_once(api: MandateClient) -> None:
    """EntrustmentAmended narrows the role layer of every session through the contract."""
    contract = _contract(api)
    _delegate(api, contract)
    session, _ = _session(api, contract)
    assert api.authorize(session, **_reboot(contract))["allowed"] is True
    narrowed = document(allow("oss:*", f"acs:oss:*:{contract.owner}:ops-bucket/*"))
    amended = api.patch(contract.path(), json={"scope": narrowed}, headers=contract.owner_root)
    assert amended.status_code == 200, amended.text
    after = api.authorize(session, **_reboot(contract))
    assert after["allowed"] is False
    assert after["chain"][2] == contract.entrustment["arn"]  # still alive, just narrower


# -- delegations ------------------------------------------------------------------------------


def test_a_delegation_beyond_the_contract_is_accepted_with_warnings(api: MandateClient) -> None:
    """Each Allow statement the entrustment does not contain is a warning {statement, reason};
    the session still cannot exceed the contract (layers intersect)."""
    contract = _contract(api)
    owner = contract.owner
    scope = document(
        allow("ecs:RebootInstance", f"acs:ecs:*:{owner}:instance/*"),  # within
        allow("oss:GetObject", f"acs:oss:*:{owner}:finance-bucket/*"),  # resource not entrusted
        allow("rds:*", f"acs:rds:*:{owner}:*"),  # neither
        {"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"},  # cannot be shown within
        {"Effect": "Deny", "Action": "ecs:DeleteInstance", "Resource": "*"},  # a Deny never warns
    )
    delegation = _delegate(api, contract, scope=scope)
    warnings = delegation["warnings"]
    assert [w["statement"] for w in warnings] == [1, 2, 3]
    for warning in warnings:
        assert set(warning) == {"statement", "reason"}
        assert isinstance(warning["reason"], str)
        assert warning["reason"]
    assert "resources not entrusted" in warnings[0]["reason"]
    assert "finance-bucket" in warnings[0]["reason"]
    assert "actions not entrusted" in warnings[1]["reason"]
    assert "NotAction" in warnings[2]["reason"]
    assert delegation["scope"] == scope

    session, _ = _session(api, contract)
    assert api.authorize(session, **_reboot(contract))["allowed"] is True
    for action, resource in (
        ("oss:GetObject", f"acs:oss:cn-hangzhou:{owner}:finance-bucket/q3.xlsx"),
        ("rds:RestartDBInstance", f"acs:rds:cn-hangzhou:{owner}:dbinstance/rm-1"),
    ):
        answer = api.authorize(session, action=action, resource=resource)
        assert answer["allowed"] is False, (action, answer)


def test_revoking_twice_is_409(api: MandateClient) -> None:
    """An entrustment or delegation is revoked once; a revoked contract is not amended or
    delegated either."""
    contract = _contract(api)
    delegation = _delegate(api, contract)
    delegations = f"/v1/accounts/{contract.operator}/delegations"
    revoke_delegation = f"{delegations}/{delegation['delegation_id']}/revoke"
    first = api.post(revoke_delegation, json={"reason": "rotation"}, headers=contract.operator_root)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "revoked"
    again = _problem(api.post(revoke_delegation, json={}, headers=contract.operator_root), 409)
    assert again["code"] == "Delegation.Revoked"

    first = api.post(f"{contract.path()}/revoke", json={}, headers=contract.owner_root)
    assert first.status_code == 200, first.text
    head = api.log_head()
    again = _problem(
        api.post(f"{contract.path()}/revoke", json={}, headers=contract.owner_root), 409
    )
    assert again["code"] == "Entrustment.Revoked"
    amend = api.patch(
        contract.path(), json={"scope": restart_scope(contract.owner)}, headers=contract.owner_root
    )
    assert _problem(amend, 409)["code"] == "Entrustment.Revoked"
    refused = api.post(
        delegations,
        json={
            "entrustment_id": contract.entrustment_id,
            "grantee": contract.employee_arn,
            "scope": restart_scope(contract.owner),
        },
        headers=contract.operator_root,
    )
    _problem(refused, 409)
    assert api.log_head() == head


def test_a_revoked_delegation_ends_its_sessions(api: MandateClient) -> None:
    """DelegationRevoked: the employee's session is 401 naming the delegation; no new one."""
    contract = _contract(api)
    delegation = _delegate(api, contract)
    session, _ = _session(api, contract)
    assert api.authorize(session, **_reboot(contract))["allowed"] is True
    revoked = api.post(
        f"/v1/accounts/{contract.operator}/delegations/{delegation['delegation_id']}/revoke",
        json={"reason": "moved to another team"},
        headers=contract.operator_root,
    )
    assert revoked.status_code == 200, revoked.text
    refused = _problem(api.post("/v1/authorize", json=_reboot(contract), headers=session), 401)
    assert delegation["arn"] in refused["detail"]
    assert _assume(api, contract.employee, contract.role_arn).status_code == 403
    # the contract itself is still active, and its role now trusts no one
    assert api.get(contract.path(), headers=contract.owner_root).json()["status"] == "active"
    role = api.get(f"/v1/accounts/{contract.owner}/roles/{ROLE}", headers=contract.owner_root)
    assert role.json()["assume_role_policy_document"]["Statement"] == []


def _oncall_group(api: MandateClient, contract: Contract) -> tuple[str, dict[str, Any]]:
    """B's group ``oncall`` with ravi.k in it, delegated restarts; (group ARN, delegation)."""
    operator, root = contract.operator, contract.operator_root
    created = api.post(
        f"/v1/accounts/{operator}/groups", json={"group_name": "oncall"}, headers=root
    )
    assert created.status_code == 201, created.text
    member = api.put(f"/v1/accounts/{operator}/groups/oncall/members/{EMPLOYEE}", headers=root)
    assert member.status_code == 200, member.text
    group_arn = f"acs:ram::{operator}:group/oncall"
    delegation = _delegate(api, contract, grantee=group_arn)
    assert delegation["grantee"] == group_arn
    return group_arn, delegation


def test_a_delegation_to_a_group_reaches_its_members(api: MandateClient) -> None:
    """A member assumes the role through the group's delegation; one who left cannot."""
    contract = _contract(api)
    group_arn, delegation = _oncall_group(api, contract)
    session, _ = _session(api, contract)
    answer = api.authorize(session, **_reboot(contract))
    assert answer["allowed"] is True
    assert answer["chain"][:3] == [
        contract.employee_arn,
        delegation["arn"],
        contract.entrustment["arn"],
    ]
    role = api.get(f"/v1/accounts/{contract.owner}/roles/{ROLE}", headers=contract.owner_root)
    [statement] = role.json()["assume_role_policy_document"]["Statement"]
    assert statement["Principal"] == {"RAM": [group_arn]}

    operator, root = contract.operator, contract.operator_root
    removed = api.delete(f"/v1/accounts/{operator}/groups/oncall/members/{EMPLOYEE}", headers=root)
    assert removed.status_code == 200, removed.text
    refused = _problem(_assume(api, contract.employee, contract.role_arn), 403)
    assert "no live delegation" in refused["detail"]

    # back in the group, a new session works again
    again = api.put(f"/v1/accounts/{operator}/groups/oncall/members/{EMPLOYEE}", headers=root)
    assert again.status_code == 200, again.text
    fresh, _ = _session(api, contract)
    assert api.authorize(fresh, **_reboot(contract))["allowed"] is True


def test_a_members_live_session_stops_when_they_leave_the_group(api: MandateClient) -> None:
    """A session credential verified while its user was in the delegated group is not
    remembered past the user's removal: the next request is 401."""
    contract = _contract(api)
    _oncall_group(api, contract)
    session, _ = _session(api, contract)
    assert api.authorize(session, **_reboot(contract))["allowed"] is True
    removed = api.delete(
        f"/v1/accounts/{contract.operator}/groups/oncall/members/{EMPLOYEE}",
        headers=contract.operator_root,
    )
    assert removed.status_code == 200, removed.text
    refused = _problem(api.post("/v1/authorize", json=_reboot(contract), headers=session), 401)
    assert "no live delegation" in refused["detail"]


# -- a contract's term ------------------------------------------------------------------------


def test_a_contract_ends_at_its_term_with_no_event_needed(api: MandateClient) -> None:
    """ends_at 2 s ahead: sessions expire with it and are refused from then on, naming the
    contract, and the status is ``ended`` before any event; then a process records
    EntrustmentEnded once (idempotent)."""
    ends_at = datetime.now(UTC) + timedelta(seconds=2)
    contract = _contract(api, ends_at=ends_at.isoformat())
    assert contract.entrustment["status"] == "active"
    _delegate(api, contract)
    session, credentials = _session(api, contract)
    expiration = datetime.fromisoformat(credentials["expiration"].replace("Z", "+00:00"))
    assert expiration <= ends_at  # a session never outlives its contract
    assert api.authorize(session, **_reboot(contract))["allowed"] is True
    head = api.log_head()

    time.sleep(max(0.0, (ends_at - datetime.now(UTC)).total_seconds()) + 0.05)
    refused = _problem(api.post("/v1/authorize", json=_reboot(contract), headers=session), 401)
    assert CONTRACT in refused["detail"]
    assert "ended" in refused["detail"]
    assert api.get(contract.path(), headers=contract.owner_root).json()["status"] == "ended"
    received = api.get(
        f"/v1/accounts/{contract.operator}/entrustments",
        params={"direction": "received"},
        headers=contract.operator_root,
    )
    assert [e["status"] for e in received.json()["items"]] == ["ended"]
    assert _problem(_assume(api, contract.employee, contract.role_arn), 403)
    assert api.log_head() == head  # all of it with no event
    view = api.runtime.index.entrustments[UUID(contract.entrustment_id)]
    assert view.ended is False

    # what each tick of the watcher does: the first records EntrustmentEnded, later ones nothing
    recorded = api.runtime.record_reached_terms()
    assert len(recorded) == 1
    assert api.runtime.record_reached_terms() == []
    assert api.runtime.follower.wait_for(recorded[0], 5.0)
    assert view.ended is True
    assert api.log_head() == head + 1
    assert api.get(contract.path(), headers=contract.owner_root).json()["status"] == "ended"
    # an ended contract cannot be revoked or amended
    refused = _problem(
        api.post(f"{contract.path()}/revoke", json={}, headers=contract.owner_root), 409
    )
    assert refused["code"] == "Entrustment.Ended"


def test_a_scheduled_contract_admits_no_one_before_it_starts(api: MandateClient) -> None:
    contract = _contract(api, starts_at=_future(3600))
    assert contract.entrustment["status"] == "scheduled"
    _delegate(api, contract)
    refused = _problem(_assume(api, contract.employee, contract.role_arn), 403)
    assert "not started" in refused["detail"]
