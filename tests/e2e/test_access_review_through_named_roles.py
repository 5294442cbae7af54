"""Access review and "could P" follow paths through a role a resource policy names, on both stores.

Alibaba Cloud: a bucket policy may name RAM roles as its ``Principal``
(https://www.alibabacloud.com/help/en/object-storage-service/latest/examples: "Alibaba Cloud
accounts, RAM users, and RAM roles"), and a request of a role's session is evaluated with every
applicable policy — control policies first, an explicit Deny in any of them winning, the
resource-based policy with the identity-based ones
(https://www.alibabacloud.com/help/en/resource-access-management/latest/policy-evaluation-process).
A user reaches such a role by assuming it: the role's trust policy must admit it and its own
policies must allow ``sts:AssumeRole`` on the role. Across accounts the role's own policies must
allow the request too (the AND of ``domain.policy.resource_policies``).

Acme's bucket policy names OpsCo's role ``ops``; ``ops`` trusts OpsCo's alice and bob and may
read Acme's objects; alice may assume roles, bob may not. The admin's review of the bucket lists
alice with the chain ``[alice, ops, "resource-policy:<ARN>"]`` and never bob; once ``ops``' trust
stops admitting alice, a review of the later interval drops her; a Deny naming the role ends
every path through it. ``POST /v1/authorize`` with ``principal`` (live and ``as_of``) answers
the same to the admin and to OpsCo. Acme's own callers see ``ops`` only as its own conditional
item and hear the one constant answer about alice: which of OpsCo's users ``ops`` admits is
OpsCo's to know (RAM never shows Acme another account's trust, and Acme may name any role).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Headers, MandateClient

GET = "oss:GetObject"


@dataclass
class Scene:
    a: str
    root_a: Headers
    b: str
    root_b: Headers

    @property
    def bucket(self) -> str:
        return f"acs:oss:*:{self.a}:photos"

    @property
    def ops(self) -> str:
        return f"acs:ram::{self.b}:role/ops"

    def user(self, name: str) -> str:
        return f"acs:ram::{self.b}:user/{name}"


def _trust(*principals: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def _statement(a: str, effect: str, principal: Any) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": GET,
        "Resource": f"acs:oss:*:{a}:photos/*",
        "Principal": principal,
    }


def _scene(api: MandateClient) -> Scene:
    a, root_a = api.open_account("Acme")
    b, root_b = api.open_account("OpsCo")
    scene = Scene(a, root_a, b, root_b)
    for name in ("alice", "bob"):
        api.create_user(b, root_b, name)
    api.attach(b, root_b, "users/alice", "System", "AliyunSTSAssumeRoleAccess")  # bob: none
    created = api.post(
        f"/v1/accounts/{b}/roles",
        json={
            "role_name": "ops",
            "assume_role_policy_document": _trust(scene.user("alice"), scene.user("bob")),
        },
        headers=root_b,
    )
    assert created.status_code in (200, 201), created.text
    api.create_policy(
        b, root_b, "ReadAcme", [{"Effect": "Allow", "Action": GET, "Resource": f"acs:oss:*:{a}:*"}]
    )
    api.attach(b, root_b, "roles/ops", "Custom", "ReadAcme")
    _put(api, scene, _statement(a, "Allow", {"RAM": [scene.ops]}))
    return scene


def _put(api: MandateClient, scene: Scene, *statements: dict[str, Any]) -> None:
    response = api.put(
        f"/v1/accounts/{scene.a}/resource-policies",
        params={"resource": scene.bucket},
        json={"policy_document": {"Version": "1", "Statement": list(statements)}},
        headers=scene.root_a,
    )
    assert response.status_code == 200, response.text


def _review(
    api: MandateClient, scene: Scene, start: str | None = None, headers: Headers | None = None
) -> dict[str, Any]:
    """The review of Acme's bucket, by the admin unless ``headers`` says who asks."""
    query = {
        "resource": f"acs:oss:*:{scene.a}:photos/cat.jpg",
        "action": GET,
        "from": start or (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }
    asker = api.admin if headers is None else headers
    response = api.get(f"/v1/accounts/{scene.a}/access-review", params=query, headers=asker)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["principal"]: item for item in body["items"]}


def _could(
    api: MandateClient, scene: Scene, name: str, headers: Headers | None = None, **extra: Any
) -> dict[str, Any]:
    """Could OpsCo's ``name`` read the object? Asked by the admin unless ``headers`` says."""
    return api.authorize(
        api.admin if headers is None else headers,
        action=GET,
        resource=f"acs:oss:*:{scene.a}:photos/cat.jpg",
        principal=scene.user(name),
        **extra,
    )


def test_a_user_who_may_assume_the_named_role_is_listed_until_its_trust_drops_her(
    api: MandateClient,
) -> None:
    scene = _scene(api)
    alice, bob, via = scene.user("alice"), scene.user("bob"), f"resource-policy:{scene.bucket}"
    body = _review(api, scene)
    items = _items(body)
    assert bob not in items  # trusted, but without sts:AssumeRole
    assert scene.user("carol") not in items
    (granted,) = items[alice]["intervals"]
    assert (items[alice]["principal_type"], items[alice]["account_id"]) == ("user", scene.b)
    assert granted["chain"] == [alice, scene.ops, via]
    assert granted["conditional"] is False
    assert granted["to"] == body["to"]
    # the role itself is still one item: any session of it (however it was reached)
    assert [i["chain"] for i in items[scene.ops]["intervals"]] == [[scene.ops, via]]

    # "could P" says the same, live and as of now, to the admin and to OpsCo (ops' account)
    when = datetime.now(UTC).isoformat()
    for asker in (api.admin, scene.root_b):
        live = _could(api, scene, "alice", asker)
        assert live["allowed"] is True
        assert live["chain"] == [alice, scene.ops]
        assert any(m["layer"] == "resource" for m in live["matched"])
        assert _could(api, scene, "bob", asker)["allowed"] is False
        then = _could(api, scene, "alice", asker, as_of=when)
        assert (then["allowed"], then["chain"]) == (True, [alice, scene.ops])

    # Acme's caller sees ops only as its own item: none of OpsCo's users, no trust
    acme = _review(api, scene, headers=scene.root_a)
    assert set(_items(acme)) == {f"acs:ram::{scene.a}:root", scene.ops}
    (role_item,) = _items(acme)[scene.ops]["intervals"]
    assert (role_item["chain"], role_item["conditional"]) == ([scene.ops, via], True)
    assert role_item["from"] == items[scene.ops]["intervals"][0]["from"]
    # and hears about alice (who may assume ops) what it hears about bob (who may not) and
    # about carol (who does not exist): the one constant answer, live and as of
    for extra in ({}, {"as_of": when}):
        heard = []
        for name in ("alice", "bob", "carol"):
            answer = _could(api, scene, name, scene.root_a, **extra)
            assert answer["reason"] == (
                f"no role of account {scene.a} that {scene.user(name)} could assume allows it"
            )
            heard.append(
                {k: v for k, v in answer.items() if k not in ("evaluated_at", "position", "reason")}
            )
        assert heard[0] == heard[1] == heard[2]
        assert (heard[0]["allowed"], heard[0]["chain"], heard[0]["matched"]) == (False, [], [])

    # ops' trust stops admitting alice: her interval ends there
    retrusted = api.put(
        f"/v1/accounts/{scene.b}/roles/ops/trust-policy",
        json={"assume_role_policy_document": _trust(bob)},
        headers=scene.root_b,
    )
    assert retrusted.status_code == 200, retrusted.text
    body = _review(api, scene)
    (ended,) = _items(body)[alice]["intervals"]
    assert ended["from"] == granted["from"]
    assert datetime.fromisoformat(ended["to"]) < datetime.fromisoformat(body["to"])
    later = _review(api, scene, ended["to"])
    assert alice not in _items(later)
    assert bob not in _items(later)
    assert _could(api, scene, "alice")["allowed"] is False
    # as of the earlier instant the answer is unchanged
    assert _could(api, scene, "alice", as_of=when)["allowed"] is True


def test_a_deny_naming_the_role_ends_every_path_through_it(api: MandateClient) -> None:
    scene = _scene(api)
    alice = scene.user("alice")
    (granted,) = _items(_review(api, scene))[alice]["intervals"]
    _put(
        api,
        scene,
        _statement(scene.a, "Allow", {"RAM": [scene.ops]}),
        _statement(scene.a, "Deny", scene.ops),
    )
    body = _review(api, scene)
    items = _items(body)
    (ended,) = items[alice]["intervals"]
    assert ended["from"] == granted["from"]
    assert datetime.fromisoformat(ended["to"]) < datetime.fromisoformat(body["to"])
    (role_ended,) = items[scene.ops]["intervals"]
    assert role_ended["to"] == ended["to"]
    later = _review(api, scene, ended["to"])
    assert set(_items(later)) == {f"acs:ram::{scene.a}:root"}
    denied = _could(api, scene, "alice")
    assert denied["allowed"] is False


def test_without_the_roles_own_permission_across_accounts_no_path(api: MandateClient) -> None:
    """Across accounts the role's own policies must allow the request too (the AND)."""
    scene = _scene(api)
    detached = api.delete(
        f"/v1/accounts/{scene.b}/roles/ops/policies/Custom/ReadAcme", headers=scene.root_b
    )
    assert detached.status_code == 200, detached.text
    body = _review(api, scene)
    (granted,) = _items(body)[scene.user("alice")]["intervals"]
    assert datetime.fromisoformat(granted["to"]) < datetime.fromisoformat(body["to"])
    assert _could(api, scene, "alice")["allowed"] is False


def test_a_role_of_the_owner_named_by_its_policy_needs_no_identity_grant(
    api: MandateClient,
) -> None:
    """Inside the owner's account the resource policy alone allows the role's session (OR):
    a user of the owner that may assume the role is listed through it."""
    a, root_a = api.open_account("Acme")
    api.create_user(a, root_a, "carol")
    api.attach(a, root_a, "users/carol", "System", "AliyunSTSAssumeRoleAccess")
    carol, reader = f"acs:ram::{a}:user/carol", f"acs:ram::{a}:role/reader"
    created = api.post(
        f"/v1/accounts/{a}/roles",
        json={"role_name": "reader", "assume_role_policy_document": _trust(carol)},
        headers=root_a,
    )
    assert created.status_code in (200, 201), created.text
    scene = Scene(a, root_a, a, root_a)
    _put(api, scene, _statement(a, "Allow", reader))
    items = _items(_review(api, scene))
    assert [i["chain"] for i in items[carol]["intervals"]] == [
        [carol, reader, f"resource-policy:{scene.bucket}"]
    ]
    answer = api.authorize(
        root_a, action=GET, resource=f"acs:oss:*:{a}:photos/cat.jpg", principal=carol
    )
    assert (answer["allowed"], answer["chain"]) == (True, [carol, reader])
