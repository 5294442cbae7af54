"""How long a wildcard match takes: Mandate's matcher vs the backtracking regex it replaced.

Run ``python -m tests.bench.patterns`` (``--quick`` for a short run; ``--old-timeout S`` for
how long the old regex may run per case, 2 s by default). It prints a markdown table.

The rows are the worst cases we could build within ``≤ 20`` wildcards and ``≤ 1,000``
characters: values that almost match, where a backtracking regex tries every way of sharing
the value between the stars (O(n^stars)); then the shapes policies are written in, against
an ordinary resource, where both should cost about the same. The old translation (one
``.*`` per ``*``, one ``.`` per ``?``, with ``fullmatch``) runs in a subprocess that is
killed after the timeout, since it may not finish at all — a regex match cannot be
interrupted from Python.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from mandate.domain.policy.patterns import PatternSet
from tests.bench.summary import record

ACCOUNT = "1234567890123456"
RESOURCE = f"acs:oss:cn-hangzhou:{ACCOUNT}:bucket-7/reports/2026/q1.csv"


@dataclass(frozen=True)
class Case:
    name: str
    pattern: str
    value: str

    @property
    def wildcards(self) -> int:
        return self.pattern.count("*") + self.pattern.count("?")


def cases() -> list[Case]:
    a200, a1000 = "a" * 200, "a" * 1000
    return [
        Case("`*a` x5 + `b`, 200 chars", "*a" * 5 + "b", a200),
        Case("`*a` x10 + `b`, 1,000 chars", "*a" * 10 + "b", a1000),
        Case("`*a` x20 + `b`, 1,000 chars", "*a" * 20 + "b", a1000),
        Case("`a*` x20 + `b`, 1,000 chars", "a*" * 20 + "b", a1000),
        Case("`*a?` x6 + `*b`, 1,000 chars", "*a?" * 6 + "*b", a1000),
        Case("`*` + 40 `a` x19 + `*b`, 1,000 chars", ("*" + "a" * 40) * 19 + "*b", a1000),
        Case("`*` + 60 `a` + `?b*` x6, 1,000 chars", ("*" + "a" * 60 + "?b") * 6 + "*", a1000),
        Case("`*ab` x19 + `*c`, 1,000 chars (`ab`…)", "*ab" * 19 + "*c", "ab" * 500),
        Case("policy `acs:oss:*:A:*`", f"acs:oss:*:{ACCOUNT}:*", RESOURCE),
        Case("policy `acs:oss:*:A:prod-*` (no)", f"acs:oss:*:{ACCOUNT}:prod-*", RESOURCE),
        Case("policy `acs:oss:*:*:bucket-?/*`", "acs:oss:*:*:bucket-?/*", RESOURCE),
        Case("policy `acs:oss:*:*:bucket-7/*`", "acs:oss:*:*:bucket-7/*", RESOURCE),
    ]


def old_matcher(pattern: str) -> Callable[[str], object]:
    """The translation Mandate used before (a group, as in its sets): exact, but it backtracks."""
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile(f"(?:{''.join(parts)})", re.DOTALL).fullmatch


def per_match_us(match: Callable[[str], object], value: str, budget: float) -> tuple[float, bool]:
    """Microseconds per call (best of several timed loops within ``budget`` seconds)."""
    start = time.perf_counter()
    matched = bool(match(value))
    once = time.perf_counter() - start
    calls = max(1, min(100_000, int(budget / 5 / max(once, 1e-7))))
    best = once
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            match(value)
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6, matched


def _old_in_child(pattern: str, value: str, budget: float, out: Connection) -> None:
    out.send(per_match_us(old_matcher(pattern), value, budget))


def time_old(case: Case, budget: float, timeout: float) -> tuple[float, bool] | None:
    """The old regex's figure, or ``None`` when it did not finish within ``timeout``."""
    receiving, sending = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(
        target=_old_in_child, args=(case.pattern, case.value, budget, sending), daemon=True
    )
    child.start()
    try:
        if receiving.poll(timeout):
            result: tuple[float, bool] = receiving.recv()
            return result
        return None
    finally:
        child.kill()
        child.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--old-timeout", type=float, default=2.0, help="seconds per old case")
    args = parser.parse_args(argv)
    budget = 0.05 if args.quick else 0.3
    print(f"## Wildcard matching{' (quick)' if args.quick else ''}\n")
    print(f"Python {platform.python_version()} on {platform.machine()}.\n")
    print("| case | wildcards | chars | match | new µs | old regex µs | old / new |")
    print("|---|---:|---:|---|---:|---:|---:|")
    worst = (0.0, "")
    stopped = 0
    for case in cases():
        new_us, matched = per_match_us(
            PatternSet([case.pattern], case_sensitive=True).matcher, case.value, budget
        )
        worst = max(worst, (new_us, case.name))
        old = time_old(case, budget, args.old_timeout)
        if old is None:
            stopped += 1
            old_text, ratio = f"> {args.old_timeout * 1e6:,.0f} (stopped)", "—"
        else:
            assert old[1] is matched, f"{case.name}: the old regex disagrees"
            old_text, ratio = f"{old[0]:,.2f}", f"{old[0] / new_us:,.1f}"
        print(
            f"| {case.name} | {case.wildcards} | {len(case.value):,} | {matched} "
            f"| {new_us:,.2f} | {old_text} | {ratio} |"
        )
    record("slowest worst-case match", f"{worst[0]:,.1f} µs ({worst[1]})", source="patterns")
    record(
        "worst cases the old regex could not finish",
        f"{stopped} (stopped after {args.old_timeout:g} s each)",
        source="patterns",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
