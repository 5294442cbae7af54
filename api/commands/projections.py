"""``mandate projections rebuild | run | status``: blue/green rebuilds of the SQL projections,
a dedicated worker that survives outages, and each copy's position and lag."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from functools import partial

from mandate.api.commands import open_runtime
from mandate.api.runtime import Runtime, StoreUnavailable
from mandate.api.settings import Settings
from mandate.projections.store.leadership import copy_lease
from mandate.projections.store.rebuild import RebuildRefused, rebuild

__all__ = ["projections_rebuild", "projections_run", "projections_status"]


def projections_rebuild(args: argparse.Namespace) -> int:
    runtime = open_runtime()
    if runtime is None:
        return 2
    try:
        workers = {w.projection.name: w for w in runtime.projection_workers}
        names = [args.name] if args.name else sorted(workers)
        unknown = [n for n in names if n not in workers]
        if unknown:
            print(f"mandate: no projection named {unknown[0]!r} ({', '.join(workers)})")
            return 2
        for name in names:
            worker = workers[name]
            print(
                f"mandate: rebuilding {name} from position 0 (readers stay on "
                f"{worker.store.prefix})",
                flush=True,
            )
            try:
                result = rebuild(
                    runtime.ledger,
                    runtime.store.env,
                    runtime.registry,
                    type(worker.projection)(),
                    check=runtime.rebuild_check(name),
                    leases=partial(copy_lease, runtime.store.env)
                    if runtime.store.is_postgres
                    else None,
                    grace_seconds=args.grace,
                )
            except RebuildRefused as refusal:
                print(f"mandate: {name}: rebuild refused, nothing switched: {refusal}")
                return 1
            print(
                f"mandate: {name}: v{result.old_version} -> v{result.new_version}, "
                f"{result.events} events to position {result.position} in "
                f"{result.seconds:.2f} s ({result.events_per_second:,.0f} events/s); "
                f"readers switched, v{result.old_version} dropped",
                flush=True,
            )
        return 0
    finally:
        runtime.stop()


def projections_run(_: argparse.Namespace) -> int:
    """A dedicated worker: follow the log into every SQL projection until interrupted.

    It survives any outage: the store may be down when it starts (it retries, backing off to
    30 s), and every loop after that is guarded (the workers retry their batches, the
    registry is read again at the next tick). On PostgreSQL it takes each copy's lease like
    the API processes do, so running it beside them is safe; it exits on SIGINT or SIGTERM.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        runtime = _open_runtime_patiently()
        for worker in runtime.projection_workers:
            worker.start()
        listener = runtime.listen([w.wake for w in runtime.projection_workers])
        print(
            "mandate: following the log into "
            + ", ".join(w.store.prefix for w in runtime.projection_workers)
            + (" (each applied by whichever process holds its lease)" if listener else ""),
            flush=True,
        )
    except KeyboardInterrupt:
        return 0
    failing: str | None = None
    try:
        while True:
            time.sleep(runtime.settings.registry_watch_interval)
            try:
                runtime.follow_registry()
                failing = None
            except Exception as error:  # an outage: the next tick tries again
                if failing != str(error):
                    print(f"mandate: reading the projection registry failed: {error}", flush=True)
                failing = str(error)
    except KeyboardInterrupt:
        return 0
    finally:
        if listener is not None:
            listener.stop()
        runtime.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _open_runtime_patiently() -> Runtime:
    """A runtime once the store answers: an outage at start-up is waited out, not fatal."""
    settings = Settings().model_copy(update={"run_projections": False})
    wait, said = 0.5, None
    while True:
        try:
            return Runtime(settings)
        except StoreUnavailable as error:
            if str(error) != said:
                print(f"mandate: {error}; retrying", file=sys.stderr, flush=True)
                said = str(error)
        time.sleep(wait)
        wait = min(wait * 2, 30.0)


def projections_status(_: argparse.Namespace) -> int:
    runtime = open_runtime()
    if runtime is None:
        return 2
    try:
        head = runtime.head()
        print(json.dumps({"head": head, "projections": runtime.projection_lags(head)}, indent=2))
        return 0
    finally:
        runtime.stop()
