"""Hostile input, one row per attack, on ``/v1`` and on the RPC dialect at ``/``: each gets its
documented 4xx and writes nothing.

Families: oversized and malformed policy documents (10,000 statements, 7,000 characters, not
JSON, wrong grammar), invalid ARNs, look-alike and confusable names (Cyrillic letters,
zero-width joiners, right-to-left overrides, fullwidth and decomposed forms), negative and
huge durations (AssumeRole's ``DurationSeconds``, an entrustment's term), truncated,
re-signed and replayed security tokens and signatures (ACS3 on ``/v1``, V3 and V1 on ``/``),
and another account's keys on this account's resources.

Each row names the status and the problem's ``code`` or refused ``field`` (``/v1``) or RAM's
``Code`` (``/``) it must get; the head of the log is read before and after the hostile call
(any setup a row needs, such as a first use of a signature it then replays, happens before),
and must not have moved.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.request import RpcRequest as CoreRpcRequest

from mandate.domain.sts.session_tokens import SessionTokenSigner
from tests.e2e.conftest import Headers, MandateClient
from tests.e2e.rpc_support import RAM_VERSION, STS_VERSION, Key, RpcServer, rpc_serving

PROBLEM_JSON = "application/problem+json"
ALLOW_ALL = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]


@dataclass(frozen=True)
class World:
    """Account A (root, a user ``ana`` who may assume ``ops``, a live session of ``ops``) and
    account B (its root), served over the module's store."""

    server: RpcServer
    a: str
    a_root: Key
    ana: Key
    session: Key
    token: str
    b: str
    b_root: Key

    @property
    def api(self) -> MandateClient:
        return self.server.api

    def basic(self, key: Key) -> Headers:
        return MandateClient.basic(key.access_key_id, key.secret)


@pytest.fixture(scope="module")
def world(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("hostile-table")) as server:
        api = server.api
        a_root = server.open_account()
        b_root = server.open_account()
        a = a_root.account_id
        root = MandateClient.basic(a_root.access_key_id, a_root.secret)
        ana_headers = api.create_user(a, root, "ana")
        ana_id, ana_secret = _basic_pair(ana_headers)
        api.create_policy(a, root, "Everything", ALLOW_ALL)
        api.attach(a, root, "users/ana", "Custom", "Everything")
        trust = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{a}:user/ana"]},
                }
            ],
        }
        role = {"role_name": "ops", "assume_role_policy_document": trust}
        created = api.post(f"/v1/accounts/{a}/roles", json=role, headers=root)
        assert created.status_code == 201, created.text
        api.attach(a, root, "roles/ops", "Custom", "Everything")
        assumed = api.post(
            "/v1/sts/assume-role",
            json={"role_arn": f"acs:ram::{a}:role/ops", "role_session_name": "s1"},
            headers=ana_headers,
        )
        assert assumed.status_code == 201, assumed.text
        credentials = assumed.json()["credentials"]
        session = Key(credentials["access_key_id"], credentials["access_key_secret"], a)
        yield World(
            server,
            a,
            a_root,
            Key(ana_id, ana_secret, a),
            session,
            credentials["security_token"],
            b_root.account_id,
            b_root,
        )


def _basic_pair(headers: Headers) -> tuple[str, str]:
    pair = base64.b64decode(headers["Authorization"].removeprefix("Basic ")).decode()
    key_id, _, secret = pair.partition(":")
    return key_id, secret


# -- request builders ---------------------------------------------------------------------


def _acs3(
    world: World,
    key: Key,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: dict[str, str] | None = None,
    token: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """ACS3-HMAC-SHA256 headers as tea-openapi's signer makes them (``extra``: x-acs-action
    and x-acs-version for an RPC call at ``/``)."""
    url = world.api.base_url
    headers = {
        "host": f"{url.host}:{url.port}",
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        **(extra or {}),
    }
    if body:
        headers["content-type"] = "application/json"
    if token is not None:
        headers["x-acs-security-token"] = token
    request = SimpleNamespace(method=method, pathname=path, query=query or {}, headers=headers)
    headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], key.access_key_id, key.secret
    )
    return headers


def _v3_rpc(
    world: World,
    key: Key,
    action: str,
    query: dict[str, str],
    *,
    token: str | None = None,
    version: str = RAM_VERSION,
) -> tuple[dict[str, str], dict[str, str]]:
    """A V3-signed RPC call at ``/`` (query parameters, no body): its headers and query."""
    extra = {"x-acs-action": action, "x-acs-version": version}
    headers = _acs3(world, key, "POST", "/", query=query, token=token, extra=extra)
    return headers, query


def _v1_query(
    key: Key, action: str, params: dict[str, str], *, token: str | None = None
) -> list[tuple[str, str]]:
    """A V1-signed (HMAC-SHA1) RPC GET as aliyun-python-sdk-core builds it: its query."""
    product, version = ("Sts", STS_VERSION) if action == "AssumeRole" else ("Ram", RAM_VERSION)
    request = CoreRpcRequest(product, version, action)
    request.set_method("GET")
    request.set_accept_format("JSON")
    for name, value in params.items():
        request.add_query_param(name, value)
    if token is not None:
        request.add_query_param("SecurityToken", token)
    url = request.get_url("cn-hangzhou", key.access_key_id, key.secret)
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _forged_token(world: World, *, later: bool) -> str:
    """The session's token re-signed with a key Mandate does not hold (same key id),
    optionally with a later expiry."""
    parts = world.token.split(".")
    key_id = parts[1]
    expiry = datetime.fromtimestamp(int(parts[4]), UTC)
    if later:
        expiry += timedelta(days=365)
    signer = SessionTokenSigner(key_id, {key_id: b"an attacker's own key, 32 bytes+"})
    return signer.issue(world.session.access_key_id, expiry)


def _statements(count: int) -> list[dict[str, str]]:
    return [
        {"Effect": "Allow", "Action": "oss:GetObject", "Resource": f"acs:oss:*:*:bucket/{i}"}
        for i in range(count)
    ]


def _policy(statements: Any) -> dict[str, Any]:
    return {"Version": "1", "Statement": statements}


TRUST_A_USER = "acs:ram::{a}:user/ana"

# -- the rows --------------------------------------------------------------------------------

Call = Callable[[], httpx.Response]


@dataclass(frozen=True)
class Row:
    """``prepare(world)`` does any setup (it may write) and returns the hostile call."""

    prepare: Callable[[World], Call]
    status: int
    code: str | None = None  # problem ``code`` (/v1) or RAM's ``Code`` (/)
    field: str | None = None  # the refused field a /v1 400 must name
    rpc: bool = False


def _fill(text: str, world: World) -> str:
    """``{a}`` and ``{b}``: the two accounts' ids."""
    return text.replace("{a}", world.a).replace("{b}", world.b)


def v1_post(path: str, body: Any, *, who: str = "a_root") -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        headers = world.basic(getattr(world, who))
        url = _fill(path, world)
        payload = json.loads(_fill(json.dumps(body), world))
        return lambda: world.api.post(url, json=payload, headers=headers)

    return prepare


def v1_request(
    method: str, path: str, body: Any = None, *, who: str = "a_root"
) -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        headers = world.basic(getattr(world, who))
        url = _fill(path, world)
        return lambda: world.api.request(method, url, json=body, headers=headers)

    return prepare


def rpc_v3(
    action: str,
    query: dict[str, str],
    *,
    who: str = "a_root",
    version: str = RAM_VERSION,
) -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        filled = {k: _fill(v, world) for k, v in query.items()}
        token = world.token if who == "session" else None
        headers, params = _v3_rpc(
            world, getattr(world, who), action, filled, token=token, version=version
        )
        return lambda: world.api.post("/", params=params, headers=headers)

    return prepare


def rpc_v1(action: str, params: dict[str, str], *, who: str = "a_root") -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        filled = {k: _fill(v, world) for k, v in params.items()}
        token = world.token if who == "session" else None
        query = _v1_query(getattr(world, who), action, filled, token=token)
        return lambda: world.api.get("/", params=query)

    return prepare


def _acs3_write(
    world: World, key: Key, *, token: str | None = None
) -> tuple[str, bytes, dict[str, str]]:
    users = f"/v1/accounts/{world.a}/users"
    body = json.dumps({"user_name": f"u-{uuid.uuid4().hex[:8]}"}).encode()
    return users, body, _acs3(world, key, "POST", users, body=body, token=token)


def acs3_replayed(world: World) -> Call:
    """A signed read, sent once (200), then sent again as a write's credentials."""
    users = f"/v1/accounts/{world.a}/users"
    headers = _acs3(world, world.a_root, "GET", users)
    first = world.api.get(users, headers=headers)
    assert first.status_code == 200, first.text
    return lambda: world.api.get(users, headers=headers)


def acs3_replayed_write(world: World) -> Call:
    """A signed CreateUser, accepted once (it writes, before the head is read), replayed."""
    users, body, headers = _acs3_write(world, world.a_root)
    first = world.api.post(users, content=body, headers=headers)
    assert first.status_code == 201, first.text
    return lambda: world.api.post(users, content=body, headers=headers)


def acs3_resigned(world: World) -> Call:
    """A's root key id, the signature computed with B's root secret."""
    wrong = Key(world.a_root.access_key_id, world.b_root.secret, world.a)
    users, body, headers = _acs3_write(world, wrong)
    return lambda: world.api.post(users, content=body, headers=headers)


def acs3_body_swapped(world: World) -> Call:
    users, _, headers = _acs3_write(world, world.a_root)
    other = json.dumps({"user_name": "mallory"}).encode()
    return lambda: world.api.post(users, content=other, headers=headers)


def acs3_token(mangle: Callable[[World], str | None]) -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        users, body, headers = _acs3_write(world, world.session, token=mangle(world))
        return lambda: world.api.post(users, content=body, headers=headers)

    return prepare


def acs3_b_on_a(world: World) -> Call:
    """B's root, correctly signed, writing into A."""
    users, body, headers = _acs3_write(world, world.b_root)
    return lambda: world.api.post(users, content=body, headers=headers)


def v3_rpc_token(mangle: Callable[[World], str | None]) -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        query = {"UserName": f"u-{uuid.uuid4().hex[:8]}"}
        headers, params = _v3_rpc(world, world.session, "CreateUser", query, token=mangle(world))
        return lambda: world.api.post("/", params=params, headers=headers)

    return prepare


def v3_rpc_replayed(world: World) -> Call:
    query = {"UserName": f"u-{uuid.uuid4().hex[:8]}"}
    headers, params = _v3_rpc(world, world.a_root, "CreateUser", query)
    first = world.api.post("/", params=params, headers=headers)
    assert first.status_code == 200, first.text
    return lambda: world.api.post("/", params=params, headers=headers)


def v3_rpc_resigned(world: World) -> Call:
    wrong = Key(world.a_root.access_key_id, world.b_root.secret, world.a)
    headers, params = _v3_rpc(world, wrong, "CreateUser", {"UserName": "resigned"})
    return lambda: world.api.post("/", params=params, headers=headers)


def v1_rpc_replayed(world: World) -> Call:
    query = _v1_query(world.a_root, "CreateUser", {"UserName": f"u-{uuid.uuid4().hex[:8]}"})
    first = world.api.get("/", params=query)
    assert first.status_code == 200, first.text
    return lambda: world.api.get("/", params=query)


def v1_rpc_resigned(world: World) -> Call:
    wrong = Key(world.a_root.access_key_id, world.b_root.secret, world.a)
    query = _v1_query(wrong, "CreateUser", {"UserName": "resigned"})
    return lambda: world.api.get("/", params=query)


def v1_rpc_tampered(world: World) -> Call:
    """A signed CreateUser whose UserName is changed after signing."""
    query = _v1_query(world.a_root, "CreateUser", {"UserName": "signed-name"})
    changed = [(k, "other-name" if k == "UserName" else v) for k, v in query]
    return lambda: world.api.get("/", params=changed)


def v1_rpc_token(mangle: Callable[[World], str | None]) -> Callable[[World], Call]:
    def prepare(world: World) -> Call:
        params = {"UserName": f"u-{uuid.uuid4().hex[:8]}"}
        query = _v1_query(world.session, "CreateUser", params, token=mangle(world))
        return lambda: world.api.get("/", params=query)

    return prepare


def b_key_with_a_token(world: World) -> Call:
    """B's root key signs (V3, at ``/``) a call carrying A's session token."""
    query = {"UserName": f"u-{uuid.uuid4().hex[:8]}"}
    headers, params = _v3_rpc(world, world.b_root, "CreateUser", query, token=world.token)
    return lambda: world.api.post("/", params=params, headers=headers)


def truncated(world: World) -> str:
    return world.token[: len(world.token) // 2]


def chopped_signature(world: World) -> str:
    return world.token[:-3]


def resigned_token(world: World) -> str:
    return _forged_token(world, later=False)


def extended_token(world: World) -> str:
    return _forged_token(world, later=True)


def other_sessions_token(world: World) -> str:
    """A well-formed token naming another key id, signed by nobody Mandate knows."""
    parts = world.token.split(".")
    return ".".join([*parts[:2], "STS", "SomeoneElse0000", *parts[4:]])


def no_token(world: World) -> None:
    return None


def b_basic_on_a(method: str, path: str, body: Any = None) -> Callable[[World], Call]:
    return v1_request(method, path, body, who="b_root")


def mixed_keys(world: World) -> Call:
    """A's root key id with B's root secret, as Basic."""
    headers = MandateClient.basic(world.a_root.access_key_id, world.b_root.secret)
    return lambda: world.api.post(
        f"/v1/accounts/{world.a}/users", json={"user_name": "mixed"}, headers=headers
    )


BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
ZWJ = "\u200d"
CYRILLIC_A = "\u0430"
TRUST = {
    "Version": "1",
    "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [TRUST_A_USER]}}
    ],
}
USERS = "/v1/accounts/{a}/users"
POLICIES = "/v1/accounts/{a}/policies"
ROLES = "/v1/accounts/{a}/roles"
ASSUME = "/v1/sts/assume-role"
OPS = "acs:ram::{a}:role/ops"
SOON = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
LATER = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
PAST = "2001-01-01T00:00:00Z"


def _entrust(**terms: str) -> dict[str, Any]:
    return {
        "trustee_account_id": "{b}",
        "scope": _policy([{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]),
        "contract_ref": "C-1",
        **terms,
    }


ROWS: dict[str, Row] = {
    # -- policy documents ----------------------------------------------------------------
    "10,000 statements (body over the limit)": Row(
        v1_post(POLICIES, {"policy_name": "Big", "policy_document": _policy(_statements(10_000))}),
        413,
    ),
    "400 statements as text (16,000 characters, over 6,144)": Row(
        v1_post(
            POLICIES,
            {"policy_name": "Big", "policy_document": json.dumps(_policy(_statements(400)))},
        ),
        400,
        field="policy_document",
    ),
    "7,000-character resource": Row(
        v1_post(
            POLICIES,
            {
                "policy_name": "Long",
                "policy_document": _policy(
                    [{"Effect": "Allow", "Action": "oss:*", "Resource": "x" * 7000}]
                ),
            },
        ),
        400,
        field="policy_document",
    ),
    "policy document not JSON": Row(
        v1_post(POLICIES, {"policy_name": "Bad", "policy_document": '{"Version": "1", ['}),
        400,
        field="policy_document",
    ),
    "policy Effect Maybe": Row(
        v1_post(
            POLICIES,
            {
                "policy_name": "Bad",
                "policy_document": _policy([{"Effect": "Maybe", "Action": "*", "Resource": "*"}]),
            },
        ),
        400,
        field="policy_document.Statement[0].Effect",
    ),
    "policy Statement not a list": Row(
        v1_post(POLICIES, {"policy_name": "Bad", "policy_document": _policy("x")}),
        400,
        field="policy_document.Statement",
    ),
    "policy with an AWS resource ARN": Row(
        v1_post(
            POLICIES,
            {
                "policy_name": "Bad",
                "policy_document": _policy(
                    [{"Effect": "Allow", "Action": "oss:*", "Resource": "arn:aws:s3:::x"}]
                ),
            },
        ),
        400,
        field="policy_document.Statement[0].Resource",
    ),
    "session policy of 400 statements as text": Row(
        v1_post(
            ASSUME,
            {
                "role_arn": OPS,
                "role_session_name": "s2",
                "policy": json.dumps(_policy(_statements(400))),
            },
            who="ana",
        ),
        400,
        field="policy",
    ),
    "RPC CreatePolicy not JSON": Row(
        rpc_v3("CreatePolicy", {"PolicyName": "Bad", "PolicyDocument": '{"Version": "1", ['}),
        400,
        code="InvalidParameter.PolicyDocument",
        rpc=True,
    ),
    "RPC CreatePolicy of 150 statements (12,800 characters)": Row(
        rpc_v3(
            "CreatePolicy",
            {"PolicyName": "Big", "PolicyDocument": json.dumps(_policy(_statements(150)))},
        ),
        400,
        code="MalformedPolicyDocument",
        rpc=True,
    ),
    # -- invalid ARNs -------------------------------------------------------------------
    "AssumeRole ARN with a short account": Row(
        v1_post(
            ASSUME, {"role_arn": "acs:ram::123:role/ops", "role_session_name": "s2"}, who="ana"
        ),
        400,
        code="InvalidParameter.RoleArn",
        field="role_arn",
    ),
    "AssumeRole ARN without a role name": Row(
        v1_post(ASSUME, {"role_arn": "acs:ram::{a}:role/", "role_session_name": "s2"}, who="ana"),
        400,
        code="InvalidParameter.RoleArn",
        field="role_arn",
    ),
    "AssumeRole ARN of 3,000 characters": Row(
        v1_post(ASSUME, {"role_arn": "a" * 3000, "role_session_name": "s2"}, who="ana"),
        400,
        field="role_arn",
    ),
    "AssumeRole ARN with a Cyrillic o": Row(
        v1_post(
            ASSUME, {"role_arn": "acs:ram::{a}:role/\u043eps", "role_session_name": "s2"}, who="ana"
        ),
        400,
        code="InvalidParameter.RoleArn",
        field="role_arn",
    ),
    "authorize for a principal that is no ARN": Row(
        v1_post(
            "/v1/authorize",
            {"principal": "acs:ram::{a}:usr/ana", "action": "oss:GetObject", "resource": "*"},
        ),
        400,
        field="principal",
    ),
    "trust policy naming an AWS principal": Row(
        v1_request(
            "PUT",
            ROLES + "/ops/trust-policy",
            {
                "assume_role_policy_document": _policy(
                    [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"AWS": ["arn:aws:iam::1:root"]},
                        }
                    ]
                )
            },
        ),
        400,
    ),
    "RPC AssumeRole ARN with a short account": Row(
        rpc_v3(
            "AssumeRole",
            {"RoleArn": "acs:ram::123:role/ops", "RoleSessionName": "s2"},
            who="ana",
            version=STS_VERSION,
        ),
        400,
        code="InvalidParameter.RoleArn",
        rpc=True,
    ),
    # -- look-alike and confusable names --------------------------------------------------
    "user name with a Cyrillic a": Row(
        v1_post(USERS, {"user_name": f"{CYRILLIC_A}na"}), 400, field="user_name"
    ),
    "user name with a zero-width joiner": Row(
        v1_post(USERS, {"user_name": f"an{ZWJ}a"}), 400, field="user_name"
    ),
    "user name with a right-to-left override": Row(
        v1_post(USERS, {"user_name": f"ana{BIDI}"}), 400, field="user_name"
    ),
    "user name in fullwidth letters (NFKC: ana)": Row(
        v1_post(USERS, {"user_name": "\uff41\uff4e\uff41"}), 400, field="user_name"
    ),
    "user name decomposed (NFD)": Row(
        v1_post(USERS, {"user_name": "Ana\u0301"}), 400, field="user_name"
    ),
    "display name with a right-to-left override": Row(
        v1_post(USERS, {"user_name": "spoof-v1", "display_name": f"Ana{BIDI}nimda"}),
        400,
        field="display_name",
    ),
    "group name mixed-script": Row(
        v1_post("/v1/accounts/{a}/groups", {"group_name": f"{CYRILLIC_A}dmins"}),
        400,
        field="group_name",
    ),
    "role name mixed-script": Row(
        v1_post(ROLES, {"role_name": f"{CYRILLIC_A}dmin", "assume_role_policy_document": TRUST}),
        400,
        field="role_name",
    ),
    "policy name mixed-script": Row(
        v1_post(
            POLICIES,
            {"policy_name": f"{CYRILLIC_A}ll", "policy_document": _policy(ALLOW_ALL)},
        ),
        400,
        field="policy_name",
    ),
    "renaming ana to a Cyrillic look-alike": Row(
        v1_request("PATCH", USERS + "/ana", {"new_user_name": f"{CYRILLIC_A}na"}),
        400,
        field="new_user_name",
    ),
    "RPC CreateUser with a Cyrillic a (V3)": Row(
        rpc_v3("CreateUser", {"UserName": f"{CYRILLIC_A}na"}),
        400,
        code="InvalidParameter.UserName",
        rpc=True,
    ),
    "RPC CreateUser with a zero-width joiner (V1)": Row(
        rpc_v1("CreateUser", {"UserName": f"an{ZWJ}a"}),
        400,
        code="InvalidParameter.UserName",
        rpc=True,
    ),
    "RPC CreateUser display name with a right-to-left override": Row(
        rpc_v3("CreateUser", {"UserName": "spoof-rpc", "DisplayName": f"Ana{BIDI}nimda"}),
        400,
        code="InvalidParameter.DisplayName",
        rpc=True,
    ),
    "RPC session name with a Cyrillic a": Row(
        rpc_v3(
            "AssumeRole",
            {"RoleArn": OPS, "RoleSessionName": f"s{CYRILLIC_A}"},
            who="ana",
            version=STS_VERSION,
        ),
        400,
        code="InvalidParameter.RoleSessionName",
        rpc=True,
    ),
    # -- durations -----------------------------------------------------------------------
    "AssumeRole DurationSeconds -1": Row(
        v1_post(
            ASSUME,
            {"role_arn": OPS, "role_session_name": "s2", "duration_seconds": -1},
            who="ana",
        ),
        400,
        code="InvalidParameter.DurationSeconds",
        field="duration_seconds",
    ),
    "AssumeRole DurationSeconds 2**63": Row(
        v1_post(
            ASSUME,
            {"role_arn": OPS, "role_session_name": "s2", "duration_seconds": 2**63},
            who="ana",
        ),
        400,
        code="InvalidParameter.DurationSeconds",
        field="duration_seconds",
    ),
    "AssumeRole DurationSeconds over the role's maximum": Row(
        v1_post(
            ASSUME,
            {"role_arn": OPS, "role_session_name": "s2", "duration_seconds": 3601},
            who="ana",
        ),
        400,
        code="InvalidParameter.DurationSeconds",
        field="duration_seconds",
    ),
    "role MaxSessionDuration 10**12": Row(
        v1_post(
            ROLES,
            {
                "role_name": "forever",
                "assume_role_policy_document": TRUST,
                "max_session_duration": 10**12,
            },
        ),
        400,
        code="InvalidParameter.MaxSessionDuration",
        field="max_session_duration",
    ),
    "RPC AssumeRole DurationSeconds -900 (V1)": Row(
        rpc_v1(
            "AssumeRole",
            {"RoleArn": OPS, "RoleSessionName": "s2", "DurationSeconds": "-900"},
            who="ana",
        ),
        400,
        code="InvalidParameter.DurationSeconds",
        rpc=True,
    ),
    "RPC AssumeRole DurationSeconds 10**30 (V3)": Row(
        rpc_v3(
            "AssumeRole",
            {"RoleArn": OPS, "RoleSessionName": "s2", "DurationSeconds": "1" + "0" * 30},
            who="ana",
            version=STS_VERSION,
        ),
        400,
        code="InvalidParameter.DurationSeconds",
        rpc=True,
    ),
    "entrustment ending before it starts": Row(
        v1_post("/v1/accounts/{a}/entrustments", _entrust(starts_at=LATER, ends_at=SOON)),
        400,
        field="ends_at",
    ),
    "entrustment that ended in 2001": Row(
        v1_post("/v1/accounts/{a}/entrustments", _entrust(ends_at=PAST)),
        400,
        field="ends_at",
    ),
    "entrustment ending in the year 10000": Row(
        v1_post("/v1/accounts/{a}/entrustments", _entrust(ends_at="10000-01-01T00:00:00Z")),
        400,
        field="ends_at",
    ),
    "audit trail up to 0.5 (Unix seconds, no zone)": Row(
        v1_request("GET", "/v1/accounts/{a}/audit-events?to=0.5"), 400, field="to"
    ),
    "effective permissions as of 1700000000 (Unix seconds)": Row(
        v1_request(
            "GET",
            "/v1/accounts/{a}/effective-permissions?principal=acs:ram::{a}:user/ana"
            "&as_of=1700000000",
        ),
        400,
        field="as_of",
    ),
    "authorize as of 1700000000 (a JSON number)": Row(
        v1_post(
            "/v1/authorize",
            {"action": "oss:GetObject", "resource": "*", "as_of": 1700000000},
        ),
        400,
        field="as_of",
    ),
    # -- tokens and signatures ---------------------------------------------------------------
    "ACS3 replayed (same nonce)": Row(acs3_replayed, 401, code="SignatureNonceUsed"),
    "ACS3 write replayed": Row(acs3_replayed_write, 401, code="SignatureNonceUsed"),
    "ACS3 re-signed with another account's secret": Row(
        acs3_resigned, 401, code="SignatureDoesNotMatch"
    ),
    "ACS3 body swapped after signing": Row(acs3_body_swapped, 401, code="SignatureDoesNotMatch"),
    "ACS3 session token truncated": Row(
        acs3_token(truncated), 401, code="InvalidSecurityToken.Malformed"
    ),
    "ACS3 session token signature chopped": Row(
        acs3_token(chopped_signature), 401, code="InvalidSecurityToken.Malformed"
    ),
    "ACS3 session token re-signed with another key": Row(
        acs3_token(resigned_token), 401, code="InvalidSecurityToken.Malformed"
    ),
    "ACS3 session token with a later expiry, re-signed": Row(
        acs3_token(extended_token), 401, code="InvalidSecurityToken.Malformed"
    ),
    "ACS3 session token naming another session": Row(
        acs3_token(other_sessions_token), 401, code="InvalidSecurityToken.Malformed"
    ),
    "ACS3 session key without its token": Row(
        acs3_token(no_token), 401, code="MissingSecurityToken"
    ),
    "V3 at / replayed": Row(v3_rpc_replayed, 400, code="SignatureNonceUsed", rpc=True),
    "V3 at / re-signed with another account's secret": Row(
        v3_rpc_resigned, 400, code="SignatureDoesNotMatch", rpc=True
    ),
    "V3 at / session token truncated": Row(
        v3_rpc_token(truncated), 400, code="InvalidSecurityToken.Malformed", rpc=True
    ),
    "V3 at / session token re-signed, later expiry": Row(
        v3_rpc_token(extended_token), 400, code="InvalidSecurityToken.Malformed", rpc=True
    ),
    "V1 at / replayed (same SignatureNonce)": Row(
        v1_rpc_replayed, 400, code="SignatureNonceUsed", rpc=True
    ),
    "V1 at / re-signed with another account's secret": Row(
        v1_rpc_resigned, 400, code="SignatureDoesNotMatch", rpc=True
    ),
    "V1 at / parameter changed after signing": Row(
        v1_rpc_tampered, 400, code="SignatureDoesNotMatch", rpc=True
    ),
    "V1 at / session token truncated": Row(
        v1_rpc_token(truncated), 400, code="InvalidSecurityToken.Malformed", rpc=True
    ),
    "V1 at / session token re-signed with another key": Row(
        v1_rpc_token(resigned_token), 400, code="InvalidSecurityToken.Malformed", rpc=True
    ),
    # -- another account's keys -----------------------------------------------------------
    "B's root creates a user in A": Row(
        b_basic_on_a("POST", USERS, {"user_name": "intruder"}), 403
    ),
    "B's root deletes A's user": Row(b_basic_on_a("DELETE", USERS + "/ana"), 403),
    "B's root attaches a policy in A": Row(
        b_basic_on_a("PUT", "/v1/accounts/{a}/users/ana/policies/System/AdministratorAccess"),
        403,
    ),
    "B's root rotates A's root key": Row(
        b_basic_on_a("POST", "/v1/accounts/{a}/root-access-keys"), 403
    ),
    "B's root closes A": Row(b_basic_on_a("POST", "/v1/accounts/{a}/close"), 403),
    "B's root revokes A's session": Row(
        lambda world: b_basic_on_a(
            "POST", f"/v1/sts/sessions/{world.session.access_key_id}/revoke"
        )(world),
        403,  # the answer for an unknown session too: nothing leaks
    ),
    "B's root signs (ACS3) a write into A": Row(acs3_b_on_a, 403),
    "A's key id with B's secret (Basic)": Row(mixed_keys, 401),
    "B's root key carrying A's session token, at /": Row(
        b_key_with_a_token, 400, code="InvalidSecurityToken.MismatchWithAccessKey", rpc=True
    ),
    "B's root assumes A's role (B is not trusted; a root may not)": Row(
        v1_post(ASSUME, {"role_arn": OPS, "role_session_name": "s2"}, who="b_root"),
        403,
        code="NoPermission",
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_hostile_row_gets_its_documented_4xx_and_writes_nothing(world: World, name: str) -> None:
    row = ROWS[name]
    call = row.prepare(world)
    before = world.server.head()
    response = call()
    assert response.status_code == row.status, (response.status_code, response.text[:600])
    body = response.json()
    if row.rpc:
        assert body["Code"] == row.code, body
        assert body["Message"], body
        assert body["RequestId"], body
    else:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text[:300]
        assert body["status"] == row.status, body
        if row.code is not None:
            assert body.get("code") == row.code, body
        if row.field is not None:
            assert row.field in [e["field"] for e in body["errors"]], body
    assert world.server.head() == before, f"{name}: a refused request wrote an event"
