"""Audit records from real ledger events (docs/design.md §4): one per event, named, and secret-free.

A scripted history runs on a real ``Ledger`` over a temporary SQLite file and touches every
event topic; its events are read back from the log exactly as a projection reads them. STS
sessions are made as the real ``Session`` aggregate and saved by the ledger (AssumeRole's
checks are not what this module is about), those of an entrustment's managed role included.
The ledger's read port is a stub that knows one custom policy, for an entrustment's scope
given by policy names.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from time import sleep
from typing import Any
from uuid import UUID, uuid4

import pytest

import mandate.domain as domain
from mandate.domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    entrustment_arn,
    group_arn,
    policy_arn,
    role_arn,
    root_arn,
    user_arn,
)
from mandate.domain.common.audit import AuditContext, LedgerAggregate, acting_as
from mandate.domain.common.identifiers import name_claim_id
from mandate.domain.contracts.entrustments import Delegation, Entrustment
from mandate.domain.events import EVENT_CLASSES
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.secrets import SecretHasher, new_access_key_id, new_access_key_secret
from mandate.domain.ledger.application import Ledger
from mandate.domain.ledger.ports import PrincipalRef
from mandate.domain.policy.document import DocumentKind, parse_policy_document
from mandate.domain.policy.system_policies import SYSTEM_POLICIES
from mandate.domain.sts.assume_role import RoleFacts
from mandate.domain.sts.oidc_providers import slot_order
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session, session_aggregate_id
from mandate.projections.audit.chain import canonical_json
from mandate.projections.audit.conventions import (
    AuditRecordError,
    UnknownAuditEvent,
    UnnamedEntity,
    event_type_of,
    format_ledger_time,
)
from mandate.projections.audit.naming import AuditNaming, NamedEntity
from mandate.projections.audit.records import RULES, AuditRecord, audit_record
from mandate.projections.audit.rules import Described
from mandate.projections.dispatch import UnknownEvent
from tests.oidc_support import CLIENT_ID, ISSUER, jwks

ADMIN = AuditContext(actor="mandate:admin")
OWNER = AuditContext(
    actor="acs:ram::1000000000000001:root",
    credential="LTAIowner",
    request_id="req-42",
    source_ip="198.51.100.9",
    reason="ticket SEC-7",
)
TRUSTEE = AuditContext(
    actor="acs:ram::2000000000000002:root",
    credential="LTAItrustee",
    request_id="req-43",
    source_ip="203.0.113.5",
)
SYSTEM = AuditContext(actor="mandate:system", reason="the contract's term was reached")
DOC_1 = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}]}
DOC_2 = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}
SYSTEM_POLICY = next(iter(SYSTEM_POLICIES))
ISSUED_AT = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))
REVOKED_BEFORE = datetime(2025, 1, 31, 10, 45, 0, 5, tzinfo=PARIS)  # 09:45:00.000005Z
STARTS_AT = datetime(2025, 2, 1, 10, 0, tzinfo=PARIS)  # 09:00:00Z
SCOPE_POLICY = "reads-photos"  # the one custom policy the stub read port knows
SCOPE_POLICY_DOC = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "acs:oss:*:*:photos/*"}],
}


def _trust(*principals: str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": principals}}
    return {"Version": "1", "Statement": [statement]}


@dataclass(frozen=True)
class IssuedSessionFacts:
    access_key_id: str
    secret: str
    secret_hash: str


@dataclass(frozen=True)
class EntrustedFacts:
    """The entrustment part of the script (ids are the entrustments' and delegations')."""

    now: datetime  # when the part began
    revoked: UUID  # entrustment C-2025/7, amended then revoked
    revoked_role: str
    ended: UUID  # entrustment C-2025/8, whose short term is reached and recorded as ended
    ended_role: str
    ends_at: datetime  # the revoked entrustment's term
    short_ends_at: datetime  # the ended entrustment's term, and the lapsed delegation's
    to_bob: UUID  # no end: live when the entrustment is revoked
    to_crew: UUID  # ends in a week: live at the revocation, revoked afterwards
    withdrawn: UUID  # revoked before the entrustment
    lapsed: UUID  # ended by its own ends_at before the entrustment's revocation
    under_ended: UUID  # under the ended entrustment, no end of its own
    live: IssuedSessionFacts  # a session of the managed role, live at the revocation
    withdrawn_session: IssuedSessionFacts  # revoked before the entrustment
    expired: IssuedSessionFacts  # expired before the entrustment's revocation
    short: IssuedSessionFacts  # of the ended entrustment, expiring at its term


class _StubReadPort:
    """Knows one custom policy (for a scope given as ``{"policies": [...]}``), nothing else."""

    def group_member_ids(self, group_id: UUID) -> list[UUID]:
        return []

    def policy_holders(self, policy_id: UUID) -> list[PrincipalRef]:
        return []

    def role_facts(self, account_id: str, role_name: str) -> RoleFacts | None:
        return None

    def policy_document(self, account_id: str, policy_name: str) -> str | None:
        if policy_name != SCOPE_POLICY:
            return None
        return parse_policy_document(SCOPE_POLICY_DOC).canonical_json()


@dataclass
class History:
    account: str
    other: str
    events: list[tuple[Any, int, datetime]]  # (event, position, ledger time)
    secrets: list[str]
    documents: dict[str, str]  # version id (or trust/session name) → canonical text, as stored
    cross: IssuedSessionFacts  # a session of the role "ops" assumed from the other account
    chained: IssuedSessionFacts  # a session assumed by the cross session (same account)
    entrusted: EntrustedFacts


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    path: Path = tmp_path_factory.mktemp("audit-records") / "ledger.db"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "CREATE_TABLE": "y",
    }
    ledger = Ledger(
        env,
        hasher=SecretHasher("k1", {"k1": b"unit-hash-key-" + b"h" * 32}),
        read_port=_StubReadPort(),
    )
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
        ledger.tag_resource(account, "user", "alicia", {"team": "dev"})
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
        ledger.tag_resource(account, "role", "ops", {"env": "prod", "team": "ops"})
        ledger.untag_resource(account, "role", "ops", ["env"])
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
    entrusted = _script_entrustments(ledger, account, other.account_id)
    with acting_as(OWNER):
        ledger.create_oidc_provider(
            account, "ci-idp", issuer_url=ISSUER, client_ids=[CLIENT_ID], jwks=jwks()
        )
        ledger.update_oidc_provider(account, "ci-idp", client_ids=[CLIENT_ID, "second"])
        ledger.delete_oidc_provider(account, "ci-idp")
        bucket = f"acs:oss:*:{account}:photos"
        granted = {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "oss:GetObject",
                    "Resource": f"{bucket}/*",
                    "Principal": "*",
                }
            ],
        }
        ledger.put_resource_policy(account, bucket, granted)
        ledger.put_resource_policy(account, bucket, granted)
        ledger.delete_resource_policy(account, bucket)
        root = ledger.enable_resource_directory(account).node_id
        folder = ledger.create_folder(account, root, "prod").node_id
        invitation = ledger.invite_account(account, other.account_id, "join us").node_id
        with acting_as(TRUSTEE):  # the invited account accepts, in its own name
            ledger.accept_handshake(other.account_id, invitation)
        ledger.move_account(account, other.account_id, folder)
        declined = ledger.invite_account(account, other.account_id).node_id
        with acting_as(TRUSTEE):
            ledger.decline_handshake(other.account_id, declined)
        ledger.cancel_handshake(account, ledger.invite_account(account, other.account_id).node_id)
        ledger.remove_cloud_account(account, other.account_id)
        no_ecs = {
            "Version": "1",
            "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}],
        }
        ledger.create_control_policy(account, "NoEcs", no_ecs)
        ledger.attach_control_policy(account, "NoEcs", folder)
        ledger.detach_control_policy(account, "NoEcs", folder)
        scratch = ledger.create_folder(account, root, "tmp").node_id
        ledger.rename_folder(account, scratch, "scratch")
        ledger.delete_folder(account, scratch)
        ledger.update_control_policy(
            account, "NoEcs", new_policy_name="NoEcs2", description="no ECS"
        )
        ledger.delete_control_policy(account, "NoEcs2")
        ledger.disable_control_policy(account)
        ledger.enable_control_policy(account)
    with acting_as(ADMIN):
        ledger.close_account(other.account_id)
        # erased after closing: recorded on the closed account, key ids only
        ledger.record_personal_data_erasure(other.account_id, [f"p1-{other.account_id}"])
    secrets += [key.access_key_secret, kept.access_key_secret, rotated.access_key_secret]
    secrets += [cross.secret, chained.secret]
    secrets += [
        s.secret
        for s in (entrusted.live, entrusted.withdrawn_session, entrusted.expired, entrusted.short)
    ]

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
        if type(event).TOPIC in (
            "mandate:EntrustmentGranted.v1",
            "mandate:EntrustmentAmended.v1",
            "mandate:DelegationGranted.v1",
        ):
            documents[f"scope {event.originator_id} {type(event).TOPIC}"] = event.scope
    return History(account, other.account_id, events, secrets, documents, cross, chained, entrusted)


def _script_entrustments(ledger: Ledger, account: str, other: str) -> EntrustedFacts:
    """A → B contracts: one amended and revoked with delegations and sessions under it in
    every state (live, revoked, lapsed, expired), one whose short term is reached and ended.
    """
    now = datetime.now(UTC)
    soon = now + timedelta(milliseconds=500)  # the short term, reached during the script
    bob = user_arn(other, "bob")
    with acting_as(TRUSTEE):
        ledger.create_user(other, "bob", "Bob")
        ledger.create_group(other, "crew", None)
    with acting_as(OWNER):
        granted = ledger.grant_entrustment(
            account, trustee_account_id=other, scope=DOC_1, contract_ref="C-2025/8", ends_at=soon
        )
        ended, ended_role = granted.entrustment_id, granted.role_name
    with acting_as(TRUSTEE):
        under_ended, lapsed = uuid4(), uuid4()
        ledger.grant_delegation(
            other, delegation_id=under_ended, entrustment_id=ended, grantee=bob, scope=DOC_1
        )
        short = _issue_session(
            ledger,
            account,
            ended_role,
            "short",
            source_arn=bob,
            source_account_id=other,
            parent_access_key_id=None,
            session_policy=None,
            issued_at=now,
            expiration=soon,  # AssumeRole caps a session at the contract's end
        )
    ends_at = now + timedelta(days=30)
    with acting_as(OWNER):
        granted = ledger.grant_entrustment(
            account,
            trustee_account_id=other,
            scope={"policies": [SCOPE_POLICY]},
            contract_ref="C-2025/7",
            starts_at=STARTS_AT,
            ends_at=ends_at,
            description="photo archive",
        )
        revoked, revoked_role = granted.entrustment_id, granted.role_name
    to_bob, to_crew, withdrawn = uuid4(), uuid4(), uuid4()
    with acting_as(TRUSTEE):
        for delegation_id, grantee, ends in [
            (lapsed, group_arn(other, "crew"), soon),
            (to_bob, bob, None),
            (to_crew, group_arn(other, "crew"), now + timedelta(days=7)),
            (withdrawn, bob, None),
        ]:
            ledger.grant_delegation(
                other,
                delegation_id=delegation_id,
                entrustment_id=revoked,
                grantee=grantee,
                scope=SCOPE_POLICY_DOC,
                ends_at=ends,
            )
        ledger.revoke_delegation(other, withdrawn)
        sessions = [
            _issue_session(
                ledger,
                account,
                revoked_role,
                name,
                source_arn=bob,
                source_account_id=other,
                parent_access_key_id=None,
                session_policy=None,
                issued_at=issued_at,
                expiration=issued_at + timedelta(hours=1),
            )
            for name, issued_at in [("live", now), ("withdrawn", now), ("expired", ISSUED_AT)]
        ]
        live, withdrawn_session, expired = sessions
        ledger.revoke_session(withdrawn_session.access_key_id)
    with acting_as(OWNER):
        ledger.amend_entrustment(account, revoked, DOC_1)
    sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.01)
    with acting_as(OWNER):
        ledger.revoke_entrustment(account, revoked)
    with acting_as(SYSTEM):
        assert ledger.end_entrustment(ended) is not None
    with acting_as(TRUSTEE):  # dead already, and still named
        ledger.revoke_delegation(other, to_crew)
        ledger.revoke_session(live.access_key_id)
    return EntrustedFacts(
        now,
        revoked,
        revoked_role,
        ended,
        ended_role,
        ends_at,
        soon,
        to_bob,
        to_crew,
        withdrawn,
        lapsed,
        under_ended,
        live,
        withdrawn_session,
        expired,
        short,
    )


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
    issued_at: datetime = ISSUED_AT,
    expiration: datetime | None = None,
) -> IssuedSessionFacts:
    """Record ``SessionIssued`` as ``Ledger.assume_role`` does, once its checks have passed
    (for a managed role, the claim names the entrustment: the role's id is the contract's)."""
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
        issued_at=issued_at,
        expiration=issued_at + timedelta(hours=1) if expiration is None else expiration,
    )
    assert session.id == session_aggregate_id(key_id)
    ledger.save(session)
    return IssuedSessionFacts(key_id, secret, secret_hash)


def _records(history: History, naming: AuditNaming | None = None) -> list[AuditRecord]:
    naming = AuditNaming() if naming is None else naming
    return [audit_record(e, position, time, naming) for e, position, time in history.events]


# -- every event, named ----------------------------------------------------------------------------


def test_the_script_touches_every_recorded_topic(history: History) -> None:
    assert {type(e) for e, _, _ in history.events} == set(RULES.known())


def _domain_event_topics() -> set[str]:
    """The topic of every named event class of every aggregate in the ``domain`` package."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"mandate.domain.{module.name}")
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
    known = set(RULES.known())
    assert topics == {topic for topic, cls in EVENT_CLASSES.items() if cls in known}


def test_the_rules_cover_the_catalogue_of_events() -> None:
    """Every event class of the domain's catalogue has its rule (none ignored: one record each)."""
    assert RULES.unhandled(EVENT_CLASSES) == []
    assert not any(RULES.ignored(cls) for cls in EVENT_CLASSES.values())


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
    idp = f"acs:ram::{a}:oidc-provider/ci-idp"
    issuer = f"acs:ram::{a}:oidc-issuer/{ISSUER}"  # the claims deciding RAM's provider quotas
    first = slot_order("ci-idp")[0]  # the first slot its name tries, free in a new account
    slot = f"acs:ram::{a}:oidc-provider-slot/{first}"
    bucket = f"acs:oss:*:{a}:photos"
    granted = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": f"{bucket}/*",
                "Principal": "*",
            }
        ],
    }
    # Resource Directory: the management account's nodes, the member's membership claim
    enabled = next(e for e, _, _ in history.events if type(e).__name__ == "DirectoryEnabled")
    created, made = (e for e, _, _ in history.events if type(e).__name__ == "FolderCreated")
    root, folder, scratch = enabled.root_folder_id, created.folder_id, made.folder_id
    folder_fields = {"folder_id": folder, "parent_id": root}
    rm = f"acs:resourcemanager::{a}"
    membership = f"acs:resourcemanager::{o}:membership/membership"
    invitation = f"{rm}:invitation/{o}"  # the claim that keeps one invitation pending
    claim = {"kind": "resource-directory-invitation", "name": o}
    invited = [e for e, _, _ in history.events if e.TOPIC == "mandate:HandshakeInvited.v1"]
    h, declined, cancelled = (e.handshake for e in invited)
    handshakes = (f"{rm}:handshake/{h}", f"acs:resourcemanager::{o}:handshake/{h}")

    def node(node_id: str) -> str:
        return f"{rm}:{'account' if node_id.isdigit() else 'folder'}/{node_id}"

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
        ("User.TagsChanged", alicia, {"tags": {"team": "dev"}}),
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
        ("Role.TagsChanged", ops, {"tags": {"env": "prod", "team": "ops"}}),
        ("Role.TagsChanged", ops, {"tags": {"team": "ops"}}),
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
        *_expected_entrustment_records(history),
        ("NameClaimed", idp, {"kind": "oidc-provider", "name": "ci-idp"}),
        ("NameClaimed", issuer, {"kind": "oidc-issuer", "name": ISSUER}),
        ("NameClaimed", slot, {"kind": "oidc-provider-slot", "name": first}),
        (
            "OIDCProviderCreated",
            idp,
            {
                "oidc_provider_name": "ci-idp",
                "issuer_url": ISSUER,
                "client_ids": [CLIENT_ID],
                "fingerprints": [],
                "issuance_limit_time": 12,
                "description": None,
                "jwks_key_ids": ["rsa-1", "ec-1"],
                "jwks_url": None,
            },
        ),
        (
            "OIDCProviderUpdated",
            idp,
            {
                "oidc_provider_name": "ci-idp",
                "client_ids": [CLIENT_ID, "second"],
                "fingerprints": [],
                "issuance_limit_time": 12,
                "description": None,
                "jwks_key_ids": ["rsa-1", "ec-1"],
                "jwks_url": None,
            },
        ),
        ("OIDCProviderDeleted", idp, {"oidc_provider_name": "ci-idp"}),
        ("NameReleased", idp, {"kind": "oidc-provider", "name": "ci-idp"}),
        ("NameReleased", issuer, {"kind": "oidc-issuer", "name": ISSUER}),
        ("NameReleased", slot, {"kind": "oidc-provider-slot", "name": first}),
        ("ResourcePolicyCreated", bucket, {"version": 1, "policy_document": granted}),
        ("ResourcePolicySet", bucket, {"version": 2, "policy_document": granted}),
        ("ResourcePolicyDeleted", bucket, {"version": 2}),
        ("ResourceDirectoryEnabled", node(root), {"root_folder_id": root}),
        ("ResourceDirectoryFolderCreated", node(folder), {**folder_fields, "name": "prod"}),
        ("NameClaimed", invitation, claim),
        (
            "HandshakeInvited",
            handshakes[0],
            {"handshake": h, "target_account": o, "note": True},
        ),
        (
            "HandshakeAccepted",
            handshakes[1],
            {"handshake": h, "management_account": a, "target_account": o, "status": "Accepted"},
        ),
        ("NameClaimed", membership, {"kind": "resource-directory", "name": "membership"}),
        ("NameReleased", invitation, claim),
        ("ResourceDirectoryAccountMoved", node(o), {"account_id": o, "folder_id": root}),
        ("ResourceDirectoryAccountMoved", node(o), {"account_id": o, "folder_id": folder}),
        ("NameReclaimed", invitation, claim),
        (
            "HandshakeInvited",
            f"{rm}:handshake/{declined}",
            {"handshake": declined, "target_account": o, "note": False},
        ),
        (
            "HandshakeDeclined",
            f"acs:resourcemanager::{o}:handshake/{declined}",
            {"handshake": declined, "management_account": a, "target_account": o}
            | {"status": "Declined"},
        ),
        ("NameReleased", invitation, claim),
        ("NameReclaimed", invitation, claim),
        (
            "HandshakeInvited",
            f"{rm}:handshake/{cancelled}",
            {"handshake": cancelled, "target_account": o, "note": False},
        ),
        (
            "HandshakeCancelled",
            f"{rm}:handshake/{cancelled}",
            {"handshake": cancelled, "management_account": a, "target_account": o}
            | {"status": "Cancelled"},
        ),
        ("NameReleased", invitation, claim),
        ("NameReleased", membership, {"kind": "resource-directory", "name": "membership"}),
        ("ResourceDirectoryAccountRemoved", node(o), {"account_id": o}),
        ("ControlPolicyCreated", f"{rm}:controlpolicy/NoEcs", {"policy_name": "NoEcs"}),
        ("ControlPolicyAttached", node(folder), {"policy_name": "NoEcs", "target": folder}),
        ("ControlPolicyDetached", node(folder), {"policy_name": "NoEcs", "target": folder}),
        (
            "ResourceDirectoryFolderCreated",
            node(scratch),
            {"folder_id": scratch, "parent_id": root, "name": "tmp"},
        ),
        (
            "ResourceDirectoryFolderRenamed",
            node(scratch),
            {"folder_id": scratch, "name": "scratch"},
        ),
        ("ResourceDirectoryFolderDeleted", node(scratch), {"folder_id": scratch}),
        (
            "ControlPolicyUpdated",
            f"{rm}:controlpolicy/NoEcs",
            {"policy_name": "NoEcs", "new_policy_name": "NoEcs2", "changed": ["description"]},
        ),
        ("ControlPolicyDeleted", f"{rm}:controlpolicy/NoEcs2", {"policy_name": "NoEcs2"}),
        ("ControlPolicyFeatureDisabled", f"{rm}:*", {"enablement_status": "Disabled"}),
        ("ControlPolicyFeatureEnabled", f"{rm}:*", {"enablement_status": "Enabled"}),
        ("AccountClosed", root_arn(o), {}),
        ("PersonalDataErased", root_arn(o), {"destroyed_key_ids": [f"p1-{o}"]}),
    ]
    actual = [(r.event_type, r.target, dict(r.summary)) for r in records]
    assert actual == expected
    facts = history.entrusted
    both_sides = {
        cross,  # a cross-account session concerns both accounts
        entrustment_arn(a, facts.revoked),  # so do both sides of a contract
        entrustment_arn(a, facts.ended),
        *(
            delegation_arn(o, d)
            for d in (facts.to_bob, facts.to_crew, facts.withdrawn, facts.lapsed)
        ),
        delegation_arn(o, facts.under_ended),
        *(
            assumed_role_arn(a, facts.revoked_role, name)
            for name in ("live", "withdrawn", "expired")
        ),
        assumed_role_arn(a, facts.ended_role, "short"),
        node(o),  # a member moved: its management account acted, its identities bounded
        *handshakes,  # an invitation: one account invited, the other accepted
        *(f"{rm}:handshake/{x}" for x in (declined, cancelled)),
        f"acs:resourcemanager::{o}:handshake/{declined}",
    }
    assert both_sides <= {r.target for r in records}
    for record in records:
        if record.target in both_sides:
            assert record.accounts == tuple(sorted({a, o}))
        elif record.target.startswith((f"acs:ram::{o}:", membership)):
            assert record.accounts == (o,)
        else:
            assert record.accounts == (a,)


def _expected_entrustment_records(history: History) -> list[tuple[str, str, dict[str, Any]]]:
    a, o, facts = history.account, history.other, history.entrusted
    bob, crew = user_arn(o, "bob"), group_arn(o, "crew")
    revoked, ended = entrustment_arn(a, facts.revoked), entrustment_arn(a, facts.ended)
    revoked_role, ended_role = role_arn(a, facts.revoked_role), role_arn(a, facts.ended_role)

    def scope(aggregate_id: UUID, event_type: str) -> str:
        return history.documents[f"scope {aggregate_id} mandate:{event_type}.v1"]

    def granted(delegation_id: UUID, grantee: str, ends_at: datetime | None) -> Any:
        summary = {
            "entrustment_arn": revoked,
            "grantee_arn": grantee,
            "scope": scope(delegation_id, "DelegationGranted"),
            "ends_at": None if ends_at is None else format_ledger_time(ends_at),
        }
        return ("DelegationGranted", delegation_arn(o, delegation_id), summary)

    def issued(role_name: str, session: IssuedSessionFacts, name: str, at: datetime) -> Any:
        summary = {
            "access_key_id": session.access_key_id,
            "role_arn": role_arn(a, role_name),
            "role_session_name": name,
            "source_arn": bob,
            "parent_access_key_id": None,
            "session_policy": None,
            "issued_at": format_ledger_time(at),
            "expiration": format_ledger_time(
                facts.short_ends_at if name == "short" else at + timedelta(hours=1)
            ),
        }
        return ("SessionIssued", assumed_role_arn(a, role_name, name), summary)

    def session_revoked(session: IssuedSessionFacts, name: str) -> Any:
        arn = assumed_role_arn(a, facts.revoked_role, name)
        return ("SessionRevoked", arn, {"access_key_id": session.access_key_id})

    return [
        ("NameClaimed", bob, {"kind": "user", "name": "bob"}),
        ("UserCreated", bob, {"user_name": "bob", "display_name": "Bob"}),
        ("NameClaimed", crew, {"kind": "group", "name": "crew"}),
        ("GroupCreated", crew, {"group_name": "crew", "comments": None}),
        ("NameClaimed", ended_role, {"kind": "role", "name": "C-2025-8"}),
        (
            "EntrustmentGranted",
            ended,
            {
                "contract_ref": "C-2025/8",
                "trustee_account_id": o,
                "role_arn": ended_role,
                "scope": scope(facts.ended, "EntrustmentGranted"),
                "scope_policies": None,
                "starts_at": None,
                "ends_at": format_ledger_time(facts.short_ends_at),
                "description": None,
            },
        ),
        (
            "DelegationGranted",
            delegation_arn(o, facts.under_ended),
            {
                "entrustment_arn": ended,
                "grantee_arn": bob,
                "scope": scope(facts.under_ended, "DelegationGranted"),
                "ends_at": None,
            },
        ),
        issued(facts.ended_role, facts.short, "short", facts.now),
        ("NameClaimed", revoked_role, {"kind": "role", "name": "C-2025-7"}),
        (
            "EntrustmentGranted",
            revoked,
            {
                "contract_ref": "C-2025/7",
                "trustee_account_id": o,
                "role_arn": revoked_role,
                "scope": scope(facts.revoked, "EntrustmentGranted"),
                "scope_policies": [SCOPE_POLICY],
                "starts_at": "2025-02-01T09:00:00.000000Z",
                "ends_at": format_ledger_time(facts.ends_at),
                "description": "photo archive",
            },
        ),
        granted(facts.lapsed, crew, facts.short_ends_at),
        granted(facts.to_bob, bob, None),
        granted(facts.to_crew, crew, facts.now + timedelta(days=7)),
        granted(facts.withdrawn, bob, None),
        (
            "DelegationRevoked",
            delegation_arn(o, facts.withdrawn),
            {"entrustment_arn": revoked},
        ),
        issued(facts.revoked_role, facts.live, "live", facts.now),
        issued(facts.revoked_role, facts.withdrawn_session, "withdrawn", facts.now),
        issued(facts.revoked_role, facts.expired, "expired", ISSUED_AT),
        session_revoked(facts.withdrawn_session, "withdrawn"),
        (
            "EntrustmentAmended",
            revoked,
            {"scope": scope(facts.revoked, "EntrustmentAmended"), "scope_policies": None},
        ),
        (
            "EntrustmentRevoked",
            revoked,
            {
                # still live: not the revoked delegation, nor the one past its own end
                "ended_delegations": sorted(
                    [delegation_arn(o, facts.to_bob), delegation_arn(o, facts.to_crew)]
                ),
                # not the revoked session, nor the expired one
                "ended_sessions": [facts.live.access_key_id],
            },
        ),
        (
            "EntrustmentEnded",
            ended,
            {
                "ended_delegations": [delegation_arn(o, facts.under_ended)],
                "ended_sessions": [],  # its one session expired at the term
            },
        ),
        (
            "DelegationRevoked",
            delegation_arn(o, facts.to_crew),
            {"entrustment_arn": revoked},
        ),
        session_revoked(facts.live, "live"),
    ]


def test_records_carry_the_audit_context_of_their_request(history: History) -> None:
    records = _records(history)
    contexts = {c.actor: c for c in (OWNER, ADMIN, TRUSTEE, SYSTEM)}
    assert {r.actor for r in records} == set(contexts)
    for r in records:
        context = contexts[r.actor]
        credential = context.credential
        if credential is not None and len(r.accounts) > 1:
            # a record shared with another account shows no key id of the actor's to it
            credential = "sha256:" + hashlib.sha256(credential.encode()).hexdigest()[:24]
        assert (r.credential, r.request_id, r.source_ip, r.reason) == (
            credential,
            context.request_id,
            context.source_ip,
            context.reason,
        )


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
    # two accounts, two user keys, one rotation, two sessions of "ops", four of managed roles
    assert len(hashes) == 11
    assert len(history.secrets) == 11
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


# -- entrustments and delegations ----------------------------------------------------------------


def test_a_revocation_is_in_both_accounts_chains_with_what_it_ended(history: History) -> None:
    """ "The audit trail shows the revocation to both accounts and, for each, what it ended."""
    a, o, facts = history.account, history.other, history.entrusted
    records = _records(history)
    chains = {
        account: [r for r in records if account in r.accounts] for account in (a, o)
    }  # what each account's chain holds
    (revocation,) = [r for r in records if r.event_type == "EntrustmentRevoked"]
    for chain in chains.values():
        assert revocation in chain
    assert revocation.accounts == tuple(sorted((a, o)))
    assert revocation.target == entrustment_arn(a, facts.revoked)
    assert (revocation.actor, revocation.reason) == (OWNER.actor, "ticket SEC-7")
    assert dict(revocation.summary) == {
        "ended_delegations": sorted(
            [delegation_arn(o, facts.to_bob), delegation_arn(o, facts.to_crew)]
        ),
        "ended_sessions": [facts.live.access_key_id],
    }
    # the lapsed delegation had reached its own end, and the expired session its expiry,
    # by the revocation's ledger time: nothing the revocation ended
    assert format_ledger_time(facts.short_ends_at) <= revocation.time
    assert format_ledger_time(ISSUED_AT + timedelta(hours=1)) <= revocation.time
    (ending,) = [r for r in records if r.event_type == "EntrustmentEnded"]
    assert ending.accounts == tuple(sorted((a, o)))
    assert (ending.actor, ending.reason) == (SYSTEM.actor, SYSTEM.reason)


def test_no_record_holds_an_internal_uuid_but_entrustment_and_delegation_ids(
    history: History,
) -> None:
    facts = history.entrusted
    shown = {
        str(i)
        for i in (
            facts.revoked,
            facts.ended,
            facts.to_bob,
            facts.to_crew,
            facts.withdrawn,
            facts.lapsed,
            facts.under_ended,
        )
    }
    hidden = {
        str(value)
        for event, _, _ in history.events
        for value in vars(event).values()
        if isinstance(value, UUID) and str(value) not in shown
    }
    grantee_ids = {
        str(e.grantee_id)
        for e, _, _ in history.events
        if type(e).TOPIC == "mandate:DelegationGranted.v1"
    }
    assert grantee_ids
    assert grantee_ids <= hidden
    dump = b"\n".join(canonical_json(r.as_dict()) for r in _records(history)).decode()
    assert [uuid for uuid in hidden if uuid in dump] == []
    assert all(uuid in dump for uuid in shown)


A_SIDE, B_SIDE = "1000000000000001", "2000000000000002"
TERM_END = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Contract:
    entrustment_id: UUID
    delegations: dict[str, UUID]  # label → delegation id
    sessions: dict[str, str]  # label → access key id
    events: list[Any]  # in log order; the last one closes the contract


def _contract(close: str) -> Contract:
    """A contract of A_SIDE to B_SIDE ending at TERM_END, with delegations and sessions of
    its managed role that end before, at and after that instant, or are revoked; closed by
    ``close`` (``revoke`` an hour before the term, or ``end`` at it). Real aggregates, no
    ledger."""
    scope = parse_policy_document(DOC_1).canonical_json()
    with acting_as(OWNER):
        entrustment = Entrustment(
            account_id=A_SIDE,
            trustee_account_id=B_SIDE,
            role_name="C-9",
            scope=scope,
            scope_policies=None,
            contract_ref="C-9",
            starts_at=None,
            ends_at=TERM_END,
            description=None,
        )
    events: list[Any] = [*entrustment.collect_events()]
    delegation_ends = {"open": None, "at": TERM_END, "after": TERM_END + MICRO, "revoked": None}
    delegations: dict[str, UUID] = {}
    sessions: dict[str, str] = {}
    with acting_as(TRUSTEE):
        for label, ends_at in delegation_ends.items():
            delegation = Delegation(
                delegation_id=uuid4(),
                account_id=B_SIDE,
                entrustment_id=entrustment.id,
                entrustment_account_id=A_SIDE,
                grantee_arn=user_arn(B_SIDE, "bob"),
                grantee_kind="user",
                grantee_id=uuid4(),
                scope=scope,
                ends_at=ends_at,
            )
            if label == "revoked":
                delegation.revoke(TERM_END - timedelta(hours=2))
            delegations[label] = delegation.id
            events += delegation.collect_events()
        for label, expiration in [
            ("at", TERM_END),
            ("after", TERM_END + MICRO),
            ("revoked", TERM_END + timedelta(hours=1)),
        ]:
            session = Session(
                access_key_id=f"STS.{label}",
                secret_hash="k1$00",
                account_id=A_SIDE,
                role_id=entrustment.id,  # the managed role's id is the entrustment's
                role_name="C-9",
                role_session_name=label,
                source_arn=user_arn(B_SIDE, "bob"),
                source_account_id=B_SIDE,
                source_user_id=uuid4(),
                parent_access_key_id=None,
                session_policy=None,
                issued_at=ISSUED_AT,
                expiration=expiration,
            )
            if label == "revoked":
                session.revoke()
            sessions[label] = session.access_key_id
            events += session.collect_events()
    with acting_as(OWNER if close == "revoke" else SYSTEM):
        if close == "revoke":
            entrustment.revoke(TERM_END - timedelta(hours=1))
        else:
            assert entrustment.end(TERM_END)
    events += entrustment.collect_events()
    return Contract(entrustment.id, delegations, sessions, events)


@pytest.mark.parametrize(
    ("close", "closed_at", "ended"),
    [
        ("revoke", TERM_END - timedelta(hours=1), ["at", "after", "open"]),
        ("end", TERM_END, ["after", "open"]),
        ("end", TERM_END + MICRO, ["open"]),
    ],
    ids=["revoked-before-term", "ended-at-term", "ended-later"],
)
def test_what_a_contracts_close_ended_is_what_was_live_at_its_ledger_time(
    close: str, closed_at: datetime, ended: list[str]
) -> None:
    """Live at T: not revoked, and ``ends_at`` (a session's ``expiration``) after T."""
    contract = _contract(close)
    naming = AuditNaming()
    *opening, closing = contract.events
    for position, event in enumerate(opening, 1):
        audit_record(event, position, TERM_END - timedelta(hours=2), naming)
    record = audit_record(closing, len(contract.events), closed_at, naming)
    assert record.event_type == ("EntrustmentRevoked" if close == "revoke" else "EntrustmentEnded")
    assert record.target == entrustment_arn(A_SIDE, contract.entrustment_id)
    assert record.accounts == (A_SIDE, B_SIDE)
    assert dict(record.summary) == {
        "ended_delegations": sorted(
            delegation_arn(B_SIDE, contract.delegations[label])
            for label in ended
            if label in contract.delegations
        ),
        "ended_sessions": sorted(
            contract.sessions[label] for label in ended if label in contract.sessions
        ),
    }


def test_a_contracts_state_is_kept_as_json_pruned_as_it_goes_and_dropped_when_it_closes() -> None:
    contract = _contract("revoke")
    e_id = str(contract.entrustment_id)
    d = {label: str(i) for label, i in contract.delegations.items()}
    naming = AuditNaming()
    stored: dict[str, Any] = {}
    touched: list[tuple[str, tuple[str, ...]]] = []
    *opening, closing = contract.events
    for position, event in enumerate(contract.events, 1):
        at = TERM_END - timedelta(hours=2 if event is not closing else 1)
        audit_record(event, position, at, naming)
        touched.append((event_type_of(type(event).TOPIC), naming.touched_by(event)))
        stored.update(json.loads(json.dumps(naming.snapshot(naming.touched_by(event)))))
        if event is opening[-1]:
            before_close = stored[e_id]
    s = {label: str(session_aggregate_id(key)) for label, key in contract.sessions.items()}
    assert touched == [
        ("EntrustmentGranted", (e_id,)),
        *[("DelegationGranted", (d[label], e_id)) for label in ("open", "at", "after")],
        ("DelegationGranted", (d["revoked"], e_id)),
        ("DelegationRevoked", (e_id,)),
        *[("SessionIssued", (s[label], e_id)) for label in ("at", "after", "revoked")],
        ("SessionRevoked", (e_id,)),
        ("EntrustmentRevoked", (e_id,)),
    ]
    # the revoked delegation was dropped when the first session was added; the session
    # revoked since is only flagged
    assert before_close == {
        "kind": "entrustment",
        "account_id": A_SIDE,
        "trustee_account_id": B_SIDE,
        "closed": None,
        "delegations": {
            d["open"]: {"ends_at": None, "revoked": False},
            d["at"]: {"ends_at": "2025-03-01T12:00:00.000000Z", "revoked": False},
            d["after"]: {"ends_at": "2025-03-01T12:00:00.000001Z", "revoked": False},
        },
        "sessions": {
            s["at"]: {
                "access_key_id": "STS.at",
                "expiration": "2025-03-01T12:00:00.000000Z",
                "revoked": False,
            },
            s["after"]: {
                "access_key_id": "STS.after",
                "expiration": "2025-03-01T12:00:00.000001Z",
                "revoked": False,
            },
            s["revoked"]: {
                "access_key_id": "STS.revoked",
                "expiration": "2025-03-01T13:00:00.000000Z",
                "revoked": True,
            },
        },
    }
    assert stored[e_id] == {**before_close, "closed": "revoked", "delegations": {}, "sessions": {}}
    for label in contract.delegations:
        assert stored[d[label]] == {"kind": "delegation", "entrustment_id": e_id}
    assert stored == naming.snapshot()


def test_a_delegation_or_session_dead_with_its_contract_is_still_named_after_a_restore() -> None:
    contract = _contract("revoke")
    naming = AuditNaming()
    for position, event in enumerate(contract.events, 1):
        audit_record(event, position, TERM_END - timedelta(hours=1), naming)
    resumed = AuditNaming()
    resumed.restore(json.loads(json.dumps(naming.snapshot())))
    with acting_as(TRUSTEE):
        delegation = Delegation(
            delegation_id=contract.delegations["open"],
            account_id=B_SIDE,
            entrustment_id=contract.entrustment_id,
            entrustment_account_id=A_SIDE,
            grantee_arn=user_arn(B_SIDE, "bob"),
            grantee_kind="user",
            grantee_id=uuid4(),
            scope="{}",
            ends_at=None,
        )
        delegation.collect_events()
        delegation.revoke(TERM_END - timedelta(minutes=30))
    (revoked,) = delegation.collect_events()
    record = audit_record(revoked, 99, TERM_END - timedelta(minutes=30), resumed)
    assert (record.event_type, record.target, record.accounts) == (
        "DelegationRevoked",
        delegation_arn(B_SIDE, contract.delegations["open"]),
        (A_SIDE, B_SIDE),
    )
    assert dict(record.summary) == {
        "entrustment_arn": entrustment_arn(A_SIDE, contract.entrustment_id)
    }
    assert resumed.touched_by(revoked) == (str(contract.entrustment_id),)
    assert resumed.snapshot() == naming.snapshot()  # nothing hangs from a closed contract


def test_a_delegation_or_a_close_of_an_unknown_contract_is_refused_and_changes_nothing() -> None:
    contract = _contract("revoke")
    granted, delegation_granted, *_, closing = contract.events
    (revoked,) = [e for e in contract.events if event_type_of(type(e).TOPIC) == "DelegationRevoked"]
    now = datetime.now(UTC)
    for event in (delegation_granted, closing):
        naming = AuditNaming()
        with pytest.raises(UnnamedEntity, match="entrustment"):
            audit_record(event, 2, now, naming)
        assert len(naming) == 0
    naming = AuditNaming()
    audit_record(granted, 1, now, naming)
    before = naming.snapshot()
    with pytest.raises(UnnamedEntity, match="delegation"):
        audit_record(revoked, 6, now, naming)  # its grant was never recorded
    assert naming.snapshot() == before


def test_a_snapshot_from_before_entrustments_restores_and_goes_on() -> None:
    """Entries stored by earlier versions (no entrustments, no delegations) still load."""
    account_id, session_id = str(uuid4()), str(session_aggregate_id("STS.old"))
    old = {
        account_id: {"kind": "account", "account_id": A_SIDE, "name": "Acme"},
        str(name_claim_id(A_SIDE, "role", "ops")): {
            "kind": "name-claim",
            "account_id": A_SIDE,
            "name": "ops",
            "claimed_kind": "role",
        },
        session_id: {
            "kind": "session",
            "account_id": A_SIDE,
            "name": "ops",
            "session_name": "s1",
            "access_key_id": "STS.old",
            "source_account_id": B_SIDE,
        },
    }
    naming = AuditNaming()
    naming.restore(old)
    assert naming.snapshot() == old
    assert len(naming) == 3
    contract = _contract("end")
    records = [
        audit_record(event, position, TERM_END, naming)
        for position, event in enumerate(contract.events, 1)
    ]
    assert records[-1].summary["ended_delegations"] == sorted(
        delegation_arn(B_SIDE, contract.delegations[label]) for label in ("open", "after")
    )
    assert naming.snapshot([session_id]) == {session_id: old[session_id]}


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
    # two accounts; claims of alice, alicia, devs, p1, ops, bob, crew, the two managed
    # roles, the (deleted) OIDC provider with its issuer and slot claims, the directory
    # membership and invitation; the second "devs"
    # group and "crew" live, and
    # "bob" (the role "ops" is deleted); every session (two of "ops", four of managed roles),
    # entrustment and delegation is kept
    assert kinds == [
        "account",
        "account",
        *["delegation"] * 5,
        *["entrustment"] * 2,
        "group",
        "group",
        *["name-claim"] * 14,
        *["session"] * 6,
        "user",
    ]


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
    with pytest.raises(UnknownAuditEvent, match="AccountEntrusted") as refused:
        audit_record(Entrusted(), 1, datetime.now(UTC), naming)
    assert isinstance(refused.value, UnknownEvent)
    assert len(naming) == 0


def test_a_class_that_only_borrows_a_known_topic_is_refused() -> None:
    """Rules are found by event class, not by the topic string a class claims."""

    class Impostor:
        TOPIC = "mandate:AccountClosed.v1"
        originator_id = uuid4()
        audit = {"actor": "mandate:admin"}

    with pytest.raises(UnknownAuditEvent, match="AccountClosed"):
        audit_record(Impostor(), 1, datetime.now(UTC), AuditNaming())


def _teach(monkeypatch: pytest.MonkeyPatch, event_class: type, rule: Any) -> None:
    """Register ``rule`` for ``event_class`` for one test (``RULES`` has no unregistering)."""
    known = RULES.handler_for
    monkeypatch.setattr(
        RULES, "handler_for", lambda cls: rule if cls is event_class else known(cls)
    )


def test_an_event_naming_two_accounts_concerns_both_sorted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """How a later cross-account event (an entrustment) will be recorded: both sides."""

    class Entrusted:
        TOPIC = "mandate:AccountEntrusted.v1"
        audit = {"actor": "acs:ram::2000000000000002:root"}

    def rule(naming: AuditNaming, event: Any, at: datetime) -> Described:
        trustee, truster = "2000000000000002", "1000000000000001"
        return Described((trustee, truster, trustee), root_arn(truster), {"trustee": trustee})

    _teach(monkeypatch, Entrusted, rule)
    record = audit_record(Entrusted(), 7, datetime.now(UTC), AuditNaming())
    assert record.accounts == ("1000000000000001", "2000000000000002")
    assert record.event_type == "AccountEntrusted"


def test_a_record_needs_an_actor_a_positive_position_and_an_aware_time(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, position, time = history.events[0]
    with pytest.raises(AuditRecordError, match="position"):
        audit_record(event, 0, time, AuditNaming())
    with pytest.raises(AuditRecordError, match="timezone"):
        audit_record(event, position, time.replace(tzinfo=None), AuditNaming())

    class Anonymous:
        TOPIC = "mandate:AccountClosed.v1"
        audit: dict[str, Any] = {}

    _teach(monkeypatch, Anonymous, RULES.handler_for(Account.AccountClosed))
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


def test_the_ledger_time_text_kept_between_events_is_that_of_the_same_instant_only() -> None:
    utc = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)
    assert format_ledger_time(utc) == "2025-01-31T09:30:00.000000Z"
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert format_ledger_time(paris) == "2025-01-31T09:30:00.000000Z"
    later = utc + timedelta(microseconds=1)
    assert format_ledger_time(later) == "2025-01-31T09:30:00.000001Z"
    with pytest.raises(AuditRecordError, match="timezone"):
        format_ledger_time(later.replace(tzinfo=None))


def test_ledger_time_is_formatted_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_ledger_time(datetime(2025, 1, 31, 10, 30, tzinfo=paris)) == (
        "2025-01-31T09:30:00.000000Z"
    )
    assert format_ledger_time(datetime(2025, 1, 31, 9, 30, 0, 5, tzinfo=UTC)) == (
        "2025-01-31T09:30:00.000005Z"
    )
