"""The ``mandate`` command: ``serve`` and ``migrate`` (more operations join later)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.runtime import Runtime, StoreUnavailable
from api.settings import Settings

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
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
