"""The ``mandate`` command: ``serve``, ``migrate`` and the operations on projections."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import cast

from pydantic import ValidationError

from api.runtime import Runtime, StoreUnavailable
from api.settings import Settings, store_config
from api.startup.store_checks import StoreUnreachable, migration_lock
from projections.audit.export import csv_lines, verify_bundle, write_bundle
from projections.audit.trail import GLOBAL_SCOPE, AuditQuery, checkpoints, iter_records
from projections.audit.verify import verify_trail
from projections.decisions.snapshots import format_version
from projections.store.leadership import copy_lease
from projections.store.rebuild import RebuildRefused, rebuild
from projections.store.sql_projection import EventNotApplicable

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = Settings()
    # SQLite is embedded: serve creates its schema. PostgreSQL's comes from `mandate migrate`,
    # so that many workers starting at once never race on DDL.
    try:
        runtime = Runtime(settings, create_tables=None)
    except StoreUnavailable as error:  # one line naming what failed (api/startup/store_checks.py)
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    print(f"mandate: store {runtime.store.display}", flush=True)
    if runtime.admin.issued is not None:
        state = settings.resolved_state_dir
        print(
            "mandate: generated the admin token (shown once; its hash is kept in "
            f"{state}):\n\n    {runtime.admin.issued}\n",
            flush=True,
        )
    if args.workers > 1:
        if not runtime.store.is_postgres:
            runtime.stop()
            print("mandate: --workers needs PostgreSQL (SQLite is embedded)", file=sys.stderr)
            return 2
        # Each worker process opens its own runtime (index, follower, LISTEN connection);
        # the projections run in whichever process holds each copy's lease.
        runtime.stop()
        print(
            f"mandate: listening on http://{args.host}:{args.port} ({args.workers} workers)",
            flush=True,
        )
        return _serve_workers(args)
    print(f"mandate: listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        create_app(runtime=runtime),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    runtime.stop()
    return 0


def _serve_workers(args: argparse.Namespace) -> int:
    """``--workers N`` under uvicorn's supervisor, each worker on its own listening socket.

    uvicorn's parent binds one socket that every worker accepts from; whichever wakes first
    takes a whole burst of connections (wrk's 32 went 24/8), so one process does most of the
    work. On Linux each worker binds its own ``SO_REUSEPORT`` socket instead and the kernel
    spreads new connections over them; elsewhere (or ``--port 0``) the shared socket stays.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "api.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    if sys.platform != "linux" or not hasattr(socket, "SO_REUSEPORT") or args.port == 0:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    try:
        # Never listens, so it takes no connection: it fails fast when the port is taken and
        # keeps it for the workers (a restarted one binds again) while the parent lives.
        reserved = _reuse_port_socket(args.host, args.port)
    except OSError as error:
        print(f"mandate: cannot bind {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    try:
        own = cast("socket.socket", _OwnListener(args.host, args.port))
        Multiprocess(config, sockets=[own]).run()
    finally:
        reserved.close()
    return 0


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _OwnListener:
    """Stands in for the socket uvicorn's supervisor pickles to each worker it (re)starts:
    unpickled there, it is that worker's own ``SO_REUSEPORT`` socket (uvicorn listens)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (_reuse_port_socket, (self.host, self.port))


def _migrate(_: argparse.Namespace) -> int:
    """Create the schema; many at once are safe (an advisory lock serialises their DDL)."""
    settings = Settings()
    config = store_config(settings.database_url)
    try:
        with migration_lock(config):
            runtime = Runtime(settings, create_tables=True)
    except (StoreUnavailable, StoreUnreachable) as error:
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    runtime.stop()
    print(f"mandate: schema ready in {runtime.store.display}")
    return 0


def _open_runtime() -> Runtime | None:
    try:
        return Runtime(Settings().model_copy(update={"run_projections": False}))
    except StoreUnavailable as error:
        print(f"mandate: {error}", file=sys.stderr)
        return None


def _projections_rebuild(args: argparse.Namespace) -> int:
    runtime = _open_runtime()
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


def _projections_run(_: argparse.Namespace) -> int:
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


def _projections_status(_: argparse.Namespace) -> int:
    runtime = _open_runtime()
    if runtime is None:
        return 2
    try:
        head = runtime.head()
        print(json.dumps({"head": head, "projections": runtime.projection_lags(head)}, indent=2))
        return 0
    finally:
        runtime.stop()


def _index_snapshot(_: argparse.Namespace) -> int:
    """Write a decision index snapshot at the head now (for cron, or before a big deploy).

    The index starts as a serving process's does (the newest snapshot, then the tail), so
    this costs the tail, not the log.
    """
    runtime = _open_runtime()
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


def _index_status(_: argparse.Namespace) -> int:
    runtime = _open_runtime()
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


def _audit_verify(args: argparse.Namespace) -> int:
    """Re-derive the trail from the log; exit 1 and name the position when it disagrees."""
    runtime = _open_runtime()
    if runtime is None:
        return 2
    stall: EventNotApplicable | None = None
    try:
        try:
            runtime.audit.catch_up()
        except EventNotApplicable as stalled:  # what is stored is verified; the stall is named
            stall = stalled
        result = verify_trail(
            runtime.ledger, runtime.audit.store, runtime.audit_public_key, args.account
        )
        if stall is not None and result.ok:  # the trail cannot cover the log from there on
            reason = f"the audit trail cannot record the event at {stall}"
            result = replace(result, ok=False, first_bad_position=stall.position, reason=reason)
    finally:
        runtime.stop()
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if result.ok else 1


def _audit_export(args: argparse.Namespace) -> int:
    """The trail (global, or one account's) as NDJSON or CSV on stdout, or a bundle."""
    runtime = _open_runtime()
    if runtime is None:
        return 2
    try:
        try:
            runtime.audit.catch_up()
        except EventNotApplicable as stalled:  # an export must not stop short silently
            print(f"mandate: the audit projection is stalled at {stalled}", file=sys.stderr)
            return 1
        records = iter_records(runtime.audit.store, AuditQuery(account_id=args.account))
        if args.bundle:
            scope = args.account or GLOBAL_SCOPE
            written = write_bundle(
                Path(args.bundle),
                records,
                checkpoints(runtime.audit.store, scope),
                runtime.audit_public_key_pem,
            )
            print(f"mandate: {written} records, checkpoints and the public key in {args.bundle}")
        elif args.format == "csv":
            sys.stdout.writelines(csv_lines(records))
        else:
            for record in records:
                sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        return 0
    finally:
        runtime.stop()


def _audit_verify_export(args: argparse.Namespace) -> int:
    """Verify an exported bundle offline: its chain and checkpoints, with a public key."""
    bundle = Path(args.bundle)
    key_path = Path(args.public_key) if args.public_key else bundle / "public-key.pem"
    result = verify_bundle(bundle, key_path.read_bytes())
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mandate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (PostgreSQL only; default 1)",
    )
    serve.set_defaults(run=_serve)
    migrate = commands.add_parser("migrate", help="create the schema once (PostgreSQL)")
    migrate.set_defaults(run=_migrate)
    projections = commands.add_parser("projections", help="operate the SQL projections")
    verbs = projections.add_subparsers(dest="verb", required=True)
    rebuild_cmd = verbs.add_parser(
        "rebuild", help="rebuild from position 0 into a new copy, then switch readers (blue/green)"
    )
    rebuild_cmd.add_argument("name", nargs="?", help="temporal or audit (default: all)")
    rebuild_cmd.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds between the switch and dropping the old copy (default 5)",
    )
    rebuild_cmd.set_defaults(run=_projections_rebuild)
    verbs.add_parser("run", help="a dedicated projection worker").set_defaults(run=_projections_run)
    verbs.add_parser("status", help="each projection's copy, position and lag").set_defaults(
        run=_projections_status
    )
    index = commands.add_parser("index", help="the decision index's snapshots")
    index_verbs = index.add_subparsers(dest="verb", required=True)
    index_verbs.add_parser("snapshot", help="write a snapshot at the head now").set_defaults(
        run=_index_snapshot
    )
    index_verbs.add_parser("status", help="the stored snapshots").set_defaults(run=_index_status)
    audit = commands.add_parser("audit", help="verify and export the audit trail")
    audit_verbs = audit.add_subparsers(dest="verb", required=True)
    verify = audit_verbs.add_parser(
        "verify", help="re-derive the trail from the log, check chains and checkpoints"
    )
    verify.add_argument("--account", help="one account's chain (default: the global one)")
    verify.set_defaults(run=_audit_verify)
    export = audit_verbs.add_parser("export", help="the trail as NDJSON or CSV, or a bundle")
    export.add_argument("--account", help="one account's records (default: all)")
    export.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    export.add_argument(
        "--bundle", metavar="DIR", help="write records, checkpoints and the public key to DIR"
    )
    export.set_defaults(run=_audit_export)
    offline = audit_verbs.add_parser(
        "verify-export", help="verify an exported bundle offline (no database needed)"
    )
    offline.add_argument("bundle", metavar="DIR")
    offline.add_argument(
        "--public-key",
        metavar="PEM",
        help="the key to trust (default: the bundle's own copy; prefer one obtained apart)",
    )
    offline.set_defaults(run=_audit_verify_export)
    args = parser.parse_args(argv)
    if args.run is not _audit_verify_export:  # the only command that reads no settings
        problem = configuration_problem()
        if problem is not None:
            print(f"mandate: invalid configuration: {problem}", file=sys.stderr)
            return 2
    return int(args.run(args))


def configuration_problem() -> str | None:
    """Why the ``MANDATE_*`` settings cannot be used, in one line, or None.

    Names the variable and the rule, never the value given (it may be a secret).
    """
    try:
        settings = Settings()
        store_config(settings.database_url)
    except ValidationError as error:
        reasons = []
        for item in error.errors():
            name = "MANDATE_" + str(item["loc"][0]).upper() if item["loc"] else ""
            reason = str(item["msg"]).removeprefix("Value error, ")
            reasons.append(f"{name}: {reason}" if name else reason)
        return "; ".join(reasons)
    except ValueError as error:  # the database URL
        return f"MANDATE_DATABASE_URL: {error}"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
