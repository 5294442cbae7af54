"""Audit records: what one event of the log says, for the audit trail (docs/design.md §4).

``audit_record(event, position, ledger_time, naming)`` turns **every** event of the log —
name claims included — into one ``AuditRecord``: the trail has exactly one record per
position, so a missing record is always a gap, never a policy. Pure: no SQL, no I/O; the only
state is the ``AuditNaming`` the caller passes in and keeps between events
(``projections.audit.naming``). The rule of each event class is registered on ``RULES`` by
the modules ``rules_identity``, ``rules_sts`` and ``rules_contracts``, which this module
loads; this one makes the record from what the rule says.

Conventions
-----------
``event_type``
    The event's topic without the ``mandate:`` prefix and the ``.v<N>`` suffix:
    ``mandate:UserCreated.v1`` → ``UserCreated``, ``mandate:User.PolicyAttached.v1`` →
    ``User.PolicyAttached``, ``mandate:NameReleased.v1`` → ``NameReleased``. Mechanical, so a
    new event's type needs no table, and a ``.v2`` of an event keeps its type.
``target``
    The ARN of the entity acted upon, named as it was when the event happened:

    * account events: the account's root, ``acs:ram::<account>:root``; a root AccessKey
      rotation names the new key, ``acs:ram::<account>:root/accesskey/<access_key_id>``;
    * user events (profile, membership, attachments): ``acs:ram::<account>:user/<name>``;
      a rename (``UserUpdated``) names the user by the name the request addressed, its
      previous name; AccessKey events name the key,
      ``acs:ram::<account>:user/<name>/accesskey/<access_key_id>``;
    * group events: ``acs:ram::<account>:group/<name>``;
    * custom policy events (versions included): ``acs:ram::<account>:policy/<name>``;
    * role events (profile, trust policy, attachments, session revocation):
      ``acs:ram::<account>:role/<name>``;
    * STS session events: the session's assumed-role ARN,
      ``acs:ram::<account>:assumed-role/<role_name>/<role_session_name>`` (``<account>`` is
      the role's); the session's ``access_key_id``, its unique name, is in the summary;
    * entrustment events (granted, amended, revoked, ended): the entrustment,
      ``acs:ram::<A>:entrustment/<id>`` (``<A>`` the entrusting account); delegation events
      (granted, revoked): the delegation, ``acs:ram::<B>:delegation/<id>`` (``<B>`` the
      trustee, whose delegation it is);
    * name claims: the ARN of the claimed name (``…:user/<name>``, ``…:group/<name>``,
      ``…:policy/<name>``, ``…:role/<name>``), so a ``target`` prefix finds an entity's
      claims with its events.
``accounts``
    The ids of the accounts the event concerns, sorted, without duplicates. Most events
    concern exactly the one account they belong to (a name claim: the account of the
    claimed name). A session's events concern both the role's account and the account of
    the session's source principal (the same one unless the session is cross-account), so
    a cross-account session's records are in both accounts' chains. Entrustment and
    delegation events concern both sides of the contract, the entrusting account and the
    trustee.
``summary``
    What changed, JSON-ready, in the event's own words: names, display names, descriptions
    and comments, AccessKey ids and statuses, policy types and names, policy version ids,
    whether a new version became the default, the full policy document text (identity,
    trust and session policies: not secret, and what an auditor needs to see), a role's
    session limit, and instants (a revocation horizon, a session's issue and expiry) in the
    format of ``time``. An entrustment's grant: its contract reference, trustee account,
    managed role's ARN, scope text and the policies it was snapshotted from, term
    (``starts_at``, ``ends_at``) and description; an amendment: the new scope. A revocation
    or an end says what it ended at its ledger time: ``ended_delegations`` (the ARNs of the
    delegations under the entrustment still live then — not revoked, and not ended by their
    own ``ends_at`` at or before it) and ``ended_sessions`` (the ``access_key_id`` of each
    session of the managed role not revoked and expiring after it), both sorted. A
    delegation's grant: the entrustment's ARN, the grantee's ARN, the scope and its end;
    its revocation: the entrustment's ARN. Never a secret or a secret's hash:
    ``root_secret_hash`` and ``secret_hash`` are not copied, and neither are internal
    aggregate UUIDs (a session's ``role_id`` and ``source_user_id``, a delegation's
    ``grantee_id`` included; the ARNs and the position identify the entities — the only ids
    shown are an entrustment's and a delegation's, which are their ARNs' names).
``credential``
    The AccessKey or session key id the actor used. In a record that concerns two accounts
    (a cross-account session, an entrustment, a delegation) it is
    shown as ``sha256:<first 24 hex digits of its SHA-256>``: the record is in both accounts'
    chains, and one tenant never learns a key id of another — the actor's own account can
    still match it against its keys.
``time``
    The ledger time (docs/design.md §4), RFC 3339 in UTC with microseconds and ``Z``:
    ``2025-01-31T09:30:00.000000Z``.

An event this module cannot name — an event class without a rule (``UnknownAuditEvent``, an
``UnknownEvent`` of the registry), or an aggregate the naming has not seen — raises
``AuditRecordError`` rather than record something vague: a record is hash-chained and signed
for ever, so a wrong one cannot be corrected later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from mandate.projections.audit import (
    rules_contracts,
    rules_directory,
    rules_federation,
    rules_identity,
    rules_resource_policies,
    rules_sts,
)
from mandate.projections.audit.conventions import (
    AuditRecordError,
    UnknownAuditEvent,
    event_type_of,
    format_ledger_time,
)
from mandate.projections.audit.naming import AuditNaming
from mandate.projections.audit.rules import RULES
from mandate.projections.dispatch import UnknownEvent

__all__ = ["RULES", "AuditRecord", "audit_record"]

# loaded for their registrations
_RULE_MODULES = (
    rules_identity,
    rules_sts,
    rules_contracts,
    rules_federation,
    rules_directory,
    rules_resource_policies,
)

# -- the record ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event of the log as the audit trail shows it (field meanings: module doc)."""

    position: int
    time: str
    accounts: tuple[str, ...]
    actor: str
    credential: str | None
    event_type: str
    target: str
    summary: Mapping[str, Any]
    reason: str | None
    request_id: str | None
    source_ip: str | None

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON-ready form, hashed into the chains (``audit_chain``).

        Exactly these eleven keys; ``accounts`` is a list, ``summary`` a plain dict, absent
        optional values are ``null``. ``json.loads(canonical_json(r.as_dict()))`` equals
        ``r.as_dict()``.
        """
        return {
            "position": self.position,
            "time": self.time,
            "accounts": list(self.accounts),
            "actor": self.actor,
            "credential": self.credential,
            "event_type": self.event_type,
            "target": self.target,
            "summary": dict(self.summary),
            "reason": self.reason,
            "request_id": self.request_id,
            "source_ip": self.source_ip,
        }


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _credential_shown(credential: str | None, accounts: tuple[str, ...]) -> str | None:
    """The credential as every account the record concerns may see it (module doc);
    ``accounts`` without duplicates."""
    if credential is None or len(accounts) < 2:
        return credential
    return "sha256:" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def audit_record(
    event: Any, position: int, ledger_time: datetime, naming: AuditNaming
) -> AuditRecord:
    """The audit record of ``event`` at ``position`` and ``ledger_time``; updates ``naming``.

    ``event`` is a domain event of the ledger (an eventsourcing aggregate event whose class
    has a ``TOPIC`` and which carries the ``audit`` dict of ``domain.common.audit``). Raises
    ``UnknownAuditEvent`` for an event class without a rule and ``UnnamedEntity`` when ``naming``
    has not seen the aggregate — in both cases leaving ``naming`` unchanged.
    """
    cls = type(event)
    topic: str = cls.TOPIC
    try:
        rule = RULES.handler_for(cls)
    except UnknownEvent:
        raise UnknownAuditEvent(f"no audit rule for events of topic {topic!r}", topic) from None
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise AuditRecordError(f"position must be a positive integer, not {position!r}")
    time = format_ledger_time(ledger_time)
    event_type = event_type_of(topic)
    audit: Mapping[str, Any] = getattr(event, "audit", None) or {}
    actor = audit.get("actor")
    if not isinstance(actor, str) or not actor:
        raise AuditRecordError(f"the event at position {position} records no actor")
    described = rule(naming, event, ledger_time)
    accounts = tuple(sorted(set(described.accounts)))
    return AuditRecord(
        position=position,
        time=time,
        accounts=accounts,
        actor=actor,
        credential=_credential_shown(_optional_str(audit.get("credential")), accounts),
        event_type=event_type,
        target=described.target,
        summary=MappingProxyType(described.summary),
        reason=_optional_str(audit.get("reason")),
        request_id=_optional_str(audit.get("request_id")),
        source_ip=_optional_str(audit.get("source_ip")),
    )
