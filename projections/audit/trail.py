"""The audit trail: one record per event, in one global hash chain and one chain per account.

Every event of the log becomes a record (``projections.audit.records``): position, ledger
time, the accounts it concerns, actor and credential, event type, target ARN, a summary of
the change, reason, request id, source IP. Its canonical JSON is chained twice:

* globally — ``hash_n = SHA-256(hash_{n-1} ‖ canonical JSON of record_n)`` over all records;
* per account — the same over the records that concern that account, so a tenant can verify
  its own export without seeing anyone else's records. A record naming two accounts is in
  both accounts' chains.

**Checkpoints** anchor the chains: every ``every_events`` events, or once ``every_seconds``
of ledger time have passed, the batch that crosses the line signs, with an Ed25519 key kept
outside the database, one checkpoint for the global chain and one for each account whose
chain moved since the last one — each ``{scope, position, head, time, key_id}`` signed on its
own, so an account's checkpoints reveal nothing of other accounts. Whoever can write the
database but not read the key cannot rewrite history and re-hash it unnoticed: the signed
heads would no longer match.

Everything is written by the projection worker in the batch's transaction with its
tracking position, like every SQL projection here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from mandate.domain.common.ledger_time import from_micros, to_micros
from mandate.projections.audit.chain import (
    GENESIS,
    CheckpointSigner,
    SignedCheckpoint,
    canonical_text,
    chain_hash_of_canonical,
)
from mandate.projections.audit.conventions import AuditRecordError
from mandate.projections.audit.naming import AuditNaming
from mandate.projections.audit.records import audit_record
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.sql_projection import EventNotApplicable, SqlProjection

__all__ = [
    "GLOBAL_SCOPE",
    "AuditQuery",
    "AuditTrailProjection",
    "checkpoints",
    "iter_records",
    "select_records",
]

GLOBAL_SCOPE = "*"

AUDIT_DDL = [
    "CREATE TABLE IF NOT EXISTS {p}_records ("
    " position BIGINT PRIMARY KEY, time_us BIGINT NOT NULL, event_type TEXT NOT NULL,"
    " actor TEXT NOT NULL, target TEXT NOT NULL, record TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {i}_records_time ON {p}_records (time_us)",
    # One row per (account, record that concerns it): the account's own chain.
    "CREATE TABLE IF NOT EXISTS {p}_account_records ("
    " account_id TEXT NOT NULL, position BIGINT NOT NULL, hash TEXT NOT NULL,"
    " PRIMARY KEY (account_id, position))",
    "CREATE TABLE IF NOT EXISTS {p}_checkpoints ("
    " scope TEXT NOT NULL, position BIGINT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (scope, position))",
    # The names of entities as of the last applied event, so records name their targets
    # after a restart without reading history again.
    "CREATE TABLE IF NOT EXISTS {p}_names (entity_id TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


class AuditTrailProjection(SqlProjection):
    """Records, both chains and periodic signed checkpoints."""

    name: ClassVar[str] = "audit"
    ddl: ClassVar[list[str]] = AUDIT_DDL

    def __init__(
        self,
        signer: CheckpointSigner | None = None,
        *,
        every_events: int = 1000,
        every_seconds: float = 300.0,
    ) -> None:
        self.signer = signer
        self.every_events = every_events
        self.every_micros = int(every_seconds * 1_000_000)
        self._reset()

    def _reset(self) -> None:
        self.naming = AuditNaming()
        self.global_head = GENESIS
        self.account_heads: dict[str, str] = {}
        self._moved: set[str] = set()  # accounts whose chain moved since the last checkpoint
        self._checkpoint_position = 0
        self._checkpoint_time = 0
        self._position = 0
        self._time = 0
        self._records: list[tuple[Any, ...]] = []
        self._account_rows: list[tuple[str, int, str]] = []
        self._touched: set[str] = set()
        self._signed: list[SignedCheckpoint] = []

    # -- the worker's protocol -----------------------------------------------------------------
    def load(self, store: ReadModelStore, cursor: Any) -> None:
        self._reset()
        last = store.execute(
            cursor, "SELECT position, time_us, hash FROM {p}_records ORDER BY position DESC LIMIT 1"
        ).fetchone()
        if last is not None:
            self.global_head = last["hash"]
            self._position = int(last["position"])
            self._time = int(last["time_us"])
        heads = store.execute(
            cursor,
            "SELECT a.account_id, a.hash FROM {p}_account_records a JOIN ("
            " SELECT account_id, MAX(position) AS position FROM {p}_account_records"
            " GROUP BY account_id) m ON a.account_id = m.account_id AND a.position = m.position",
        ).fetchall()
        self.account_heads = {row["account_id"]: row["hash"] for row in heads}
        checkpoint = store.execute(
            cursor,
            "SELECT body FROM {p}_checkpoints WHERE scope = ? ORDER BY position DESC LIMIT 1",
            (GLOBAL_SCOPE,),
        ).fetchone()
        if checkpoint is not None:
            body = json.loads(checkpoint["body"])
            self._checkpoint_position = int(body["position"])
            self._checkpoint_time = to_micros(datetime.fromisoformat(body["time"]))
            moved = store.execute(
                cursor,
                "SELECT DISTINCT account_id FROM {p}_account_records WHERE position > ?",
                (self._checkpoint_position,),
            ).fetchall()
            self._moved = {row["account_id"] for row in moved}
        else:
            self._moved = set(self.account_heads)
        names = store.execute(cursor, "SELECT entity_id, value FROM {p}_names").fetchall()
        self.naming.restore({row["entity_id"]: json.loads(row["value"]) for row in names})

    def apply(self, event: Any, position: int, ledger_time: datetime) -> None:
        try:
            record = audit_record(event, position, ledger_time, self.naming)
        except (AuditRecordError, AttributeError, KeyError, TypeError, ValueError) as error:
            # An event whose state does not say what its topic promises (an altered log) is
            # not applicable either: stop, naming it, rather than chain a guess.
            raise EventNotApplicable(position, repr(error)) from error
        self._touched.update(self.naming.touched_by(event))
        text = canonical_text(record.as_dict())  # encoded once: hashed twice, stored
        canonical = text.encode()
        self.global_head = chain_hash_of_canonical(self.global_head, canonical)
        micros = to_micros(ledger_time)
        self._records.append(
            (
                position,
                micros,
                record.event_type,
                record.actor,
                record.target,
                text,
                self.global_head,
            )
        )
        for account in record.accounts:
            head = chain_hash_of_canonical(self.account_heads.get(account, GENESIS), canonical)
            self.account_heads[account] = head
            self._account_rows.append((account, position, head))
            self._moved.add(account)
        self._position = position
        self._time = micros
        if self._checkpoint_due():
            self._signed.extend(self._sign_heads())

    def flush(self, store: ReadModelStore, cursor: Any) -> None:
        store.insert_rows(
            cursor,
            "_records",
            ("position", "time_us", "event_type", "actor", "target", "record", "hash"),
            self._records,
        )
        store.insert_rows(
            cursor, "_account_records", ("account_id", "position", "hash"), self._account_rows
        )
        snapshot = self.naming.snapshot(self._touched)
        store.executemany(
            cursor,
            "INSERT INTO {p}_names (entity_id, value) VALUES (?, ?)"
            " ON CONFLICT (entity_id) DO UPDATE SET value = excluded.value",
            [
                (entity, json.dumps(value))
                for entity, value in snapshot.items()
                if value is not None
            ],
        )
        store.executemany(
            cursor,
            "DELETE FROM {p}_names WHERE entity_id = ?",
            [(entity,) for entity, value in snapshot.items() if value is None],
        )
        self._insert_checkpoints(store, cursor, self._signed)
        self._records = []
        self._account_rows = []
        self._touched = set()
        self._signed = []

    def discard(self) -> None:
        """Forget a rolled-back batch (the worker reloads the running state after it)."""
        self._records = []
        self._account_rows = []
        self._touched = set()
        self._signed = []

    # -- checkpoints ---------------------------------------------------------------------------
    def _checkpoint_due(self) -> bool:
        if self.signer is None:
            return False
        if self._checkpoint_time == 0:
            self._checkpoint_time = self._time  # the trail's first event starts the clock
        return (
            self._position - self._checkpoint_position >= self.every_events
            or self._time - self._checkpoint_time >= self.every_micros
        )

    def checkpoint_now(self, store: ReadModelStore) -> list[SignedCheckpoint]:
        """Sign the current heads at once (an operator's request, or the end of a rebuild)."""
        signed = self._sign_heads()
        with store.transaction(commit=True) as cursor:
            self._insert_checkpoints(store, cursor, signed)
        return signed

    def _sign_heads(self) -> list[SignedCheckpoint]:
        """Checkpoints of the global chain and of every account chain that moved."""
        if self.signer is None or self._position == 0:
            return []
        time = from_micros(self._time).isoformat()
        signed = [self.signer.sign(GLOBAL_SCOPE, self._position, self.global_head, time)]
        signed += [
            self.signer.sign(account, self._position, self.account_heads[account], time)
            for account in sorted(self._moved)
        ]
        self._checkpoint_position = self._position
        self._checkpoint_time = self._time
        self._moved = set()
        return signed

    @staticmethod
    def _insert_checkpoints(
        store: ReadModelStore, cursor: Any, signed: list[SignedCheckpoint]
    ) -> None:
        store.executemany(
            cursor,
            "INSERT INTO {p}_checkpoints (scope, position, body) VALUES (?, ?, ?)"
            " ON CONFLICT (scope, position) DO NOTHING",
            [(c.scope, c.position, json.dumps(c.as_dict())) for c in signed],
        )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``GET …/audit-events``: all optional; ``account_id`` None means global."""

    account_id: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    principal: str | None = None
    event_type: str | None = None
    target_prefix: str | None = None
    after_position: int = 0


def select_records(store: ReadModelStore, query: AuditQuery, limit: int) -> list[dict[str, Any]]:
    """Records in position order matching ``query``, with the chain hash of their scope."""
    if query.account_id is None:
        statement = "SELECT r.position, r.record, r.hash FROM {p}_records r WHERE r.position > ?"
        params: list[Any] = [query.after_position]
    else:
        statement = (
            "SELECT r.position, r.record, a.hash FROM {p}_account_records a"
            " JOIN {p}_records r ON r.position = a.position"
            " WHERE a.account_id = ? AND a.position > ?"
        )
        params = [query.account_id, query.after_position]
    if query.time_from is not None:
        statement += " AND r.time_us >= ?"
        params.append(to_micros(query.time_from))
    if query.time_to is not None:
        statement += " AND r.time_us < ?"
        params.append(to_micros(query.time_to))
    if query.principal is not None:
        statement += " AND (r.actor = ? OR r.target = ?)"
        params += [query.principal, query.principal]
    if query.event_type is not None:
        statement += " AND r.event_type = ?"
        params.append(query.event_type)
    if query.target_prefix is not None:
        statement += " AND substr(r.target, 1, ?) = ?"
        params += [len(query.target_prefix), query.target_prefix]
    statement += " ORDER BY r.position LIMIT ?"
    params.append(limit)
    rows = store.query(statement, tuple(params))
    return [{**json.loads(row["record"]), "hash": row["hash"]} for row in rows]


def iter_records(
    store: ReadModelStore, query: AuditQuery, page: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every record matching ``query``, page by page (for exports and verification)."""
    after = query.after_position
    while True:
        rows = select_records(
            store,
            AuditQuery(
                query.account_id,
                query.time_from,
                query.time_to,
                query.principal,
                query.event_type,
                query.target_prefix,
                after,
            ),
            page,
        )
        yield from rows
        if len(rows) < page:
            return
        after = int(rows[-1]["position"])


def checkpoints(store: ReadModelStore, scope: str) -> list[SignedCheckpoint]:
    rows = store.query(
        "SELECT body FROM {p}_checkpoints WHERE scope = ? ORDER BY position", (scope,)
    )
    return [SignedCheckpoint.from_dict(json.loads(row["body"])) for row in rows]
