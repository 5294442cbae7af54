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
from mandate.projections.audit.naming import AuditNaming, NamedEntity
from mandate.projections.dispatch import EventHandlers

__all__ = ["RULES", "Described", "attachment_rule", "created", "deleted_rule"]


@dataclass(frozen=True, slots=True)
class Described:
    """What a rule says of an event: the accounts it concerns, its target ARN, its summary."""

    accounts: tuple[str, ...]
    target: str
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, entity: NamedEntity, summary: dict[str, Any] | None = None) -> Described:
        """An event about one account's entity: that account, the entity's ARN."""
        return cls((entity.account_id,), entity.arn, {} if summary is None else summary)

    @classmethod
    def about(
        cls,
        naming: AuditNaming,
        aggregate_id: object,
        kind: str,
        summary: dict[str, Any] | None = None,
    ) -> Described:
        """An event that changes an entity of ``kind``, named as it is."""
        return cls.of(naming.require(aggregate_id, kind), summary)


RULES: EventHandlers[AuditNaming] = EventHandlers("audit trail")
"""One rule per event class: ``rule(naming, event, ledger_time) -> Described``."""


def created(
    naming: AuditNaming, aggregate_id: object, entity: NamedEntity, summary: dict[str, Any]
) -> Described:
    """A user, group, policy or role created: remembered under its name, then described."""
    naming.remember(aggregate_id, entity)
    return Described.of(entity, summary)


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
        described = Described.about(naming, e.originator_id, kind)
        naming.forget(e.originator_id)
        return described

    return rule


def attachment_rule(
    kind: PrincipalKind,
) -> Callable[[AuditNaming, _PolicyChangeEvent, datetime], Described]:
    """The rule of a user's, group's or role's ``PolicyAttached`` / ``PolicyDetached``."""

    def rule(naming: AuditNaming, e: _PolicyChangeEvent, at: datetime) -> Described:
        summary = {"policy_type": e.policy_type, "policy_name": e.policy_name}
        return Described.about(naming, e.originator_id, kind, summary)

    return rule
