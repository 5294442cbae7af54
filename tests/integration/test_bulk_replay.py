"""A replay in bulk (``LogFollower`` on a ``replaying`` index) builds what the mapper path does.

A starting process replays the log through ``BulkDecoder`` (its own JSON decoding), pages read
ahead by a thread (on PostgreSQL one binary-format query a page), and an index that changes
its growing sets in place until it publishes them. None of that may change what the index
holds: the same history is replayed through the ordinary path and through the bulk one, and
the two indexes must hold equal recorded state (all but the generations, which a replay
leaves alone on purpose), the same answer for every principal on a grid of requests and the
same verdict for every credential. Every event of the log decodes to an equal object, and
generated event states (nested objects, ids, instants, decimals) decode as the mapper
decodes them or are handed back to it.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification
from hypothesis import given, settings
from hypothesis import strategies as st

import mandate.projections.store.follower as follower_module
from mandate.domain.ledger.application import (  # also registers the ledger's topics
    IssuedKey,
    IssuedSession,
)
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.snapshots import dump_index
from mandate.projections.store.bulk_decoding import BulkDecoder
from mandate.projections.store.follower import LogFollower
from tests.integration.test_index_snapshots import _answers, _credentials, _fresh, _grow
from tests.integration.test_review_snapshots import _history
from tests.integration.test_roles_sessions import World, world

__all__ = ["world"]


def _state(index: DecisionIndex) -> dict[str, Any]:
    """What a snapshot records, but the generations (a replay does not move them)."""
    state: dict[str, Any] = pickle.loads(dump_index(index))  # noqa: S301 (our own bytes)
    del state["_generations"]
    return state


def _same(a: Any, b: Any) -> bool:
    """Equal events: same class, same attributes in the same order, of the same types."""
    da, db = vars(a), vars(b)
    return (
        type(a) is type(b)
        and da == db
        and list(da) == list(db)
        and all(type(da[k]) is type(db[k]) for k in da)
    )


def test_a_bulk_replay_holds_what_an_ordinary_one_does(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follower_module, "BULK_PAGE", 7)  # many pages, a short last one
    owner, _ = _history(world)
    other = world.account("Other")
    keys: list[IssuedKey] = []
    sessions: list[IssuedSession] = []
    for account in (owner, other, owner):
        _grow(world, account, keys, sessions)
    world.do("set_access_key_status", owner, "app0", keys[0].access_key_id, "Inactive")
    world.do("delete_access_key", other, "app1", keys[1].access_key_id)
    world.do("detach_policy", owner, "user", "app2", "Custom", "Buckets3")
    world.do("remove_user_from_group", owner, "readers", "u1")
    world.do("delete_user", owner, "u2", detach=True)
    world.do("add_user_to_group", owner, "readers", "app0")

    ordinary = _fresh(world)
    LogFollower(world.runtime.ledger, ordinary).catch_up()
    bulk = _fresh(world)
    bulk.replaying = True
    half = world.head() // 2
    LogFollower(world.runtime.ledger, bulk).catch_up(until=half)  # stops early, then resumes
    assert half <= bulk.position < world.head()
    LogFollower(world.runtime.ledger, bulk).catch_up()
    bulk.replaying = False

    assert bulk.position == ordinary.position == world.head()
    assert _state(bulk) == _state(ordinary)
    accounts = sorted(ordinary.accounts)
    assert _answers(bulk, accounts) == _answers(ordinary, accounts)
    assert _credentials(bulk, keys, sessions) == _credentials(ordinary, keys, sessions)
    assert any(g.member_ids for g in bulk.groups.values())

    mapper = world.runtime.ledger.mapper
    decoder = BulkDecoder.for_mapper(mapper)
    assert decoder is not None
    notifications = world.runtime.ledger.recorder.select_notifications(0, 100_000)
    assert len(notifications) == world.head()
    for n in notifications:
        fast = decoder.decode(n.originator_id, n.originator_version, n.topic, n.state)
        assert _same(fast, mapper.to_domain_event(n)), n


def test_a_snapshot_of_a_replaying_index_holds_its_published_state(world: World) -> None:
    """``mandate index snapshot`` pickles while the index is still replaying."""
    _history(world)
    ordinary = _fresh(world)
    LogFollower(world.runtime.ledger, ordinary).catch_up()
    bulk = _fresh(world)
    bulk.replaying = True
    LogFollower(world.runtime.ledger, bulk).catch_up()
    assert _state(bulk) == _state(ordinary)  # dump_index published the staged sets


_NOW = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC).isoformat()


def _stock_mapper() -> Mapper[Any]:
    """The mapper the ledger gets: eventsourcing's JSON transcoder, its stock transcodings."""
    return Application[UUID](env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


_UUIDS = st.uuids().map(lambda u: {"_type_": "uuid_hex", "_data_": u.hex})
_INSTANTS = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: {"_type_": "datetime_iso", "_data_": d.isoformat()}
)
_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False).map(
    lambda d: {"_type_": "decimal_str", "_data_": str(d)}
)
_ODD = st.fixed_dictionaries(
    {"_type_": st.sampled_from(["uuid_hex", "nope", "datetime_iso"]), "_data_": st.integers()}
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS | _UUIDS | _INSTANTS | _DECIMALS | _ODD,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["_type_", "_data_", "a", "b"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(st.sampled_from(["a", "b", "c", "class_version"]), _VALUES),
    topic=st.sampled_from(["mandate:UserCreated.v1", "mandate:UserAddedToGroup.v1"]),
)
def test_generated_states_decode_as_the_mapper_decodes_them(
    fields: dict[str, Any], topic: str
) -> None:
    mapper = _stock_mapper()
    decoder = BulkDecoder.for_mapper(mapper)
    assert decoder is not None
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": _NOW}, **fields}
    data = mapper.transcoder.encode(state)
    originator = UUID(int=7)
    stored = Notification(
        id=1, originator_id=originator, originator_version=3, topic=topic, state=data
    )
    try:
        expected: Any = mapper.to_domain_event(stored)
    except Exception:
        expected = None
    try:
        fast: Any = decoder.decode(originator, 3, topic, data)
    except Exception:
        fast = None  # handed back to the mapper, which decides
    if fast is not None:
        assert expected is not None
        assert _same(fast, expected)


def test_a_mapper_with_other_transcodings_gets_no_bulk_decoder() -> None:
    mapper = _stock_mapper()
    assert BulkDecoder.for_mapper(mapper) is not None
    transcoder: Any = mapper.transcoder

    class Other(type(transcoder.names["uuid_hex"])):  # type: ignore[misc]
        pass

    transcoder.names["uuid_hex"] = Other()
    assert BulkDecoder.for_mapper(mapper) is None
