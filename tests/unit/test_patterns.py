"""The wildcard matcher against the regex translation it replaced, and on inputs that made it hang.

The old translation (one ``.*`` per ``*``, one ``.`` per ``?``, everything else escaped, used
with ``fullmatch``) is kept here only as the oracle: it is exact but backtracks, so it is asked
only about short values.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mandate.domain.policy.patterns import PatternSet, glob_matcher, wildcard_match

ALPHABET = "ab.*?\\[]()^$|\n:/Kß"


def old_regex(pattern: str) -> str:
    """The translation ``domain.policy.patterns`` used before it matched without backtracking."""
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def oracle(patterns: list[str], value: str) -> bool:
    source = "|".join(f"(?:{old_regex(p)})" for p in patterns) or "(?!)"
    return re.compile(source, re.DOTALL).fullmatch(value) is not None


@st.composite
def pattern_and_value(draw: st.DrawFn) -> tuple[str, str]:
    """A short pattern and a value that, half of the time, was built to match it."""
    pattern = draw(st.text(alphabet=ALPHABET, max_size=10))
    if draw(st.booleans()):
        one = st.text(alphabet=ALPHABET, min_size=1, max_size=1)
        run = st.text(alphabet=ALPHABET, max_size=3)
        value = "".join(draw(run) if c == "*" else draw(one) if c == "?" else c for c in pattern)
    else:
        value = draw(st.text(alphabet=ALPHABET, max_size=12))
    return pattern, value


@settings(max_examples=500)
@given(pattern_and_value())
def test_one_pattern_matches_as_the_old_regex_did(case: tuple[str, str]) -> None:
    pattern, value = case
    assert bool(glob_matcher(pattern)(value)) is oracle([pattern], value)
    assert PatternSet([pattern], case_sensitive=True).matches(value) is oracle([pattern], value)


@settings(max_examples=300)
@given(pattern_and_value())
def test_the_find_search_matches_as_the_old_regex_did(case: tuple[str, str]) -> None:
    """Literal patterns with long segments use ``str.find``; here every literal one does."""
    pattern, value = case
    with mock.patch("mandate.domain.policy.patterns._LONG_SEGMENT", -1):
        assert bool(glob_matcher(pattern)(value)) is oracle([pattern], value)
        compiled = PatternSet([pattern, "zz*z"], case_sensitive=True)
        assert compiled.matches(value) is oracle([pattern, "zz*z"], value)


@settings(max_examples=200)
@given(st.lists(pattern_and_value(), min_size=1, max_size=4), st.text(ALPHABET, max_size=12))
def test_a_set_matches_as_the_old_combined_regex_did(
    cases: list[tuple[str, str]], other: str
) -> None:
    """Exact, prefix and general patterns mixed: the cheap tests and the globs agree."""
    patterns = [p for p, _ in cases]
    compiled = PatternSet(patterns, case_sensitive=True)
    for value in [*(v for _, v in cases), other]:
        assert compiled.matches(value) is oracle(patterns, value)


@settings(max_examples=200)
@given(pattern_and_value())
def test_ignoring_case_is_the_old_regex_on_folded_text(case: tuple[str, str]) -> None:
    pattern, value = case
    expected = oracle([pattern.lower()], value.lower())
    assert PatternSet([pattern], case_sensitive=False).matches(value) is expected
    assert PatternSet([pattern.upper()], case_sensitive=False).matches(value.swapcase()) is (
        oracle([pattern.upper().lower()], value.swapcase().lower())
    )


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("?", "", False),
        ("?", "\n", True),
        ("a*a", "a", False),  # the two ends may not overlap
        ("a*a", "aa", True),
        ("*ab*ab*", "abab", True),
        ("*ab*ab*", "aba", False),
        ("a?c*?", "abcd", True),
        ("a?c*?", "abc", False),
        ("*a?a*", "xaxa", True),
        ("acs:oss:*:1:photos/*", "acs:oss:cn:1:photos/cat.jpg", True),
        ("acs:oss:*:1:photos/*", "acs:oss:cn:2:photos/cat.jpg", False),
        ("a.b", "axb", False),  # regex metacharacters stand for themselves
        ("[ab]", "[ab]", True),
    ],
)
def test_examples(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected


def test_the_patterns_that_made_the_regex_hang_answer() -> None:
    """Twenty stars and twenty question marks against 1,000 characters that almost match.

    No time is asserted (the benchmark measures it); under the old regex each of these ran
    for longer than the test suite does.
    """
    value = "a" * 1000
    assert not wildcard_match("*a" * 20 + "b", value)
    assert wildcard_match("*a" * 20 + "*", value)
    assert not wildcard_match("a*" * 20 + "b", value)
    assert not wildcard_match("*a?" * 10 + "*b", value)
    assert wildcard_match("*a?" * 10 + "*", value)
    assert not wildcard_match(("*" + "a" * 40) * 20 + "*b", value)
    assert not wildcard_match("*" + "a" * 500 + "?b*", value)
    assert not PatternSet(["*a" * 20 + "b", "x*"], case_sensitive=False).matches("A" * 1000)
