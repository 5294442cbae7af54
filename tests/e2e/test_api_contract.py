"""The HTTP contract (docs/design.md §5): problem+json errors, status codes, pages, lifecycles.

Every test opens its own account on the module's server, so that positions, names and
refusals of one test never leak into another's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import Headers, MandateClient

PROBLEM_JSON = "application/problem+json"
ALLOW_ALL_OSS = [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]
SYSTEM_POLICY_NAMES = {
    "AdministratorAccess",
    "ReadOnlyAccess",
    "AliyunOSSFullAccess",
    "AliyunOSSReadOnlyAccess",
    "AliyunECSFullAccess",
    "AliyunRAMFullAccess",
    "AliyunSTSAssumeRoleAccess",
}


def _problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem+json of ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def _fields(response: Any) -> list[str]:
    """The ``field`` of every error in a 400 problem."""
    return [error["field"] for error in _problem(response, 400)["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        pytest.param("POST", "users", {"user_name": "no spaces"}, "user_name", id="bad-name"),
        pytest.param("POST", "users", {"user_name": "x" * 65}, "user_name", id="long-name"),
        pytest.param("POST", "users", {}, "user_name", id="missing-name"),
        pytest.param(
            "POST", "users", {"user_name": "ok", "colour": "red"}, "colour", id="unknown-field"
        ),
        pytest.param("POST", "groups", {"group_name": "a/b"}, "group_name", id="bad-group"),
        pytest.param("GET", "users?limit=0", None, "limit", id="bad-limit"),
        pytest.param("GET", "users?cursor=A", None, "cursor", id="bad-cursor"),
        pytest.param("GET", "users?cursor=%25%25", None, "cursor", id="cursor-not-base64"),
        pytest.param(
            "PATCH",
            "users/u/access-keys/LTAI0",
            {"status": "Paused"},
            "status",
            id="bad-key-status",
        ),
        pytest.param(
            "PUT",
            "policies/P/default-version",
            {"version_id": "version-2"},
            "version_id",
            id="bad-version-id",
        ),
    ],
)
def test_an_invalid_request_is_400_naming_its_field_never_422(
    api: MandateClient, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    """A malformed body or query answers 400 problem+json with ``errors: [{field, reason}]``."""
    account_id, root = api.open_account()
    response = api.request(method, f"/v1/accounts/{account_id}/{path}", json=body, headers=root)
    assert field in _fields(response)
    assert all(error["reason"] for error in response.json()["errors"])


def test_a_body_that_is_not_json_is_400(api: MandateClient) -> None:
    """A body that does not parse as JSON is a 400 problem, not FastAPI's 422."""
    account_id, root = api.open_account()
    response = api.post(
        f"/v1/accounts/{account_id}/users",
        content=b"{not json",
        headers={**root, "Content-Type": "application/json"},
    )
    _problem(response, 400)


def test_a_policy_with_a_bad_condition_is_400_naming_its_json_path(api: MandateClient) -> None:
    """A malformed condition is refused with the zero-based JSON path of the fault."""
    account_id, root = api.open_account()
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "oss:PutObject",
            "Resource": "*",
            "Condition": {"IpAddress": {"acs:SourceIp": "not-an-address"}},
        },
    ]
    response = api.post(
        f"/v1/accounts/{account_id}/policies",
        json={"policy_name": "Bad", "policy_document": {"Version": "1", "Statement": statements}},
        headers=root,
    )
    assert _fields(response) == ["policy_document.Statement[1].Condition.IpAddress.acs:SourceIp"]
    assert "not-an-address" in response.json()["errors"][0]["reason"]

    unknown_operator = api.post(
        f"/v1/accounts/{account_id}/policies",
        json={
            "policy_name": "Bad",
            "policy_document": {
                "Version": "1",
                "Statement": [{**statements[0], "Condition": {"IpAddressish": {"k": "v"}}}],
            },
        },
        headers=root,
    )
    assert _fields(unknown_operator) == ["policy_document.Statement[0].Condition.IpAddressish"]


def test_an_unknown_entity_in_ones_own_account_is_404(api: MandateClient) -> None:
    """Inside one's own account, a name nobody holds is 404."""
    account_id, root = api.open_account()
    base = f"/v1/accounts/{account_id}"
    for path in ("users/ghost", "groups/ghost", "policies/ghost", "users/ghost/access-keys"):
        _problem(api.get(f"{base}/{path}", headers=root), 404)
    _problem(api.delete(f"{base}/users/ghost", headers=root), 404)


def test_another_accounts_entities_are_403_whether_or_not_they_exist(api: MandateClient) -> None:
    """A call about another account is 403 for a real name and a missing one alike."""
    account_id, root = api.open_account("Acme")
    other_id, other_root = api.open_account("Globex")
    api.create_user(other_id, other_root, "mallory")
    other = f"/v1/accounts/{other_id}"
    existing = _problem(api.get(f"{other}/users/mallory", headers=root), 403)
    missing = _problem(api.get(f"{other}/users/nobody-at-all", headers=root), 403)
    assert "mallory" not in existing["detail"]
    assert existing["detail"] == missing["detail"]
    _problem(api.delete(f"{other}/users/mallory", headers=root), 403)
    _problem(api.get(f"{other}/policies/nothing", headers=root), 403)
    unopened = "9" * 16 if account_id != "9" * 16 else "8" * 16
    _problem(api.get(f"/v1/accounts/{unopened}/users", headers=root), 403)


def test_deleting_a_user_with_attachments_needs_detach(api: MandateClient) -> None:
    """A user holding policies or memberships is 409 to delete unless ``?detach=true``."""
    account_id, root = api.open_account()
    api.create_user(account_id, root, "dora")
    api.attach(account_id, root, "users/dora", "System", "ReadOnlyAccess")
    users = f"/v1/accounts/{account_id}/users"
    conflict = _problem(api.delete(f"{users}/dora", headers=root), 409)
    assert conflict["code"].startswith("DeleteConflict")
    assert api.get(f"{users}/dora", headers=root).status_code == 200
    assert api.delete(f"{users}/dora?detach=true", headers=root).status_code == 200
    _problem(api.get(f"{users}/dora", headers=root), 404)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="none"),
        pytest.param("Basic bm90LWJhc2U2NA", id="malformed-basic"),
        pytest.param("Basic TFRBSW5vcGU6bm9wZQ==", id="unknown-key"),
        pytest.param("Bearer not-the-token", id="bad-bearer"),
        pytest.param("Digest abc", id="other-scheme"),
    ],
)
def test_missing_or_bad_credentials_are_401_with_www_authenticate(
    api: MandateClient, authorization: str | None
) -> None:
    """No, malformed or wrong credentials answer 401 with a reason and ``WWW-Authenticate``."""
    account_id, _ = api.open_account()
    headers = {"Authorization": authorization} if authorization else {}
    response = api.get(f"/v1/accounts/{account_id}/users", headers=headers)
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_refused_call_writes_no_event(api: MandateClient) -> None:
    """Calls refused with 400, 401, 403, 404 or 409 leave the head of the log where it was."""
    account_id, root = api.open_account("Acme")
    other_id, _ = api.open_account("Globex")
    employee = api.create_user(account_id, root, "erin")
    api.attach(account_id, root, "users/erin", "System", "ReadOnlyAccess")
    users = f"/v1/accounts/{account_id}/users"
    before = api.log_head()
    refusals = [
        (api.post(users, json={"user_name": "bad name"}, headers=root), 400),
        (api.post(users, json={"user_name": "fred"}), 401),
        (api.post(users, json={"user_name": "fred"}, headers=employee), 403),
        (api.post(users, json={"user_name": "fred"}, headers=api.admin), 403),
        (api.post(f"/v1/accounts/{other_id}/users", json={"user_name": "f"}, headers=root), 403),
        (api.post(f"{users}/ghost/access-keys", headers=root), 404),
        (api.delete(f"{users}/erin", headers=root), 409),
        (api.post(users, json={"user_name": "erin"}, headers=root), 409),
    ]
    for response, status in refusals:
        _problem(response, status)
    assert api.log_head() == before
    assert api.runtime.index.position == before


def test_the_admin_reads_inside_an_account_but_never_writes(api: MandateClient) -> None:
    """The platform admin lists an account's users (200) but may not create one (403)."""
    account_id, root = api.open_account()
    api.create_user(account_id, root, "gina")
    users = f"/v1/accounts/{account_id}/users"
    listed = api.get(users, headers=api.admin)
    assert listed.status_code == 200
    assert [u["user_name"] for u in listed.json()["items"]] == ["gina"]
    _problem(api.post(users, json={"user_name": "hank"}, headers=api.admin), 403)
    _problem(api.delete(f"{users}/gina", headers=api.admin), 403)
    _problem(api.put(f"{users}/gina/policies/System/ReadOnlyAccess", headers=api.admin), 403)


def test_only_the_admin_opens_accounts(api: MandateClient) -> None:
    """An account root may not open accounts (403); without credentials it is 401."""
    _, root = api.open_account()
    _problem(api.post("/v1/accounts", json={"name": "Rogue"}, headers=root), 403)
    _problem(api.post("/v1/accounts", json={"name": "Rogue"}), 401)


def test_healthz_answers_a_constant(api: MandateClient) -> None:
    """``/healthz`` needs no credentials and answers the same body every time."""
    first = api.get("/healthz")
    second = api.get("/healthz")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"status": "ok"}


LAG_FIELDS = {"copy", "position", "lag_events", "lag_seconds", "error", "stalled", "runs_here"}


def test_readyz_reports_the_head_and_no_lag(api: MandateClient) -> None:
    """``/readyz`` reports the log's head and a decision index that has applied it."""
    api.open_account()
    body = api.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["head"] == body["index_position"]
    assert body["decision_index_lag_events"] == 0
    assert set(body["projections"]) == {"temporal", "audit"}
    for lag in body["projections"].values():
        assert set(lag) == LAG_FIELDS
        assert lag["lag_events"] >= 0
        assert lag["error"] is None
        assert lag["stalled"] is None
        assert lag["runs_here"] is True  # the one process holds every copy's lease
    assert body["decision_index_skipped"] == []


def test_readyz_fails_when_a_projection_lags_beyond_its_bound(api: MandateClient) -> None:
    """A stalled projection worker turns /readyz to 503, naming the projection and its lag."""
    worker = api.runtime.temporal
    worker.stop()
    settings = api.runtime.settings
    bound = settings.max_projection_lag_seconds
    try:
        object.__setattr__(settings, "max_projection_lag_seconds", 0.001)
        api.open_account()
        time.sleep(0.05)
        response = api.get("/readyz")
        assert response.status_code == 503, response.text
        assert "temporal lags" in response.json()["status"]
        assert response.json()["projections"]["temporal"]["lag_events"] > 0
    finally:
        object.__setattr__(settings, "max_projection_lag_seconds", bound)
        worker.start()
    assert worker.wait_for(api.log_head(), 10)
    assert api.get("/readyz").status_code == 200


def test_system_policies_lists_the_seven_builtin_policies(api: MandateClient) -> None:
    """``/v1/system-policies`` lists RAM's seven built-in policies with their documents."""
    response = api.get("/v1/system-policies")
    assert response.status_code == 200
    body = response.json()
    assert {p["policy_name"] for p in body["items"]} == SYSTEM_POLICY_NAMES
    assert all(p["policy_type"] == "System" for p in body["items"])
    assert body["next_cursor"] is None
    admin = next(p for p in body["items"] if p["policy_name"] == "AdministratorAccess")
    assert admin["policy_document"]["Statement"][0]["Effect"] == "Allow"


def test_users_page_by_limit_and_cursor(api: MandateClient) -> None:
    """Users list as ``{items, next_cursor}`` pages in name order until the cursor is null."""
    account_id, root = api.open_account()
    users = f"/v1/accounts/{account_id}/users"
    names = ["amy", "ben", "cal", "deb", "eve"]
    for name in reversed(names):
        assert api.post(users, json={"user_name": name}, headers=root).status_code == 201
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = api.get(users, params=params, headers=root)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen += [u["user_name"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    assert pages == 3


def test_policy_versions_are_created_listed_and_deleted_but_never_the_default(
    api: MandateClient,
) -> None:
    """A v2 set as default becomes the active one; v1 can then go; the default is 409 to delete."""
    account_id, root = api.open_account()
    api.create_policy(account_id, root, "Storage", ALLOW_ALL_OSS)
    api.create_user(account_id, root, "ivy")
    api.attach(account_id, root, "users/ivy", "Custom", "Storage")
    versions = f"/v1/accounts/{account_id}/policies/Storage/versions"
    v2_document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    created = api.post(
        versions, json={"policy_document": v2_document, "set_as_default": True}, headers=root
    )
    assert created.status_code == 201
    assert created.json()["version_id"] == "v2"
    assert created.json()["is_default_version"] is True

    listed = api.get(versions, headers=root).json()["items"]
    assert [(v["version_id"], v["is_default_version"]) for v in listed] == [
        ("v1", False),
        ("v2", True),
    ]
    attached = api.get(f"/v1/accounts/{account_id}/users/ivy/policies", headers=root).json()
    assert attached["items"] == [
        {"policy_type": "Custom", "policy_name": "Storage", "version": "v2"}
    ]

    conflict = _problem(api.delete(f"{versions}/v2", headers=root), 409)
    assert "default" in conflict["detail"].lower()
    assert api.delete(f"{versions}/v1", headers=root).status_code == 200
    assert [v["version_id"] for v in api.get(versions, headers=root).json()["items"]] == ["v2"]
    _problem(api.delete(f"{versions}/v1", headers=root), 404)


def test_a_string_policy_document_is_accepted(api: MandateClient) -> None:
    """A policy document may be sent as a JSON string as well as an object."""
    account_id, root = api.open_account()
    document = json.dumps({"Version": "1", "Statement": ALLOW_ALL_OSS})
    response = api.post(
        f"/v1/accounts/{account_id}/policies",
        json={"policy_name": "AsString", "policy_document": document},
        headers=root,
    )
    assert response.status_code == 201
    default = response.json()["default_policy_version"]
    assert default["policy_document"]["Statement"][0]["Action"] in ("oss:*", ["oss:*"])


def test_a_disabled_access_key_is_refused_until_enabled_again(api: MandateClient) -> None:
    """An Inactive key answers 401 naming its status; enabling it restores access."""
    account_id, root = api.open_account()
    users = f"/v1/accounts/{account_id}/users"
    assert api.post(users, json={"user_name": "jack"}, headers=root).status_code == 201
    issued = api.post(f"{users}/jack/access-keys", headers=root).json()
    assert issued["status"] == "Active"
    jack: Headers = api.basic(issued["access_key_id"], issued["access_key_secret"])
    api.attach(account_id, root, "users/jack", "System", "ReadOnlyAccess")
    key = f"{users}/jack/access-keys/{issued['access_key_id']}"
    assert api.get(users, headers=jack).status_code == 200

    disabled = api.patch(key, json={"status": "Inactive"}, headers=root)
    assert disabled.status_code == 200
    refused = _problem(api.get(users, headers=jack), 401)
    assert "Inactive" in refused["detail"]
    listed = api.get(f"{users}/jack/access-keys", headers=root).json()["items"]
    assert [k["status"] for k in listed] == ["Inactive"]
    assert "access_key_secret" not in listed[0]

    assert api.patch(key, json={"status": "Active"}, headers=root).status_code == 200
    assert api.get(users, headers=jack).status_code == 200


def test_rotating_the_root_key_refuses_the_old_one(api: MandateClient) -> None:
    """After the root rotates its key, the old key is 401 and the new one works."""
    account_id, root = api.open_account()
    rotated = api.post(f"/v1/accounts/{account_id}/root-access-keys", headers=root)
    assert rotated.status_code == 201
    new_root = api.basic(rotated.json()["access_key_id"], rotated.json()["access_key_secret"])
    users = f"/v1/accounts/{account_id}/users"
    refused = _problem(api.get(users, headers=root), 401)
    assert "rotated" in refused["detail"]
    assert api.get(users, headers=new_root).status_code == 200


def test_only_the_root_rotates_the_root_key(api: MandateClient) -> None:
    """Neither a RAM user with AdministratorAccess nor the admin may rotate the root key."""
    account_id, root = api.open_account()
    ada = api.create_user(account_id, root, "ada")
    api.attach(account_id, root, "users/ada", "System", "AdministratorAccess")
    path = f"/v1/accounts/{account_id}/root-access-keys"
    _problem(api.post(path, headers=ada), 403)
    _problem(api.post(path, headers=api.admin), 403)
    assert api.get(f"/v1/accounts/{account_id}/users", headers=root).status_code == 200


def test_metrics_count_decisions_and_report_the_index_lag(api: MandateClient) -> None:
    """``/metrics`` exposes the index position, the log head and decisions by outcome."""
    account_id, root = api.open_account("Metrics")
    request = {"action": "oss:GetObject", "resource": f"acs:oss:*:{account_id}:b/x"}
    before = api.get("/metrics")
    assert api.post("/v1/authorize", json=request, headers=root).json()["allowed"] is True
    after = api.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")

    def value(text: str, name: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.split()[-1])

    allowed = 'mandate_decisions_total{decision="Allow"}'
    assert value(after.text, allowed) == value(before.text, allowed) + 1
    assert value(after.text, "mandate_store_up") == 1
    assert value(after.text, "mandate_index_position") <= value(after.text, "mandate_log_head")
    exported = {line.split()[0] for line in after.text.splitlines() if not line.startswith("#")}
    for projection in ("temporal", "audit"):
        label = f'{{projection="{projection}"}}'
        assert value(after.text, f"mandate_projection_lag_events{label}") >= 0
        lag_gauge = "mandate_projection_lag_" + "seconds" + label  # a name, not a timing
        assert lag_gauge in exported
