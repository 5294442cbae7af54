"""STS's AssumeRole and GetCallerIdentity at ``/``, driven by the real Alibaba Cloud SDKs.

Scenario 3 of issue 13: a RAM user whom a role's trust policy names assumes the role with a
session policy and ``DurationSeconds=1800`` — through alibabacloud-sts20150401 (V3 and V1
signatures) and aliyun-python-sdk-core's ``AssumeRoleRequest`` — then calls with the
temporary credentials (their security token): GetCallerIdentity says ``AssumedRoleUser``
and the role's id, and RAM calls are allowed only where the role's policies *and* the
session policy allow. STS's refusals carry STS's codes and write nothing (the log's head
is unchanged). Expiry is shown with the authentication clock moved to the session's end.
alibabacloud-credentials' ``ram_role_arn`` provider, which only speaks https, gets its
credentials from Mandate served over TLS with a throwaway certificate.

Every key and session the test receives goes through ``rpc.register`` as soon as it is
answered (``rpc_support`` says how the served app comes by the secret it verifies a signature
with); what is under test here is the STS dialect over the engine.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_ram20150501 import models as ram
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sts20150401 import models as sts
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdksts.request.v20150401.AssumeRoleRequest import AssumeRoleRequest
from aliyunsdksts.request.v20150401.GetCallerIdentityRequest import GetCallerIdentityRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from darabonba.core import DaraCore
from Tea.core import TeaCore

from mandate.projections.decisions import authentication
from tests.e2e.conftest import MandateClient
from tests.e2e.rpc_support import (
    REGION,
    STS_VERSION,
    Key,
    RpcServer,
    ServerException,
    TeaError,
    core_call,
    rpc_serving,
)

SIGNINGS = [pytest.param(False, id="v3"), pytest.param(True, id="v1")]
TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"

ROLE_POLICY = [  # what the role's own policy allows
    {
        "Effect": "Allow",
        "Action": ["ram:ListUsers", "ram:GetUser", "ram:ListGroups"],
        "Resource": "*",
    }
]
SESSION_POLICY = {  # what the session policy allows: only ListUsers is in both
    "Version": "1",
    "Statement": [
        {"Effect": "Allow", "Action": ["ram:ListUsers", "ram:CreateGroup"], "Resource": "*"}
    ],
}


@pytest.fixture(scope="module")
def rpc(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcServer]:
    with rpc_serving(store_url, tmp_path_factory.mktemp("state")) as server:
        yield server


@dataclass(frozen=True)
class World:
    """An account with a role ``reader`` whose trust names the RAM user alice."""

    root: Key
    alice: Key
    bob: Key
    role_id: str

    @property
    def account_id(self) -> str:
        return self.root.account_id

    def role_arn(self, name: str = "reader") -> str:
        return f"acs:ram::{self.account_id}:role/{name}"


def _trust(*principals: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"RAM": list(principals)},
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "1", "Statement": [statement]}


def _create_role(rpc: RpcServer, world_root: Key, name: str, trust: dict[str, Any]) -> str:
    basic = MandateClient.basic(world_root.access_key_id, world_root.secret)
    created = rpc.api.post(
        f"/v1/accounts/{world_root.account_id}/roles",
        json={"role_name": name, "assume_role_policy_document": trust},
        headers=basic,
    )
    assert created.status_code == 201, created.text
    role_id: str = created.json()["role_id"]
    return role_id


def _user(rpc: RpcServer, root: Key, name: str) -> Key:
    basic = MandateClient.basic(root.access_key_id, root.secret)
    users = f"/v1/accounts/{root.account_id}/users"
    assert rpc.api.post(users, json={"user_name": name}, headers=basic).status_code == 201
    issued = rpc.api.post(f"{users}/{name}/access-keys", headers=basic)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    return rpc.register(body["access_key_id"], body["access_key_secret"], root.account_id)


def make_world(rpc: RpcServer) -> World:
    """alice may call sts:AssumeRole (her own policy) and ``reader``'s trust names her;
    bob may not call it; ``reader`` may list and get users and list groups."""
    root = rpc.open_account()
    account_id = root.account_id
    basic = MandateClient.basic(root.access_key_id, root.secret)
    alice, bob = _user(rpc, root, "alice"), _user(rpc, root, "bob")
    rpc.api.attach(account_id, basic, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    role_id = _create_role(rpc, root, "reader", _trust(f"acs:ram::{account_id}:user/alice"))
    rpc.api.create_policy(account_id, basic, "role-reads", ROLE_POLICY)
    rpc.api.attach(account_id, basic, "roles/reader", "Custom", "role-reads")
    return World(root, alice, bob, role_id)


def sts_client(
    rpc: RpcServer, key: Key, *, v1: bool = False, token: str | None = None
) -> StsClient:
    """tea-openapi's STS client: V3 signatures, or V1 (``signature_algorithm='v2'``)."""
    return StsClient(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.secret,
            security_token=token,
            endpoint=rpc.endpoint,
            protocol="http",
            signature_algorithm="v2" if v1 else None,
        )
    )


def ram_client(rpc: RpcServer, key: Key, token: str) -> RamClient:
    return RamClient(
        Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.secret,
            security_token=token,
            endpoint=rpc.endpoint,
            protocol="http",
        )
    )


def refused(rpc: RpcServer, call: Callable[[], Any]) -> TeaError:
    """Run a tea-openapi call that must fail; check it wrote nothing; answer the error."""
    before = rpc.head()
    with pytest.raises(TeaError) as caught:
        call()
    assert rpc.head() == before, "a refused call wrote an event"
    return caught.value


def refused_core(rpc: RpcServer, call: Callable[[], Any]) -> ServerException:
    before = rpc.head()
    with pytest.raises(ServerException) as caught:
        call()
    assert rpc.head() == before, "a refused call wrote an event"
    return caught.value


def _expiration(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def check_intersection(rpc: RpcServer, session: Key, token: str) -> None:
    """The session may do what both the role and the session policy allow, nothing else."""
    client = ram_client(rpc, session, token)
    listed = client.list_users(ram.ListUsersRequest()).body
    assert [u.user_name for u in listed.users.user] == ["alice", "bob"]
    error = refused(rpc, lambda: client.list_groups(ram.ListGroupsRequest()))  # role only
    assert (error.status_code, error.code) == (403, "NoPermission")
    error = refused(  # session policy only
        rpc, lambda: client.create_group(ram.CreateGroupRequest(group_name="g"))
    )
    assert (error.status_code, error.code) == (403, "NoPermission")
    error = refused(  # neither
        rpc, lambda: client.create_user(ram.CreateUserRequest(user_name="mallory"))
    )
    assert (error.status_code, error.code) == (403, "NoPermission")


# -- scenario 3 ----------------------------------------------------------------------------
@pytest.mark.parametrize("v1", SIGNINGS)
def test_scenario_three_assume_role_with_a_session_policy_through_tea(
    rpc: RpcServer, v1: bool
) -> None:
    world = make_world(rpc)
    session_name = "upload-1" if v1 else "upload@app.example"
    before, head = datetime.now(UTC).replace(microsecond=0), rpc.head()
    answer = (
        sts_client(rpc, world.alice, v1=v1)
        .assume_role(
            sts.AssumeRoleRequest(
                role_arn=world.role_arn(),
                role_session_name=session_name,
                duration_seconds=1800,
                policy=json.dumps(SESSION_POLICY),  # spaces after ':' and ','
            )
        )
        .body
    )
    after = datetime.now(UTC)
    assert rpc.head() > head  # the session was recorded
    assert answer.request_id
    credentials = answer.credentials
    assert credentials.access_key_id.startswith("STS.")
    assert credentials.access_key_secret
    assert credentials.security_token
    assert re.fullmatch(TIME, credentials.expiration)  # whole seconds, a Z
    expiration = _expiration(credentials.expiration)
    assert before + timedelta(seconds=1799) <= expiration <= after + timedelta(seconds=1800)
    assumed = answer.assumed_role_user
    assert assumed.arn == f"acs:ram::{world.account_id}:assumed-role/reader/{session_name}"
    assert assumed.assumed_role_id == f"{world.role_id}:{session_name}"
    assert "SourceIdentity" not in answer.to_map()

    session = rpc.register(
        credentials.access_key_id, credentials.access_key_secret, world.account_id
    )
    token = credentials.security_token
    for signed_v1 in (False, True):  # the token as x-acs-security-token, then SecurityToken=
        me = sts_client(rpc, session, v1=signed_v1, token=token).get_caller_identity().body
        assert me.identity_type == "AssumedRoleUser"
        assert me.account_id == world.account_id
        assert me.arn == assumed.arn
        assert me.role_id == world.role_id
        assert me.principal_id == f"{world.role_id}:{session_name}"
        assert me.user_id is None
        assert me.request_id
    check_intersection(rpc, session, token)

    # the same engine: /v1 answers the same identity for the same credentials
    v1_identity = rpc.api.get(
        "/v1/sts/caller-identity",
        headers={
            **MandateClient.basic(session.access_key_id, session.secret),
            "X-Security-Token": token,
        },
    )
    assert v1_identity.status_code == 200, v1_identity.text
    as_v1 = v1_identity.json()
    assert (as_v1["identity_type"], as_v1["arn"]) == ("AssumedRoleUser", assumed.arn)
    assert datetime.fromisoformat(as_v1["expiration"].replace("Z", "+00:00")) == expiration


def test_scenario_three_through_sdk_core_assume_role_request(rpc: RpcServer) -> None:
    world = make_world(rpc)
    client = AcsClient(world.alice.access_key_id, world.alice.secret, REGION)
    client.add_endpoint(REGION, "Sts", rpc.endpoint)
    request = AssumeRoleRequest()
    request.set_RoleArn(world.role_arn())
    request.set_RoleSessionName("core-1")
    request.set_DurationSeconds(1800)
    request.set_Policy(json.dumps(SESSION_POLICY))
    request.set_protocol_type("http")
    answer = core_call(client, request)
    assert answer["RequestId"]
    credentials = answer["Credentials"]
    assert set(credentials) == {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert credentials["AccessKeyId"].startswith("STS.")
    assert answer["AssumedRoleUser"] == {
        "Arn": f"acs:ram::{world.account_id}:assumed-role/reader/core-1",
        "AssumedRoleId": f"{world.role_id}:core-1",
    }
    session = rpc.register(
        credentials["AccessKeyId"], credentials["AccessKeySecret"], world.account_id
    )
    token = credentials["SecurityToken"]

    as_session = AcsClient(
        region_id=REGION,
        credential=StsTokenCredential(session.access_key_id, session.secret, token),
    )
    as_session.add_endpoint(REGION, "Sts", rpc.endpoint)
    identity = GetCallerIdentityRequest()
    identity.set_protocol_type("http")
    me = core_call(as_session, identity)
    assert me["IdentityType"] == "AssumedRoleUser"
    assert me["RoleId"] == world.role_id
    assert me["Arn"] == answer["AssumedRoleUser"]["Arn"]
    assert me["AccountId"] == world.account_id
    assert "UserId" not in me
    check_intersection(rpc, session, token)


def test_get_caller_identity_of_an_account_and_a_ram_user(rpc: RpcServer) -> None:
    world = make_world(rpc)
    head = rpc.head()
    me = sts_client(rpc, world.root).get_caller_identity().body
    assert (me.identity_type, me.account_id) == ("Account", world.account_id)
    assert me.arn == f"acs:ram::{world.account_id}:root"
    assert me.user_id == me.principal_id == world.account_id
    assert me.role_id is None
    me = sts_client(rpc, world.alice, v1=True).get_caller_identity().body
    assert (me.identity_type, me.account_id) == ("RAMUser", world.account_id)
    assert me.arn == f"acs:ram::{world.account_id}:user/alice"
    alice = rpc.api.get(
        f"/v1/accounts/{world.account_id}/users/alice",
        headers=MandateClient.basic(world.root.access_key_id, world.root.secret),
    ).json()
    assert me.user_id == me.principal_id == alice["user_id"]
    assert rpc.head() == head  # reads write nothing


# -- STS's refusals ---------------------------------------------------------------------------
def test_sts_error_codes_and_no_event_for_any_refusal(rpc: RpcServer) -> None:
    world = make_world(rpc)
    account_id = world.account_id
    alice = sts_client(rpc, world.alice)

    def assume(client: StsClient = alice, **given: Any) -> Callable[[], Any]:
        request = {"role_arn": world.role_arn(), "role_session_name": "s-1", **given}
        return lambda: client.assume_role(sts.AssumeRoleRequest(**request))

    cases: list[tuple[Callable[[], Any], int, str, str]] = [
        (assume(role_arn=world.role_arn("nobody")), 404, "EntityNotExist.Role", "not exists"),
        (assume(role_arn="acs:ram::not-an-arn"), 400, "InvalidParameter.RoleArn", "RoleArn"),
        (
            assume(role_arn=f"acs:ram::{account_id}:user/alice"),
            400,
            "InvalidParameter.RoleArn",
            "RoleArn",
        ),
        (assume(role_session_name="a"), 400, "InvalidParameter.RoleSessionName", "wrongly"),
        (assume(role_session_name="no spaces"), 400, "InvalidParameter.RoleSessionName", ""),
        (assume(duration_seconds=899), 400, "InvalidParameter.DurationSeconds", "900"),
        (assume(duration_seconds=43201), 400, "InvalidParameter.DurationSeconds", "43200"),
        # within STS's range, beyond the role's MaxSessionDuration (3600)
        (assume(duration_seconds=7200), 400, "InvalidParameter.DurationSeconds", "3600"),
        (assume(policy="{not json"), 400, "InvalidParameter.PolicyGrammar", "grammar check"),
        (
            assume(policy=json.dumps({"Version": "1", "Statement": [{"Effect": "Maybe"}]})),
            400,
            "InvalidParameter.PolicyGrammar",
            "grammar check",
        ),
        (assume(source_identity="alice"), 400, "InvalidParameter.SourceIdentity", "supported"),
        # the root: STS's documented refusal
        (
            assume(sts_client(rpc, world.root)),
            403,
            "NoPermission",
            "Roles may not be assumed by root accounts.",
        ),
        # bob's own policies do not allow sts:AssumeRole
        (assume(sts_client(rpc, world.bob, v1=True)), 403, "NoPermission", "authorized by RAM"),
    ]
    for call, status, code, said in cases:
        error = refused(rpc, call)
        assert (error.status_code, error.code) == (status, code), error.message
        assert said in error.message

    # a role whose trust names only bob does not admit alice
    _create_role(rpc, world.root, "bobs", _trust(f"acs:ram::{account_id}:user/bob"))
    error = refused(rpc, assume(role_arn=world.role_arn("bobs")))
    assert (error.status_code, error.code) == (403, "NoPermission")
    assert "trust policy" in error.message

    # ExternalId: a trust with sts:ExternalId admits only the caller that sends it
    _create_role(
        rpc,
        world.root,
        "partner",
        _trust(
            f"acs:ram::{account_id}:user/alice",
            condition={"StringEquals": {"sts:ExternalId": "abcd-1234"}},
        ),
    )
    for external_id in (None, "wrong-id"):
        error = refused(rpc, assume(role_arn=world.role_arn("partner"), external_id=external_id))
        assert (error.status_code, error.code) == (403, "NoPermission")
    error = refused(rpc, assume(role_arn=world.role_arn("partner"), external_id="x"))
    assert (error.status_code, error.code) == (400, "InvalidParameter.ExternalId")
    admitted = assume(role_arn=world.role_arn("partner"), external_id="abcd-1234")().body
    assert admitted.assumed_role_user.arn.endswith(":assumed-role/partner/s-1")

    # mandatory parameters, absent (sdk-core's CommonRequest sends what it is given)
    core = rpc.core(world.alice)
    for given, code in (
        ({"RoleSessionName": "s-1"}, "MissingRoleArn"),
        ({"RoleArn": world.role_arn()}, "MissingRoleSessionName"),
    ):
        common = rpc.common("AssumeRole", given, version=STS_VERSION)
        error_core = refused_core(rpc, lambda common=common: core_call(core, common))
        assert (error_core.get_http_status(), error_core.get_error_code()) == (400, code)
    common = rpc.common(
        "AssumeRole",
        {"RoleArn": world.role_arn(), "RoleSessionName": "s-1", "DurationSeconds": "an hour"},
        version=STS_VERSION,
    )
    error_core = refused_core(rpc, lambda: core_call(core, common))
    assert error_core.get_error_code() == "InvalidParameter.DurationSeconds"


class _Clock(datetime):
    """``datetime`` whose ``now`` is an instant the test sets: the authentication clock."""

    at: ClassVar[datetime]

    @classmethod
    def now(cls, tz: Any = None) -> _Clock:
        moved = cls.at.astimezone(tz) if tz is not None else cls.at
        return cls.fromtimestamp(moved.timestamp(), moved.tzinfo)


def test_session_credentials_are_refused_once_expired(
    rpc: RpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STS's smallest duration (900 s); the clock the index authenticates sessions by is
    moved to just before, then to, the expiration — no waiting. Signatures still carry the
    real time (their ±15 min check is the signing module's, untouched)."""
    world = make_world(rpc)
    answer = (
        sts_client(rpc, world.alice)
        .assume_role(
            sts.AssumeRoleRequest(
                role_arn=world.role_arn(), role_session_name="short", duration_seconds=900
            )
        )
        .body
    )
    credentials = answer.credentials
    expiration = _expiration(credentials.expiration)
    session = rpc.register(
        credentials.access_key_id, credentials.access_key_secret, world.account_id
    )
    token = credentials.security_token

    monkeypatch.setattr(authentication, "datetime", _Clock)
    _Clock.at = expiration - timedelta(seconds=1)
    for v1 in (False, True):
        me = sts_client(rpc, session, v1=v1, token=token).get_caller_identity().body
        assert me.identity_type == "AssumedRoleUser"

    _Clock.at = expiration
    for v1 in (False, True):
        error = refused(
            rpc, lambda v1=v1: sts_client(rpc, session, v1=v1, token=token).get_caller_identity()
        )
        assert (error.status_code, error.code) == (400, "InvalidSecurityToken.Expired")
    error = refused(rpc, lambda: ram_client(rpc, session, token).list_users(ram.ListUsersRequest()))
    assert (error.status_code, error.code) == (400, "InvalidSecurityToken.Expired")
    core = AcsClient(
        region_id=REGION,
        credential=StsTokenCredential(session.access_key_id, session.secret, token),
    )
    core.add_endpoint(REGION, "Sts", rpc.endpoint)
    identity = GetCallerIdentityRequest()
    identity.set_protocol_type("http")
    error_core = refused_core(rpc, lambda: core_call(core, identity))
    assert (error_core.get_http_status(), error_core.get_error_code()) == (
        400,
        "InvalidSecurityToken.Expired",
    )


# -- alibabacloud-credentials over TLS --------------------------------------------------------
def _throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_credentials_ram_role_arn_provider_gets_its_credentials_from_mandate_over_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider hardcodes https; it trusts the certificate through ``SSL_CERT_FILE``
    (it ignores ``REQUESTS_CA_BUNDLE``) and signs V1 with ``+`` for a space."""
    tls = _throwaway_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    with (
        rpc_serving(f"sqlite:///{tmp_path}/tls.db", tmp_path / "state", tls=tls) as server,
        _closing_sdk_connections(server.endpoint),
    ):
        assert str(server.api.base_url).startswith("https://")
        world = make_world(server)
        head = server.head()
        provider = CredentialClient(
            CredentialConfig(
                type="ram_role_arn",
                access_key_id=world.alice.access_key_id,
                access_key_secret=world.alice.secret,
                role_arn=world.role_arn(),
                role_session_name="from-provider",
                role_session_expiration=3600,  # cached: 45 min before it asks again
                policy=json.dumps(SESSION_POLICY),  # spaces: signed as '+'
                sts_endpoint=server.endpoint,
            )
        )
        got = provider.get_credential()
        assert server.head() > head  # one SessionIssued
        assert got.access_key_id.startswith("STS.")
        assert got.security_token
        server.register(got.access_key_id, got.access_key_secret, world.account_id)

        # the provider's credentials work: tea's STS client takes the provider itself
        head = server.head()
        client = StsClient(Config(credential=provider, endpoint=server.endpoint, protocol="https"))
        me = client.get_caller_identity().body
        assert me.identity_type == "AssumedRoleUser"
        assert me.arn == f"acs:ram::{world.account_id}:assumed-role/reader/from-provider"
        assert me.role_id == world.role_id
        as_session = RamClient(
            Config(credential=provider, endpoint=server.endpoint, protocol="https")
        )
        listed = as_session.list_users(ram.ListUsersRequest()).body
        assert [u.user_name for u in listed.users.user] == ["alice", "bob"]
        refusal = _code_of(lambda: as_session.list_groups(ram.ListGroupsRequest()))
        assert refusal == (403, "NoPermission")  # the session policy omits ListGroups
        assert server.head() == head  # the provider did not assume the role again


def _code_of(call: Callable[[], Any]) -> tuple[int, str]:
    """A refused tea call's status and code (the exception, which holds the connection
    through its traceback, does not outlive this frame)."""
    with pytest.raises(TeaError) as caught:
        call()
    return caught.value.status_code, caught.value.code


@contextlib.contextmanager
def _closing_sdk_connections(endpoint: str) -> Iterator[None]:
    """On leaving, close the SDKs' pooled keep-alive connections to ``endpoint``.

    tea (``DaraCore``) and the credentials provider (``TeaCore``) keep one ``requests``
    session per host in a class-level dict; an idle TLS connection left open would hold the
    server's shutdown past its timeout (asyncio waits for the peer's TLS close).
    """
    try:
        yield
    finally:
        for pools in (DaraCore._sessions, TeaCore._sessions):
            for name in [name for name in pools if endpoint in name]:
                pools.pop(name).close()
        gc.collect()  # and a refused call's connection, which tea leaves checked out
