"""The registry of the audit trail's per-event rules, by event class, and what a rule returns.

A rule takes the naming state, the typed event and its ledger time, updates the naming state
and says what the event concerns (``Described``); ``projections.audit.records`` makes the
record from that. The rules themselves live by context — ``rules_identity`` (accounts,
users, groups, custom policies, name claims), ``rules_sts`` (roles and sessions),
``rules_contracts`` (entrustments and delegations) — and register here with
``@RULES.on(EventClass)``. ``RULES`` refuses an event class without a rule (``UnknownEvent``):
the trail records every event of the log, so an event it was not taught stops it there.
Events sharing a rule are registered one class at a time (``RULES.on(A)(rule)``), so mypy
checks the rule's parameter against each class.
Import ``RULES`` from ``projections.audit.records``, which loads every rule module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mandate.projections.audit.naming import AuditNaming
from mandate.projections.dispatch import EventHandlers

__all__ = ["RULES", "Described", "attachment", "deleted"]


@dataclass(frozen=True, slots=True)
class Described:
    """What a rule says of an event: the accounts it concerns, its target ARN, its summary."""

    accounts: tuple[str, ...]
    target: str
    summary: dict[str, Any] = field(default_factory=dict)


RULES: EventHandlers[AuditNaming] = EventHandlers("audit trail")
"""One rule per event class: ``rule(naming, event, ledger_time) -> Described``."""


def deleted(naming: AuditNaming, aggregate_id: object, kind: str) -> Described:
    """A user, group, policy or role deleted: named as it was, then forgotten."""
    entity = naming.require(aggregate_id, kind)
    naming.forget(aggregate_id)
    return Described((entity.account_id,), entity.arn)


def attachment(
    naming: AuditNaming, aggregate_id: object, kind: str, policy_type: str, policy_name: str
) -> Described:
    """A policy attached to or detached from a user, a group or a role."""
    principal = naming.require(aggregate_id, kind)
    summary = {"policy_type": policy_type, "policy_name": policy_name}
    return Described((principal.account_id,), principal.arn, summary)
