"""Nothing leaks across accounts, over the real HTTP server (issue 10, items 5 and 6).

Each refusal an outsider can provoke is compared byte for byte between a principal, session
or key that exists and one that does not: "could P" asked by another account's root (answered
only through the asker's own roles, on its own resources, and then one deny body whatever P
is), an unknown session's revocation, a dead or unknown AccessKey with a wrong secret. A 401 never
echoes what the caller sent, and a record two accounts share shows neither the other's key
id. Names bind trust to entities: a re-created user is refused, and the answers say which
entity each trusted name is bound to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
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


_WHEN = re.compile(rb'"(evaluated_at|position)":("[^"]*"|[0-9]+)')


def test_an_outsider_hears_could_p_only_through_its_own_roles(api: MandateClient) -> None:
    """O asks "could P of A" on O's resource: an Allow through O's role with its chain, and
    otherwise one body whatever P is — absent, without sts:AssumeRole, denied it explicitly,
    or of an unknown account — live and as of; the root of O and a holder of
    ram:ReviewAccess alike, as an access review of O would show them."""
    a, a_root = api.open_account("Alpha")
    o, o_root = api.open_account("Owner")
    for name in ("alice", "bert", "cleo"):
        api.create_user(a, a_root, name)
    api.attach(a, a_root, "users/alice", "System", ASSUME)
    api.attach(a, a_root, "users/cleo", "System", ASSUME)
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}
    api.create_policy(a, a_root, "NoAssume", [deny])
    api.attach(a, a_root, "users/cleo", "Custom", "NoAssume")
    arn = {name: f"acs:ram::{a}:user/{name}" for name in ("alice", "bert", "cleo", "nobody")}
    role = f"acs:ram::{o}:role/partner"
    _role(api, o, o_root, "partner", _trust(arn["alice"], arn["bert"], arn["cleo"]))
    review = {"Effect": "Allow", "Action": "ram:ReviewAccess", "Resource": "*"}
    api.create_policy(o, o_root, "Reviewer", [review])
    auditor = api.create_user(o, o_root, "auditor")
    api.attach(o, o_root, "users/auditor", "Custom", "Reviewer")
    clerk = api.create_user(o, o_root, "clerk")
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{o}:photos/x"}
    unknown = f"acs:ram::{'7' * 16}:user/alice"
    now = datetime.now(UTC).isoformat()
    for extra in ({}, {"as_of": now}):
        for asker in (o_root, auditor):
            allowed = api.authorize(asker, **question, **extra, principal=arn["alice"])
            assert allowed["allowed"] is True, allowed
            assert allowed["chain"] == [arn["alice"], role]
            assert {m["layer"] for m in allowed["matched"]} == {"role"}
            assert allowed["billed_account"] == o
            bodies = set()
            for principal in (arn["bert"], arn["cleo"], arn["nobody"], unknown):
                response = api.post(
                    "/v1/authorize",
                    json={**question, **extra, "principal": principal},
                    headers=asker,
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert (body["decision"], body["allowed"]) == ("ImplicitDeny", False)
                assert (body["matched"], body["chain"], body["billed_account"]) == ([], [], None)
                assert body["reason"] == (
                    f"no role of account {o} that {principal} could assume allows it"
                )
                bodies.add(_WHEN.sub(b"", response.content.replace(principal.encode(), b"<P>")))
            assert len(bodies) == 1, bodies
            assert a.encode() not in bodies.pop()
        # a caller of O without ram:ReviewAccess may not ask
        for principal in (arn["alice"], arn["nobody"]):
            response = api.post(
                "/v1/authorize", json={**question, **extra, "principal": principal}, headers=clerk
            )
            assert response.status_code == 403, response.text
            assert a.encode() not in response.content


def test_an_outsider_gets_the_same_403_whether_the_principal_exists_or_not(
    api: MandateClient,
) -> None:
    a, a_root = api.open_account("Alpha")
    o, o_root = api.open_account("Owner")
    alice = api.create_user(a, a_root, "alice")
    api.attach(a, a_root, "users/alice", "System", ASSUME)
    _role(api, o, o_root, "partner", _trust(f"acs:ram::{a}:user/alice"))
    question = {"action": "oss:GetObject", "resource": f"acs:oss:*:{o}:photos/x"}
    # a third account's root asking about O's resource: one 403 whoever P is
    t, t_root = api.open_account("Third")
    bodies = []
    for name in ("alice", "nobody"):
        for extra in ({}, {"as_of": "2020-01-01T00:00:00Z"}):
            response = api.post(
                "/v1/authorize",
                json={**question, **extra, "principal": f"acs:ram::{a}:user/{name}"},
                headers=t_root,
            )
            assert response.status_code == 403, response.text
            bodies.append(response.content)
    assert len(set(bodies)) == 1, bodies
    assert a.encode() not in bodies[0]
    # O's root asking about a third account's resource is refused alike
    elsewhere = {"action": "oss:GetObject", "resource": f"acs:oss:*:{t}:photos/x"}
    for name in ("alice", "nobody"):
        response = api.post(
            "/v1/authorize",
            json={**elsewhere, "principal": f"acs:ram::{a}:user/{name}"},
            headers=o_root,
        )
        assert response.status_code == 403, response.text
        assert a.encode() not in response.content
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


def test_an_outsider_hears_a_delegation_that_reaches_p_through_its_entrustment(
    api: MandateClient,
) -> None:
    """O entrusts A; A's delegation reaches ravi: O hears the Allow with the whole chain, and
    for what the delegation does not cover the same body as for a principal that is not."""
    o, o_root = api.open_account("Owner")
    a, a_root = api.open_account("Operator")
    instances = f"acs:ecs:*:{o}:instance/*"
    granted = api.post(
        f"/v1/accounts/{o}/entrustments",
        json={
            "trustee_account_id": a,
            "scope": {
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": instances}],
            },
            "contract_ref": "MSA-1",
        },
        headers=o_root,
    )
    assert granted.status_code == 201, granted.text
    api.create_user(a, a_root, "ravi")
    api.attach(a, a_root, "users/ravi", "System", ASSUME)
    ravi = f"acs:ram::{a}:user/ravi"
    delegated = api.post(
        f"/v1/accounts/{a}/delegations",
        json={
            "entrustment_id": granted.json()["entrustment_id"],
            "grantee": ravi,
            "scope": {
                "Version": "1",
                "Statement": [
                    {"Effect": "Allow", "Action": "ecs:RebootInstance", "Resource": instances}
                ],
            },
        },
        headers=a_root,
    )
    assert delegated.status_code == 201, delegated.text
    resource = f"acs:ecs:*:{o}:instance/i-1"
    now = datetime.now(UTC).isoformat()
    for extra in ({}, {"as_of": now}):
        allowed = api.authorize(
            o_root, action="ecs:RebootInstance", resource=resource, principal=ravi, **extra
        )
        assert allowed["allowed"] is True, allowed
        chain = allowed["chain"]
        assert len(chain) == 4, chain
        assert chain[0] == ravi
        assert chain[1].startswith(f"acs:ram::{a}:delegation/"), chain
        assert chain[2].startswith(f"acs:ram::{o}:entrustment/"), chain
        assert chain[3].startswith(f"acs:ram::{o}:role/"), chain
        bodies = set()
        for principal in (ravi, f"acs:ram::{a}:user/nobody"):
            response = api.post(
                "/v1/authorize",
                json={"action": "ecs:StopInstance", "resource": resource, "principal": principal}
                | extra,
                headers=o_root,
            )
            assert response.status_code == 200, response.text
            assert response.json()["allowed"] is False
            bodies.add(_WHEN.sub(b"", response.content.replace(principal.encode(), b"<P>")))
        assert len(bodies) == 1, bodies
