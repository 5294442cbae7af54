"""Audit records: what one event of the log says, for the audit trail (docs/design.md §4).

``audit_record(event, position, ledger_time, naming)`` turns **every** event of the log —
name claims included — into one ``AuditRecord``: the trail has exactly one record per
position, so a missing record is always a gap, never a policy. Pure: no SQL, no I/O; the only
state is the ``AuditNaming`` the caller passes in and keeps between events.

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

Naming
------
Most events carry only their aggregate's id (``AccessKeyCreated`` does not say whose key it
is by name), so ``AuditNaming`` remembers, from the events that create and rename entities,
each entity's account and name: accounts, users, groups, custom policies, roles, STS
sessions (with the session name, key id and source account) and name claims. For each
entrustment it also keeps both accounts and what hangs from it until it is revoked or
ended: its delegations (with their ``ends_at`` and whether revoked) and the sessions of its
managed role (with their ``expiration`` and whether revoked); a delegation is mapped to its
entrustment. It must see every event in log order, as ``audit_record`` does. Deleted users,
groups, policies and roles are forgotten (their ids are random and never reused, and
nothing follows their deletion); accounts and name claims are kept (a claim is reclaimed
under the same id), and so are sessions (a session may be revoked after its role is
deleted, and its aggregate is never re-created), entrustments and delegations (a delegation
may be revoked after its entrustment has ended).

An event this module cannot name — an unknown topic, or an aggregate the naming has not
seen — raises ``AuditRecordError`` rather than record something vague: a record is
hash-chained and signed for ever, so a wrong one cannot be corrected later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    entrustment_arn,
    group_arn,
    policy_arn,
    role_arn,
    root_arn,
    user_arn,
)

__all__ = [
    "RECORDED_TOPICS",
    "AuditNaming",
    "AuditRecord",
    "AuditRecordError",
    "NamedEntity",
    "UnknownAuditEvent",
    "UnnamedEntity",
    "audit_record",
    "event_type_of",
    "format_ledger_time",
]


class AuditRecordError(ValueError):
    """An event cannot be turned into a faithful audit record."""


class UnknownAuditEvent(AuditRecordError):
    """No rule says how to record events of this topic (add one to ``_RULES``)."""


class UnnamedEntity(AuditRecordError):
    """The event's aggregate is not known to the naming state (it missed an earlier event)."""


# -- conventions ---------------------------------------------------------------------------------

_TOPIC_RE: Final = re.compile(
    r"\Amandate:(?P<type>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*?)"
    r"(?:\.v[0-9]+)?\Z"
)


def event_type_of(topic: str) -> str:
    """``mandate:User.PolicyAttached.v1`` → ``User.PolicyAttached`` (see the module doc)."""
    known = _EVENT_TYPES.get(topic)
    if known is not None:
        return known
    found = _TOPIC_RE.match(topic)
    if found is None:
        raise UnknownAuditEvent(f"{topic!r} is not a Mandate event topic")
    if len(_EVENT_TYPES) < 1024:  # topics are the log's event classes: a few dozen
        _EVENT_TYPES[topic] = found["type"]
    return str(found["type"])


_EVENT_TYPES: dict[str, str] = {}  # event_type_of's answers, once per topic


def format_ledger_time(ledger_time: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``; a naive datetime is refused."""
    return _rfc3339(ledger_time, "the ledger time")


def _rfc3339(instant: datetime, what: str) -> str:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise AuditRecordError(f"{what} must be timezone-aware")
    d = instant if instant.tzinfo is UTC else instant.astimezone(UTC)
    if d.year < 1000:  # strftime's %Y does not pad these: keep its very text
        return d.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # What strftime writes, a few times faster (once per record of a rebuild).
    return (
        f"{d.year}-{d.month:02d}-{d.day:02d}T"
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}Z"
    )


def _optional_rfc3339(instant: datetime | None, what: str) -> str | None:
    return None if instant is None else _rfc3339(instant, what)


def _parse_rfc3339(text: str) -> datetime:
    """The inverse of ``_rfc3339`` (for instants kept in the naming state)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _key_arn(principal_arn: str, access_key_id: str) -> str:
    return f"{principal_arn}/accesskey/{access_key_id}"


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


# -- naming state --------------------------------------------------------------------------------

_ENTITY_KINDS: Final = frozenset(
    {"account", "user", "group", "policy", "role", "session", "name-claim"}
)
_CLAIMABLE: Final[dict[str, Callable[[str, str], str]]] = {
    "user": user_arn,
    "group": group_arn,
    "policy": policy_arn,
    "role": role_arn,
}
_SESSION_FIELDS: Final = ("session_name", "access_key_id", "source_account_id")


@dataclass(frozen=True, slots=True)
class NamedEntity:
    """What the trail needs to name an aggregate: its kind, account and current name.

    ``kind`` is ``account`` (``name`` is the account's display name), ``user``, ``group``,
    ``policy``, ``role``, ``session`` or ``name-claim`` (``claimed_kind`` then says whether
    the name is a user's, a group's, a policy's or a role's). A session's ``account_id`` and
    ``name`` are its role's; ``session_name``, ``access_key_id`` and ``source_account_id``
    are set for sessions, and only for them.
    """

    kind: str
    account_id: str
    name: str
    claimed_kind: str | None = None
    session_name: str | None = None
    access_key_id: str | None = None
    source_account_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _ENTITY_KINDS:
            raise ValueError(f"unknown entity kind {self.kind!r}")
        if (self.kind == "name-claim") != (self.claimed_kind is not None):
            raise ValueError("claimed_kind is set for name claims, and only for them")
        session_fields = [getattr(self, name) for name in _SESSION_FIELDS]
        if self.kind == "session":
            if any(value is None for value in session_fields):
                raise ValueError(f"a session needs {', '.join(_SESSION_FIELDS)}")
        elif any(value is not None for value in session_fields):
            raise ValueError(f"{', '.join(_SESSION_FIELDS)} are set for sessions, and only them")

    @property
    def arn(self) -> str:
        """The entity's ARN (a claim's: the ARN of the claimed name; an account's: its root;
        a session's: its assumed-role ARN)."""
        if self.kind == "account":
            return root_arn(self.account_id)
        if self.kind == "session":
            return assumed_role_arn(self.account_id, self.name, self.session_name or "")
        kind = self.claimed_kind if self.claimed_kind is not None else self.kind
        try:
            return _CLAIMABLE[kind](self.account_id, self.name)
        except KeyError:
            raise UnnamedEntity(f"a {kind!r} name has no ARN") from None

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts the entity's events concern (a session: its role's and its source's)."""
        if self.source_account_id is None:
            return (self.account_id,)
        return (self.account_id, self.source_account_id)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "account_id": self.account_id, "name": self.name}
        if self.claimed_kind is not None:
            data["claimed_kind"] = self.claimed_kind
        for name in _SESSION_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NamedEntity:
        def optional(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            str(data["kind"]),
            str(data["account_id"]),
            str(data["name"]),
            optional("claimed_kind"),
            session_name=optional("session_name"),
            access_key_id=optional("access_key_id"),
            source_account_id=optional("source_account_id"),
        )


@dataclass(slots=True)
class _Dependent:
    """A delegation or a session under an entrustment, as far as a revocation's record needs
    it: what to call it (a delegation's ARN, a session's ``access_key_id``), when it ends by
    itself (``None``: never) and whether it was revoked."""

    name: str
    ends_at: datetime | None
    revoked: bool = False

    def live_at(self, at: datetime) -> bool:
        return not self.revoked and (self.ends_at is None or self.ends_at > at)


@dataclass(slots=True)
class _EntrustmentState:
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
    delegations: dict[str, _Dependent] = field(default_factory=dict)
    sessions: dict[str, _Dependent] = field(default_factory=dict)

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
                    "ends_at": _optional_rfc3339(d.ends_at, "ends_at"),
                    "revoked": d.revoked,
                }
                for delegation_id, d in self.delegations.items()
            },
            "sessions": {
                session_id: {
                    "access_key_id": s.name,
                    "expiration": _optional_rfc3339(s.ends_at, "expiration"),
                    "revoked": s.revoked,
                }
                for session_id, s in self.sessions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _EntrustmentState:
        def instant(value: object) -> datetime | None:
            return None if value is None else _parse_rfc3339(str(value))

        account_id, trustee = str(data["account_id"]), str(data["trustee_account_id"])
        closed = data.get("closed")
        return cls(
            account_id,
            trustee,
            None if closed is None else str(closed),
            delegations={
                str(delegation_id): _Dependent(
                    delegation_arn(trustee, delegation_id),
                    instant(value["ends_at"]),
                    bool(value["revoked"]),
                )
                for delegation_id, value in (data.get("delegations") or {}).items()
            },
            sessions={
                str(session_id): _Dependent(
                    str(value["access_key_id"]),
                    instant(value["expiration"]),
                    bool(value["revoked"]),
                )
                for session_id, value in (data.get("sessions") or {}).items()
            },
        )


# Topics whose event creates, renames, changes or forgets its aggregate's entry.
_NAMING_TOPICS: Final = frozenset(
    {
        "mandate:AccountOpened.v1",
        "mandate:UserCreated.v1",
        "mandate:UserUpdated.v1",
        "mandate:UserDeleted.v1",
        "mandate:GroupCreated.v1",
        "mandate:GroupDeleted.v1",
        "mandate:PolicyCreated.v1",
        "mandate:PolicyDeleted.v1",
        "mandate:RoleCreated.v1",
        "mandate:RoleDeleted.v1",
        "mandate:SessionIssued.v1",
        "mandate:NameClaimed.v1",
        "mandate:EntrustmentGranted.v1",
        "mandate:EntrustmentRevoked.v1",
        "mandate:EntrustmentEnded.v1",
        "mandate:DelegationGranted.v1",
    }
)


class AuditNaming:
    """Aggregate id → ``NamedEntity``, kept current by ``audit_record`` as events flow; and,
    for each entrustment, its accounts and what hangs from it (its delegations and the
    sessions of its managed role), so that its revocation or end can say what it ended.

    Mutable and not thread-safe: one per trail being built, fed every event in log order.
    For a projection that persists it, ``touched_by(event)`` names the entries an event
    changed (call it after ``audit_record``), ``snapshot(ids)`` gives their JSON (``None``
    for a forgotten one) and ``restore(snapshot)`` rebuilds the state from stored entries.
    Keys are aggregate ids as strings (``str(uuid)``); an entrustment's entry is keyed by
    its id (``"kind": "entrustment"``), a delegation's by its id (``"kind": "delegation"``,
    with its entrustment's id). Snapshots without those kinds, from before entrustments
    existed, restore as they are.
    """

    def __init__(self) -> None:
        self._entities: dict[str, NamedEntity] = {}
        self._entrustments: dict[str, _EntrustmentState] = {}
        self._delegations: dict[str, str] = {}  # delegation id → entrustment id
        # session id → entrustment id, for the sessions an entrustment's state holds
        self._session_entrustments: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._entities) + len(self._entrustments) + len(self._delegations)

    def get(self, aggregate_id: object) -> NamedEntity | None:
        return self._entities.get(str(aggregate_id))

    def require(self, aggregate_id: object, kind: str) -> NamedEntity:
        """The entry of ``aggregate_id``, which must be of ``kind``; else ``UnnamedEntity``."""
        entity = self._entities.get(str(aggregate_id))
        if entity is None or entity.kind != kind:
            raise UnnamedEntity(
                f"no {kind} {aggregate_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return entity

    def remember(self, aggregate_id: object, entity: NamedEntity) -> None:
        self._entities[str(aggregate_id)] = entity

    def forget(self, aggregate_id: object) -> None:
        self._entities.pop(str(aggregate_id), None)

    # -- entrustments and what hangs from them ---------------------------------------------

    def _entrustment(self, entrustment_id: object) -> _EntrustmentState:
        state = self._entrustments.get(str(entrustment_id))
        if state is None:
            raise UnnamedEntity(
                f"no entrustment {entrustment_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return state

    def _entrustment_of_delegation(self, delegation_id: object) -> tuple[str, _EntrustmentState]:
        entrustment_id = self._delegations.get(str(delegation_id))
        if entrustment_id is None:
            raise UnnamedEntity(
                f"no delegation {delegation_id} is known to the audit naming state "
                "(it must see every event from position 1, or be restored first)"
            )
        return entrustment_id, self._entrustment(entrustment_id)

    def _entrust(self, entrustment_id: object, state: _EntrustmentState) -> None:
        self._entrustments[str(entrustment_id)] = state

    def _prune(self, state: _EntrustmentState, at: datetime) -> None:
        """Drop the dependents that can no longer be live at ``at`` or any later time."""
        for dependents in (state.delegations, state.sessions):
            for dependent_id in [i for i, d in dependents.items() if not d.live_at(at)]:
                del dependents[dependent_id]
                self._session_entrustments.pop(dependent_id, None)

    def _add_delegation(
        self,
        delegation_id: object,
        entrustment_id: object,
        ends_at: datetime | None,
        at: datetime,
    ) -> None:
        state = self._entrustment(entrustment_id)
        self._delegations[str(delegation_id)] = str(entrustment_id)
        if state.closed is None:
            self._prune(state, at)
            name = delegation_arn(state.trustee_account_id, delegation_id)
            state.delegations[str(delegation_id)] = _Dependent(name, ends_at)

    def _add_session(
        self,
        session_id: object,
        entrustment_id: object,
        access_key_id: str,
        expiration: datetime,
        at: datetime,
    ) -> None:
        state = self._entrustments.get(str(entrustment_id))
        if state is None or state.closed is not None:
            return
        self._prune(state, at)
        state.sessions[str(session_id)] = _Dependent(access_key_id, expiration)
        self._session_entrustments[str(session_id)] = str(entrustment_id)

    def _revoke_dependent(self, dependent_id: object) -> None:
        key = str(dependent_id)
        entrustment_id = self._delegations.get(key) or self._session_entrustments.get(key)
        state = None if entrustment_id is None else self._entrustments.get(entrustment_id)
        if state is not None:
            for dependents in (state.delegations, state.sessions):
                if key in dependents:
                    dependents[key].revoked = True

    def _close(self, entrustment_id: object, how: str) -> None:
        state = self._entrustment(entrustment_id)
        state.closed = how
        for session_id in state.sessions:
            self._session_entrustments.pop(session_id, None)
        state.delegations.clear()
        state.sessions.clear()

    # -- persistence ---------------------------------------------------------------------------

    def touched_by(self, event: Any) -> tuple[str, ...]:
        """Ids of the entries ``event`` creates, renames, changes or forgets (to persist
        them); ask once ``audit_record`` has recorded it."""
        topic = type(event).TOPIC
        touched: list[str] = []
        if topic in _NAMING_TOPICS:
            touched.append(str(event.originator_id))
        if topic == "mandate:DelegationGranted.v1":
            touched.append(str(event.entrustment_id))
        elif topic == "mandate:DelegationRevoked.v1":
            entrustment_id = self._delegations.get(str(event.originator_id))
            if entrustment_id is not None:
                touched.append(entrustment_id)
        elif topic in ("mandate:SessionIssued.v1", "mandate:SessionRevoked.v1"):
            entrustment_id = self._session_entrustments.get(str(event.originator_id))
            if entrustment_id is not None:
                touched.append(entrustment_id)
        return tuple(touched)

    def snapshot(self, aggregate_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """JSON of the given entries (all when ``None``); ``None`` for one not (or no longer)
        known, so a store can delete it."""
        ids: Iterable[str] = (
            [*self._entities, *self._entrustments, *self._delegations]
            if aggregate_ids is None
            else aggregate_ids
        )
        snapshot: dict[str, Any] = {}
        for aggregate_id in ids:
            key = str(aggregate_id)
            entity = self._entities.get(key)
            entrustment = self._entrustments.get(key)
            delegated_under = self._delegations.get(key)
            if entity is not None:
                snapshot[key] = entity.as_json()
            elif entrustment is not None:
                snapshot[key] = entrustment.as_json()
            elif delegated_under is not None:
                snapshot[key] = {"kind": "delegation", "entrustment_id": delegated_under}
            else:
                snapshot[key] = None
        return snapshot

    def restore(self, snapshot: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Replace the whole state with ``snapshot``'s entries (``None`` values are skipped)."""
        restored = AuditNaming()
        for aggregate_id, value in snapshot.items():
            key = str(aggregate_id)
            if value is None:
                continue
            if value.get("kind") == "entrustment":
                state = _EntrustmentState.from_json(value)
                restored._entrustments[key] = state
                for session_id in state.sessions:
                    restored._session_entrustments[session_id] = key
            elif value.get("kind") == "delegation":
                restored._delegations[key] = str(value["entrustment_id"])
            else:
                restored._entities[key] = NamedEntity.from_json(value)
        self._entities = restored._entities
        self._entrustments = restored._entrustments
        self._delegations = restored._delegations
        self._session_entrustments = restored._session_entrustments


# -- one rule per topic --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Described:
    accounts: tuple[str, ...]
    target: str
    summary: dict[str, Any] = field(default_factory=dict)


_Rule = Callable[[Any, AuditNaming, datetime], _Described]


def _account_opened(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    naming.remember(e.originator_id, NamedEntity("account", e.account_id, e.name))
    # root_secret_hash is deliberately not copied.
    summary = {"account_name": e.name, "root_access_key_id": e.root_access_key_id}
    return _Described((e.account_id,), root_arn(e.account_id), summary)


def _account_closed(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    account = naming.require(e.originator_id, "account")
    return _Described((account.account_id,), account.arn)


def _root_key_rotated(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    account = naming.require(e.originator_id, "account")
    summary = {
        "access_key_id": e.access_key_id,
        "previous_access_key_id": e.previous_access_key_id,
    }  # secret_hash is deliberately not copied.
    return _Described((account.account_id,), _key_arn(account.arn, e.access_key_id), summary)


def _user_created(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    user = NamedEntity("user", e.account_id, e.user_name)
    naming.remember(e.originator_id, user)
    summary = {"user_name": e.user_name, "display_name": e.display_name}
    return _Described((user.account_id,), user.arn, summary)


def _user_updated(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    before = naming.require(e.originator_id, "user")
    naming.remember(e.originator_id, NamedEntity("user", before.account_id, e.user_name))
    summary = {
        "user_name": e.user_name,
        "previous_user_name": e.previous_user_name,
        "display_name": e.display_name,
    }
    return _Described((before.account_id,), before.arn, summary)


def _user_deleted(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    user = naming.require(e.originator_id, "user")
    naming.forget(e.originator_id)
    return _Described((user.account_id,), user.arn)


def _access_key(status: str | None) -> _Rule:
    def rule(e: Any, naming: AuditNaming, at: datetime) -> _Described:
        user = naming.require(e.originator_id, "user")
        summary: dict[str, Any] = {"access_key_id": e.access_key_id}
        if status is not None:
            summary["status"] = status
        # AccessKeyCreated's secret_hash is deliberately not copied.
        return _Described((user.account_id,), _key_arn(user.arn, e.access_key_id), summary)

    return rule


def _membership(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    user = naming.require(e.originator_id, "user")
    return _Described((user.account_id,), user.arn, {"group_name": e.group_name})


def _attachment(kind: str) -> _Rule:
    def rule(e: Any, naming: AuditNaming, at: datetime) -> _Described:
        principal = naming.require(e.originator_id, kind)
        summary = {"policy_type": e.policy_type, "policy_name": e.policy_name}
        return _Described((principal.account_id,), principal.arn, summary)

    return rule


def _group_created(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    group = NamedEntity("group", e.account_id, e.group_name)
    naming.remember(e.originator_id, group)
    summary = {"group_name": e.group_name, "comments": e.comments}
    return _Described((group.account_id,), group.arn, summary)


def _deleted(kind: str) -> _Rule:
    def rule(e: Any, naming: AuditNaming, at: datetime) -> _Described:
        entity = naming.require(e.originator_id, kind)
        naming.forget(e.originator_id)
        return _Described((entity.account_id,), entity.arn)

    return rule


def _policy_created(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    policy = NamedEntity("policy", e.account_id, e.policy_name)
    naming.remember(e.originator_id, policy)
    summary = {
        "policy_name": e.policy_name,
        "description": e.description,
        "version_id": "v1",
        "set_as_default": True,
        "policy_document": e.document,
    }
    return _Described((policy.account_id,), policy.arn, summary)


def _policy_change(**summary_of: str) -> _Rule:
    """A rule for a policy event: ``summary key=event attribute`` for each keyword."""

    def rule(e: Any, naming: AuditNaming, at: datetime) -> _Described:
        policy = naming.require(e.originator_id, "policy")
        summary = {key: getattr(e, attribute) for key, attribute in summary_of.items()}
        return _Described((policy.account_id,), policy.arn, summary)

    return rule


def _role_created(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    role = NamedEntity("role", e.account_id, e.role_name)
    naming.remember(e.originator_id, role)
    summary = {
        "role_name": e.role_name,
        "description": e.description,
        "trust_policy": e.trust_policy,
        "max_session_duration": e.max_session_duration,
    }
    return _Described((role.account_id,), role.arn, summary)


def _role_updated(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    role = naming.require(e.originator_id, "role")
    summary = {"description": e.description, "max_session_duration": e.max_session_duration}
    return _Described((role.account_id,), role.arn, summary)


def _role_trust_policy_updated(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    role = naming.require(e.originator_id, "role")
    return _Described((role.account_id,), role.arn, {"trust_policy": e.trust_policy})


def _role_sessions_revoked(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    role = naming.require(e.originator_id, "role")
    summary = {"issued_before": _rfc3339(e.issued_before, "issued_before")}
    return _Described((role.account_id,), role.arn, summary)


def _session_issued(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    issued_at = _rfc3339(e.issued_at, "issued_at")
    expiration = _rfc3339(e.expiration, "expiration")
    session = NamedEntity(
        "session",
        e.account_id,
        e.role_name,
        session_name=e.role_session_name,
        access_key_id=e.access_key_id,
        source_account_id=e.source_account_id,
    )
    naming.remember(e.originator_id, session)
    # A session of an entrustment's managed role (whose id is the entrustment's) hangs from it.
    naming._add_session(e.originator_id, e.role_id, e.access_key_id, e.expiration, at)
    # secret_hash is deliberately not copied, nor are role_id and source_user_id (UUIDs).
    summary = {
        "access_key_id": e.access_key_id,
        "role_arn": role_arn(e.account_id, e.role_name),
        "role_session_name": e.role_session_name,
        "source_arn": e.source_arn,
        "parent_access_key_id": e.parent_access_key_id,
        "session_policy": e.session_policy,
        "issued_at": issued_at,
        "expiration": expiration,
    }
    return _Described(session.accounts, session.arn, summary)


def _session_revoked(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    session = naming.require(e.originator_id, "session")
    naming._revoke_dependent(e.originator_id)
    return _Described(session.accounts, session.arn, {"access_key_id": session.access_key_id})


def _entrustment_granted(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    # The managed role's name is claimed by a NameClaimed of the same save (recorded apart).
    summary = {
        "contract_ref": e.contract_ref,
        "trustee_account_id": e.trustee_account_id,
        "role_arn": role_arn(e.account_id, e.role_name),
        "scope": e.scope,
        "scope_policies": None if e.scope_policies is None else list(e.scope_policies),
        "starts_at": _optional_rfc3339(e.starts_at, "starts_at"),
        "ends_at": _optional_rfc3339(e.ends_at, "ends_at"),
        "description": e.description,
    }
    naming._entrust(e.originator_id, _EntrustmentState(e.account_id, e.trustee_account_id))
    accounts = (e.account_id, e.trustee_account_id)
    return _Described(accounts, entrustment_arn(e.account_id, e.originator_id), summary)


def _entrustment_amended(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    state = naming._entrustment(e.originator_id)
    summary = {
        "scope": e.scope,
        "scope_policies": None if e.scope_policies is None else list(e.scope_policies),
    }
    accounts = (state.account_id, state.trustee_account_id)
    return _Described(accounts, entrustment_arn(state.account_id, e.originator_id), summary)


def _entrustment_closed(how: str) -> _Rule:
    """``EntrustmentRevoked`` or ``EntrustmentEnded``: what it ended at the ledger time —
    the delegations under it and the sessions of its managed role still live then."""

    def rule(e: Any, naming: AuditNaming, at: datetime) -> _Described:
        state = naming._entrustment(e.originator_id)
        delegations, sessions = state.live_at(at)
        naming._close(e.originator_id, how)
        summary = {"ended_delegations": delegations, "ended_sessions": sessions}
        accounts = (state.account_id, state.trustee_account_id)
        return _Described(accounts, entrustment_arn(state.account_id, e.originator_id), summary)

    return rule


def _delegation_granted(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    state = naming._entrustment(e.entrustment_id)
    if (state.account_id, state.trustee_account_id) != (e.entrustment_account_id, e.account_id):
        raise AuditRecordError(
            f"delegation {e.originator_id} names accounts its entrustment "
            f"{e.entrustment_id} does not"
        )
    # grantee_id (a UUID) is deliberately not copied: grantee_arn names the grantee.
    summary = {
        "entrustment_arn": entrustment_arn(e.entrustment_account_id, e.entrustment_id),
        "grantee_arn": e.grantee_arn,
        "scope": e.scope,
        "ends_at": _optional_rfc3339(e.ends_at, "ends_at"),
    }
    naming._add_delegation(e.originator_id, e.entrustment_id, e.ends_at, at)
    accounts = (e.account_id, e.entrustment_account_id)
    return _Described(accounts, delegation_arn(e.account_id, e.originator_id), summary)


def _delegation_revoked(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    entrustment_id, state = naming._entrustment_of_delegation(e.originator_id)
    naming._revoke_dependent(e.originator_id)
    summary = {"entrustment_arn": entrustment_arn(state.account_id, entrustment_id)}
    accounts = (state.trustee_account_id, state.account_id)
    return _Described(accounts, delegation_arn(state.trustee_account_id, e.originator_id), summary)


def _name_claimed(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    if e.kind not in _CLAIMABLE:
        raise UnknownAuditEvent(f"a name claim of kind {e.kind!r} has no ARN")
    claim = NamedEntity("name-claim", e.account_id, e.name, claimed_kind=e.kind)
    naming.remember(e.originator_id, claim)
    return _Described((claim.account_id,), claim.arn, {"kind": e.kind, "name": e.name})


def _name_claim_moved(e: Any, naming: AuditNaming, at: datetime) -> _Described:
    claim = naming.require(e.originator_id, "name-claim")
    summary = {"kind": claim.claimed_kind, "name": claim.name}
    return _Described((claim.account_id,), claim.arn, summary)


_RULES: Final[dict[str, _Rule]] = {
    "mandate:AccountOpened.v1": _account_opened,
    "mandate:AccountClosed.v1": _account_closed,
    "mandate:RootAccessKeyRotated.v1": _root_key_rotated,
    "mandate:UserCreated.v1": _user_created,
    "mandate:UserUpdated.v1": _user_updated,
    "mandate:UserDeleted.v1": _user_deleted,
    "mandate:AccessKeyCreated.v1": _access_key("Active"),
    "mandate:AccessKeyDisabled.v1": _access_key("Inactive"),
    "mandate:AccessKeyEnabled.v1": _access_key("Active"),
    "mandate:AccessKeyDeleted.v1": _access_key(None),
    "mandate:UserAddedToGroup.v1": _membership,
    "mandate:UserRemovedFromGroup.v1": _membership,
    "mandate:User.PolicyAttached.v1": _attachment("user"),
    "mandate:User.PolicyDetached.v1": _attachment("user"),
    "mandate:GroupCreated.v1": _group_created,
    "mandate:GroupDeleted.v1": _deleted("group"),
    "mandate:Group.PolicyAttached.v1": _attachment("group"),
    "mandate:Group.PolicyDetached.v1": _attachment("group"),
    "mandate:PolicyCreated.v1": _policy_created,
    "mandate:PolicyVersionCreated.v1": _policy_change(
        version_id="version_id", set_as_default="set_as_default", policy_document="document"
    ),
    "mandate:DefaultPolicyVersionSet.v1": _policy_change(
        version_id="version_id", previous_version_id="previous_version_id"
    ),
    "mandate:PolicyVersionDeleted.v1": _policy_change(version_id="version_id"),
    "mandate:PolicyDeleted.v1": _deleted("policy"),
    "mandate:RoleCreated.v1": _role_created,
    "mandate:RoleUpdated.v1": _role_updated,
    "mandate:RoleTrustPolicyUpdated.v1": _role_trust_policy_updated,
    "mandate:RoleSessionsRevoked.v1": _role_sessions_revoked,
    "mandate:Role.PolicyAttached.v1": _attachment("role"),
    "mandate:Role.PolicyDetached.v1": _attachment("role"),
    "mandate:RoleDeleted.v1": _deleted("role"),
    "mandate:SessionIssued.v1": _session_issued,
    "mandate:SessionRevoked.v1": _session_revoked,
    "mandate:EntrustmentGranted.v1": _entrustment_granted,
    "mandate:EntrustmentAmended.v1": _entrustment_amended,
    "mandate:EntrustmentRevoked.v1": _entrustment_closed("revoked"),
    "mandate:EntrustmentEnded.v1": _entrustment_closed("ended"),
    "mandate:DelegationGranted.v1": _delegation_granted,
    "mandate:DelegationRevoked.v1": _delegation_revoked,
    "mandate:NameClaimed.v1": _name_claimed,
    "mandate:NameReclaimed.v1": _name_claim_moved,
    "mandate:NameReleased.v1": _name_claim_moved,
}

RECORDED_TOPICS: Final = frozenset(_RULES)
"""Every topic ``audit_record`` knows how to record."""


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _credential_shown(credential: str | None, accounts: Iterable[str]) -> str | None:
    """The credential as every account the record concerns may see it (module doc)."""
    if credential is None or len(set(accounts)) < 2:
        return credential
    return "sha256:" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def audit_record(
    event: Any, position: int, ledger_time: datetime, naming: AuditNaming
) -> AuditRecord:
    """The audit record of ``event`` at ``position`` and ``ledger_time``; updates ``naming``.

    ``event`` is a domain event of the ledger (an eventsourcing aggregate event whose class
    has a ``TOPIC`` and which carries the ``audit`` dict of ``domain.common.audit``). Raises
    ``UnknownAuditEvent`` for a topic without a rule and ``UnnamedEntity`` when ``naming``
    has not seen the aggregate — in both cases leaving ``naming`` unchanged.
    """
    topic: str = type(event).TOPIC
    rule = _RULES.get(topic)
    if rule is None:
        raise UnknownAuditEvent(f"no audit rule for events of topic {topic!r}")
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise AuditRecordError(f"position must be a positive integer, not {position!r}")
    time = format_ledger_time(ledger_time)
    event_type = event_type_of(topic)
    audit: Mapping[str, Any] = getattr(event, "audit", None) or {}
    actor = audit.get("actor")
    if not isinstance(actor, str) or not actor:
        raise AuditRecordError(f"the event at position {position} records no actor")
    described = rule(event, naming, ledger_time)
    return AuditRecord(
        position=position,
        time=time,
        accounts=tuple(sorted(set(described.accounts))),
        actor=actor,
        credential=_credential_shown(_optional_str(audit.get("credential")), described.accounts),
        event_type=event_type,
        target=described.target,
        summary=MappingProxyType(described.summary),
        reason=_optional_str(audit.get("reason")),
        request_id=_optional_str(audit.get("request_id")),
        source_ip=_optional_str(audit.get("source_ip")),
    )
