"""The composition root: settings → store → ledger, decision index and its follower, the SQL
projections' workers, the read replica; starting, stopping, writing and the background duties.

The secrets come from ``api.startup.local_keys``, the keyring that seals issued secrets from
``api.startup.secret_keys``; the lag reports from
``api.observability.lags``; the audit trail's rebuild check from ``api.rebuild_checks``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from eventsourcing.persistence import InterfaceError, OperationalError

from mandate.api.idempotency import Idempotency
from mandate.api.jwks_fetch import HttpJwksSource
from mandate.api.observability.lags import projection_lags, replica_lags
from mandate.api.observability.metrics import observe_write
from mandate.api.observability.security_events import open_security_events
from mandate.api.outages import StoreUnavailable, WriteNotApplied
from mandate.api.rebuild_checks import audit_rebuild_check
from mandate.api.rpc.secrets import SealedSecrets, SecretLookup
from mandate.api.settings import Settings, store_config
from mandate.api.startup.key_fingerprints import KeyMismatch, check_and_record, fingerprints
from mandate.api.startup.local_keys import (
    AdminToken,
    key_locations,
    load_admin_token,
    load_audit_signing_key,
    load_hasher,
    load_token_signer,
)
from mandate.api.startup.secret_keys import open_keyring
from mandate.api.startup.store_checks import StoreUnreachable, probe
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.ledger.application import Ledger, Positioned
from mandate.domain.ledger.idempotency import GuardedWrite, guarded_by
from mandate.projections.audit.chain import CheckpointSigner, public_key_pem
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.snapshots import IndexSnapshots, snapshot_lock
from mandate.projections.history.as_of import AsOfReader
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.follower import LogFollower
from mandate.projections.store.idempotency import IdempotencyKeys
from mandate.projections.store.leadership import AdvisoryLease, copy_lease
from mandate.projections.store.log_notifications import LogListener
from mandate.projections.store.nonces import open_shared_nonces
from mandate.projections.store.read_model_store import ProjectionRegistry, ReadModelStore
from mandate.projections.store.read_replica import LogSource, ReplicaReads
from mandate.projections.store.sql_projection import ProjectionWorker, SqlProjection, open_copy

__all__ = ["AdminToken", "Runtime", "StoreUnavailable", "WriteNotApplied"]

log = logging.getLogger("mandate")
R = TypeVar("R", bound=Positioned)


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
            self.ledger.jwks_source = HttpJwksSource()  # OIDC providers' keys given by URL
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
        # The secrets signed calls are checked with: unsealed from the index on demand.
        self.secret_lookup: SecretLookup = SealedSecrets(self.index)
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
        # Refused calls and failed authentications: a log of their own, not events.
        datastore = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        self.security_events = open_security_events(datastore, settings, self._create_read_models)
        self.nonces = open_shared_nonces(datastore, self._create_read_models)  # all processes'
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
        self._open_keyring()
        # Idempotency keys: their rows are written with the events (api.idempotency).
        keys = IdempotencyKeys(self.ledger.recorder.datastore)  # type: ignore[attr-defined]
        if self._create_read_models:
            keys.create_table()
        self.idempotency = Idempotency(
            keys,
            ttl=settings.idempotency_ttl_seconds,
            pending_window=settings.write_timeout + 10.0,
            keyring=lambda: getattr(self, "keyring", None),
        )
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
        where = key_locations(self.settings)
        keys = fingerprints(
            self.hasher.keys, self.token_signer.keys, signer.public_key, settings=where
        )
        try:
            check_and_record(self.registry.datastore, keys, create_table=self._create_read_models)
        except KeyMismatch as error:
            self.ledger.close()
            raise StoreUnavailable(str(error)) from error

    def _open_keyring(self) -> None:
        """The keyring that seals every secret the ledger issues (bound to its AccessKeyId)
        and opens them for the index to verify signatures.

        Its data keys live in the ledger's store (their table created as the read models'
        are), so it opens here, after the key fingerprints are checked and before anything is
        written or served; a KEK that does not open them refuses the start in one line.
        """
        try:
            self.keyring = open_keyring(
                self.settings, self.registry.datastore, create_table=self._create_read_models
            )
        except StoreUnavailable:
            self.ledger.close()
            raise
        self.ledger.sealer = self.keyring
        self.index.keyring = self.keyring

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
        settings = self.settings
        self._watch(
            settings.registry_watch_interval,
            self.follow_registry,
            "registry",
            "reading the projection registry",
        )
        self._watch(
            settings.term_watch_interval,
            self.record_reached_terms,
            "contract-terms",
            "recording reached contract terms",
        )
        purge = self.security_events.purge_expired
        self._watch(settings.security_log_purge_interval, purge, "security-log", "purging it")
        if settings.index_snapshot_every > 0:
            self._watch(
                settings.index_snapshot_interval,
                self.snapshot_index_if_due,
                "index-snapshots",
                "writing an index snapshot",
            )

    def _watch(self, interval: float, duty: Callable[[], object], name: str, doing: str) -> None:
        """Run ``duty`` every ``interval`` seconds on the daemon thread ``mandate-<name>`` until
        ``stop``; a failure (an outage, a race) is logged and tried again at the next tick."""

        def run() -> None:
            while not self._stopping.wait(interval):
                try:
                    duty()
                except Exception as error:
                    log.warning("%s failed: %s", doing, error)

        threading.Thread(target=run, name=f"mandate-{name}", daemon=True).start()

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
        for entrustment_id in self.index.entrustments_past_term(at):
            audit = AuditContext(actor="mandate:system", reason="the contract's term was reached")
            with acting_as(audit):
                ended = self.ledger.end_entrustment(entrustment_id)
            if ended is not None:
                positions.append(ended.position)
        return positions

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
                self.as_of = AsOfReader(store)  # a new reader: its statements name the copy
            old.close()
            log.info("projection %s now reads %s", worker.projection.name, store.prefix)
        if self.replica is not None:  # the replica's registry: the switch as replicated
            for name, store in self.replica.follow_registry():
                if name == "temporal":
                    self.as_of = AsOfReader(store)
                log.info("the read replica's %s now reads %s", name, store.prefix)

    def rebuild_check(self, name: str) -> Callable[[ReadModelStore], None] | None:
        """What a rebuilt copy of ``name`` must satisfy before readers switch to it
        (``api.rebuild_checks``: the audit trail must reproduce every head it signed)."""
        return audit_rebuild_check(self.audit.store) if name == "audit" else None

    def projection_lags(self, head: int) -> dict[str, dict[str, object]]:
        """Each SQL projection's lag behind ``head`` (``api.observability.lags``)."""
        return projection_lags(self.ledger, self.projection_workers, head)

    def replica_lags(self, head: int) -> dict[str, Any] | None:
        """The read replica's lag behind ``head``; None without one."""
        return None if self.replica is None else replica_lags(self.ledger, self.replica, head)

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
        self.security_events.stop()
        self.ledger.close()

    def write(self, audit: AuditContext, command: Callable[[], R]) -> R:
        """Run a command as ``audit``'s actor; answer once this process has applied it.

        Every ledger command answers a ``Positioned`` result (``domain.ledger.results``):
        its ``position`` is what is waited for. Timed into ``mandate_write_duration_seconds``
        by outcome.
        """
        # A retry with an Idempotency-Key is answered here, without running the command.
        guard = self.idempotency.begin(audit.actor)
        started, error = time.perf_counter(), None
        try:
            return self._write(audit, command, guard)
        except BaseException as raised:
            error = raised
            raise
        finally:
            observe_write(started, error)

    def _write(
        self, audit: AuditContext, command: Callable[[], R], guard: GuardedWrite | None = None
    ) -> R:
        with acting_as(audit), guarded_by(guard) if guard is not None else nullcontext():
            result = command()
        position = result.position
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
