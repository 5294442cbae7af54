"""What an account held at an instant: its users, groups, roles, policies, contracts, sessions.

The live listings read the decision index, which knows only now. An auditor putting the audit
console at a past instant needs the same lists as they stood then: they are the temporal
index's facts of that kind and account alive at T (``valid_from <= T < valid_to``), one range
of the ``(kind, account_id, object, valid_from)`` index per kind — the account's history of
that kind, never the whole table. A status at T is computed from the facts: a contract
revoked, scheduled or past its term; a delegation revoked, past its end, or ended with its
contract; a session expired (left out) — the rest of a session's liveness is its lineage,
which the caller reads (``AsOfReader.session_at``). A contract's managed role has no role
fact (the entrustment's fact names it), so the roles at T are both kinds, as ``ROLES_AT``
reads them. Nothing secret is in a fact, and of a payload only plain, non-personal fields are
shown (a user's display name is personal data: not here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from mandate.domain.common.ledger_time import from_micros, to_micros
from mandate.projections.store.read_model_store import ReadModelStore

__all__ = ["LISTED_KINDS", "Held", "held_at", "received_at"]

LISTED_KINDS: Final = (
    "user",
    "group",
    "role",
    "policy",
    "entrustment",
    "delegation",
    "session",
    "oidc_provider",
)

_ALIVE = (
    "SELECT subject, object, payload, valid_from FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND valid_from <= ?"
    " AND (valid_to IS NULL OR valid_to > ?)"
)

_CLOSED_IN = (
    "SELECT subject, object, payload, valid_from, valid_to FROM {p}_facts"
    " WHERE kind = ? AND account_id = ? AND valid_from <= ?"
    " AND valid_to >= ? AND valid_to <= ?"
)
"""Facts closed in a window (for sessions: revoked then, the only event closing one)."""

_ALL_CONTRACTS = (
    "SELECT subject, object, payload, valid_from, account_id FROM {p}_facts"
    " WHERE kind = 'entrustment' AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
)
"""Every contract alive at T, of any grantor: the trustee is in the payload, not indexed (as
``ALL_ROLES_AT`` reads every role for effective permissions; contracts are few)."""

_CONTRACT = (
    "SELECT payload, valid_to FROM {p}_facts WHERE kind = 'entrustment' AND subject = ?"
    " AND valid_from <= ? ORDER BY valid_from DESC, opened_position DESC LIMIT 1"
)
"""A delegation's contract as it stood at T (revoked, ended, or live)."""

_SHOWN: Final[dict[str, tuple[str, ...]]] = {
    "user": (),
    "group": (),
    "role": ("description", "max_session_duration"),
    "policy": ("default_version",),
    "entrustment": (
        "trustee_account_id",
        "contract_ref",
        "description",
        "scope",
        "revoked_reason",
    ),
    "delegation": (
        "entrustment_id",
        "entrustment_account_id",
        "grantee_arn",
        "grantee_kind",
        "scope",
    ),
    "session": ("role_name", "role_session_name", "source_arn", "parent_access_key_id"),
    "oidc_provider": (
        "issuer_url",
        "client_ids",
        "issuance_limit_time",
        "keys",
        "jwks_url",
        "description",
    ),
}
"""The payload fields each kind shows (instants are added as RFC 3339 below)."""

_INSTANTS: Final[dict[str, tuple[str, ...]]] = {
    "entrustment": ("starts_at", "ends_at"),
    "delegation": ("ends_at",),
    "session": ("issued_at", "expiration"),
}


@dataclass(frozen=True, slots=True)
class Held:
    """One entity of the account alive at T: its id, its name then, since when it was so."""

    kind: str
    id: str
    name: str
    since: datetime
    """When this fact opened: the entity's creation, or its last change before T."""
    status: str
    details: dict[str, Any]


def received_at(store: ReadModelStore, account_id: str, at: datetime) -> list[Held]:
    """The contracts other accounts had granted ``account_id`` (its trustee) alive at ``at``,
    by contract then id; ``grantor_account_id`` says whose each is."""
    t = to_micros(at)
    with store.transaction(commit=False) as cursor:
        rows = store.execute(cursor, _ALL_CONTRACTS, (t, t)).fetchall()
    held = []
    for row in rows:
        payload: dict[str, Any] = json.loads(row["payload"])
        if payload.get("trustee_account_id") != account_id:
            continue
        details = {name: payload.get(name) for name in _SHOWN["entrustment"]}
        scope = details.get("scope")
        details["scope"] = json.loads(scope) if isinstance(scope, str) else scope
        details["grantor_account_id"] = str(row["account_id"])
        for name in _INSTANTS["entrustment"]:
            micros = payload.get(name)
            details[name] = from_micros(int(micros)) if micros is not None else None
        held.append(
            Held(
                "entrustment",
                str(row["subject"]),
                str(row["object"]),
                from_micros(int(row["valid_from"])),
                _status("entrustment", payload, t),
                details,
            )
        )
    held.sort(key=lambda h: (str(h.details["contract_ref"]), h.id))
    return held


def held_at(
    store: ReadModelStore,
    account_id: str,
    kind: str,
    at: datetime,
    ended_since: datetime | None = None,
) -> list[Held]:
    """Every ``kind`` entity of ``account_id`` alive at ``at``, by name then id.

    A session is the role's account's; an expired session (its ``expiration`` at or before T)
    is not held, nor is one revoked before T (its fact closed) — unless it ended at or after
    ``ended_since``: then it is listed, ``expired`` or ``revoked`` (with ``ended_at``) — and
    the rest of its liveness (its lineage) is the caller's to read
    (``AsOfReader.session_at``). A delegation is the trustee's account's, ``ended`` once its
    contract was revoked or ended; an entrustment is the grantor's.
    """
    if kind not in LISTED_KINDS:
        raise ValueError(f"not a listed kind: {kind!r}")
    t = to_micros(at)
    since = to_micros(ended_since) if ended_since is not None else None
    with store.transaction(commit=False) as cursor:
        rows = store.execute(cursor, _ALIVE, (kind, account_id, t, t)).fetchall()
        revoked_at: dict[str, int] = {}
        if kind == "session" and since is not None:
            closed = store.execute(cursor, _CLOSED_IN, (kind, account_id, t, since, t)).fetchall()
            revoked_at = {str(row["subject"]): int(row["valid_to"]) for row in closed}
            rows = [*rows, *closed]
        managed: set[str] = set()
        if kind == "role":  # a contract's managed role is the entrustment's fact (its object)
            contracts_held = store.execute(cursor, _ALIVE, ("entrustment", account_id, t, t))
            extra = contracts_held.fetchall()
            managed = {str(row["subject"]) for row in extra}
            rows = [*rows, *extra]
        contracts: dict[str, str] = {}
        if kind == "delegation":
            for row in rows:
                contract = str(json.loads(row["payload"])["entrustment_id"])
                if contract not in contracts:
                    found = store.execute(cursor, _CONTRACT, (contract, t)).fetchone()
                    contracts[contract] = (
                        _status("entrustment", json.loads(found["payload"]), t)
                        if found is not None
                        else "ended"
                    )
    held = []
    for row in rows:
        payload: dict[str, Any] = json.loads(row["payload"]) if row["payload"] else {}
        status = _status(kind, payload, t)
        ended_at = revoked_at.get(str(row["subject"]))
        if ended_at is not None and int(payload["expiration"]) > ended_at:
            status = "revoked"  # its fact closed by SessionRevoked before it expired
        contract = contracts.get(str(payload.get("entrustment_id")), "active")
        if status == "active" and contract in ("revoked", "ended"):
            status = "ended"  # a delegation lives only while its contract does
        if status == "expired" and (since is None or int(payload["expiration"]) < since):
            continue
        details = {name: payload.get(name) for name in _SHOWN[kind]}
        scope = details.get("scope")
        if isinstance(scope, str):  # a policy document, stored as its text
            details["scope"] = json.loads(scope)
        if kind == "role":
            # the contract's id when the role is its managed role (None: an ordinary role)
            subject = str(row["subject"])
            details["entrustment_id"] = subject if subject in managed else None
        for name in _INSTANTS.get(kind, ()):
            micros = payload.get(name)
            details[name] = from_micros(int(micros)) if micros is not None else None
        if status == "revoked" and ended_at is not None:
            details["ended_at"] = from_micros(ended_at)
        held.append(
            Held(
                kind,
                str(row["subject"]),
                str(row["object"]),
                from_micros(int(row["valid_from"])),
                status,
                details,
            )
        )
    held.sort(key=lambda h: (h.name, h.id))
    return held


def _status(kind: str, payload: dict[str, Any], t: int) -> str:
    """The entity's status at ``t`` as its own fact tells it."""
    ends = payload.get("ends_at")
    if kind == "entrustment":
        if payload.get("revoked"):
            return "revoked"
        if payload.get("ended") or (ends is not None and int(ends) <= t):
            return "ended"
        starts = payload.get("starts_at")
        return "scheduled" if starts is not None and int(starts) > t else "active"
    if kind == "delegation":
        if payload.get("revoked"):
            return "revoked"
        return "ended" if ends is not None and int(ends) <= t else "active"
    if kind == "session":
        expiration = payload.get("expiration")
        return "expired" if expiration is not None and int(expiration) <= t else "active"
    return "active"
