"""The decision index: every fact a live decision needs, in memory, kept current from the log.

Each API process holds one, rebuilt from position 0 at start and then fed by a
``LogFollower``. It answers ``authorize`` without I/O: credentials by key id, a principal's
compiled policy layers (cached per principal generation), and memoised decisions for requests whose
outcome cannot depend on the request context.

Writes to the index happen on one thread at a time (the follower's lock); readers run
concurrently and never lock — every container they iterate is replaced, not mutated. Each
event applies under ``steady``, a lock a reader takes only when it must answer the position
of exactly the state it read: ``/v1/authorize`` authenticates, decides and reads
``position`` under it, so its answer's position is the state it decided on, never a later
one (an uncontended lock costs a fraction of a microsecond; an apply waits at most for one
decision, a decision for one event).

The class is composed by job, each a module of this package: ``state`` (what it holds),
``identity_events`` and ``sts_events`` (how each event class changes it, registered on one
``EventHandlers``), ``queries`` (named reads for the API), ``memo`` (memoised decisions and
compiled layers by generation), ``lineage`` (sessions resolved now), ``through_roles``
("could P do it?" through roles), ``read_port`` (the ledger's preconditions) and
``authentication`` (credentials and subjects). Here: applying the log, in order.
"""

from __future__ import annotations

from datetime import timedelta

from eventsourcing.domain import DomainEvent

from mandate.domain.common.ledger_time import ledger_time_after
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.principals import Group, User
from mandate.domain.permissions.handshakes import Handshake
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session
from mandate.projections.decisions import (
    directory_events,
    identity_events,
    resource_policy_events,
    sts_events,
)
from mandate.projections.decisions.authentication import Authentication
from mandate.projections.decisions.state import HANDLERS
from mandate.projections.dispatch import UnknownEvent

__all__ = ["DecisionIndex"]

_HANDLER_MODULES = (identity_events, sts_events, directory_events, resource_policy_events)
"""Imported for what importing them does: their handlers are registered on ``HANDLERS``."""
_LINEAGE_NEUTRAL: frozenset[type[DomainEvent]] = frozenset(
    {
        Session.SessionIssued,
        User.AccessKeyCreated,
        User.AccessKeyDisabled,
        User.AccessKeyEnabled,
        User.AccessKeyDeleted,
        User.UserCreated,
        User.UserUpdated,
        Group.GroupCreated,
        User.PolicyAttached,
        User.PolicyDetached,
        Group.PolicyAttached,
        Group.PolicyDetached,
        ManagedPolicy.PolicyCreated,
        Account.RootAccessKeyRotated,
        User.TagsChanged,
        Role.TagsChanged,
        Handshake.Invited,  # an invitation's life: the member joins by the directory's event
        Handshake.Accepted,
        Handshake.Declined,
        Handshake.Cancelled,
    }
)
"""Events that cannot change whether an existing session is alive or what its layers are
(sessions' layers come from roles and session policies, never from users' or groups'
policies; but memberships are not neutral: a delegation to a group reaches its members, so
joining or leaving a group changes a managed role's session). Every other applied event moves
the lineage epoch, which drops every verified session credential at once."""
_EPOCH_KEPT: frozenset[type] = _LINEAGE_NEUTRAL | {
    c for c in HANDLERS.known() if HANDLERS.ignored(c)
}
"""Lineage-neutral events, and those the index ignores (they change nothing)."""
_handler_of = HANDLERS.lookup()
"""One dictionary lookup by event class per event applied (replay's hot path)."""
_SESSION_RETENTION = timedelta(hours=1)
"""How long an expired session is still remembered (to refuse it with its reason)."""


class DecisionIndex(Authentication):
    """In-memory read model for live decisions, management reads and write preconditions."""

    def apply(self, event: DomainEvent, position: int) -> None:
        """Apply one event at its ledger position (called by the follower, in order).

        An event of a class the index does not know raises ``UnknownEvent``: the follower
        logs it, records it in ``skipped`` and passes over it, as for any event it cannot
        apply.
        """
        cls = type(event)
        handler = _handler_of(cls)
        if handler is None:
            raise UnknownEvent(HANDLERS.read_model, cls)
        with self.steady:  # a reader holding it sees no event half applied (``steady``)
            self._applying = position
            handler(self, event)
            if cls not in _EPOCH_KEPT:
                self._lineage_epoch += 1  # after the change (see ``authenticate_session``)
            self.ledger_time = ledger_time_after(self.ledger_time, event.timestamp)
            self.position = position
            expiries = self._session_expiries
            if expiries and expiries[0][0] < self.ledger_time - _SESSION_RETENTION:
                self._forget_expired_sessions(self.ledger_time - _SESSION_RETENTION)
