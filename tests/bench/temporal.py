"""How fast the temporal index is rebuilt, and what an as-of decision costs as history grows.

Run ``python -m tests.bench.temporal`` (``--quick`` for a short run, ``--skip-postgres`` for
SQLite only). It prints a markdown table per store, then a summary line.

Each store gets a fresh ledger through ``api.runtime.Runtime`` (projections not running):
SQLite in a temporary file, PostgreSQL in a schema ``mandate_bench_<hex>`` made for the run
and dropped at its end (skipped, with a note, when the server does not answer).

The history. One account, 200 users, 10 groups and 20 custom policies are made first; then
rounds of churn: Custom and System policies attached to and detached from users and groups,
users added to and removed from groups, new policy versions (the oldest non-default one is
deleted when a policy has five), default versions switched, and AccessKeys created, disabled
and enabled. Each principal's attachments and memberships stay near a fixed size, so a
user's policy set is about as large at 1k events as at 50k and only the history behind it
grows. To write fast, the commands are bypassed: aggregates are created or kept in memory,
their domain methods are called (guards included) and ``ledger.save(*aggregates)`` commits
a few hundred at a time inside ``acting_as(...)``. Every event is a genuine ledger event;
name claims are saved with what they name, as the commands do.

(1) Rebuild rate. At each history size a new copy of the temporal index (``open_copy``,
a version no reader uses) is fed from position 0 by ``ProjectionWorker(...).catch_up()``
(batches of 1,000, each committed with its tracking; COPY on PostgreSQL): 3 runs on fresh
copies, each dropped after; the median events/s is shown. Two ceilings are measured the same
way: reading the log alone (``select_notifications`` + ``mapper.to_domain_event``, 1,000 at
a time), and reading plus ``TemporalIndexProjection.apply`` and, per batch, its ``flush``
into a store that writes nothing (rows built, no SQL; flushing per batch as the worker does
keeps only the open facts in memory, so garbage collection costs what it does in a real
rebuild).

The audit trail is rebuilt the same way, as the runtime builds it: a fresh
``AuditTrailProjection(CheckpointSigner(<new Ed25519 key>), every_events=1000)`` given both
to ``open_copy`` and to the worker, 3 runs, median; at the largest size the last copy is
also checked once with ``projections.audit.verify.verify_trail`` against the log and its
signed checkpoints (it must pass and check every event) before it is dropped.

(2) As-of latency. The runtime's own temporal copy is caught up at 1k, 10k and N events
(the history is built incrementally and measured after each size). Then, for 2,000 samples,
a random user (as an ARN) at a random instant after the set-up is resolved with
``AsOfReader.principal_for_arn`` and decided with ``AsOfReader.decide`` (one of six
requests). Instants are the ledger times of random events — drawn over events, not over the
clock, which runs at a different rate on each store. Each sample is timed alone with
``time.perf_counter_ns`` (garbage collection paused, as timeit does). The reader's
``PolicyCompiler`` caches every policy version it compiles; the share of samples that
compiled one first is shown, and the same samples are timed again once all are compiled —
the as-of cost without first compilations (the history makes a new policy version every ten
events or so, so at N most instants see versions no earlier sample compiled).

What a decision costs, beside time, is measured on a second pass over 300 of the samples,
with the store's ``execute`` wrapped. The index holds one fact per subject and kind at any
instant (memberships and attachments are one set-valued fact per principal, policy facts
hold the default version, documents are in ``{p}_documents``), and the reader looks up "the
fact of each subject at T" as one backward index step per subject (``AT_POSTGRES``'s
LATERAL, ``AT_SQLITE``'s correlated rowid subquery, ``_NAMED_AT`` for the user's name) plus
one primary-key lookup per (policy, default version) document. So the table shows:

* SQL statements per decision, and the index lookups they ask for (subjects in the VALUES
  lists, names, document pairs) — both depend on the user's groups and policies, not on
  the length of history;
* SQLite: the ``EXPLAIN QUERY PLAN`` of every distinct statement run — each access to a
  table must be a ``SEARCH`` (no ``SCAN`` of a table, no temporary B-tree, i.e. no sort in
  place of the backward step) — and the VM steps per decision: ticks of a progress handler
  set to every step, which SQLite calls at its loops' jumps, so they follow the rows stepped
  through (they would grow if a lookup walked a subject's history);
* PostgreSQL: each statement run again under ``EXPLAIN (ANALYZE, BUFFERS)`` — the rows its
  scans of the index tables produced (≈ one per lookup when each is one index step;
  PostgreSQL rounds per-loop figures), the buffer pages touched (grows only with the
  B-tree's depth), and whether any plan has a Seq Scan or a Sort. These are custom plans
  for the literal values; the prepared statements psycopg makes after five runs may use a
  generic plan.

The former "fact rows the index ranges walk" row is gone: it counted rows with
``valid_from <= T`` per subject, the range the old ``valid_from <= T AND (valid_to IS NULL
OR valid_to > T)`` predicate walked; the new lookups stop at the first row of that range.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate
from psycopg import sql

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.domain.common.arns import user_arn
from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.ledger_time import from_micros
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import AccessKeyStatus, Group, User
from mandate.domain.identity.secrets import new_access_key_id, new_access_key_secret
from mandate.domain.permissions.attachments import (
    MAX_CUSTOM_ATTACHMENTS,
    Attachment,
    PolicyType,
)
from mandate.domain.permissions.managed_policies import MAX_POLICY_VERSIONS, ManagedPolicy
from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import AccessRequest
from mandate.domain.policy.system_policies import SYSTEM_POLICIES
from mandate.projections.audit.chain import CheckpointSigner
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.audit.verify import verify_trail
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.read_model_store import Dialect
from mandate.projections.store.rebuild import open_copy
from mandate.projections.store.sql_projection import ProjectionWorker
from tests.bench.summary import record

ACTOR = AuditContext(actor="mandate:admin", request_id="bench-temporal")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "mandate_bench_"
USERS = 200
GROUPS = 10
POLICIES = 20
SERVICES = ("oss", "ecs", "rds", "kms", "vpc", "log")
SYSTEM_NAMES = tuple(sorted(SYSTEM_POLICIES))[:4]
# Sizes each principal's attachments and memberships hover around (min, max).
# The set-up gives each user 1 direct policy and 1 group, each group 2 policies: the middle of
# these ranges, so a user's policy set is as large at the first measured size as at the last.
USER_DIRECT = (0, 2)
USER_GROUPS = (0, 2)
GROUP_POLICIES = (1, 3)
SAVE_EVERY = 400  # events per group commit
REBUILD_TARGET = 20_000  # events/s, the roadmap's target for projection rebuilds
SOURCE = "temporal"  # its rows in ``python -m tests.bench``'s summary
REBUILD_RUNS = 3
REBUILD_BATCH = 1000
COPY_VERSION = 900  # rebuilt copies are temporal_v900, audit_v900, ...: no reader uses them
AUDIT_EVERY = 1000  # events between signed audit checkpoints (the runtime's default)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _document(account_id: str, policy: int, version: int) -> dict[str, Any]:
    """Four statements; each version of a policy differs (its Allow swaps services)."""
    service = SERVICES[(policy + version) % len(SERVICES)]
    other = SERVICES[(policy + 2 * version + 1) % len(SERVICES)]
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [f"{service}:Get*", f"{service}:List*"],
                "Resource": f"acs:{service}:*:{account_id}:*",
            },
            {
                "Effect": "Allow",
                "Action": [f"{other}:Describe*", f"{other}:Put*"],
                "Resource": f"acs:{other}:cn-*:{account_id}:team-{policy}/*",
            },
            {
                "Effect": "Deny",
                "Action": f"{service}:Delete*",
                "Resource": f"acs:{service}:*:{account_id}:prod-*",
            },
            {
                "Effect": "Allow",
                "Action": f"{other}:*",
                "Resource": f"acs:{other}:*:{account_id}:sandbox-{policy}-v{version}/*",
                "Condition": {"Bool": {"acs:SecureTransport": "true"}},
            },
        ],
    }


def _canonical(document: dict[str, Any]) -> str:
    return parse_policy_document(document).canonical_json()


# -- the history -------------------------------------------------------------------------------


@dataclass
class History:
    """Writes genuine ledger events quickly: aggregates in memory, many per ``save``."""

    runtime: Runtime
    rng: random.Random
    account_id: str = ""
    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    policies: list[ManagedPolicy] = field(default_factory=list)
    policy_numbers: dict[str, int] = field(default_factory=dict)
    setup_events: int = 0
    setup_end_micros: int = 0
    write_seconds: float = 0.0
    _dirty: dict[Any, Aggregate] = field(default_factory=dict)
    _pending: int = 0

    @property
    def head(self) -> int:
        return int(self.runtime.ledger.recorder.max_notification_id() or 0)

    def _touch(self, *aggregates: Aggregate, events: int = 1) -> None:
        for aggregate in aggregates:
            self._dirty[aggregate.id] = aggregate
        self._pending += events

    def _save(self) -> None:
        if self._dirty:
            started = time.perf_counter()
            with acting_as(ACTOR):
                self.runtime.ledger.save(*self._dirty.values())
            self.write_seconds += time.perf_counter() - started
        self._dirty = {}
        self._pending = 0

    def set_up(self) -> None:
        ledger = self.runtime.ledger
        started = time.perf_counter()
        with acting_as(ACTOR):
            self.account_id = ledger.open_account("Bench").account_id
            account = self.account_id
            for i in range(POLICIES):
                document = _canonical(_document(account, i, 1))
                policy = ManagedPolicy(
                    account_id=account, policy_name=f"P{i:02d}", description=None, document=document
                )
                claim = NameClaim(
                    account_id=account, kind="policy", name=policy.policy_name, entity_id=policy.id
                )
                self.policies.append(policy)
                self.policy_numbers[policy.policy_name] = i
                self._touch(policy, claim, events=2)
            for i in range(GROUPS):
                group = Group(account_id=account, group_name=f"g{i:02d}", comments=None)
                claim = NameClaim(
                    account_id=account, kind="group", name=group.group_name, entity_id=group.id
                )
                self.groups.append(group)
                self._touch(group, claim, events=2)
                for policy in self.rng.sample(self.policies, 2):
                    group.attach_policy(_custom(policy))
                    self._touch(group)
            for i in range(USERS):
                user = User(account_id=account, user_name=f"u{i:03d}", display_name=None)
                claim = NameClaim(
                    account_id=account, kind="user", name=user.user_name, entity_id=user.id
                )
                self.users.append(user)
                self._touch(user, claim, events=2)
                group = self.rng.choice(self.groups)
                user.add_to_group(group.id, group.group_name)
                user.attach_policy(_custom(self.rng.choice(self.policies)))
                self._touch(user, events=2)
        self.write_seconds += time.perf_counter() - started
        self._save()
        self.setup_events = self.head
        self.runtime.temporal.catch_up()
        rows = self.runtime.temporal.store.query("SELECT MAX(valid_from) AS t FROM {p}_facts")
        self.setup_end_micros = int(rows[0]["t"])

    def grow(self, target: int) -> None:
        """Churn until the log holds ``target`` events (one or two more at most)."""
        head = self.head
        steps: list[tuple[float, Callable[[], None]]] = [
            (0.30, self._user_attachment),
            (0.15, self._group_attachment),
            (0.30, self._membership),
            (0.10, self._new_version),
            (0.10, self._switch_default),
            (0.05, self._access_key),
        ]
        weights = [w for w, _ in steps]
        actions = [a for _, a in steps]
        with acting_as(ACTOR):
            while head + self._pending < target:
                self.rng.choices(actions, weights)[0]()
                if self._pending >= SAVE_EVERY:
                    pending = self._pending
                    self._save()
                    head += pending
        self._save()

    # -- churn steps ---------------------------------------------------------------------------
    def _attachment_step(self, holder: User | Group, bounds: tuple[int, int]) -> None:
        attached = list(holder.attachments)
        if _grows(len(attached), bounds, self.rng):
            if self.rng.random() < 0.15:
                attachment = Attachment(PolicyType.SYSTEM, self.rng.choice(SYSTEM_NAMES), None)
            else:
                attachment = _custom(self.rng.choice(self.policies))
            customs = sum(1 for a in holder.attachments.values() if a.policy_type == "Custom")
            if attachment.key in holder.attachments or (
                attachment.policy_type is PolicyType.CUSTOM and customs >= MAX_CUSTOM_ATTACHMENTS
            ):
                return
            holder.attach_policy(attachment)
        else:
            holder.detach_policy(self.rng.choice(attached))
        self._touch(holder)

    def _user_attachment(self) -> None:
        self._attachment_step(self.rng.choice(self.users), USER_DIRECT)

    def _group_attachment(self) -> None:
        self._attachment_step(self.rng.choice(self.groups), GROUP_POLICIES)

    def _membership(self) -> None:
        user = self.rng.choice(self.users)
        if _grows(len(user.groups), USER_GROUPS, self.rng):
            group = self.rng.choice(self.groups)
            if group.id in user.groups:
                return
            user.add_to_group(group.id, group.group_name)
        else:
            user.remove_from_group(self.rng.choice(list(user.groups)))
        self._touch(user)

    def _new_version(self) -> None:
        policy = self.rng.choice(self.policies)
        events = 1
        if len(policy.versions) >= MAX_POLICY_VERSIONS:
            others = [v for v in policy.versions if v != policy.default_version]
            policy.delete_version(others[0])  # the oldest non-default one
            events += 1
        number = self.policy_numbers[policy.policy_name]
        document = _canonical(_document(self.account_id, number, policy.next_version_number))
        policy.create_version(document, set_as_default=self.rng.random() < 0.5)
        self._touch(policy, events=events)

    def _switch_default(self) -> None:
        policy = self.rng.choice(self.policies)
        others = [v for v in policy.versions if v != policy.default_version]
        if not others:
            self._new_version()
            return
        policy.set_default_version(self.rng.choice(others))
        self._touch(policy)

    def _access_key(self) -> None:
        user = self.rng.choice(self.users)
        if not user.access_keys:
            user.create_access_key(new_access_key_id("LTAI"), _secret_hash(self.runtime))
        else:
            key = next(iter(user.access_keys.values()))
            flipped = (
                AccessKeyStatus.INACTIVE
                if key.status is AccessKeyStatus.ACTIVE
                else AccessKeyStatus.ACTIVE
            )
            user.set_access_key_status(key.access_key_id, flipped)
        self._touch(user)


def _grows(count: int, bounds: tuple[int, int], rng: random.Random) -> bool:
    """Whether a step adds (else removes), keeping ``count`` within ``bounds``."""
    low, high = bounds
    if count <= low:
        return True
    if count >= high:
        return False
    return rng.random() < 0.5


def _custom(policy: ManagedPolicy) -> Attachment:
    return Attachment(PolicyType.CUSTOM, policy.policy_name, policy.id)


def _secret_hash(runtime: Runtime) -> str:
    return runtime.hasher.hash(new_access_key_secret())


# -- (1) rebuild rate --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    read: float  # events/s: select_notifications + to_domain_event
    apply: float  # events/s: read + TemporalIndexProjection.apply + flush, no SQL writes
    rebuild: float  # events/s: ProjectionWorker.catch_up into a fresh copy
    rebuild_seconds: float
    facts: int


class _NoWrites:
    """A store that writes nothing: ``flush`` builds its rows and hands them over, no SQL."""

    dialect = Dialect("sqlite")  # closes go through ``executemany``, which does nothing here

    def executemany(self, cursor: Any, statement: str, rows: list[Any]) -> None:
        pass

    def insert_rows(self, cursor: Any, table: str, columns: Any, rows: list[Any]) -> None:
        pass


def _read_all(
    runtime: Runtime,
    apply: Callable[[Any, int], None] | None = None,
    after_batch: Callable[[], None] | None = None,
) -> int:
    recorder, mapper = runtime.ledger.recorder, runtime.ledger.mapper
    position = count = 0
    while True:
        notifications = recorder.select_notifications(
            position, REBUILD_BATCH, inclusive_of_start=False
        )
        if not notifications:
            return count
        for notification in notifications:
            event = mapper.to_domain_event(notification)
            if apply is not None:
                apply(event, int(notification.id))
        if after_batch is not None:
            after_batch()
        count += len(notifications)
        position = int(notifications[-1].id)


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def measure_rebuild(runtime: Runtime, events: int, *, version: int) -> Rates:
    reads = [_timed(lambda: _read_all(runtime))[0] for _ in range(REBUILD_RUNS)]

    def read_and_apply() -> int:
        projection = TemporalIndexProjection()
        ledger_time: Any = None

        def apply(event: Any, position: int) -> None:
            nonlocal ledger_time
            if ledger_time is None or event.timestamp > ledger_time:
                ledger_time = event.timestamp
            projection.apply(event, position, ledger_time)

        # Flushed per batch as the worker does (so the projection holds only the open facts),
        # into a store that writes nothing.
        nowhere: Any = _NoWrites()
        return _read_all(runtime, apply, lambda: projection.flush(nowhere, None))

    applies = [_timed(read_and_apply)[0] for _ in range(REBUILD_RUNS)]
    rebuilds: list[float] = []
    facts = 0
    env = runtime.store.env
    for run in range(REBUILD_RUNS):
        store = open_copy(env, TemporalIndexProjection(), version + run, create=True)
        try:
            worker = ProjectionWorker(
                runtime.ledger, store, TemporalIndexProjection(), batch_size=REBUILD_BATCH
            )
            seconds, position = _timed(worker.catch_up)
            if position != events:
                raise RuntimeError(f"the rebuilt copy stopped at {position}, not {events}")
            rebuilds.append(seconds)
            facts = int(store.query("SELECT COUNT(*) AS n FROM {p}_facts")[0]["n"])
        finally:
            store.drop()
    rebuild_seconds = statistics.median(rebuilds)
    return Rates(
        events / statistics.median(reads),
        events / statistics.median(applies),
        events / rebuild_seconds,
        rebuild_seconds,
        facts,
    )


@dataclass(frozen=True)
class AuditRates:
    rebuild: float  # events/s: ProjectionWorker.catch_up of the audit trail into a fresh copy
    rebuild_seconds: float
    checkpoints: int  # signed checkpoints in the copy (global and per account)
    verify: float  # events/s: verify_trail of the rebuilt copy; nan when not measured
    verify_seconds: float


def measure_audit(runtime: Runtime, events: int, *, version: int, verify: bool) -> AuditRates:
    """The audit trail rebuilt as the runtime builds it (signed checkpoints every 1,000)."""
    rebuilds: list[float] = []
    checkpoints = 0
    verify_seconds = float("nan")
    env = runtime.store.env
    for run in range(REBUILD_RUNS):
        signer = CheckpointSigner(Ed25519PrivateKey.generate())
        projection = AuditTrailProjection(signer, every_events=AUDIT_EVERY)
        store = open_copy(env, projection, version + run, create=True)
        try:
            worker = ProjectionWorker(runtime.ledger, store, projection, batch_size=REBUILD_BATCH)
            seconds, position = _timed(worker.catch_up)
            if position != events:
                raise RuntimeError(f"the audit copy stopped at {position}, not {events}")
            rebuilds.append(seconds)
            checkpoints = int(store.query("SELECT COUNT(*) AS n FROM {p}_checkpoints")[0]["n"])
            if verify and run == REBUILD_RUNS - 1:
                verify_seconds, result = _timed(
                    lambda: verify_trail(runtime.ledger, store, signer.public_key)  # noqa: B023
                )
                if not result.ok or result.checked != events:
                    raise RuntimeError(f"verify_trail of the rebuilt copy: {result.as_dict()}")
        finally:
            store.drop()
    rebuild_seconds = statistics.median(rebuilds)
    return AuditRates(
        events / rebuild_seconds,
        rebuild_seconds,
        checkpoints,
        events / verify_seconds,
        verify_seconds,
    )


# -- (2) as-of latency -------------------------------------------------------------------------


@dataclass(frozen=True)
class AsOf:
    median_us: float
    p99_us: float
    compiled: float  # share of timed decisions that compiled a policy version not seen before
    warm_median_us: float  # the same samples again, every version compiled
    statements: float
    statements_max: int
    lookups: float  # index lookups per decision (mean): subjects, names and documents asked for
    plans: str  # the verdict on the plans of the statements the decisions ran
    rows_read: float  # PostgreSQL: rows the plans' table scans produced per decision (mean)
    pages: float  # PostgreSQL: buffer pages those plans touched per decision (mean)
    vm_steps: float  # SQLite: VM steps (progress-handler ticks) per decision (mean)
    policies: float  # median size of the identity layer decided over
    allowed: float  # share of Allow answers (a sanity check that the layers are not empty)


Statement = tuple[str, tuple[Any, ...]]


def _lookups(statement: str, params: tuple[Any, ...]) -> int:
    """How many index lookups one of the reader's statements asks for."""
    if "_documents" in statement:  # the table's name, quoted or not
        return len(params) // 2  # one primary-key lookup per (policy_id, version_id)
    if "VALUES" in statement:
        return len(params) - 3  # AT_POSTGRES / AT_SQLITE: the subjects, then kind, T, T
    return 1  # _NAMED_AT: one name


@dataclass
class _Trace:
    statements: list[Statement] = field(default_factory=list)
    vm_steps: int = 0


@contextmanager
def _tracing(store: Any) -> Iterator[_Trace]:
    """Record the statements the reader runs (it goes through ``store.execute``).

    On SQLite a progress handler ticking every VM step is set on each connection the reader
    uses, so stepping through the index is counted too (rows are fetched after ``execute``
    returns, with the handler still in place).
    """
    trace = _Trace()
    original = store.execute
    connections: list[Any] = []

    def tick() -> int:
        trace.vm_steps += 1
        return 0  # carry on

    def execute(cursor: Any, statement: Any, params: Any = ()) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(None)
        trace.statements.append((text, tuple(params)))
        connection = getattr(getattr(cursor, "sqlite_cursor", None), "connection", None)
        if connection is not None and all(c is not connection for c in connections):
            connection.set_progress_handler(tick, 1)
            connections.append(connection)
        return original(cursor, statement, params)

    store.execute = execute
    try:
        yield trace
    finally:
        del store.execute  # the class's method again
        for connection in connections:
            connection.set_progress_handler(None, 1)


def _sqlite_plans(store: Any, statements: list[Statement]) -> str:
    """EXPLAIN QUERY PLAN of each distinct statement: every table access must be a SEARCH.

    Allowed besides: the scan of AT_SQLITE's subject list (the VALUES CTE ``s``) and the
    plan's headers. A ``SCAN`` of a table, or a temporary B-tree (a sort instead of a
    backward index step), is reported.
    """
    shapes = dict(statements)  # statement text → the parameters of one of its runs
    bad: set[str] = set()
    with store.transaction(commit=False) as cursor:
        for statement, params in shapes.items():
            plan = store.execute(cursor, "EXPLAIN QUERY PLAN " + statement, params).fetchall()
            details = [str(row["detail"]) for row in plan]
            bad.update(
                d
                for d in details
                if "TEMP B-TREE" in d
                or (d.startswith("SCAN ") and d != "SCAN s" and "CONSTANT ROW" not in d)
            )
            if not any(d.startswith("SEARCH") for d in details):
                bad.add(f"no SEARCH in {statement[:60]}…")
    if bad:
        return "NOT all SEARCH: " + "; ".join(sorted(bad))
    return f"all SEARCH, no sort ({len(shapes)} shapes)"


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def _postgres_plans(
    store: Any, decisions: list[list[Statement]]
) -> tuple[str, list[float], list[float]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the decisions ran, again.

    Per decision: the rows the scans of the index tables produced (rows out plus rows removed
    by a filter, times loops; PostgreSQL rounds the per-loop figures) and the buffer pages
    the statements touched. A Seq Scan or a Sort in any plan is reported.
    """
    rows: list[float] = []
    pages: list[float] = []
    bad: dict[str, int] = {}
    ran = 0
    with store.transaction(commit=False) as cursor:
        for statements in decisions:
            read = touched = 0.0
            for statement, params in statements:
                explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement
                result = store.execute(cursor, explain, params).fetchone()
                top = next(iter(result.values()))[0]["Plan"]
                touched += top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
                for node in _plan_nodes(top):
                    loops = node.get("Actual Loops", 1)
                    if "Relation Name" in node:
                        out = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                        read += out * loops
                    if node["Node Type"] in ("Seq Scan", "Sort"):
                        where = node.get("Relation Name", "")
                        name = f"{node['Node Type']} {where}".strip()
                        bad[name] = bad.get(name, 0) + 1
                ran += 1
            rows.append(read)
            pages.append(touched)
    if bad:
        found = "; ".join(f"{name} in {n:,} of {ran:,}" for name, n in sorted(bad.items()))
        return f"NOT all index scans: {found}", rows, pages
    return f"index scans only, no sort ({ran:,} statements)", rows, pages


def measure_as_of(runtime: Runtime, history: History, samples: int, rng: random.Random) -> AsOf:
    runtime.temporal.catch_up()
    reader = runtime.as_of
    # Instants are drawn over events, not wall-clock time (the stores write at different
    # speeds): the ledger time of a random event after the set-up that opened a fact.
    times = [
        int(row["t"])
        for row in runtime.temporal.store.query(
            "SELECT DISTINCT valid_from AS t FROM {p}_facts WHERE valid_from >= ?",
            (history.setup_end_micros,),
        )
    ]
    times.sort()  # DISTINCT gives no order on PostgreSQL: the draws must not depend on it
    account = history.account_id
    arns = [user_arn(account, user.user_name) for user in history.users]
    requests = [
        AccessRequest.make(
            f"{service}:GetObject", f"acs:{service}:cn-hangzhou:{account}:bucket/a.csv"
        )
        for service in SERVICES
    ]

    def draw() -> tuple[str, Any, AccessRequest]:
        at = from_micros(rng.choice(times))
        return rng.choice(arns), at, rng.choice(requests)

    def one(arn: str, at: Any, request: AccessRequest) -> Any:
        principal, why = reader.principal_for_arn(arn, at)
        if principal is None:
            raise RuntimeError(f"{arn} at {at}: {why}")
        return principal, reader.decide(principal, request)

    for _ in range(min(200, samples)):  # warm up: compiled policies, connections, caches
        one(*draw())
    drawn = [draw() for _ in range(samples)]
    # The reader's compiler caches each (policy, version, group) it compiles, unbounded: at an
    # instant not seen before, the default versions then may be compiled for the first time.
    cache = reader.compiler._compiled
    timings: list[float] = []
    warm: list[float] = []
    sizes: list[int] = []
    allowed = compiled = 0
    gc.collect()
    gc.disable()
    try:
        for arn, at, request in drawn:
            cached = len(cache)
            started = time.perf_counter_ns()
            principal, answer = one(arn, at, request)
            timings.append((time.perf_counter_ns() - started) / 1000)
            compiled += len(cache) > cached
            identity = principal.subject.identity
            sizes.append(len(identity.policies) if identity is not None else 0)
            allowed += answer.allowed
        for arn, at, request in drawn:
            started = time.perf_counter_ns()
            one(arn, at, request)
            warm.append((time.perf_counter_ns() - started) / 1000)
    finally:
        gc.enable()
    decisions: list[list[Statement]] = []
    steps: list[int] = []
    with _tracing(reader.store) as trace:
        for arn, at, request in drawn[: min(300, samples)]:
            before = (len(trace.statements), trace.vm_steps)
            one(arn, at, request)
            decisions.append(trace.statements[before[0] :])
            steps.append(trace.vm_steps - before[1])
    counts = [len(statements) for statements in decisions]
    lookups = [sum(_lookups(*s) for s in statements) for statements in decisions]
    nan = float("nan")
    if reader.store.dialect.is_postgres:
        plans, rows, pages = _postgres_plans(reader.store, decisions)
        rows_read, pages_touched, vm_steps = statistics.mean(rows), statistics.mean(pages), nan
    else:
        plans = _sqlite_plans(reader.store, trace.statements)
        rows_read, pages_touched, vm_steps = nan, nan, statistics.mean(steps)
    timings.sort()
    return AsOf(
        statistics.median(timings),
        _percentile(timings, 0.99),
        compiled / len(drawn),
        statistics.median(warm),
        statistics.mean(counts),
        max(counts),
        statistics.mean(lookups),
        plans,
        rows_read,
        pages_touched,
        vm_steps,
        statistics.median(sizes),
        allowed / len(drawn),
    )


# -- one store ---------------------------------------------------------------------------------


@dataclass
class StoreResult:
    label: str
    sizes: list[int] = field(default_factory=list)
    as_of: list[AsOf] = field(default_factory=list)
    rates: list[Rates] = field(default_factory=list)
    audits: list[AuditRates] = field(default_factory=list)
    setup_events: int = 0
    write_rate: float = 0.0
    seconds: float = 0.0


def bench_store(label: str, url: str, state_dir: Path, args: argparse.Namespace) -> StoreResult:
    started = time.perf_counter()
    settings = Settings(
        database_url=url,
        hash_key="k" * 40,
        admin_token="t" * 40,
        run_projections=False,
        state_dir=state_dir,
    )
    runtime = Runtime(settings, create_tables=True)
    result = StoreResult(label)
    rng = random.Random(args.seed)
    try:
        history = History(runtime, random.Random(args.seed))
        history.set_up()
        result.setup_events = history.setup_events
        sizes = sorted({size for size in (1_000, 10_000, args.events) if size <= args.events})
        for index, size in enumerate(sizes):
            history.grow(max(size, history.setup_events))
            events = history.head
            print(f"  {label}: {events:,} events; as-of ...", file=sys.stderr, flush=True)
            result.sizes.append(events)
            result.as_of.append(measure_as_of(runtime, history, args.samples, rng))
            print(f"  {label}: {events:,} events; rebuild ...", file=sys.stderr, flush=True)
            version = COPY_VERSION + index * REBUILD_RUNS
            result.rates.append(measure_rebuild(runtime, events, version=version))
            print(f"  {label}: {events:,} events; audit rebuild ...", file=sys.stderr, flush=True)
            last = index == len(sizes) - 1
            result.audits.append(measure_audit(runtime, events, version=version, verify=last))
        result.write_rate = history.head / history.write_seconds
    finally:
        runtime.stop()
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A URL naming a schema made for this run; only that schema is dropped after."""
    name = SCHEMA_PREFIX + secrets.token_hex(6)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        separator = "&" if urlsplit(dsn).query else "?"
        yield f"{dsn}{separator}schema={name}"
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _postgres_answers(dsn: str) -> str | None:
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return None


# -- the report --------------------------------------------------------------------------------


def _k(n: int) -> str:
    return f"{n:,}"


def report_store(r: StoreResult) -> list[str]:
    header = "| | " + " | ".join(f"{_k(n)} events" for n in r.sizes) + " |"
    rule = "|---|" + "---:|" * len(r.sizes)
    postgres = r.label.startswith("PostgreSQL")

    def row(label: str, values: list[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    if postgres:
        work = [
            row(
                "rows the plans read from the index tables per decision (EXPLAIN ANALYZE, mean)",
                [f"{a.rows_read:,.1f}" for a in r.as_of],
            ),
            row(
                "buffer pages touched per decision (EXPLAIN ANALYZE BUFFERS, mean)",
                [f"{a.pages:,.1f}" for a in r.as_of],
            ),
        ]
    else:
        work = [
            row(
                "SQLite VM steps per decision (progress-handler ticks, mean)",
                [f"{a.vm_steps:,.0f}" for a in r.as_of],
            )
        ]
    verify = [
        f"{a.verify:,.0f} ({a.verify_seconds:.2f} s)" if a.verify == a.verify else "—"
        for a in r.audits
    ]
    return [
        f"### {r.label}",
        "",
        header,
        rule,
        row("as-of decision, median µs", [f"{a.median_us:,.0f}" for a in r.as_of]),
        row("as-of decision, p99 µs", [f"{a.p99_us:,.0f}" for a in r.as_of]),
        row(
            "decisions that compiled a policy version first (compiler cache miss)",
            [f"{a.compiled:.0%}" for a in r.as_of],
        ),
        row(
            "as-of decision, median µs, same samples again (all compiled)",
            [f"{a.warm_median_us:,.0f}" for a in r.as_of],
        ),
        row(
            "SQL statements per decision (mean / max)",
            [f"{a.statements:.1f} / {a.statements_max}" for a in r.as_of],
        ),
        row(
            "index lookups per decision: subjects, names, documents (mean)",
            [f"{a.lookups:.1f}" for a in r.as_of],
        ),
        *work,
        row(
            "plans of those statements"
            + (" (EXPLAIN ANALYZE)" if postgres else " (EXPLAIN QUERY PLAN)"),
            [a.plans for a in r.as_of],
        ),
        row("policies in the user's layer (median)", [f"{a.policies:g}" for a in r.as_of]),
        row("answers that Allow", [f"{a.allowed:.0%}" for a in r.as_of]),
        row("fact rows in the index", [_k(x.facts) for x in r.rates]),
        row(
            f"**rebuild**, events/s (catch_up, median of {REBUILD_RUNS})",
            [f"**{x.rebuild:,.0f}**" for x in r.rates],
        ),
        row("rebuild, seconds", [f"{x.rebuild_seconds:.2f}" for x in r.rates]),
        row("ceiling: read + decode the log, events/s", [f"{x.read:,.0f}" for x in r.rates]),
        row(
            "read + decode + apply + flush (no SQL), events/s",
            [f"{x.apply:,.0f}" for x in r.rates],
        ),
        row(
            f"**audit-trail rebuild**, events/s (catch_up, median of {REBUILD_RUNS})",
            [f"**{a.rebuild:,.0f}**" for a in r.audits],
        ),
        row("audit-trail rebuild, seconds", [f"{a.rebuild_seconds:.2f}" for a in r.audits]),
        row("signed checkpoints in the audit copy", [_k(a.checkpoints) for a in r.audits]),
        row("audit verify_trail, events/s (seconds)", verify),
        "",
        f"Set-up {_k(r.setup_events)} events; history written at {r.write_rate:,.0f} events/s "
        f"(group commits of ~{SAVE_EVERY}); this store took {r.seconds:.0f} s.",
        "",
    ]


def record_figures(r: StoreResult) -> None:
    """The store's headline figures at its largest size, for ``python -m tests.bench``."""
    store = r.label.split(" ", 1)[0]
    size = f"{_k(r.sizes[-1])} events"
    first, last = r.as_of[0], r.as_of[-1]
    record(
        f"{store}: as-of decision, median at {size}",
        f"{last.median_us:,.0f} µs ({last.median_us / first.median_us:.2f}x the median at "
        f"{_k(r.sizes[0])} events)",
        source=SOURCE,
    )
    target = f"≥ {REBUILD_TARGET:,} events/s"
    for what, rate in (
        ("temporal rebuild", r.rates[-1].rebuild),
        ("audit-trail rebuild", r.audits[-1].rebuild),
    ):
        record(
            f"{store}: {what} at {size}",
            f"{rate:,.0f} events/s",
            target,
            rate >= REBUILD_TARGET,
            source=SOURCE,
        )


def summary(results: list[StoreResult]) -> str:
    parts = []
    for r in results:
        record_figures(r)
        first, last = r.as_of[0], r.as_of[-1]
        rate, audit = r.rates[-1], r.audits[-1]
        parts.append(
            f"{r.label}: as-of median at {_k(r.sizes[-1])} / at {_k(r.sizes[0])} events = "
            f"**{last.median_us / first.median_us:.2f}x** (p99 {last.p99_us / first.p99_us:.2f}x; "
            f"all compiled {last.warm_median_us / first.warm_median_us:.2f}x); "
            f"rebuild at {_k(r.sizes[-1])} = {rate.rebuild:,.0f} events/s, "
            f"{rate.rebuild / rate.read:.0%} of the read ceiling, "
            f"{rate.rebuild / rate.apply:.0%} of read + apply + flush; "
            f"audit-trail rebuild {audit.rebuild:,.0f} events/s "
            f"({audit.rebuild / rate.read:.0%} of the read ceiling), "
            f"verify_trail {audit.verify:,.0f} events/s"
        )
    return "Summary — " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.temporal", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (5,000 events)")
    parser.add_argument("--events", type=int, help="history length N (default 50,000)")
    parser.add_argument("--samples", type=int, help="as-of decisions per size (default 2,000)")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MANDATE_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help=f"server to make a scratch schema in (default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 5_000 if args.quick else 50_000
    if args.samples is None:
        args.samples = 500 if args.quick else 2_000

    results: list[StoreResult] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mandate-bench-temporal-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir}/ledger.db"
        results.append(bench_store("SQLite (temporary file)", url, workdir, args))
        if args.skip_postgres:
            notes.append("PostgreSQL skipped (--skip-postgres).")
        elif (problem := _postgres_answers(args.postgres_url)) is not None:
            notes.append(f"PostgreSQL skipped: {args.postgres_url} does not answer ({problem}).")
        else:
            with fresh_schema(args.postgres_url) as pg_url:
                schema = pg_url.rsplit("schema=", 1)[1]
                label = f"PostgreSQL (scratch schema {schema}, dropped after)"
                results.append(bench_store(label, pg_url, workdir, args))

    out = [
        f"## Temporal index benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
        f"{USERS} users, {GROUPS} groups, {POLICIES} custom policies in one account; "
        f"{args.samples:,} as-of samples per size (random user, instant and request).",
        "",
    ]
    for r in results:
        out += report_store(r)
    out += notes + ([""] if notes else []) + [summary(results)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
