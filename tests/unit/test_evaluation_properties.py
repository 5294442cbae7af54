"""Properties of the evaluator that must hold for every policy set, checked with hypothesis."""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    Decision,
    DecisionKind,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)
from mandate.domain.policy.patterns import PatternSet

A = "1837465920374651"
ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:ListObjects", "ecs:StartInstance", "ram:GetUser"]
ACTION_PATTERNS = [*ACTIONS, "oss:*", "oss:Get*", "*:Get*", "*", "ecs:*Instance", "OSS:put?bject"]
RESOURCES = [
    f"acs:oss:cn-hangzhou:{A}:photos/u-42/a.jpg",
    f"acs:oss:cn-hangzhou:{A}:docs/readme.md",
    f"acs:ecs:cn-hangzhou:{A}:instance/i-1",
    f"acs:ram::{A}:user/ravi",
]
RESOURCE_PATTERNS = [*RESOURCES, "*", f"acs:oss:*:{A}:photos/*", f"acs:*:*:{A}:*", "acs:oss:*"]
LAYERS = list(Layer)

Document = dict[str, Any]

CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"Bool": {"acs:SecureTransport": "true"}},
    {"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
    {"StringLike": {"oss:Prefix": "photos/*"}},
]
ACTION_SETS = [[p] for p in ACTION_PATTERNS] + [["oss:Get*", "ecs:*"], ["*:Get*", "oss:PutObject"]]
RESOURCE_SETS = [[p] for p in RESOURCE_PATTERNS] + [[RESOURCES[1], f"acs:oss:*:{A}:photos/*"]]


def _statement(
    effect: str, key: str, actions: list[str], resources: list[str], condition: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, key: actions, "Resource": resources}
    if condition is not None:
        statement["Condition"] = condition
    return statement


# Statements are drawn from a prebuilt pool (simplest first, so failures shrink towards them):
# drawing one pool index is far cheaper than composing each statement field by field.
STATEMENT_POOL = [
    _statement(*parts)
    for parts in itertools.product(
        ["Allow", "Deny"], ["Action", "NotAction"], ACTION_SETS, RESOURCE_SETS, CONDITIONS
    )
]


def statements() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(STATEMENT_POOL)


documents = st.builds(
    lambda s: {"Version": "1", "Statement": s}, st.lists(statements(), min_size=1, max_size=3)
)
policy_lists = st.lists(documents, min_size=0, max_size=3)
layer_lists = st.lists(policy_lists, min_size=1, max_size=3)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "acs:SecureTransport": st.booleans(),
        "acs:SourceIp": st.sampled_from(["10.1.2.3", "192.168.0.1"]),
        "oss:Prefix": st.sampled_from(["photos/u-42/", "docs/"]),
    },
)
requests = st.builds(
    AccessRequest.make, st.sampled_from(ACTIONS), st.sampled_from(RESOURCES), contexts
)


def policy_set(documents: Sequence[Document], layer: Layer, names: Sequence[str] = ()) -> PolicySet:
    names = list(names) or [f"P{i}" for i in range(len(documents))]
    return PolicySet.of(
        (
            compile_policy(
                parse_policy_document(document), PolicySource(layer, "Custom", name, "v1", None)
            )
            for name, document in zip(names, documents, strict=True)
        ),
        layer,
    )


def decide(layers: Sequence[Sequence[Document]], request: AccessRequest) -> Decision:
    return evaluate([policy_set(docs, LAYERS[i + 1]) for i, docs in enumerate(layers)], request)


def with_statement(
    documents: list[Document], index: int, statement: dict[str, Any]
) -> list[Document]:
    """A copy of ``documents`` with ``statement`` added to the one at ``index`` (or appended)."""
    copies: list[Document] = [
        {"Version": "1", "Statement": [*d["Statement"], *([statement] if i == index else [])]}
        for i, d in enumerate(documents)
    ]
    if index >= len(copies):
        copies.append({"Version": "1", "Statement": [statement]})
    return copies


@settings(max_examples=80)
@given(layer_lists, requests, st.data())
def test_a_matching_deny_always_wins(
    layers: list[list[Document]], request: AccessRequest, data: st.DataObject
) -> None:
    """A Deny matching the request, added to any policy of any layer, makes an explicit deny."""
    where = data.draw(st.integers(0, len(layers) - 1))
    index = data.draw(st.integers(0, len(layers[where])))
    deny = {"Effect": "Deny", "Action": request.action, "Resource": request.resource}
    layers = [*layers[:where], with_statement(layers[where], index, deny), *layers[where + 1 :]]
    decision = decide(layers, request)
    assert decision.kind is DecisionKind.EXPLICIT_DENY
    assert decision.matched
    assert all(m.effect == "Deny" for m in decision.matched)


@settings(max_examples=80)
@given(layer_lists, requests, statements(), st.data())
def test_adding_an_allow_never_turns_an_allow_into_a_deny(
    layers: list[list[Document]], request: AccessRequest, extra: dict[str, Any], data: st.DataObject
) -> None:
    """An added Allow statement never takes away an Allow."""
    before = decide(layers, request)
    extra = {**extra, "Effect": "Allow"}
    where = data.draw(st.integers(0, len(layers) - 1))
    index = data.draw(st.integers(0, len(layers[where])))
    layers = [*layers[:where], with_statement(layers[where], index, extra), *layers[where + 1 :]]
    after = decide(layers, request)
    if before.allowed:
        assert after.allowed
    if before.kind is DecisionKind.EXPLICIT_DENY:
        assert after.kind is DecisionKind.EXPLICIT_DENY


@settings(max_examples=80)
@given(policy_lists, requests, st.randoms(use_true_random=False))
def test_evaluation_is_independent_of_statement_and_policy_order(
    documents: list[Document], request: AccessRequest, random: Any
) -> None:
    """Shuffling statements inside policies and the policies themselves changes no decision."""
    names = [f"P{i}" for i in range(len(documents))]
    before = evaluate([policy_set(documents, Layer.IDENTITY, names)], request)
    shuffled = [
        {"Version": "1", "Statement": random.sample(d["Statement"], len(d["Statement"]))}
        for d in documents
    ]
    order = random.sample(range(len(documents)), len(documents))
    after = evaluate(
        [policy_set([shuffled[i] for i in order], Layer.IDENTITY, [names[i] for i in order])],
        request,
    )
    assert after.kind is before.kind
    assert after.context_dependent is before.context_dependent
    assert sorted(m.policy_name for m in after.matched) == sorted(
        m.policy_name for m in before.matched
    )


@settings(max_examples=80)
@given(policy_lists, requests)
def test_matched_statements_are_listed_in_document_order(
    documents: list[Document], request: AccessRequest
) -> None:
    """Matched statements come in policy order, then statement order."""
    decision = evaluate([policy_set(documents, Layer.IDENTITY)], request)
    keys = [(int(m.policy_name[1:]), m.statement) for m in decision.matched]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@settings(max_examples=80)
@given(layer_lists, policy_lists, requests)
def test_adding_a_layer_never_widens(
    layers: list[list[Document]], extra: list[Document], request: AccessRequest
) -> None:
    """An extra layer can only narrow: no new Allow, and an explicit deny stays one."""
    before = decide(layers, request)
    after = decide([*layers, extra], request)
    if after.allowed:
        assert before.allowed
    if before.kind is DecisionKind.EXPLICIT_DENY:
        assert after.kind is DecisionKind.EXPLICIT_DENY


@settings(max_examples=80)
@given(policy_lists, requests)
def test_one_layer_agrees_with_the_single_layer_rule(
    documents: list[Document], request: AccessRequest
) -> None:
    """For one layer: a matching Deny denies explicitly, else a matching Allow allows."""
    decision = evaluate([policy_set(documents, Layer.IDENTITY)], request)
    effects = {m.effect for m in decision.matched}
    if decision.kind is DecisionKind.EXPLICIT_DENY:
        assert effects == {"Deny"}
    elif decision.kind is DecisionKind.ALLOW:
        assert effects == {"Allow"}
    else:
        assert decision.matched == ()


@settings(max_examples=60)
@given(policy_lists, st.lists(requests, min_size=1, max_size=6))
def test_a_reused_policy_set_decides_as_a_fresh_one(
    documents: list[Document], batch: list[AccessRequest]
) -> None:
    """Deciding many requests on one policy set gives what a fresh set gives for each."""
    shared = policy_set(documents, Layer.IDENTITY)
    for request in [*batch, *batch]:
        fresh = policy_set(documents, Layer.IDENTITY)
        assert evaluate([shared], request) == evaluate([fresh], request)


# --- wildcard patterns against a reference matcher ------------------------------------------

PATTERN_ALPHABET = "ab.+()[]{}^$|\\/:-*?Kkß\n"


def oracle(pattern: str, value: str) -> bool:
    """fnmatch's translation, with '[' escaped: the language has no character classes."""
    return re.match(fnmatch.translate(pattern.replace("[", "[[]")), value) is not None


@st.composite
def pattern_and_value(draw: st.DrawFn) -> tuple[str, str]:
    pattern = draw(st.text(alphabet=PATTERN_ALPHABET, max_size=10))
    if draw(st.booleans()):  # a value built to match, so both answers are exercised
        fill = st.text(alphabet=PATTERN_ALPHABET, max_size=3)
        value = "".join(
            draw(fill)
            if c == "*"
            else draw(st.text(PATTERN_ALPHABET, min_size=1, max_size=1))
            if c == "?"
            else c
            for c in pattern
        )
    else:
        value = draw(st.text(alphabet=PATTERN_ALPHABET, max_size=10))
    return pattern, value


@settings(max_examples=400)
@given(pattern_and_value())
def test_patterns_agree_with_the_reference_matcher(case: tuple[str, str]) -> None:
    """A compiled pattern matches exactly when the fnmatch-based oracle does, case-sensitively."""
    pattern, value = case
    assert PatternSet([pattern], case_sensitive=True).matches(value) is oracle(pattern, value)


@settings(max_examples=200)
@given(pattern_and_value())
def test_case_insensitive_patterns_agree_with_the_folded_oracle(case: tuple[str, str]) -> None:
    """Ignoring case is the oracle applied to lower-cased pattern and value."""
    pattern, value = case
    expected = oracle(pattern.lower(), value.lower())
    assert PatternSet([pattern], case_sensitive=False).matches(value) is expected


@settings(max_examples=200)
@given(st.lists(pattern_and_value(), min_size=1, max_size=4), st.text(PATTERN_ALPHABET))
def test_a_pattern_set_matches_when_any_pattern_does(
    cases: list[tuple[str, str]], other: str
) -> None:
    """Several patterns are OR'd, whatever mix of exact, prefix and general patterns they are."""
    patterns = [p for p, _ in cases]
    compiled = PatternSet(patterns, case_sensitive=True)
    for value in [*(v for _, v in cases), other]:
        assert compiled.matches(value) is any(oracle(p, value) for p in patterns)
