"""What-if over HTTP, on both stores: each change kind answers who would lose or gain what,
with the chains; it writes nothing (the log's head, the live index's answers); it refuses
exactly as the real command would; and its answer equals the diff of making the change for
real (the oracle: the reach of the account before and after the real command)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from mandate.projections.decisions.what_if import copy_index, diff, reach_of
from tests.e2e.conftest import Headers, MandateClient

PROBLEM = "application/problem+json"


def _post(api: MandateClient, path: str, headers: Headers, body: Any, status: int) -> Any:
    response = api.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def _what_if(api: MandateClient, account: str, headers: Headers, change: Any) -> httpx.Response:
    return api.post(f"/v1/accounts/{account}/what-if", json=change, headers=headers)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def _reach(api: MandateClient, account: str) -> set[Any]:
    return reach_of(copy_index(api.runtime.index), account, datetime.now(UTC))


def _keys(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            i["principal"],
            i["effect"],
            i["action"],
            i["resource"],
            tuple(i["chain"]),
            i["layer"],
            i["policy_type"],
            i["policy"],
            i["via"],
        )
        for i in items
    }


def _asked_then_made(
    api: MandateClient, account: str, headers: Headers, change: Any, make: Any
) -> dict[str, Any]:
    """Ask what-if (and check it wrote nothing), then make the change for real and check the
    answer against the diff of the account's reach before and after (the oracle)."""
    head = api.log_head()
    before = _reach(api, account)
    response = _what_if(api, account, headers, change)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert api.log_head() == head  # nothing written
    assert _reach(api, account) == before  # the live index unchanged
    assert answer["position"] == head
    assert answer["change"] == change
    make()
    real = diff(before, _reach(api, account))
    assert _keys(answer["lose"]) == _keys([r.as_dict() for r in real.lose])
    assert _keys(answer["gain"]) == _keys([r.as_dict() for r in real.gain])
    assert _keys(answer["rerouted"]) == _keys([r.as_dict() for r in real.rerouted])
    assert answer["principals_affected"] == real.principals_affected
    return answer


def _contract(api: MandateClient) -> dict[str, Any]:
    """Scenario 2: Acme entrusts OpsCo; ravi.k is delegated reboots, lee.w (through group
    oncall) reads of the ops bucket; ravi.k holds a session of the managed role."""
    a, a_root = api.open_account("Acme")
    b, b_root = api.open_account("OpsCo")
    scope = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "ecs:*", "Resource": f"acs:ecs:*:{a}:instance/*"},
            {"Effect": "Allow", "Action": "oss:*", "Resource": f"acs:oss:*:{a}:ops-bucket/*"},
        ],
    }
    e = _post(
        api,
        f"/v1/accounts/{a}/entrustments",
        a_root,
        {"trustee_account_id": b, "scope": scope, "contract_ref": "MSA-2026-117"},
        201,
    )
    ravi = api.create_user(b, b_root, "ravi.k")
    api.create_user(b, b_root, "lee.w")
    for name in ("ravi.k", "lee.w"):
        api.attach(b, b_root, f"users/{name}", "System", "AliyunSTSAssumeRoleAccess")
    _post(api, f"/v1/accounts/{b}/groups", b_root, {"group_name": "oncall"}, 201)
    response = api.put(f"/v1/accounts/{b}/groups/oncall/members/lee.w", headers=b_root)
    assert response.status_code == 200, response.text
    reboot = {"Effect": "Allow", "Action": "ecs:RebootInstance", "Resource": "*"}
    read = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}
    d_ravi = _post(
        api,
        f"/v1/accounts/{b}/delegations",
        b_root,
        {
            "entrustment_id": e["entrustment_id"],
            "grantee": f"acs:ram::{b}:user/ravi.k",
            "scope": {"Version": "1", "Statement": [reboot]},
        },
        201,
    )
    d_lee = _post(
        api,
        f"/v1/accounts/{b}/delegations",
        b_root,
        {
            "entrustment_id": e["entrustment_id"],
            "grantee": f"acs:ram::{b}:group/oncall",
            "scope": {"Version": "1", "Statement": [read]},
        },
        201,
    )
    session = _post(
        api,
        "/v1/sts/assume-role",
        ravi,
        {"role_arn": e["role_arn"], "role_session_name": "ravi-oncall"},
        201,
    )
    return {
        "a": a,
        "a_root": a_root,
        "b": b,
        "b_root": b_root,
        "e": e,
        "d_ravi": d_ravi,
        "d_lee": d_lee,
        "session": session,
        "ravi": f"acs:ram::{b}:user/ravi.k",
        "lee": f"acs:ram::{b}:user/lee.w",
    }


def test_revoking_an_entrustment_loses_every_delegate_with_its_chains(api: MandateClient) -> None:
    w = _contract(api)
    a, e = w["a"], w["e"]
    session_key = w["session"]["credentials"]
    session_arn = w["session"]["assumed_role_user"]["arn"]
    answer = _asked_then_made(
        api,
        a,
        w["a_root"],
        {"revoke_entrustment": e["entrustment_id"]},
        lambda: _post(
            api, f"/v1/accounts/{a}/entrustments/{e['entrustment_id']}/revoke", w["a_root"], {}, 200
        ),
    )
    assert answer["gain"] == []
    assert answer["rerouted"] == []
    assert answer["principals_affected"] == sorted([w["ravi"], w["lee"], session_arn])
    lost = {(i["principal"], i["layer"], i["action"], tuple(i["chain"])) for i in answer["lose"]}
    ravi_chain = (w["ravi"], w["d_ravi"]["arn"], e["arn"], e["role_arn"])
    lee_chain = (w["lee"], w["d_lee"]["arn"], e["arn"], e["role_arn"])
    assert (w["ravi"], "delegation", "ecs:RebootInstance", ravi_chain) in lost
    assert (w["ravi"], "entrustment", "ecs:*", ravi_chain) in lost
    assert (w["lee"], "delegation", "oss:GetObject", lee_chain) in lost
    assert (w["lee"], "entrustment", "oss:*", lee_chain) in lost
    session_chain = (*ravi_chain, session_arn)
    assert (session_arn, "delegation", "ecs:RebootInstance", session_chain) in lost
    # after the real revocation the session is refused: the answer was right about it
    assert session_key["access_key_id"].startswith("STS.")


def test_revoking_one_delegation_loses_only_its_grantees(api: MandateClient) -> None:
    w = _contract(api)
    b, d = w["b"], w["d_ravi"]
    answer = _asked_then_made(
        api,
        b,
        w["b_root"],
        {"revoke_delegation": d["delegation_id"]},
        lambda: _post(
            api, f"/v1/accounts/{b}/delegations/{d['delegation_id']}/revoke", w["b_root"], {}, 200
        ),
    )
    session_arn = w["session"]["assumed_role_user"]["arn"]
    # ravi.k and his session lose; lee.w keeps what his group's delegation gives him
    assert answer["principals_affected"] == sorted([w["ravi"], session_arn])
    assert answer["lose"]
    assert all(i["chain"][1] == d["arn"] for i in answer["lose"])
    assert {i["layer"] for i in answer["lose"]} == {"entrustment", "delegation"}
    assert answer["gain"] == []
    # a managed role's policies follow the contract: 409, as the real detach answers
    managed = {
        "principal_kind": "role",
        "name": "MSA-2026-117",
        "policy_type": "System",
        "policy_name": "AliyunOSSReadOnlyAccess",
    }
    conflict = _problem(_what_if(api, w["a"], w["a_root"], {"detach_policy": managed}), 409)
    assert "EntityManaged.Role" in str(conflict)
    # the owner, asking the same of its contract's delegation, is not the delegation's account
    _problem(_what_if(api, w["a"], w["a_root"], {"revoke_delegation": d["delegation_id"]}), 404)


def _reader_world(api: MandateClient) -> tuple[str, Headers]:
    a, root = api.open_account("Acme")
    api.create_user(a, root, "alice")
    api.create_user(a, root, "bob")
    api.create_policy(
        a,
        root,
        "Reader",
        [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject", "oss:ListObjects"],
                "Resource": f"acs:oss:*:{a}:photos/*",
            }
        ],
    )
    api.create_policy(
        a,
        root,
        "Writer",
        [{"Effect": "Allow", "Action": "oss:PutObject", "Resource": f"acs:oss:*:{a}:photos/*"}],
    )
    _post(api, f"/v1/accounts/{a}/groups", root, {"group_name": "readers"}, 201)
    assert api.put(f"/v1/accounts/{a}/groups/readers/members/alice", headers=root).is_success
    api.attach(a, root, "groups/readers", "Custom", "Reader")
    api.attach(a, root, "users/alice", "Custom", "Reader")
    api.attach(a, root, "users/alice", "Custom", "Writer")
    api.attach(a, root, "users/bob", "Custom", "Reader")
    return a, root


def test_detaching_a_policy_loses_its_statements_but_not_those_a_group_also_grants(
    api: MandateClient,
) -> None:
    a, root = _reader_world(api)
    alice = f"acs:ram::{a}:user/alice"
    change = {
        "detach_policy": {
            "principal_kind": "user",
            "name": "alice",
            "policy_type": "Custom",
            "policy_name": "Reader",
        }
    }
    answer = _asked_then_made(
        api,
        a,
        root,
        change,
        lambda: api.delete(
            f"/v1/accounts/{a}/users/alice/policies/Custom/Reader", headers=root
        ).raise_for_status(),
    )
    assert answer["lose"] == []
    assert answer["gain"] == []
    assert {(i["principal"], i["action"], i["via"]) for i in answer["rerouted"]} == {
        (alice, "oss:GetObject", None),
        (alice, "oss:ListObjects", None),
    }
    # bob holds Reader only directly: detaching it from him loses both
    change["detach_policy"]["name"] = "bob"
    answer = _what_if(api, a, root, change).json()
    assert {(i["principal"], i["action"]) for i in answer["lose"]} == {
        (f"acs:ram::{a}:user/bob", "oss:GetObject"),
        (f"acs:ram::{a}:user/bob", "oss:ListObjects"),
    }


def test_deleting_a_user_loses_its_statements_and_its_sessions_reach(api: MandateClient) -> None:
    a, root = _reader_world(api)
    alice_arn = f"acs:ram::{a}:user/alice"
    api.attach(a, root, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [alice_arn]}}
        ],
    }
    _post(
        api,
        f"/v1/accounts/{a}/roles",
        root,
        {"role_name": "deployer", "assume_role_policy_document": trust},
        201,
    )
    api.attach(a, root, "roles/deployer", "Custom", "Writer")
    keys = _post(api, f"/v1/accounts/{a}/users/alice/access-keys", root, None, 201)
    session = _post(
        api,
        "/v1/sts/assume-role",
        api.basic(keys["access_key_id"], keys["access_key_secret"]),
        {"role_arn": f"acs:ram::{a}:role/deployer", "role_session_name": "s1"},
        201,
    )
    session_arn = session["assumed_role_user"]["arn"]
    answer = _asked_then_made(
        api,
        a,
        root,
        {"delete_user": "alice"},
        lambda: api.delete(
            f"/v1/accounts/{a}/users/alice?detach=true", headers=root
        ).raise_for_status(),
    )
    assert answer["principals_affected"] == sorted([alice_arn, session_arn])
    lost = {(i["principal"], i["action"], i["via"], i["layer"]) for i in answer["lose"]}
    readers = f"acs:ram::{a}:group/readers"
    assert (alice_arn, "oss:GetObject", readers, "identity") in lost
    assert (alice_arn, "oss:PutObject", None, "identity") in lost
    assert (alice_arn, "oss:PutObject", f"acs:ram::{a}:role/deployer", "role") in lost
    assert (session_arn, "oss:PutObject", f"acs:ram::{a}:role/deployer", "role") in lost
    assert answer["gain"] == []


def test_switching_the_default_version_loses_and_gains(api: MandateClient) -> None:
    a, root = _reader_world(api)
    version = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:DeleteObject",
                "Resource": f"acs:oss:*:{a}:photos/*",
            },
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{a}:photos/*"},
        ],
    }
    _post(
        api,
        f"/v1/accounts/{a}/policies/Writer/versions",
        root,
        {"policy_document": version, "set_as_default": False},
        201,
    )
    change = {"set_default_version": {"policy_name": "Writer", "version_id": "v2"}}
    answer = _asked_then_made(
        api,
        a,
        root,
        change,
        lambda: api.put(
            f"/v1/accounts/{a}/policies/Writer/default-version",
            headers=root,
            json={"version_id": "v2"},
        ).raise_for_status(),
    )
    alice = f"acs:ram::{a}:user/alice"
    assert {(i["principal"], i["action"]) for i in answer["lose"]} == {(alice, "oss:PutObject")}
    assert {(i["principal"], i["action"]) for i in answer["gain"]} == {
        (alice, "oss:DeleteObject")  # GetObject alice has already, through Reader
    }
    assert {(i["principal"], i["action"]) for i in answer["rerouted"]} == set()


def test_bad_input_and_refusals_write_nothing(api: MandateClient) -> None:
    a, root = _reader_world(api)
    _, other_root = api.open_account("Other")
    carol = api.create_user(a, root, "carol")
    head = api.log_head()
    for body in (
        {},
        {"delete_user": "bob", "revoke_delegation": "3f1c1a4e-0000-4000-8000-000000000000"},
    ):
        problem = _problem(_what_if(api, a, root, body), 400)
        assert "exactly one" in str(problem)
    for body in (
        {"revoke_entrustment": "not-a-uuid"},
        {"drop_table": "x"},
        {
            "detach_policy": {
                "principal_kind": "bucket",
                "name": "x",
                "policy_type": "Custom",
                "policy_name": "Reader",
            }
        },
    ):
        _problem(_what_if(api, a, root, body), 400)
    unknown = "3f1c1a4e-0000-4000-8000-000000000000"
    _problem(_what_if(api, a, root, {"revoke_entrustment": unknown}), 404)
    _problem(_what_if(api, a, root, {"delete_user": "nobody"}), 404)
    _problem(_what_if(api, a, other_root, {"delete_user": "bob"}), 403)  # another account
    _problem(_what_if(api, a, carol, {"delete_user": "bob"}), 403)  # may not delete users
    assert api.log_head() == head
    # allowed the change but not to read effective permissions: still refused
    api.create_policy(
        a, root, "Deleter", [{"Effect": "Allow", "Action": "ram:DeleteUser", "Resource": "*"}]
    )
    api.attach(a, root, "users/carol", "Custom", "Deleter")
    refused = _problem(_what_if(api, a, carol, {"delete_user": "bob"}), 403)
    assert "GetEffectivePermissions" in str(refused)
    head = api.log_head()
    _problem(
        _what_if(
            api, a, root, {"set_default_version": {"policy_name": "Reader", "version_id": "v9"}}
        ),
        404,
    )
    assert api.log_head() == head


def test_a_user_allowed_the_change_and_the_read_may_ask_and_the_admin_may_not(
    api: MandateClient,
) -> None:
    a, root = _reader_world(api)
    carol = api.create_user(a, root, "carol")
    change = {"delete_user": "bob"}
    api.create_policy(
        a, root, "Deleter", [{"Effect": "Allow", "Action": "ram:DeleteUser", "Resource": "*"}]
    )
    api.attach(a, root, "users/carol", "Custom", "Deleter")
    _problem(_what_if(api, a, carol, change), 403)  # the change, not the read
    api.create_policy(
        a,
        root,
        "Reviewer",
        [{"Effect": "Allow", "Action": "ram:GetEffectivePermissions", "Resource": "*"}],
    )
    api.attach(a, root, "users/carol", "Custom", "Reviewer")
    answer = _what_if(api, a, carol, change)
    assert answer.status_code == 200, answer.text
    assert answer.json()["principals_affected"] == [f"acs:ram::{a}:user/bob"]
    api.delete(
        f"/v1/accounts/{a}/users/carol/policies/Custom/Deleter", headers=root
    ).raise_for_status()
    _problem(_what_if(api, a, carol, change), 403)  # the read, not the change
    _problem(_what_if(api, a, api.admin, change), 403)  # the admin never writes inside
