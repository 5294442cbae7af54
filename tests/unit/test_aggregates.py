"""The aggregates' guards and events, without a store (docs/design.md §1, §3.1).

Every refusal is checked twice: the right domain error is raised, and the aggregate is
exactly as it was — no new pending event, same version, same state — so a refused
command has nothing to save.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import resolve_topic

from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.audit import SYSTEM_ACTOR, AuditContext, acting_as
from mandate.domain.common.errors import (
    Conflict,
    DomainError,
    LimitExceeded,
    NotFound,
    PreconditionFailed,
)
from mandate.domain.common.identifiers import name_claim_id
from mandate.domain.identity.accounts import Account
from mandate.domain.identity.name_claims import NameClaim
from mandate.domain.identity.principals import (
    MAX_ACCESS_KEYS_PER_USER,
    MAX_GROUPS_PER_USER,
    AccessKeyStatus,
    Group,
    User,
)
from mandate.domain.permissions.attachments import (
    MAX_CUSTOM_ATTACHMENTS,
    MAX_SYSTEM_ATTACHMENTS,
    Attachment,
    PolicyType,
)
from mandate.domain.permissions.managed_policies import MAX_POLICY_VERSIONS, ManagedPolicy

ACCOUNT = "1837465920374651"
DOCUMENT = (
    '{"Statement":[{"Action":"oss:GetObject","Effect":"Allow","Resource":"*"}],"Version":"1"}'
)
AGGREGATES: tuple[type[Aggregate], ...] = (Account, User, Group, ManagedPolicy, NameClaim)
VERSIONED_TOPIC = re.compile(r"mandate:[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)*\.v[1-9][0-9]*")


# --- helpers ---------------------------------------------------------------------------------


def refused(aggregate: Aggregate, error: type[DomainError], command: Callable[[], object]) -> Any:
    """Run ``command``, expect ``error``, and check that the aggregate did not change at all."""
    before = copy.deepcopy(aggregate)
    pending_before = len(aggregate.pending_events)
    with pytest.raises(error) as raised:
        command()
    assert len(aggregate.pending_events) == pending_before, "a refused command left an event"
    assert aggregate.version == before.version
    assert aggregate == before, "a refused command changed the aggregate's state"
    return raised.value


def names_of(events: Any) -> list[str]:
    return [type(e).__name__ for e in events]


def custom(name: str) -> Attachment:
    return Attachment(PolicyType.CUSTOM, name, uuid4())


def system(name: str) -> Attachment:
    return Attachment(PolicyType.SYSTEM, name, None)


def new_user(name: str = "alice") -> User:
    user = User(account_id=ACCOUNT, user_name=name, display_name=None)
    user.collect_events()
    return user


def new_group(name: str = "ops") -> Group:
    group = Group(account_id=ACCOUNT, group_name=name, comments=None)
    group.collect_events()
    return group


def new_policy(name: str = "Reader") -> ManagedPolicy:
    policy = ManagedPolicy(
        account_id=ACCOUNT, policy_name=name, description=None, document=DOCUMENT
    )
    policy.collect_events()
    return policy


def new_account() -> Account:
    account = Account(
        account_id=ACCOUNT, name="Acme", root_access_key_id="LTAIroot", root_secret_hash="k1$00"
    )
    account.collect_events()
    return account


def event_classes(aggregate: type[Aggregate]) -> Iterator[type[Any]]:
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, CanMutateAggregate):
            yield value


def declares_own_topic(cls: type[Any]) -> bool:
    """Whether ``cls`` sets its TOPIC itself rather than inheriting its aggregate's Event's.

    An event bound to a method by ``@event(SomeEvent)`` is a subclass eventsourcing makes of
    the declared ``SomeEvent`` (same qualified name), so the TOPIC may be on that one.
    """
    owner = next(c for c in cls.__mro__ if "TOPIC" in vars(c))
    return owner.__qualname__ == cls.__qualname__


# --- users: access keys ----------------------------------------------------------------------


def test_a_user_holds_at_most_two_access_keys() -> None:
    """A third AccessKey is refused with LimitExceeded and records nothing."""
    user = new_user()
    for n in range(MAX_ACCESS_KEYS_PER_USER):
        user.create_access_key(f"LTAIkey{n}", f"k1${n:02x}")
    assert names_of(user.collect_events()) == ["AccessKeyCreated"] * MAX_ACCESS_KEYS_PER_USER

    error = refused(user, LimitExceeded, lambda: user.create_access_key("LTAIkey9", "k1$09"))
    assert error.code == "LimitExceeded.User.AccessKey"
    assert sorted(user.access_keys) == ["LTAIkey0", "LTAIkey1"]


def test_a_deleted_access_key_frees_its_slot() -> None:
    """After deleting one of two keys, a new key is accepted again."""
    user = new_user()
    user.create_access_key("LTAIkey0", "k1$00")
    user.create_access_key("LTAIkey1", "k1$01")
    user.delete_access_key("LTAIkey0")
    user.create_access_key("LTAIkey2", "k1$02")
    assert sorted(user.access_keys) == ["LTAIkey1", "LTAIkey2"]


def test_an_unknown_access_key_is_not_found_for_status_or_delete() -> None:
    """Disabling or deleting a key the user does not hold is NotFound and records nothing."""
    user = new_user()
    user.create_access_key("LTAIkey0", "k1$00")
    user.collect_events()
    refused(
        user,
        NotFound,
        lambda: user.set_access_key_status("LTAIother", AccessKeyStatus.INACTIVE),
    )
    refused(user, NotFound, lambda: user.delete_access_key("LTAIother"))


def test_setting_a_key_to_its_current_status_records_nothing() -> None:
    """Disabling twice records one AccessKeyDisabled; enabling again records AccessKeyEnabled."""
    user = new_user()
    user.create_access_key("LTAIkey0", "k1$00")
    user.collect_events()
    user.set_access_key_status("LTAIkey0", AccessKeyStatus.INACTIVE)
    user.set_access_key_status("LTAIkey0", AccessKeyStatus.INACTIVE)
    user.set_access_key_status("LTAIkey0", AccessKeyStatus.ACTIVE)
    assert names_of(user.collect_events()) == ["AccessKeyDisabled", "AccessKeyEnabled"]
    assert user.access_keys["LTAIkey0"].status is AccessKeyStatus.ACTIVE


# --- users: groups ---------------------------------------------------------------------------


def test_a_user_is_in_at_most_ten_groups() -> None:
    """An eleventh membership is refused with LimitExceeded and records nothing."""
    user = new_user()
    for n in range(MAX_GROUPS_PER_USER):
        user.add_to_group(uuid4(), f"g{n}")
    user.collect_events()
    error = refused(user, LimitExceeded, lambda: user.add_to_group(uuid4(), "g10"))
    assert error.code == "LimitExceeded.User.Group"
    assert len(user.groups) == MAX_GROUPS_PER_USER


def test_joining_the_same_group_twice_is_a_conflict() -> None:
    """A second UserAddedToGroup for the same group is refused with Conflict."""
    user = new_user()
    group_id = uuid4()
    user.add_to_group(group_id, "ops")
    user.collect_events()
    refused(user, Conflict, lambda: user.add_to_group(group_id, "ops"))


def test_leaving_a_group_the_user_is_not_in_is_not_found() -> None:
    """Removing a user from a group it never joined is NotFound and records nothing."""
    user = new_user()
    user.add_to_group(uuid4(), "ops")
    user.collect_events()
    refused(user, NotFound, lambda: user.remove_from_group(uuid4()))


# --- attachments -----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [new_user, new_group], ids=["user", "group"])
def test_a_principal_holds_at_most_ten_custom_and_twenty_system_policies(
    make: Callable[[], User | Group],
) -> None:
    """Each policy type has its own quota: 10 Custom and 20 System, refused beyond."""
    principal = make()
    for n in range(MAX_CUSTOM_ATTACHMENTS):
        principal.attach_policy(custom(f"c{n}"))
    for n in range(MAX_SYSTEM_ATTACHMENTS):
        principal.attach_policy(system(f"s{n}"))
    assert len(principal.collect_events()) == MAX_CUSTOM_ATTACHMENTS + MAX_SYSTEM_ATTACHMENTS

    error = refused(principal, LimitExceeded, lambda: principal.attach_policy(custom("c10")))
    assert error.code == "LimitExceeded.Policy.Attachment"
    refused(principal, LimitExceeded, lambda: principal.attach_policy(system("s20")))


def test_a_full_custom_quota_leaves_the_system_quota_open() -> None:
    """Ten Custom attachments do not stop a System attachment, and vice versa."""
    user = new_user()
    for n in range(MAX_CUSTOM_ATTACHMENTS):
        user.attach_policy(custom(f"c{n}"))
    user.attach_policy(system("AdministratorAccess"))

    other = new_user("bob")
    for n in range(MAX_SYSTEM_ATTACHMENTS):
        other.attach_policy(system(f"s{n}"))
    other.attach_policy(custom("c0"))
    assert len(user.attachments) == MAX_CUSTOM_ATTACHMENTS + 1
    assert len(other.attachments) == MAX_SYSTEM_ATTACHMENTS + 1


@pytest.mark.parametrize("make", [new_user, new_group], ids=["user", "group"])
def test_attaching_the_same_policy_twice_is_a_conflict(make: Callable[[], User | Group]) -> None:
    """A second attach of one (type, name) is refused with Conflict, even with another id."""
    principal = make()
    principal.attach_policy(custom("Reader"))
    principal.attach_policy(system("ReadOnlyAccess"))
    principal.collect_events()
    error = refused(principal, Conflict, lambda: principal.attach_policy(custom("Reader")))
    assert error.code == "EntityAlreadyExists.Policy.Attachment"
    refused(principal, Conflict, lambda: principal.attach_policy(system("ReadOnlyAccess")))


@pytest.mark.parametrize("make", [new_user, new_group], ids=["user", "group"])
def test_detaching_a_policy_that_is_not_attached_is_not_found(
    make: Callable[[], User | Group],
) -> None:
    """Detaching an unknown policy, or the right name with the wrong type, is NotFound."""
    principal = make()
    principal.attach_policy(custom("Reader"))
    principal.collect_events()
    error = refused(principal, NotFound, lambda: principal.detach_policy(("Custom", "Writer")))
    assert error.code == "EntityNotExist.Policy.Attachment"
    refused(principal, NotFound, lambda: principal.detach_policy(("System", "Reader")))


# --- deleting users and groups ---------------------------------------------------------------


@pytest.mark.parametrize("holding", ["attachment", "membership", "both"])
def test_a_user_with_attachments_or_memberships_is_not_deleted_without_detach(
    holding: str,
) -> None:
    """DeleteUser is refused with PreconditionFailed while policies or groups remain."""
    user = new_user()
    if holding in ("attachment", "both"):
        user.attach_policy(system("ReadOnlyAccess"))
    if holding in ("membership", "both"):
        user.add_to_group(uuid4(), "ops")
    user.collect_events()
    error = refused(user, PreconditionFailed, lambda: user.delete(detach=False))
    assert error.code == "DeleteConflict.User"
    assert not user.deleted


def test_deleting_a_user_with_detach_records_each_detach_before_user_deleted() -> None:
    """Each attachment and membership goes in its own event, and UserDeleted comes last."""
    user = new_user()
    ops, dev = uuid4(), uuid4()
    user.attach_policy(system("ReadOnlyAccess"))
    user.attach_policy(custom("Reader"))
    user.add_to_group(ops, "ops")
    user.add_to_group(dev, "dev")
    user.create_access_key("LTAIkey0", "k1$00")
    user.collect_events()

    user.delete(detach=True)
    events = user.collect_events()

    assert names_of(events) == [
        "PolicyDetached",
        "PolicyDetached",
        "UserRemovedFromGroup",
        "UserRemovedFromGroup",
        "UserDeleted",
    ]
    assert {(e.policy_type, e.policy_name) for e in events[:2]} == {
        ("System", "ReadOnlyAccess"),
        ("Custom", "Reader"),
    }
    assert {e.group_id for e in events[2:4]} == {ops, dev}
    assert [e.originator_version for e in events] == list(
        range(events[0].originator_version, events[0].originator_version + 5)
    )
    assert user.deleted
    assert not user.attachments
    assert not user.groups


def test_a_user_with_nothing_attached_is_deleted_without_detach() -> None:
    """A user holding only keys is deleted with a single UserDeleted event."""
    user = new_user()
    user.create_access_key("LTAIkey0", "k1$00")
    user.collect_events()
    user.delete(detach=False)
    assert names_of(user.collect_events()) == ["UserDeleted"]


@pytest.mark.parametrize(
    ("attached", "members"), [(True, 0), (False, 2), (True, 1)], ids=["policy", "members", "both"]
)
def test_a_group_with_policies_or_members_is_not_deleted_without_detach(
    attached: bool, members: int
) -> None:
    """DeleteGroup is refused with PreconditionFailed while policies or members remain."""
    group = new_group()
    if attached:
        group.attach_policy(system("ReadOnlyAccess"))
    group.collect_events()
    error = refused(
        group, PreconditionFailed, lambda: group.delete(member_count=members, detach=False)
    )
    assert error.code == "DeleteConflict.Group"
    assert not group.deleted


def test_deleting_a_group_with_detach_records_each_policy_detach_before_group_deleted() -> None:
    """With detach, each attached policy gets its own PolicyDetached, then GroupDeleted."""
    group = new_group()
    group.attach_policy(system("ReadOnlyAccess"))
    group.attach_policy(custom("Reader"))
    group.collect_events()
    group.delete(member_count=3, detach=True)
    assert names_of(group.collect_events()) == ["PolicyDetached", "PolicyDetached", "GroupDeleted"]
    assert group.deleted
    assert not group.attachments


def test_an_empty_group_is_deleted_without_detach() -> None:
    """A group with no policies and no members is deleted with one GroupDeleted event."""
    group = new_group()
    group.delete(member_count=0, detach=False)
    assert names_of(group.collect_events()) == ["GroupDeleted"]


# --- custom policies -------------------------------------------------------------------------


def test_a_policy_holds_at_most_five_versions() -> None:
    """A sixth version is refused with LimitExceeded and records nothing."""
    policy = new_policy()
    created = [policy.create_version(DOCUMENT, set_as_default=False) for _ in range(4)]
    assert created == ["v2", "v3", "v4", "v5"]
    assert len(policy.versions) == MAX_POLICY_VERSIONS
    policy.collect_events()
    error = refused(
        policy, LimitExceeded, lambda: policy.create_version(DOCUMENT, set_as_default=True)
    )
    assert error.code == "LimitExceeded.Policy.Version"
    assert policy.default_version == "v1"


def test_version_ids_are_never_reused_after_a_delete() -> None:
    """After deleting v2..v5 the next versions are v6 and v7, never a freed id."""
    policy = new_policy()
    for _ in range(4):
        policy.create_version(DOCUMENT, set_as_default=False)
    policy.delete_version("v5")
    policy.delete_version("v2")
    assert policy.create_version(DOCUMENT, set_as_default=False) == "v6"
    assert policy.create_version(DOCUMENT, set_as_default=False) == "v7"
    assert sorted(policy.versions) == ["v1", "v3", "v4", "v6", "v7"]


def test_rotating_at_the_limit_deletes_the_oldest_non_default_version_first() -> None:
    """RAM's RotateStrategy: with five versions, the oldest that is not the default goes (one
    PolicyVersionDeleted before the PolicyVersionCreated); below the limit nothing is deleted."""
    policy = new_policy()
    assert policy.create_version(DOCUMENT, set_as_default=True, rotate=True) == "v2"
    for _ in range(3):
        policy.create_version(DOCUMENT, set_as_default=False)
    policy.collect_events()
    assert policy.create_version(DOCUMENT, set_as_default=False, rotate=True) == "v6"
    assert names_of(policy.collect_events()) == ["PolicyVersionDeleted", "PolicyVersionCreated"]
    assert sorted(policy.versions) == ["v2", "v3", "v4", "v5", "v6"]  # v1 was not the default
    assert policy.default_version == "v2"


def test_a_policy_with_other_versions_is_kept_when_versions_are_refused() -> None:
    """RAM's DeletePolicy without CascadingDelete: another version than the default is a
    DeleteConflict.Policy.Version; once it is gone the policy is deleted."""
    policy = new_policy()
    policy.create_version(DOCUMENT, set_as_default=False)
    policy.collect_events()
    error = refused(
        policy,
        PreconditionFailed,
        lambda: policy.delete(require_detached=True),
    )
    assert error.code == "DeleteConflict.Policy.Version"
    policy.delete_version("v2")
    policy.delete(require_detached=True)
    assert policy.deleted


def test_the_default_version_cannot_be_deleted() -> None:
    """Deleting the default version is a Conflict; after a switch the old default can go."""
    policy = new_policy()
    policy.create_version(DOCUMENT, set_as_default=True)
    policy.collect_events()
    error = refused(policy, Conflict, lambda: policy.delete_version("v2"))
    assert error.code == "DeleteConflict.Policy.DefaultVersion"

    policy.delete_version("v1")
    assert sorted(policy.versions) == ["v2"]
    assert policy.default_version == "v2"


def test_setting_the_default_version_switches_the_document_in_force() -> None:
    """DefaultPolicyVersionSet names the new and the previous default version."""
    other = DOCUMENT.replace("GetObject", "PutObject")
    policy = new_policy()
    policy.create_version(other, set_as_default=False)
    assert policy.default_document == DOCUMENT
    policy.collect_events()

    policy.set_default_version("v2")
    (switched,) = policy.collect_events()
    assert type(switched).__name__ == "DefaultPolicyVersionSet"
    assert (switched.version_id, switched.previous_version_id) == ("v2", "v1")
    assert policy.default_version == "v2"
    assert policy.default_document == other


def test_a_version_created_as_default_is_in_force_at_once() -> None:
    """PolicyVersionCreated with set_as_default makes the new version the default."""
    policy = new_policy()
    assert policy.create_version(DOCUMENT, set_as_default=True) == "v2"
    assert policy.default_version == "v2"


def test_setting_the_current_default_again_records_nothing() -> None:
    """Making the default version the default again is accepted and records no event."""
    policy = new_policy()
    policy.set_default_version("v1")
    assert policy.collect_events() == []


def test_an_unknown_version_is_not_found() -> None:
    """Setting or deleting a version the policy lacks (or deleted) is NotFound."""
    policy = new_policy()
    policy.create_version(DOCUMENT, set_as_default=False)
    policy.delete_version("v2")
    policy.collect_events()
    error = refused(policy, NotFound, lambda: policy.set_default_version("v2"))
    assert error.code == "EntityNotExist.Policy.Version"
    refused(policy, NotFound, lambda: policy.delete_version("v9"))


def test_a_policy_still_attached_is_not_deleted() -> None:
    """DeletePolicy is refused with PreconditionFailed while any principal holds it."""
    policy = new_policy()
    refused(policy, PreconditionFailed, lambda: policy.delete(holders=[PrincipalKind.ROLE]))
    policy.delete()
    assert names_of(policy.collect_events()) == ["PolicyDeleted"]


# --- name claims -----------------------------------------------------------------------------


def test_a_live_name_cannot_be_claimed_again() -> None:
    """Claiming a name whose entity is alive is a Conflict naming the kind."""
    first = uuid4()
    claim = NameClaim(account_id=ACCOUNT, kind="user", name="alice", entity_id=first)
    claim.collect_events()
    error = refused(claim, Conflict, lambda: claim.claim_again(uuid4()))
    assert error.code == "EntityAlreadyExists.User"
    assert claim.entity_id == first


def test_a_released_name_is_claimed_again_for_a_new_entity() -> None:
    """After NameReleased, NameReclaimed points the same claim at a different entity id."""
    first, second = uuid4(), uuid4()
    claim = NameClaim(account_id=ACCOUNT, kind="user", name="alice", entity_id=first)
    claim.release()
    assert claim.entity_id is None
    claim.claim_again(second)
    events = claim.collect_events()
    assert names_of(events) == ["NameClaimed", "NameReleased", "NameReclaimed"]
    assert events[1].entity_id == first
    assert events[2].entity_id == second
    assert claim.entity_id == second != first


def test_releasing_a_released_name_records_nothing() -> None:
    """A second release is a no-op without an event."""
    claim = NameClaim(account_id=ACCOUNT, kind="group", name="ops", entity_id=uuid4())
    claim.release()
    claim.collect_events()
    claim.release()
    assert claim.collect_events() == []


def test_a_claim_id_is_fixed_by_account_kind_and_name() -> None:
    """The claim's uuid5 id depends on account, kind and name only, never on the entity."""
    a = NameClaim(account_id=ACCOUNT, kind="user", name="alice", entity_id=uuid4())
    b = NameClaim(account_id=ACCOUNT, kind="user", name="alice", entity_id=uuid4())
    assert a.id == b.id == name_claim_id(ACCOUNT, "user", "alice")
    assert (
        len(
            {
                name_claim_id(ACCOUNT, "user", "alice"),
                name_claim_id(ACCOUNT, "group", "alice"),
                name_claim_id(ACCOUNT, "user", "Alice"),
                name_claim_id("5550001112223334", "user", "alice"),
            }
        )
        == 4
    )


def test_entities_get_random_ids_so_a_recreated_name_is_a_new_entity() -> None:
    """Users, groups and policies of one name get different ids; accounts get a fixed one."""
    assert new_account().id == new_account().id
    assert new_user("alice").id != new_user("alice").id
    assert new_group("ops").id != new_group("ops").id
    assert new_policy("Reader").id != new_policy("Reader").id


# --- accounts --------------------------------------------------------------------------------


def test_closing_a_closed_account_is_a_conflict() -> None:
    """AccountClosed is recorded once; a second close is refused with Conflict."""
    account = new_account()
    account.close()
    assert names_of(account.collect_events()) == ["AccountClosed"]
    refused(account, Conflict, account.close)
    assert account.closed


def test_a_closed_account_refuses_root_key_rotation() -> None:
    """Rotating the root key of a closed account is a Conflict and keeps the old key."""
    account = new_account()
    account.close()
    account.collect_events()
    error = refused(account, Conflict, lambda: account.rotate_root_access_key("LTAInew", "k1$11"))
    assert error.code == "Account.Closed"
    assert account.root_access_key_id == "LTAIroot"


def test_rotating_the_root_key_records_the_previous_key_id() -> None:
    """RootAccessKeyRotated names the new key, its hash and the key it replaces."""
    account = new_account()
    account.rotate_root_access_key("LTAInew", "k1$11")
    (rotated,) = account.collect_events()
    assert (rotated.access_key_id, rotated.secret_hash, rotated.previous_access_key_id) == (
        "LTAInew",
        "k1$11",
        "LTAIroot",
    )
    assert (account.root_access_key_id, account.root_secret_hash) == ("LTAInew", "k1$11")


# --- audit context and topics ----------------------------------------------------------------


def _exercise_every_aggregate() -> list[Aggregate]:
    """Create one of each aggregate and run most commands, leaving the events pending."""
    account = Account(
        account_id=ACCOUNT, name="Acme", root_access_key_id="LTAIroot", root_secret_hash="k1$00"
    )
    account.rotate_root_access_key("LTAInew", "k1$11")
    account.close()

    group = Group(account_id=ACCOUNT, group_name="ops", comments=None)
    group.attach_policy(system("ReadOnlyAccess"))

    user = User(account_id=ACCOUNT, user_name="alice", display_name=None)
    user.update(new_user_name="alice2", new_display_name="Alice")
    user.create_access_key("LTAIkey0", "k1$00")
    user.set_access_key_status("LTAIkey0", AccessKeyStatus.INACTIVE)
    user.set_access_key_status("LTAIkey0", AccessKeyStatus.ACTIVE)
    user.delete_access_key("LTAIkey0")
    user.add_to_group(group.id, "ops")
    user.attach_policy(custom("Reader"))
    user.delete(detach=True)
    group.delete(member_count=0, detach=True)

    policy = ManagedPolicy(
        account_id=ACCOUNT, policy_name="Reader", description=None, document=DOCUMENT
    )
    policy.create_version(DOCUMENT, set_as_default=False)
    policy.set_default_version("v2")
    policy.delete_version("v1")
    policy.delete()

    claim = NameClaim(account_id=ACCOUNT, kind="user", name="alice", entity_id=user.id)
    claim.release()
    claim.claim_again(uuid4())
    return [account, group, user, policy, claim]


def test_every_event_carries_the_audit_context_it_was_triggered_under() -> None:
    """Each event records actor, credential, request id, source IP and reason of its request."""
    context = AuditContext(
        actor="acs:ram::1837465920374651:user/admin",
        credential="LTAIadminkey00000000000",
        request_id="req-42",
        source_ip="203.0.113.7",
        reason="quarterly access review",
    )
    with acting_as(context):
        aggregates = _exercise_every_aggregate()
    events = [e for a in aggregates for e in a.collect_events()]

    assert len({type(e) for e in events}) >= 25
    for e in events:
        assert e.audit == context.as_dict(), type(e).__qualname__


def test_an_event_outside_any_request_records_the_system_actor() -> None:
    """Without acting_as, events record mandate:system; the context is reset after the block."""
    with acting_as(AuditContext(actor="acs:ram::1837465920374651:root")):
        inside = new_user()
        inside.create_access_key("LTAIkey0", "k1$00")
    inside.create_access_key("LTAIkey1", "k1$01")
    first, second = inside.collect_events()
    assert first.audit["actor"] == "acs:ram::1837465920374651:root"
    assert second.audit == SYSTEM_ACTOR.as_dict()


def test_replaying_the_events_rebuilds_the_same_aggregate() -> None:
    """Folding an aggregate's events from nothing gives back its state."""
    for aggregate in _exercise_every_aggregate():
        events = aggregate.collect_events()
        rebuilt: Any = None
        for e in events:
            rebuilt = e.mutate(rebuilt)
        assert rebuilt == aggregate, type(aggregate).__name__


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_every_event_class_has_an_explicit_versioned_mandate_topic(
    aggregate: type[Aggregate],
) -> None:
    """The aggregate and each of its event classes name a registered mandate:….vN topic."""
    assert VERSIONED_TOPIC.fullmatch(vars(aggregate)["TOPIC"])
    assert resolve_topic(aggregate.TOPIC) is aggregate
    classes = list(event_classes(aggregate))
    named = [c for c in classes if c.__name__ not in ("Event", "Created")]
    assert len(named) >= 3
    for cls in classes:
        assert VERSIONED_TOPIC.fullmatch(cls.TOPIC), cls.__qualname__
    for cls in named:
        # Its own TOPIC, not one inherited: the topic must survive a rename of the class.
        assert declares_own_topic(cls), cls.__qualname__
        assert resolve_topic(cls.TOPIC) is cls, cls.__qualname__


def test_event_topics_are_unique_across_aggregates() -> None:
    """No two named event classes of any aggregate share a topic."""
    topics = [
        cls.TOPIC
        for aggregate in AGGREGATES
        for cls in event_classes(aggregate)
        if cls.__name__ not in ("Event", "Created")
    ]
    assert len(topics) == len(set(topics))
