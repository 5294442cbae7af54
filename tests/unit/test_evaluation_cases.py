"""Decision tables: each case in ``data/evaluation_cases/*.json`` is one request and its answer.

A case names ``policies`` (one layer of documents) or ``layers`` (a list of such lists, which
intersect), the ``action``, the ``resource``, an optional ``context`` (a value written as
``{"$datetime": "…"}`` becomes a ``datetime``), the expected decision and, optionally, the
expected ``matched`` statements — ``[policy, statement]`` for one layer, ``[layer, policy,
statement]`` for several — and ``context_dependent``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mandate.domain.policy.document import parse_policy_document
from mandate.domain.policy.evaluation import (
    AccessRequest,
    Decision,
    Layer,
    PolicySet,
    PolicySource,
    compile_policy,
    evaluate,
)

CASES_DIR = Path(__file__).parent / "data" / "evaluation_cases"
LAYER_ORDER = (Layer.ROLE, Layer.ENTRUSTMENT, Layer.DELEGATION, Layer.SESSION)


def load_cases() -> list[Any]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")):
            cases.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return cases


def context_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$datetime"}:
        return datetime.fromisoformat(value["$datetime"])
    if isinstance(value, list):
        return [context_value(v) for v in value]
    return value


def policy_set(documents: Sequence[Mapping[str, Any]], layer: Layer) -> PolicySet:
    compiled = [
        compile_policy(
            parse_policy_document(document),
            PolicySource(layer, "Custom", f"P{index}", "v1", None),
        )
        for index, document in enumerate(documents)
    ]
    return PolicySet.of(compiled, layer)


def decide(case: Mapping[str, Any]) -> Decision:
    if "layers" in case:
        layers = [
            policy_set(documents, LAYER_ORDER[index])
            for index, documents in enumerate(case["layers"])
        ]
    else:
        layers = [policy_set(case["policies"], Layer.IDENTITY)]
    context = {key: context_value(value) for key, value in case.get("context", {}).items()}
    return evaluate(layers, AccessRequest.make(case["action"], case["resource"], context))


def expected_matched(case: Mapping[str, Any]) -> list[tuple[Layer, str, int]]:
    if "layers" in case:
        return [(LAYER_ORDER[layer], f"P{p}", s) for layer, p, s in case["matched"]]
    return [(Layer.IDENTITY, f"P{p}", s) for p, s in case["matched"]]


def test_the_case_files_exist_and_are_not_empty() -> None:
    """The data directory holds case files with cases in them."""
    assert len(load_cases()) > 100


@pytest.mark.parametrize("case", load_cases())
def test_each_case_is_decided_as_expected(case: Mapping[str, Any]) -> None:
    """The evaluator gives each case its expected decision, matched statements and dependency."""
    decision = decide(case)
    assert decision.kind.value == case["expect"]
    assert decision.allowed is (case["expect"] == "Allow")
    if "matched" in case:
        got = [(m.layer, m.policy_name, m.statement) for m in decision.matched]
        assert got == expected_matched(case)
    if "context_dependent" in case:
        assert decision.context_dependent is case["context_dependent"]
