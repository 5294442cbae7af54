"""What a role session may do, as every reader decides it (docs/design.md §2, §3.3).

Sessions are resolved by ``domain.sts.session_lineage.resolve_session`` over an in-memory
``LineageFacts`` (a fake that subclasses the port), with role layers compiled by the real
``PolicyCompiler``, and decided by ``domain.policy.decisions.decide`` — the path the live index and
the as-of reader take. The properties are checked with the evaluator's own hypothesis
strategies (wildcards, NotAction and conditions included); the dead-link reasons of a
lineage are checked one by one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.domain.common.arns import role_arn, user_arn
from mandate.domain.permissions.attachments import Attachment, PolicyType
from mandate.domain.permissions.policy_sets import CustomVersion, PolicyCompiler
from mandate.domain.policy.decisions import Answer, Subject, SubjectKind, decide
from mandate.domain.policy.evaluation import (
    AccessRequest,
    DecisionKind,
    Effect,
    Layer,
    PolicySet,
    evaluate,
)
from mandate.domain.policy.system_policies import SYSTEM_POLICIES
from mandate.domain.sts.session_lineage import (
    LineageFacts,
    RoleState,
    SessionInvalid,
    SessionRecord,
    resolve_session,
    session_policy_layer,
)
from tests.unit.test_evaluation_properties import (
    ACTIONS,
    RESOURCES,
    contexts,
    documents,
    policy_lists,
    requests,
)
from tests.unit.test_evaluation_properties import (
    A as ACCOUNT,
)

Document = dict[str, Any]

PARTNER = "2938475610293847"
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=10)
LIFETIME = timedelta(hours=1)
ALLOW_ALL: Document = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
SOURCE_ARN = user_arn(PARTNER, "app")
OTHER_RESOURCES = [
    *(r.replace(ACCOUNT, PARTNER) for r in RESOURCES),
    "*",
    "acs:oss:cn-hangzhou:*:photos/u-42/a.jpg",
    "acs:oss:cn-hangzhou:18374659203746510:photos/u-42/a.jpg",
    "photos/u-42/a.jpg",
]


# --- an in-memory lineage --------------------------------------------------------------------


@dataclass
class InMemoryLineage(LineageFacts):
    """Facts about sessions, roles, users and accounts at one instant, held in dictionaries."""

    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    revocations: dict[str, str] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    roles: dict[UUID, RoleState] = field(default_factory=dict)
    users: set[UUID] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    custom: dict[UUID, CustomVersion] = field(default_factory=dict)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)
    """(role ARN, policy name) → the document attached under that name."""
    compiler: PolicyCompiler = field(default_factory=PolicyCompiler)

    # -- the port --
    def session(self, access_key_id: str) -> tuple[SessionRecord | None, str | None]:
        record = None if access_key_id in self.forgotten else self.sessions.get(access_key_id)
        return record, self.revocations.get(access_key_id)

    def role(self, role_id: UUID) -> RoleState | None:
        return self.roles.get(role_id)

    def user_exists(self, user_id: UUID) -> bool:
        return user_id in self.users

    def account_open(self, account_id: str) -> bool:
        return account_id not in self.closed

    def role_layer(self, role: RoleState) -> PolicySet:
        return self.compiler.role_layer(role.arn, role.attachments, self.custom.get)

    def session_layer(self, record: SessionRecord) -> PolicySet | None:
        return session_policy_layer(record)

    # -- building the facts --
    def add_user(self) -> UUID:
        user_id = uuid4()
        self.users.add(user_id)
        return user_id

    def add_role(
        self, name: str, custom: Sequence[Document] = (), system: tuple[str, ...] = ()
    ) -> RoleState:
        arn = role_arn(ACCOUNT, name)
        attachments = [Attachment(PolicyType.SYSTEM, s, None) for s in system]
        for index, document in enumerate(custom):
            policy_id = uuid4()
            self.custom[policy_id] = CustomVersion(policy_id, "v1", json.dumps(document))
            attachments.append(Attachment(PolicyType.CUSTOM, f"P{index}", policy_id))
            self.documents[(arn, f"P{index}")] = document
        role = RoleState(uuid4(), ACCOUNT, name, None, tuple(attachments))
        self.roles[role.role_id] = role
        return role

    def issue(
        self,
        role: RoleState,
        *,
        session_policy: Document | None = None,
        parent: SessionRecord | None = None,
        source_user_id: UUID | None = None,
        issued_at: datetime = T0,
        expiration: datetime | None = None,
    ) -> SessionRecord:
        key = f"STS.k{len(self.sessions)}"
        if parent is None and source_user_id is None:
            source_user_id = self.add_user()
        record = SessionRecord(
            access_key_id=key,
            account_id=role.account_id,
            role_id=role.role_id,
            role_name=role.role_name,
            role_session_name=f"s{len(self.sessions)}",
            source_arn=SOURCE_ARN if parent is None else parent.arn,
            source_account_id=PARTNER if parent is None else parent.account_id,
            source_user_id=source_user_id if parent is None else parent.source_user_id,
            parent_access_key_id=None if parent is None else parent.access_key_id,
            session_policy=None if session_policy is None else json.dumps(session_policy),
            issued_at=issued_at,
            expiration=expiration or issued_at + LIFETIME,
        )
        self.sessions[key] = record
        return record

    def subject(self, record: SessionRecord, at: datetime = AT) -> Subject:
        return resolve_session(record.access_key_id, at, self)


Generation = tuple[list[Document], tuple[str, ...], Document | None]
"""One link of a lineage: the role's custom documents, its system policies, a session policy."""

system_names = st.lists(st.sampled_from(sorted(SYSTEM_POLICIES)), max_size=2, unique=True)
session_policies = st.one_of(st.none(), documents)
generations = st.tuples(policy_lists, system_names.map(tuple), session_policies)
lineages = st.lists(generations, min_size=1, max_size=3)


def build(facts: InMemoryLineage, lineage: list[Generation]) -> list[SessionRecord]:
    """Issue the sessions of ``lineage``, each chained from the previous one."""
    records: list[SessionRecord] = []
    for n, (custom, system, session_policy) in enumerate(lineage):
        role = facts.add_role(f"r{n}", custom, system)
        parent = records[-1] if records else None
        records.append(facts.issue(role, session_policy=session_policy, parent=parent))
    return records


def shape(layers: tuple[PolicySet, ...]) -> list[tuple[Layer, list[Any]]]:
    """What identifies a layer: its kind and the sources of its policies, in order."""
    return [(p.layer, [c.source for c in p.policies]) for p in layers]


def role_of(facts: InMemoryLineage, record: SessionRecord) -> RoleState:
    role = facts.role(record.role_id)
    assert role is not None
    return role


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=120)
@given(policy_lists, system_names, session_policies, requests)
def test_a_session_never_allows_what_its_role_alone_does_not(
    custom: list[Document], system: list[str], policy: Document | None, request: AccessRequest
) -> None:
    """Allowed for the session ⇒ allowed by the role's policies; a role's Deny stays a Deny."""
    facts = InMemoryLineage()
    role = facts.add_role("r", custom, tuple(system))
    answer = decide(facts.subject(facts.issue(role, session_policy=policy)), request)
    role_alone = evaluate([facts.role_layer(role)], request)
    if answer.allowed:
        assert role_alone.allowed
    if role_alone.kind is DecisionKind.EXPLICIT_DENY:
        assert answer.decision.kind is DecisionKind.EXPLICIT_DENY
    if policy is None:
        assert answer.decision.kind is role_alone.kind


@settings(max_examples=120)
@given(policy_lists, system_names, documents, requests)
def test_a_session_policy_never_widens_a_session(
    custom: list[Document], system: list[str], policy: Document, request: AccessRequest
) -> None:
    """Two sessions of one role: the one with a session policy allows no more than the other."""
    facts = InMemoryLineage()
    role = facts.add_role("r", custom, tuple(system))
    with_policy = decide(facts.subject(facts.issue(role, session_policy=policy)), request)
    without = decide(facts.subject(facts.issue(role)), request)
    if with_policy.allowed:
        assert without.allowed
    if without.decision.kind is DecisionKind.EXPLICIT_DENY:
        assert with_policy.decision.kind is DecisionKind.EXPLICIT_DENY


@settings(max_examples=80)
@given(policy_lists, system_names, requests)
def test_an_allow_everything_session_policy_changes_no_decision(
    custom: list[Document], system: list[str], request: AccessRequest
) -> None:
    """A session policy allowing ``*`` on ``*`` leaves exactly the role's decision."""
    facts = InMemoryLineage()
    role = facts.add_role("r", custom, tuple(system))
    with_policy = decide(facts.subject(facts.issue(role, session_policy=ALLOW_ALL)), request)
    without = decide(facts.subject(facts.issue(role)), request)
    assert with_policy.decision.kind is without.decision.kind


@settings(max_examples=120)
@given(lineages, requests, st.data())
def test_an_explicit_deny_in_any_layer_of_the_lineage_denies_explicitly(
    lineage: list[Generation], request: AccessRequest, data: st.DataObject
) -> None:
    """A matching Deny in any role's policies or any session policy, at any generation, wins."""
    generation = data.draw(st.integers(0, len(lineage) - 1), label="generation")
    custom, system, session_policy = lineage[generation]
    deny = {"Effect": "Deny", "Action": request.action, "Resource": request.resource}
    where = data.draw(st.sampled_from([Layer.ROLE, Layer.SESSION]), label="layer")
    if where is Layer.ROLE:
        index = data.draw(st.integers(0, len(custom)), label="policy")
        custom = [*custom, {"Version": "1", "Statement": []}] if index == len(custom) else custom
        custom = [*custom[:index], _with(custom[index], deny), *custom[index + 1 :]]
    else:
        session_policy = _with(session_policy or ALLOW_ALL, deny)
    lineage = [*lineage[:generation], (custom, system, session_policy), *lineage[generation + 1 :]]

    facts = InMemoryLineage()
    records = build(facts, lineage)
    answer = decide(facts.subject(records[-1]), request)
    assert answer.decision.kind is DecisionKind.EXPLICIT_DENY
    assert answer.decision.matched
    assert all(m.effect is Effect.DENY for m in answer.decision.matched)
    vias = {m.via for m in answer.decision.matched if m.layer is where}
    named = records[generation].role_arn if where is Layer.ROLE else records[generation].arn
    assert named in vias
    assert answer.reason == "an explicit Deny statement matched"
    assert answer.billed_account is None


def _with(document: Document, statement: Document) -> Document:
    return {"Version": "1", "Statement": [*document["Statement"], statement]}


@settings(max_examples=120)
@given(lineages, generations, requests)
def test_a_chained_session_never_allows_what_its_parent_or_its_own_role_does_not(
    lineage: list[Generation], child: Generation, request: AccessRequest
) -> None:
    """The child keeps every layer of its parent and adds its own: it can only narrow."""
    facts = InMemoryLineage()
    records = build(facts, [*lineage, child])
    parent_subject = facts.subject(records[-2])
    child_subject = facts.subject(records[-1])
    assert shape(child_subject.layers[: len(parent_subject.layers)]) == shape(parent_subject.layers)
    assert child_subject.chain[: len(parent_subject.chain)] == parent_subject.chain

    answer = decide(child_subject, request)
    parent = decide(parent_subject, request)
    own_role = evaluate([facts.role_layer(role_of(facts, records[-1]))], request)
    custom, system, session_policy = child
    alone = facts.issue(facts.add_role("alone", custom, system), session_policy=session_policy)
    unchained = decide(facts.subject(alone), request)
    if answer.allowed:
        assert parent.allowed
        assert own_role.allowed
        assert unchained.allowed
    if DecisionKind.EXPLICIT_DENY in (parent.decision.kind, unchained.decision.kind):
        assert answer.decision.kind is DecisionKind.EXPLICIT_DENY


@settings(max_examples=120)
@given(
    lineages,
    st.sampled_from(ACTIONS),
    st.sampled_from(OTHER_RESOURCES),
    contexts,
    st.booleans(),
)
def test_a_session_acts_on_no_resource_outside_its_roles_account(
    lineage: list[Generation],
    action: str,
    resource: str,
    context: dict[str, Any],
    administrator: bool,
) -> None:
    """Not on the source user's account, nor any other, nor a resource naming no account.

    Even with AdministratorAccess on every role and an allow-all session policy; only
    sts:AssumeRole is decided for another account's ARN, and by other rules (``plan_session``).
    """
    if administrator:
        lineage = [(c, ("AdministratorAccess",), ALLOW_ALL) for c, _, _ in lineage]
    facts = InMemoryLineage()
    records = build(facts, lineage)
    answer = decide(facts.subject(records[-1]), AccessRequest.make(action, resource, context))
    assert not answer.allowed
    assert answer.decision.kind is DecisionKind.IMPLICIT_DENY
    assert answer.decision.matched == ()
    assert answer.billed_account is None
    assert answer.reason == (
        f"a role session acts only on resources of its role's account ({ACCOUNT})"
    )


@settings(max_examples=120)
@given(lineages, requests)
def test_matched_statements_name_the_layer_and_policy_they_came_from(
    lineage: list[Generation], request: AccessRequest
) -> None:
    """Each matched statement is a role's (``via`` its role) or a session policy's (``via``
    the session), and its index and effect are those of that statement in that document."""
    facts = InMemoryLineage()
    records = build(facts, lineage)
    subject = facts.subject(records[-1])
    answer = decide(subject, request)
    role_arns = {r.role_arn for r in records}
    session_arns = {r.arn: r for r in records}
    for m in answer.decision.matched:
        if m.layer is Layer.ROLE:
            assert m.via in role_arns
            if m.policy_type == "System":
                statement = SYSTEM_POLICIES[m.policy_name].document.statements[m.statement]
                assert statement.effect is m.effect
            else:
                assert m.policy_type == "Custom"
                assert m.version == "v1"
                document = facts.documents[(m.via or "", m.policy_name)]
                assert document["Statement"][m.statement]["Effect"] == m.effect.value
        else:
            assert m.layer is Layer.SESSION
            assert (m.policy_type, m.policy_name, m.version) == ("Inline", "SessionPolicy", None)
            record = session_arns[m.via or ""]
            assert record.session_policy is not None
            document = json.loads(record.session_policy)
            assert document["Statement"][m.statement]["Effect"] == m.effect.value
    if answer.allowed:
        # every layer agreed, so every kind of layer the session has shows a statement
        assert {m.layer for m in answer.decision.matched} == {p.layer for p in subject.layers}
        assert {m.via for m in answer.decision.matched if m.layer is Layer.ROLE} == role_arns


_MISSING = re.compile(r"no statement of the (.+) layer allows it\Z")


@settings(max_examples=120)
@given(lineages, requests)
def test_a_partial_allow_names_a_layer_that_did_not_allow(
    lineage: list[Generation], request: AccessRequest
) -> None:
    """When some layers allow and another does not, the reason names a kind that did not."""
    facts = InMemoryLineage()
    subject = facts.subject(build(facts, lineage)[-1])
    answer = decide(subject, request)
    if answer.decision.kind is not DecisionKind.IMPLICIT_DENY or not answer.decision.matched:
        return
    found = _MISSING.search(answer.reason)
    assert found, answer.reason
    named = found.group(1).split(" and ")
    assert named
    refusing = {p.layer.value for p in subject.layers if not evaluate([p], request).allowed}
    assert set(named) == refusing


def test_a_chained_session_refused_by_its_own_role_names_the_role_layer() -> None:
    """The parent's role allows, the child's role does not: the reason still names a layer."""
    facts = InMemoryLineage()
    oss = {"Effect": "Allow", "Action": "oss:*", "Resource": "*"}
    ecs = {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}
    records = build(
        facts,
        [
            ([{"Version": "1", "Statement": [oss]}], (), None),
            ([{"Version": "1", "Statement": [ecs]}], (), None),
        ],
    )
    answer = decide(facts.subject(records[-1]), AccessRequest.make("oss:GetObject", RESOURCES[0]))
    assert not answer.allowed
    assert answer.reason == (
        "every layer of the session must allow the request; no statement of the role layer "
        "allows it"
    )


# --- the subject a live session acts as ------------------------------------------------------


def test_a_first_generation_session_acts_with_its_role_and_session_layers() -> None:
    """Kind session, its own ARN and account, layers (role, session), chain source → role →
    session."""
    facts = InMemoryLineage()
    role = facts.add_role("uploader", [ALLOW_ALL])
    record = facts.issue(role, session_policy=ALLOW_ALL)
    subject = facts.subject(record)
    assert (subject.kind, subject.account_id, subject.arn) == (
        SubjectKind.SESSION,
        ACCOUNT,
        f"acs:ram::{ACCOUNT}:assumed-role/uploader/s0",
    )
    assert [p.layer for p in subject.layers] == [Layer.ROLE, Layer.SESSION]
    assert subject.chain == (SOURCE_ARN, role.arn, record.arn)
    assert [p.layer for p in facts.subject(facts.issue(role)).layers] == [Layer.ROLE]


def test_a_chained_session_keeps_its_parents_layers_and_chain() -> None:
    """Layers role₀, session₀, role₁; chain source, role₀, session₀, role₁, session₁."""
    facts = InMemoryLineage()
    first, second = build(facts, [([ALLOW_ALL], (), ALLOW_ALL), ([ALLOW_ALL], (), None)])
    subject = facts.subject(second)
    assert [p.layer for p in subject.layers] == [Layer.ROLE, Layer.SESSION, Layer.ROLE]
    assert subject.chain == (SOURCE_ARN, first.role_arn, first.arn, second.role_arn, second.arn)
    allowed = decide(subject, AccessRequest.make("oss:GetObject", RESOURCES[0]))
    assert allowed.allowed
    assert allowed.chain == subject.chain
    assert allowed.billed_account == ACCOUNT


# --- every dead link of a lineage ------------------------------------------------------------


def dead(facts: InMemoryLineage, record: SessionRecord, at: datetime = AT) -> str:
    with pytest.raises(SessionInvalid) as raised:
        facts.subject(record, at)
    return str(raised.value)


def test_an_unknown_session_does_not_exist() -> None:
    """A key id no store knows is refused as a session that does not exist."""
    facts = InMemoryLineage()
    with pytest.raises(SessionInvalid, match=r"\Athe session STS\.nope does not exist\Z"):
        resolve_session("STS.nope", AT, facts)


def test_a_revoked_session_is_dead_with_the_revocations_reason() -> None:
    """The store's reason is passed on, whether or not it still holds the record."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    reason = "the session STS.k0 was revoked at 2026-11-28T02:05:00Z"
    facts.revocations[record.access_key_id] = reason
    assert dead(facts, record) == reason
    facts.forgotten.add(record.access_key_id)
    assert dead(facts, record) == reason


def test_a_session_is_dead_from_its_expiration_on() -> None:
    """Alive a microsecond before its expiration; dead at it and after, naming the instant."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    facts.subject(record, record.expiration - timedelta(microseconds=1))
    for at in (record.expiration, record.expiration + timedelta(days=1)):
        assert dead(facts, record, at) == "the session expired at 2026-11-28T03:00:00Z"


def test_a_session_dies_with_its_roles_account() -> None:
    """A closed account ends every session of its roles."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    facts.closed.add(ACCOUNT)
    assert dead(facts, record) == f"the role's account {ACCOUNT} is closed"


def test_a_session_dies_with_its_source_account() -> None:
    """A cross-account session ends when the account that assumed the role closes."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    facts.closed.add(PARTNER)
    assert dead(facts, record) == f"the source account {PARTNER} is closed"


def test_a_session_dies_with_its_role_and_does_not_revive_with_a_new_role_of_that_name() -> None:
    """The role is named by id: a role re-created under the same name is another role."""
    facts = InMemoryLineage()
    role = facts.add_role("r", [ALLOW_ALL])
    record = facts.issue(role)
    del facts.roles[role.role_id]
    expected = f"the session's role {role.arn} was deleted"
    assert dead(facts, record) == expected
    facts.add_role("r", [ALLOW_ALL])
    assert dead(facts, record) == expected


@pytest.mark.parametrize(
    ("horizon", "alive"),
    [
        (T0 - timedelta(seconds=1), True),
        (T0, True),
        (T0 + timedelta(microseconds=1), False),
        (AT, False),
    ],
    ids=["before-issue", "at-issue", "just-after", "now"],
)
def test_a_role_sessions_revoked_horizon_kills_sessions_issued_before_it(
    horizon: datetime, alive: bool
) -> None:
    """Issued strictly before the horizon: dead, naming the role and the horizon."""
    facts = InMemoryLineage()
    role = facts.add_role("r", [ALLOW_ALL])
    record = facts.issue(role)
    facts.roles[role.role_id] = replace(role, sessions_revoked_before=horizon)
    if alive:
        facts.subject(record)
    else:
        text = horizon.isoformat().replace("+00:00", "Z")
        assert dead(facts, record) == (
            f"the sessions of role {role.arn} issued before {text} were revoked"
        )


def test_a_session_dies_with_its_source_user() -> None:
    """Deleting the user that assumed the role ends its session."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    assert record.source_user_id is not None
    facts.users.discard(record.source_user_id)
    assert dead(facts, record) == f"the session's source user {SOURCE_ARN} was deleted"


def test_a_chained_session_dies_with_its_parent_and_says_which_link_died() -> None:
    """A grandparent's revocation reaches the grandchild through each parent, named in turn."""
    facts = InMemoryLineage()
    first, second, third = build(facts, [([ALLOW_ALL], (), None)] * 3)
    facts.subject(third)
    facts.revocations[first.access_key_id] = "revoked by the owner"
    assert dead(facts, second) == (
        f"its parent session {first.access_key_id} is no longer valid: revoked by the owner"
    )
    assert dead(facts, third) == (
        f"its parent session {second.access_key_id} is no longer valid: "
        f"its parent session {first.access_key_id} is no longer valid: revoked by the owner"
    )


@pytest.mark.parametrize("link", ["expired", "role", "horizon", "source-user"])
def test_every_dead_link_of_a_parent_kills_the_child(link: str) -> None:
    """Whatever ends the parent — expiry, its role, its role's horizon, its source user."""
    facts = InMemoryLineage()
    parent_role = facts.add_role("r0", [ALLOW_ALL])
    parent = facts.issue(parent_role, expiration=AT if link == "expired" else None)
    child = facts.issue(facts.add_role("r1", [ALLOW_ALL]), parent=parent, issued_at=T0)
    if link == "role":
        del facts.roles[parent_role.role_id]
    elif link == "horizon":
        facts.roles[parent_role.role_id] = replace(parent_role, sessions_revoked_before=AT)
    elif link == "source-user":
        assert parent.source_user_id is not None
        facts.users.discard(parent.source_user_id)
    reason = dead(facts, child)
    assert reason.startswith(f"its parent session {parent.access_key_id} is no longer valid: ")
    assert reason.removeprefix(
        f"its parent session {parent.access_key_id} is no longer valid: "
    ) == (dead(facts, parent))


def test_a_chained_session_does_not_check_a_source_user_of_its_own() -> None:
    """The lineage's user is checked once, at its root: the child has a parent instead."""
    facts = InMemoryLineage()
    parent = facts.issue(facts.add_role("r0", [ALLOW_ALL]))
    child = facts.issue(facts.add_role("r1", [ALLOW_ALL]), parent=parent)
    facts.sessions[child.access_key_id] = replace(child, source_user_id=uuid4())
    facts.subject(facts.sessions[child.access_key_id])


def test_a_lineage_that_loops_is_refused_not_followed_forever() -> None:
    """A corrupt store whose session is its own ancestor gives a reason, not a recursion error."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]))
    looped = replace(record, parent_access_key_id=record.access_key_id)
    facts.sessions[record.access_key_id] = looped
    assert "the session's lineage is too long" in dead(facts, looped)


def test_a_dead_session_decides_nothing_and_a_live_one_decides_as_its_layers() -> None:
    """The answer for a live session is the pure decision over the layers it resolves to."""
    facts = InMemoryLineage()
    record = facts.issue(facts.add_role("r", [ALLOW_ALL]), session_policy=ALLOW_ALL)
    subject = facts.subject(record)
    request = AccessRequest.make("oss:PutObject", RESOURCES[0])
    answer: Answer = decide(subject, request)
    assert answer.allowed
    assert answer.decision == evaluate(subject.layers, request)
