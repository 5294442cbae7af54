"""The read replica's side, pointed at the primary itself: read-only, its own tracking.

The real primary and hot standby are in ``tests/e2e/test_read_replica.py``; here the same
database stands in for the replica, which shows what no standby could: the replica side
never writes, even where writing would be allowed.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mandate.api.settings import Settings
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.projections.store.sql_projection import open_copy
from tests.integration.runtimes import running

pytestmark = pytest.mark.postgres


def test_the_replica_side_reads_its_own_tracking_and_never_writes(postgres_url: str) -> None:
    with running(postgres_url, read_database_url=postgres_url) as runtime:
        replica = runtime.replica
        assert replica is not None
        with acting_as(AuditContext(actor="mandate:admin")):
            runtime.ledger.open_account("Replica")
        position = runtime.head()
        assert replica.head() >= position
        assert replica.position("audit") == runtime.audit.store.position()
        assert not replica.wait_for("audit", position, 0.05)  # nobody applied it yet
        runtime.audit.catch_up()
        runtime.temporal.catch_up()
        assert replica.wait_for("audit", position, 1.0)
        assert replica.wait_for("temporal", position, 1.0)
        assert replica.wait_for(None, position, 1.0)

        store = replica.store("audit")
        assert runtime.audit_reads is store
        for statement in (
            "CREATE TABLE {p}_intruder (x INTEGER)",
            "DELETE FROM {p}_tracking",
        ):
            with pytest.raises(Exception, match="read-only"):
                store.query(statement)
        with pytest.raises(Exception, match="read-only"), store.transaction(commit=True) as cursor:
            store.record_position(cursor, position + 1)
        assert store.position() == runtime.audit.store.position()

        # A rebuild's switch, once the replica's registry holds it, moves the readers there.
        copy = open_copy(runtime.store.env, runtime.temporal.projection, 2, create=True)
        copy.close()
        runtime.registry.activate("temporal", 2)
        runtime.follow_registry()
        assert runtime.as_of.store is replica.store("temporal")
        assert runtime.as_of.store.prefix == "temporal_v2"


def test_a_read_url_needs_postgresql_on_both_sides(postgres_url: str) -> None:
    with pytest.raises(ValidationError, match="MANDATE_READ_DATABASE_URL"):
        Settings(database_url="sqlite:///x.db", read_database_url=postgres_url)
    with pytest.raises(ValidationError, match="MANDATE_READ_DATABASE_URL"):
        Settings(database_url=postgres_url, read_database_url="sqlite:///x.db")
