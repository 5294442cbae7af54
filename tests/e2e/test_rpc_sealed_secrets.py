"""Signatures are verified with the secrets the server sealed when it issued them.

No lookup is injected: the runtime seals every issued secret into its event (bound to the
AccessKeyId) and the decision index unseals it to verify a signature. So a new process on the
same store verifies the same keys, and so does one after the key-encryption key was rotated
(``Keyring.rotate`` re-wraps the data keys; no event changes) and the old KEK removed — while
a process started before the rotation keeps serving. A key issued before secrets were sealed
cannot sign: it is refused with RAM's ``InvalidAccessKeyId.NotFound`` and a message saying
so (never a 500), and it still works with Basic.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.models import Config

from mandate.api.settings import Settings
from mandate.api.startup.secret_keys import SECRET_KEYS_FILE, open_keyring
from mandate.domain.common.audit import AuditContext
from tests.e2e.conftest import MandateClient
from tests.e2e.rpc_support import Key, RpcServer, TeaError, rpc_serving

ADMIN = AuditContext(actor="mandate:admin", request_id="req-sealed")


@pytest.fixture(scope="module")
def state(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory (its KEK file) that goes with the module's store."""
    return tmp_path_factory.mktemp("state")


def _issue(server: RpcServer) -> tuple[Key, Key, Key, str]:
    """A root key, a user's key (created through the RAM SDK, V3-signed) and STS credentials
    (the user's, from /v1's AssumeRole) with their token."""
    root = server.open_account()
    client = server.ram(root)
    client.create_user(ram.CreateUserRequest(user_name="alice"))
    issued = client.create_access_key(ram.CreateAccessKeyRequest(user_name="alice")).body
    alice = server.register(
        issued.access_key.access_key_id, issued.access_key.access_key_secret, root.account_id
    )
    basic = MandateClient.basic(root.access_key_id, root.secret)
    account_id = root.account_id
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
    }
    created = server.api.post(
        f"/v1/accounts/{account_id}/roles",
        json={"role_name": "auditor", "assume_role_policy_document": trust},
        headers=basic,
    )
    assert created.status_code == 201, created.text
    server.api.attach(account_id, basic, "roles/auditor", "System", "ReadOnlyAccess")
    server.api.attach(account_id, basic, "users/alice", "System", "AliyunSTSAssumeRoleAccess")
    server.api.attach(account_id, basic, "users/alice", "System", "ReadOnlyAccess")
    assumed = server.api.post(
        "/v1/sts/assume-role",
        json={"role_arn": f"acs:ram::{account_id}:role/auditor", "role_session_name": "s-1"},
        headers=MandateClient.basic(alice.access_key_id, alice.secret),
    )
    assert assumed.status_code == 201, assumed.text
    credentials = assumed.json()["credentials"]
    session = server.register(
        credentials["access_key_id"], credentials["access_key_secret"], account_id
    )
    return root, alice, session, credentials["security_token"]


def _session_client(server: RpcServer, session: Key, token: str, *, v1: bool) -> RamClient:
    return RamClient(
        Config(
            access_key_id=session.access_key_id,
            access_key_secret=session.secret,
            security_token=token,
            endpoint=server.endpoint,
            protocol="http",
            signature_algorithm="v2" if v1 else None,
        )
    )


def _all_sign(server: RpcServer, root: Key, alice: Key, session: Key, token: str) -> None:
    """Each key signs a RAM call under V3 and V1, and is the caller it should be."""
    for v1 in (False, True):
        users = server.ram(root, v1=v1).list_users(ram.ListUsersRequest()).body
        assert [u.user_name for u in users.users.user] == ["alice"]
        listed = (
            server.ram(alice, v1=v1)
            .list_access_keys(ram.ListAccessKeysRequest(user_name="alice"))
            .body
        )
        assert alice.access_key_id in [k.access_key_id for k in listed.access_keys.access_key]
        read = _session_client(server, session, token, v1=v1).get_user(
            ram.GetUserRequest(user_name="alice")
        )
        assert read.body.user.user_name == "alice"


def _rotate_kek_file(state: Path, *, keep_old: bool) -> None:
    """The development KEK file, as an operator edits it: a new current key ``s2`` (with
    ``s1`` kept as previous during the rotation), or ``s2`` alone afterwards."""
    path = state / SECRET_KEYS_FILE
    stored = json.loads(path.read_text())
    keys: dict[str, str] = stored["keys"]
    keys.setdefault("s2", secrets.token_urlsafe(48))
    if not keep_old:
        keys.pop("s1")
    path.write_text(json.dumps({"current": "s2", "keys": keys}))


def test_keys_verify_across_a_restart_and_a_kek_rotation(store_url: str, state: Path) -> None:
    with rpc_serving(store_url, state) as server:
        root, alice, session, token = _issue(server)
        _all_sign(server, root, alice, session, token)
        assert (state / SECRET_KEYS_FILE).exists()

    with rpc_serving(store_url, state) as restarted:  # a new process on the same store
        _all_sign(restarted, root, alice, session, token)

        # the KEK rotates while it serves: the data keys are re-wrapped under s2 in the
        # store; this process holds them unwrapped and keeps verifying
        _rotate_kek_file(state, keep_old=True)
        settings = Settings(database_url=store_url, state_dir=state)
        datastore = restarted.api.runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
        rotation = open_keyring(settings, datastore, create_table=False).rotate()
        assert (rotation.kek_id, rotation.rewrapped, rotation.not_current) == ("s2", 1, ())
        _all_sign(restarted, root, alice, session, token)

    _rotate_kek_file(state, keep_old=False)  # s1 is gone from everywhere
    with rpc_serving(store_url, state) as rotated:
        _all_sign(rotated, root, alice, session, token)
        # and a key issued now signs too
        fresh = rotated.ram(root).create_access_key(ram.CreateAccessKeyRequest(user_name="alice"))
        key = fresh.body.access_key
        bob = rotated.register(key.access_key_id, key.access_key_secret, root.account_id)
        assert rotated.ram(bob, v1=True).get_user(ram.GetUserRequest(user_name="alice"))


def _refused(server: RpcServer, call: Callable[[], Any]) -> TeaError:
    before = server.head()
    with pytest.raises(TeaError) as caught:
        call()
    assert server.head() == before, "a refused call wrote an event"
    return caught.value


def test_a_key_issued_before_sealing_cannot_sign_and_says_so(store_url: str, state: Path) -> None:
    with rpc_serving(store_url, state) as server:
        root = server.open_account()
        server.ram(root).create_user(ram.CreateUserRequest(user_name="legacy"))
        runtime = server.api.runtime
        ledger = runtime.ledger
        sealer, ledger.sealer = ledger.sealer, None  # as every ledger was before sealing
        try:
            issued = runtime.write(
                ADMIN, lambda: ledger.create_access_key(root.account_id, "legacy")
            )
        finally:
            ledger.sealer = sealer
        old = Key(issued.access_key_id, issued.access_key_secret, root.account_id)
        assert runtime.index.access_key(old.access_key_id) is not None

        for v1 in (False, True):
            error = _refused(
                server,
                lambda v1=v1: server.ram(old, v1=v1).get_user(
                    ram.GetUserRequest(user_name="legacy")
                ),
            )
            assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")
            assert "created before request signing; create a new one" in error.message
            assert old.secret not in error.message

        # Basic still authenticates it: its keyed hash is as it always was
        basic = MandateClient.basic(old.access_key_id, old.secret)
        answer = server.api.get("/v1/sts/caller-identity", headers=basic)
        assert answer.status_code == 200, answer.text
        assert answer.json()["arn"] == f"acs:ram::{root.account_id}:user/legacy"
