"""Hostile input is 400, never 500, on both stores, and writes nothing.

One table, every endpoint family: text with NUL characters (PostgreSQL's ``text`` cannot hold
one), invalid UTF-8, bodies and policy documents nested a thousand levels, instants outside
UTC's range, lone surrogates, overflowing cursors and limits, a negative ``Min-Position``.
Each answer must be a 4xx ``application/problem+json`` (a 400 with ``errors: [{field,
reason}]``), and the head of the log must not move.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.conftest import Headers, MandateClient

PROBLEM_JSON = "application/problem+json"
DEEP_TEXT = "[" * 1000 + "]" * 1000  # under the 6,144-character limit
DEEP_BODY = b"[" * 3000 + b"]" * 3000
OUT_OF_UTC = "0001-01-01T00:00:00+14:00"
PAST_9999 = "9999-12-31T23:59:59-14:00"
NUL = "a\x00b"
ALLOW = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}


@dataclass(frozen=True)
class World:
    api: MandateClient
    account: str
    root: Headers
    other: str  # another account, for entrustments

    @property
    def base(self) -> str:
        return f"/v1/accounts/{self.account}"


@pytest.fixture(scope="module")
def world(api: MandateClient) -> World:
    account, root = api.open_account("Hostile")
    other, _ = api.open_account("Trustee")
    base = f"/v1/accounts/{account}"
    api.create_user(account, root, "u")
    assert api.post(f"{base}/groups", json={"group_name": "g"}, headers=root).status_code == 201
    api.create_policy(account, root, "P", ALLOW["Statement"])
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account}:root"]},
            }
        ],
    }
    role = {"role_name": "r", "assume_role_policy_document": trust}
    assert api.post(f"{base}/roles", json=role, headers=root).status_code == 201
    return World(api, account, root, other)


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # "{A}" is the account's base path, "{a}" its id, "{b}" the other account's
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    field: str | None = None  # the field the 400 must name, when it is certain


def _text(body: str) -> bytes:
    return body.encode()


CASES: dict[str, Case] = {
    # accounts
    "account name NUL": Case("POST", "/v1/accounts", {"name": NUL}, field="name"),
    "account body not UTF-8": Case("POST", "/v1/accounts", content=b'{"name": "\xff"}'),
    "account close path NUL": Case("POST", "/v1/accounts/{a}%00/close", {}),
    "root key rotate deep body": Case("POST", "{A}/root-access-keys", content=DEEP_BODY),
    # users
    "user display name NUL": Case(
        "POST", "{A}/users", {"user_name": "x", "display_name": NUL}, field="display_name"
    ),
    "user name lone surrogate": Case(
        "POST", "{A}/users", content=b'{"user_name": "\\ud800"}', field="user_name"
    ),
    "user patch NUL": Case("PATCH", "{A}/users/u", {"new_display_name": NUL}),
    "user path NUL": Case("GET", "{A}/users/u%00"),
    "users cursor NUL query": Case("GET", "{A}/users?cursor=a%00", field="cursor"),
    "users limit overflow": Case("GET", "{A}/users?limit=99999999999999999999999", field="limit"),
    "user delete deep body": Case("DELETE", "{A}/users/u", content=DEEP_BODY),
    # keys
    "key status NUL": Case("PATCH", "{A}/users/u/access-keys/LTAI0", {"status": NUL}),
    "key create not UTF-8": Case("POST", "{A}/users/u/access-keys", content=b"\xc3\x28"),
    # groups
    "group comments NUL": Case(
        "POST", "{A}/groups", {"group_name": "h", "comments": NUL}, field="comments"
    ),
    "group member path NUL": Case("PUT", "{A}/groups/g/members/u%00"),
    # policies
    "policy document nested 1000 deep as text": Case(
        "POST", "{A}/policies", {"policy_name": "D", "policy_document": DEEP_TEXT}
    ),
    "policy body nested 3000 deep": Case("POST", "{A}/policies", content=DEEP_BODY),
    "policy document with a NUL inside its text": Case(
        "POST",
        "{A}/policies",
        {
            "policy_name": "N",
            "policy_document": '{"Version": "1", "Statement": [{"Effect": "Allow", '
            '"Action": "oss:Get\\u0000", "Resource": "*"}]}',
        },
    ),
    "policy description NUL": Case(
        "POST", "{A}/policies", {"policy_name": "Q", "policy_document": ALLOW, "description": NUL}
    ),
    "policy version deep text": Case(
        "POST", "{A}/policies/P/versions", {"policy_document": DEEP_TEXT, "set_as_default": True}
    ),
    "default version NUL": Case("PUT", "{A}/policies/P/default-version", {"version_id": NUL}),
    "attach path NUL": Case("PUT", "{A}/users/u/policies/Custom/P%00"),
    # roles
    "role trust nested deep": Case(
        "POST", "{A}/roles", {"role_name": "t", "assume_role_policy_document": DEEP_TEXT}
    ),
    "role description NUL": Case("PATCH", "{A}/roles/r", {"description": NUL}),
    "revoke sessions before year 1 at +14:00": Case(
        "POST", "{A}/roles/r/revoke-sessions", {"issued_before": OUT_OF_UTC}, "issued_before"
    ),
    "revoke sessions reason NUL": Case(
        "POST", "{A}/roles/r/revoke-sessions", {"reason": NUL}, field="reason"
    ),
    # sts
    "assume role ARN NUL": Case(
        "POST", "/v1/sts/assume-role", {"role_arn": NUL, "role_session_name": "s"}
    ),
    "assume role session policy deep": Case(
        "POST",
        "/v1/sts/assume-role",
        {"role_arn": "acs:ram::{a}:role/r", "role_session_name": "s", "policy": DEEP_TEXT},
    ),
    "session revoke path NUL": Case("POST", "/v1/sts/sessions/STS.x%00/revoke", {}),
    # entrustments and delegations
    "entrustment ends past 9999 in UTC": Case(
        "POST",
        "{A}/entrustments",
        {"trustee_account_id": "{b}", "scope": ALLOW, "contract_ref": "c", "ends_at": PAST_9999},
        field="ends_at",
    ),
    "entrustment starts at year 1": Case(
        "POST",
        "{A}/entrustments",
        {"trustee_account_id": "{b}", "scope": ALLOW, "contract_ref": "c", "starts_at": OUT_OF_UTC},
        field="starts_at",
    ),
    "entrustment contract ref NUL": Case(
        "POST",
        "{A}/entrustments",
        {"trustee_account_id": "{b}", "scope": ALLOW, "contract_ref": NUL},
        field="contract_ref",
    ),
    "entrustment scope deep": Case(
        "POST",
        "{A}/entrustments",
        {"trustee_account_id": "{b}", "scope": DEEP_TEXT, "contract_ref": "c"},
    ),
    "entrustments direction NUL": Case("GET", "{A}/entrustments?direction=granted%00"),
    "delegation ends at year 1": Case(
        "POST",
        "{A}/delegations",
        {
            "entrustment_id": "00000000-0000-0000-0000-000000000000",
            "grantee": "acs:ram::{a}:user/u",
            "scope": ALLOW,
            "ends_at": OUT_OF_UTC,
        },
        field="ends_at",
    ),
    "delegation grantee NUL": Case(
        "POST",
        "{A}/delegations",
        {"entrustment_id": "00000000-0000-0000-0000-000000000000", "grantee": NUL, "scope": ALLOW},
    ),
    # decisions
    "authorize resource NUL": Case(
        "POST", "/v1/authorize", {"action": "oss:Get", "resource": NUL}, field="resource"
    ),
    "authorize as of year 1": Case(
        "POST",
        "/v1/authorize",
        {"action": "oss:Get", "resource": "x", "as_of": OUT_OF_UTC},
        field="as_of",
    ),
    "authorize as of past 9999": Case(
        "POST", "/v1/authorize", {"action": "a:b", "resource": "x", "as_of": PAST_9999}, "as_of"
    ),
    "authorize negative min_position": Case(
        "POST", "/v1/authorize", {"action": "a:b", "resource": "x", "min_position": -1}
    ),
    "authorize body not UTF-8": Case("POST", "/v1/authorize", content=b'{"action": "\xff"}'),
    "authorize body nested 3000 deep": Case("POST", "/v1/authorize", content=DEEP_BODY),
    "authorize context key NUL": Case(
        "POST", "/v1/authorize", {"action": "a:b", "resource": "x", "context": {NUL: "v"}}
    ),
    "simulate policy nested deep": Case(
        "POST", "/v1/simulate", {"policies": [DEEP_TEXT], "action": "a:b", "resource": "*"}
    ),
    "simulate action NUL": Case(
        "POST", "/v1/simulate", {"policies": [ALLOW], "action": NUL, "resource": "*"}
    ),
    "effective permissions as of year 1": Case(
        "GET",
        "{A}/effective-permissions?principal=acs:ram::{a}:user/u&as_of=0001-01-01T00:00:00%2B14:00",
        field="as_of",
    ),
    "effective permissions principal NUL": Case(
        "GET", "{A}/effective-permissions?principal=acs:ram::{a}:user/u%00", field="principal"
    ),
    "access review from year 1": Case(
        "GET",
        "{A}/access-review?resource=acs:oss:*:{a}:x&action=oss:Get"
        "&from=0001-01-01T00:00:00%2B14:00",
        field="from",
    ),
    "access review resource NUL": Case(
        "GET",
        "{A}/access-review?resource=acs:oss:*:{a}:x%00&action=oss:Get&from=2020-01-01T00:00:00Z",
        field="resource",
    ),
    "access review cursor overflow": Case(
        "GET",
        "{A}/access-review?resource=acs:oss:*:{a}:x&action=oss:Get&from=2020-01-01T00:00:00Z"
        "&cursor="
        + base64.urlsafe_b64encode(b'{"p": 1, "to": 99999999999999999999, "o": 0, "q": "x"}')
        .decode()
        .rstrip("="),
        field="cursor",
    ),
    # audit
    "audit principal NUL": Case("GET", "{A}/audit-events?principal=a%00b", field="principal"),
    "audit type NUL": Case("GET", "{A}/audit-events?type=%00", field="type"),
    "audit target NUL": Case("GET", "{A}/audit-events?target=acs%00", field="target"),
    "audit from past 9999": Case(
        "GET", "{A}/audit-events?from=9999-12-31T23:59:59-14:00", field="from"
    ),
    "audit to year 1": Case("GET", "{A}/audit-events?to=0001-01-01T00:00:00%2B14:00", field="to"),
    "audit cursor overflow": Case(
        "GET",
        "{A}/audit-events?cursor=" + base64.urlsafe_b64encode(b"p" + b"9" * 40).decode(),
        field="cursor",
    ),
    "audit export target NUL": Case("GET", "{A}/audit-events/export?target=%00", field="target"),
    "audit export format NUL": Case("GET", "{A}/audit-events/export?format=csv%00"),
    "global audit principal NUL": Case("GET", "/v1/audit-events?principal=%00"),
    # consistency
    "negative Min-Position": Case(
        "GET", "{A}/users", headers={"Min-Position": "-1"}, field="Min-Position"
    ),
    "Min-Position of 5,000 digits": Case(
        "GET", "{A}/users", headers={"Min-Position": "9" * 5000}, field="Min-Position"
    ),
}


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return (
            value.replace("{A}", world.base)
            .replace("{a}", world.account)
            .replace("{b}", world.other)
        )
    if isinstance(value, dict):
        return {_fill(k, world): _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_a_4xx_problem_and_writes_nothing(world: World, name: str) -> None:
    case = CASES[name]
    api = world.api
    headers = {**(api.admin if case.path == "/v1/accounts" else world.root), **case.headers}
    if case.content is not None:
        headers["content-type"] = "application/json"
    before = api.log_head()
    response = api.request(
        case.method,
        _fill(case.path, world),
        json=_fill(case.json, world) if case.content is None else None,
        content=case.content,
        headers=headers,
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text[:300]
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["detail"]
    if response.status_code == 400:
        errors = body["errors"]
        assert errors, body
        assert all(set(e) >= {"field", "reason"} and e["reason"] for e in errors), body
        if case.field is not None:
            assert case.field in [e["field"] for e in errors], body
    assert api.log_head() == before, "a refused request wrote an event"
