"""Tags and attribute conditions over HTTP, on both stores (issue 16, item 1).

Tags on users and roles keep RAM's limits; ``acs:ResourceTag/<key>`` is read from the index
for RAM users and roles and vouched for by an enforcement point for anything else;
``acs:RequestTag/<key>``, ``acs:SourceVpc``, ``acs:UserAgent`` and ``acs:Referer`` come from
an enforcement point (request tags also from a caller deciding for itself).

Pages: conditional operators and ``acs:ResourceTag``/``acs:RequestTag``,
https://www.alibabacloud.com/help/en/ram/conditional-operator; RAM's TagResources (users and
roles), https://www.alibabacloud.com/help/en/ram/developer-reference/api-ram-2015-05-01-tagresources;
tag limits, https://www.alibabacloud.com/help/en/resource-management/latest/limits
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Headers, MandateClient


def _tick() -> None:
    time.sleep(0.01)  # instants between events must be distinguishable


def _tags(api: MandateClient, account: str, path: str, headers: Headers) -> dict[str, Any]:
    response = api.get(f"/v1/accounts/{account}/{path}/tags", headers=headers)
    assert response.status_code == 200, response.text
    tags: dict[str, Any] = response.json()["tags"]
    return tags


def _tag(
    api: MandateClient, account: str, path: str, headers: Headers, tags: dict[str, Any]
) -> Any:
    return api.put(f"/v1/accounts/{account}/{path}/tags", json={"tags": tags}, headers=headers)


def _key_of(api: MandateClient, account: str, root: Headers, user: str) -> dict[str, str]:
    issued = api.post(f"/v1/accounts/{account}/users/{user}/access-keys", headers=root).json()
    return {
        "access_key_id": issued["access_key_id"],
        "access_key_secret": issued["access_key_secret"],
    }


def test_users_and_roles_are_tagged_listed_and_untagged_within_rams_limits(
    api: MandateClient,
) -> None:
    """RAM's limits (IMS TagResources,
    https://help.aliyun.com/zh/ram/developer-reference/api-ims-2019-08-15-tagresources: a key
    of at most 128 characters, not starting with ``aliyun`` or ``acs:``, no ``http://``; a value
    of at most 128, possibly empty; Resource Management limits,
    https://www.alibabacloud.com/help/en/resource-management/latest/limits: 20 tags a resource).
    Refusals are problem+json naming each tag and write nothing."""
    account, root = api.open_account()
    api.create_user(account, root, "alice")
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
    created = api.post(
        f"/v1/accounts/{account}/roles",
        json={"role_name": "ops", "assume_role_policy_document": trust},
        headers=root,
    )
    assert created.status_code == 201, created.text

    tagged = _tag(api, account, "users/alice", root, {"team": "dev", "Env": ""})
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["tags"] == {"Env": "", "team": "dev"}
    assert _tag(api, account, "users/alice", root, {"team": "ops"}).json()["tags"] == {
        "Env": "",
        "team": "ops",
    }  # one value per key: the new one replaces it
    assert _tag(api, account, "roles/ops", root, {"env": "prod"}).status_code == 200
    assert _tags(api, account, "roles/ops", root) == {"env": "prod"}
    # a role's value may be 256 characters (RAM TagResources), a user's 128 (IMS)
    assert _tag(api, account, "roles/ops", root, {"long": "v" * 256}).status_code == 200
    assert _tag(api, account, "users/alice", root, {"long": "v" * 256}).status_code == 400
    api.delete(f"/v1/accounts/{account}/roles/ops/tags", params={"tag_key": "long"}, headers=root)

    head = api.log_head()
    refused = _tag(
        api,
        account,
        "users/alice",
        root,
        {"acs:x": "1", "aliyunfoo": "1", "k" * 129: "1", "v": "x" * 129, "u": "see https://x"},
    )
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"]: e["reason"] for e in refused.json()["errors"]}
    assert set(fields) == {
        "tags.acs:x",
        "tags.aliyunfoo",
        f"tags.{'k' * 129}",
        "tags.v",
        "tags.u",
    }
    assert "aliyun" in fields["tags.acs:x"]
    assert "128" in fields["tags.v"]
    too_many = _tag(api, account, "users/alice", root, {f"k{i}": "v" for i in range(19)})
    assert too_many.status_code == 409, too_many.text
    assert too_many.json()["code"] == "LimitExceeded.Tag"
    assert api.log_head() == head  # nothing written
    assert _tags(api, account, "users/alice", root) == {"Env": "", "team": "ops"}

    untagged = api.delete(
        f"/v1/accounts/{account}/users/alice/tags", params={"tag_key": "Env"}, headers=root
    )
    assert untagged.status_code == 200, untagged.text
    assert untagged.json()["tags"] == {"team": "ops"}
    neither = api.delete(f"/v1/accounts/{account}/users/alice/tags", headers=root)
    assert neither.status_code == 400, neither.text
    every = api.delete(
        f"/v1/accounts/{account}/roles/ops/tags", params={"all": "true"}, headers=root
    )
    assert every.json()["tags"] == {}
    missing = _tag(api, account, "users/nobody", root, {"a": "b"})
    assert missing.status_code == 404, missing.text


def test_tag_calls_are_authorised_as_rams_tag_actions(api: MandateClient) -> None:
    """``ram:TagResources`` / ``ram:ListTagResources`` on the user's ARN, as any management call."""
    account, root = api.open_account()
    api.create_user(account, root, "alice")
    clerk = api.create_user(account, root, "clerk")
    assert _tag(api, account, "users/alice", clerk, {"a": "b"}).status_code == 403
    api.create_policy(
        account,
        root,
        "Tagger",
        [
            {
                "Effect": "Allow",
                "Action": ["ram:TagResources", "ram:ListTagResources"],
                "Resource": f"acs:ram::{account}:user/alice",
            }
        ],
    )
    api.attach(account, root, "users/clerk", "Custom", "Tagger")
    assert _tag(api, account, "users/alice", clerk, {"a": "b"}).status_code == 200
    assert _tags(api, account, "users/alice", clerk) == {"a": "b"}
    gone = api.delete(
        f"/v1/accounts/{account}/users/alice/tags", params={"tag_key": "a"}, headers=clerk
    )
    assert gone.status_code == 403, gone.text  # ram:UntagResources not granted


def test_a_resource_tag_allow_grants_and_a_resource_tag_deny_denies_on_ram_users(
    api: MandateClient,
) -> None:
    """RAM's example (https://www.alibabacloud.com/help/en/ram/conditional-operator):
    ``StringEquals acs:ResourceTag/team: dev`` lets a user manage only resources tagged
    ``team:dev``. Here the resources are RAM users, whose tags Mandate knows: the management
    calls themselves are allowed or denied by them, and a later untag takes effect."""
    account, root = api.open_account()
    manager = api.create_user(account, root, "manager")
    for name in ("alice", "bob", "carol"):
        api.create_user(account, root, name)
    _tag(api, account, "users/alice", root, {"team": "dev"})
    _tag(api, account, "users/bob", root, {"team": "ops"})
    _tag(api, account, "users/carol", root, {"team": "dev", "protected": "true"})
    api.create_policy(
        account,
        root,
        "DevTeam",
        [
            {
                "Sid": "ManageDev",
                "Effect": "Allow",
                "Action": ["ram:GetUser", "ram:UpdateUser", "ram:DeleteUser"],
                "Resource": f"acs:ram::{account}:user/*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": ["dev"]}},
            },
            {
                "Effect": "Deny",
                "Action": "ram:DeleteUser",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/protected": "true"}},
            },
        ],
    )
    api.attach(account, root, "users/manager", "Custom", "DevTeam")
    users = f"/v1/accounts/{account}/users"

    assert api.get(f"{users}/alice", headers=manager).status_code == 200
    assert api.get(f"{users}/bob", headers=manager).status_code == 403
    decided = api.authorize(
        manager, action="ram:GetUser", resource=f"acs:ram::{account}:user/alice"
    )
    assert decided["decision"] == "Allow", decided
    assert decided["matched"][0]["policy_name"] == "DevTeam"
    deny = api.delete(f"{users}/carol", headers=manager)
    assert deny.status_code == 403, deny.text
    explicit = api.authorize(
        manager, action="ram:DeleteUser", resource=f"acs:ram::{account}:user/carol"
    )
    assert explicit["decision"] == "ExplicitDeny", explicit

    # values are case-sensitive under StringEquals; the key in the Condition is not
    _tag(api, account, "users/bob", root, {"TEAM": "Dev"})
    assert api.get(f"{users}/bob", headers=manager).status_code == 403
    _tag(api, account, "users/bob", root, {"team": "dev"})
    assert api.get(f"{users}/bob", headers=manager).status_code == 200

    api.delete(f"{users}/alice/tags", params={"tag_key": "team"}, headers=root)
    assert api.get(f"{users}/alice", headers=manager).status_code == 403  # missing tag: no Allow
    assert api.delete(f"{users}/bob", headers=manager).status_code == 200


def test_the_caller_cannot_vouch_for_a_resources_tags_or_its_connection(
    api: MandateClient,
) -> None:
    """A self-decision may pass request tags (what it asks to do), never a resource's tags,
    nor acs:SourceVpc, acs:UserAgent, acs:Referer (as acs:SourceIp): 400 naming each key."""
    account, root = api.open_account()
    alice = api.create_user(account, root, "alice")
    api.create_policy(
        account,
        root,
        "Tagging",
        [
            {
                "Effect": "Allow",
                "Action": "ecs:RunInstances",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:RequestTag/costcenter": "tony"}},
            }
        ],
    )
    api.attach(account, root, "users/alice", "Custom", "Tagging")
    ask = {"action": "ecs:RunInstances", "resource": f"acs:ecs:*:{account}:instance/*"}
    allowed = api.authorize(alice, **ask, context={"acs:RequestTag/costcenter": "tony"})
    assert allowed["decision"] == "Allow", allowed
    assert api.authorize(alice, **ask)["decision"] == "ImplicitDeny"
    refused = api.post(
        "/v1/authorize",
        json={
            **ask,
            "context": {
                "acs:ResourceTag/team": "dev",
                "acs:SourceVpc": "vpc-1",
                "acs:UserAgent": "curl",
                "acs:Referer": "https://example.com/",
            },
        },
        headers=alice,
    )
    assert refused.status_code == 400, refused.text
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {
        "context.acs:resourcetag/team",
        "context.acs:sourcevpc",
        "context.acs:useragent",
        "context.acs:referer",
    }


def test_an_enforcement_point_vouches_for_tags_vpc_user_agent_and_referer(
    api: MandateClient,
) -> None:
    """The ``credentials`` form: the enforcement point (here the account's root, in front of
    an object store) passes what it knows of the request; a RAM user's tags stay the index's.

    ``acs:SourceVpc`` is "the VPC of the client that sends the request, valid only when it
    comes from an Alibaba Cloud VPC" (a VPC id, String operators: KMS's page of Alibaba
    Cloud's common condition keys,
    https://www.alibabacloud.com/help/en/kms/security-and-compliance/condition-key); the
    ResourceTag/RequestTag rules follow RAM's conditional-operator page. ``acs:UserAgent`` and
    ``acs:Referer`` are read as strings like the others (String operators)."""
    account, root = api.open_account()
    api.create_user(account, root, "alice")
    api.create_user(account, root, "target")
    _tag(api, account, "users/target", root, {"team": "ops"})
    client = _key_of(api, account, root, "alice")
    bucket = f"acs:oss:*:{account}:photos/a.jpg"
    api.create_policy(
        account,
        root,
        "Conditions",
        [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject", "ram:GetUser"],
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            },
            {
                "Effect": "Deny",
                "Action": "oss:GetObject",
                "Resource": "*",
                "Condition": {"StringLike": {"acs:RequestTag/env": "prod*"}},
            },
            {
                "Effect": "Allow",
                "Action": "oss:PutObject",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"acs:SourceVpc": "vpc-bp1717bgs34gj"},
                    "StringLike": {
                        "acs:UserAgent": "*aliyun-sdk*",
                        "acs:Referer": "https://www.example.com/*",
                    },
                },
            },
        ],
    )
    api.attach(account, root, "users/alice", "Custom", "Conditions")

    def decide(action: str, resource: str, context: dict[str, Any]) -> str:
        answer = api.authorize(
            root, action=action, resource=resource, credentials=client, context=context
        )
        decision: str = answer["decision"]
        return decision

    assert decide("oss:GetObject", bucket, {"acs:ResourceTag/team": "dev"}) == "Allow"
    assert decide("oss:GetObject", bucket, {"acs:ResourceTag/team": "ops"}) == "ImplicitDeny"
    assert decide("oss:GetObject", bucket, {}) == "ImplicitDeny"  # no tag: no Allow
    assert (
        decide(
            "oss:GetObject", bucket, {"acs:ResourceTag/team": "dev", "acs:RequestTag/env": "prod-1"}
        )
        == "ExplicitDeny"
    )
    # a RAM user's tags are the index's: the enforcement point's word about them is dropped
    target = f"acs:ram::{account}:user/target"
    assert decide("ram:GetUser", target, {"acs:ResourceTag/team": "dev"}) == "ImplicitDeny"
    _tag(api, account, "users/target", root, {"team": "dev"})
    assert decide("ram:GetUser", target, {}) == "Allow"

    good = {
        "acs:SourceVpc": "vpc-bp1717bgs34gj",
        "acs:UserAgent": "aliyun-sdk-java/3.0",
        "acs:Referer": "https://www.example.com/page",
    }
    assert decide("oss:PutObject", bucket, good) == "Allow"
    for key, wrong in (
        ("acs:SourceVpc", "vpc-other"),
        ("acs:UserAgent", "curl/8"),
        ("acs:Referer", "https://evil.example/"),
    ):
        assert decide("oss:PutObject", bucket, {**good, key: wrong}) == "ImplicitDeny", key
    assert decide("oss:PutObject", bucket, {}) == "ImplicitDeny"


def test_as_of_a_user_is_judged_by_the_tags_the_resource_had_then(api: MandateClient) -> None:
    """The temporal index holds tags as facts: as of an instant, the tags then decide."""
    account, root = api.open_account()
    api.create_user(account, root, "manager")
    api.create_user(account, root, "alice")
    api.create_policy(
        account,
        root,
        "DevTeam",
        [
            {
                "Effect": "Allow",
                "Action": "ram:GetUser",
                "Resource": f"acs:ram::{account}:user/*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            }
        ],
    )
    api.attach(account, root, "users/manager", "Custom", "DevTeam")
    _tick()
    before = datetime.now(UTC).isoformat()
    _tick()
    _tag(api, account, "users/alice", root, {"team": "dev"})
    _tick()
    tagged = datetime.now(UTC).isoformat()
    _tick()
    api.delete(f"/v1/accounts/{account}/users/alice/tags", params={"all": "true"}, headers=root)
    question = {
        "principal": f"acs:ram::{account}:user/manager",
        "action": "ram:GetUser",
        "resource": f"acs:ram::{account}:user/alice",
    }
    assert api.authorize(root, **question, as_of=before)["decision"] == "ImplicitDeny"
    assert api.authorize(root, **question, as_of=tagged)["decision"] == "Allow"
    assert api.authorize(root, **question)["decision"] == "ImplicitDeny"


def test_an_access_review_marks_a_vouched_tag_condition_conditional(api: MandateClient) -> None:
    """Who could read an OSS object only if an enforcement point vouched for its tag is shown
    ``conditional: true`` (a request-context condition decides); who may read a RAM user by
    the tags Mandate knows of it is shown allowed outright, from the instant it was tagged."""
    account, root = api.open_account()
    api.create_user(account, root, "reader")
    api.create_user(account, root, "alice")
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    api.create_policy(
        account,
        root,
        "ByTag",
        [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject", "ram:GetUser"],
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            }
        ],
    )
    api.attach(account, root, "users/reader", "Custom", "ByTag")
    _tick()
    _tag(api, account, "users/alice", root, {"team": "dev"})
    reader = f"acs:ram::{account}:user/reader"

    def intervals(resource: str, action: str) -> list[dict[str, Any]]:
        response = api.get(
            f"/v1/accounts/{account}/access-review",
            params={"resource": resource, "action": action, "from": since},
            headers=root,
        )
        assert response.status_code == 200, response.text
        items = {item["principal"]: item for item in response.json()["items"]}
        found: list[dict[str, Any]] = items[reader]["intervals"]
        return found

    (vouched,) = intervals(f"acs:oss:*:{account}:bucket/x", "oss:GetObject")
    assert vouched["conditional"] is True
    (known,) = intervals(f"acs:ram::{account}:user/alice", "ram:GetUser")
    assert known["conditional"] is False  # not before it was tagged, not conditionally


def test_a_role_created_with_tags_has_them_from_its_first_instant(api: MandateClient) -> None:
    """RAM's CreateRole takes ``Tag``: recorded in the same save, within the same limits, and
    authorised as tagging too (``ram:TagResources`` besides ``ram:CreateRole``)."""
    account, root = api.open_account()
    creator = api.create_user(account, root, "creator")
    api.create_policy(
        account,
        root,
        "Creates",
        [{"Effect": "Allow", "Action": "ram:CreateRole", "Resource": "*"}],
    )
    api.attach(account, root, "users/creator", "Custom", "Creates")
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
    roles = f"/v1/accounts/{account}/roles"
    body = {"role_name": "ops", "assume_role_policy_document": trust, "tags": {"team": "dev"}}
    head = api.log_head()
    assert api.post(roles, json=body, headers=creator).status_code == 403
    assert api.post(roles, json={**body, "tags": {"acs:x": "1"}}, headers=root).status_code == 400
    assert api.log_head() == head
    created = api.post(roles, json=body, headers=root)
    assert created.status_code == 201, created.text
    assert _tags(api, account, "roles/ops", root) == {"team": "dev"}
    untagged = api.post(roles, json={**body, "role_name": "plain", "tags": None}, headers=creator)
    assert untagged.status_code == 201, untagged.text


def test_a_resources_tags_are_not_the_tags_of_the_role_on_the_way_to_it(
    api: MandateClient,
) -> None:
    """ "Could P do it through a role": P's ``sts:AssumeRole`` is decided on the role's ARN, so
    the tags of the resource P finally acts on are not the role's. A policy allowing
    ``sts:AssumeRole`` only on roles tagged ``team:dev`` does not let P through an untagged
    role because the user it wants to read is tagged ``team:dev``."""
    account, root = api.open_account()
    api.create_user(account, root, "p")
    api.create_user(account, root, "alice")
    _tag(api, account, "users/alice", root, {"team": "dev"})
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account}:user/p"]},
            }
        ],
    }
    created = api.post(
        f"/v1/accounts/{account}/roles",
        json={"role_name": "reader", "assume_role_policy_document": trust},
        headers=root,
    )
    assert created.status_code == 201, created.text
    api.create_policy(
        account, root, "Reads", [{"Effect": "Allow", "Action": "ram:GetUser", "Resource": "*"}]
    )
    api.attach(account, root, "roles/reader", "Custom", "Reads")
    api.create_policy(
        account,
        root,
        "AssumeDev",
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            }
        ],
    )
    api.attach(account, root, "users/p", "Custom", "AssumeDev")
    question = {
        "principal": f"acs:ram::{account}:user/p",
        "action": "ram:GetUser",
        "resource": f"acs:ram::{account}:user/alice",
    }
    assert api.authorize(root, **question)["decision"] == "ImplicitDeny"
    # with an unconditional sts:AssumeRole the same question is allowed through the role
    api.create_policy(
        account, root, "Assume", [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
    )
    api.attach(account, root, "users/p", "Custom", "Assume")
    allowed = api.authorize(root, **question)
    assert allowed["decision"] == "Allow", allowed
    assert allowed["chain"][-1] == f"acs:ram::{account}:role/reader"


def test_sts_assume_role_is_conditioned_on_the_roles_own_tags(api: MandateClient) -> None:
    """``acs:ResourceTag/<key>`` of an ``sts:AssumeRole`` decision is the role's tag (a role of
    the caller's own account): P may assume the role tagged ``team:dev`` and not the untagged
    one, by AssumeRole itself and by "could P do it" through roles."""
    account, root = api.open_account()
    p = api.create_user(account, root, "p")
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account}:user/p"]},
            }
        ],
    }
    for name, tags in (("dev-role", {"team": "dev"}), ("ops-role", None)):
        body = {"role_name": name, "assume_role_policy_document": trust, "tags": tags}
        created = api.post(f"/v1/accounts/{account}/roles", json=body, headers=root)
        assert created.status_code == 201, created.text
    api.create_policy(
        account,
        root,
        "AssumeDev",
        [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:ResourceTag/team": "dev"}},
            }
        ],
    )
    api.attach(account, root, "users/p", "Custom", "AssumeDev")

    def assume(role: str) -> int:
        response = api.post(
            "/v1/sts/assume-role",
            json={"role_arn": f"acs:ram::{account}:role/{role}", "role_session_name": "s-1"},
            headers=p,
        )
        return response.status_code

    assert assume("dev-role") == 201
    assert assume("ops-role") == 403

    api.create_policy(
        account, root, "Reads", [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]
    )
    api.attach(account, root, "roles/ops-role", "Custom", "Reads")
    question = {
        "principal": f"acs:ram::{account}:user/p",
        "action": "oss:GetObject",
        "resource": f"acs:oss:*:{account}:bucket/a",
    }
    assert api.authorize(root, **question)["decision"] == "ImplicitDeny"  # only via ops-role
    api.attach(account, root, "roles/dev-role", "Custom", "Reads")
    through = api.authorize(root, **question)
    assert through["decision"] == "Allow", through
    assert through["chain"][-1] == f"acs:ram::{account}:role/dev-role"
