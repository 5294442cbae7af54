"""The audit trail on SQLite and PostgreSQL: one record per event, chains, tamper evidence.

Tampering is done the way an attacker with write access to the database would: by SQL on
the stored events and on the audit tables. ``verify`` must name the first position touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.projections.audit.chain import GENESIS, chain_hash
from mandate.projections.audit.trail import GLOBAL_SCOPE, AuditQuery, checkpoints, iter_records
from mandate.projections.audit.verify import verify_chain, verify_trail
from mandate.projections.store.rebuild import RebuildRefused, open_copy, rebuild
from tests.integration.runtimes import running
from tests.integration.test_index_cache_coherence import ACTOR, _set_up

WAIT = 10.0
# Events whose removal leaves a log that still projects (nothing later names through them).
SAFE_TO_REMOVE = {"AccessKeyCreated", "User.PolicyAttached", "Group.PolicyAttached"}
OWNER = AuditContext(
    actor="acs:ram::0000000000000000:root",
    credential="LTAIowner",
    request_id="req-1",
    source_ip="203.0.113.7",
    reason="quarterly clean-up",
)


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url, audit_checkpoint_every_events=10) as the_runtime:
        yield the_runtime


def _history(runtime: Runtime) -> tuple[str, str]:
    account, _ = _set_up(runtime)
    with acting_as(ACTOR):
        other = runtime.ledger.open_account("Other").account_id
        runtime.ledger.create_user(other, "zed", None)
    with acting_as(OWNER):
        runtime.ledger.detach_policy(account, "user", "u2", "Custom", "p1")
    assert runtime.audit.wait_for(runtime.head(), WAIT)
    return account, other


def _records(runtime: Runtime, account: str | None = None) -> list[dict[str, Any]]:
    return list(iter_records(runtime.audit.store, AuditQuery(account_id=account)))


def test_one_record_per_event_in_order_with_its_audit_context(runtime: Runtime) -> None:
    account, _ = _history(runtime)
    records = _records(runtime)
    positions = [r["position"] for r in records]
    head = runtime.head()
    log = runtime.ledger.recorder.select_notifications(0, head + 1, inclusive_of_start=False)
    assert positions == [int(n.id) for n in log]
    last = records[-1]
    assert last["actor"] == OWNER.actor
    assert last["credential"] == OWNER.credential
    assert last["request_id"] == OWNER.request_id
    assert last["source_ip"] == OWNER.source_ip
    assert last["reason"] == OWNER.reason
    assert last["accounts"] == [account]
    assert last["target"] == f"acs:ram::{account}:user/u2"
    times = [r["time"] for r in records]
    assert times == sorted(times)  # ledger time never goes backwards


def test_each_account_sees_only_its_own_records_in_its_own_chain(runtime: Runtime) -> None:
    account, other = _history(runtime)
    mine = _records(runtime, account)
    theirs = _records(runtime, other)
    assert mine
    assert theirs
    assert all(account in r["accounts"] for r in mine)
    assert all(other in r["accounts"] for r in theirs)
    assert not {r["position"] for r in mine} & {r["position"] for r in theirs}
    head = GENESIS
    for record in mine:
        head = chain_hash(head, {k: v for k, v in record.items() if k != "hash"})
        assert record["hash"] == head


def test_the_trail_verifies_and_checkpoints_are_signed(runtime: Runtime) -> None:
    account, _ = _history(runtime)
    result = verify_trail(runtime.ledger, runtime.audit.store, runtime.audit_public_key)
    assert result.ok, result
    assert result.checked == len(_records(runtime))
    assert result.last_checkpoint is not None
    signed = checkpoints(runtime.audit.store, GLOBAL_SCOPE)
    assert len(signed) >= 2  # every 10 events
    assert all(c.verify(runtime.audit_public_key) for c in signed)
    mine = verify_trail(runtime.ledger, runtime.audit.store, runtime.audit_public_key, account)
    assert mine.ok, mine
    assert checkpoints(runtime.audit.store, account)


def test_no_record_holds_a_secret_or_its_hash(runtime: Runtime) -> None:
    account, _ = _history(runtime)
    with acting_as(ACTOR):
        issued = runtime.ledger.create_access_key(account, "u0")
        rotated = runtime.ledger.rotate_root_access_key(account)
    assert runtime.audit.wait_for(runtime.head(), WAIT)
    dump = json.dumps(_records(runtime))
    for secret in (issued.access_key_secret, rotated.access_key_secret):
        assert secret not in dump
    assert issued.access_key_id in dump  # the key is named, its secret is not
    for key in runtime.index.keys.values():
        assert key.secret_hash not in dump
        assert key.secret_hash.split("$")[-1] not in dump


# -- tampering ---------------------------------------------------------------------------------


def _events_table(runtime: Runtime) -> str:
    recorder: Any = runtime.ledger.recorder
    if runtime.audit.store.dialect.is_postgres:
        return f'"{recorder.datastore.schema}".{recorder.events_table_name}'
    return str(recorder.events_table_name)


def _id_column(runtime: Runtime) -> str:
    """The column of the ledger position: ``rowid`` on SQLite, ``notification_id`` on PG."""
    return "notification_id" if runtime.audit.store.dialect.is_postgres else "rowid"


def _sql(runtime: Runtime, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Run SQL on the ledger's own store, as an attacker with database access would."""
    datastore: Any = runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
    if runtime.audit.store.dialect.is_postgres:
        statement = statement.replace("?", "%s")
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(statement, params)


def _audit_sql(runtime: Runtime, statement: str, params: tuple[Any, ...] = ()) -> None:
    store = runtime.audit.store
    with store.transaction(commit=True) as cursor:
        store.execute(cursor, statement, params)


def _verify(runtime: Runtime) -> Any:
    return verify_trail(runtime.ledger, runtime.audit.store, runtime.audit_public_key)


def _middle(runtime: Runtime) -> int:
    records = _records(runtime)
    return int(records[len(records) // 2]["position"])


def test_a_changed_event_is_named(runtime: Runtime) -> None:
    _history(runtime)
    position = _middle(runtime)
    table = _events_table(runtime)
    rows: list[Any] = []
    datastore: Any = runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
    select = f"SELECT state FROM {table} WHERE {_id_column(runtime)} = ?"  # noqa: S608
    if runtime.audit.store.dialect.is_postgres:
        select = select.replace("?", "%s")
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(select, (position,))
        rows = cursor.fetchall()
    state = bytes(rows[0]["state"])
    changed = state.replace(b'"mandate:admin"', b'"mandate:someone-else"')
    assert changed != state
    update = f"UPDATE {table} SET state = ? WHERE {_id_column(runtime)} = ?"  # noqa: S608
    _sql(runtime, update, (changed, position))
    result = _verify(runtime)
    assert not result.ok
    assert result.first_bad_position == position, result


def test_a_changed_record_is_named(runtime: Runtime) -> None:
    _history(runtime)
    position = _middle(runtime)
    _audit_sql(
        runtime,
        "UPDATE {p}_records SET record = replace(record, 'mandate:admin', 'mandate:nobody')"
        " WHERE position = ?",
        (position,),
    )
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, position), result


def test_a_deleted_record_is_named(runtime: Runtime) -> None:
    _history(runtime)
    position = _middle(runtime)
    _audit_sql(runtime, "DELETE FROM {p}_records WHERE position = ?", (position,))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, position), result


def test_a_deleted_event_is_named(runtime: Runtime) -> None:
    _history(runtime)
    position = _middle(runtime)
    table = _events_table(runtime)
    delete = f"DELETE FROM {table} WHERE {_id_column(runtime)} = ?"  # noqa: S608
    _sql(runtime, delete, (position,))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, position), result


def test_two_swapped_events_are_named(runtime: Runtime) -> None:
    """The log reordered: what two positions say exchanged, the trail left as it was."""
    _history(runtime)
    first = _middle(runtime)
    second = first + 1
    table = _events_table(runtime)
    column = _id_column(runtime)
    datastore: Any = runtime.ledger.recorder.datastore  # type: ignore[attr-defined]
    select = f"SELECT {column} AS position, state FROM {table} WHERE {column} IN (?, ?)"  # noqa: S608
    if runtime.audit.store.dialect.is_postgres:
        select = select.replace("?", "%s")
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(select, (first, second))
        states = {int(row["position"]): bytes(row["state"]) for row in cursor.fetchall()}
    assert states[first] != states[second]
    update = f"UPDATE {table} SET state = ? WHERE {column} = ?"  # noqa: S608
    _sql(runtime, update, (states[second], first))
    _sql(runtime, update, (states[first], second))
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, first), result


def test_two_swapped_records_are_named(runtime: Runtime) -> None:
    _history(runtime)
    first = _middle(runtime)
    second = first + 1
    store = runtime.audit.store
    rows = {
        int(r["position"]): r
        for r in store.query(
            "SELECT position, record, hash FROM {p}_records WHERE position IN (?, ?)",
            (first, second),
        )
    }
    for here, there in ((first, second), (second, first)):
        _audit_sql(
            runtime,
            "UPDATE {p}_records SET record = ?, hash = ? WHERE position = ?",
            (rows[there]["record"], rows[there]["hash"], here),
        )
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, first), result


def test_a_rewritten_and_rehashed_history_is_caught_by_the_signed_checkpoint(
    runtime: Runtime,
) -> None:
    """Without the key, re-hashing a consistent forgery cannot match the signed head."""
    _history(runtime)
    signed = checkpoints(runtime.audit.store, GLOBAL_SCOPE)
    records = _records(runtime)
    forged = []
    head = GENESIS
    target = signed[0].position  # a record the first checkpoint anchors
    for record in records:
        body = {k: v for k, v in record.items() if k != "hash"}
        if body["position"] == target:
            body = {**body, "reason": "forged"}
        head = chain_hash(head, body)
        forged.append({**body, "hash": head})
    result = verify_chain(forged, None, signed, runtime.audit_public_key)
    assert not result.ok
    assert result.first_bad_position == signed[0].position, result
    honest = verify_chain(records, None, signed, runtime.audit_public_key)
    assert honest.ok, honest


def test_an_audit_rebuild_that_disagrees_with_the_signed_checkpoint_refuses_to_switch(
    runtime: Runtime,
) -> None:
    _history(runtime)
    first = checkpoints(runtime.audit.store, GLOBAL_SCOPE)[0].position
    # An attachment before the first checkpoint: removing it leaves a log that still
    # projects cleanly — only the signed head can tell.
    removed = max(
        r["position"]
        for r in _records(runtime)
        if r["position"] <= first and r["event_type"] in SAFE_TO_REMOVE
    )
    table = _events_table(runtime)
    _sql(
        runtime,
        f"DELETE FROM {table} WHERE {_id_column(runtime)} = ?",  # noqa: S608
        (removed,),
    )
    with pytest.raises(RebuildRefused, match=f"position {first}"):
        rebuild(
            runtime.ledger,
            runtime.store.env,
            runtime.registry,
            type(runtime.audit.projection)(),
            check=runtime.rebuild_check("audit"),
            grace_seconds=0,
        )
    assert runtime.registry.active()["audit"] == 1


def test_an_honest_audit_rebuild_switches_and_keeps_the_checkpoints(runtime: Runtime) -> None:
    _history(runtime)
    before = checkpoints(runtime.audit.store, GLOBAL_SCOPE)
    result = rebuild(
        runtime.ledger,
        runtime.store.env,
        runtime.registry,
        type(runtime.audit.projection)(),
        check=runtime.rebuild_check("audit"),
        grace_seconds=0.3,
    )
    assert result.new_version == 2
    runtime.follow_registry()
    assert runtime.audit.store.prefix == "audit_v2"
    assert checkpoints(runtime.audit.store, GLOBAL_SCOPE)[: len(before)] == before
    assert _verify(runtime).ok


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MANDATE_DATABASE_URL": url,
        "MANDATE_ADMIN_TOKEN": "t" * 40,
        "MANDATE_HASH_KEY": "k" * 40,
        "MANDATE_AUDIT_CHECKPOINT_EVERY_EVENTS": "10",
    }
    return subprocess.run(  # noqa: S603 (our own interpreter and CLI, arguments from the test)
        [sys.executable, "-m", "mandate.api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_verifies_exports_a_bundle_and_verifies_it_offline(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running(sqlite_url, audit_checkpoint_every_events=10) as runtime:
        account, _ = _history(runtime)
    verified = _cli(sqlite_url, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    bundle = tmp_path / "bundle"
    exported = _cli(sqlite_url, "audit", "export", "--account", account, "--bundle", str(bundle))
    assert exported.returncode == 0, exported.stderr
    offline = _cli(sqlite_url, "audit", "verify-export", str(bundle))
    assert offline.returncode == 0, offline.stdout
    assert json.loads(offline.stdout)["checked"] > 0
    # One byte changed in the exported records: the offline check names the record.
    lines = (bundle / "records.ndjson").read_text().splitlines()
    changed = json.loads(lines[3])
    changed["reason"] = "edited after export"
    lines[3] = json.dumps(changed, sort_keys=True)
    (bundle / "records.ndjson").write_text("\n".join(lines) + "\n")
    tampered = _cli(sqlite_url, "audit", "verify-export", str(bundle))
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["first_bad_position"] == changed["position"]
    as_csv = _cli(sqlite_url, "audit", "export", "--format", "csv")
    assert as_csv.returncode == 0
    assert as_csv.stdout.splitlines()[0].startswith("position,time,accounts")


def test_an_event_the_trail_cannot_name_stalls_it_with_503_naming_the_position(
    runtime: Runtime,
) -> None:
    """Fail closed: a log that no longer explains itself is not recorded vaguely."""
    import anyio

    from mandate.api.deps import reach_projection_head
    from mandate.api.problems import ProjectionStalled

    _history(runtime)
    created = next(r["position"] for r in _records(runtime) if r["event_type"] == "UserCreated")
    _sql(
        runtime,
        f"DELETE FROM {_events_table(runtime)} WHERE {_id_column(runtime)} = ?",  # noqa: S608
        (created,),
    )
    rebuilt = open_copy(runtime.store.env, type(runtime.audit.projection)(), 5, create=True)
    stalled = runtime.audit.retarget(rebuilt)
    try:
        with pytest.raises(ProjectionStalled, match="position"):
            anyio.run(reach_projection_head, runtime, runtime.audit)
        assert rebuilt.position() < runtime.head()  # it stopped; nothing vague was recorded
    finally:
        runtime.audit.retarget(stalled)
        rebuilt.drop()


def test_the_global_verification_checks_every_account_chain_too(runtime: Runtime) -> None:
    _history(runtime)
    assert _verify(runtime).ok
    position = _middle(runtime)
    _audit_sql(
        runtime,
        "UPDATE {p}_account_records SET hash = ? WHERE position = ?",
        ("0" * 64, position),
    )
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, position), result
    assert "account" in (result.reason or "")


def test_a_record_hidden_from_an_account_is_named(runtime: Runtime) -> None:
    account, _ = _history(runtime)
    position = int(_records(runtime, account)[3]["position"])
    _audit_sql(
        runtime,
        "DELETE FROM {p}_account_records WHERE account_id = ? AND position = ?",
        (account, position),
    )
    result = _verify(runtime)
    assert (result.ok, result.first_bad_position) == (False, position), result
    mine = verify_trail(runtime.ledger, runtime.audit.store, runtime.audit_public_key, account)
    assert (mine.ok, mine.first_bad_position) == (False, position), mine
