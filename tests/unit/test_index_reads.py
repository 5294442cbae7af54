"""The API reads the decision index through its named queries, never through its containers.

``IndexState`` keeps dictionaries (views by id, by name, keys, sessions, generations, caches);
``projections.decisions.queries`` names what the API may ask of them. An ``index.<name>``
in api/ code for a name ``IndexState.__init__`` binds to a container, or any private name,
couples a route to how the index stores a fact: this test fails on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "projections" / "decisions" / "state.py"
API = ROOT / "api"
CONTAINERS = ("dict", "set", "list", "frozenset")


def _containers_of_index_state() -> set[str]:
    """The names ``IndexState.__init__`` binds (``self.x: dict[...] = ...``) to a container."""
    tree = ast.parse(STATE.read_text())
    state = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "IndexState")
    init = next(n for n in state.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    names = set()
    for node in ast.walk(init):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Attribute):
            continue
        annotation = node.annotation
        head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
        if isinstance(head, ast.Name) and head.id in CONTAINERS:
            names.add(node.target.attr)
    return names


def _is_index(node: ast.expr) -> bool:
    """``index`` or ``<anything>.index`` (``runtime.index``, ``self.index``)."""
    return (isinstance(node, ast.Name) and node.id == "index") or (
        isinstance(node, ast.Attribute) and node.attr == "index"
    )


def _internal_reads(source: str, internal: set[str]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not _is_index(node.value):
            continue
        if node.attr in internal or node.attr.startswith("_"):
            found.append((node.lineno, node.attr))
    return sorted(found)


def test_the_index_state_names_its_containers() -> None:
    """The check below knows the containers it guards (it would pass vacuously otherwise)."""
    containers = _containers_of_index_state()
    assert {"accounts", "users", "keys", "sessions", "entrustments", "delegations"} <= containers
    assert "position" not in containers


def test_the_check_sees_a_subscript_an_iteration_and_a_private_read() -> None:
    internal = _containers_of_index_state()
    source = (
        "a = runtime.index.keys[k]\n"
        "for e in self.index.entrustments.values(): pass\n"
        "b = index._generations\n"
        "c = runtime.index.session(k)\n"
        "d = runtime.index.position\n"
    )
    assert _internal_reads(source, internal) == [
        (1, "keys"),
        (2, "entrustments"),
        (3, "_generations"),
    ]


def test_api_code_reads_the_index_only_through_named_queries() -> None:
    internal = _containers_of_index_state()
    offences = [
        f"{path.relative_to(ROOT)}:{line}: index.{name}"
        for path in sorted(API.rglob("*.py"))
        for line, name in _internal_reads(path.read_text(), internal)
    ]
    assert offences == [], "use a named query of projections/decisions/queries.py:\n" + "\n".join(
        offences
    )
