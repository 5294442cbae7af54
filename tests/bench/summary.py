"""The headline figures of a benchmark run, gathered for ``python -m tests.bench``'s one table.

Each benchmark module prints its own detailed tables; it also calls ``record`` for the few
figures worth a row in the summary. ``python -m tests.bench`` runs the modules as subprocesses
with ``MANDATE_BENCH_SUMMARY`` naming a file; ``record`` appends one JSON line to it. Run
alone, a module has no such variable and ``record`` does nothing, so the modules stay
runnable by themselves. No dependencies: a module imports this before anything heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "MANDATE_BENCH_SUMMARY"


@dataclass(frozen=True)
class Figure:
    """One recorded figure: ``ok`` is None when it has no target."""

    source: str
    figure: str
    value: str
    target: str = ""
    ok: bool | None = None


def record(
    figure: str, value: str, target: str = "", ok: bool | None = None, *, source: str
) -> None:
    """Append the figure to the file ``$MANDATE_BENCH_SUMMARY`` names; nothing without it.

    ``value`` and ``target`` are already formatted (``"2.7 µs"``, ``"≤ 10 µs"``); ``ok`` says
    whether the target was met (None: no target); ``source``: the module, e.g. ``"decide"``.
    """
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps(
        {"source": source, "figure": figure, "value": value, "target": target, "ok": ok},
        ensure_ascii=False,
    )
    # One write of one line in append mode: lines from one process never interleave.
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def read(path: Path) -> list[Figure]:
    """The figures recorded in ``path``, in order; lines that are not a figure are skipped."""
    figures: list[Figure] = []
    if not path.exists():
        return figures
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            item: Any = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        ok = item.get("ok")
        figures.append(
            Figure(
                source=str(item.get("source", "")),
                figure=str(item.get("figure", "")),
                value=str(item.get("value", "")),
                target=str(item.get("target") or ""),
                ok=ok if isinstance(ok, bool) else None,
            )
        )
    return figures


def verdict(ok: bool | None) -> str:
    """The pass/fail cell: empty without a target."""
    if ok is None:
        return ""
    return "✅ pass" if ok else "❌ fail"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(figures: list[Figure]) -> list[str]:
    """The markdown table: figure (prefixed by its module) | value | target | pass/fail."""
    out = ["| figure | value | target | pass/fail |", "|---|--:|---|---|"]
    for f in figures:
        name = f"{f.source}: {f.figure}" if f.source else f.figure
        out.append(f"| {_cell(name)} | {_cell(f.value)} | {_cell(f.target)} | {verdict(f.ok)} |")
    return out
