"""What hangs from an entrustment, as the audit naming state keeps it.

An entrustment's revocation or end is recorded with what it ended at its ledger time: the
delegations under it and the sessions of its managed role still live then.
``EntrustmentDependents`` keeps, per entrustment, its two accounts and those dependents
(``Dependent``), pruned as they stop being live so the state stays the size of what lives;
``AuditNaming`` persists it as JSON. (Not ``domain.sts.session_lineage.EntrustmentState``:
that is the contract itself, as a session depends on it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mandate.domain.common.arns import delegation_arn
from mandate.projections.audit.conventions import optional_rfc3339, parse_rfc3339

__all__ = ["Dependent", "EntrustmentDependents"]


@dataclass(slots=True)
class Dependent:
    """A delegation or a session under an entrustment, as far as a revocation's record needs
    it: what to call it (a delegation's ARN, a session's ``access_key_id``), when it ends by
    itself (``None``: never) and whether it was revoked."""

    name: str
    ends_at: datetime | None
    revoked: bool = False

    def live_at(self, at: datetime) -> bool:
        return not self.revoked and (self.ends_at is None or self.ends_at > at)


@dataclass(slots=True)
class EntrustmentDependents:
    """An entrustment of ``account_id`` (A) to ``trustee_account_id`` (B), and what hangs
    from it: delegations by id, sessions of its managed role by session aggregate id.

    ``closed`` is ``revoked`` or ``ended`` once one of those events is recorded; the
    dependents are then dropped (nothing is ended twice). Dependents that can no longer be
    live (revoked, or ended at or before the ledger time of a later grant or issue under the
    entrustment) are dropped when one is added, so the state stays the size of what lives.
    """

    account_id: str
    trustee_account_id: str
    closed: str | None = None
    delegations: dict[str, Dependent] = field(default_factory=dict)
    sessions: dict[str, Dependent] = field(default_factory=dict)

    def live_at(self, at: datetime) -> tuple[list[str], list[str]]:
        """Names of the delegations and of the sessions live at ``at``, each sorted."""
        return (
            sorted(d.name for d in self.delegations.values() if d.live_at(at)),
            sorted(s.name for s in self.sessions.values() if s.live_at(at)),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "entrustment",
            "account_id": self.account_id,
            "trustee_account_id": self.trustee_account_id,
            "closed": self.closed,
            "delegations": {
                delegation_id: {
                    "ends_at": optional_rfc3339(d.ends_at, "ends_at"),
                    "revoked": d.revoked,
                }
                for delegation_id, d in self.delegations.items()
            },
            "sessions": {
                session_id: {
                    "access_key_id": s.name,
                    "expiration": optional_rfc3339(s.ends_at, "expiration"),
                    "revoked": s.revoked,
                }
                for session_id, s in self.sessions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntrustmentDependents:
        def instant(value: object) -> datetime | None:
            return None if value is None else parse_rfc3339(str(value))

        account_id, trustee = str(data["account_id"]), str(data["trustee_account_id"])
        closed = data.get("closed")
        return cls(
            account_id,
            trustee,
            None if closed is None else str(closed),
            delegations={
                str(delegation_id): Dependent(
                    delegation_arn(trustee, delegation_id),
                    instant(value["ends_at"]),
                    bool(value["revoked"]),
                )
                for delegation_id, value in (data.get("delegations") or {}).items()
            },
            sessions={
                str(session_id): Dependent(
                    str(value["access_key_id"]),
                    instant(value["expiration"]),
                    bool(value["revoked"]),
                )
                for session_id, value in (data.get("sessions") or {}).items()
            },
        )
