"""A process starts from the newest index snapshot; snapshots are written when due; the CLI.

The equivalence of an index from a snapshot and one replayed from 0 is shown in
``test_index_snapshots``; here the runtime's wiring: ``start`` loads the newest snapshot of
its format (the newest two are kept), ``MANDATE_INDEX_SNAPSHOT_EVERY=0`` replays from 0, a
forged row makes a process replay from 0, ``mandate index snapshot`` and ``status``.
"""

from __future__ import annotations

import json
import pickle

import pytest

from mandate.api import cli
from mandate.domain.ledger.application import IssuedKey, IssuedSession
from tests.integration.runtimes import running
from tests.integration.test_index_snapshots import _credentials, _grow
from tests.integration.test_review_snapshots import _history
from tests.integration.test_roles_sessions import World, world

__all__ = ["world"]


def test_a_process_starts_from_the_newest_snapshot(world: World, store_url: str) -> None:
    owner, _ = _history(world)
    keys: list[IssuedKey] = []
    sessions: list[IssuedSession] = []
    _grow(world, owner, keys, sessions)
    first = world.runtime.index_snapshots.write(world.index).position
    _grow(world, owner, keys, sessions)
    second = world.runtime.index_snapshots.write(world.index).position
    _grow(world, owner, keys, sessions)
    third = world.runtime.index_snapshots.write(world.index).position
    assert [s.position for s in world.runtime.index_snapshots.stored()] == [
        third,
        second,
    ]  # keeps 2
    assert first < second < third
    world.do("set_access_key_status", owner, "app0", keys[0].access_key_id, "Inactive")
    with running(store_url) as later:
        assert later.index_snapshot_loaded == third
        assert later.index.position == world.head()
        assert _credentials(later.index, keys, sessions) == _credentials(
            world.index, keys, sessions
        )
    with running(store_url, index_snapshot_every=0) as plain:  # snapshots off: replay from 0
        assert plain.index_snapshot_loaded == 0
        assert plain.index.position == world.head()


def test_snapshots_are_written_when_due(world: World) -> None:
    owner, _ = _history(world)
    runtime = world.runtime
    runtime.settings = runtime.settings.model_copy(update={"index_snapshot_every": 10})
    assert runtime.snapshot_index_if_due() == world.head()
    assert runtime.snapshot_index_if_due() is None  # not 10 events past it yet
    keys: list[IssuedKey] = []
    _grow(world, owner, keys, [])
    assert runtime.snapshot_index_if_due() == world.head()


def test_a_forged_row_makes_a_process_replay_from_zero(world: World) -> None:
    _history(world)
    snapshots = world.runtime.index_snapshots
    written = snapshots.write(world.index)
    forged = pickle.dumps({"position": written.position})
    with snapshots.datastore.transaction(commit=True) as cursor:
        mark = "%s" if "Postgres" in type(snapshots.datastore).__name__ else "?"
        cursor.execute(f"UPDATE {snapshots.table} SET bytes = {mark}", (forged,))  # noqa: S608
    with running(world.runtime.settings.database_url) as later:
        assert later.index_snapshot_loaded == 0
        assert later.index.position == world.head()


def test_mandate_index_snapshot_and_status(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _history(world)
    settings = world.runtime.settings
    monkeypatch.setenv("MANDATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MANDATE_HASH_KEY", "k" * 40)
    monkeypatch.setenv("MANDATE_ADMIN_TOKEN", "t" * 40)
    assert cli.main(["index", "snapshot"]) == 0
    assert f"at position {world.head()}" in capsys.readouterr().out
    assert cli.main(["index", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["head"] == world.head()
    assert [(s["position"], s["usable"]) for s in status["snapshots"]] == [(world.head(), True)]
