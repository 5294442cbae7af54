"""The composition root: settings → store → ledger, decision index and its follower.

Generated development secrets (the hashing key, the admin token's hash) are kept in the
state directory beside the database, never in the log; production passes them in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import InterfaceError, OperationalError

from api.observability.metrics import observe_write
from api.settings import Settings, store_config
from api.startup.key_fingerprints import KeyMismatch, check_and_record, fingerprints
from api.startup.store_checks import StoreUnreachable, probe
from domain.common.audit import AuditContext, acting_as
from domain.identity.secrets import SecretHasher, new_token
from domain.ledger.application import Ledger
from domain.sts.session_tokens import SessionTokenSigner
from projections.audit.chain import (
    CheckpointSigner,
    SigningKeyError,
    load_or_create_signing_key,
    load_signing_key,
    public_key_pem,
)
from projections.audit.trail import GLOBAL_SCOPE, AuditTrailProjection
from projections.decisions.index import DecisionIndex
from projections.decisions.snapshots import IndexSnapshots, snapshot_lock
from projections.history.as_of import AsOfReader
from projections.history.temporal_index import TemporalIndexProjection
from projections.store.follower import LogFollower
from projections.store.leadership import AdvisoryLease, copy_lease
from projections.store.log_notifications import LogListener
from projections.store.read_model_store import ProjectionRegistry, ReadModelStore
from projections.store.read_replica import LogSource, ReplicaReads
from projections.store.rebuild import RebuildRefused
from projections.store.sql_projection import ProjectionWorker, SqlProjection, open_copy

__all__ = ["AdminToken", "Runtime", "StoreUnavailable", "WriteNotApplied"]

log = logging.getLogger("mandate")
T = TypeVar("T")

KEYS_FILE = "mandate.keys"
AUDIT_KEY_FILE = "mandate.audit-signing-key.pem"
TOKEN_KEY_FILE = "mandate.token-signing-keys"  # noqa: S105 (a file name, not a secret)
ADMIN_TOKEN_FILE = "mandate.admin-token"  # noqa: S105 (a file name, not a secret)


class StoreUnavailable(Exception):
    """The event store cannot be reached (→ 503)."""


class WriteNotApplied(Exception):
    """The write committed but this process's index has not applied it in time (→ 503)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"position {position} is committed but not yet applied here")
        self.position = position


@dataclass(frozen=True)
class AdminToken:
    """The admin token as a hash; ``issued`` holds the clear token only on first start."""

    token_hash: str
    issued: str | None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def load_hasher(settings: Settings) -> SecretHasher:
    if settings.hash_key:
        return SecretHasher(
            settings.hash_key_id, {settings.hash_key_id: settings.hash_key.encode()}
        )
    path = settings.resolved_state_dir / KEYS_FILE
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {"current": "k1", "keys": {"k1": secrets.token_hex(32)}}
        _write_private(path, json.dumps(stored))
    return SecretHasher(
        stored["current"], {kid: key.encode() for kid, key in stored["keys"].items()}
    )


def load_token_signer(settings: Settings) -> SessionTokenSigner:
    """The STS token signing keys: from the settings, or generated beside the database."""
    if settings.token_signing_key:
        key_id = settings.token_signing_key_id
        return SessionTokenSigner(key_id, {key_id: settings.token_signing_key.encode()})
    path = settings.resolved_state_dir / TOKEN_KEY_FILE
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {"current": "t1", "keys": {"t1": secrets.token_hex(32)}}
        _write_private(path, json.dumps(stored))
    return SessionTokenSigner(
        stored["current"], {kid: key.encode() for kid, key in stored["keys"].items()}
    )


def load_audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The checkpoint signing key: a file outside the database, generated in development."""
    try:
        if settings.audit_signing_key_file is not None:
            return load_signing_key(settings.audit_signing_key_file)
        return load_or_create_signing_key(settings.resolved_state_dir / AUDIT_KEY_FILE)
    except (OSError, SigningKeyError) as error:
        raise StoreUnavailable(f"the audit signing key cannot be loaded: {error}") from error


def load_admin_token(settings: Settings, hasher: SecretHasher) -> AdminToken:
    if settings.admin_token:
        return AdminToken(hasher.hash(settings.admin_token), None)
    path = settings.resolved_state_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return AdminToken(path.read_text().strip(), None)
    token = new_token()
    token_hash = hasher.hash(token)
    _write_private(path, token_hash + "\n")
    return AdminToken(token_hash, token)


def _the_position(result: object) -> int:
    assert isinstance(result, int), "pass position_of for commands that answer more"
    return result


class Runtime:
    """Everything one API process holds: the ledger, its decision index and the follower."""

    def __init__(self, settings: Settings, *, create_tables: bool | None = None) -> None:
        self.settings = settings
        config = store_config(
            settings.database_url,
            create_table=bool(create_tables),
            pool_size=settings.postgres_pool_size,
            store_timeout=settings.store_timeout,
            reconnect_window=settings.store_reconnect_window,
            conn_max_age=settings.store_conn_max_age,
        )
        if create_tables is not None and not config.is_postgres:
            config.env["CREATE_TABLE"] = "y" if create_tables else "n"
        self.store = config
        try:  # one plain connection first: its failure names the host, port, role or database
            probe(config, need_schema=not create_tables)
        except StoreUnreachable as error:
            raise StoreUnavailable(str(error)) from None
        self.hasher = load_hasher(settings)
        self.token_signer = load_token_signer(settings)
        self.index = DecisionIndex(
            self.hasher, self.token_signer, memo_bytes=settings.decision_memo_bytes
        )
        try:
            self.ledger = Ledger(
                config.env,
                hasher=self.hasher,
                read_port=self.index,
                token_signer=self.token_signer,
            )
        except Exception as error:
            raise StoreUnavailable(f"cannot open the store {config.display}: {error}") from error
        try:
            self.head()  # fail now, not on the first request, when the schema is missing
        except StoreUnavailable:
            self.ledger.close()
            raise
        # Generated only once the store answers, so the one-time token is never lost
        # to a start that failed before it could be printed.
        self.admin = load_admin_token(settings, self.hasher)
        # Decisions answered by /v1/authorize, by outcome and layer (exposed at /metrics).
        self.decision_counts: Counter[tuple[str, str]] = Counter()
        self.follower = LogFollower(self.ledger, self.index, poll_interval=settings.poll_interval)
        self.listener: LogListener | None = None  # LISTEN/NOTIFY on PostgreSQL, once started
        # The SQL read models: which copy is live comes from the registry in the ledger's store.
        self._create_read_models = config.env.get("CREATE_TABLE") == "y"
        self.registry = ProjectionRegistry(self.ledger.recorder.datastore)  # type: ignore[attr-defined]
        if self._create_read_models:
            self.registry.create_table()
        # Snapshots of the decision index, so a start loads one and replays only the tail.
        self.index_snapshots = IndexSnapshots(self.ledger.recorder.datastore, self.hasher)  # type: ignore[attr-defined]
        if self._create_read_models:
            self.index_snapshots.create_table()
        self.index_snapshot_loaded = 0
        """The position of the snapshot this process started from (0: replayed from 0)."""
        try:
            active = self.registry.active()
        except Exception as error:
            self.ledger.close()
            raise StoreUnavailable(f"the projection registry is missing: {error}") from error
        self.temporal = self._worker(TemporalIndexProjection(), active.get("temporal", 1))
        self.as_of = AsOfReader(self.temporal.store)
        signer = CheckpointSigner(load_audit_signing_key(settings))
        self.audit_public_key = signer.public_key
        self.audit_public_key_pem = public_key_pem(signer.public_key).decode()
        self._check_keys(signer)
        self.audit = self._worker(
            AuditTrailProjection(
                signer,
                every_events=settings.audit_checkpoint_every_events,
                every_seconds=settings.audit_checkpoint_every_seconds,
            ),
            active.get("audit", 1),
        )
        # As-of, effective permissions, access review and audit reads: from the replica
        # when there is one (its own copies and tracking), else from the workers' copies.
        self.replica: ReplicaReads | None = self._open_replica()
        if self.replica is not None:
            self.as_of = AsOfReader(self.replica.store("temporal"))
        self._stopping = threading.Event()

    def _open_replica(self) -> ReplicaReads | None:
        """The read-only side on ``MANDATE_READ_DATABASE_URL`` (the primary's schema)."""
        url = self.settings.read_database_url
        if url is None:
            return None
        config = store_config(
            url,
            pool_size=self.settings.postgres_pool_size,
            store_timeout=self.settings.store_timeout,
            reconnect_window=self.settings.store_reconnect_window,
            conn_max_age=self.settings.store_conn_max_age,
        )
        if "POSTGRES_SCHEMA" in self.store.env and "POSTGRES_SCHEMA" not in config.env:
            config.env["POSTGRES_SCHEMA"] = self.store.env["POSTGRES_SCHEMA"]
        try:
            probe(config, need_schema=True)
            return ReplicaReads(
                config.env,
                [self.temporal.projection, self.audit.projection],
                application_name=self.ledger.name,
                mapper=self.ledger.mapper,
            )
        except Exception as error:
            self.ledger.close()
            raise StoreUnavailable(f"the read replica {config.display}: {error}") from error

    @property
    def audit_reads(self) -> ReadModelStore:
        """The audit trail's copy that reads use: the replica's, or the worker's."""
        return self.replica.store("audit") if self.replica is not None else self.audit.store

    @property
    def log_reads(self) -> LogSource:
        """The log that replaying reads use (access review, verify): the replica's, or ours."""
        return self.replica.log if self.replica is not None else self.ledger

    def _check_keys(self, signer: CheckpointSigner) -> None:
        """Refuse to start with keys other than those the store was written with."""
        settings, state = self.settings, self.settings.resolved_state_dir
        where = {
            "hash_key": "MANDATE_HASH_KEY" if settings.hash_key else str(state / KEYS_FILE),
            "token_signing_key": "MANDATE_TOKEN_SIGNING_KEY"
            if settings.token_signing_key
            else str(state / TOKEN_KEY_FILE),
            "audit_signing_key": "MANDATE_AUDIT_SIGNING_KEY_FILE"
            if settings.audit_signing_key_file
            else str(state / AUDIT_KEY_FILE),
        }
        keys = fingerprints(
            self.hasher.keys, self.token_signer.keys, signer.public_key, settings=where
        )
        try:
            check_and_record(self.registry.datastore, keys, create_table=self._create_read_models)
        except KeyMismatch as error:
            self.ledger.close()
            raise StoreUnavailable(str(error)) from error

    def _worker(self, projection: SqlProjection, version: int) -> ProjectionWorker:
        store = open_copy(self.store.env, projection, version, create=self._create_read_models)
        if self._create_read_models:
            self.registry.activate_if_absent(projection.name, version)
        return ProjectionWorker(
            self.ledger,
            store,
            projection,
            poll_interval=max(self.settings.poll_interval, 0.05),
            leases=self._lease if self.store.is_postgres else None,
        )

    def _lease(self, store: ReadModelStore) -> AdvisoryLease:
        """One runner per copy among every process on this schema (projections.store.leadership)."""
        return copy_lease(self.store.env, store)

    @property
    def projection_workers(self) -> list[ProjectionWorker]:
        return [self.temporal, self.audit]

    def start(self) -> None:
        """Load the index's newest snapshot (or replay from 0), then keep everything following."""
        self.restore_index()
        self.index.replaying = True  # nothing serves yet: no cache to invalidate
        try:
            self.follower.catch_up()
        finally:
            self.index.replaying = False
        self.follower.start()
        if self.settings.run_projections:
            for worker in self.projection_workers:
                worker.start()
        wake = [self.follower.wake]
        if self.settings.run_projections:
            wake += [worker.wake for worker in self.projection_workers]
        self.listener = self.listen(wake)
        self._watcher = threading.Thread(
            target=self._watch_registry, name="mandate-registry", daemon=True
        )
        self._watcher.start()
        self._terms = threading.Thread(
            target=self._watch_terms, name="mandate-contract-terms", daemon=True
        )
        self._terms.start()
        if self.settings.index_snapshot_every > 0:
            self._snapshots_watch = threading.Thread(
                target=self._watch_index_snapshots, name="mandate-index-snapshots", daemon=True
            )
            self._snapshots_watch.start()

    def restore_index(self) -> int:
        """Load the newest usable index snapshot into the (fresh) index; its position or 0.

        Any failure (no table yet, no snapshot of this code's format, a MAC that does not
        verify) leaves the index empty: the follower then replays the log from position 0.
        """
        if self.settings.index_snapshot_every <= 0 or self.index.position != 0:
            return 0
        started = time.perf_counter()
        try:
            loaded = self.index_snapshots.load_into(self.index)
        except Exception as error:
            log.warning("no index snapshot loaded (replaying from 0): %s", error)
            return 0
        if loaded:
            seconds = time.perf_counter() - started
            log.info("decision index loaded from its snapshot at %d in %.2f s", loaded, seconds)
        self.index_snapshot_loaded = loaded
        return loaded

    def snapshot_index_if_due(self) -> int | None:
        """Write an index snapshot when the index is ``index_snapshot_every`` past the newest.

        Any process may: two writing at once write two positions (or one, at the same one).
        The index is pickled under the follower's lock (no event applies meanwhile; decisions
        go on), then written in its own transaction. Its position, or None when not due.
        """
        every = self.settings.index_snapshot_every
        if every <= 0 or self.index.position - self.index_snapshots.newest_position() < every:
            return None
        written = self.index_snapshots.write(self.index, snapshot_lock(self.follower))
        log.info("decision index snapshot written at %d (%d bytes)", written.position, written.size)
        return written.position

    def _watch_index_snapshots(self) -> None:
        while not self._stopping.wait(self.settings.index_snapshot_interval):
            try:
                self.snapshot_index_if_due()
            except Exception as error:  # an outage: try again at the next tick
                log.warning("writing an index snapshot failed: %s", error)

    def listen(self, wake: list[Callable[[], None]]) -> LogListener | None:
        """On PostgreSQL, call ``wake`` whenever any process commits events (LISTEN/NOTIFY)."""
        if not self.store.is_postgres or not self.settings.listen:
            return None
        channel = str(self.ledger.recorder.channel_name)  # type: ignore[attr-defined]
        listener = LogListener(self.store.env, channel, wake)
        listener.start()
        return listener

    def record_reached_terms(self, now: datetime | None = None) -> list[int]:
        """Record ``EntrustmentEnded`` for every contract whose term has been reached.

        No decision waits for this: a session through a contract past its ``ends_at`` is
        refused from that instant by the lineage rule. The event is for the trail, so the
        first process that notices records it; the others' attempts record nothing.
        """
        at = now or datetime.now(UTC)
        positions = []
        due = [
            e.id
            for e in list(self.index.entrustments.values())
            if e.ends_at is not None and e.ends_at <= at and not e.ended and e.revoked is None
        ]
        for entrustment_id in due:
            audit = AuditContext(actor="mandate:system", reason="the contract's term was reached")
            with acting_as(audit):
                position = self.ledger.end_entrustment(entrustment_id)
            if position is not None:
                positions.append(position)
        return positions

    def _watch_terms(self) -> None:
        while not self._stopping.wait(self.settings.term_watch_interval):
            try:
                self.record_reached_terms()
            except Exception as error:  # an outage or a race: try again at the next tick
                log.warning("recording reached contract terms failed: %s", error)

    def follow_registry(self) -> None:
        """Move readers and workers to the copy the registry names (after a rebuild)."""
        active = self.registry.active()
        for worker in self.projection_workers:
            version = active.get(worker.projection.name, worker.store.version)
            if version == worker.store.version:
                continue
            store = open_copy(self.store.env, worker.projection, version, create=False)
            old = worker.retarget(store)
            if worker is self.temporal and self.replica is None:
                self.as_of.store = store
            old.close()
            log.info("projection %s now reads %s", worker.projection.name, store.prefix)
        if self.replica is not None:  # the replica's registry: the switch as replicated
            for name, store in self.replica.follow_registry():
                if name == "temporal":
                    self.as_of.store = store
                log.info("the read replica's %s now reads %s", name, store.prefix)

    def rebuild_check(self, name: str) -> Callable[[ReadModelStore], None] | None:
        """What a rebuilt copy of ``name`` must satisfy before readers switch to it.

        A rebuilt audit trail must reproduce every head the old copy signed: each checkpoint
        is compared with the new copy's hash at its position, oldest first, and the first
        difference refuses the switch, naming the chain and the position. The old copy's
        checkpoints are then carried over — they are history, and remain valid.
        """
        if name != "audit":
            return None
        old_store = self.audit.store

        def check(new_store: ReadModelStore) -> None:
            rows = old_store.query(
                "SELECT scope, position, body FROM {p}_checkpoints ORDER BY position, scope"
            )
            for row in rows:  # oldest first: the refusal names the earliest disagreement
                scope, body = row["scope"], json.loads(row["body"])
                if scope == GLOBAL_SCOPE:
                    found = new_store.query(
                        "SELECT hash FROM {p}_records WHERE position <= ?"
                        " ORDER BY position DESC LIMIT 1",
                        (body["position"],),
                    )
                else:
                    found = new_store.query(
                        "SELECT hash FROM {p}_account_records WHERE account_id = ?"
                        " AND position <= ? ORDER BY position DESC LIMIT 1",
                        (scope, body["position"]),
                    )
                head = found[0]["hash"] if found else None
                if head != body["head"]:
                    chain = "the global chain" if scope == GLOBAL_SCOPE else f"account {scope}"
                    raise RebuildRefused(
                        f"{chain} rebuilt from the log differs from the checkpoint signed at "
                        f"position {body['position']}: the log or the old trail was altered "
                        "at or before that position (run `mandate audit verify`)"
                    )
            with new_store.transaction(commit=True) as cursor:
                new_store.executemany(
                    cursor,
                    "INSERT INTO {p}_checkpoints (scope, position, body) VALUES (?, ?, ?)"
                    " ON CONFLICT (scope, position) DO NOTHING",
                    [(r["scope"], r["position"], r["body"]) for r in rows],
                )

        return check

    def projection_lags(self, head: int) -> dict[str, dict[str, object]]:
        """Each SQL projection's copy, position, and lag behind ``head`` in events and seconds.

        The lag in seconds is how long the oldest event it has not applied has been waiting
        (0 when it is caught up), so a stalled worker shows up even when writes are rare.
        ``stalled`` names the event a projection cannot apply (position, type, error).
        """
        lags: dict[str, dict[str, object]] = {}
        for worker in self.projection_workers:
            position = worker.position
            waiting = 0.0
            if position < head:
                pending = self.ledger.recorder.select_notifications(
                    position, 1, inclusive_of_start=False
                )
                # An event that does not decode has no age to tell: the stall names it.
                with contextlib.suppress(Exception):
                    event: Any = self.ledger.mapper.to_domain_event(pending[0])
                    waiting = max(0.0, time.time() - event.timestamp.timestamp())
            stall = worker.known_stall()
            lags[worker.projection.name] = {
                "copy": worker.store.prefix,
                "position": position,
                "lag_events": max(0, head - position),
                "lag_seconds": round(waiting, 3),
                "error": str(worker.last_error) if worker.last_error else None,
                "stalled": stall.as_dict() if stall is not None else None,
                # Who applies it: every process follows, one (the lease's holder) applies.
                "runs_here": worker.leading and worker.running,
            }
        return lags

    def replica_lags(self, head: int) -> dict[str, Any] | None:
        """The read replica behind the primary's ``head``: its log and each copy it holds,
        by position and in seconds (how long the oldest event it lacks has been committed)."""
        if self.replica is None:
            return None
        replica_head = self.replica.head()
        copies: dict[str, dict[str, object]] = {}
        for name, store in self.replica.stores.items():
            position = store.position()
            copies[name] = {
                "copy": store.prefix,
                "position": position,
                "lag_events": max(0, head - position),
                "lag_seconds": self._waiting_since(position, head),
            }
        return {
            "head": replica_head,
            "lag_events": max(0, head - replica_head),
            "lag_seconds": self._waiting_since(replica_head, head),
            "projections": copies,
        }

    def _waiting_since(self, position: int, head: int) -> float:
        """Seconds the first event after ``position`` has been in the log (0 at the head)."""
        if position >= head:
            return 0.0
        pending = self.ledger.recorder.select_notifications(position, 1, inclusive_of_start=False)
        with contextlib.suppress(Exception):  # an event that does not decode has no age
            event: Any = self.ledger.mapper.to_domain_event(pending[0])
            return round(max(0.0, time.time() - float(event.timestamp.timestamp())), 3)
        return 0.0

    def _watch_registry(self) -> None:
        while not self._stopping.wait(self.settings.registry_watch_interval):
            try:
                self.follow_registry()
            except Exception as error:  # an outage: try again at the next tick
                log.warning("reading the projection registry failed: %s", error)

    def stop(self) -> None:
        self._stopping.set()
        if self.listener is not None:
            self.listener.stop()
        self.follower.stop()
        for worker in self.projection_workers:
            worker.stop()
            worker.store.close()
        if self.replica is not None:
            self.replica.close()
        self.ledger.close()

    def write(
        self,
        audit: AuditContext,
        command: Callable[[], T],
        position_of: Callable[[T], int] = _the_position,
    ) -> T:
        """Run a command as ``audit``'s actor; answer once this process has applied it.

        ``position_of`` reads the ledger position from the command's result (most commands
        answer the position itself). Timed into ``mandate_write_duration_seconds`` by outcome.
        """
        started, error = time.perf_counter(), None
        try:
            return self._write(audit, command, position_of)
        except BaseException as raised:
            error = raised
            raise
        finally:
            observe_write(started, error)

    def _write(
        self,
        audit: AuditContext,
        command: Callable[[], T],
        position_of: Callable[[T], int],
    ) -> T:
        with acting_as(audit):
            result = command()
        position = position_of(result)
        try:
            applied = self.follower.wait_for(position, self.settings.write_timeout)
        except (InterfaceError, OperationalError):
            # The store went away after the commit: the write stands, say so with its
            # position, never as an outage that invites a retry into a conflict.
            applied = False
        if not applied:
            raise WriteNotApplied(position)
        return result

    def head(self) -> int:
        try:
            return int(self.ledger.recorder.max_notification_id() or 0)
        except Exception as error:
            raise StoreUnavailable(str(error)) from error
