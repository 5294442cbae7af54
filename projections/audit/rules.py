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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mandate.domain.common.arns import PrincipalKind
from mandate.projections.audit.naming import AuditNaming
from mandate.projections.dispatch import EventHandlers

__all__ = ["RULES", "Described", "attachment_rule", "deleted_rule"]


@dataclass(frozen=True, slots=True)
class Described:
    """What a rule says of an event: the accounts it concerns, its target ARN, its summary."""

    accounts: tuple[str, ...]
    target: str
    summary: dict[str, Any] = field(default_factory=dict)


RULES: EventHandlers[AuditNaming] = EventHandlers("audit trail")
"""One rule per event class: ``rule(naming, event, ledger_time) -> Described``."""


class _AggregateEvent(Protocol):
    @property
    def originator_id(self) -> Any: ...


class _PolicyChangeEvent(_AggregateEvent, Protocol):
    @property
    def policy_type(self) -> str: ...

    @property
    def policy_name(self) -> str: ...


def deleted_rule(kind: str) -> Callable[[AuditNaming, _AggregateEvent, datetime], Described]:
    """The rule of a user's, group's, policy's or role's ``…Deleted``: the entity named as it
    was, then forgotten. Registered per event class (``RULES.on(User.UserDeleted)(…)``)."""

    def rule(naming: AuditNaming, e: _AggregateEvent, at: datetime) -> Described:
        entity = naming.require(e.originator_id, kind)
        naming.forget(e.originator_id)
        return Described((entity.account_id,), entity.arn)

    return rule


def attachment_rule(
    kind: PrincipalKind,
) -> Callable[[AuditNaming, _PolicyChangeEvent, datetime], Described]:
    """The rule of a user's, group's or role's ``PolicyAttached`` / ``PolicyDetached``."""

    def rule(naming: AuditNaming, e: _PolicyChangeEvent, at: datetime) -> Described:
        principal = naming.require(e.originator_id, kind)
        summary = {"policy_type": e.policy_type, "policy_name": e.policy_name}
        return Described((principal.account_id,), principal.arn, summary)

    return rule
