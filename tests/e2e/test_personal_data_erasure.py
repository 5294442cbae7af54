"""Crypto-shredding: display names are sealed per account, and erasing the key erases them.

A RAM user's display name is recorded in its events only sealed under its account's
personal-data key (kept wrapped outside the log). Every reader opens it — /v1 and the RAM
SDK (V3 and V1 signatures), a group's member list — until ``mandate account
erase-personal-data`` destroys the key: from the next answer on, in the running process and
in a new one, the display name is gone (/v1: ``display_name`` null and ``personal_data``
``erased``; RPC: no DisplayName, as for a user without one), while the log, the audit trail
(its chains hold only the sealed form) and the projections rebuilt from position 0 verify and
agree. Another account's display names are untouched; a name set after the erasure is sealed
under the account's next key and reads again. A display name recorded before sealing (in clear
in its event) cannot be shredded: it reads as before, and the README says so.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram

from mandate.api.cli import main
from mandate.api.runtime import Runtime
from mandate.domain.common.audit import AuditContext
from mandate.projections.audit.trail import AuditQuery, iter_records
from mandate.projections.audit.verify import verify_trail
from mandate.projections.store.data_keys import DataKeyStore
from mandate.projections.store.leadership import copy_lease
from mandate.projections.store.rebuild import rebuild
from tests.e2e.conftest import MandateClient
from tests.e2e.rpc_support import Key, RpcServer, rpc_serving

ALICE = "Alice Wonder-Sealed"
BOB = "Bob Personal-Name"
CAROL = "Carol Other-Account"
AGAIN = "Alice After-Erasure"
LEGACY = "Old Clear-Name"
ADMIN = AuditContext(actor="mandate:admin", request_id="req-erasure")


@pytest.fixture(scope="module")
def state(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory (its KEK file) that goes with the module's store."""
    return tmp_path_factory.mktemp("state")


def _v1(server: RpcServer, root: Key) -> dict[str, dict[str, Any]]:
    """Each user as /v1 answers it, by name: GET of each one and the listing must agree."""
    basic = MandateClient.basic(root.access_key_id, root.secret)
    listed = server.api.get(f"/v1/accounts/{root.account_id}/users", headers=basic)
    assert listed.status_code == 200, listed.text
    users = {u["user_name"]: u for u in listed.json()["items"]}
    for name, user in users.items():
        one = server.api.get(f"/v1/accounts/{root.account_id}/users/{name}", headers=basic)
        assert one.status_code == 200, one.text
        assert one.json() == user
    return users


def _reads(server: RpcServer, root: Key, expected: dict[str, str | None]) -> None:
    """Every surface shows ``expected`` (name -> display name, None for erased)."""
    users = _v1(server, root)
    assert {name: u["display_name"] for name, u in users.items()} == expected
    for name, user in users.items():
        erased = expected[name] is None
        assert ("personal_data" in user) is erased
        if erased:
            assert user["personal_data"] == "erased"
    for v1 in (False, True):
        client = server.ram(root, v1=v1)
        for name, display in expected.items():
            got = client.get_user(ram.GetUserRequest(user_name=name)).body.user
            assert (got.user_name, got.display_name) == (name, display)
        listed = client.list_users(ram.ListUsersRequest()).body.users.user
        assert {u.user_name: u.display_name for u in listed} == expected
        members = client.list_users_for_group(
            ram.ListUsersForGroupRequest(group_name="devs")
        ).body.users.user
        assert {u.user_name: u.display_name for u in members} == {"alice": expected["alice"]}


def _log_and_trail(runtime: Runtime) -> str:
    """Every stored event's state and every audit record, as text."""
    head = runtime.head()
    log = runtime.ledger.recorder.select_notifications(0, head + 1, inclusive_of_start=False)
    events = "\n".join(n.state.decode() for n in log)
    return events + json.dumps(list(iter_records(runtime.audit.store, AuditQuery())))


def _erasures(runtime: Runtime) -> list[dict[str, Any]]:
    records = json.loads(json.dumps(list(iter_records(runtime.audit.store, AuditQuery()))))
    return [r for r in records if r["event_type"] == "PersonalDataErased"]


def _trail_verifies(runtime: Runtime) -> None:
    assert runtime.audit.wait_for(runtime.head(), 30)
    result = verify_trail(runtime.ledger, runtime.audit.store, runtime.audit_public_key)
    assert result.ok, result


def _erase(account_id: str, store_url: str, state: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    with monkeypatch.context() as env:
        env.setenv("MANDATE_DATABASE_URL", store_url)
        env.setenv("MANDATE_STATE_DIR", str(state))
        return main(["account", "erase-personal-data", account_id])


def test_display_names_read_until_their_key_is_erased(
    store_url: str,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with rpc_serving(store_url, state) as server:
        root, other = server.open_account(), server.open_account()
        client = server.ram(root)
        client.create_user(ram.CreateUserRequest(user_name="alice", display_name=ALICE))
        created = server.api.post(
            f"/v1/accounts/{root.account_id}/users",
            json={"user_name": "bob", "display_name": BOB},
            headers=MandateClient.basic(root.access_key_id, root.secret),
        )
        assert created.status_code == 201, created.text
        assert created.json()["display_name"] == BOB
        # a rename carries the sealed display name forward as it is
        client.update_user(ram.UpdateUserRequest(user_name="bob", new_user_name="robert"))
        client.create_group(ram.CreateGroupRequest(group_name="devs"))
        client.add_user_to_group(ram.AddUserToGroupRequest(user_name="alice", group_name="devs"))
        server.ram(other).create_user(ram.CreateUserRequest(user_name="carol", display_name=CAROL))
        runtime = server.api.runtime
        ledger = runtime.ledger
        sealer, ledger.sealer = ledger.sealer, None  # as every ledger was before sealing
        try:
            runtime.write(ADMIN, lambda: ledger.create_user(root.account_id, "legacy", LEGACY))
        finally:
            ledger.sealer = sealer
        _reads(server, root, {"alice": ALICE, "robert": BOB, "legacy": LEGACY})

        assert runtime.audit.wait_for(runtime.head(), 30)
        stored = _log_and_trail(runtime)
        for clear in (ALICE, BOB, CAROL):
            assert clear not in stored  # only sealed: "display_name_sealed": "v1$p1-…$…"
        assert f'"display_name":"{LEGACY}","display_name_sealed":null' in stored
        assert f'"display_name_sealed":"v1$p1-{root.account_id}$' in stored
        _trail_verifies(runtime)

        assert _erase(root.account_id, store_url, state, monkeypatch) == 0
        assert f"destroyed personal-data key p1-{root.account_id}" in capsys.readouterr().out
        # the running process reads them erased from its next answer on
        _reads(server, root, {"alice": None, "robert": None, "legacy": LEGACY})
        carol = server.ram(other).get_user(ram.GetUserRequest(user_name="carol")).body.user
        assert carol.display_name == CAROL
        assert _log_and_trail(runtime).startswith(stored.split("\n")[0])  # the log is as it was
        _trail_verifies(runtime)
        # the ledger records who erased: the operator, as the platform admin, from the CLI
        (erasure,) = _erasures(runtime)
        assert (erasure["actor"], erasure["accounts"]) == ("mandate:admin", [root.account_id])
        assert erasure["request_id"].startswith("cli-")
        assert erasure["summary"] == {"destroyed_key_ids": [f"p1-{root.account_id}"]}

        assert _erase(root.account_id, store_url, state, monkeypatch) == 0  # idempotent
        assert "nothing left to erase" in capsys.readouterr().out
        assert runtime.audit.wait_for(runtime.head(), 30)
        assert len(_erasures(runtime)) == 1  # destroyed nothing: recorded nothing

        # a display name set afterwards is sealed under the account's next key
        client.update_user(ram.UpdateUserRequest(user_name="alice", new_display_name=AGAIN))
        _reads(server, root, {"alice": AGAIN, "robert": None, "legacy": LEGACY})
        datastore: Any = runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
        keys = {row.id: row.erased for row in DataKeyStore(datastore).all()}
        assert keys[f"p1-{root.account_id}"] is True
        assert keys[f"p2-{root.account_id}"] is False
        assert keys[f"p1-{other.account_id}"] is False

    with rpc_serving(store_url, state) as restarted:  # a new process: the index replayed
        _reads(restarted, root, {"alice": AGAIN, "robert": None, "legacy": LEGACY})
        runtime = restarted.api.runtime
        for worker in (runtime.audit, runtime.temporal):  # the projections from position 0
            result = rebuild(
                runtime.ledger,
                runtime.store.env,
                runtime.registry,
                type(worker.projection)(),
                check=runtime.rebuild_check(worker.projection.name),
                leases=partial(copy_lease, runtime.store.env)
                if runtime.store.is_postgres
                else None,
                grace_seconds=0,
            )
            assert result.new_version >= 2
        runtime.follow_registry()
        _trail_verifies(runtime)
        assert ALICE not in _log_and_trail(runtime)
        _reads(restarted, root, {"alice": AGAIN, "robert": None, "legacy": LEGACY})
