"""Entrusted contracts (A → B) and the delegations B makes under them (docs/design.md §3.2).

An ``Entrustment`` of account A gives account B a scope over A's resources under a contract
reference and an optional term; it is realised as a *managed* role of A (its name claimed in
A's roles, its id the entrustment's), whose permissions are the scope and whose trust is
computed from the live delegations under it. A ``Delegation`` of account B lets one of B's
users or groups act under an entrustment B received, narrowed by a scope of its own.

Nothing under an entrustment is rewritten when it ends: ``EntrustmentRevoked`` (or reaching
``ends_at``) is one fact, and every delegation and session that hangs from it is judged dead
wherever it is used, from that fact (``domain.sts.session_lineage``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from mandate.domain.common.arns import PrincipalKind, entrustment_arn
from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.common.errors import Conflict
from mandate.domain.common.ledger_time import format_instant
from mandate.domain.policy.document import Effect, PolicyDocument

__all__ = [
    "Delegation",
    "Entrustment",
    "EntrustmentStatus",
    "ScopeWarning",
    "entrustment_status",
    "merged_scope",
    "scope_warnings",
]


class EntrustmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ENDED = "ended"
    REVOKED = "revoked"


def entrustment_status(
    *,
    revoked: bool,
    ended: bool,
    starts_at: datetime | None,
    ends_at: datetime | None,
    at: datetime,
) -> EntrustmentStatus:
    """The status at ``at``: a term's end counts as soon as it is reached, event or not."""
    if revoked:
        return EntrustmentStatus.REVOKED
    if ended or (ends_at is not None and at >= ends_at):
        return EntrustmentStatus.ENDED
    if starts_at is not None and at < starts_at:
        return EntrustmentStatus.SCHEDULED
    return EntrustmentStatus.ACTIVE


class Entrustment(LedgerAggregate):
    TOPIC = "mandate:Entrustment.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Entrustment.Event.v1"

    class EntrustmentGranted(LedgerAggregate.Created, Event):
        TOPIC = "mandate:EntrustmentGranted.v1"
        account_id: str
        trustee_account_id: str
        role_name: str
        scope: str
        scope_policies: list[str] | None
        contract_ref: str
        starts_at: datetime | None
        ends_at: datetime | None
        description: str | None

    @event(EntrustmentGranted)
    def __init__(
        self,
        account_id: str,
        trustee_account_id: str,
        role_name: str,
        scope: str,
        scope_policies: list[str] | None,
        contract_ref: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
        description: str | None,
    ) -> None:
        self.account_id = account_id
        self.trustee_account_id = trustee_account_id
        self.role_name = role_name
        self.scope = scope
        self.scope_policies = scope_policies
        self.contract_ref = contract_ref
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.description = description
        self.revoked = False
        self.ended = False

    def status(self, at: datetime) -> EntrustmentStatus:
        return entrustment_status(
            revoked=self.revoked,
            ended=self.ended,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            at=at,
        )

    def dead_reason(self, at: datetime) -> str | None:
        """Why nothing may hang from the contract at ``at`` (a new session, say), or None.

        The words of the lineage's ``EntrustmentState.dead_reason``, from the aggregate: the
        command side reads it from the log itself, where the index may not have caught up.
        """
        status = self.status(at)
        if status is EntrustmentStatus.ACTIVE:
            return None
        contract = f"the entrustment {entrustment_arn(self.account_id, self.id)} (contract "
        if status is EntrustmentStatus.REVOKED:
            return f"{contract}{self.contract_ref}) was revoked"
        if status is EntrustmentStatus.ENDED:
            when = format_instant(self.ends_at) if self.ends_at else "its end"
            return f"{contract}{self.contract_ref}) ended at {when}"
        return f"{contract}{self.contract_ref}) had not started"

    def _require_open(self, at: datetime, doing: str) -> None:
        status = self.status(at)
        if status in (EntrustmentStatus.REVOKED, EntrustmentStatus.ENDED):
            raise Conflict(
                f"entrustment {self.id} is {status.value}: it cannot be {doing}",
                code=f"Entrustment.{status.value.capitalize()}",
            )

    def amend(self, scope: str, scope_policies: list[str] | None, at: datetime) -> None:
        """``EntrustmentAmended``: a new scope, as an event (a later policy version never is)."""
        self._require_open(at, "amended")
        if scope == self.scope and scope_policies == self.scope_policies:
            return
        self._amended(scope=scope, scope_policies=scope_policies)

    class EntrustmentAmended(Event):
        TOPIC = "mandate:EntrustmentAmended.v1"
        scope: str
        scope_policies: list[str] | None

    @event(EntrustmentAmended)
    def _amended(self, scope: str, scope_policies: list[str] | None) -> None:
        self.scope = scope
        self.scope_policies = scope_policies

    def revoke(self, at: datetime) -> None:
        """End the contract now: one event, whatever hangs from it."""
        self._require_open(at, "revoked")
        self._revoked()

    class EntrustmentRevoked(Event):
        TOPIC = "mandate:EntrustmentRevoked.v1"

    @event(EntrustmentRevoked)
    def _revoked(self) -> None:
        self.revoked = True

    def end(self, at: datetime) -> bool:
        """Record that the term was reached (idempotent); whether an event was recorded."""
        if self.revoked or self.ended or self.ends_at is None or at < self.ends_at:
            return False
        self._ended()
        return True

    class EntrustmentEnded(Event):
        TOPIC = "mandate:EntrustmentEnded.v1"

    @event(EntrustmentEnded)
    def _ended(self) -> None:
        self.ended = True


class Delegation(LedgerAggregate):
    TOPIC = "mandate:Delegation.v1"

    class Event(LedgerAggregate.Event):
        TOPIC = "mandate:Delegation.Event.v1"

    @staticmethod
    def create_id(delegation_id: UUID, **_: object) -> UUID:
        return delegation_id

    class DelegationGranted(LedgerAggregate.Created, Event):
        TOPIC = "mandate:DelegationGranted.v1"
        delegation_id: UUID
        account_id: str
        entrustment_id: UUID
        entrustment_account_id: str
        grantee_arn: str
        grantee_kind: str
        grantee_id: UUID
        scope: str
        ends_at: datetime | None

    @event(DelegationGranted)
    def __init__(
        self,
        delegation_id: UUID,
        account_id: str,
        entrustment_id: UUID,
        entrustment_account_id: str,
        grantee_arn: str,
        grantee_kind: PrincipalKind | str,
        grantee_id: UUID,
        scope: str,
        ends_at: datetime | None,
    ) -> None:
        self.account_id = account_id
        self.entrustment_id = entrustment_id
        self.entrustment_account_id = entrustment_account_id
        self.grantee_arn = grantee_arn
        # the stored event holds the plain string: a replay gives it back as one
        self.grantee_kind = PrincipalKind(grantee_kind)
        self.grantee_id = grantee_id
        self.scope = scope
        self.ends_at = ends_at
        self.revoked = False

    def live(self, at: datetime) -> bool:
        """Whether it still lets its grantee act at ``at`` (not revoked, not ended)."""
        return not self.revoked and (self.ends_at is None or at < self.ends_at)

    def revoke(self, at: datetime) -> None:
        if self.revoked:
            raise Conflict(f"delegation {self.id} is already revoked", code="Delegation.Revoked")
        if self.ends_at is not None and at >= self.ends_at:
            raise Conflict(f"delegation {self.id} has already ended", code="Delegation.Ended")
        self._revoked()

    class DelegationRevoked(Event):
        TOPIC = "mandate:DelegationRevoked.v1"

    @event(DelegationRevoked)
    def _revoked(self) -> None:
        self.revoked = True


# -- containment of a delegation's scope in its entrustment's ---------------------------------


@dataclass(frozen=True, slots=True)
class ScopeWarning:
    statement: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"statement": self.statement, "reason": self.reason}


def _covers(outer: str, inner: str, *, case_sensitive: bool) -> bool:
    """Whether glob ``outer`` matches everything glob ``inner`` does (a sufficient test).

    Each wildcard of ``inner`` becomes a character no literal can equal: a ``*`` one that only
    a ``*`` of ``outer`` may consume, a ``?`` one that a ``?`` of ``outer`` may consume too.
    ``oss:*`` covers ``oss:Get*`` and ``a?c`` covers itself; ``ecs:Reboot*`` does not cover
    ``ecs:*``, nor ``a?c`` cover ``a*c``.
    """
    any_run, any_one = "\x00", "\x01"
    parts = []
    for char in outer:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append("[^\x00]")
        else:
            parts.append(re.escape(char))
    text = "".join(any_run if c == "*" else any_one if c == "?" else c for c in inner)
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.fullmatch("".join(parts), text, flags) is not None


def scope_warnings(delegation: PolicyDocument, entrustment: PolicyDocument) -> list[ScopeWarning]:
    """The delegation's Allow statements whose actions or resources (each action on each
    resource, by one statement) the entrustment's Allow statements do not contain. Accepted
    anyway: layers intersect, so they can never exceed it.
    """
    allows = [s for s in entrustment.statements if s.effect is Effect.ALLOW and not s.negated]
    warnings = []
    for index, statement in enumerate(delegation.statements):
        if statement.effect is not Effect.ALLOW:
            continue
        if statement.negated:
            warnings.append(
                ScopeWarning(index, "NotAction cannot be shown to be within the entrustment")
            )
            continue
        # an Allow that holds only under a Condition contains only the same Condition
        covering = [s for s in allows if s.condition is None or s.condition == statement.condition]
        missing_actions = [
            a
            for a in statement.actions
            if not any(_covers(o, a, case_sensitive=False) for s in covering for o in s.actions)
        ]
        resources = statement.resource or ()
        missing_resources = [
            r
            for r in resources
            if not any(
                _covers(o, r, case_sensitive=True) for s in covering for o in (s.resource or ())
            )
        ]
        # each action must be entrusted on each resource by one statement, not just somewhere
        apart = [
            f"{a} on {r}"
            for a in statement.actions
            if a not in missing_actions
            for r in resources
            if r not in missing_resources
            and not any(
                any(_covers(o, a, case_sensitive=False) for o in s.actions)
                and any(_covers(o, r, case_sensitive=True) for o in (s.resource or ()))
                for s in covering
            )
        ]
        reasons = []
        if missing_actions:
            reasons.append(f"actions not entrusted: {', '.join(missing_actions)}")
        if missing_resources:
            reasons.append(f"resources not entrusted: {', '.join(missing_resources)}")
        if apart:
            reasons.append(f"not entrusted together: {', '.join(apart)}")
        if reasons:
            warnings.append(
                ScopeWarning(index, "; ".join(reasons) + " (the entrustment bounds it anyway)")
            )
    return warnings


def merged_scope(documents: list[PolicyDocument]) -> str:
    """One scope document from several policies' statements (a snapshot at grant)."""
    statements: list[object] = []
    for document in documents:
        written = document.as_dict()["Statement"]
        statements.extend(written if isinstance(written, list) else [written])
    return json.dumps({"Statement": statements, "Version": "1"}, sort_keys=True)
