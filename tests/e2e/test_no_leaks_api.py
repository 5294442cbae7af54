"""Nothing leaks across accounts, over the real HTTP server (issue 10, items 5 and 6).

Each refusal an outsider can provoke is compared byte for byte between a principal, session
or key that exists and one that does not: "could P" asked by another account's root, an
unknown session's revocation, a dead or unknown AccessKey with a wrong secret. A 401 never
echoes what the caller sent, and a record two accounts share shows neither the other's key
id. Names bind trust to entities: a re-created user is refused, and the answers say which
entity each trusted name is bound to.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Headers, MandateClient

ASSUME = "AliyunSTSAssumeRoleAccess"


def _trust(*principals: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def _role(api: MandateClient, account: str, root: Headers, name: str, trust: Any) -> None:
    created = api.post(
        f"/v1/accounts/{account}/roles",
        json={"role_name": name, "assume_role_policy_document": trust},
        headers=root,
    )
    assert created.status_code == 201, created.text
    api.attach(account, root, f"roles/{name}", "System", "AliyunOSSReadOnlyAccess")


def _assume(api: MandateClient, headers: Headers, role: str, name: str = "s-1") -> Any:
    return api.post(
        "/v1/sts/assume-role", json={"role_arn": role, "role_session_name": name}, headers=headers
    )


def test_an_outsider_gets_the_same_403_whether_the_principal_exists_or_not(
    api: MandateClient,
) -> None:
    a, a_root = api.open_account("Alpha")
    o, o_root = api.open_account("Owner")
    alice = api.create_user(a, a_root, "alice")
    api.attach(a, a_root, "users/alice", "System", ASSUME)
    _role(api, o, o_root, "partner", _trust(f"acs:ram::{a}:user/alice"))
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{o}:photos/x"}
    bodies = []
    for name in ("alice", "nobody"):
        for extra in ({}, {"as_of": "2020-01-01T00:00:00Z"}):
            response = api.post(
                "/v1/authorize",
                json={**question, **extra, "principal": f"acs:ram::{a}:user/{name}"},
                headers=o_root,
            )
            assert response.status_code == 403, response.text
            bodies.append(response.content)
    assert len(set(bodies)) == 1, bodies
    assert a.encode() not in bodies[0]
    # a session key id of another account's role and an unknown one: the same refusal
    session = _assume(api, alice, f"acs:ram::{o}:role/partner")
    assert session.status_code == 201, session.text
    key_id = session.json()["credentials"]["access_key_id"]
    x, x_root = api.open_account("Stranger")
    about_x = {"action": "oss:GetObject", "resource": f"acs:oss:*:{x}:photos/x"}
    sessions = []
    for principal in (key_id, "STS.nosuchsession00000000"):
        for extra in ({}, {"as_of": "2020-01-01T00:00:00Z"}):
            response = api.post(
                "/v1/authorize", json={**about_x, **extra, "principal": principal}, headers=x_root
            )
            assert response.status_code == 403, response.text
            sessions.append(response.content)
    assert len(set(sessions)) == 1, sessions
    # the subject's own root still asks, and effective permissions stay inside the account
    own = api.authorize(a_root, **question, principal=f"acs:ram::{a}:user/alice")
    assert own["allowed"] is True  # through O's role, which trusts her
    for name in ("alice", "nobody"):
        refused = api.get(
            f"/v1/accounts/{a}/effective-permissions",
            params={"principal": f"acs:ram::{a}:user/{name}"},
            headers=o_root,
        )
        assert refused.status_code == 403


def test_a_dead_or_unknown_access_key_is_the_same_401_unless_the_secret_is_right(
    api: MandateClient,
) -> None:
    a, a_root = api.open_account("Alpha")
    live = api.create_user(a, a_root, "dana")
    keys = api.get(f"/v1/accounts/{a}/users/dana/access-keys", headers=a_root).json()["items"]
    live_id = keys[0]["access_key_id"]
    dead = api.create_user(a, a_root, "eli")
    dead_keys = api.get(f"/v1/accounts/{a}/users/eli/access-keys", headers=a_root).json()
    dead_id = dead_keys["items"][0]["access_key_id"]
    assert api.delete(f"/v1/accounts/{a}/users/eli?detach=true", headers=a_root).status_code == 200
    wrong = "x" * 30
    bodies = {}
    for key_id in (live_id, dead_id, "LTAInosuchkey0000000000"):
        response = api.get("/v1/sts/caller-identity", headers=api.basic(key_id, wrong))
        assert response.status_code == 401
        assert key_id.encode() not in response.content
        assert wrong.encode() not in response.content
        bodies[key_id] = response.content
    assert len(set(bodies.values())) == 1, bodies
    # the right secret of a dead key hears why, naming the user only then
    right = api.get("/v1/sts/caller-identity", headers=dead)
    assert right.status_code == 401
    assert b"eli" in right.content
    assert api.get("/v1/sts/caller-identity", headers=live).status_code == 200
    # an unknown scheme or a forged token is not echoed either
    odd = api.get("/v1/sts/caller-identity", headers={"Authorization": "Evil <script>"})
    assert odd.status_code == 401
    assert b"Evil" not in odd.content
    assert b"script" not in odd.content
    token = "forged.token.value"
    forged = api.get(
        "/v1/sts/caller-identity",
        headers={**api.basic("STS.forgedkey000000000", wrong), "X-Security-Token": token},
    )
    assert forged.status_code == 401
    assert b"STS.forgedkey" not in forged.content
    assert token.encode() not in forged.content


def test_revoking_an_unknown_session_answers_as_for_another_accounts(api: MandateClient) -> None:
    a, a_root = api.open_account("Alpha")
    user = api.create_user(a, a_root, "fay")
    api.attach(a, a_root, "users/fay", "System", ASSUME)
    _role(api, a, a_root, "ops", _trust(f"acs:ram::{a}:root"))
    issued = _assume(api, user, f"acs:ram::{a}:role/ops")
    assert issued.status_code == 201, issued.text
    real = issued.json()["credentials"]["access_key_id"]
    _, o_root = api.open_account("Other")
    fake = "STS.nosuchsession00000000"
    bodies = []
    for key_id in (real, fake):
        response = api.post(f"/v1/sts/sessions/{key_id}/revoke", headers=o_root)
        assert response.status_code == 403, response.text
        bodies.append(response.content.replace(key_id.encode(), b"<id>"))
    assert bodies[0] == bodies[1]
    assert a.encode() not in bodies[0]


def test_a_shared_record_shows_no_key_id_of_the_other_account(api: MandateClient) -> None:
    a, a_root = api.open_account("Alpha")
    o, o_root = api.open_account("Owner")
    gus = api.create_user(a, a_root, "gus")
    api.attach(a, a_root, "users/gus", "System", ASSUME)
    gus_key = gus["Authorization"]
    _role(api, o, o_root, "partner", _trust(f"acs:ram::{a}:user/gus"))
    issued = _assume(api, gus, f"acs:ram::{o}:role/partner")
    assert issued.status_code == 201, issued.text
    keys = api.get(f"/v1/accounts/{a}/users/gus/access-keys", headers=a_root).json()["items"]
    key_id = keys[0]["access_key_id"]
    assert gus_key
    owner_trail = api.get(f"/v1/accounts/{o}/audit-events", headers=o_root)
    assert owner_trail.status_code == 200, owner_trail.text
    assert key_id not in owner_trail.text
    (record,) = [r for r in owner_trail.json()["items"] if r["event_type"] == "SessionIssued"]
    assert record["credential"].startswith("sha256:")
    # the actor's own account sees the record alike, and its own records keep the key id
    own = api.get(f"/v1/accounts/{a}/audit-events", headers=a_root).json()["items"]
    assert any(r["credential"] == record["credential"] for r in own)


def test_answers_say_which_entity_each_trusted_name_is_bound_to(api: MandateClient) -> None:
    a, a_root = api.open_account("Alpha")
    api.create_user(a, a_root, "hal")
    api.attach(a, a_root, "users/hal", "System", ASSUME)
    hal_id = api.get(f"/v1/accounts/{a}/users/hal", headers=a_root).json()["user_id"]
    _role(api, a, a_root, "ops", _trust(f"acs:ram::{a}:user/hal", f"acs:ram::{o_}:user/x"))
    role = api.get(f"/v1/accounts/{a}/roles/ops", headers=a_root).json()
    bindings = {b["principal"]: b for b in role["trust_bindings"]}
    assert bindings[f"acs:ram::{a}:user/hal"]["entity_id"] == hal_id
    assert "entity_id" not in bindings[f"acs:ram::{o_}:user/x"]
    # hal deleted and created again: the name binds no one until the trust is written again
    assert api.delete(f"/v1/accounts/{a}/users/hal?detach=true", headers=a_root).status_code == 200
    again = api.create_user(a, a_root, "hal")
    api.attach(a, a_root, "users/hal", "System", ASSUME)
    role = api.get(f"/v1/accounts/{a}/roles/ops", headers=a_root).json()
    bindings = {b["principal"]: b for b in role["trust_bindings"]}
    assert bindings[f"acs:ram::{a}:user/hal"]["entity_id"] is None
    assert _assume(api, again, f"acs:ram::{a}:role/ops").status_code == 403
    rewritten = api.put(
        f"/v1/accounts/{a}/roles/ops/trust-policy",
        json={"assume_role_policy_document": role["assume_role_policy_document"]},
        headers=a_root,
    )
    assert rewritten.status_code == 200, rewritten.text
    assert rewritten.json()["trust_bindings"][0]["entity_id"] is not None
    assert _assume(api, again, f"acs:ram::{a}:role/ops").status_code == 201


o_ = "9999888877776666"
