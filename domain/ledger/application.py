"""The ledger: one eventsourcing ``Application``, one log, one position, one audit order.

Each command loads what it needs, asks one aggregate (or a few) to change — their guards
raise before any event exists, so a refused command writes nothing — and saves everything
that must commit together in one transaction, whose last notification id is the
ledger position handed back to the client. Commands that save at the same moment share
that transaction (``domain.ledger.group_commit``); each still hears only its own outcome.

Concurrency: saves are optimistic. When another writer extended one of our aggregates
first, the save fails with an ``IntegrityError`` and the whole command is re-run against
the new state (guards included), a few times, before answering ``Conflict``
(``domain.ledger.commands.command``).

Where things are: the shared plumbing in ``core`` (``LedgerCore``), the commands per
context in ``identity``, ``policies``, ``roles``, ``sts``, ``contracts`` and ``tagging``, what they
hand back in ``results``; this module composes them into the one ``Ledger``.
"""

from __future__ import annotations

from mandate.domain.ledger.contracts import ContractCommands
from mandate.domain.ledger.core import APPLICATION_NAME
from mandate.domain.ledger.federation import FederationCommands
from mandate.domain.ledger.handshakes import HandshakeCommands
from mandate.domain.ledger.identity import IdentityCommands
from mandate.domain.ledger.policies import PolicyCommands
from mandate.domain.ledger.resource_policies import ResourcePolicyCommands
from mandate.domain.ledger.results import IssuedKey, IssuedSession, OpenedAccount, Positioned
from mandate.domain.ledger.roles import RoleCommands
from mandate.domain.ledger.sts import StsCommands
from mandate.domain.ledger.tagging import TagCommands

__all__ = [
    "APPLICATION_NAME",
    "IssuedKey",
    "IssuedSession",
    "Ledger",
    "OpenedAccount",
    "Positioned",
]


class Ledger(
    IdentityCommands,
    PolicyCommands,
    RoleCommands,
    StsCommands,
    ContractCommands,
    TagCommands,
    FederationCommands,
    HandshakeCommands,
    ResourcePolicyCommands,
):
    """Every command of the ledger: identity, policies, roles, STS sessions, contracts, tags."""

    name = APPLICATION_NAME  # set here too: eventsourcing names a subclass after itself
