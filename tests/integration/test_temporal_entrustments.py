"""Sessions through entrusted contracts as of any instant (docs/design.md §3.2, §4).

A scripted history between two accounts is written through the ledger on each store: A
entrusts B with a scope over its instances and bucket (contract C-2026-001); B delegates to
its users erin, hank and ivy and to its group ops (frank is in it); each assumes the managed
role, and erin's session chains into an ordinary role of A that trusts the managed role. Then
A amends the scope, ivy is deleted, B revokes erin's delegation, frank leaves ops and A revokes
the contract with a reason. A second contract ends at its term (a couple of seconds after it
was granted: the test sleeps past it, then records ``EntrustmentEnded``) and a third starts a
second after it was granted.

At every ledger time of the history and one microsecond before it, at each session's
expiration and at the contracts' start and end (± 1 µs), ``AsOfReader.session_at`` must
answer as a brand-new ``DecisionIndex`` replayed up to that instant answers for
``DecisionIndex.session_subject``: the same verdict and reason, the same layers (entrustment
scope, delegations, session policy, role), the same chain and the same decisions. The story's
turning points are also asserted by name.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from mandate.api.runtime import Runtime
from mandate.domain.common.arns import (
    assumed_role_arn,
    delegation_arn,
    entrustment_arn,
    group_arn,
    role_arn,
    user_arn,
)
from mandate.domain.common.errors import DomainError
from mandate.domain.common.ledger_time import format_instant
from mandate.domain.ledger.results import Written
from mandate.domain.policy.evaluation import AccessRequest, DecisionKind
from mandate.projections.history.as_of_facts import AT_PAIRS_POSTGRES, AT_PAIRS_SQLITE
from tests.integration.runtimes import running
from tests.integration.test_temporal_sessions import (
    MICRO,
    Story,
    _assert_index_driven,
    _assert_sessions_as_of_equal_the_replayed_rule,
    _document,
    _plan,
    _trust,
)

CONTRACT = "C-2026-001"
REVOKED_BECAUSE = "the contract was terminated early"


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    with running(store_url) as the_runtime:
        yield the_runtime


@dataclass
class Entrusted:
    """The history between A and B, with the ids of its contracts and delegations."""

    story: Story
    role: str = ""
    """The managed role's name of the main contract."""
    entrustment: UUID = field(default_factory=uuid4)
    delegations: dict[str, UUID] = field(default_factory=dict)
    term: UUID = field(default_factory=uuid4)
    term_role: str = ""
    ends_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    starts_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    refused_before_start: str = ""

    @property
    def a(self) -> str:
        return self.story.a

    @property
    def b(self) -> str:
        return self.story.b

    def instance(self, name: str = "i-1") -> str:
        return f"acs:ecs:*:{self.a}:instance/{name}"

    def delegation(self, name: str) -> str:
        return delegation_arn(self.b, self.delegations[name])


def _requests(a: str, b: str) -> list[AccessRequest]:
    return [
        AccessRequest.make("ecs:RebootInstance", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("ecs:DescribeInstances", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("ecs:DeleteInstance", f"acs:ecs:*:{a}:instance/i-1"),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{a}:bucket/public/x"),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{a}:bucket/private/x"),
        AccessRequest.make("sts:AssumeRole", role_arn(a, "reader")),
        AccessRequest.make("oss:GetObject", f"acs:oss:*:{b}:bucket/x"),
    ]


def _tell(story: Story) -> Entrusted:
    ledger = story.runtime.ledger
    told = Entrusted(story)
    story.a = a = story.do(lambda: ledger.open_account("Acme")).account_id
    story.b = b = story.do(lambda: ledger.open_account("Partner")).account_id
    erin, frank, hank, ivy = (story.user(b, name) for name in ("erin", "frank", "hank", "ivy"))
    story.do(lambda: ledger.create_group(b, "ops", None))
    story.do(lambda: ledger.add_user_to_group(b, "ops", "frank"))
    instances, bucket = told.instance("*"), f"acs:oss:*:{a}:bucket/*"
    story.do(
        lambda: ledger.create_policy(
            a, "ecs-read", _document(("Allow", ["ecs:Describe*"], instances))
        )
    )

    scope = _document(
        ("Allow", ["ecs:RebootInstance", "ecs:DescribeInstances"], instances),
        ("Allow", ["oss:GetObject"], bucket),
        ("Allow", ["sts:AssumeRole"], role_arn(a, "reader")),
    )
    granted = story.do(
        lambda: ledger.grant_entrustment(
            a, trustee_account_id=b, scope=scope, contract_ref=CONTRACT
        ),
        "entrusted",
    )
    told.entrustment, told.role = granted.entrustment_id, granted.role_name
    managed = role_arn(a, told.role)
    story.do(lambda: ledger.create_role(a, "reader", _trust(managed)))
    story.do(lambda: ledger.attach_policy(a, "role", "reader", "Custom", "ecs-read"))

    def delegate(name: str, grantee: str, *statements: tuple[str, list[str], str]) -> None:
        told.delegations[name] = delegation_id = uuid4()
        story.do(
            lambda: ledger.grant_delegation(
                b,
                delegation_id=delegation_id,
                entrustment_id=told.entrustment,
                grantee=grantee,
                scope=_document(*statements),
            ),
            f"delegated to {name}",
        )

    delegate(
        "erin",
        erin.arn,
        ("Allow", ["ecs:*"], instances),
        ("Allow", ["sts:AssumeRole"], role_arn(a, "reader")),
    )
    delegate(
        "ops",
        group_arn(b, "ops"),
        ("Allow", ["ecs:DescribeInstances"], instances),
        ("Allow", ["oss:GetObject"], bucket),
    )
    delegate("hank", hank.arn, ("Allow", ["ecs:RebootInstance"], instances))
    delegate("ivy", ivy.arn, ("Allow", ["ecs:DescribeInstances"], instances))

    story.assume(erin, a, told.role, "erin")
    narrow = _document(("Allow", ["ecs:DescribeInstances"], instances))
    story.assume(erin, a, told.role, "erin-narrow", policy=narrow)
    story.assume(frank, a, told.role, "frank")
    story.assume(hank, a, told.role, "hank")
    story.assume(ivy, a, told.role, "ivy")
    story.assume(story.credential("erin"), a, "reader", "erin-reader")

    public = _document(
        ("Allow", ["ecs:RebootInstance", "ecs:DescribeInstances"], instances),
        ("Allow", ["oss:GetObject"], f"acs:oss:*:{a}:bucket/public/*"),
        ("Allow", ["sts:AssumeRole"], role_arn(a, "reader")),
    )
    story.do(lambda: ledger.amend_entrustment(a, told.entrustment, public), "amended")
    story.do(lambda: ledger.delete_user(b, "ivy", detach=True), "ivy deleted", "UserDeleted")
    story.do(
        lambda: ledger.revoke_delegation(b, told.delegations["erin"]), "erin's delegation revoked"
    )
    story.do(lambda: ledger.remove_user_from_group(b, "ops", "frank"), "frank left ops")
    story.do(
        lambda: ledger.revoke_entrustment(a, told.entrustment),
        "entrustment revoked",
        reason=REVOKED_BECAUSE,
    )

    # a contract with a term (every session of it expires by then), and a scheduled one
    now = datetime.now(UTC)
    granted = story.do(
        lambda: ledger.grant_entrustment(
            a,
            trustee_account_id=b,
            scope={"policies": ["ecs-read"]},
            contract_ref="C-term",
            ends_at=now + timedelta(seconds=2),
        )
    )
    told.term, told.term_role = granted.entrustment_id, granted.role_name
    told.ends_at = now + timedelta(seconds=2)
    told.delegations["term"] = term_delegation = uuid4()
    story.do(
        lambda: ledger.grant_delegation(
            b,
            delegation_id=term_delegation,
            entrustment_id=told.term,
            grantee=erin.arn,
            scope=_document(("Allow", ["ecs:*"], instances)),
        )
    )
    story.assume(erin, a, told.term_role, "erin-term")
    told.starts_at = datetime.now(UTC) + timedelta(seconds=1)
    granted = story.do(
        lambda: ledger.grant_entrustment(
            a,
            trustee_account_id=b,
            scope=scope,
            contract_ref="C-scheduled",
            starts_at=told.starts_at,
        )
    )
    scheduled, scheduled_role = granted.entrustment_id, granted.role_name
    told.delegations["scheduled"] = scheduled_delegation = uuid4()
    story.do(
        lambda: ledger.grant_delegation(
            b,
            delegation_id=scheduled_delegation,
            entrustment_id=scheduled,
            grantee=erin.arn,
            scope=_document(("Allow", ["ecs:RebootInstance"], instances)),
        )
    )
    try:
        story.assume(erin, a, scheduled_role, "too-early")
    except DomainError as refused:
        told.refused_before_start = str(refused)
    time.sleep(max(0.0, (told.ends_at - datetime.now(UTC)).total_seconds()) + 0.05)
    story.assume(erin, a, scheduled_role, "erin-scheduled")
    term = told.term
    story.do(lambda: _ended(ledger.end_entrustment(term)), "term recorded")
    story.settle()
    return told


def _ended(ended: Written | None) -> Written:
    assert ended is not None, "the term was reached: EntrustmentEnded is recorded"
    return ended


@pytest.fixture
def entrusted(runtime: Runtime) -> Entrusted:
    return _tell(Story(runtime))


# --- the story's turning points ---------------------------------------------------------------


def test_before_the_revocation_erin_reboots_through_her_delegation_after_it_the_contract_is_named(
    entrusted: Entrusted,
) -> None:
    story, a, b = entrusted.story, entrusted.a, entrusted.b
    revoked = story.at["erin's delegation revoked"]
    contract = entrustment_arn(a, entrusted.entrustment)
    found, why = story.session_at("erin", revoked - MICRO)
    assert found is not None, why
    assert found.subject.chain == (
        user_arn(b, "erin"),
        entrusted.delegation("erin"),
        contract,
        role_arn(a, entrusted.role),
        assumed_role_arn(a, entrusted.role, "erin"),
    )
    reboot = AccessRequest.make(
        "ecs:RebootInstance", entrusted.instance(), {"acs:currenttime": revoked - MICRO}
    )
    answer = story.runtime.as_of.decide(found, reboot)
    assert answer.decision.kind is DecisionKind.ALLOW
    assert answer.chain == found.subject.chain
    assert {m.as_dict()["layer"] for m in answer.decision.matched} >= {"entrustment", "delegation"}
    # her delegation revoked, nothing else reaches her
    found, why = story.session_at("erin", revoked)
    assert found is None
    assert why == (
        f"no live delegation of {contract} reaches {user_arn(b, 'erin')}: "
        f"delegation {entrusted.delegation('erin')} was revoked"
    )
    # the contract revoked: that is the reason, whatever else died before
    ended = story.at["entrustment revoked"]
    words = f"the entrustment {contract} (contract {CONTRACT}) was revoked: {REVOKED_BECAUSE}"
    for at in (ended, story.at["term recorded"]):
        found, why = story.session_at("erin", at)
        assert found is None
        assert why == words


def test_a_session_reached_until_the_contracts_revocation_is_refused_from_that_instant(
    entrusted: Entrusted,
) -> None:
    story, a = entrusted.story, entrusted.a
    revoked = story.at["entrustment revoked"]
    assert story.decision("hank", revoked - MICRO, "ecs:RebootInstance", entrusted.instance()) is (
        DecisionKind.ALLOW
    )
    # hank's delegation allows only rebooting: the layers intersect
    assert story.decision(
        "hank", revoked - MICRO, "ecs:DescribeInstances", entrusted.instance()
    ) is (DecisionKind.IMPLICIT_DENY)
    found, why = story.session_at("hank", revoked)
    assert found is None
    assert CONTRACT in why
    assert why.endswith(f"was revoked: {REVOKED_BECAUSE}")
    assert entrustment_arn(a, entrusted.entrustment) in why


def test_a_group_delegation_reaches_a_member_until_he_leaves_the_group(
    entrusted: Entrusted,
) -> None:
    story, a, b = entrusted.story, entrusted.a, entrusted.b
    left = story.at["frank left ops"]
    found, _ = story.session_at("frank", left - MICRO)
    assert found is not None
    assert found.subject.chain[:3] == (
        user_arn(b, "frank"),
        entrusted.delegation("ops"),
        entrustment_arn(a, entrusted.entrustment),
    )
    found, why = story.session_at("frank", left)
    assert found is None
    assert why == (
        f"no live delegation of {entrustment_arn(a, entrusted.entrustment)} reaches "
        f"{user_arn(b, 'frank')}: no delegation under it names the user or one of its groups"
    )


def test_the_amended_scope_bounds_sessions_from_its_instant(entrusted: Entrusted) -> None:
    story, a = entrusted.story, entrusted.a
    amended = story.at["amended"]
    private = f"acs:oss:*:{a}:bucket/private/x"
    public = f"acs:oss:*:{a}:bucket/public/x"
    assert story.decision("frank", amended - MICRO, "oss:GetObject", private) is (
        DecisionKind.ALLOW
    )
    assert story.decision("frank", amended, "oss:GetObject", private) is (
        DecisionKind.IMPLICIT_DENY
    )
    assert story.decision("frank", amended, "oss:GetObject", public) is DecisionKind.ALLOW


def test_a_deleted_grantee_has_no_live_delegation(entrusted: Entrusted) -> None:
    story, a, b = entrusted.story, entrusted.a, entrusted.b
    deleted = story.at["ivy deleted"]
    found, _ = story.session_at("ivy", deleted - MICRO)
    assert found is not None
    found, why = story.session_at("ivy", deleted)
    assert found is None
    assert why == (
        f"no live delegation of {entrustment_arn(a, entrusted.entrustment)} reaches "
        f"{user_arn(b, 'ivy')}: the user no longer exists"
    )


def test_effective_permissions_of_a_managed_session_are_scope_delegations_and_policy(
    entrusted: Entrusted,
) -> None:
    story, a = entrusted.story, entrusted.a
    at = story.at["amended"] - MICRO
    found, why = story.session_at("erin-narrow", at)
    assert found is not None, why
    permissions = [p.as_dict() for p in story.runtime.as_of.effective_permissions(found)]
    contract = entrustment_arn(a, entrusted.entrustment)
    assert [
        (p["layer"], p["policy_name"], p["via"], p["statement_index"]) for p in permissions
    ] == [
        ("entrustment", "EntrustmentScope", contract, 0),
        ("entrustment", "EntrustmentScope", contract, 1),
        ("entrustment", "EntrustmentScope", contract, 2),
        ("delegation", "DelegationScope", entrusted.delegation("erin"), 0),
        ("delegation", "DelegationScope", entrusted.delegation("erin"), 1),
        ("session", "SessionPolicy", assumed_role_arn(a, entrusted.role, "erin-narrow"), 0),
    ]
    # the chained session keeps them all, then its own role's
    found, why = story.session_at("erin-reader", at)
    assert found is not None, why
    layers = [p.layer for p in story.runtime.as_of.effective_permissions(found)]
    assert layers == ["entrustment"] * 3 + ["delegation"] * 2 + ["role"]
    assert found.subject.chain[-2:] == (
        role_arn(a, "reader"),
        assumed_role_arn(a, "reader", "erin-reader"),
    )
    found, why = story.session_at("erin-reader", story.at["erin's delegation revoked"])
    assert found is None
    assert why.startswith(f"its parent session {story.key('erin')} is no longer valid: ")


def test_a_contract_with_a_term_ends_its_sessions_at_the_term(entrusted: Entrusted) -> None:
    story, a = entrusted.story, entrusted.a
    ends_at = entrusted.ends_at
    assert story.sessions["erin-term"].expiration == ends_at  # a session never outlives it
    describe = entrusted.instance()
    assert story.decision("erin-term", ends_at - MICRO, "ecs:DescribeInstances", describe) is (
        DecisionKind.ALLOW
    )
    # the scope is the policies' documents as granted (ecs-read: Describe* only)
    assert story.decision("erin-term", ends_at - MICRO, "ecs:RebootInstance", describe) is (
        DecisionKind.IMPLICIT_DENY
    )
    words = (
        f"the entrustment {entrustment_arn(a, entrusted.term)} (contract C-term) ended at "
        f"{format_instant(ends_at)}"
    )
    for at in (ends_at, ends_at + MICRO, story.at["term recorded"]):
        found, why = story.session_at("erin-term", at)
        assert found is None
        assert why == words


def test_a_scheduled_contract_admits_no_one_before_it_starts(entrusted: Entrusted) -> None:
    assert "had not started" in entrusted.refused_before_start
    assert "too-early" not in entrusted.story.sessions
    issued = entrusted.story.at["issued erin-scheduled"]
    assert issued >= entrusted.starts_at
    story = entrusted.story
    assert story.decision("erin-scheduled", issued, "ecs:RebootInstance", entrusted.instance()) is (
        DecisionKind.ALLOW
    )


# --- as of every instant, as the live rule replayed to it ---------------------------------------


def test_managed_sessions_as_of_every_instant_equal_the_live_rule_replayed_to_it(
    entrusted: Entrusted,
) -> None:
    moments = [
        entrusted.ends_at,
        entrusted.ends_at + MICRO,
        entrusted.starts_at,
        entrusted.starts_at + MICRO,
    ]
    compared = _assert_sessions_as_of_equal_the_replayed_rule(
        entrusted.story, _requests(entrusted.a, entrusted.b), moments
    )
    assert compared > 1_000


# --- what the table holds, and how it is read ---------------------------------------------------


def test_contracts_and_delegations_are_facts_that_change_by_successors(
    entrusted: Entrusted,
) -> None:
    rows = entrusted.story.runtime.temporal.store.query(
        "SELECT kind, subject, object, account_id, payload, valid_from, valid_to"
        " FROM {p}_facts WHERE kind IN ('entrustment', 'entrustment_delegations', 'delegation')"
        " ORDER BY valid_from, opened_position"
    )
    main = str(entrusted.entrustment)
    contract = [r for r in rows if r["kind"] == "entrustment" and r["subject"] == main]
    assert len(contract) == 3  # granted, amended, revoked
    assert [r["valid_to"] is None for r in contract] == [False, False, True]
    last = json.loads(contract[-1]["payload"])
    assert last["revoked"] is True
    assert last["revoked_reason"] == REVOKED_BECAUSE
    assert last["trustee_account_id"] == entrusted.b
    assert contract[-1]["object"] == entrusted.role
    assert contract[-1]["account_id"] == entrusted.a
    assert "bucket/public/*" in last["scope"]
    term = [r for r in rows if r["kind"] == "entrustment" and r["subject"] == str(entrusted.term)]
    assert json.loads(term[-1]["payload"])["ended"] is True
    assert json.loads(term[-1]["payload"])["scope_policies"] == ["ecs-read"]
    listed = [
        json.loads(r["payload"])["items"]
        for r in rows
        if r["kind"] == "entrustment_delegations" and r["subject"] == main
    ]
    names = ("erin", "ops", "hank", "ivy")
    ids = [str(entrusted.delegations[name]) for name in names]
    assert listed == [ids[:n] for n in range(1, 5)]
    erin = [r for r in rows if r["subject"] == ids[0]]
    assert [json.loads(r["payload"])["revoked"] for r in erin] == [False, True]
    assert erin[-1]["account_id"] == entrusted.b
    assert erin[-1]["object"] == user_arn(entrusted.b, "erin")
    # one fact of a kind alive per subject at any instant
    by_subject: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for row in rows:
        by_subject.setdefault((row["kind"], row["subject"]), []).append(
            (int(row["valid_from"]), row["valid_to"])
        )
    for key, intervals in by_subject.items():
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert end is not None, key
            assert int(end) <= start, key


def test_a_managed_sessions_lookups_take_one_index_step_per_link(entrusted: Entrusted) -> None:
    story = entrusted.story
    store = story.runtime.temporal.store
    template = AT_PAIRS_POSTGRES if store.dialect.is_postgres else AT_PAIRS_SQLITE
    kinds = ("entrustment", "entrustment_delegations", "memberships", "delegation", "group")
    pairs = template.replace("{values}", ", ".join("(?, ?)" for _ in kinds))
    params = (*(value for kind in kinds for value in (kind, "x")), 1, 1)
    _assert_index_driven(store, _plan(store, pairs, params))
    statements: list[str] = []
    original = store.execute

    def counting(cursor: Any, statement: str, params: Any = ()) -> Any:
        statements.append(statement)
        return original(cursor, statement, params)

    store.execute = counting  # type: ignore[method-assign]
    try:
        found, _ = story.session_at("frank", story.at["frank left ops"] - MICRO)
    finally:
        del store.execute  # the class's method again
    assert found is not None
    # the session; its links (contract, its list, the user and memberships); the
    # delegations listed and the user's groups — no policy documents for a managed role
    assert len(statements) <= 3, statements
