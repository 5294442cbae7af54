"""Condition operators of the policy language, compiled when a document is parsed.

A ``Condition`` block is ``{operator: {key: value or [values]}}``. Operators and keys are
AND'd; the values of one key are OR'd for a positive operator, and a negated operator holds
when the context value matches none of them. A key absent from the context makes a positive
operator false and a negated one true, as in AWS IAM, so that a ``Deny … NotIpAddress`` guard
cannot be switched off by leaving the key out (docs/design.md §2).

Every policy value is parsed here, once (by the readers in ``domain.policy.condition_values``), so
that a malformed number, date, address or boolean is refused with its JSON path when the
document is accepted, and a decision only compares ready-made values. A *context* value that
cannot be read for an operator (``"abc"`` for ``NumericEquals``, a naive ``datetime`` for
``DateLessThan``) is not an error: it simply matches no policy value. A context key may carry
several values (a list or tuple): a positive operator then holds if any of them matches any
policy value, a negated one if none does.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.condition_values import (
    Unreadable,
    as_bool,
    as_date,
    as_ip,
    as_number,
    as_text,
    parse_rfc3339,
    policy_bool,
    policy_date,
    policy_network,
    policy_number,
    policy_text,
)
from mandate.domain.policy.patterns import PatternSet

__all__ = [
    "CONDITION_OPERATORS",
    "NEGATED_OPERATORS",
    "RESOURCE_TAG",
    "ConditionClause",
    "ConditionSet",
    "ContextScalar",
    "ContextValue",
    "compile_conditions",
    "condition_may_hold",
    "parse_rfc3339",
]

RESOURCE_TAG: Final = "acs:resourcetag/"
"""The prefix of a resource's tags as context keys (``domain.policy.resource_tags``)."""

ContextScalar = str | bool | int | float | datetime
"""One value of a request's context key."""

ContextValue = ContextScalar | Sequence[ContextScalar]
"""What a context key holds: one value, or several (a list or tuple) for a multi-valued key."""

_Test = Callable[[object], bool]
"""Whether one context value matches any of an operator's policy values."""

_STRING_OPERATORS: Final = {
    "StringEquals": False,
    "StringNotEquals": True,
    "StringEqualsIgnoreCase": False,
    "StringNotEqualsIgnoreCase": True,
    "StringLike": False,
    "StringNotLike": True,
}
_ORDERED_OPERATORS: Final = {  # suffix after "Numeric" / "Date" → negated
    "Equals": False,
    "NotEquals": True,
    "LessThan": False,
    "LessThanEquals": False,
    "GreaterThan": False,
    "GreaterThanEquals": False,
}
_OTHER_OPERATORS: Final = {"Bool": False, "IpAddress": False, "NotIpAddress": True}

_NEGATED_BY_OPERATOR: Final[Mapping[str, bool]] = {
    **_STRING_OPERATORS,
    **{f"Numeric{suffix}": negated for suffix, negated in _ORDERED_OPERATORS.items()},
    **{f"Date{suffix}": negated for suffix, negated in _ORDERED_OPERATORS.items()},
    **_OTHER_OPERATORS,
}

CONDITION_OPERATORS: Final = frozenset(_NEGATED_BY_OPERATOR)
"""Every operator the language knows (operator names are case-sensitive, as in RAM)."""

NEGATED_OPERATORS: Final = frozenset(op for op, neg in _NEGATED_BY_OPERATOR.items() if neg)
"""The operators that hold when the context value matches none of the policy values."""


# --- building one operator's test from its policy values -------------------------------------

_T = TypeVar("_T")
_Ordered = TypeVar("_Ordered", float, datetime)  # one family at a time: always comparable
_COMPARISONS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}


class _UnreadableValues(Exception):
    """Every policy value of one key that its operator cannot read: ``(index, reason)``."""

    def __init__(self, faults: list[tuple[int, str]]) -> None:
        super().__init__(faults)
        self.faults = faults


def _read_all(values: list[object], read: Callable[[object], _T]) -> list[_T]:
    """Each value read for the operator, or ``_UnreadableValues`` naming every bad one."""
    read_values: list[_T] = []
    faults: list[tuple[int, str]] = []
    for index, value in enumerate(values):
        try:
            read_values.append(read(value))
        except Unreadable as fault:
            faults.append((index, str(fault)))
    if faults:
        raise _UnreadableValues(faults)
    return read_values


def _compile_string(op: str, values: list[object]) -> _Test:
    texts = _read_all(values, policy_text)
    if op in ("StringLike", "StringNotLike"):
        patterns = PatternSet(texts, case_sensitive=True)

        def like(value: object) -> bool:
            text = as_text(value)
            return text is not None and patterns.matches(text)

        return like
    if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        folded = frozenset(t.casefold() for t in texts)

        def equals_ignoring_case(value: object) -> bool:
            text = as_text(value)
            return text is not None and text.casefold() in folded

        return equals_ignoring_case
    exact = frozenset(texts)

    def equals(value: object) -> bool:
        return as_text(value) in exact

    return equals


def _compile_ordered(
    suffix: str, bounds: Sequence[_Ordered], read: Callable[[object], _Ordered | None]
) -> _Test:
    """Equality as set membership; an inequality against the one bound that decides it."""
    if suffix in ("Equals", "NotEquals"):
        members = frozenset(bounds)

        def equals(value: object) -> bool:
            return read(value) in members

        return equals
    # "x < any of the values" is "x < the largest"; "x > any" is "x > the smallest".
    bound = max(bounds) if suffix.startswith("Less") else min(bounds)
    compare: Callable[[_Ordered, _Ordered], bool] = _COMPARISONS[suffix]

    def ordered(value: object) -> bool:
        read_value = read(value)
        return read_value is not None and compare(read_value, bound)

    return ordered


def _compile_bool(values: list[object]) -> _Test:
    flags = frozenset(_read_all(values, policy_bool))

    def is_flag(value: object) -> bool:
        return as_bool(value) in flags

    return is_flag


def _compile_ip(values: list[object]) -> _Test:
    networks = tuple(_read_all(values, policy_network))

    def in_networks(value: object) -> bool:
        address = as_ip(value)
        return address is not None and any(address in network for network in networks)

    return in_networks


def _compile_operator(op: str, values: list[object]) -> _Test:
    """The test for one operator's values; raises ``_UnreadableValues`` on bad ones."""
    if op in _STRING_OPERATORS:
        return _compile_string(op, values)
    if op.startswith("Numeric"):
        return _compile_ordered(op[7:], _read_all(values, policy_number), as_number)
    if op.startswith("Date"):
        return _compile_ordered(op[4:], _read_all(values, policy_date), as_date)
    if op == "Bool":
        return _compile_bool(values)
    return _compile_ip(values)


# --- the compiled block --------------------------------------------------------------------

_MISSING: Final = object()


@dataclass(frozen=True, slots=True, eq=False)
class ConditionClause:
    """One ``operator → key → values`` entry, ready to test a request context."""

    operator: str
    key: str
    """The context key, lower-cased (keys match case-insensitively)."""
    negated: bool
    test: _Test

    def holds(self, context: Mapping[str, object]) -> bool:
        """Whether this clause holds for ``context`` (whose keys are already lower-cased)."""
        value = context.get(self.key, _MISSING)
        if value is _MISSING:
            return self.negated
        if isinstance(value, list | tuple):
            test = self.test
            hit = any(test(v) for v in value)
        else:
            hit = self.test(value)
        return hit != self.negated


class ConditionSet:
    """A statement's whole ``Condition`` block: every clause must hold (AND)."""

    __slots__ = ("_source", "clauses")

    clauses: tuple[ConditionClause, ...]
    _source: str

    def __init__(self, clauses: Sequence[ConditionClause], source: str) -> None:
        self.clauses = tuple(clauses)
        self._source = source

    @property
    def keys(self) -> frozenset[str]:
        """The (lower-cased) context keys the block reads."""
        return frozenset(clause.key for clause in self.clauses)

    def holds(self, context: Mapping[str, object]) -> bool:
        """Whether every clause holds for ``context`` (keys already lower-cased)."""
        return all(clause.holds(context) for clause in self.clauses)

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConditionSet):
            return NotImplemented
        return self._source == other._source

    def __hash__(self) -> int:
        return hash(self._source)

    def __repr__(self) -> str:
        return f"ConditionSet({self._source})"


def _index_path(path: str, index: int, listed: bool) -> str:
    return f"{path}[{index}]" if listed else path


def compile_conditions(block: Mapping[str, object]) -> ConditionSet:
    """Compile a ``Condition`` block, or raise ``InvalidInput`` naming every fault.

    Paths in the errors are relative to the block (``"IpAddress.acs:SourceIp[1]"``); the
    caller places them under the statement's ``Condition``.
    """
    errors: list[FieldError] = []
    clauses: list[ConditionClause] = []
    if not isinstance(block, Mapping):
        raise InvalidInput(FieldError("", "must be an object of operators"))
    if not block:
        errors.append(FieldError("", "must name at least one operator"))
    for op, keys in block.items():
        if op not in CONDITION_OPERATORS:
            errors.append(FieldError(op, f"{op!r} is not a condition operator"))
            continue
        if not isinstance(keys, Mapping):
            errors.append(FieldError(op, "must be an object of condition keys"))
            continue
        if not keys:
            errors.append(FieldError(op, "must name at least one condition key"))
        for key, raw_values in keys.items():
            path = f"{op}.{key}"
            if not isinstance(key, str) or not key.strip():
                errors.append(FieldError(path, "a condition key must be a non-empty string"))
                continue
            listed = isinstance(raw_values, list | tuple)
            values = list(raw_values) if isinstance(raw_values, list | tuple) else [raw_values]
            if not values:
                errors.append(FieldError(path, "must not be empty"))
                continue
            bad = False
            for index, value in enumerate(values):
                if value is None or isinstance(value, Mapping | list | tuple):
                    errors.append(
                        FieldError(_index_path(path, index, listed), "must be a single value")
                    )
                    bad = True
            if bad:
                continue
            try:
                test = _compile_operator(op, values)
            except _UnreadableValues as unreadable:
                errors.extend(
                    FieldError(_index_path(path, index, listed), reason)
                    for index, reason in unreadable.faults
                )
                continue
            clauses.append(ConditionClause(op, key.lower(), _NEGATED_BY_OPERATOR[op], test))
    if errors:
        raise InvalidInput(errors)
    source = json.dumps(block, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ConditionSet(clauses, source)


def condition_may_hold(
    conditions: ConditionSet, context: Mapping[str, object], *, favourable: bool
) -> bool:
    """Whether a Condition holds when the caller may still choose part of the context.

    A clause on a key ``context`` holds is tested as usual; one on a key it leaves open is
    taken as ``favourable``: True for an Allow (some value satisfies it), False for a Deny
    (some value escapes it) — the optimistic reading of ``evaluate``.
    """
    tags_known = RESOURCE_TAG in context  # known whole (``with_resource_tags``): none is open
    return all(
        clause.holds(context)
        if clause.key in context or (tags_known and clause.key.startswith(RESOURCE_TAG))
        else favourable
        for clause in conditions.clauses
    )
