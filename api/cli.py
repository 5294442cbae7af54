"""The ``mandate`` command: ``serve``, ``migrate``, and the operations on projections, the
decision index, the sealing keys and the audit trail."""

# This module builds the parser (its docstring is the --help description) and checks the
# settings; each command group's commands live in api.commands (serve, projections, index,
# keys, audit).

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from mandate.api.commands.audit import audit_export, audit_verify, audit_verify_export
from mandate.api.commands.index import index_snapshot, index_status
from mandate.api.commands.keys import account_erase_personal_data, keys_rotate, keys_status
from mandate.api.commands.projections import (
    projections_rebuild,
    projections_run,
    projections_status,
)
from mandate.api.commands.serve import migrate as run_migrate
from mandate.api.commands.serve import serve as run_serve
from mandate.api.settings import Settings, store_config

__all__ = ["main"]


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
    serve.set_defaults(run=run_serve)
    migrate = commands.add_parser("migrate", help="create the schema once (PostgreSQL)")
    migrate.set_defaults(run=run_migrate)
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
    rebuild_cmd.set_defaults(run=projections_rebuild)
    verbs.add_parser("run", help="a dedicated projection worker").set_defaults(run=projections_run)
    verbs.add_parser("status", help="each projection's copy, position and lag").set_defaults(
        run=projections_status
    )
    index = commands.add_parser("index", help="the decision index's snapshots")
    index_verbs = index.add_subparsers(dest="verb", required=True)
    index_verbs.add_parser("snapshot", help="write a snapshot at the head now").set_defaults(
        run=index_snapshot
    )
    index_verbs.add_parser("status", help="the stored snapshots").set_defaults(run=index_status)
    keys = commands.add_parser("keys", help="the data keys that seal secrets, and their KEK")
    keys_verbs = keys.add_subparsers(dest="verb", required=True)
    rotate = keys_verbs.add_parser(
        "rotate", help="re-wrap every data key under MANDATE_SECRET_KEY (one transaction)"
    )
    rotate.add_argument(
        "--new-data-key", action="store_true", help="also add a data key for new secrets"
    )
    rotate.set_defaults(run=keys_rotate)
    keys_verbs.add_parser(
        "status", help="each data key, its key-encryption key, and whether it opens"
    ).set_defaults(run=keys_status)
    account = commands.add_parser("account", help="an account's personal data")
    account_verbs = account.add_subparsers(dest="verb", required=True)
    erase = account_verbs.add_parser(
        "erase-personal-data",
        help="destroy the account's personal-data key: display names read as erased",
    )
    erase.add_argument("account_id")
    erase.set_defaults(run=account_erase_personal_data)
    audit = commands.add_parser("audit", help="verify and export the audit trail")
    audit_verbs = audit.add_subparsers(dest="verb", required=True)
    verify = audit_verbs.add_parser(
        "verify", help="re-derive the trail from the log, check chains and checkpoints"
    )
    verify.add_argument("--account", help="one account's chain (default: the global one)")
    verify.set_defaults(run=audit_verify)
    export = audit_verbs.add_parser("export", help="the trail as NDJSON or CSV, or a bundle")
    export.add_argument("--account", help="one account's records (default: all)")
    export.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    export.add_argument(
        "--bundle", metavar="DIR", help="write records, checkpoints and the public key to DIR"
    )
    export.set_defaults(run=audit_export)
    offline = audit_verbs.add_parser(
        "verify-export", help="verify an exported bundle offline (no database needed)"
    )
    offline.add_argument("bundle", metavar="DIR")
    offline.add_argument(
        "--public-key",
        metavar="PEM",
        help="the key to trust (default: the bundle's own copy; prefer one obtained apart)",
    )
    offline.set_defaults(run=audit_verify_export)
    args = parser.parse_args(argv)
    if args.run is not audit_verify_export:  # the only command that reads no settings
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
    except SettingsError as error:  # a JSON setting that does not parse (says which)
        return str(error)
    except ValueError as error:  # the database URL
        return f"MANDATE_DATABASE_URL: {error}"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
