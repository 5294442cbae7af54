"""The pure rules of entrustments and delegations (docs/design.md §3.2).

``entrustment_status`` (scheduled, active, ended, revoked — a term's end counts the instant it
is reached, event or not), the aggregates' guards (a refused change triggers no event), and
``scope_warnings``: which statements of a delegation's scope glob containment cannot show to
be inside the entrustment's — ``oss:*`` covers ``oss:Get*``, ``ecs:Reboot*`` does not cover
``ecs:*``, ``a?c`` does not cover ``a*c``; resources compare case-sensitively, actions not;
``NotAction`` is always warned. The warnings are advisory (layers intersect), but a statement
with no warning must really be inside the entrustment: checked against the evaluator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.domain.common.errors import Conflict
from mandate.domain.contracts.entrustments import (
    Delegation,
    Entrustment,
    EntrustmentStatus,
    ScopeWarning,
    entrustment_status,
    merged_scope,
    scope_warnings,
)
from mandate.domain.policy.document import PolicyDocument, parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)

A = "1837465920374651"
B = "5550001112223334"
T = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
Document = dict[str, Any]


def doc(*statements: Document) -> PolicyDocument:
    return parse_policy_document({"Version": "1", "Statement": list(statements)})


def allow(actions: str | list[str], resources: str | list[str] = "*") -> Document:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


# --- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revoked", "ended", "starts_at", "ends_at", "at", "expected"),
    [
        # no term at all: active from the grant, for ever
        (False, False, None, None, T, EntrustmentStatus.ACTIVE),
        # a start ahead: scheduled until that instant, active from it (half-open)
        (False, False, T + SECOND, None, T, EntrustmentStatus.SCHEDULED),
        (False, False, T, None, T, EntrustmentStatus.ACTIVE),
        (False, False, T - SECOND, T + SECOND, T, EntrustmentStatus.ACTIVE),
        # the end counts the instant it is reached, with or without EntrustmentEnded
        (False, False, None, T + SECOND, T, EntrustmentStatus.ACTIVE),
        (False, False, None, T, T, EntrustmentStatus.ENDED),
        (False, False, None, T - SECOND, T, EntrustmentStatus.ENDED),
        (False, True, None, T - SECOND, T, EntrustmentStatus.ENDED),
        # the event alone is enough (an ended contract never reopens)
        (False, True, None, None, T, EntrustmentStatus.ENDED),
        (False, True, T + SECOND, None, T, EntrustmentStatus.ENDED),
        # revoked wins over everything
        (True, False, None, None, T, EntrustmentStatus.REVOKED),
        (True, False, T + SECOND, None, T, EntrustmentStatus.REVOKED),
        (True, True, None, T - SECOND, T, EntrustmentStatus.REVOKED),
        (True, False, None, T - SECOND, T, EntrustmentStatus.REVOKED),
    ],
)
def test_entrustment_status_table(
    revoked: bool,
    ended: bool,
    starts_at: datetime | None,
    ends_at: datetime | None,
    at: datetime,
    expected: EntrustmentStatus,
) -> None:
    status = entrustment_status(
        revoked=revoked, ended=ended, starts_at=starts_at, ends_at=ends_at, at=at
    )
    assert status is expected


def test_status_values_are_the_designs_words() -> None:
    assert [s.value for s in EntrustmentStatus] == ["scheduled", "active", "ended", "revoked"]


# --- the aggregates' guards -------------------------------------------------------------------


def _entrustment(*, starts_at: datetime | None = None, ends_at: datetime | None = None) -> Any:
    return Entrustment(
        account_id=A,
        trustee_account_id=B,
        role_name="msa-1",
        scope=doc(allow("oss:*")).canonical_json(),
        scope_policies=None,
        contract_ref="MSA-1",
        starts_at=starts_at,
        ends_at=ends_at,
        description=None,
    )


def _pending_names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_entrustment_revoke_once_then_conflict() -> None:
    entrustment = _entrustment()
    assert _pending_names(entrustment) == ["EntrustmentGranted"]
    entrustment.revoke(T)
    assert _pending_names(entrustment) == ["EntrustmentRevoked"]
    assert entrustment.status(T) is EntrustmentStatus.REVOKED
    with pytest.raises(Conflict) as raised:
        entrustment.revoke(T)
    assert raised.value.code == "Entrustment.Revoked"
    with pytest.raises(Conflict):
        entrustment.amend(doc(allow("ecs:*")).canonical_json(), None, T)
    assert _pending_names(entrustment) == []
    assert entrustment.end(T + timedelta(days=9999)) is False  # nothing to record
    assert _pending_names(entrustment) == []


def test_entrustment_end_is_recorded_once_and_only_once_its_term_is_reached() -> None:
    entrustment = _entrustment(ends_at=T)
    entrustment.collect_events()
    assert entrustment.end(T - SECOND) is False
    assert _pending_names(entrustment) == []
    assert entrustment.status(T - SECOND) is EntrustmentStatus.ACTIVE
    assert entrustment.end(T) is True
    assert _pending_names(entrustment) == ["EntrustmentEnded"]
    assert entrustment.end(T + SECOND) is False
    assert _pending_names(entrustment) == []
    # an ended contract cannot be revoked or amended any more
    with pytest.raises(Conflict) as raised:
        entrustment.revoke(T + SECOND)
    assert raised.value.code == "Entrustment.Ended"
    # …even before the event, once the term is reached
    other = _entrustment(ends_at=T)
    other.collect_events()
    with pytest.raises(Conflict):
        other.revoke(T)
    assert _pending_names(other) == []


def test_a_contract_without_a_term_never_ends() -> None:
    entrustment = _entrustment()
    entrustment.collect_events()
    assert entrustment.end(T + timedelta(days=100_000)) is False
    assert _pending_names(entrustment) == []


def test_amend_records_only_a_change() -> None:
    entrustment = _entrustment()
    entrustment.collect_events()
    entrustment.amend(entrustment.scope, None, T)
    assert _pending_names(entrustment) == []
    wider = doc(allow(["oss:*", "ecs:*"])).canonical_json()
    entrustment.amend(wider, None, T)
    assert _pending_names(entrustment) == ["EntrustmentAmended"]
    assert entrustment.scope == wider
    # a scheduled contract may be amended
    scheduled = _entrustment(starts_at=T + SECOND)
    scheduled.collect_events()
    scheduled.amend(wider, None, T)
    assert _pending_names(scheduled) == ["EntrustmentAmended"]


def test_delegation_revoke_once_and_not_after_its_end() -> None:
    def delegation(ends_at: datetime | None) -> Any:
        d = Delegation(
            delegation_id=uuid4(),
            account_id=B,
            entrustment_id=uuid4(),
            entrustment_account_id=A,
            grantee_arn=f"acs:ram::{B}:user/ravi",
            grantee_kind="user",
            grantee_id=uuid4(),
            scope=doc(allow("oss:GetObject")).canonical_json(),
            ends_at=ends_at,
        )
        d.collect_events()
        return d

    open_ended = delegation(None)
    open_ended.revoke(T)
    assert _pending_names(open_ended) == ["DelegationRevoked"]
    with pytest.raises(Conflict) as raised:
        open_ended.revoke(T)
    assert raised.value.code == "Delegation.Revoked"
    assert _pending_names(open_ended) == []

    ended = delegation(T)
    with pytest.raises(Conflict) as raised:
        ended.revoke(T)
    assert raised.value.code == "Delegation.Ended"
    assert _pending_names(ended) == []


def test_merged_scope_keeps_every_statement_in_order() -> None:
    first = doc(allow("oss:GetObject", f"acs:oss:*:{A}:b/*"))
    second = doc(allow("ecs:*"), {"Effect": "Deny", "Action": "ecs:Delete*", "Resource": "*"})
    merged = parse_policy_document(merged_scope([first, second]))
    assert [s.actions for s in merged.statements] == [
        ("oss:GetObject",),
        ("ecs:*",),
        ("ecs:Delete*",),
    ]


# --- containment: scope_warnings ---------------------------------------------------------------


def warned(delegation: PolicyDocument, entrustment: PolicyDocument) -> list[int]:
    return [w.statement for w in scope_warnings(delegation, entrustment)]


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        ("oss:*", "oss:Get*", True),
        ("oss:*", "oss:GetObject", True),
        ("*", "ecs:*", True),
        ("oss:Get*", "oss:GetObject", True),
        ("oss:Get*", "oss:Get*", True),
        ("ecs:Reboot*", "ecs:*", False),
        ("oss:GetObject", "oss:Get*", False),
        ("oss:GetObject", "oss:PutObject", False),
        ("oss:?etObject", "oss:GetObject", True),
        ("oss:?etObject", "oss:*etObject", False),
        ("oss:*bject", "oss:Get?bject", True),
        ("oss:*Object", "oss:Get?bject", False),
        # actions compare case-insensitively
        ("OSS:get*", "oss:GetObject", True),
        ("oss:GetObject", "OSS:GETOBJECT", True),
    ],
)
def test_action_containment(outer: str, inner: str, covered: bool) -> None:
    entrustment = doc(allow(outer, "*"))
    delegation = doc(allow(inner, "*"))
    assert warned(delegation, entrustment) == ([] if covered else [0])


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        (f"acs:oss:*:{A}:b/*", f"acs:oss:*:{A}:b/photos/*", True),
        (f"acs:oss:*:{A}:b/*", f"acs:oss:cn-hangzhou:{A}:b/x.jpg", True),
        (f"acs:oss:*:{A}:b/photos/*", f"acs:oss:*:{A}:b/*", False),
        ("*", f"acs:oss:*:{A}:*", True),
        (f"acs:oss:*:{A}:*", "*", False),
        (f"acs:oss:*:{A}:a?c", f"acs:oss:*:{A}:a*c", False),
        (f"acs:oss:*:{A}:a?c", f"acs:oss:*:{A}:abc", True),
        (f"acs:oss:*:{A}:a*c", f"acs:oss:*:{A}:a?c", True),
        (f"acs:oss:*:{A}:a*", f"acs:oss:*:{A}:a?c", True),
        # a pattern covers itself, wildcards and all
        (f"acs:oss:*:{A}:a?c", f"acs:oss:*:{A}:a?c", True),
        (f"acs:oss:*:{A}:b/file-?.txt", f"acs:oss:*:{A}:b/file-?.txt", True),
        (f"acs:oss:*:{A}:a??", f"acs:oss:*:{A}:a?c", True),
        (f"acs:oss:*:{A}:a??", f"acs:oss:*:{A}:a*", False),
        # resources compare case-sensitively
        (f"acs:oss:*:{A}:B/*", f"acs:oss:*:{A}:b/x", False),
        (f"acs:oss:*:{A}:b/*", f"acs:oss:*:{A}:b/X", True),
        (f"acs:OSS:*:{A}:b/*", f"acs:oss:*:{A}:b/x", False),
    ],
)
def test_resource_containment(outer: str, inner: str, covered: bool) -> None:
    entrustment = doc(allow("*", outer))
    delegation = doc(allow("*", inner))
    assert warned(delegation, entrustment) == ([] if covered else [0])


def test_warnings_name_the_statement_and_what_is_not_entrusted() -> None:
    entrustment = doc(allow(["oss:Get*", "oss:List*"], f"acs:oss:*:{A}:b/*"))
    delegation = doc(
        allow("oss:GetObject", f"acs:oss:*:{A}:b/1"),  # 0: inside
        {"Effect": "Deny", "Action": "*", "Resource": "*"},  # 1: a Deny only narrows
        allow(["oss:GetObject", "oss:PutObject"], f"acs:oss:*:{A}:b/2"),  # 2: an action
        allow("oss:GetObject", [f"acs:oss:*:{A}:b/3", f"acs:oss:*:{A}:c/*"]),  # 3: a resource
        allow("ecs:*", "*"),  # 4: both
        {"Effect": "Allow", "NotAction": "ram:*", "Resource": f"acs:oss:*:{A}:b/*"},  # 5
    )
    warnings = scope_warnings(delegation, entrustment)
    assert [w.statement for w in warnings] == [2, 3, 4, 5]
    by_statement = {w.statement: w.reason for w in warnings}
    assert "actions not entrusted: oss:PutObject" in by_statement[2]
    assert "resources" not in by_statement[2]
    assert f"resources not entrusted: acs:oss:*:{A}:c/*" in by_statement[3]
    assert "actions" not in by_statement[3]
    assert "actions not entrusted: ecs:*" in by_statement[4]
    assert "resources not entrusted: *" in by_statement[4]
    assert "NotAction" in by_statement[5]
    assert all("bounds it anyway" in w.reason for w in warnings[:3])
    assert warnings[0].as_dict() == {"statement": 2, "reason": by_statement[2]}
    assert isinstance(warnings[0], ScopeWarning)


def test_notaction_is_warned_even_when_the_entrustment_allows_everything() -> None:
    entrustment = doc(allow("*", "*"))
    delegation = doc({"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"})
    assert warned(delegation, entrustment) == [0]


def test_only_the_entrustments_allow_statements_contain() -> None:
    """A Deny or a NotAction statement of the entrustment covers nothing."""
    entrustment = doc(
        {"Effect": "Deny", "Action": "oss:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "ecs:*", "Resource": "*"},
    )
    assert warned(doc(allow("oss:GetObject", "*")), entrustment) == [0]


def test_actions_and_resources_must_be_entrusted_together() -> None:
    """Each action must be entrusted on each resource by one statement: an action of one
    statement and a resource of another do not make a pair the contract never signed."""
    entrustment = doc(
        allow("oss:GetObject", f"acs:oss:*:{A}:photos/*"),
        allow("ecs:*", f"acs:ecs:*:{A}:instance/*"),
    )
    crossed = doc(allow("oss:GetObject", f"acs:ecs:*:{A}:instance/*"))
    warnings = scope_warnings(crossed, entrustment)
    assert [w.statement for w in warnings] == [0]
    assert "oss:GetObject" in warnings[0].reason
    assert f"acs:ecs:*:{A}:instance/*" in warnings[0].reason
    # a pair each statement does entrust stays unwarned
    paired = doc(
        allow("oss:GetObject", f"acs:oss:*:{A}:photos/u-1/*"),
        allow("ecs:StartInstance", f"acs:ecs:*:{A}:instance/i-1"),
    )
    assert warned(paired, entrustment) == []


# --- soundness against the evaluator ----------------------------------------------------------

ACTION_WORDS = ["oss:GetObject", "oss:PutObject", "oss:ListObjects", "ecs:StartInstance"]
ACTION_GLOBS = [*ACTION_WORDS, "oss:*", "oss:Get*", "*", "ecs:*", "OSS:?etObject", "*:*Object"]
RESOURCE_WORDS = [
    f"acs:oss:*:{A}:b/1",
    f"acs:oss:*:{A}:b/22",
    f"acs:oss:*:{A}:c/1",
    f"acs:ecs:*:{A}:i",
]
RESOURCE_GLOBS = [*RESOURCE_WORDS, f"acs:oss:*:{A}:b/*", f"acs:oss:*:{A}:b/?", "*", "acs:*:*:*:?"]
_FILL = ["", "1", "22", "Object", "b/", "acs:oss"]


SECURE = {"Bool": {"acs:SecureTransport": "true"}}
CONTEXTS = [{}, {"acs:SecureTransport": True}, {"acs:SecureTransport": False}]


def _statements(draw_from: st.DrawFn) -> Document:
    statement = allow(
        draw_from(st.lists(st.sampled_from(ACTION_GLOBS), min_size=1, max_size=2, unique=True)),
        draw_from(st.lists(st.sampled_from(RESOURCE_GLOBS), min_size=1, max_size=2, unique=True)),
    )
    if draw_from(st.booleans()):
        statement["Condition"] = SECURE
    return statement


@st.composite
def scopes(draw: st.DrawFn) -> PolicyDocument:
    count = draw(st.integers(min_value=1, max_value=3))
    return doc(*(_statements(draw) for _ in range(count)))


def _instances(pattern: str) -> list[str]:
    """Concrete strings a pattern matches, each wildcard filled a few ways."""
    results = [""]
    for char in pattern:
        if char == "*":
            results = [r + f for r in results for f in _FILL][:64]
        elif char == "?":
            results = [r + f for r in results for f in ("1", "G", "/")][:64]
        else:
            results = [r + char for r in results]
    return results


def _layer(document: PolicyDocument, layer: Layer) -> PolicySet:
    source = PolicySource(layer, "Inline", "Scope", None, None)
    return PolicySet.of([compile_policy(document, source)], layer)


@settings(max_examples=300, deadline=None)
@given(delegation=scopes(), entrustment=scopes())
def test_an_unwarned_statement_is_inside_the_entrustment(
    delegation: PolicyDocument, entrustment: PolicyDocument
) -> None:
    """No warning for a statement ⇒ every request it allows, the entrustment allows."""
    warned_statements = set(warned(delegation, entrustment))
    entrusted = _layer(entrustment, Layer.ENTRUSTMENT)
    for index, statement in enumerate(delegation.statements):
        if index in warned_statements:
            continue
        written = delegation.as_dict()["Statement"]
        assert isinstance(written, list)
        alone = _layer(doc(written[index]), Layer.DELEGATION)
        for action_glob in statement.actions:
            for resource_glob in statement.resource or ():
                for action in _instances(action_glob):
                    for resource in _instances(resource_glob):
                        for context in CONTEXTS:
                            request = AccessRequest.make(action, resource, context)
                            if not evaluate((alone,), request).allowed:
                                continue
                            assert evaluate((entrusted,), request).allowed, (
                                f"statement {index} is unwarned but allows {action} on "
                                f"{resource} with {context}"
                            )


@settings(max_examples=200, deadline=None)
@given(scope=scopes())
def test_a_scope_never_warns_about_itself(scope: PolicyDocument) -> None:
    assert warned(scope, scope) == []


def test_a_conditional_entrustment_statement_contains_only_the_same_condition() -> None:
    """An Allow of the entrustment that holds only under a Condition does not contain an
    unconditional statement (the request may lack the condition); the same Condition does."""
    secure = {"Bool": {"acs:SecureTransport": "true"}}
    entrustment = doc({**allow("oss:*", f"acs:oss:*:{A}:b/*"), "Condition": secure})
    assert warned(doc(allow("oss:GetObject", f"acs:oss:*:{A}:b/1")), entrustment) == [0]
    same = {**allow("oss:GetObject", f"acs:oss:*:{A}:b/1"), "Condition": secure}
    assert warned(doc(same), entrustment) == []
    other = {**same, "Condition": {"StringLike": {"oss:Prefix": "photos/*"}}}
    assert warned(doc(other), entrustment) == [0]
