"""Reads from a PostgreSQL streaming replica: the log, the registry and the SQL copies.

A hot standby holds everything the primary committed, replayed in commit order: the events
table, ``mandate_projection_versions`` and every copy's tables *with their tracking rows*. So
the replica's own tracking says exactly what its copy of a projection holds, whatever the
primary's worker has since applied: a read served here waits (bounded) for that tracking —
never the primary's — to reach the position it must include, and is refused otherwise.

Everything here is opened read-only: no ``CREATE TABLE``, no tracking writes, and every
session carries ``default_transaction_read_only`` (a standby refuses writes anyway; the
setting also keeps a primary named as its own "replica" in development read-only).
The projections' writers, the decision index and every write stay on the primary.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, Mapper
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment

from mandate.projections.store.read_model_store import ProjectionRegistry, ReadModelStore
from mandate.projections.store.sql_projection import SqlProjection, open_copy

__all__ = ["READ_ONLY_OPTIONS", "LogSource", "ReplicaReads", "read_only"]

READ_ONLY_OPTIONS = "-c default_transaction_read_only=on"
_POLL = 0.02  # seconds between looks at the replica's tracking while a read waits


class LogSource(Protocol):
    """What replaying the log needs: its recorder and the mapper that decodes its events
    (the ledger ``Application`` on the primary, ``ReplicaLog`` on a replica)."""

    @property
    def recorder(self) -> ApplicationRecorder: ...

    @property
    def mapper(self) -> Mapper[UUID]: ...


class ReplicaLog:
    """The log as the replica holds it, decoded by the ledger's own mapper."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID]) -> None:
        self._recorder = recorder
        self._mapper = mapper

    @property
    def recorder(self) -> ApplicationRecorder:
        return self._recorder

    @property
    def mapper(self) -> Mapper[UUID]:
        return self._mapper


def read_only(datastore: Any) -> None:
    """Make every session of ``datastore``'s pool read-only (before the pool opens)."""
    if isinstance(datastore, PostgresDatastore) and isinstance(datastore.pool.kwargs, dict):
        datastore.pool.kwargs["options"] = READ_ONLY_OPTIONS


class ReplicaReads:
    """The read side on a replica: its log, its registry, one read-only store per copy.

    ``env`` is the ledger's store environment pointed at the replica (same schema);
    ``application_name`` names the ledger's tables, ``mapper`` decodes its events.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        projections: Iterable[SqlProjection],
        *,
        application_name: str,
        mapper: Mapper[UUID],
    ) -> None:
        self.env = {**env, "CREATE_TABLE": "n"}
        factory = InfrastructureFactory.construct(Environment(application_name, self.env))
        recorder = factory.application_recorder()
        read_only(getattr(recorder, "datastore", None))
        self.log = ReplicaLog(recorder, mapper)
        self.registry = ProjectionRegistry(recorder.datastore)  # type: ignore[attr-defined]
        self.projections = {projection.name: projection for projection in projections}
        self.stores: dict[str, ReadModelStore] = {}
        try:
            active = self.registry.active()
            for name, projection in self.projections.items():
                self.stores[name] = self._open(projection, active.get(name, 1))
        except Exception:
            self.close()
            raise

    def _open(self, projection: SqlProjection, version: int) -> ReadModelStore:
        store = open_copy(self.env, projection, version, create=False)
        read_only(store.recorder.datastore)
        return store

    def store(self, name: str) -> ReadModelStore:
        return self.stores[name]

    def follow_registry(self) -> list[tuple[str, ReadModelStore]]:
        """Reopen each copy the replica's registry now names (a rebuild switched it, and the
        switch has replicated); answer the new stores. The old ones are closed."""
        active = self.registry.active()
        moved = []
        for name, projection in self.projections.items():
            version = active.get(name, self.stores[name].version)
            if version == self.stores[name].version:
                continue
            old, self.stores[name] = self.stores[name], self._open(projection, version)
            old.close()
            moved.append((name, self.stores[name]))
        return moved

    # -- positions ------------------------------------------------------------------------------
    def head(self) -> int:
        """The last position of the log the replica has replayed."""
        return int(self.log.recorder.max_notification_id() or 0)

    def position(self, name: str) -> int:
        """The last position the replica's copy of ``name`` holds (its replicated tracking)."""
        return self.stores[name].position()

    def wait_for(self, name: str | None, position: int, timeout: float) -> bool:
        """Wait (bounded) until the replica's copy of ``name`` — or its log, for ``None`` —
        holds ``position``; False when it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            reached = self.head() if name is None else self.position(name)
            if reached >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        datastore = getattr(self.log.recorder, "datastore", None) if hasattr(self, "log") else None
        if isinstance(datastore, PostgresDatastore):
            datastore.close()
