"""The ``mandate`` command: ``serve``, ``migrate`` and the operations on projections."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from api.runtime import Runtime, StoreUnavailable
from api.settings import Settings
from projections.audit_export import csv_lines, verify_bundle, write_bundle
from projections.audit_trail import GLOBAL_SCOPE, AuditQuery, checkpoints, iter_records
from projections.audit_verify import verify_trail
from projections.rebuild import RebuildRefused, rebuild
from projections.sql_projection import EventNotApplicable

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = Settings()
    # SQLite is embedded: serve creates its schema. PostgreSQL's comes from `mandate migrate`,
    # so that many workers starting at once never race on DDL.
    try:
        runtime = Runtime(settings, create_tables=None)
    except StoreUnavailable as error:
        print(f"mandate: {error}", file=sys.stderr)
        print(
            "mandate: is the store up, and has `mandate migrate` created its schema?",
            file=sys.stderr,
        )
        return 2
    print(f"mandate: store {runtime.store.display}", flush=True)
    if runtime.admin.issued is not None:
        state = settings.resolved_state_dir
        print(
            "mandate: generated the admin token (shown once; its hash is kept in "
            f"{state}):\n\n    {runtime.admin.issued}\n",
            flush=True,
        )
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


def _migrate(_: argparse.Namespace) -> int:
    settings = Settings()
    try:
        runtime = Runtime(settings, create_tables=True)
    except StoreUnavailable as error:
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
    """A dedicated worker: follow the log into every SQL projection until interrupted."""
    runtime = _open_runtime()
    if runtime is None:
        return 2
    for worker in runtime.projection_workers:
        worker.start()
    print(
        "mandate: following the log into "
        + ", ".join(w.store.prefix for w in runtime.projection_workers),
        flush=True,
    )
    try:
        while True:
            time.sleep(runtime.settings.registry_watch_interval)
            runtime.follow_registry()
    except KeyboardInterrupt:
        return 0
    finally:
        runtime.stop()


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
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
