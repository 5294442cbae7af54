"""What a rebuilt read-model copy must satisfy before readers switch to it (``mandate
projections rebuild``): a rebuilt audit trail must reproduce every head the old copy signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mandate.projections.audit.trail import GLOBAL_SCOPE
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.rebuild import RebuildRefused

__all__ = ["audit_rebuild_check"]


def audit_rebuild_check(old_store: ReadModelStore) -> Callable[[ReadModelStore], None]:
    """The check a rebuilt audit trail passes before it replaces ``old_store``.

    Each checkpoint of the old copy is compared with the new copy's hash at its position,
    oldest first, and the first difference refuses the switch, naming the chain and the
    position. The old copy's checkpoints are then carried over — they are history, and remain
    valid.
    """

    def check(new_store: ReadModelStore) -> None:
        rows = old_store.query(
            "SELECT scope, position, body FROM {p}_checkpoints ORDER BY position, scope"
        )
        for row in rows:  # oldest first: the refusal names the earliest disagreement
            scope, body = row["scope"], json.loads(row["body"])
            if scope == GLOBAL_SCOPE:
                found = new_store.query(
                    "SELECT hash FROM {p}_records WHERE position <= ?"
                    " ORDER BY position DESC LIMIT 1",
                    (body["position"],),
                )
            else:
                found = new_store.query(
                    "SELECT hash FROM {p}_account_records WHERE account_id = ?"
                    " AND position <= ? ORDER BY position DESC LIMIT 1",
                    (scope, body["position"]),
                )
            head = found[0]["hash"] if found else None
            if head != body["head"]:
                chain = "the global chain" if scope == GLOBAL_SCOPE else f"account {scope}"
                raise RebuildRefused(
                    f"{chain} rebuilt from the log differs from the checkpoint signed at "
                    f"position {body['position']}: the log or the old trail was altered "
                    "at or before that position (run `mandate audit verify`)"
                )
        with new_store.transaction(commit=True) as cursor:
            new_store.executemany(
                cursor,
                "INSERT INTO {p}_checkpoints (scope, position, body) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, position) DO NOTHING",
                [(r["scope"], r["position"], r["body"]) for r in rows],
            )

    return check
