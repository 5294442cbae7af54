"""Wildcard patterns of the policy language, compiled once.

A pattern's ``*`` matches any run of characters (the empty one too) and ``?`` exactly one;
every other character, regex metacharacters included, stands for itself. Actions match
case-insensitively and resources case-sensitively (DESIGN §2).

Decisions run in microseconds, so a pattern is never interpreted per request: each set of
patterns is compiled once into the cheapest test that decides it — always true (a ``*``), one
string comparison or ``frozenset`` lookup (no wildcard), one ``str.startswith`` with a tuple
(``oss:Get*``), or else one combined regex used with ``fullmatch``.

Case-insensitive sets fold with ``str.lower()``: the pattern at compile time, the value by
the caller once per request (see ``PatternSet.matches_folded``), so that a decision folds the
action once however many statements it looks at.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable

__all__ = ["Matcher", "PatternSet", "has_wildcard", "pattern_regex", "wildcard_match"]


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` holds a ``*`` or ``?`` (otherwise it matches only itself)."""
    return "*" in pattern or "?" in pattern


def pattern_regex(pattern: str) -> str:
    """The regex source equivalent to ``pattern`` when used with ``fullmatch`` and DOTALL."""
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            if not parts or parts[-1] != ".*":  # runs of '*' mean the same as one
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def _always(_value: str) -> bool:
    return True


Matcher = Callable[[str], object]
"""A compiled test: its result is truthy exactly when the value matches."""


class PatternSet:
    """Patterns OR'd together: ``matches(value)`` holds when any one of them matches.

    Immutable once built; compile it once per statement element (``Action``, ``Resource``,
    a ``StringLike`` value list) and reuse it for every decision. ``matcher`` is the fastest
    test for the set, a C-level callable in the common cases (``str.__eq__``,
    ``frozenset.__contains__``, ``str.startswith`` or ``re.Pattern.fullmatch``), for hot loops
    that can use a truthy result instead of a ``bool``.
    """

    __slots__ = ("case_sensitive", "matcher", "matches_everything", "patterns")

    patterns: tuple[str, ...]
    case_sensitive: bool
    matches_everything: bool
    """Whether one of the patterns is all stars (it matches any value at all)."""
    matcher: Matcher
    """Applied to a value folded with ``str.lower()`` when the set ignores case."""

    def __init__(self, patterns: Iterable[str], *, case_sensitive: bool) -> None:
        self.patterns = tuple(patterns)
        self.case_sensitive = case_sensitive
        folded = [p if case_sensitive else p.lower() for p in self.patterns]
        exact = frozenset(p for p in folded if not has_wildcard(p))
        prefixes = tuple(
            p.rstrip("*")
            for p in folded
            if p.endswith("*") and not has_wildcard(p.rstrip("*")) and p.strip("*")
        )
        self.matches_everything = any(p.strip("*") == "" for p in folded if p)
        if self.matches_everything:
            self.matcher = _always
        elif len(exact) == len(folded) == 1:
            self.matcher = folded[0].__eq__
        elif exact and len(exact) == len(set(folded)):
            self.matcher = exact.__contains__
        elif prefixes and len(prefixes) == len(folded):
            self.matcher = operator.methodcaller("startswith", prefixes)
        else:
            source = "|".join(f"(?:{pattern_regex(p)})" for p in folded) or "(?!)"
            self.matcher = re.compile(source, re.DOTALL).fullmatch

    def matches(self, value: str) -> bool:
        """Whether any pattern matches ``value`` (folded here if the set ignores case)."""
        return bool(self.matcher(value if self.case_sensitive else value.lower()))

    def matches_folded(self, value: str) -> bool:
        """Like ``matches`` for a value the caller has already folded with ``str.lower()``."""
        return bool(self.matcher(value))

    def __repr__(self) -> str:
        flag = "" if self.case_sensitive else ", case_sensitive=False"
        return f"PatternSet({list(self.patterns)!r}{flag})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PatternSet):
            return NotImplemented
        return (self.patterns, self.case_sensitive) == (other.patterns, other.case_sensitive)

    def __hash__(self) -> int:
        return hash((self.patterns, self.case_sensitive))


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """One-off match of ``value`` against ``pattern``; compile a ``PatternSet`` to reuse."""
    return PatternSet((pattern,), case_sensitive=case_sensitive).matches(value)
