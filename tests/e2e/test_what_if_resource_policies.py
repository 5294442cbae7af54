"""What-if counts resource-based policies, over HTTP on both stores (issue 16 items 2 and 5).

RAM evaluates a resource policy together with the caller's identity policies
(https://www.alibabacloud.com/help/en/ram/policy-evaluation-process; an OSS bucket policy
grants RAM users of the owner's and of other accounts,
https://www.alibabacloud.com/help/en/oss/configure-bucket-policies-to-authorize-other-users-to-access-oss-resources):
inside the owner's account either allowing is enough, across accounts both must, and an
explicit Deny in either wins. So the reach lists a bucket policy's statements for each
principal it names, chain ``[principal, "resource-policy:<ARN>"]``: deleting a user a bucket
policy names loses that access; detaching an identity grant the bucket policy also gives
inside the account reroutes it, while across accounts it is lost (the bucket's Allow is
``needs_own_allow``, as ``POST /v1/authorize`` then confirms); and putting or deleting a
resource policy is itself a change what-if answers, refused as the real PUT/DELETE would be.
Every answer is checked against the change made for real (``_asked_then_made``).
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Headers, MandateClient
from tests.e2e.test_what_if_api import _asked_then_made, _post, _problem, _what_if


def _statement(
    a: str, principal: Any, effect: str = "Allow", action: str = "oss:GetObject"
) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": action,
        "Resource": f"acs:oss:*:{a}:photos/*",
        "Principal": principal,
    }


def _bucket(a: str) -> str:
    return f"acs:oss:*:{a}:photos"


def _put(api: MandateClient, a: str, root: Headers, statements: list[Any]) -> None:
    response = api.put(
        f"/v1/accounts/{a}/resource-policies",
        params={"resource": _bucket(a)},
        json={"policy_document": {"Version": "1", "Statement": statements}},
        headers=root,
    )
    assert response.status_code == 200, response.text


def _entries(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            i["principal"],
            i["effect"],
            i["action"],
            tuple(i["chain"]),
            i["layer"],
            i["policy_type"],
            i["needs_own_allow"],
        )
        for i in items
    }


def test_deleting_a_user_a_bucket_policy_names_loses_that_access(api: MandateClient) -> None:
    a, root = api.open_account("Acme")
    api.create_user(a, root, "alice")
    alice = f"acs:ram::{a}:user/alice"
    _put(
        api,
        a,
        root,
        [
            _statement(a, alice),
            _statement(a, {"RAM": [alice]}, "Deny", "oss:DeleteObject"),
        ],
    )
    answer = _asked_then_made(
        api,
        a,
        root,
        {"delete_user": "alice"},
        lambda: api.delete(
            f"/v1/accounts/{a}/users/alice?detach=true", headers=root
        ).raise_for_status(),
    )
    chain = (alice, f"resource-policy:{_bucket(a)}")
    assert _entries(answer["lose"]) == {
        (alice, "Allow", "oss:GetObject", chain, "resource", "Resource", False),
        (alice, "Deny", "oss:DeleteObject", chain, "resource", "Resource", False),
    }
    assert answer["lose"][0]["policy"] == _bucket(a)
    assert answer["lose"][0]["resource"] == f"acs:oss:*:{a}:photos/*"
    assert answer["gain"] == answer["rerouted"] == []
    assert answer["principals_affected"] == [alice]


def test_an_identity_grant_a_bucket_policy_also_gives_is_rerouted_inside_the_account_only(
    api: MandateClient,
) -> None:
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    alice_key = api.create_user(a, root_a, "alice")
    bob_key = api.create_user(b, root_b, "bob")
    alice, bob = f"acs:ram::{a}:user/alice", f"acs:ram::{b}:user/bob"
    read = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{a}:photos/*"}]
    api.create_policy(a, root_a, "Reader", read)
    api.attach(a, root_a, "users/alice", "Custom", "Reader")
    api.create_policy(b, root_b, "ReadAcme", read)
    api.attach(b, root_b, "users/bob", "Custom", "ReadAcme")
    _put(api, a, root_a, [_statement(a, [alice, bob])])
    cat = f"acs:oss:*:{a}:photos/cat.jpg"

    # inside Acme: the bucket policy alone allows alice, so detaching Reader reroutes
    answer = _asked_then_made(
        api,
        a,
        root_a,
        {
            "detach_policy": {
                "principal_kind": "user",
                "name": "alice",
                "policy_type": "Custom",
                "policy_name": "Reader",
            }
        },
        lambda: api.delete(
            f"/v1/accounts/{a}/users/alice/policies/Custom/Reader", headers=root_a
        ).raise_for_status(),
    )
    assert answer["lose"] == answer["gain"] == []
    assert {(i["principal"], i["layer"], i["policy"]) for i in answer["rerouted"]} == {
        (alice, "identity", "Reader")
    }
    assert api.authorize(alice_key, action="oss:GetObject", resource=cat)["allowed"]

    # across accounts both must allow: bob's own grant detached, the bucket's Allow is no
    # longer enough, so it is lost, not rerouted
    answer = _asked_then_made(
        api,
        b,
        root_b,
        {
            "detach_policy": {
                "principal_kind": "user",
                "name": "bob",
                "policy_type": "Custom",
                "policy_name": "ReadAcme",
            }
        },
        lambda: api.delete(
            f"/v1/accounts/{b}/users/bob/policies/Custom/ReadAcme", headers=root_b
        ).raise_for_status(),
    )
    assert answer["rerouted"] == answer["gain"] == []
    assert {(i["principal"], i["layer"], i["action"]) for i in answer["lose"]} == {
        (bob, "identity", "oss:GetObject")
    }
    assert not api.authorize(bob_key, action="oss:GetObject", resource=cat)["allowed"]
    # bob's reach in OpsCo still lists the bucket's statement, marked as needing his own
    # allow: Acme's document, so only its ARN, index and effect (as /v1/authorize shows them)
    still = _what_if(api, b, root_b, {"delete_user": "bob"}).json()
    assert _entries(still["lose"]) == {
        (bob, "Allow", None, (bob, f"resource-policy:{_bucket(a)}"), "resource", "Resource", True)
    }
    assert [(i["policy"], i["statement"], i["resource"]) for i in still["lose"]] == [
        (_bucket(a), 0, None)
    ]


def _role_world(api: MandateClient) -> dict[str, Any]:
    """Acme with alice, a role ``deployer`` she holds a session of, and OpsCo with bob."""
    a, root = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    alice_key = api.create_user(a, root, "alice")
    api.create_user(b, root_b, "bob")
    alice = f"acs:ram::{a}:user/alice"
    api.attach(a, root, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    trust = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [alice]}}
        ],
    }
    _post(
        api,
        f"/v1/accounts/{a}/roles",
        root,
        {"role_name": "deployer", "assume_role_policy_document": trust},
        201,
    )
    session = _post(
        api,
        "/v1/sts/assume-role",
        alice_key,
        {"role_arn": f"acs:ram::{a}:role/deployer", "role_session_name": "s1"},
        201,
    )
    return {
        "a": a,
        "b": b,
        "root": root,
        "alice": alice,
        "bob": f"acs:ram::{b}:user/bob",
        "role": f"acs:ram::{a}:role/deployer",
        "session": session["assumed_role_user"]["arn"],
    }


def test_putting_then_deleting_a_bucket_policy_gains_then_loses_whom_it_names(
    api: MandateClient,
) -> None:
    w = _role_world(api)
    a, root, alice, bob, role = w["a"], w["root"], w["alice"], w["bob"], w["role"]
    b_root = f"acs:ram::{w['b']}:root"
    statements = [
        _statement(a, [alice, bob, role, w["b"]]),
        _statement(a, "*", "Deny", "oss:DeleteObject"),
    ]
    document = {"Version": "1", "Statement": statements}
    put = {"put_resource_policy": {"resource": _bucket(a), "policy_document": document}}
    url = f"/v1/accounts/{a}/resource-policies"
    answer = _asked_then_made(
        api,
        a,
        root,
        put,
        lambda: api.put(
            url, params={"resource": _bucket(a)}, json={"policy_document": document}, headers=root
        ).raise_for_status(),
    )
    link = f"resource-policy:{_bucket(a)}"
    read, deny = ("Allow", "oss:GetObject"), ("Deny", "oss:DeleteObject")
    gained = {
        (i["principal"], i["effect"], i["action"], tuple(i["chain"]), i["needs_own_allow"])
        for i in answer["gain"]
    }
    assert gained == {
        (alice, *read, (alice, link), False),  # alone, inside Acme
        (alice, *deny, (alice, link), False),
        (alice, *read, (alice, role, link), False),  # acting as deployer
        (alice, *deny, (alice, role, link), False),
        (w["session"], *read, (w["session"], link), False),  # the role covers its session
        (w["session"], *deny, (w["session"], link), False),
        (role, *read, (role, link), False),
        (bob, *read, (bob, link), True),  # across accounts: bob's own policies must allow
        (b_root, *read, (b_root, link), True),  # OpsCo's principals, each bounded by OpsCo
        ("*", *deny, ("*", link), False),
    }
    assert answer["lose"] == answer["rerouted"] == []
    assert answer["principals_affected"] == sorted({alice, bob, role, w["session"], b_root, "*"})

    delete = {"delete_resource_policy": {"resource": _bucket(a)}}
    answer = _asked_then_made(
        api,
        a,
        root,
        delete,
        lambda: api.delete(url, params={"resource": _bucket(a)}, headers=root).raise_for_status(),
    )
    assert {
        (i["principal"], i["effect"], i["action"], tuple(i["chain"])) for i in answer["lose"]
    } == {g[:4] for g in gained}
    assert answer["gain"] == answer["rerouted"] == []


def test_replacing_a_bucket_policy_loses_the_old_statements_and_gains_the_new(
    api: MandateClient,
) -> None:
    a, root = api.open_account("Acme")
    api.create_user(a, root, "alice")
    alice = f"acs:ram::{a}:user/alice"
    _put(api, a, root, [_statement(a, alice)])
    document = {"Version": "1", "Statement": [_statement(a, alice, "Deny")]}
    answer = _asked_then_made(
        api,
        a,
        root,
        {"put_resource_policy": {"resource": _bucket(a), "policy_document": document}},
        lambda: _put(api, a, root, document["Statement"]),
    )
    assert {(i["principal"], i["effect"]) for i in answer["lose"]} == {(alice, "Allow")}
    assert {(i["principal"], i["effect"]) for i in answer["gain"]} == {(alice, "Deny")}


def test_bad_resource_policy_changes_are_problems_and_write_nothing(api: MandateClient) -> None:
    a, root = api.open_account("Acme")
    b, _ = api.open_account("OpsCo")
    carol = api.create_user(a, root, "carol")
    alice = f"acs:ram::{a}:user/alice"
    head = api.log_head()

    def fields(body: dict[str, Any], status: int = 400) -> set[str]:
        problem = _problem(_what_if(api, a, root, body), status)
        return {e["field"] for e in problem.get("errors", [])}

    def put(resource: str, statements: list[Any]) -> dict[str, Any]:
        document = {"Version": "1", "Statement": statements}
        return {"put_resource_policy": {"resource": resource, "policy_document": document}}

    other = f"acs:oss:*:{b}:photos"
    assert fields(put(other, [_statement(b, alice)])) == {"put_resource_policy.resource"}
    assert fields({"delete_resource_policy": {"resource": other}}) == {
        "delete_resource_policy.resource"
    }
    assert fields(put(f"acs:oss:*:{a}:pho*", [_statement(a, alice)])) == {
        "put_resource_policy.resource"
    }
    outside = {**_statement(a, alice), "Resource": f"acs:oss:*:{a}:videos/*"}
    assert fields(put(_bucket(a), [outside])) == {
        "put_resource_policy.policy_document.Statement[0].Resource[0]"
    }
    nobody = {k: v for k, v in _statement(a, alice).items() if k != "Principal"}
    assert fields(put(_bucket(a), [nobody])) == {
        "put_resource_policy.policy_document.Statement[0].Principal"
    }
    fields({"put_resource_policy": {"resource": _bucket(a)}})  # no document: 400
    fields({"delete_resource_policy": {"resource": _bucket(a), "extra": 1}})
    _problem(_what_if(api, a, root, {"delete_resource_policy": {"resource": _bucket(a)}}), 404)
    # carol may neither put the policy nor read effective permissions
    _problem(_what_if(api, a, carol, put(_bucket(a), [_statement(a, alice)])), 403)
    assert api.log_head() == head


def test_naming_another_accounts_principals_tells_nothing_of_whether_they_exist(
    api: MandateClient,
) -> None:
    """A dry run of Acme's own bucket policy lists every principal it names exactly as
    written: whether OpsCo's user or role exists, or OpsCo is open at all, changes nothing but
    the name (a put naming B's alice and one naming B's nobody used to gain 1 and 0 entries)."""
    a, root = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    closed, _ = api.open_account("Gone")
    api.create_user(b, root_b, "alice")
    trust = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [a]}}],
    }
    _post(
        api,
        f"/v1/accounts/{b}/roles",
        root_b,
        {"role_name": "ops", "assume_role_policy_document": trust},
        201,
    )
    api.post(f"/v1/accounts/{closed}/close", headers=api.admin).raise_for_status()
    head = api.log_head()

    def gained(name: str) -> list[dict[str, Any]]:
        document = {"Version": "1", "Statement": [_statement(a, {"RAM": [name]})]}
        change = {"put_resource_policy": {"resource": _bucket(a), "policy_document": document}}
        answer = _what_if(api, a, root, change)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["lose"] == body["rerouted"] == []
        assert body["principals_affected"] == [name]
        return [
            {**item, "principal": "P", "chain": ["P", *item["chain"][1:]]} for item in body["gain"]
        ]

    pairs = [
        (f"acs:ram::{b}:user/alice", f"acs:ram::{b}:user/nobody"),
        (f"acs:ram::{b}:role/ops", f"acs:ram::{b}:role/nothing"),
        (f"acs:ram::{b}:assumed-role/ops/s1", f"acs:ram::{b}:assumed-role/nothing/s1"),
        (f"acs:ram::{b}:root", f"acs:ram::{closed}:root"),
        (f"acs:ram::{b}:user/alice", f"acs:ram::{closed}:user/alice"),
        (f"acs:ram::{b}:user/alice", "acs:ram::1999999999999999:user/alice"),
    ]
    for known, unknown in pairs:
        listed = gained(known)
        assert len(listed) == 1
        assert listed == gained(unknown)
    assert api.log_head() == head


def test_another_accounts_bucket_policy_is_shown_only_as_authorize_shows_it(
    api: MandateClient,
) -> None:
    """OpsCo's bucket policy naming Acme's alice is OpsCo's document, which RAM never shows
    Acme: Acme's reach keeps only what ``/v1/authorize`` tells alice's account when it matched
    — the policy's ARN, the statement's index and effect — never its actions, resources or
    conditions (an IP range here); its bucket open to ``*`` is not listed at all."""
    a, root = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    alice_key = api.create_user(a, root, "alice")
    alice = f"acs:ram::{a}:user/alice"
    read = [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:{b}:photos/*"}]
    api.create_policy(a, root, "ReadOps", read)
    api.attach(a, root, "users/alice", "Custom", "ReadOps")
    secret_range = "10.42.0.0/16"
    deny = {
        **_statement(b, alice, "Deny", "oss:DeleteObject"),
        "Resource": f"acs:oss:*:{b}:photos/*",
    }
    allow = {
        **_statement(b, {"RAM": [alice]}),
        "Condition": {"IpAddress": {"acs:SourceIp": secret_range}},
    }
    _put(api, b, root_b, [deny, allow])
    public = f"acs:oss:*:{b}:public"  # names everyone, no one of Acme: not Acme's to list
    everyone = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"{public}/*"}
    response = api.put(
        f"/v1/accounts/{b}/resource-policies",
        params={"resource": public},
        json={"policy_document": {"Version": "1", "Statement": [{**everyone, "Principal": "*"}]}},
        headers=root_b,
    )
    assert response.status_code == 200, response.text
    # what /v1/authorize tells alice's account about that policy: its ARN, statement, effect
    matched = api.authorize(
        alice_key, action="oss:DeleteObject", resource=f"acs:oss:*:{b}:photos/cat.jpg"
    )["matched"]
    assert [(m["layer"], m["policy_name"], m["statement"], m["effect"]) for m in matched] == [
        ("resource", _bucket(b), 0, "Deny")
    ]
    answer = _asked_then_made(
        api,
        a,
        root,
        {"delete_user": "alice"},
        lambda: api.delete(
            f"/v1/accounts/{a}/users/alice?detach=true", headers=root
        ).raise_for_status(),
    )
    link = (alice, f"resource-policy:{_bucket(b)}")
    withheld = {
        (i["effect"], i["statement"], i["needs_own_allow"])
        for i in answer["lose"]
        if tuple(i["chain"]) == link
    }
    assert withheld == {("Deny", 0, False), ("Allow", 1, True)}
    for item in answer["lose"]:
        if tuple(item["chain"]) == link:
            assert item["action"] is item["resource"] is item["condition"] is None
            assert item["policy"] == _bucket(b)
            assert (item["layer"], item["policy_type"]) == ("resource", "Resource")
    text = json.dumps(answer)
    assert public not in text
    assert secret_range not in text
    assert "oss:DeleteObject" not in text
