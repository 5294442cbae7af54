"""Wildcard patterns of the policy language, compiled once, matched in linear time.

A pattern's ``*`` matches any run of characters (the empty one too) and ``?`` exactly one;
every other character, regex metacharacters included, stands for itself. Actions match
case-insensitively and resources case-sensitively (docs/design.md §2).

Decisions run in microseconds, so a pattern is never interpreted per request: each set of
patterns is compiled once into the cheapest test that decides it — always true (a ``*``), one
string comparison or ``frozenset`` lookup (no wildcard), one ``str.startswith`` with a tuple
(``oss:Get*``), or else one regex ``fullmatch`` that cannot backtrack (``_regex``).

Patterns come from callers (``/v1/simulate`` takes whole documents from anyone
authenticated), so matching must never backtrack: a regex with one ``.*`` per ``*`` takes
time exponential in the number of stars on a value that almost matches. A pattern is its
segments between stars; the first must start the value and the last end it, and each one
between is searched for leftmost, after the previous one. The segments have fixed lengths,
so the leftmost occurrence ends soonest and leaves the most room for the rest: no choice is
ever undone. The regex engine runs that search (atomic lazy groups, see ``_regex``) in at
most one try of a segment per character of the value: O(n·s) for a value of n characters
and segments of at most s, instead of O(n^stars). A literal pattern with a segment longer
than ``_LONG_SEGMENT`` is searched with ``str.find`` instead, which is linear however long the
segment (``_find_segments``).

Case-insensitive sets fold with ``str.lower()``: the pattern at compile time, the value by
the caller once per request (see ``PatternSet.matches_folded``), so that a decision folds the
action once however many statements it looks at.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable

__all__ = ["Matcher", "PatternSet", "glob_matcher", "has_wildcard", "wildcard_match"]


def has_wildcard(pattern: str) -> bool:
    """Whether ``pattern`` holds a ``*`` or ``?`` (otherwise it matches only itself)."""
    return "*" in pattern or "?" in pattern


def _always(_value: str) -> bool:
    return True


Matcher = Callable[[str], object]
"""A compiled test: its result is truthy exactly when the value matches."""


_LONG_SEGMENT = 64
"""Longer literal segments are searched with ``str.find`` rather than by the regex engine."""


def _is_prefix(pattern: str) -> bool:
    """Whether ``pattern`` is ``foo*``: literal, then stars only."""
    return pattern.endswith("*") and not has_wildcard(pattern.rstrip("*"))


def _by_find(pattern: str) -> bool:
    """Whether ``pattern`` is matched with ``str.find`` (literal, with a long segment)."""
    return "?" not in pattern and max(map(len, pattern.split("*"))) > _LONG_SEGMENT


def _any_of(patterns: list[str]) -> Matcher:
    """One test for a mix of exact, prefix and general patterns (the cheap ones first)."""
    exact = frozenset(p for p in patterns if not has_wildcard(p))
    prefixes = tuple(p.rstrip("*") for p in patterns if _is_prefix(p))
    general = [p for p in dict.fromkeys(patterns) if has_wildcard(p) and not _is_prefix(p)]
    tests = [_find_segments(p) for p in general if _by_find(p)]
    in_regex = [p for p in general if not _by_find(p)]
    if in_regex:  # one regex call for all of them
        tests.insert(0, _regex(in_regex))
    if prefixes:
        tests.insert(0, operator.methodcaller("startswith", prefixes))
    if exact:
        tests.insert(0, exact.__contains__)
    if len(tests) == 1:
        return tests[0]
    every = tuple(tests)

    def any_matches(value: str) -> bool:
        for test in every:  # noqa: SIM110 - a generator costs more on the hot path
            if test(value):
                return True
        return False

    return any_matches


def glob_matcher(pattern: str) -> Matcher:
    """A test of whether a whole value matches ``pattern``, case-sensitively, never backtracking.

    Fold pattern and value alike beforehand to ignore case.
    """
    return _find_segments(pattern) if _by_find(pattern) else _regex([pattern])


def _find_segments(pattern: str) -> Matcher:
    """The segment search with ``str.find`` (linear in CPython) for a pattern without ``?``."""
    head, *rest = pattern.split("*")
    if not rest:
        return pattern.__eq__
    *between, tail = rest
    middle = tuple(s for s in between if s)
    head_length, tail_length = len(head), len(tail)
    shortest = head_length + tail_length + sum(map(len, middle))

    def segments_in_order(value: str) -> bool:
        if len(value) < shortest or not value.startswith(head) or not value.endswith(tail):
            return False
        position, end = head_length, len(value) - tail_length
        for segment in middle:
            position = value.find(segment, position, end)
            if position < 0:
                return False
            position += len(segment)
        return True

    return segments_in_order


def _fixed(segment: str) -> str:
    """Regex source for a segment (``?`` but no ``*``): it matches a fixed number of characters."""
    return "".join("." if c == "?" else re.escape(c) for c in segment)


def _regex(patterns: list[str]) -> Matcher:
    """One regex ``fullmatch`` for ``patterns`` that places each segment once, leftmost.

    ``a*b*c?*d*`` becomes ``a(?>.*?b)(?>.*?c.).*d.*``: each lazy ``.*?`` stops at the first
    place its segment fits, and the atomic group ``(?>…)`` forbids the engine to come back and
    try a later one — the leftmost placement is the best one (module docstring), so nothing
    is lost. Only the star before the last segment stays a plain greedy ``.*`` (faster than
    a lazy scan when the segment is absent): one backtracking point, whose cost is one try of
    that segment per character. A pattern with at most one star before a non-empty segment
    (``acs:oss:*:123:*``) compiles to exactly the plain translation, and runs as fast.
    """
    sources = []
    for pattern in patterns:
        head, *rest = pattern.split("*")
        parts = [_fixed(head)]
        if rest:
            last = max((i for i, s in enumerate(rest) if s), default=0)
            parts.extend(f"(?>.*?{_fixed(s)})" for s in rest[:last] if s)
            parts.append(f".*{_fixed(rest[last])}")
            if last < len(rest) - 1:
                parts.append(".*")
        sources.append("".join(parts))
    # one pattern alone is not wrapped in a group: the engine then sees its literal prefix
    source = sources[0] if len(sources) == 1 else "|".join(f"(?:{s})" for s in sources)
    return re.compile(source, re.DOTALL).fullmatch


class PatternSet:
    """Patterns OR'd together: ``matches(value)`` holds when any one of them matches.

    Immutable once built; compile it once per statement element (``Action``, ``Resource``,
    a ``StringLike`` value list) and reuse it for every decision. ``matcher`` is the fastest
    test for the set, a C-level callable in the common cases (``str.__eq__``,
    ``frozenset.__contains__``, ``str.startswith``) or else a ``glob_matcher``, for hot loops
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
            self.matcher = _any_of(folded)

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
