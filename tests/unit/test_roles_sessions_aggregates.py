"""The Role and Session aggregates' guards and events, without a store (docs/design.md §1, §3.3).

As for the other aggregates, every refusal is checked twice: the right domain error, and an
aggregate exactly as it was, so that a refused command has nothing to save. A no-op records
nothing; a session's secret is never in an event, only its keyed hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import resolve_topic

from mandate.domain.common.audit import AuditContext, acting_as
from mandate.domain.common.errors import Conflict, LimitExceeded, NotFound, PreconditionFailed
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import Group, User
from mandate.domain.identity.secrets import SecretHasher, new_access_key_id, new_access_key_secret
from mandate.domain.permissions.attachments import (
    MAX_CUSTOM_ATTACHMENTS,
    MAX_SYSTEM_ATTACHMENTS,
    Attachment,
    PolicyType,
)
from mandate.domain.permissions.managed_policies import ManagedPolicy
from mandate.domain.sts.roles import Role
from mandate.domain.sts.sessions import Session, session_aggregate_id
from tests.unit.test_aggregates import VERSIONED_TOPIC, declares_own_topic, names_of, refused

ACCOUNT = "1837465920374651"
PARTNER = "2938475610293847"
TRUST = (
    '{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow",'
    f'"Principal":{{"RAM":["acs:ram::{PARTNER}:root"]}}}}],"Version":"1"'
    "}"
)
OTHER_TRUST = TRUST.replace(PARTNER, ACCOUNT)
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------------


def collected(aggregate: Aggregate) -> list[Any]:
    """The pending events, typed loosely: each event class has its own attributes."""
    return list(aggregate.collect_events())


def custom(name: str) -> Attachment:
    return Attachment(PolicyType.CUSTOM, name, uuid4())


def system(name: str) -> Attachment:
    return Attachment(PolicyType.SYSTEM, name, None)


def new_role(name: str = "uploader", *, collect: bool = True) -> Role:
    role = Role(
        account_id=ACCOUNT,
        role_name=name,
        description="uploads photos",
        trust_policy=TRUST,
        max_session_duration=3_600,
    )
    if collect:
        collected(role)
    return role


def new_session(
    access_key_id: str = "STS.Nq4xT0aWb9Lr2Zc7Vh1K",
    secret_hash: str = "k1$" + "0" * 64,
    *,
    parent: str | None = None,
    collect: bool = True,
) -> Session:
    session = Session(
        access_key_id=access_key_id,
        secret_hash=secret_hash,
        account_id=ACCOUNT,
        role_id=uuid4(),
        role_name="uploader",
        role_session_name="phone-42",
        source_arn=f"acs:ram::{PARTNER}:user/app",
        source_account_id=PARTNER,
        source_user_id=uuid4(),
        parent_access_key_id=parent,
        session_policy=None,
        issued_at=T0,
        expiration=T0 + timedelta(hours=1),
    )
    if collect:
        collected(session)
    return session


def event_classes(aggregate: type[Aggregate]) -> Iterator[type[Any]]:
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, CanMutateAggregate):
            yield value


def replayed(events: list[Any]) -> Any:
    aggregate: Any = None
    for e in events:
        aggregate = e.mutate(aggregate)
    return aggregate


# --- roles -----------------------------------------------------------------------------------


def test_creating_a_role_records_role_created_with_its_facts() -> None:
    """RoleCreated carries account, name, description, trust and limit; nothing attached."""
    role = new_role(collect=False)
    (created,) = collected(role)
    assert type(created).__name__ == "RoleCreated"
    assert (created.account_id, created.role_name, created.trust_policy) == (
        ACCOUNT,
        "uploader",
        TRUST,
    )
    assert created.max_session_duration == 3_600
    assert role.attachments == {}
    assert role.sessions_revoked_before is None
    assert not role.deleted


def test_roles_get_random_ids_so_a_recreated_name_is_a_new_role() -> None:
    """Two roles of one name are two entities: sessions of the old one never revive."""
    assert new_role("uploader").id != new_role("uploader").id


@pytest.mark.parametrize(
    ("description", "max_session_duration"),
    [(None, None), ("uploads photos", None), (None, 3_600), ("uploads photos", 3_600)],
)
def test_an_update_that_changes_nothing_records_nothing(
    description: str | None, max_session_duration: int | None
) -> None:
    """Omitted fields keep their value; restating the current values is no event."""
    role = new_role()
    role.update(description=description, max_session_duration=max_session_duration)
    assert collected(role) == []


def test_an_update_records_role_updated_and_keeps_omitted_fields() -> None:
    """Changing the limit alone keeps the description, and the reverse."""
    role = new_role()
    role.update(description=None, max_session_duration=43_200)
    role.update(description="reads photos", max_session_duration=None)
    first, second = collected(role)
    assert names_of([first, second]) == ["RoleUpdated", "RoleUpdated"]
    assert (first.description, first.max_session_duration) == ("uploads photos", 43_200)
    assert (second.description, second.max_session_duration) == ("reads photos", 43_200)
    assert (role.description, role.max_session_duration) == ("reads photos", 43_200)


def test_replacing_the_trust_policy_records_the_new_trust_only_when_it_differs() -> None:
    """The same trust again is no event; a different one replaces it whole."""
    role = new_role()
    role.set_trust_policy(TRUST)
    assert collected(role) == []
    role.set_trust_policy(OTHER_TRUST)
    (updated,) = collected(role)
    assert type(updated).__name__ == "RoleTrustPolicyUpdated"
    assert updated.trust_policy == OTHER_TRUST
    assert role.trust_policy == OTHER_TRUST


def test_revoking_sessions_sets_the_horizon() -> None:
    """RoleSessionsRevoked records the instant before which every session is dead."""
    role = new_role()
    role.revoke_sessions(T0)
    (revoked,) = collected(role)
    assert type(revoked).__name__ == "RoleSessionsRevoked"
    assert revoked.issued_before == T0
    assert role.sessions_revoked_before == T0


def test_the_revocation_horizon_only_moves_forward() -> None:
    """A later horizon replaces an earlier one; an earlier one never brings sessions back.

    Whatever a revocation "before an earlier instant" records, replaying the events gives
    the later horizon: no event in the log ever carries the earlier instant.
    """
    role = new_role()
    role.revoke_sessions(T0)
    role.revoke_sessions(T0 + timedelta(minutes=5))
    assert role.sessions_revoked_before == T0 + timedelta(minutes=5)
    role.revoke_sessions(T0 - timedelta(days=1))
    role.revoke_sessions(T0 + timedelta(minutes=5))
    assert role.sessions_revoked_before == T0 + timedelta(minutes=5)
    events = collected(role)
    horizons = [e.issued_before for e in events]
    assert horizons[:2] == [T0, T0 + timedelta(minutes=5)]
    assert all(h == T0 + timedelta(minutes=5) for h in horizons[2:])
    assert horizons == sorted(horizons)


def test_a_role_with_attached_policies_is_not_deleted_without_detach() -> None:
    """DeleteConflict.Role.Policy, and nothing recorded."""
    role = new_role()
    role.attach_policy(system("AliyunOSSFullAccess"))
    collected(role)
    error = refused(role, PreconditionFailed, lambda: role.delete(detach=False))
    assert error.code == "DeleteConflict.Role.Policy"
    assert not role.deleted


def test_deleting_a_role_with_detach_records_each_detach_before_role_deleted() -> None:
    """Each attached policy gets its own PolicyDetached, in order, then RoleDeleted."""
    role = new_role()
    attachments = [system("AliyunOSSFullAccess"), custom("Reader"), custom("Writer")]
    for a in attachments:
        role.attach_policy(a)
    collected(role)
    role.delete(detach=True)
    events = collected(role)
    assert names_of(events) == ["PolicyDetached"] * 3 + ["RoleDeleted"]
    assert [(e.policy_type, e.policy_name, e.policy_id) for e in events[:3]] == [
        (a.policy_type.value, a.policy_name, a.policy_id) for a in attachments
    ]
    assert role.attachments == {}
    assert role.deleted


def test_a_role_with_nothing_attached_is_deleted_with_one_event() -> None:
    """With or without detach, an empty role's deletion is just RoleDeleted."""
    for detach in (False, True):
        role = new_role()
        role.delete(detach=detach)
        assert names_of(collected(role)) == ["RoleDeleted"]


def test_a_role_holds_at_most_ten_custom_and_twenty_system_policies() -> None:
    """The quotas of users and groups apply to roles, each type on its own."""
    role = new_role()
    for n in range(MAX_CUSTOM_ATTACHMENTS):
        role.attach_policy(custom(f"c{n}"))
    for n in range(MAX_SYSTEM_ATTACHMENTS):
        role.attach_policy(system(f"s{n}"))
    assert names_of(collected(role)) == ["PolicyAttached"] * (
        MAX_CUSTOM_ATTACHMENTS + MAX_SYSTEM_ATTACHMENTS
    )
    error = refused(role, LimitExceeded, lambda: role.attach_policy(custom("c10")))
    assert error.code == "LimitExceeded.Policy.Attachment"
    refused(role, LimitExceeded, lambda: role.attach_policy(system("s20")))
    role.detach_policy(("Custom", "c0"))
    role.attach_policy(custom("c10"))
    assert len(role.attachments) == MAX_CUSTOM_ATTACHMENTS + MAX_SYSTEM_ATTACHMENTS


def test_attaching_the_same_policy_to_a_role_twice_is_a_conflict() -> None:
    """Same (type, name) again is refused, even under a new policy id."""
    role = new_role()
    role.attach_policy(custom("Reader"))
    role.attach_policy(system("ReadOnlyAccess"))
    collected(role)
    error = refused(role, Conflict, lambda: role.attach_policy(custom("Reader")))
    assert error.code == "EntityAlreadyExists.Policy.Attachment"
    refused(role, Conflict, lambda: role.attach_policy(system("ReadOnlyAccess")))


def test_detaching_a_policy_the_role_does_not_hold_is_not_found() -> None:
    """The other type under the same name is another attachment."""
    role = new_role()
    role.attach_policy(custom("Reader"))
    collected(role)
    error = refused(role, NotFound, lambda: role.detach_policy(("System", "Reader")))
    assert error.code == "EntityNotExist.Policy.Attachment"
    refused(role, NotFound, lambda: role.detach_policy(("Custom", "Writer")))


def test_replaying_a_roles_events_rebuilds_the_same_role() -> None:
    """Folding every kind of Role event from nothing gives back its state."""
    role = new_role(collect=False)
    role.update(description="x", max_session_duration=7_200)
    role.set_trust_policy(OTHER_TRUST)
    role.attach_policy(custom("Reader"))
    role.attach_policy(system("ReadOnlyAccess"))
    role.detach_policy(("System", "ReadOnlyAccess"))
    role.revoke_sessions(T0)
    role.delete(detach=True)
    assert replayed(collected(role)) == role


# --- sessions --------------------------------------------------------------------------------


def test_a_sessions_id_is_derived_from_its_access_key_id() -> None:
    """uuid5 of the key id: a revocation finds the session from the key id alone."""
    session = new_session("STS.Nq4xT0aWb9Lr2Zc7Vh1K")
    assert session.id == session_aggregate_id("STS.Nq4xT0aWb9Lr2Zc7Vh1K")
    assert session.id == new_session("STS.Nq4xT0aWb9Lr2Zc7Vh1K").id
    assert session.id != session_aggregate_id("STS.Nq4xT0aWb9Lr2Zc7Vh1L")
    assert session.id.version == 5
    assert session_aggregate_id("STS.a") == uuid5(
        UUID("0b8f3c4e-5a43-4a4f-8d0c-2f7a9d1e6c55"), "session/STS.a"
    )


def test_issuing_a_session_records_session_issued_with_its_lineage() -> None:
    """SessionIssued records role, source, parent, policy and interval; not revoked."""
    session = new_session(parent="STS.parent", collect=False)
    (issued,) = collected(session)
    assert type(issued).__name__ == "SessionIssued"
    assert issued.parent_access_key_id == "STS.parent"
    assert (issued.issued_at, issued.expiration) == (T0, T0 + timedelta(hours=1))
    assert issued.source_account_id == PARTNER
    assert not session.revoked


def test_revoking_a_session_twice_records_one_event() -> None:
    """The second revocation is a no-op: idempotent, nothing to save."""
    session = new_session()
    session.revoke()
    session.revoke()
    assert names_of(collected(session)) == ["SessionRevoked"]
    assert session.revoked
    session.revoke()
    assert collected(session) == []


def test_replaying_a_sessions_events_rebuilds_the_same_session() -> None:
    """SessionIssued then SessionRevoked fold back into the same state."""
    session = new_session(collect=False)
    session.revoke()
    assert replayed(collected(session)) == session


def _values(value: object) -> Iterator[object]:
    """``value`` and everything inside it (containers and dataclasses), depth first."""
    yield value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _values(k)
            yield from _values(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from _values(v)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _values(getattr(value, f.name))


def test_session_issued_holds_the_secrets_keyed_hash_never_the_secret() -> None:
    """No attribute of SessionIssued (audit context included) equals or contains the secret."""
    hasher = SecretHasher("k1", {"k1": b"h" * 32})
    key_id, secret = new_access_key_id("STS."), new_access_key_secret()
    with acting_as(AuditContext(actor=f"acs:ram::{PARTNER}:user/app", credential="LTAIappkey")):
        session = new_session(key_id, hasher.hash(secret), collect=False)
    (issued,) = collected(session)
    assert hasher.verify(secret, issued.secret_hash)
    found = list(_values(vars(issued)))
    assert issued.secret_hash in found
    for value in found:
        assert value != secret
        if isinstance(value, str | bytes):
            text = value if isinstance(value, str) else value.decode(errors="replace")
            assert secret not in text
    assert secret not in repr(issued)
    assert not any(secret in str(v) for v in vars(session).values())


def test_session_and_role_events_carry_the_audit_context() -> None:
    """Who issued, revoked or changed them is on every event."""
    context = AuditContext(
        actor=f"acs:ram::{ACCOUNT}:user/admin",
        credential="LTAIadminkey",
        request_id="req-7",
        source_ip="203.0.113.7",
        reason="lost phone",
    )
    with acting_as(context):
        session = new_session(collect=False)
        session.revoke()
        role = new_role(collect=False)
        role.revoke_sessions(T0)
        role.delete(detach=False)
    events = [*collected(session), *collected(role)]
    assert len(events) == 5
    for e in events:
        assert e.audit == context.as_dict(), type(e).__name__


# --- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("aggregate", [Role, Session], ids=lambda a: a.__name__)
def test_role_and_session_events_have_explicit_versioned_mandate_topics(
    aggregate: type[Aggregate],
) -> None:
    """The aggregate and each event class name their own registered mandate:….vN topic."""
    assert VERSIONED_TOPIC.fullmatch(vars(aggregate)["TOPIC"])
    assert resolve_topic(vars(aggregate)["TOPIC"]) is aggregate
    classes = list(event_classes(aggregate))
    named = [c for c in classes if c.__name__ not in ("Event", "Created")]
    assert len(named) >= 2
    for cls in classes:
        assert VERSIONED_TOPIC.fullmatch(cls.TOPIC), cls.__qualname__
    for cls in named:
        assert declares_own_topic(cls), cls.__qualname__
        assert resolve_topic(cls.TOPIC) is cls, cls.__qualname__


def test_role_and_session_topics_are_unique_among_all_aggregates() -> None:
    """A role's PolicyAttached is not a user's or a group's: every topic names one class."""
    aggregates: list[type[Aggregate]] = [
        Account,
        User,
        Group,
        ManagedPolicy,
        NameClaim,
        Role,
        Session,
    ]
    topics = [
        cls.TOPIC
        for aggregate in aggregates
        for cls in event_classes(aggregate)
        if cls.__name__ not in ("Event", "Created")
    ]
    assert len(topics) == len(set(topics))
