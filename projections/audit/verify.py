"""Verifying the audit trail against the event log and the signed checkpoints.

The records are derived again from the log (the same ``audit_record`` function, fresh naming
state, ledger time recomputed) and compared, position by position, with what is stored; the
stored chain is re-hashed from the stored records; the checkpoints' signatures are checked
and their heads compared with the re-hashed chain. The answer names the first position where
anything disagrees:

* a stored record changed, or an event changed in the log → that position (the record
  derived from the log differs from the stored one);
* a record removed, or an event removed → that position (one side has it, the other not);
* two records or events swapped → the first of them (each carries its position);
* the log *and* the records rewritten consistently, hashes recomputed → the first
  checkpoint whose signed head no longer matches (nothing without the key can fix that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mandate.domain.common.ledger_time import ledger_time_after
from mandate.projections.audit.chain import (
    GENESIS,
    SignedCheckpoint,
    canonical_json,
    chain_hash,
    chain_hash_of_canonical,
)
from mandate.projections.audit.naming import AuditNaming
from mandate.projections.audit.records import audit_record
from mandate.projections.audit.trail import (
    GLOBAL_SCOPE,
    AuditQuery,
    checkpoints,
    iter_records,
)
from mandate.projections.store.read_model_store import ReadModelStore
from mandate.projections.store.read_replica import LogSource

__all__ = ["Verification", "derive_records", "verify_chain", "verify_trail"]


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    first_bad_position: int | None
    reason: str | None
    last_checkpoint: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_position": self.first_bad_position,
            "reason": self.reason,
            "last_checkpoint": self.last_checkpoint,
        }


def derive_records(ledger: LogSource, account_id: str | None) -> Iterator[dict[str, Any]]:
    """The records the log implies, in order (only those concerning ``account_id`` if given)."""
    naming = AuditNaming()
    ledger_time: datetime | None = None
    position = 0
    while True:
        notifications = ledger.recorder.select_notifications(
            position, 1000, inclusive_of_start=False
        )
        for notification in notifications:
            try:
                event: Any = ledger.mapper.to_domain_event(notification)
                ledger_time = ledger_time_after(ledger_time, event.timestamp)
                record = audit_record(event, int(notification.id), ledger_time, naming)
            except Exception as error:  # decoding and deriving touch no store
                # The log no longer explains itself (an event removed, altered or moved: its
                # state no longer decodes, or names what was never created), or an event holds
                # a value no record can carry: a record nothing stored can equal, so the
                # comparison stops at the first cause.
                yield {"position": int(notification.id), "underivable": repr(error)}
                continue
            if account_id is None or account_id in record.accounts:
                yield record.as_dict()
        if len(notifications) < 1000:
            return
        position = int(notifications[-1].id)


def verify_chain(
    stored: Iterable[dict[str, Any]],
    derived: Iterable[dict[str, Any]] | None,
    signed: list[SignedCheckpoint],
    public_key: Ed25519PublicKey | None,
) -> Verification:
    """Compare stored records (each with its ``hash``) with derived ones and checkpoints.

    ``derived`` None skips the comparison with the log (an offline export has no log).
    """
    heads: dict[int, str] = {}
    head = GENESIS
    checked = 0
    derived_iter = iter(derived) if derived is not None else None
    for record in stored:
        body = {k: v for k, v in record.items() if k != "hash"}
        position = int(body["position"])
        if derived_iter is not None:
            expected = next(derived_iter, None)
            if expected is not None and int(expected["position"]) < position:
                return _bad(
                    checked,
                    int(expected["position"]),
                    "the stored trail has no record of this event (a record was removed)",
                    signed,
                )
            if expected is None or int(expected["position"]) > position:
                return _bad(
                    checked,
                    position,
                    "no event in the log gives this record (an event was removed)",
                    signed,
                )
            if canonical_json(expected) != canonical_json(body):
                return _bad(
                    checked,
                    position,
                    "the stored record differs from the one the "
                    "event in the log gives (a record or an event was changed)",
                    signed,
                )
        head = chain_hash(head, body)
        if head != record["hash"]:
            return _bad(
                checked,
                position,
                "the chain hash does not match the record "
                "(a record was changed, removed or reordered)",
                signed,
            )
        heads[position] = head
        checked += 1
    if derived_iter is not None:
        extra = next(derived_iter, None)
        if extra is not None:
            return _bad(
                checked,
                int(extra["position"]),
                "the stored trail ends before the log (records were removed)",
                signed,
            )
    last = signed[-1].as_dict() if signed else None
    for checkpoint in signed:
        if public_key is not None and not checkpoint.verify(public_key):
            return _bad(
                checked,
                checkpoint.position,
                "the checkpoint's signature is not valid for this public key",
                signed,
            )
        at = max((p for p in heads if p <= checkpoint.position), default=None)
        if at is None and checkpoint.head != GENESIS:
            return _bad(
                checked,
                checkpoint.position,
                "records anchored by this checkpoint are missing",
                signed,
            )
        if at is not None and heads[at] != checkpoint.head:
            return _bad(
                checked,
                checkpoint.position,
                "the chain head differs from the signed "
                "checkpoint: history up to here was rewritten",
                signed,
            )
    return Verification(True, checked, None, None, last)


def _bad(checked: int, position: int, reason: str, signed: list[SignedCheckpoint]) -> Verification:
    last = signed[-1].as_dict() if signed else None
    return Verification(False, checked, position, reason, last)


def verify_trail(
    ledger: LogSource,
    store: ReadModelStore,
    public_key: Ed25519PublicKey | None,
    account_id: str | None = None,
) -> Verification:
    """Verify the stored trail (global, or one account's) against the log and checkpoints."""
    scope = account_id if account_id is not None else GLOBAL_SCOPE
    applied = store.position()
    stored = (
        r
        for r in iter_records(store, AuditQuery(account_id=account_id))
        if int(r["position"]) <= applied
    )
    derived = (r for r in derive_records(ledger, account_id) if int(r["position"]) <= applied)
    result = verify_chain(stored, derived, checkpoints(store, scope), public_key)
    if account_id is not None or not result.ok:
        return result
    # The global verification checks every account's chain too: the stored records are now
    # known to be the log's, so each account's rows must hash as its chain, list exactly the
    # record's accounts, and match that account's signed checkpoints.
    broken = _verify_account_chains(store, public_key, applied)
    if broken is None:
        return result
    position, reason = broken
    return Verification(False, result.checked, position, reason, result.last_checkpoint)


def _verify_account_chains(
    store: ReadModelStore, public_key: Ed25519PublicKey | None, applied: int
) -> tuple[int, str] | None:
    """The first (position, reason) where an account chain disagrees, or None."""
    heads: dict[str, str] = {}
    history: dict[str, list[tuple[int, str]]] = {}
    after = 0
    while True:
        rows = store.query(
            "SELECT r.position, r.record, a.account_id, a.hash FROM {p}_records r"
            " LEFT JOIN {p}_account_records a ON a.position = r.position"
            " WHERE r.position > ? AND r.position <= ? ORDER BY r.position, a.account_id"
            " LIMIT 5000",
            (after, applied),
        )
        if not rows:
            break
        by_position: dict[int, list[Any]] = {}
        for row in rows:
            by_position.setdefault(int(row["position"]), []).append(row)
        if len(rows) == 5000 and len(by_position) > 1:
            by_position.pop(max(by_position))  # it may continue on the next page
        for position, group in by_position.items():
            body = json.loads(group[0]["record"])
            listed = sorted(row["account_id"] for row in group if row["account_id"] is not None)
            if listed != sorted(body["accounts"]):
                return position, (
                    "the record's accounts and its rows in the account chains differ "
                    f"({sorted(body['accounts'])} vs {listed}): a record was hidden from, or "
                    "added to, an account's trail"
                )
            canonical = canonical_json(body)
            for row in group:
                account = row["account_id"]
                if account is None:
                    continue
                head = chain_hash_of_canonical(heads.get(account, GENESIS), canonical)
                if head != row["hash"]:
                    return position, f"account {account}'s chain hash does not match the record"
                heads[account] = head
                history.setdefault(account, []).append((position, head))
        after = max(by_position)
    for checkpoint in checkpoints_of_accounts(store):
        if public_key is not None and not checkpoint.verify(public_key):
            return checkpoint.position, (
                f"account {checkpoint.scope}'s checkpoint signature is not valid for this key"
            )
        anchored = [h for p, h in history.get(checkpoint.scope, []) if p <= checkpoint.position]
        if (anchored[-1] if anchored else GENESIS) != checkpoint.head:
            return checkpoint.position, (
                f"account {checkpoint.scope}'s chain differs from its signed checkpoint"
            )
    return None


def checkpoints_of_accounts(store: ReadModelStore) -> list[SignedCheckpoint]:
    rows = store.query(
        "SELECT body FROM {p}_checkpoints WHERE scope <> ? ORDER BY position, scope",
        (GLOBAL_SCOPE,),
    )
    return [SignedCheckpoint.from_dict(json.loads(row["body"])) for row in rows]
