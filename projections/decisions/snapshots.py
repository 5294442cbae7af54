"""Snapshots of the decision index in the ledger's store, so a process need not replay from 0.

Every process holds the decision index in memory; rebuilding it from position 0 at start
costs the whole log (tens of seconds at a million events). So a process now and then writes
the index's state at a position into ``mandate_index_snapshots`` (its own transaction; the
newest two of each format kept), and a starting process loads the newest snapshot whose
format matches its code, then follows the log's tail as usual. A snapshot that does not
match, does not verify or does not load is passed over: the process replays from 0.

What a snapshot holds is what the log holds: names, documents, ARNs, and AccessKey and
session secrets only as keyed hashes (``k1$…``) and sealed (``v1$…``: ciphertext under data
keys kept wrapped elsewhere). Neither the hashing key, the token-signing key nor the keyring is
in it (the pickler refuses to serialise any of them), nor any cache (the memo, compiled
policy sets, verified sessions: they refill). The bytes are a pickle, and unpickling is code
execution, so each row carries an HMAC-SHA256 over its format, position and bytes under a key
derived from the process's hashing key: a row written by anyone without that key — someone
with write access to the table alone — is refused before it is unpickled.

The format version is a digest of the code that defines the pickled state (``domain/`` and
``projections/``) and of the Python version: any change to it makes older snapshots unusable
rather than wrongly loaded, at the cost of one replay from 0 after a deploy.
"""

from __future__ import annotations

import copyreg
import hashlib
import hmac
import io
import logging
import pickle
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, NoReturn

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

import mandate.domain as domain
import mandate.projections as projections
from mandate.domain.identity.keyring import Keyring
from mandate.domain.identity.secrets import SecretHasher
from mandate.domain.sts.session_tokens import SessionTokenSigner
from mandate.projections.decisions.index import DecisionIndex

__all__ = [
    "SNAPSHOT_TABLE",
    "IndexSnapshots",
    "SnapshotRefused",
    "StoredSnapshot",
    "dump_index",
    "format_version",
    "restore_index",
]

SNAPSHOT_TABLE: Final = "mandate_index_snapshots"
KEEP: Final = 2
"""Snapshots of the current format kept (the newest); other formats go after a day."""
_FORMAT: Final = 1
"""Bumped by hand when the snapshot's framing changes (the code digest covers the rest)."""
_MAC_LABEL: Final = b"mandate index snapshot v1"
_NOT_STATE: Final = frozenset(
    {
        # configuration and keys: the loading process's own
        "hasher",
        "token_signer",
        "keyring",
        "_memo_half",
        "_dummy_hash",
        "_replaying",
        "steady",
        # what a replay changes in place: published into the state before it is pickled
        "_staged_members",
        "_staged_holders",
        # caches that readers fill concurrently: they refill after a load
        "_memo",
        "_memo_old",
        "_memo_filled",
        "_policy_sets",
        "_verified_sessions",
        "_session_layers",
        "_delegation_layers",
        "_control_levels",
        "_compiler",
    }
)
"""Attributes of a ``DecisionIndex`` that are not part of what a snapshot records."""

log = logging.getLogger("mandate.index_snapshots")


class SnapshotRefused(Exception):
    """A stored snapshot cannot be used (other key, MAC mismatch, unexpected state)."""


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    position: int
    format_version: str
    created_at: str
    size: int


@cache
def format_version() -> str:
    """A digest of the code whose objects a snapshot pickles, and of the Python version."""
    digest = hashlib.sha256(f"{_FORMAT}|{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for package in (domain, projections):
        root = Path(package.__file__ or "").parent
        for path in sorted(root.rglob("*.py")):
            name = path.relative_to(root).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{_FORMAT}-{digest.hexdigest()[:16]}"


def _refuse_key(obj: object) -> NoReturn:
    raise pickle.PicklingError(f"a {type(obj).__name__} must never be written into a snapshot")


def dump_index(index: DecisionIndex) -> bytes:
    """The index's recorded state as bytes (call while no event is being applied)."""
    index.publish()  # a replaying index (``mandate index snapshot``) holds changes aside
    state = {k: v for k, v in vars(index).items() if k not in _NOT_STATE}
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    table: dict[Any, Any] = dict(copyreg.dispatch_table)
    table[SecretHasher] = _refuse_key
    table[SessionTokenSigner] = _refuse_key
    table[Keyring] = _refuse_key
    pickler.dispatch_table = table
    pickler.dump(state)
    return buffer.getvalue()


def restore_index(index: DecisionIndex, data: bytes, position: int | None = None) -> None:
    """Load ``data`` (from ``dump_index``, already verified) into a fresh ``index``.

    Checked before anything changes: ``index`` is untouched when this raises.
    """
    if index.position != 0:
        raise SnapshotRefused("a snapshot loads only into an index that has applied nothing")
    state = pickle.loads(data)  # noqa: S301 (verified by its HMAC before this call)
    expected = set(vars(index)) - _NOT_STATE
    if not isinstance(state, dict) or set(state) != expected:
        raise SnapshotRefused("the snapshot's state does not have this code's attributes")
    if position is not None and state["position"] != position:
        raise SnapshotRefused(f"the snapshot filed at {position} holds {state['position']}")
    vars(index).update(state)


def _mac_key(hasher: SecretHasher, key_id: str) -> bytes | None:
    key = hasher.keys.get(key_id)
    if key is None:
        return None
    return hmac.new(key, _MAC_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, version: str, position: int, data: bytes) -> str:
    mac = hmac.new(key, f"{version}|{position}|".encode(), hashlib.sha256)
    mac.update(data)
    return mac.hexdigest()


class IndexSnapshots:
    """The snapshot table in the ledger's own store (PostgreSQL bytea, SQLite blob)."""

    def __init__(
        self, datastore: SQLiteDatastore | PostgresDatastore, hasher: SecretHasher
    ) -> None:
        self.datastore = datastore
        self.hasher = hasher
        self._postgres = isinstance(datastore, PostgresDatastore)
        self._mark = "%s" if self._postgres else "?"
        if isinstance(datastore, PostgresDatastore):
            self.table = f'"{datastore.schema or "public"}".{SNAPSHOT_TABLE}'
        else:
            self.table = SNAPSHOT_TABLE

    def create_table(self) -> None:
        blob = "BYTEA" if self._postgres else "BLOB"
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (position BIGINT NOT NULL, "
                "format_version TEXT NOT NULL, created_at TEXT NOT NULL, key_id TEXT NOT NULL, "
                f"mac TEXT NOT NULL, bytes {blob} NOT NULL, "
                "PRIMARY KEY (format_version, position))"
            )

    def stored(self) -> list[StoredSnapshot]:
        """Every stored snapshot, newest first (without their bytes)."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT position, format_version, created_at, LENGTH(bytes) AS size "  # noqa: S608
                f"FROM {self.table} ORDER BY position DESC"
            )
            rows = cursor.fetchall()
        return [
            StoredSnapshot(int(r["position"]), r["format_version"], r["created_at"], int(r["size"]))
            for r in rows
        ]

    def newest_position(self) -> int:
        """The newest usable snapshot's position (0: none)."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT MAX(position) AS p FROM {self.table} "  # noqa: S608
                f"WHERE format_version = {self._mark}",
                (format_version(),),
            )
            rows = cursor.fetchall()
        return int(rows[0]["p"] or 0) if rows else 0

    def write(
        self, index: DecisionIndex, lock: AbstractContextManager[Any] | None = None
    ) -> StoredSnapshot:
        """Snapshot ``index`` (pickled while holding ``lock``: no event applies meanwhile)."""
        with lock if lock is not None else nullcontext():
            position = index.position
            data = dump_index(index)
        return self.write_bytes(position, data)

    def write_bytes(self, position: int, data: bytes) -> StoredSnapshot:
        version, key_id = format_version(), self.hasher.current_key_id
        key = _mac_key(self.hasher, key_id)
        assert key is not None  # the current key is always configured
        now = datetime.now(UTC)
        created = now.isoformat(timespec="seconds")
        mark, table = self._mark, self.table
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"INSERT INTO {table} (position, format_version, created_at, key_id, mac, "  # noqa: S608
                f"bytes) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}) "
                "ON CONFLICT (format_version, position) DO NOTHING",
                (position, version, created, key_id, _mac(key, version, position, data), data),
            )
            cursor.execute(
                f"DELETE FROM {table} WHERE format_version = {mark} AND position < "  # noqa: S608
                f"(SELECT MIN(position) FROM (SELECT position FROM {table} "
                f"WHERE format_version = {mark} ORDER BY position DESC LIMIT {KEEP}) newest)",
                (version, version),
            )
            old = (now - timedelta(days=1)).isoformat(timespec="seconds")
            cursor.execute(
                f"DELETE FROM {table} WHERE format_version <> {mark} "  # noqa: S608
                f"AND created_at < {mark}",
                (version, old),
            )
        return StoredSnapshot(position, version, created, len(data))

    def load_into(self, index: DecisionIndex) -> int:
        """Load the newest verified snapshot of this format into ``index``; its position.

        0 when there is none (or none verifies): the caller replays from position 0. A row
        that fails its MAC is logged and never unpickled.
        """
        version, mark = format_version(), self._mark
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT position, key_id, mac FROM {self.table} "  # noqa: S608
                f"WHERE format_version = {mark} ORDER BY position DESC",
                (version,),
            )
            candidates = [(int(r["position"]), r["key_id"], r["mac"]) for r in cursor.fetchall()]
        for position, key_id, mac in candidates:
            key = _mac_key(self.hasher, key_id)
            if key is None:
                log.warning("index snapshot at %d: its key %s is not configured", position, key_id)
                continue
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    f"SELECT bytes FROM {self.table} WHERE format_version = {mark} "  # noqa: S608
                    f"AND position = {mark}",
                    (version, position),
                )
                rows = cursor.fetchall()
            if not rows:
                continue  # pruned meanwhile
            data = bytes(rows[0]["bytes"])
            if not hmac.compare_digest(mac, _mac(key, version, position, data)):
                log.warning("index snapshot at %d refused: its MAC does not verify", position)
                continue
            restore_index(index, data, position)
            return position
        return 0


def snapshot_lock(follower: Any) -> threading.Lock:
    """The lock under which ``follower`` applies events (held while pickling the index)."""
    lock = follower._lock  # the follower's own apply lock
    assert isinstance(lock, type(threading.Lock()))
    return lock
