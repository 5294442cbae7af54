"""Audit records from real ledger events (DESIGN §4): one per event, named, and secret-free.

A scripted history runs on a real ``Ledger`` over a temporary SQLite file and touches every
event topic; its events are read back from the log exactly as a projection reads them. STS
sessions are made as the real ``Session`` aggregate and saved by the ledger (AssumeRole's
checks are not what this module is about).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

import domain
from domain.arns import assumed_role_arn, group_arn, policy_arn, role_arn, root_arn, user_arn
from domain.audit import AuditContext, LedgerAggregate, acting_as
from domain.identifiers import name_claim_id
from domain.ledger import Ledger
from domain.names import NameClaim
from domain.policy import DocumentKind, parse_policy_document
from domain.roles import Role
from domain.secrets import SecretHasher, new_access_key_id, new_access_key_secret
from domain.sessions import Session, session_aggregate_id
from domain.system_policies import SYSTEM_POLICIES
from projections import audit_records
from projections.audit_chain import canonical_json
from projections.audit_records import (
    RECORDED_TOPICS,
    AuditNaming,
    AuditRecord,
    AuditRecordError,
    NamedEntity,
    UnknownAuditEvent,
    UnnamedEntity,
    _Described,
    audit_record,
    event_type_of,
    format_ledger_time,
)

ADMIN = AuditContext(actor="mandate:admin")
OWNER = AuditContext(
    actor="acs:ram::1000000000000001:root",
    credential="LTAIowner",
    request_id="req-42",
    source_ip="198.51.100.9",
    reason="ticket SEC-7",
)
DOC_1 = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]}
DOC_2 = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
SYSTEM_POLICY = next(iter(SYSTEM_POLICIES))
ISSUED_AT = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
REVOKED_BEFORE = datetime(2025, 1, 31, 10, 45, 0, 5, tzinfo=PARIS)  # 09:45:00.000005Z


def _trust(*principals: str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": principals}}
    return {"Version": "1", "Statement": [statement]}


@dataclass(frozen=True)
class IssuedSessionFacts:
    access_key_id: str
    secret: str
    secret_hash: str


@dataclass
class History:
    account: str
    other: str
    events: list[tuple[Any, int, datetime]]  # (event, position, ledger time)
    secrets: list[str]
    documents: dict[str, str]  # version id (or trust/session name) → canonical text, as stored
    cross: IssuedSessionFacts  # a session of the role "ops" assumed from the other account
    chained: IssuedSessionFacts  # a session assumed by the cross session (same account)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    path: Path = tmp_path_factory.mktemp("audit-records") / "ledger.db"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "CREATE_TABLE": "y",
    }
    ledger = Ledger(env, hasher=SecretHasher("k1", {"k1": b"unit-hash-key-" + b"h" * 32}))
    try:
        yield _script(ledger)
    finally:
        ledger.close()


def _script(ledger: Ledger) -> History:
    secrets: list[str] = []
    with acting_as(ADMIN):
        opened = ledger.open_account("Acme")
        other = ledger.open_account("Other")
    account = opened.account_id
    secrets += [opened.root_key.access_key_secret, other.root_key.access_key_secret]
    with acting_as(OWNER):
        ledger.create_user(account, "alice", "Alice")
        ledger.update_user(account, "alice", new_user_name="alicia", new_display_name="Alicia")
        key = ledger.create_access_key(account, "alicia")
        ledger.set_access_key_status(account, "alicia", key.access_key_id, "Inactive")
        ledger.set_access_key_status(account, "alicia", key.access_key_id, "Active")
        ledger.delete_access_key(account, "alicia", key.access_key_id)
        kept = ledger.create_access_key(account, "alicia")
        ledger.create_group(account, "devs", "Developers")
        ledger.add_user_to_group(account, "devs", "alicia")
        ledger.create_policy(account, "p1", DOC_1, "reads")
        ledger.create_policy_version(account, "p1", DOC_2, set_as_default=True)
        ledger.set_default_policy_version(account, "p1", "v1")
        ledger.delete_policy_version(account, "p1", "v2")
        ledger.attach_policy(account, "user", "alicia", "Custom", "p1")
        ledger.attach_policy(account, "group", "devs", "System", SYSTEM_POLICY)
        ledger.detach_policy(account, "user", "alicia", "Custom", "p1")
        ledger.remove_user_from_group(account, "devs", "alicia")
        ledger.delete_group(account, "devs", detach=True)
        ledger.delete_policy(account, "p1")
        ledger.create_group(account, "devs", None)
        rotated = ledger.rotate_root_access_key(account)
        ledger.delete_user(account, "alicia", detach=True)
        ledger.create_role(account, "ops", _trust(account), description="operators")
        ledger.update_role(
            account,
            "ops",
            description="on-call",
            max_session_duration=7_200,
            assume_role_policy_document=_trust(account, other.account_id),
        )
        ledger.attach_policy(account, "role", "ops", "System", SYSTEM_POLICY)
        cross = _issue_session(
            ledger,
            account,
            "ops",
            "from-other",
            source_arn=root_arn(other.account_id),
            source_account_id=other.account_id,
            parent_access_key_id=None,
            session_policy=parse_policy_document(DOC_1).canonical_json(),
        )
        chained = _issue_session(
            ledger,
            account,
            "ops",
            "chained",
            source_arn=assumed_role_arn(account, "ops", "from-other"),
            source_account_id=account,
            parent_access_key_id=cross.access_key_id,
            session_policy=None,
        )
        ledger.revoke_role_sessions(account, "ops", REVOKED_BEFORE)
        ledger.revoke_session(chained.access_key_id)
        ledger.delete_role(account, "ops", detach=True)
        ledger.revoke_session(cross.access_key_id)  # a session outlives its role's naming
    with acting_as(ADMIN):
        ledger.close_account(other.account_id)
    secrets += [key.access_key_secret, kept.access_key_secret, rotated.access_key_secret]
    secrets += [cross.secret, chained.secret]

    events: list[tuple[Any, int, datetime]] = []
    ledger_time: datetime | None = None
    for notification in ledger.recorder.select_notifications(0, 10_000):
        event = ledger.mapper.to_domain_event(notification)
        timestamp: datetime = event.timestamp  # type: ignore[attr-defined]
        ledger_time = timestamp if ledger_time is None else max(ledger_time, timestamp)
        events.append((event, int(notification.id), ledger_time))
    documents = {
        "v1": json.dumps(DOC_1, sort_keys=True, separators=(",", ":")),
        "v2": json.dumps(DOC_2, sort_keys=True, separators=(",", ":")),
    }
    for event, _, _ in events:  # the documents exactly as the ledger stored them
        if type(event).TOPIC == "mandate:PolicyCreated.v1":
            documents["v1"] = event.document
        if type(event).TOPIC == "mandate:PolicyVersionCreated.v1":
            documents["v2"] = event.document
        if type(event).TOPIC == "mandate:RoleCreated.v1":
            documents["trust1"] = event.trust_policy
        if type(event).TOPIC == "mandate:RoleTrustPolicyUpdated.v1":
            documents["trust2"] = event.trust_policy
        if type(event).TOPIC == "mandate:SessionIssued.v1" and event.session_policy is not None:
            documents["session"] = event.session_policy
    return History(account, other.account_id, events, secrets, documents, cross, chained)


def _issue_session(
    ledger: Ledger,
    account_id: str,
    role_name: str,
    role_session_name: str,
    *,
    source_arn: str,
    source_account_id: str,
    parent_access_key_id: str | None,
    session_policy: str | None,
) -> IssuedSessionFacts:
    """Record ``SessionIssued`` as ``Ledger.assume_role`` does, once its checks have passed."""
    claim: NameClaim = ledger.repository.get(name_claim_id(account_id, "role", role_name))
    assert isinstance(claim, NameClaim)
    assert claim.entity_id is not None
    key_id, secret = new_access_key_id("STS."), new_access_key_secret()
    secret_hash = ledger.hasher.hash(secret)
    session = Session(
        access_key_id=key_id,
        secret_hash=secret_hash,
        account_id=account_id,
        role_id=claim.entity_id,
        role_name=role_name,
        role_session_name=role_session_name,
        source_arn=source_arn,
        source_account_id=source_account_id,
        source_user_id=None,
        parent_access_key_id=parent_access_key_id,
        session_policy=session_policy,
        issued_at=ISSUED_AT,
        expiration=ISSUED_AT + timedelta(hours=1),
    )
    assert session.id == session_aggregate_id(key_id)
    ledger.save(session)
    return IssuedSessionFacts(key_id, secret, secret_hash)


def _records(history: History, naming: AuditNaming | None = None) -> list[AuditRecord]:
    naming = AuditNaming() if naming is None else naming
    return [audit_record(e, position, time, naming) for e, position, time in history.events]


# -- every event, named ----------------------------------------------------------------------------


def test_the_script_touches_every_recorded_topic(history: History) -> None:
    assert {type(e).TOPIC for e, _, _ in history.events} == RECORDED_TOPICS


def _domain_event_topics() -> set[str]:
    """The topic of every named event class of every aggregate in the ``domain`` package."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    aggregates: list[type[LedgerAggregate]] = []
    pending = list(LedgerAggregate.__subclasses__())
    while pending:
        aggregate = pending.pop()
        aggregates.append(aggregate)
        pending += aggregate.__subclasses__()
    return {
        value.TOPIC
        for aggregate in aggregates
        for value in vars(aggregate).values()
        if isinstance(value, type)
        and issubclass(value, LedgerAggregate.Event)
        and value.__name__ not in ("Event", "Created")
    }


def test_every_event_topic_of_the_domain_has_a_rule() -> None:
    """An event without a rule would stall the audit projection: none may be missing."""
    topics = _domain_event_topics()
    assert {"mandate:RoleCreated.v1", "mandate:SessionRevoked.v1"} <= topics
    assert topics == RECORDED_TOPICS


def test_one_record_per_event_in_position_order(history: History) -> None:
    records = _records(history)
    assert [r.position for r in records] == [p for _, p, _ in history.events]
    assert len(records) == len(history.events)


def test_each_event_type_names_its_target_accounts_and_change(history: History) -> None:
    a, o = history.account, history.other
    alice, alicia = user_arn(a, "alice"), user_arn(a, "alicia")
    records = _records(history)
    keys = [r.summary["access_key_id"] for r in records if r.event_type == "AccessKeyCreated"]
    first_key, kept_key = keys
    rotated = next(r for r in records if r.event_type == "RootAccessKeyRotated")
    first_root = records[0].summary["root_access_key_id"]
    devs, p1 = group_arn(a, "devs"), policy_arn(a, "p1")
    ops = role_arn(a, "ops")
    cross_key, chained_key = history.cross.access_key_id, history.chained.access_key_id
    cross = assumed_role_arn(a, "ops", "from-other")
    chained = assumed_role_arn(a, "ops", "chained")
    expected: list[tuple[str, str, dict[str, Any]]] = [
        ("AccountOpened", root_arn(a), {"account_name": "Acme", "root_access_key_id": first_root}),
        (
            "AccountOpened",
            root_arn(o),
            {
                "account_name": "Other",
                "root_access_key_id": records[1].summary["root_access_key_id"],
            },
        ),
        ("NameClaimed", alice, {"kind": "user", "name": "alice"}),
        ("UserCreated", alice, {"user_name": "alice", "display_name": "Alice"}),
        (
            "UserUpdated",
            alice,
            {"user_name": "alicia", "previous_user_name": "alice", "display_name": "Alicia"},
        ),
        ("NameReleased", alice, {"kind": "user", "name": "alice"}),
        ("NameClaimed", alicia, {"kind": "user", "name": "alicia"}),
        (
            "AccessKeyCreated",
            f"{alicia}/accesskey/{first_key}",
            {"access_key_id": first_key, "status": "Active"},
        ),
        (
            "AccessKeyDisabled",
            f"{alicia}/accesskey/{first_key}",
            {"access_key_id": first_key, "status": "Inactive"},
        ),
        (
            "AccessKeyEnabled",
            f"{alicia}/accesskey/{first_key}",
            {"access_key_id": first_key, "status": "Active"},
        ),
        ("AccessKeyDeleted", f"{alicia}/accesskey/{first_key}", {"access_key_id": first_key}),
        (
            "AccessKeyCreated",
            f"{alicia}/accesskey/{kept_key}",
            {"access_key_id": kept_key, "status": "Active"},
        ),
        ("NameClaimed", devs, {"kind": "group", "name": "devs"}),
        ("GroupCreated", devs, {"group_name": "devs", "comments": "Developers"}),
        ("UserAddedToGroup", alicia, {"group_name": "devs"}),
        ("NameClaimed", p1, {"kind": "policy", "name": "p1"}),
        (
            "PolicyCreated",
            p1,
            {
                "policy_name": "p1",
                "description": "reads",
                "version_id": "v1",
                "set_as_default": True,
                "policy_document": history.documents["v1"],
            },
        ),
        (
            "PolicyVersionCreated",
            p1,
            {
                "version_id": "v2",
                "set_as_default": True,
                "policy_document": history.documents["v2"],
            },
        ),
        ("DefaultPolicyVersionSet", p1, {"version_id": "v1", "previous_version_id": "v2"}),
        ("PolicyVersionDeleted", p1, {"version_id": "v2"}),
        ("User.PolicyAttached", alicia, {"policy_type": "Custom", "policy_name": "p1"}),
        ("Group.PolicyAttached", devs, {"policy_type": "System", "policy_name": SYSTEM_POLICY}),
        ("User.PolicyDetached", alicia, {"policy_type": "Custom", "policy_name": "p1"}),
        ("UserRemovedFromGroup", alicia, {"group_name": "devs"}),
        ("Group.PolicyDetached", devs, {"policy_type": "System", "policy_name": SYSTEM_POLICY}),
        ("GroupDeleted", devs, {}),
        ("NameReleased", devs, {"kind": "group", "name": "devs"}),
        ("PolicyDeleted", p1, {}),
        ("NameReleased", p1, {"kind": "policy", "name": "p1"}),
        ("NameReclaimed", devs, {"kind": "group", "name": "devs"}),
        ("GroupCreated", devs, {"group_name": "devs", "comments": None}),
        (
            "RootAccessKeyRotated",
            f"{root_arn(a)}/accesskey/{rotated.summary['access_key_id']}",
            {
                "access_key_id": rotated.summary["access_key_id"],
                "previous_access_key_id": first_root,
            },
        ),
        ("UserDeleted", alicia, {}),
        ("NameReleased", alicia, {"kind": "user", "name": "alicia"}),
        ("NameClaimed", ops, {"kind": "role", "name": "ops"}),
        (
            "RoleCreated",
            ops,
            {
                "role_name": "ops",
                "description": "operators",
                "trust_policy": history.documents["trust1"],
                "max_session_duration": 3_600,
            },
        ),
        ("RoleUpdated", ops, {"description": "on-call", "max_session_duration": 7_200}),
        ("RoleTrustPolicyUpdated", ops, {"trust_policy": history.documents["trust2"]}),
        ("Role.PolicyAttached", ops, {"policy_type": "System", "policy_name": SYSTEM_POLICY}),
        (
            "SessionIssued",
            cross,
            {
                "access_key_id": cross_key,
                "role_arn": ops,
                "role_session_name": "from-other",
                "source_arn": root_arn(o),
                "parent_access_key_id": None,
                "session_policy": history.documents["session"],
                "issued_at": "2025-01-31T09:30:00.000000Z",
                "expiration": "2025-01-31T10:30:00.000000Z",
            },
        ),
        (
            "SessionIssued",
            chained,
            {
                "access_key_id": chained_key,
                "role_arn": ops,
                "role_session_name": "chained",
                "source_arn": cross,
                "parent_access_key_id": cross_key,
                "session_policy": None,
                "issued_at": "2025-01-31T09:30:00.000000Z",
                "expiration": "2025-01-31T10:30:00.000000Z",
            },
        ),
        ("RoleSessionsRevoked", ops, {"issued_before": "2025-01-31T09:45:00.000005Z"}),
        ("SessionRevoked", chained, {"access_key_id": chained_key}),
        ("Role.PolicyDetached", ops, {"policy_type": "System", "policy_name": SYSTEM_POLICY}),
        ("RoleDeleted", ops, {}),
        ("NameReleased", ops, {"kind": "role", "name": "ops"}),
        ("SessionRevoked", cross, {"access_key_id": cross_key}),
        ("AccountClosed", root_arn(o), {}),
    ]
    actual = [(r.event_type, r.target, dict(r.summary)) for r in records]
    assert actual == expected
    for record in records:
        if record.target == cross:  # a cross-account session concerns both accounts
            assert record.accounts == tuple(sorted({a, o}))
        elif record.target.startswith(f"acs:ram::{o}:"):
            assert record.accounts == (o,)
        else:
            assert record.accounts == (a,)


def test_records_carry_the_audit_context_of_their_request(history: History) -> None:
    records = _records(history)
    by_owner = [r for r in records if r.actor == OWNER.actor]
    by_admin = [r for r in records if r.actor == ADMIN.actor]
    assert len(by_owner) + len(by_admin) == len(records)
    assert by_owner
    assert by_admin
    for r in by_owner:
        assert (r.credential, r.request_id, r.source_ip, r.reason) == (
            OWNER.credential,
            OWNER.request_id,
            OWNER.source_ip,
            OWNER.reason,
        )
    for r in by_admin:
        assert (r.credential, r.request_id, r.source_ip, r.reason) == (None, None, None, None)


def test_time_is_the_ledger_time_in_rfc3339_utc_with_microseconds(history: History) -> None:
    for record, (_, _, ledger_time) in zip(_records(history), history.events, strict=True):
        assert record.time.endswith("Z")
        assert len(record.time) == len("2025-01-31T09:30:00.123456Z")
        parsed = datetime.strptime(record.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert parsed == ledger_time


def test_the_canonical_form_round_trips_through_json(history: History) -> None:
    for record in _records(history):
        body = record.as_dict()
        assert list(body) == [
            "position",
            "time",
            "accounts",
            "actor",
            "credential",
            "event_type",
            "target",
            "summary",
            "reason",
            "request_id",
            "source_ip",
        ]
        assert json.loads(canonical_json(body)) == body
        assert body["accounts"] == list(record.accounts)


# -- secrets ---------------------------------------------------------------------------------------


def test_no_record_holds_an_issued_secret_or_any_secret_hash(history: History) -> None:
    hashes: list[str] = []
    for event, _, _ in history.events:
        for attribute in ("root_secret_hash", "secret_hash"):
            if hasattr(event, attribute):
                hashes.append(getattr(event, attribute))
    assert len(hashes) == 7  # two accounts, two user keys, one rotation, two sessions
    assert len(history.secrets) == 7
    dump = b"\n".join(canonical_json(r.as_dict()) for r in _records(history))
    for needle in [*history.secrets, *hashes, *(h.split("$")[-1] for h in hashes)]:
        assert needle.encode() not in dump
    assert b"secret" not in dump.lower()


def _session_events(
    role_account: str, source_account: str, secret_hash: str
) -> tuple[Any, Any, Any]:
    """A role's ``RoleCreated`` and one session's ``SessionIssued`` and ``SessionRevoked``,
    made by the real aggregates (no ledger)."""
    with acting_as(OWNER):
        role = Role(
            account_id=role_account,
            role_name="auditor",
            description=None,
            trust_policy=parse_policy_document(
                _trust(source_account), kind=DocumentKind.TRUST
            ).canonical_json(),
            max_session_duration=3_600,
        )
        session = Session(
            access_key_id="STS.directkey0001",
            secret_hash=secret_hash,
            account_id=role_account,
            role_id=role.id,
            role_name="auditor",
            role_session_name="night-shift",
            source_arn=user_arn(source_account, "bob"),
            source_account_id=source_account,
            source_user_id=uuid4(),
            parent_access_key_id=None,
            session_policy=None,
            issued_at=ISSUED_AT,
            expiration=ISSUED_AT + timedelta(minutes=15),
        )
        session.revoke()
    (created,) = role.collect_events()
    issued, revoked = session.collect_events()
    return created, issued, revoked


@pytest.mark.parametrize(
    ("source", "accounts"),
    [
        ("2000000000000002", ("1000000000000001", "2000000000000002")),
        ("1000000000000001", ("1000000000000001",)),
    ],
    ids=["cross-account", "same-account"],
)
def test_a_session_concerns_its_roles_account_and_its_sources(
    source: str, accounts: tuple[str, ...]
) -> None:
    secret_hash = "k1$" + "c0ffee" * 8
    created, issued, revoked = _session_events("1000000000000001", source, secret_hash)
    naming = AuditNaming()
    now = datetime.now(UTC)
    records = [audit_record(e, n, now, naming) for n, e in enumerate((created, issued, revoked), 1)]
    arn = assumed_role_arn("1000000000000001", "auditor", "night-shift")
    assert [(r.event_type, r.target, r.accounts) for r in records[1:]] == [
        ("SessionIssued", arn, accounts),
        ("SessionRevoked", arn, accounts),
    ]
    assert records[1].summary["source_arn"] == user_arn(source, "bob")
    assert records[2].summary == {"access_key_id": "STS.directkey0001"}
    for record in records:
        body = record.as_dict()
        for value in body.values():
            text = json.dumps(value)
            assert secret_hash not in text
            assert secret_hash.split("$")[-1] not in text
        # neither the role's id nor the source user's id: the ARNs name them
        assert str(issued.role_id) not in json.dumps(body)
        assert str(issued.source_user_id) not in json.dumps(body)


def test_a_session_revocation_needs_its_issue_and_survives_a_restore() -> None:
    _, issued, revoked = _session_events("1000000000000001", "2000000000000002", "k1$00")
    now = datetime.now(UTC)
    with pytest.raises(UnnamedEntity, match="session"):
        audit_record(revoked, 2, now, AuditNaming())
    naming = AuditNaming()
    audit_record(issued, 1, now, naming)
    assert naming.touched_by(issued) == (str(issued.originator_id),)
    assert naming.touched_by(revoked) == ()
    stored = json.loads(json.dumps(naming.snapshot()))
    assert stored[str(issued.originator_id)] == {
        "kind": "session",
        "account_id": "1000000000000001",
        "name": "auditor",
        "session_name": "night-shift",
        "access_key_id": "STS.directkey0001",
        "source_account_id": "2000000000000002",
    }
    resumed = AuditNaming()
    resumed.restore(stored)
    assert audit_record(revoked, 2, now, resumed) == audit_record(revoked, 2, now, naming)


def test_session_fields_belong_to_sessions_only() -> None:
    with pytest.raises(ValueError, match="session"):
        NamedEntity("session", "1000000000000001", "ops")
    with pytest.raises(ValueError, match="session"):
        NamedEntity("role", "1000000000000001", "ops", session_name="s1")
    assert NamedEntity("role", "1000000000000001", "ops").arn == role_arn("1000000000000001", "ops")


# -- the naming state ------------------------------------------------------------------------------


def test_naming_persisted_through_touched_by_and_snapshot_restores_the_same_records(
    history: History,
) -> None:
    """A projection stores ``snapshot(touched_by(e))`` after each batch and ``restore``s it on
    restart: resuming from there at any position gives the records a full replay gives."""
    expected = _records(history)
    for cut in range(len(history.events) + 1):
        naming = AuditNaming()
        stored: dict[str, Any] = {}
        for event, position, time in history.events[:cut]:
            audit_record(event, position, time, naming)
            for entity, value in naming.snapshot(naming.touched_by(event)).items():
                if value is None:
                    stored.pop(entity, None)
                else:
                    stored[entity] = json.loads(json.dumps(value))
        assert stored == naming.snapshot()
        resumed = AuditNaming()
        resumed.restore(stored)
        tail = [audit_record(e, p, t, resumed) for e, p, t in history.events[cut:]]
        assert tail == expected[cut:]


def test_deleted_entities_are_forgotten_and_accounts_and_claims_kept(history: History) -> None:
    naming = AuditNaming()
    _records(history, naming)
    kinds = sorted(entity["kind"] for entity in naming.snapshot().values())
    # two accounts; claims of alice, alicia, devs, p1 and ops; only the second "devs" group
    # lives (the role "ops" is deleted); both sessions are kept
    assert kinds == ["account", "account", "group", *["name-claim"] * 5, "session", "session"]


def test_an_event_of_an_unknown_aggregate_is_refused_and_changes_nothing(history: History) -> None:
    naming = AuditNaming()
    events = history.events
    later = next(i for i, (e, _, _) in enumerate(events) if type(e).TOPIC.endswith("KeyCreated.v1"))
    event, position, time = events[later]
    with pytest.raises(UnnamedEntity):
        audit_record(event, position, time, naming)
    assert len(naming) == 0


def test_an_unknown_topic_is_refused() -> None:
    class Entrusted:
        TOPIC = "mandate:AccountEntrusted.v1"
        originator_id = uuid4()
        audit = {"actor": "mandate:admin"}

    naming = AuditNaming()
    with pytest.raises(UnknownAuditEvent, match="AccountEntrusted"):
        audit_record(Entrusted(), 1, datetime.now(UTC), naming)
    assert len(naming) == 0


def test_an_event_naming_two_accounts_concerns_both_sorted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """How a later cross-account event (an entrustment) will be recorded: both sides."""

    class Entrusted:
        TOPIC = "mandate:AccountEntrusted.v1"
        audit = {"actor": "acs:ram::2000000000000002:root"}

    def rule(event: Any, naming: AuditNaming) -> _Described:
        trustee, truster = "2000000000000002", "1000000000000001"
        return _Described((trustee, truster, trustee), root_arn(truster), {"trustee": trustee})

    monkeypatch.setitem(audit_records._RULES, Entrusted.TOPIC, rule)
    record = audit_record(Entrusted(), 7, datetime.now(UTC), AuditNaming())
    assert record.accounts == ("1000000000000001", "2000000000000002")
    assert record.event_type == "AccountEntrusted"


def test_a_record_needs_an_actor_a_positive_position_and_an_aware_time(history: History) -> None:
    event, position, time = history.events[0]
    with pytest.raises(AuditRecordError, match="position"):
        audit_record(event, 0, time, AuditNaming())
    with pytest.raises(AuditRecordError, match="timezone"):
        audit_record(event, position, time.replace(tzinfo=None), AuditNaming())

    class Anonymous:
        TOPIC = "mandate:AccountClosed.v1"
        audit: dict[str, Any] = {}

    with pytest.raises(AuditRecordError, match="actor"):
        audit_record(Anonymous(), 1, time, AuditNaming())


# -- conventions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "event_type"),
    [
        ("mandate:UserCreated.v1", "UserCreated"),
        ("mandate:User.PolicyAttached.v1", "User.PolicyAttached"),
        ("mandate:Group.PolicyDetached.v12", "Group.PolicyDetached"),
        ("mandate:NameReleased.v1", "NameReleased"),
        ("mandate:AccountOpened", "AccountOpened"),
    ],
)
def test_the_event_type_is_the_topic_without_prefix_and_version(
    topic: str, event_type: str
) -> None:
    assert event_type_of(topic) == event_type


def test_a_foreign_topic_has_no_event_type() -> None:
    with pytest.raises(UnknownAuditEvent):
        event_type_of("eventsourcing.domain:Aggregate.Created")


def test_ledger_time_is_formatted_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_ledger_time(datetime(2025, 1, 31, 10, 30, tzinfo=paris)) == (
        "2025-01-31T09:30:00.000000Z"
    )
    assert format_ledger_time(datetime(2025, 1, 31, 9, 30, 0, 5, tzinfo=UTC)) == (
        "2025-01-31T09:30:00.000005Z"
    )
