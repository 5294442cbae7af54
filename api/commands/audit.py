"""``mandate audit verify | export | verify-export``: re-derive the audit trail from the log,
export it (NDJSON, CSV or a signed bundle), and verify a bundle offline."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from mandate.api.commands import open_runtime
from mandate.projections.audit.export import csv_lines, verify_bundle, write_bundle
from mandate.projections.audit.shown import shown_records
from mandate.projections.audit.trail import GLOBAL_SCOPE, AuditQuery, checkpoints, iter_records
from mandate.projections.audit.verify import verify_trail
from mandate.projections.store.sql_projection import EventNotApplicable

__all__ = ["audit_export", "audit_verify", "audit_verify_export"]


def audit_verify(args: argparse.Namespace) -> int:
    """Re-derive the trail from the log; exit 1 and name the position when it disagrees."""
    runtime = open_runtime()
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


def audit_export(args: argparse.Namespace) -> int:
    """The trail (global, or one account's) as NDJSON or CSV on stdout, or a bundle (whose
    records stay as stored, sealed display names included, so that they re-hash)."""
    runtime = open_runtime()
    if runtime is None:
        return 2
    try:
        try:
            runtime.audit.catch_up()
        except EventNotApplicable as stalled:  # an export must not stop short silently
            print(f"mandate: the audit projection is stalled at {stalled}", file=sys.stderr)
            return 1
        records = iter_records(runtime.audit.store, AuditQuery(account_id=args.account))
        reader = runtime.keyring.personal_reader()
        if args.bundle:  # verified offline: records as stored (and hashed)
            scope = args.account or GLOBAL_SCOPE
            written = write_bundle(
                Path(args.bundle),
                records,
                checkpoints(runtime.audit.store, scope),
                runtime.audit_public_key_pem,
            )
            print(f"mandate: {written} records, checkpoints and the public key in {args.bundle}")
        elif args.format == "csv":  # read by people: display names opened, or erased
            sys.stdout.writelines(csv_lines(shown_records(records, reader)))
        else:
            for record in shown_records(records, reader):
                sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        return 0
    finally:
        runtime.stop()


def audit_verify_export(args: argparse.Namespace) -> int:
    """Verify an exported bundle offline: its chain and checkpoints, with a public key."""
    bundle = Path(args.bundle)
    key_path = Path(args.public_key) if args.public_key else bundle / "public-key.pem"
    result = verify_bundle(bundle, key_path.read_bytes())
    print(json.dumps(result.as_dict(), indent=2))
    return 0 if result.ok else 1
