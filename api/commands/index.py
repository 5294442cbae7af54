"""``mandate index snapshot | status``: the decision index's snapshots, which let a process
start from the newest one and replay only the tail of the log."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from mandate.api.commands import open_runtime
from mandate.projections.decisions.snapshots import format_version

__all__ = ["index_snapshot", "index_status"]


def index_snapshot(_: argparse.Namespace) -> int:
    """Write a decision index snapshot at the head now (for cron, or before a big deploy).

    The index starts as a serving process's does (the newest snapshot, then the tail), so
    this costs the tail, not the log.
    """
    runtime = open_runtime()
    if runtime is None:
        return 2
    try:
        loaded = runtime.restore_index()
        runtime.index.replaying = True  # nothing is served from this index
        runtime.follower.catch_up()
        written = runtime.index_snapshots.write(runtime.index)
        print(
            f"mandate: index snapshot written at position {written.position} "
            f"({written.size:,} bytes; started from {loaded or 'position 0'})"
        )
        return 0
    finally:
        runtime.stop()


def index_status(_: argparse.Namespace) -> int:
    runtime = open_runtime()
    if runtime is None:
        return 2
    try:
        stored = [
            {**asdict(s), "usable": s.format_version == format_version()}
            for s in runtime.index_snapshots.stored()
        ]
        print(json.dumps({"head": runtime.head(), "snapshots": stored}, indent=2))
        return 0
    finally:
        runtime.stop()
