"""One entry of a what-if reach, and the rows a policy statement writes.

A reach (``projections.decisions.what_if``) lists, per principal, each (action pattern,
resource pattern) a statement that applies to it writes — ``!`` before a pattern written
under ``NotAction``/``NotResource`` — with its effect, condition, layer, policy and chain.
Identity policies, roles' and contracts' layers and resource-based policies
(``projections.decisions.resource_reach``) all come down to these rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mandate.domain.policy.evaluation import CompiledPolicy

__all__ = ["Reach", "Row", "policy_rows", "statement_rows", "statements_of"]


@dataclass(frozen=True, slots=True)
class Reach:
    """One statement's worth of access a principal has, and how it came to it."""

    principal: str
    effect: str
    action: str
    resource: str
    chain: tuple[str, ...]
    layer: str
    policy_type: str
    policy_name: str
    via: str | None
    condition: str | None
    """The statement's ``Condition`` as canonical JSON; None when it has none."""
    needs_own_allow: bool = False
    """An Allow of a resource policy of another account than the one the principal acts in:
    across accounts RAM grants only where the principal's own policies allow the same too
    (``domain.policy.resource_policies``), so it is never the same access as an identity
    entry (``what_if.diff``) and it grants nothing by itself."""
    statement: int | None = None
    """Set only on a statement of another account's resource policy, whose text is withheld
    (``resource_reach``): its index in that policy, as ``/v1/authorize``'s ``matched`` names
    it; ``action`` and ``resource`` are then empty (``null`` in JSON) and ``condition`` None."""

    def as_dict(self) -> dict[str, Any]:
        withheld = self.statement is not None
        return {
            "principal": self.principal,
            "effect": self.effect,
            "action": None if withheld else self.action,
            "resource": None if withheld else self.resource,
            "chain": list(self.chain),
            "layer": self.layer,
            "policy_type": self.policy_type,
            "policy": self.policy_name,
            "via": self.via,
            "condition": json.loads(self.condition) if self.condition is not None else None,
            "needs_own_allow": self.needs_own_allow,
            "statement": self.statement,
        }


Row = tuple[str, str, str, str | None]
"""One (effect, action pattern, resource pattern, condition) a statement writes."""


def _patterns(statement: Mapping[str, Any], plain: str, negated: str) -> list[str]:
    written = statement.get(plain)
    prefix = ""
    if written is None:
        written, prefix = statement.get(negated), "!"
    if written is None:
        return []
    items = written if isinstance(written, list) else [written]
    return [prefix + str(item) for item in items]


def statement_rows(statement: Mapping[str, Any]) -> list[Row]:
    """The rows of one statement as a document writes it (``PolicyDocument.as_dict``)."""
    condition = statement.get("Condition")
    shown = json.dumps(condition, sort_keys=True) if condition is not None else None
    effect = str(statement.get("Effect"))
    return [
        (effect, action, resource, shown)
        for action in _patterns(statement, "Action", "NotAction")
        for resource in _patterns(statement, "Resource", "NotResource")
    ]


def statements_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A document's ``Statement``, one or a list, as a list."""
    written: Any = document["Statement"]
    return list(written) if isinstance(written, list) else [written]


_ROWS: dict[int, tuple[CompiledPolicy, list[Row]]] = {}
_ROWS_LIMIT = 4096
"""Rows per compiled policy, kept (with the policy, so its id is not reused) up to a bound:
a reach reads the same few policies for every member of a group."""


def policy_rows(policy: CompiledPolicy) -> list[Row]:
    """Every row of a compiled policy's document, in its order."""
    cached = _ROWS.get(id(policy))
    if cached is not None and cached[0] is policy:
        return cached[1]
    rows = [
        row
        for statement in statements_of(policy.document.as_dict())
        for row in statement_rows(statement)
    ]
    if len(_ROWS) >= _ROWS_LIMIT:
        _ROWS.clear()
    _ROWS[id(policy)] = (policy, rows)
    return rows
