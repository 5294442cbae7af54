"""Start-up at scale: a process on a large log, from a snapshot of its index or from 0.

``python -m tests.bench.startup [--quick] [--events N] [--postgres-url URL]``

The log is written on PostgreSQL (a scratch schema, dropped after) by batched saves straight
through the ledger: ``tests.bench.access_review``'s history (200 users, 10 groups and 20
policies churning; 1 step in 50 creates a user, so the index grows with the log; AccessKeys
created and flipped), 400 events a save. Then, at N events:

* **index replay from 0**: a fresh ``DecisionIndex`` fed by ``LogFollower.catch_up`` from
  position 0 in this process, ``replaying`` as a starting process does — in bulk
  (``BulkDecoder``, pages read ahead) — and the same replay event by event through the
  mapper (the path before bulk replay) (events/s), beside reading and decoding the log alone
  both ways (the ceiling each replay has here);
* **snapshot write**: the index pickled (the time the follower's lock is held) and written
  into ``mandate_index_snapshots``; its size;
* **a process starting**: ``python`` run on the same schema, ``Runtime(...)`` then
  ``start()`` (projections off), with snapshots off (replay from 0) and on (the snapshot,
  then the tail): wall seconds from spawn until it serves, and the RSS the started index
  adds over the constructed runtime, per 100k events;
* **temporal and audit rebuild**: ``ProjectionWorker.catch_up`` into a fresh copy of each
  (batches of 1,000; the audit trail signs a checkpoint every 1,000 events), events/s.

One run of each (at 1M events a run is minutes); the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from unittest import mock

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings
from mandate.projections.audit.chain import CheckpointSigner
from mandate.projections.audit.trail import AuditTrailProjection
from mandate.projections.decisions.index import DecisionIndex
from mandate.projections.decisions.snapshots import dump_index
from mandate.projections.history.temporal_index import TemporalIndexProjection
from mandate.projections.store.bulk_decoding import BulkDecoder
from mandate.projections.store.follower import LogFollower
from mandate.projections.store.rebuild import open_copy
from mandate.projections.store.sql_projection import ProjectionWorker, SqlProjection
from tests.bench.access_review import ReviewHistory
from tests.bench.summary import record
from tests.bench.temporal import DEFAULT_POSTGRES, fresh_schema

SAVE_EVERY = 400
BATCH = 1_000
TARGETS = {"start": 30.0, "index": 50_000.0, "temporal": 20_000.0, "audit": 20_000.0}


class StartupHistory(ReviewHistory):
    """``ReviewHistory``'s churn and user creation, saved ``SAVE_EVERY`` events at a time."""

    def grow_batched(self, target: int, rng: random.Random) -> None:
        self.grow_reviewed(target, rng, save_every=SAVE_EVERY)


def _settings(url: str, **more: Any) -> Settings:
    return Settings(
        database_url=url,
        hash_key="k" * 40,
        admin_token="t" * 40,
        token_signing_key="s" * 40,
        run_projections=False,
        **more,
    )


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(url: str, snapshots: bool) -> None:
    """A process starting on the log: prints what it took, then exits at once."""
    runtime = Runtime(_settings(url, index_snapshot_every=100_000 if snapshots else 0))
    gc.collect()
    before = _rss()
    started = time.perf_counter()
    runtime.start()
    seconds = time.perf_counter() - started
    gc.collect()
    print(
        json.dumps(
            {
                "start_seconds": seconds,
                "loaded": runtime.index_snapshot_loaded,
                "position": runtime.index.position,
                "rss_added": _rss() - before,
                "rss": _rss(),
            }
        ),
        flush=True,
    )
    os._exit(0)


def _spawn(url: str, snapshots: bool) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603 (this interpreter, this module)
        [sys.executable, "-m", "tests.bench.startup", "--child", url]
        + (["--with-snapshots"] if snapshots else []),
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    found["wall_seconds"] = time.perf_counter() - started
    return found


def _read_all(runtime: Runtime) -> int:
    recorder, mapper = runtime.ledger.recorder, runtime.ledger.mapper
    position = count = 0
    while True:
        notifications = recorder.select_notifications(position, BATCH, inclusive_of_start=False)
        if not notifications:
            return count
        for notification in notifications:
            mapper.to_domain_event(notification)
        count += len(notifications)
        position = int(notifications[-1].id)


def _read_all_bulk(runtime: Runtime) -> int:
    """What the bulk replay reads and decodes: its pages (no thread), ``BulkDecoder``."""
    decoder = BulkDecoder.for_mapper(runtime.ledger.mapper)
    assert decoder is not None
    follower = LogFollower(runtime.ledger, DecisionIndex(runtime.hasher))
    count = 0
    for page in follower._pages(0):
        for _, originator_id, version, topic, state in page:
            decoder.decode(originator_id, version, topic, state)
        count += len(page)
    return count


def _replay(runtime: Runtime, *, bulk: bool) -> tuple[float, DecisionIndex]:
    """A fresh index replayed from 0, ``replaying`` as ``Runtime.start`` does: (s, index)."""
    index = DecisionIndex(runtime.hasher, runtime.token_signer)
    index.replaying = True
    follower = LogFollower(runtime.ledger, index, batch_size=BATCH)
    if bulk:
        seconds, _ = _timed(follower.catch_up)
    else:  # no bulk decoder: event by event through the mapper
        with mock.patch.object(BulkDecoder, "for_mapper", return_value=None):
            seconds, _ = _timed(follower.catch_up)
    index.replaying = False
    return seconds, index


def _timed(run: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def _rebuild(runtime: Runtime, projection: SqlProjection, version: int, events: int) -> float:
    store = open_copy(runtime.store.env, projection, version, create=True)
    try:
        worker = ProjectionWorker(runtime.ledger, store, projection, batch_size=BATCH)
        seconds, position = _timed(worker.catch_up)
        if position != events:
            raise RuntimeError(f"the {projection.name} copy stopped at {position}, not {events}")
        return events / seconds
    finally:
        store.drop()


def measure(
    url: str, size: int, history: StartupHistory, runtime: Runtime, *, rebuilds: bool = True
) -> dict[str, Any]:
    print(f"  growing the log to {size:,} events ...", file=sys.stderr, flush=True)
    written, _ = _timed(lambda: history.grow_batched(size, random.Random(size)))
    events = history.head
    row: dict[str, Any] = {
        "events": events,
        "write_rate": (events - history.setup_events) / written,
    }
    print("  reading the log, replaying the index ...", file=sys.stderr, flush=True)
    seconds, _ = _timed(lambda: _read_all(runtime))
    row["decode_rate"] = events / seconds
    seconds, _ = _timed(lambda: _read_all_bulk(runtime))
    row["bulk_decode_rate"] = events / seconds
    seconds, index = _replay(runtime, bulk=False)
    row["mapper_replay_rate"] = events / seconds
    index = None  # type: ignore[assignment]
    seconds, index = _replay(runtime, bulk=True)
    row["replay_rate"] = events / seconds
    row["users"] = len(index.users)
    row["keys"] = len(index.keys)
    seconds, data = _timed(partial(dump_index, index))
    row["pickle_seconds"] = seconds
    row["snapshot_bytes"] = len(data)
    write = partial(runtime.index_snapshots.write_bytes, index.position, data)
    row["snapshot_write_seconds"], _ = _timed(write)
    index = data = write = None  # type: ignore[assignment]  # freed before the processes start
    print("  a process starting from 0, then from the snapshot ...", file=sys.stderr, flush=True)
    history.grow_batched(events + 1_000, random.Random(size + 1))  # a tail after the snapshot
    row["tail"] = history.head - events
    row["from_zero"] = _spawn(url, snapshots=False)
    row["from_snapshot"] = _spawn(url, snapshots=True)
    assert row["from_snapshot"]["loaded"] == events, row["from_snapshot"]
    assert row["from_snapshot"]["position"] == row["from_zero"]["position"] == history.head
    if not rebuilds:
        row["temporal_rate"] = row["audit_rate"] = float("nan")
        return row
    print("  rebuilding the temporal index and the audit trail ...", file=sys.stderr, flush=True)
    head = history.head
    row["temporal_rate"] = _rebuild(runtime, TemporalIndexProjection(), 900 + size % 97, head)
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    audit = AuditTrailProjection(signer, every_events=1_000)
    row["audit_rate"] = _rebuild(runtime, audit, 900 + size % 97, head)
    return row


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| figure | " + " | ".join(f"{r['events']:,} events" for r in rows) + " | target |",
        "|---|" + "---:|" * len(rows) + "---|",
    ]

    def line(label: str, cell: Callable[[dict[str, Any]], str], target: str = "") -> None:
        out.append(f"| {label} | " + " | ".join(cell(r) for r in rows) + f" | {target} |")

    line("users / AccessKeys in the index", lambda r: f"{r['users']:,} / {r['keys']:,}")
    line("log written by batched saves (events/s)", lambda r: f"{r['write_rate']:,.0f}")
    line("read + decode the log alone, mapper (events/s)", lambda r: f"{r['decode_rate']:,.0f}")
    line(
        "read + decode the log alone, bulk pages + BulkDecoder (events/s)",
        lambda r: f"{r['bulk_decode_rate']:,.0f}",
    )
    line(
        "index replay from 0, event by event through the mapper (events/s)",
        lambda r: f"{r['mapper_replay_rate']:,.0f}",
    )
    line(
        "index replay from 0, in bulk (events/s; as a process starts)",
        lambda r: f"{r['replay_rate']:,.0f} {_verdict(r['replay_rate'] >= TARGETS['index'])}",
        "≥ 50,000",
    )
    line("snapshot: pickle (s, lock held)", lambda r: f"{r['pickle_seconds']:.2f}")
    line("snapshot: size (MB)", lambda r: f"{r['snapshot_bytes'] / 1e6:,.1f}")
    line("snapshot: write (s)", lambda r: f"{r['snapshot_write_seconds']:.2f}")
    line(
        "process start, replay from 0 (s to serve; spawn to ready)",
        lambda r: f"{r['from_zero']['start_seconds']:.1f} ({r['from_zero']['wall_seconds']:.1f})",
    )
    line(
        "process start, snapshot + tail (s to serve; spawn to ready)",
        lambda r: (
            f"{r['from_snapshot']['start_seconds']:.1f} "
            f"({r['from_snapshot']['wall_seconds']:.1f}) "
            + _verdict(r["from_snapshot"]["wall_seconds"] <= TARGETS["start"])
        ),
        "≤ 30 s",
    )
    line("  tail replayed after the snapshot (events)", lambda r: f"{r['tail']:,}")
    line(
        "RSS the started index adds, per 100k events (MB; replay / snapshot)",
        lambda r: (
            f"{r['from_zero']['rss_added'] / 1e6 / (r['events'] / 1e5):,.1f} / "
            f"{r['from_snapshot']['rss_added'] / 1e6 / (r['events'] / 1e5):,.1f}"
        ),
    )
    line(
        "temporal index rebuild, PostgreSQL (events/s)",
        lambda r: (
            f"{r['temporal_rate']:,.0f} {_verdict(r['temporal_rate'] >= TARGETS['temporal'])}"
        ),
        "≥ 20,000",
    )
    line(
        "audit trail rebuild, PostgreSQL (events/s)",
        lambda r: f"{r['audit_rate']:,.0f} {_verdict(r['audit_rate'] >= TARGETS['audit'])}",
        "≥ 20,000",
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.startup", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 events")
    parser.add_argument("--events", help="comma-separated log sizes (default 1,000,000)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--no-rebuilds", action="store_true", help="skip the temporal and audit rebuilds"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--with-snapshots", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.with_snapshots)
    sizes = [int(s) for s in (args.events or ("100000" if args.quick else "1000000")).split(",")]
    started = time.perf_counter()
    rows = []
    with fresh_schema(args.postgres_url) as url:
        runtime = Runtime(_settings(url), create_tables=True)
        try:
            history = StartupHistory(runtime, random.Random(7))
            history.set_up()
            for size in sorted(sizes):
                rows.append(measure(url, size, history, runtime, rebuilds=not args.no_rebuilds))
        finally:
            runtime.stop()
    out = [
        f"## Start-up benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores "
        "(shared with other work while measured); PostgreSQL 15 (scratch schema); one run each; "
        f"{time.perf_counter() - started:,.0f} s in all.",
        "",
        *_table(rows),
    ]
    print("\n".join(out))
    _record(rows[-1])
    return 0


def _record(r: dict[str, Any]) -> None:
    """The largest log's headline figures, for ``python -m tests.bench``'s summary."""
    at = f" ({r['events']:,} events)"
    record(
        "decision index replay from 0" + at,
        f"{r['replay_rate']:,.0f} events/s",
        "≥ 50,000 events/s",
        r["replay_rate"] >= TARGETS["index"],
        source="startup",
    )
    record(
        "process start from a snapshot + tail, spawn to ready" + at,
        f"{r['from_snapshot']['wall_seconds']:.1f} s",
        "≤ 30 s",
        r["from_snapshot"]["wall_seconds"] <= TARGETS["start"],
        source="startup",
    )
    per = r["events"] / 1e5
    record(
        "RSS the started index adds per 100k events (replay / snapshot)" + at,
        f"{r['from_zero']['rss_added'] / 1e6 / per:,.1f} / "
        f"{r['from_snapshot']['rss_added'] / 1e6 / per:,.1f} MB",
        source="startup",
    )
    for key, name in (("temporal", "temporal index"), ("audit", "audit trail")):
        rate = r[f"{key}_rate"]
        if rate != rate:  # NaN: not measured (--no-rebuilds)
            continue
        record(
            f"{name} rebuild, PostgreSQL" + at,
            f"{rate:,.0f} events/s",
            "≥ 20,000 events/s",
            rate >= TARGETS[key],
            source="startup",
        )


if __name__ == "__main__":
    raise SystemExit(main())
