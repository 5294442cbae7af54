"""The catalogue of Mandate's domain events: every concrete event of every aggregate, by topic.

It is what read models check their handler registries against
(``projections.dispatch.EventHandlers.unhandled``): a new event declared on an aggregate
appears here by itself, so a read model that has not been taught about it fails its test
instead of passing the event over. Built from the aggregate classes, never listed by hand.

The classes are the ones eventsourcing binds to the aggregates' methods (what
``resolve_topic`` gives for a stored event), so ``type(event)`` of a stored or triggered
event is a key of the inverse mapping. The aggregates' ``Event`` bases and the inherited
``Created`` classes are never stored and are not listed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from eventsourcing.domain import DomainEvent

from mandate.domain.common.audit import LedgerAggregate
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.handshakes import Handshake
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.permissions.resource_directory import ResourceDirectory
from mandate.domain.permissions.resource_policies import ResourcePolicy
from mandate.domain.sts.oidc_providers import OIDCProvider
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session

__all__ = ["AGGREGATES", "EVENT_CLASSES", "concrete_events"]

AGGREGATES: tuple[type[LedgerAggregate], ...] = (
    Account,
    User,
    Group,
    ManagedPolicy,
    Role,
    Session,
    Entrustment,
    Delegation,
    NameClaim,
    OIDCProvider,
    ResourceDirectory,
    ResourcePolicy,
    Handshake,
)


def concrete_events(aggregate: type[LedgerAggregate]) -> Iterator[type[LedgerAggregate.Event]]:
    """The aggregate's events that are stored: each sets a TOPIC of its own.

    The aggregate's ``Event`` is only a base, and ``Created`` (made by eventsourcing for
    every aggregate) inherits ``Event``'s topic; neither is ever triggered.
    """
    base = aggregate.Event
    for value in vars(aggregate).values():
        if (
            isinstance(value, type)
            and issubclass(value, base)
            and value is not base
            and value.TOPIC != base.TOPIC
        ):
            yield value


def _catalogue() -> Mapping[str, type[DomainEvent]]:
    catalogue: dict[str, type[DomainEvent]] = {}
    for aggregate in AGGREGATES:
        for cls in concrete_events(aggregate):
            topic = cls.TOPIC
            if topic in catalogue:  # eventsourcing refuses this too; say which two here
                raise TypeError(f"{cls.__qualname__} and {catalogue[topic].__qualname__}: {topic}")
            catalogue[topic] = cls
    return MappingProxyType(catalogue)


EVENT_CLASSES: Mapping[str, type[DomainEvent]] = _catalogue()
