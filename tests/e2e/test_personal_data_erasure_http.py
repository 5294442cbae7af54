"""Erasing an account's personal data over HTTP, and the audit trail's answers around it.

``POST /v1/accounts/{a}/personal-data/erase`` is the CLI's ``mandate account
erase-personal-data`` (the same ``Keyring.erase_personal``): refused callers get problem+json,
change nothing and are in the account's security log; the root erases; a second call
destroys nothing; an ``Idempotency-Key`` retry is answered the first answer. The audit
trail's answers — the account's and the global listing, the NDJSON and CSV exports, over HTTP
and from the CLI — show a sealed display name opened while its key lives and
``"display_name": null, "personal_data": "erased"`` afterwards, never the ciphertext; the
chains still verify over the records as stored, online and from an offline bundle.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from mandate.api.cli import main
from mandate.api.routers.accounts import ERASE_ACTION
from tests.e2e.conftest import ADMIN_TOKEN, HASH_KEY, MandateClient
from tests.e2e.rpc_support import Key, RpcServer, rpc_serving

ALICE = "Alice Audit-Shown"
CAROL = "Carol Other-Tenant"
SEALED = "v1$p"  # how every sealed personal value begins


@pytest.fixture(scope="module")
def state(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def _basic(key: Key) -> dict[str, str]:
    return MandateClient.basic(key.access_key_id, key.secret)


def _created_users(records: list[dict[str, Any]], account_id: str) -> list[dict[str, Any]]:
    return [
        r["summary"]
        for r in records
        if r["event_type"] == "UserCreated" and r["accounts"] == [account_id]
    ]


def _trail(server: RpcServer, root: Key) -> list[dict[str, Any]]:
    """The account's records from its listing, its NDJSON and CSV exports, and the admin's
    global listing — each summary of a user's creation, once per surface (they must agree)."""
    a = root.account_id
    api, headers = server.api, _basic(root)
    listed = api.get(f"/v1/accounts/{a}/audit-events", headers=headers, params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    everything = api.get("/v1/audit-events", headers=api.admin, params={"limit": 1000})
    assert everything.status_code == 200, everything.text
    ndjson = api.get(f"/v1/accounts/{a}/audit-events/export", headers=headers)
    table = api.get(f"/v1/accounts/{a}/audit-events/export?format=csv", headers=headers)
    assert (ndjson.status_code, table.status_code) == (200, 200)
    for answer in (listed, everything, ndjson, table):
        assert SEALED not in answer.text  # never the ciphertext
    exported = [json.loads(line) for line in ndjson.text.splitlines()]
    rows = list(csv.DictReader(io.StringIO(table.text)))
    from_csv = [{**row, "accounts": json.loads(row["accounts"])} for row in rows]
    for row in from_csv:
        row["summary"] = json.loads(row["summary"])
    surfaces = [listed.json()["items"], everything.json()["items"], exported, from_csv]
    shown = [_created_users(records, a) for records in surfaces]
    assert all(summaries == shown[0] for summaries in shown), shown
    return shown[0]


def _erasures(server: RpcServer, root: Key) -> list[dict[str, Any]]:
    """The account's ``PersonalDataErased`` audit records."""
    listed = server.api.get(
        f"/v1/accounts/{root.account_id}/audit-events",
        headers=_basic(root),
        params={"limit": 1000},
    )
    assert listed.status_code == 200, listed.text
    return [r for r in listed.json()["items"] if r["event_type"] == "PersonalDataErased"]


def _verifies(server: RpcServer, root: Key) -> None:
    a = root.account_id
    mine = server.api.get(f"/v1/accounts/{a}/audit/verify", headers=_basic(root))
    everything = server.api.get("/v1/audit/verify", headers=server.api.admin)
    for answer in (mine, everything):
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is True, answer.json()


def _cli(store_url: str, state: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    with monkeypatch.context() as env:
        env.setenv("MANDATE_DATABASE_URL", store_url)
        env.setenv("MANDATE_STATE_DIR", str(state))
        env.setenv("MANDATE_HASH_KEY", HASH_KEY)  # the served runtime's keys, for open_runtime
        env.setenv("MANDATE_ADMIN_TOKEN", ADMIN_TOKEN)
        return main(list(argv))


def test_audit_answers_show_display_names_until_erased_over_http(
    store_url: str,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    with rpc_serving(store_url, state) as server:
        root, other = server.open_account(), server.open_account()
        a, api = root.account_id, server.api
        for key, name, display in ((root, "alice", ALICE), (other, "carol", CAROL)):
            made = api.post(
                f"/v1/accounts/{key.account_id}/users",
                json={"user_name": name, "display_name": display},
                headers=_basic(key),
            )
            assert made.status_code == 201, made.text
        made = api.post(f"/v1/accounts/{a}/users", json={"user_name": "bob"}, headers=_basic(root))
        assert made.status_code == 201, made.text
        bob_key = api.post(f"/v1/accounts/{a}/users/bob/access-keys", headers=_basic(root))
        assert bob_key.status_code == 201, bob_key.text
        bob = Key(bob_key.json()["access_key_id"], bob_key.json()["access_key_secret"], a)

        assert _trail(server, root) == [
            {"user_name": "alice", "display_name": ALICE},
            {"user_name": "bob", "display_name": None},
        ]
        _verifies(server, root)

        # refused: another account's root, a RAM user without a policy; nothing changes
        erase = f"/v1/accounts/{a}/personal-data/erase"
        for refused in (other, bob):
            answer = api.post(erase, headers=_basic(refused))
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert _trail(server, root)[0]["display_name"] == ALICE
        logged = api.get(f"/v1/accounts/{a}/security-events", headers=_basic(root))
        assert logged.status_code == 200, logged.text
        denials = [e for e in logged.json()["items"] if e["action"] == ERASE_ACTION]
        assert sorted(e["caller"] for e in denials) == sorted(
            [f"acs:ram::{other.account_id}:root", f"acs:ram::{a}:user/bob"]
        )

        # the root erases; a retry with the same Idempotency-Key is the first answer again
        once = {**_basic(root), "Idempotency-Key": "erase-alice-1", "X-Request-Id": "req-erase-1"}
        first = api.post(erase, headers=once)
        assert first.status_code == 200, first.text
        assert first.json() == {
            "account_id": a,
            "personal_data": "erased",
            "destroyed_keys": [f"p1-{a}"],
            "position": first.json()["position"],
        }
        again = api.post(erase, headers=once)
        assert (again.status_code, again.json()) == (200, first.json())
        assert again.headers.get("Idempotency-Replayed") == "true"
        second = api.post(erase, headers=_basic(root))  # without the key: a no-op answer
        assert second.status_code == 200, second.text
        assert second.json()["destroyed_keys"] == []
        assert second.json()["position"] is None  # destroyed nothing: recorded nothing
        # the audit trail says who erased, when, and which key went — once
        (erasure,) = _erasures(server, root)
        assert erasure["actor"] == f"acs:ram::{a}:root"
        assert erasure["request_id"] == "req-erase-1"
        assert erasure["position"] == first.json()["position"]
        assert erasure["summary"] == {"destroyed_key_ids": [f"p1-{a}"]}

        shown = _trail(server, root)
        assert shown == [
            {"user_name": "alice", "display_name": None, "personal_data": "erased"},
            {"user_name": "bob", "display_name": None},
        ]
        assert ALICE not in json.dumps(shown)
        theirs = api.get(f"/v1/accounts/{other.account_id}/audit-events", headers=_basic(other))
        (carol,) = _created_users(theirs.json()["items"], other.account_id)
        assert carol == {"user_name": "carol", "display_name": CAROL}  # untouched
        _verifies(server, root)

        # the CLI's erasure is the same one: nothing is left for it
        capsys.readouterr()
        assert _cli(store_url, state, monkeypatch, "account", "erase-personal-data", a) == 0
        assert "nothing left to erase" in capsys.readouterr().out
        assert len(_erasures(server, root)) == 1  # nor did the CLI's no-op record anything

    # the CLI's export shows it erased too; a bundle keeps the stored form, which re-hashes
    assert _cli(store_url, state, monkeypatch, "audit", "export", "--account", a) == 0
    printed = capsys.readouterr().out
    assert SEALED not in printed
    assert ALICE not in printed
    assert '"personal_data": "erased"' in printed
    bundle = tmp_path / "bundle"
    assert (
        _cli(
            store_url,
            state,
            monkeypatch,
            "audit",
            "export",
            "--account",
            a,
            "--bundle",
            str(bundle),
        )
        == 0
    )
    capsys.readouterr()
    assert _cli(store_url, state, monkeypatch, "audit", "verify-export", str(bundle)) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_the_admin_may_erase_and_an_unknown_account_is_404(store_url: str, state: Path) -> None:
    with rpc_serving(store_url, state) as server:
        root = server.open_account()
        api = server.api
        made = api.post(
            f"/v1/accounts/{root.account_id}/users",
            json={"user_name": "dora", "display_name": "Dora Admin-Erased"},
            headers=_basic(root),
        )
        assert made.status_code == 201, made.text
        erased = api.post(f"/v1/accounts/{root.account_id}/personal-data/erase", headers=api.admin)
        assert erased.status_code == 200, erased.text
        assert erased.json()["destroyed_keys"] == [f"p1-{root.account_id}"]
        (erasure,) = _erasures(server, root)
        assert erasure["actor"] == "mandate:admin"
        user = api.get(f"/v1/accounts/{root.account_id}/users/dora", headers=_basic(root))
        assert user.json()["personal_data"] == "erased"
        missing = api.post("/v1/accounts/1234567890123456/personal-data/erase", headers=api.admin)
        assert missing.status_code == 404, missing.text
        bad = api.post("/v1/accounts/not-an-account/personal-data/erase", headers=api.admin)
        assert bad.status_code == 400, bad.text
        for answer in (missing, bad):
            assert answer.headers["content-type"].startswith("application/problem+json")
